"""The deployment recipe (Dockerfile, deploy/install.sh, deploy/cronjob.yaml) does what
README.md's "Deploying" says.

There is no container runtime here, so the slow test performs the image build's own steps
(deploy/install.sh, which the Dockerfile runs) in a fresh environment, makes the installed
package read-only as the image's runtime user finds it, and checks that runs then compile
nothing. The quick tests keep the Dockerfile and the CronJob tied to that script and to
the command line.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import hostile_days

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
INSTALL = ROOT / "deploy" / "install.sh"
CRONJOB = ROOT / "deploy" / "cronjob.yaml"

LOADED = re.compile(r"^\[cache\] data loaded from '(.*)'$", re.MULTILINE)
SAVED = re.compile(r"^\[cache\] (?:index|data) saved to '(.*)'$", re.MULTILINE)


def copied_sources() -> list[str]:
    """What the Dockerfile copies into the build: the paths of its `COPY` lines."""
    paths = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            paths += words[1:-1]
    return paths


def test_the_image_is_built_by_the_install_script_as_root_and_runs_as_another_user() -> None:
    text = DOCKERFILE.read_text()
    steps = [line.split(None, 1) for line in text.splitlines() if line and line[0] != "#"]
    runs = [rest for word, rest in steps if word == "RUN"]
    assert runs[0] == "sh /src/deploy/install.sh /src /opt/accounts-job"
    assert {"pyproject.toml", "uv.lock", "job", "generator", "deploy"} <= set(copied_sources())
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    # The install happens before the last USER: the package belongs to root.
    assert text.index("install.sh") < text.rindex("USER ")
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)


def test_the_install_script_installs_the_lock_and_warms_up() -> None:
    text = INSTALL.read_text()
    assert "--frozen" in text and "--no-editable" in text and "--no-dev" in text
    assert re.search(r'"\$env/bin/accounts-job" warmup', text)


def test_the_cronjob_runs_a_nightly_with_options_the_command_line_has() -> None:
    yaml = pytest.importorskip("yaml")
    from accounts_job.cli import app
    from typer.main import get_command

    job = yaml.safe_load(CRONJOB.read_text())
    assert job["kind"] == "CronJob"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(container["args"])
    words = shlex.split(script.split("exec ", 1)[1])
    assert words[:2] == ["accounts-job", "run"]
    known = {o for p in get_command(app).commands["run"].params for o in p.opts}
    assert {w for w in words if w.startswith("--")} <= known
    assert "--state" in words
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def uv_command() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    for python in ("python3", sys.executable):
        if subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    pytest.skip("uv is not installed")


@pytest.mark.slow
def test_an_install_as_the_image_builds_it_compiles_nothing_at_run_time(tmp_path) -> None:
    """deploy/install.sh into a fresh environment, from the sources the Dockerfile copies
    (without any compiled code); then, the package read-only, runs load every kernel and
    save none."""
    source = tmp_path / "src"
    for name in copied_sources():
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    env_dir = tmp_path / "opt" / "accounts-job"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUMBA_", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"))
    }
    build_env = {
        **base,
        "UV": " ".join(uv_command()),
        "UV_PYTHON": os.path.realpath(sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    built = subprocess.run(
        ["sh", str(source / "deploy" / "install.sh"), str(source), str(env_dir)],
        env=build_env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    # The warm-up filled the installed package's cache (not the sources', not a user
    # folder): from the compiled kernels the package ships where they match this machine
    # (nothing to compile), else by compiling.
    warmed = r"^(compiled [1-9]\d* kernel signatures|nothing to compile)"
    assert re.search(warmed, built.stdout, re.MULTILINE), built.stdout
    site = next(env_dir.glob("lib/python3*/site-packages"))
    assert f"cache: {site / 'accounts_job' / 'kernels' / '__pycache__'}" in built.stdout
    assert not (site / "accounts_job").is_symlink()
    assert list((site / "accounts_job" / "kernels" / "__pycache__").glob("*.nbi"))

    # As the runtime user finds it: the installed environment read-only.
    if subprocess.run(["mount", "--bind", str(env_dir), str(env_dir)]).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(env_dir)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        run_env = {
            **base,
            "NUMBA_DEBUG_CACHE": "1",
            "HOME": str(tmp_path / "home"),
            "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),
            "TMPDIR": str(tmp_path),
        }
        days = hostile_days(tmp_path)
        job = str(env_dir / "bin" / "accounts-job")
        init = [job, "state", "init", str(tmp_path / "state")]
        made = subprocess.run(init, env=run_env, capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr
        for n, day in enumerate(days[:2]):
            args = ["run", day, "--state", tmp_path / "state", "--out", tmp_path / f"a{n}.csv"]
            args += ["--rejects", tmp_path / f"r{n}.parquet", "--quiet"]
            done = subprocess.run(
                [job, *map(str, args)], env=run_env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr
            assert SAVED.findall(done.stdout) == []
            assert len(LOADED.findall(done.stdout)) >= 5
        again = subprocess.run(
            [job, "warmup"], env=run_env, capture_output=True, text=True, timeout=600
        )
        assert again.returncode == 0, again.stderr
        assert "nothing to compile" in again.stdout
        assert SAVED.findall(again.stdout) == []
    finally:
        subprocess.run(["umount", str(env_dir)], check=True)

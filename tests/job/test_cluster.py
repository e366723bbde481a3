"""`accounts-job run --cluster`: the same job on a real Dask cluster on loopback.

A scheduler and two workers are started as the `dask` command starts them, the job runs
through them as a user would run it, and its outputs are compared byte for byte with a
run without a cluster. Every process is stopped at the end, also when a test fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import accounts_job
import pytest
from support.cluster import dask_cluster, free_port, hostile, outputs, run_job
from support.helpers import run_script

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as loopback:
        yield loopback.address


def summary_counts(path: Path) -> dict:
    d = json.loads(path.read_text())
    for key in ("seconds", "rows_per_second", "state_bytes"):
        d.pop(key)
    return d


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_cluster_run_gives_the_same_bytes(tmp_path, cluster, seed):
    path = hostile(tmp_path, seed)
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "cluster")
    assert run_job(path, local).returncode == 0
    done = run_job(path, remote, "--cluster", cluster)
    assert done.returncode == 0, done.stderr.decode()
    assert remote["--out"].read_bytes() == local["--out"].read_bytes()
    assert remote["--rejects"].read_bytes() == local["--rejects"].read_bytes()
    assert summary_counts(remote["--summary"]) == summary_counts(local["--summary"])
    # The file exercises what sharding must settle between shards.
    reasons = json.loads(local["--summary"].read_text())["rejected"]
    assert reasons["client_mismatch"] > 0 and reasons["duplicate_tx"] > 0
    assert reasons["account_locked"] > 0


def test_a_cluster_run_writes_the_same_parquet(tmp_path, cluster):
    path = hostile(tmp_path, 4)
    local, remote = outputs(tmp_path / "local", "parquet"), outputs(tmp_path / "c", "parquet")
    assert run_job(path, local).returncode == 0
    assert run_job(path, remote, "--cluster", cluster).returncode == 0
    import pyarrow.parquet as pq

    for option in ("--out", "--rejects"):
        assert pq.read_table(remote[option]).equals(pq.read_table(local[option]))


def test_the_api_on_a_cluster(tmp_path, cluster):
    path = hostile(tmp_path, 5, transactions=3000)
    one = accounts_job.process(path)
    sharded = accounts_job.process(path, cluster=cluster)
    assert sharded.accounts.equals(one.accounts)
    assert sharded.rejects.equals(one.rejects)


def test_a_local_cluster(tmp_path):
    """local:N starts its own worker processes for the run and stops them after."""
    path = hostile(tmp_path, 6, transactions=3000)
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "c")
    assert run_job(path, local).returncode == 0
    done = run_job(path, remote, "--cluster", "local:2")
    assert done.returncode == 0, done.stderr.decode()
    assert remote["--out"].read_bytes() == local["--out"].read_bytes()
    assert remote["--rejects"].read_bytes() == local["--rejects"].read_bytes()


def test_a_worker_killed_mid_run_is_replaced(tmp_path):
    """The first worker to run a shard's rules dies there (SIGKILL). Dask runs the step
    again, and the answer is the same."""
    marker = tmp_path / "died"
    env = {"ACCOUNTS_JOB_CRASH_AT": "shard-step", "ACCOUNTS_JOB_CRASH_ONCE": str(marker)}
    path = hostile(tmp_path, 7)
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "c")
    assert run_job(path, local).returncode == 0
    with dask_cluster(tmp_path, worker_env=env) as loopback:
        done = run_job(path, remote, "--cluster", loopback.address)
    assert marker.exists(), "no worker died: the test did not test anything"
    assert done.returncode == 0, done.stderr.decode()
    assert remote["--out"].read_bytes() == local["--out"].read_bytes()
    assert remote["--rejects"].read_bytes() == local["--rejects"].read_bytes()


def test_workers_that_keep_dying_fail_the_run_cleanly(tmp_path):
    """Every try of a step kills its worker: the run fails with a clear message, exit 69,
    and writes nothing."""
    env = {"ACCOUNTS_JOB_CRASH_AT": "shard-step"}
    path = hostile(tmp_path, 8, transactions=2000)
    out = outputs(tmp_path / "c")
    with dask_cluster(
        tmp_path, worker_env=env, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1"
    ) as loopback:
        done = run_job(path, out, "--cluster", loopback.address)
    assert done.returncode == 69, done.stderr.decode()
    assert b"worker died" in done.stderr
    assert not any(p.exists() for p in out.values())
    assert list(out["--out"].parent.iterdir()) == []


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    path = hostile(tmp_path, 9, transactions=200)
    out = outputs(tmp_path / "c")
    started = time.monotonic()
    done = run_job(path, out, "--cluster", f"tcp://127.0.0.1:{free_port()}")
    assert done.returncode == 69
    assert b"cannot reach the Dask scheduler" in done.stderr
    assert list(out["--out"].parent.iterdir()) == []
    assert time.monotonic() - started < 120


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "local:0"], b"local:N"),
        (["--cluster", "local:x"], b"local:N"),
        (["--cluster", "local:2", "--events", "e.csv"], b"--events"),
        (["--cluster", "local:2", "--state", "st"], b"--state"),
    ],
)
def test_cluster_usage_errors(tmp_path, args, message):
    path = hostile(tmp_path, 10, transactions=100)
    done = run_script("run", path, "--out", tmp_path / "a.csv", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "a.csv").exists()


def test_a_run_without_cluster_never_imports_dask(tmp_path):
    path = hostile(tmp_path, 11, transactions=100)
    code = (
        "import sys, accounts_job.cli as c\n"
        f"sys.argv = ['accounts-job', 'run', {str(path)!r}, '--quiet']\n"
        "try:\n"
        "    c.app(standalone_mode=False)\n"
        "finally:\n"
        "    assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
        "    print('no dask', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert b"no dask" in done.stderr


def test_urls_for_the_input_and_the_outputs(tmp_path, cluster):
    """Without a shared folder: the input and outputs as URLs (file:// here; s3:// and
    the like go the same way through fsspec, with their package installed)."""
    path = hostile(tmp_path, 12, transactions=3000)
    local = outputs(tmp_path / "local")
    remote = outputs(tmp_path / "url")
    assert run_job(path, local).returncode == 0
    as_urls = {option: f"file://{target}" for option, target in remote.items()}
    done = run_job(f"file://{path}", as_urls, "--cluster", cluster)
    assert done.returncode == 0, done.stderr.decode()
    assert remote["--out"].read_bytes() == local["--out"].read_bytes()
    assert remote["--rejects"].read_bytes() == local["--rejects"].read_bytes()
    assert (
        summary_counts(remote["--summary"])["rejected"]
        == summary_counts(local["--summary"])["rejected"]
    )


@pytest.mark.parametrize(
    ("url", "cluster_args", "status", "message"),
    [
        ("file:///no/such/file.csv", ["--cluster", "local:1"], 66, b"input not found"),
        ("nosuchscheme://bucket/tx.csv", ["--cluster", "local:1"], 2, b"nosuchscheme"),
        ("file:///no/such/file.csv", [], 66, b"input not found"),  # a plain run reads URLs
    ],
)
def test_bad_urls(tmp_path, url, cluster_args, status, message):
    done = run_script("run", url, "--out", tmp_path / "a.csv", *cluster_args)
    assert done.returncode == status, done.stderr.decode()
    assert message in done.stderr
    assert not (tmp_path / "a.csv").exists()


def test_without_dask_installed_the_option_says_what_to_install(tmp_path, monkeypatch):
    from accounts_job.cli import app
    from typer.testing import CliRunner

    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    path = hostile(tmp_path, 13, transactions=100)
    result = CliRunner().invoke(app, ["run", str(path), "--cluster", "local:1"])
    assert result.exit_code == 2
    assert "pip install 'accounts-job[distributed]'" in result.stderr


class FakeClient:
    def __init__(self, answer):
        self.answer = answer

    def run(self, fn):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"tcp://a:1": accounts_job.__version__, "tcp://b:2": "0.0.1"}, "tcp://b:2 has 0.0.1"),
        (ModuleNotFoundError("No module named 'accounts_job'"), "cannot run accounts-job"),
    ],
)
def test_workers_must_run_this_version(answer, message):
    from accounts_job.distributed.cluster import check_workers
    from accounts_job.errors import ClusterError

    with pytest.raises(ClusterError, match=message):
        check_workers(FakeClient(answer))
    check_workers(FakeClient({"tcp://a:1": accounts_job.__version__}))

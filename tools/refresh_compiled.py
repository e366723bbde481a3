"""Rebuild the compiled kernels the package ships, `job/accounts_job/kernels/_compiled`.

The package carries numba's cache of every kernel `accounts-job warmup` compiles, so that
a new install's first run loads the kernels instead of compiling them (kernels/_cache.py).
That cache is keyed on a stamp of all the kernels' sources: after any change to them it
no longer matches, and `tests/job/test_warmup.py` fails until it is rebuilt:

    python3 -m uv run python tools/refresh_compiled.py

It compiles in a copy of the package that has no compiled code, with the interpreter and
numba of this environment (uv.lock's), for x86-64-v3 (so it needs a CPU that has it), then
replaces the folder's contents with that copy's cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "job" / "accounts_job"
SHIPPED = PACKAGE / "kernels" / "_compiled"
TARGET = "x86-64-v3"

CHILD = """
import json
from accounts_job.warmup import warm
done = warm()
print(json.dumps({"cpu": done.cpu, "compiled": done.compiled, "seconds": done.seconds}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="accounts-job-compiled-") as site:
        copy = Path(site) / "accounts_job"
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_compiled"))
        # The package's own choice of CPU target, nothing the caller's environment says.
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env["PYTHONPATH"] = site
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        done = json.loads(out.stdout.strip().splitlines()[-1])
        if done["cpu"] != TARGET:
            sys.exit(f"this CPU compiles for {done['cpu']}, not {TARGET}: rebuild on another")
        built = sorted((copy / "kernels" / "__pycache__").glob("*.nb[ic]"))
        shutil.rmtree(SHIPPED, ignore_errors=True)
        SHIPPED.mkdir()
        for path in built:
            shutil.copyfile(path, SHIPPED / path.name)
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    print(
        f"compiled {done['compiled']} kernel signatures for {done['cpu']} in "
        f"{done['seconds']:.1f} s; {SHIPPED.relative_to(PACKAGE.parent.parent)} now holds "
        f"{len(built)} files, {size / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()

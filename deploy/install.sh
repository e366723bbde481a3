#!/bin/sh
# Install accounts-job from a source tree into a virtual environment, with the locked
# dependencies (uv.lock) and the Dask extra, as files (not a link back to the sources),
# then compile its kernels into the installed package, so that no run compiles.
#
#   deploy/install.sh SOURCE ENV
#
# The Dockerfile runs this at build time, and tests/job/test_deploy.py runs it too, so
# what the test checks is what the image does. uv must be on the PATH (or UV="python3 -m
# uv"); UV_PYTHON may name the Python to install for.
set -eu
source=$1
env=$2
uv=${UV:-uv}

# --frozen: exactly uv.lock, never re-resolved. --compile-bytecode: Python's bytecode now,
# since ENV will not be writable at run time.
UV_PROJECT_ENVIRONMENT=$env $uv sync --project "$source" --frozen --no-dev \
    --extra distributed --no-editable --compile-bytecode

# numba's machine code for every kernel, into the package's __pycache__.
"$env/bin/accounts-job" warmup

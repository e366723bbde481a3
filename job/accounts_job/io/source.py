"""Where a run's inputs and outputs live: a path, or a URL.

An input can be a URL (s3://, gs://, az://, https://, file://, ...) read through fsspec
(the `urls` extra; Dask brings it too), with the package for the scheme installed (s3fs,
gcsfs, adlfs, aiohttp). A run in one process reads it once as a stream into a spool file
(io/spool.py); a cluster's workers each read their byte ranges of it, on every machine
(a shared folder does the same with plain paths). Outputs may be URLs too: each is
written to a local temporary file and uploaded whole when the run succeeds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from ..errors import InputError, OutputError, UsageError


def is_pattern(name: str) -> bool:
    """Whether `name` reads as a glob pattern (as glob.has_magic says, without importing
    glob on every run)."""
    return any(c in name for c in "*?[")


def is_url(name: str | Path) -> bool:
    return isinstance(name, str) and "://" in name


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise UsageError(f"{url}: URLs need fsspec: pip install 'accounts-job[urls]'") from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise UsageError(f"{url}: {e}") from None


def open_input(name: str | Path, buffered: bool = False) -> IO[bytes]:
    """The input opened for reading bytes; a local file unbuffered unless `buffered`
    (the block reader reads large blocks straight into its own buffers)."""
    if not is_url(name):
        return open(name, "rb", buffering=-1 if buffered else 0)
    fs, path = _filesystem(str(name))
    try:
        return fs.open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"input not found: {name}") from None
    except OSError as e:
        raise InputError(f"cannot read input {name}: {e}") from None


def input_size(name: str | Path) -> int:
    if not is_url(name):
        return os.stat(name).st_size
    fs, path = _filesystem(str(name))
    try:
        return int(fs.size(path))
    except FileNotFoundError:
        raise InputError(f"input not found: {name}") from None
    except OSError as e:
        raise InputError(f"cannot read input {name}: {e}") from None


def upload(local: Path, url: str) -> None:
    """Copy a finished output to its URL, whole (object stores replace an object in one
    step; a reader never sees part of it)."""
    fs, path = _filesystem(url)
    try:
        fs.put_file(str(local), path)
    except OSError as e:
        raise OutputError(f"cannot write {url}: {e}") from None

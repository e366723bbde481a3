"""Fault injection for the all-or-nothing tests: die at a named point, as SIGKILL would.

`ACCOUNTS_JOB_CRASH_AT=<point>` makes the process kill itself there, so a test can stop
a run at an exact moment of its commit instead of racing it with a timer. Unset (always,
outside tests), a point costs one dictionary lookup.

With `ACCOUNTS_JOB_CRASH_ONCE=<file>` as well, only the first process to get there dies
(it creates the file first): a cluster test kills one worker, once, and watches the run
recover.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

ENV = "ACCOUNTS_JOB_CRASH_AT"
ONCE = "ACCOUNTS_JOB_CRASH_ONCE"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) != name:
        return
    marker = os.environ.get(ONCE)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process already died here
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No crash point fires inside: the warm-up's sample runs (warmup.py) pass the same
    points as a real run, and a test aiming at the run must not kill the warm-up."""
    saved = os.environ.pop(ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[ENV] = saved

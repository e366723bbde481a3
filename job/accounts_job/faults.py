"""Fault injection for the all-or-nothing tests: die at a named point, as SIGKILL would.

`ACCOUNTS_JOB_CRASH_AT=<point>` makes the process kill itself there, so a test can stop
a run at an exact moment of its commit instead of racing it with a timer. Unset (always,
outside tests), a point costs one dictionary lookup.

With `ACCOUNTS_JOB_CRASH_ONCE=<file>` as well, only the first process to get there dies
(it creates the file first): a cluster test kills one worker, once, and watches the run
recover.
"""

from __future__ import annotations

import os
import signal

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

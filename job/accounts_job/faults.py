"""Fault injection for the all-or-nothing tests: die at a named point, as SIGKILL would.

`ACCOUNTS_JOB_CRASH_AT=<point>` makes the process kill itself there, so a test can stop
a run at an exact moment of its commit instead of racing it with a timer. Unset (always,
outside tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ACCOUNTS_JOB_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

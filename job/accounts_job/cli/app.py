"""The Typer app, and fatal errors as one line on stderr and a documented exit status.

The commands (cli/run.py, cli/state.py, cli/warmup.py) register themselves on `app`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from .._version import __version__
from ..errors import EXIT_SOFTWARE, JobError

app = typer.Typer(
    name="accounts-job",
    help="Turn a CSV of client transactions into exact account balances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

# Signals that stop a run as Ctrl-C (SIGINT) does: `kill`, a scheduler's timeout, a closed
# terminal or ssh session.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal arrived: raised in the main thread, wherever it was, so that every
    `finally` and discard on the way out runs (temporary files removed, the state's lock
    let go), as KeyboardInterrupt does for SIGINT. A BaseException, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signo: int) -> None:
        super().__init__(signo)
        self.signo = signo

    @property
    def exit_code(self) -> int:
        return 128 + self.signo  # as a shell reports a process a signal stopped

    @property
    def message(self) -> str:
        return f"stopped by {signal.Signals(self.signo).name}"


def _stop(signo: int, _frame: object) -> None:
    # Once: a second signal must not cut the clean-up the first one started short.
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Stopped(signo)


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into `Stopped`. A signal the caller set to be ignored
    (`nohup` does so for SIGHUP) stays ignored."""
    for s in STOP_SIGNALS:
        if signal.getsignal(s) != signal.SIG_IGN:
            signal.signal(s, _stop)


def fail(message: str, code: int) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    print(f"accounts-job: error: {message}", file=sys.stderr)
    return typer.Exit(code)


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run `action`; fatal errors become one line and an exit status, tracebacks only with
    --debug."""
    try:
        return action()
    except JobError as e:
        if debug:
            traceback.print_exc()
        raise fail(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except Stopped as e:
        raise fail(e.message, e.exit_code) from None
    except Exception as e:
        if debug:
            traceback.print_exc()
        raise fail(
            f"unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)",
            EXIT_SOFTWARE,
        ) from None


def _version(value: bool) -> None:
    if value:
        print(f"accounts-job {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Turn a CSV of client transactions into exact account balances."""


def entry_point() -> None:
    """The `accounts-job` console script: run the app, then leave at once.

    SIGTERM and SIGHUP stop it as SIGINT does, cleaning up on the way out (`Stopped`).
    Everything the run writes is flushed and closed by then. What is left is the
    interpreter's teardown of numba's and Polars' thread pools and compiled code, which
    costs about 0.3 s a run and does nothing for anyone, so we skip it.
    """
    code: int = 0
    stop_on_signals()
    try:
        app()
    except SystemExit as e:
        if isinstance(e.code, int):
            code = e.code
        elif e.code is not None:
            print(e.code, file=sys.stderr)
            code = 1
    except Stopped as e:  # before or after a command's own `guarded`
        print(f"accounts-job: error: {e.message}", file=sys.stderr)
        code = e.exit_code
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (| head) has nothing left to be told.
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)

"""The Typer app, and fatal errors as one line on stderr and a documented exit status.

The commands (cli/run.py, cli/state.py, cli/warmup.py) register themselves on `app`.
"""

from __future__ import annotations

import contextlib
import os
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

    Everything the run writes is flushed and closed by then. What is left is the
    interpreter's teardown of numba's and Polars' thread pools and compiled code, which
    costs about 0.3 s a run and does nothing for anyone, so we skip it.
    """
    code: int = 0
    try:
        app()
    except SystemExit as e:
        if isinstance(e.code, int):
            code = e.code
        elif e.code is not None:
            print(e.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (| head) has nothing left to be told.
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)

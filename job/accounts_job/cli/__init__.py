"""The `accounts-job` command line: a thin layer over `accounts_job.process`.

`app.py` builds the Typer app and turns fatal errors into one line and an exit status;
each command lives in its own module and registers itself on the app when imported.
"""

from . import run as _run  # noqa: F401
from . import state as _state  # noqa: F401
from . import warmup as _warmup  # noqa: F401
from .app import app, entry_point

__all__ = ["app", "entry_point"]

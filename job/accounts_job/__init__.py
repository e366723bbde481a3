"""Exact account balances from a CSV of client transactions.

The layers, lowest first; a module may import from its own layer and the ones below,
never from one above (tests/job/test_layers.py checks it):

- `codes`, `errors`, `faults`, `_version`: the vocabulary every layer shares;
- `kernels`: the compiled kernels (numba) over raw bytes and small integers;
- `io`: sources, raw blocks, the header, Arrow schemas, writers, Polars views;
- `engine`: the run itself: parser, first pass, ledger, rejects, events, summary;
- `state`, `distributed`: nightly state on disk; the run sharded by client on Dask;
- `job`: `process`, which writes every output and commits the state all or nothing;
- `warmup`: every kernel compiled (or loaded) ahead of a run, for images and Dask workers;
- `cli`, `explore`: the command line; the notebook's loading, analyses and charts.

The rules the job follows are docs/rules.md.
"""

from ._version import __version__
from .engine.result import Result
from .engine.summary import Summary
from .errors import AlreadyApplied, JobError
from .io.writers import EventsWriter, RejectsWriter, write_accounts
from .job import init_state, process

__all__ = [
    "AlreadyApplied",
    "EventsWriter",
    "JobError",
    "RejectsWriter",
    "Result",
    "Summary",
    "__version__",
    "init_state",
    "process",
    "write_accounts",
]

"""Exact account balances from a CSV of client transactions."""

__version__ = "0.1.0"

from .engine import AlreadyApplied, Result, process
from .errors import JobError
from .output import EventsWriter, RejectsWriter, write_accounts
from .summary import Summary

__all__ = [
    "AlreadyApplied",
    "EventsWriter",
    "JobError",
    "RejectsWriter",
    "Result",
    "Summary",
    "__version__",
    "process",
    "write_accounts",
]

"""Exact account balances from a CSV of client transactions."""

__version__ = "0.1.0"

from .engine import Result, process
from .errors import JobError
from .output import write_accounts
from .summary import Summary

__all__ = ["JobError", "Result", "Summary", "__version__", "process", "write_accounts"]

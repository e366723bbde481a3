"""What a run produced: the accounts, the rejects and the summary, assembled the same way
by the single-process run (engine/run.py) and the sharded one (distributed/sharded.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .summary import Summary

if TYPE_CHECKING:
    import polars as pl


@dataclass
class Result:
    """What a run produced.

    Attributes
    ----------
    accounts_table : pyarrow.Table
        One row per account, sorted by client (docs/rules.md §5.1).
    rejects_tables : list of pyarrow.Table or None
        The rejected rows in batches (docs/rules.md §5.2); None when they were written
        to a file instead, or not kept.
    summary : Summary
        The run's counts.
    """

    accounts_table: pa.Table
    rejects_tables: list[pa.Table] | None
    summary: Summary

    @property
    def accounts(self) -> pl.DataFrame:
        """One row per account, sorted by client; amounts exact, as Decimal(38, 4)."""
        from ..io.frames import accounts_frame

        return accounts_frame(self.accounts_table)

    @property
    def rejects(self) -> pl.DataFrame | None:
        """Every rejected row: line (1-based, in the input file), reason, raw (the line's
        bytes, docs/rules.md §5.2)."""
        if self.rejects_tables is None:
            return None
        from ..io.frames import rejects_frame

        return rejects_frame(self.rejects_tables)


def finish(
    summary: Summary,
    started: float,
    outcomes: np.ndarray,
    applied: np.ndarray,
    accounts: pa.Table,
    state_bytes: int,
    rejects: list[pa.Table] | None,
) -> Result:
    """The Result of a run that started at `started` (time.perf_counter()): `summary`
    completed with the rows by outcome and kind, the accounts and the rules' memory."""
    summary.add_counts(outcomes, applied)
    if len(summary.inputs) == 1 and summary.inputs[0]["rows"] is None:
        summary.inputs[0]["rows"] = summary.rows_read  # a sharded run counts them here
    summary.accounts = accounts.num_rows
    locked = accounts.column("locked").to_numpy(zero_copy_only=False)
    summary.locked_accounts = int(np.count_nonzero(locked))
    summary.state_bytes = state_bytes
    summary.seconds = time.perf_counter() - started
    return Result(accounts_table=accounts, rejects_tables=rejects, summary=summary)

"""The job: CSV in, accounts and rejects out. The plain Python API the CLI wraps.

Two passes over the file, each a stream of batches:

1. *References* (references.py): a compiled scan of the raw bytes marks the tx ids that
   disputes, resolves and chargebacks name. This is what lets the second pass remember
   only the deposits some row will ask about, instead of every deposit in the file.
2. *Rules*: Polars streams the lines, the compiled parser types them (parse.py), and the
   ledger decides every row in file order (kernel.py). Rejected rows leave with their
   line number and reason; applied rows are done.

Nothing per row outlives its batch, so memory depends on the batch size, the number of
referenced tx ids and the largest tx id, not on the number of rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from .codes import APPLIED, BLANK, MALFORMED_ROW, NONE, REASON_NAMES
from .header import Header, read_header
from .ledger import Ledger
from .output import RejectsWriter
from .parse import parse_lines
from .reader import LineBatch, iter_line_batches
from .references import first_pass
from .summary import Summary

# Lines per batch. Polars' own buffers dominate memory; at this size they stay flat.
DEFAULT_BATCH_SIZE = 1 << 18

REASON = pl.Enum(list(REASON_NAMES.values()))
_REASON_BY_CODE = np.array([REASON_NAMES.get(code, "") for code in range(256)], dtype=object)

# Progress callback: (pass name, bytes done in this batch).
Progress = Callable[[str, int], None]


@dataclass
class Result:
    """What a run produced. `rejects` is None when they were streamed to a file instead."""

    accounts: pl.DataFrame
    rejects: pl.DataFrame | None
    summary: Summary


@dataclass
class ParsedBatch:
    """A batch of lines, typed: one entry per line."""

    lines: LineBatch
    kinds: np.ndarray
    clients: np.ndarray
    txs: np.ndarray
    amounts: np.ndarray
    status: np.ndarray


def parse_batch(
    batch: LineBatch, header: Header, nul_lines: np.ndarray | None = None
) -> ParsedBatch:
    n = len(batch)
    kinds = np.empty(n, dtype=np.uint8)
    clients = np.empty(n, dtype=np.uint16)
    txs = np.empty(n, dtype=np.uint32)
    amounts = np.empty(n, dtype=np.int64)
    status = np.empty(n, dtype=np.uint8)
    parse_lines(
        batch.offsets,
        batch.data,
        header.type,
        header.client,
        header.tx,
        header.amount,
        header.width,
        kinds,
        clients,
        txs,
        amounts,
        status,
    )
    if nul_lines is not None and nul_lines.size:
        # Lines holding a NUL byte, as the first pass found them: not text we accept.
        lo, hi = np.searchsorted(nul_lines, [batch.first_line, batch.first_line + n])
        rows = nul_lines[lo:hi] - batch.first_line
        status[rows] = MALFORMED_ROW
        kinds[rows] = NONE
    return ParsedBatch(batch, kinds, clients, txs, amounts, status)


def parsed_batches(
    path: str | Path, header: Header, batch_size: int, nul_lines: np.ndarray | None = None
) -> Iterator[ParsedBatch]:
    for batch in iter_line_batches(path, header.line_index + 1, batch_size):
        yield parse_batch(batch, header, nul_lines)


def rejects_frame(parsed: ParsedBatch) -> pl.DataFrame:
    """The rejected rows of a decided batch: line number, reason, raw line."""
    status = parsed.status
    idx = np.flatnonzero((status != APPLIED) & (status != BLANK))
    lines = pl.from_arrow(parsed.lines.lines.take(idx))
    return pl.DataFrame(
        {
            "line": (idx + parsed.lines.first_line).astype(np.uint64),
            "reason": pl.Series(_REASON_BY_CODE[status[idx]], dtype=pl.String).cast(REASON),
            "raw": lines,
        }
    )


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"line": pl.UInt64, "reason": REASON, "raw": pl.String},
    )


def process(
    path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_to: RejectsWriter | None = None,
    keep_rejects: bool = True,
    progress: Progress | None = None,
) -> Result:
    """Run the job over the CSV at `path`.

    Returns the accounts (one row per account, sorted by client, amounts as exact
    Decimal(38, 4)), the rejected rows (line, reason, raw) unless `keep_rejects` is False
    or they go to `rejects_to`, and the summary. Raises a `JobError` for fatal errors.
    """
    started = time.perf_counter()
    path = Path(path)
    header = read_header(path)
    summary = Summary(input=str(path), input_bytes=path.stat().st_size)
    # Lines before the header are blank by definition; they are rows read, and skipped.
    summary.rows_read = summary.blank_lines = header.line_index

    first = first_pass(
        path, header, (lambda nbytes: progress("references", nbytes)) if progress else None
    )
    ledger = Ledger(first.referenced)

    kept: list[pl.DataFrame] = []
    for parsed in parsed_batches(path, header, batch_size, first.nul_lines):
        ledger.apply(parsed.kinds, parsed.clients, parsed.txs, parsed.amounts, parsed.status)
        summary.count_batch(parsed.kinds, parsed.status)
        if rejects_to is not None or keep_rejects:
            rejects = rejects_frame(parsed)
            if rejects_to is not None:
                rejects_to.write(rejects)
            elif rejects.height:
                kept.append(rejects)
        if progress:
            progress("rules", parsed.lines.nbytes)

    accounts = ledger.accounts()
    summary.accounts = accounts.height
    summary.locked_accounts = int(accounts.get_column("locked").sum())
    summary.seconds = time.perf_counter() - started
    rejects_df: pl.DataFrame | None = None
    if rejects_to is None and keep_rejects:
        rejects_df = pl.concat(kept) if kept else empty_rejects()
    return Result(accounts=accounts, rejects=rejects_df, summary=summary)

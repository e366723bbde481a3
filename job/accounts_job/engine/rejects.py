"""Rejected rows as data: line number, reason and the raw line, batch by batch.

Built as Arrow tables (pyarrow, no Polars), so the command line can stream them to CSV or
Parquet without importing Polars; `io/frames.py` turns them into a Polars DataFrame.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..codes import APPLIED, BLANK, REASON_NAMES
from ..io.blocks import Block
from ..io.schemas import REJECTS_ARROW
from ..kernels.gather import gather_lines

# Reason names by status code, so a batch's reasons are one vectorized take.
_REASON_BY_CODE = pa.array([REASON_NAMES.get(code, "") for code in range(256)], pa.string())


def raw_lines(block: Block, rows: np.ndarray) -> pa.LargeBinaryArray:
    """The bytes of the given lines of `block`, exactly as read, without their line ends
    (docs/rules.md §5.2); a line too long (§2.1) cut to its first `block.max_line` bytes."""
    offsets, out = gather_lines(block.data, block.ends, rows.astype(np.int64), block.max_line)
    return pa.Array.from_buffers(
        pa.large_binary(), rows.size, [None, pa.py_buffer(offsets), pa.py_buffer(out)]
    )


def rejects_table(block: Block, lo: int, status: np.ndarray) -> pa.Table:
    """The rejected rows among lines lo, lo + 1, ... of a block, once decided."""
    idx = np.flatnonzero((status != APPLIED) & (status != BLANK))
    return rejects_of(idx + block.first_line + lo, status[idx], raw_lines(block, idx + lo))


def rejects_of(lines: np.ndarray, codes: np.ndarray, raw: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The rejects table: 1-based line numbers, reasons (from their status codes), raw
    lines."""
    return pa.table(
        [pa.array(lines, pa.uint64()), _REASON_BY_CODE.take(pa.array(codes)), raw],
        schema=REJECTS_ARROW,
    )

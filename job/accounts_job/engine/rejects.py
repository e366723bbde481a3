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


def raw_lines(block: Block, rows: np.ndarray) -> pa.LargeStringArray:
    """The text of the given lines of `block`, without their line ends.

    Bytes that are not UTF-8 become U+FFFD, as Python's `errors="replace"` does, so a
    rejected row always has its raw text whatever its encoding.
    """
    offsets, out, wide = gather_lines(block.data, block.ends, rows.astype(np.int64))
    array = pa.Array.from_buffers(
        pa.large_string(), rows.size, [None, pa.py_buffer(offsets), pa.py_buffer(out)]
    )
    if wide.any():
        # Rare: lines past ASCII, which may not be valid UTF-8, are decoded one by one.
        texts = []
        for j in np.flatnonzero(wide):
            i = int(rows[j])
            line = block.data[block.line_start(i) : int(block.ends[i])].tobytes()
            texts.append(line.removesuffix(b"\r").decode("utf-8", errors="replace"))
        import pyarrow.compute as pc  # only here: its import costs more than a small run

        array = pc.replace_with_mask(array, pa.array(wide), pa.array(texts, pa.large_string()))
    return array


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

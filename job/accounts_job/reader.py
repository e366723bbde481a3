"""The input as a stream of batches of raw lines.

Polars does the reading: it splits the file into lines across both cores and hands them
over as Arrow string arrays, batch by batch, so memory holds one batch at a time however
large the file. Every physical line comes through, blank ones included, so a row's
position in the stream is its line number in the file.

The trick is to read the CSV as one column: no byte is a separator (NUL stands in, see
below) and no byte is a quote, so Polars returns each line whole and the compiled parser
applies SPEC.md's own field rules. `utf8-lossy` turns bytes that are not UTF-8 into
U+FFFD, so such a row is rejected by the field rules instead of failing the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from .errors import ReadError


@dataclass
class LineBatch:
    """One batch of consecutive lines, ready for the compiled kernels."""

    first_line: int  # 1-based line number of the batch's first line
    lines: pa.LargeStringArray  # the raw lines, for the rejects output
    offsets: np.ndarray  # int64, len n+1: line i is data[offsets[i]:offsets[i+1]]
    data: np.ndarray  # uint8 view of the Arrow bytes buffer

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def nbytes(self) -> int:
        """Bytes of input this batch covers, line ends included (for progress)."""
        return int(self.offsets[-1] - self.offsets[0]) + len(self.lines)


def scan_lines(source: str | Path, skip_lines: int = 0) -> pl.LazyFrame:
    """A lazy scan of `source` as raw lines, after its first `skip_lines` lines."""
    return pl.scan_csv(
        source,
        has_header=False,
        # NUL stands in for the separator: no text file we accept holds one. A line that
        # does arrives cut at its first NUL; the first pass (references.py) lists such
        # lines and the engine rejects them.
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        extra_columns="ignore",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
        encoding="utf8-lossy",
        skip_lines=skip_lines,
        infer_schema=False,
    )


def _to_batch(df: pl.DataFrame, first_line: int) -> LineBatch:
    arr = df.get_column("line").to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    n = len(arr)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return LineBatch(first_line, arr, offsets, data)


def iter_line_batches(source: str | Path, skip_lines: int, batch_size: int) -> Iterator[LineBatch]:
    """Yield the lines after the first `skip_lines`, `batch_size` lines at a time."""
    line = skip_lines + 1
    try:
        for df in scan_lines(source, skip_lines).collect_batches(chunk_size=batch_size):
            if df.height == 0:
                continue
            batch = _to_batch(df, line)
            line += len(batch)
            yield batch
    except (pl.exceptions.ComputeError, OSError) as e:
        raise ReadError(f"reading {source} failed at or after line {line}: {e}") from e

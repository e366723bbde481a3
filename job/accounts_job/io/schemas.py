"""The Arrow shapes of everything the job writes, and money between int64 units and decimals.

One home for each schema. The names end in `_ARROW`; the Polars shapes of the same
tables (for the API and the notebook) are in `io/frames.py` and end in `_FRAME`.
Money is int64 units of 0.0001 inside the job and `decimal(38, 4)` at its edges
(docs/rules.md §3): the conversions here move the bits, never through a float.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..codes import SCALE

# Precision 38 leaves room for sums across accounts in a notebook without overflowing
# the column type.
DECIMAL = pa.decimal128(38, SCALE)

# docs/rules.md §5.1: one row per account, sorted by client.
ACCOUNTS_ARROW = pa.schema(
    [
        ("client", pa.uint16()),
        ("available", DECIMAL),
        ("held", DECIMAL),
        ("total", DECIMAL),
        ("locked", pa.bool_()),
    ]
)

# docs/rules.md §5.2: `raw` is the line's exact bytes, so binary: large binary while the
# job builds the table (a batch of long lines may pass 2 GiB); Parquet files get plain
# binary (REJECTS_FILE_ARROW), which every reader reads. CSV files hold it escaped as
# text (REJECTS_CSV_ARROW, io/rawtext.py).
REJECTS_ARROW = pa.schema(
    [("line", pa.uint64()), ("reason", pa.string()), ("raw", pa.large_binary())]
)
REJECTS_FILE_ARROW = REJECTS_ARROW.set(2, pa.field("raw", pa.binary()))
REJECTS_CSV_ARROW = REJECTS_ARROW.set(2, pa.field("raw", pa.large_string()))

# docs/rules.md §5.3: the event stream.
EVENTS_ARROW = pa.schema(
    [
        ("line", pa.uint64()),
        ("client", pa.uint16()),
        ("tx", pa.uint32()),
        ("event", pa.string()),
        ("amount", DECIMAL),
    ]
)


# With rows from several files, rejects and events say which file a row's `line` is in:
# a `file` column, after `line` (docs/rules.md §5.2).
FILE_FIELD = pa.field("file", pa.string())


def with_file(schema: pa.Schema) -> pa.Schema:
    """`schema` with the `file` column after `line`."""
    return schema.insert(1, FILE_FIELD)


def units_to_decimal(units: np.ndarray) -> pa.Array:
    """int64 units of 0.0001 as an Arrow decimal(38, 4), bit for bit: no float, no rounding.

    A decimal128 value is the unscaled integer in 16 little-endian bytes, so each int64
    becomes its low word plus a sign-extended high word.

    >>> units_to_decimal(np.array([15000, -2500])).to_pylist()
    [Decimal('1.5000'), Decimal('-0.2500')]
    """
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((units.size, 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63
    return pa.Array.from_buffers(DECIMAL, units.size, [None, pa.py_buffer(words.tobytes())])


def decimal_to_units(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The inverse of units_to_decimal for values that fit int64 units: the low words.

    >>> decimal_to_units(units_to_decimal(np.array([1, -1]))).tolist()
    [1, -1]
    """
    if isinstance(values, pa.ChunkedArray):
        chunks = [decimal_to_units(c) for c in values.chunks]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    if values.type != DECIMAL or values.null_count:
        raise ValueError(f"expected {DECIMAL} without nulls, got {values.type}")
    words = np.frombuffer(values.buffers()[1], dtype=np.int64)
    words = words[2 * values.offset : 2 * (values.offset + len(values))].reshape(-1, 2)
    if np.any(words[:, 1] != words[:, 0] >> 63):
        raise ValueError("an amount is outside the int64 range of units")
    return words[:, 0].copy()

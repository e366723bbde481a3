"""The rejects' `raw` in CSV: escaped text that gives back the exact bytes (docs/rules.md §5.2).

In Parquet and in the Python API, `raw` is binary: the line's bytes as read. CSV is text,
so there `raw` is escaped (kernels/escape.py has the rules): valid UTF-8, no control
characters, never the start of a spreadsheet formula, and `unescape_raw` undoes it
exactly.

>>> escape_raw(b"=HYPERLINK(1)")
"'=HYPERLINK(1)"
>>> escape_raw(b"deposit,1,\\xff\\x00,C:\\\\x")
'deposit,1,\\\\xFF\\\\x00,C:\\\\\\\\x'
>>> unescape_raw(escape_raw(b"'\\xe9\\t-"))
b"'\\xe9\\t-"
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..kernels.escape import escape_lines, unescape_lines


def _buffers(array: pa.Array, kind: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets and the bytes of `array` as `kind` (large binary or large
    string), nulls as empty values."""
    if array.null_count:
        array = array.fill_null(b"" if pa.types.is_binary(kind) else "")
    array = array.cast(kind)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    offsets = offsets[array.offset : array.offset + len(array) + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else _EMPTY
    return offsets, data


_EMPTY = np.zeros(0, dtype=np.uint8)


def escape_array(raw: pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """Binary (or string) values escaped for CSV, as one large string array."""
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    offsets, data = _buffers(raw, pa.large_binary())
    out_offsets, out = escape_lines(offsets, data)
    return pa.Array.from_buffers(
        pa.large_string(), len(raw), [None, pa.py_buffer(out_offsets), pa.py_buffer(out)]
    )


def unescape_array(text: pa.Array | pa.ChunkedArray) -> pa.LargeBinaryArray:
    """The inverse of escape_array: escaped text back to the exact bytes.

    Raises
    ------
    ValueError
        A value is not in the escaped form (a backslash not followed by a backslash or
        by `x` and two hex digits).
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks != 1 else text.chunk(0)
    offsets, data = _buffers(text, pa.large_string())
    out_offsets, out, bad = unescape_lines(offsets, data)
    if bad >= 0:
        raise ValueError(f"not an escaped raw line (docs/rules.md §5.2): {text[bad].as_py()!r}")
    return pa.Array.from_buffers(
        pa.large_binary(), len(text), [None, pa.py_buffer(out_offsets), pa.py_buffer(out)]
    )


def escape_raw(raw: bytes) -> str:
    """One raw line as the rejects CSV writes it (docs/rules.md §5.2)."""
    return escape_array(pa.array([raw], pa.large_binary()))[0].as_py()


def unescape_raw(text: str) -> bytes:
    """The exact bytes of a `raw` value read from a rejects CSV (docs/rules.md §5.2).

    Parameters
    ----------
    text : str
        The `raw` field as a CSV reader gives it.

    Returns
    -------
    bytes
        The rejected line as read, without its line end.

    Raises
    ------
    ValueError
        `text` is not in the escaped form.
    """
    return unescape_array(pa.array([text], pa.large_string()))[0].as_py()

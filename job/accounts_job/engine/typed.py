"""One run over a typed source (Parquet, Arrow, a frame): the CSV run's two passes, on
Arrow batches instead of raw bytes (docs/rules.md §2.11).

1. *References*: a scan of the `type` and `tx` columns only (the source reads no other)
   marks the tx ids that disputes, resolves and chargebacks name, as
   engine/references.py does for a CSV.
2. *Rules*: each Arrow batch of the columns the job reads is typed and checked at once
   (`type_batch`: numpy over integer and decimal columns, compiled kernels over text,
   kernels/typed.py) into the arrays the CSV parser makes (engine/parser.py), and the
   same ledger decides its rows in order (engine/ledger.py).

A row's `line` is its 1-based row number in the source (in its file, when a dataset has
several, with the file's path beside it); its `raw`, for a reject, is the row written as
a CSV line, rendered only for the rejected rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codes import (
    APPLIED,
    CHARGEBACK,
    DEPOSIT,
    DISPUTE,
    INVALID_AMOUNT,
    INVALID_CLIENT,
    INVALID_TX,
    MALFORMED_ROW,
    MAX_CLIENT,
    MAX_TX,
    MAX_UNITS,
    NONE,
    SCALE,
    UNITS_PER_WHOLE,
    UNKNOWN_TYPE,
    WITHDRAWAL,
)
from ..errors import HeaderError, InputError
from ..io.header import match_columns, shown
from ..io.schemas import FILE_FIELD
from ..io.typed import TypedSource
from ..io.writers import TableWriter
from ..kernels.bitmaps import new_set, set_bits
from ..kernels.typed import (
    decimal_units,
    text_amounts,
    text_kinds,
    text_uints,
    view_kinds,
)
from .events import events_table
from .ledger import Ledger
from .parser import DEFAULT_BATCH_SIZE
from .references import InputDigest
from .rejects import rejects_of
from .result import Result
from .run import Applied, Night, Progress, ledger_result, send_rejects
from .summary import Summary

_TEXT = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_string_view,
    pa.types.is_binary_view,
)
_WHAT = {
    "type": "text (a string, categorical or enum column)",
    "client": "an integer or text",
    "tx": "an integer or text",
    "amount": "a decimal, an integer or text",
}


def _is_text(t: pa.DataType) -> bool:
    return any(test(t) for test in _TEXT)


def _readable(role: str, t: pa.DataType) -> bool:
    """Whether a column of type `t` can hold the `role` column (docs/rules.md §2.11)."""
    if pa.types.is_dictionary(t):
        return _readable(role, t.value_type)
    if _is_text(t) or pa.types.is_null(t):
        return True
    if role == "type":
        return False
    if pa.types.is_integer(t):
        return True
    return role == "amount" and pa.types.is_decimal(t)


@dataclass(frozen=True)
class Columns:
    """Which columns of a typed source the job reads, by role; `amount` None if absent."""

    type: str
    client: str
    tx: str
    amount: str | None
    # The columns read, in the source's order (a reject's raw row keeps it).
    order: tuple[str, ...]


def select_columns(schema: pa.Schema) -> Columns:
    """Match a typed source's columns as the CSV header is matched (docs/rules.md §2.2,
    §2.11), and check their types.

    Raises
    ------
    HeaderError
        A required column missing, a column named twice, or a type no value of which
        could be valid (a float, a list, a date...): exit status 65, naming the column.
    """
    positions, twice, missing = match_columns(schema.names)
    if twice is not None:
        role, first, second = twice
        raise HeaderError(
            f"the input names column {role!r} twice: "
            f"{schema.names[first]!r} and {schema.names[second]!r}"
        )
    found = {role: schema.names[i] for role, i in positions.items()}
    if missing:
        raise HeaderError(
            f"the input lacks required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: found {shown(', '.join(schema.names))}"
        )
    for role, name in found.items():
        t = schema.field(name).type
        if pa.types.is_floating(t):
            raise HeaderError(
                f"column {name!r} is a float ({t}): binary floats cannot hold "
                f"{'money exactly' if role == 'amount' else 'an id'} (docs/rules.md §2.11); "
                f"cast it to {'a decimal' if role == 'amount' else 'an integer'} or text"
            )
        if not _readable(role, t):
            raise HeaderError(
                f"column {name!r} has type {t}, which can never hold a valid {role}: "
                f"it must be {_WHAT[role]} (docs/rules.md §2.11)"
            )
    order = tuple(n for n in schema.names if n in found.values())
    return Columns(found["type"], found["client"], found["tx"], found.get("amount"), order)


# -- typing a column -------------------------------------------------------------------


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=np.bool_)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _inline_views(arr: pa.Array) -> np.ndarray | None:
    """The bytes of a view array from its first view on (16 bytes each: the length, then
    the value inline), when every value is inline (12 bytes or fewer, as every name of a
    type and most ids and amounts are); else None."""
    if not (pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type)):
        return None
    n = len(arr)
    buffer = arr.buffers()[1]
    if n == 0 or buffer is None:
        return None
    views = np.frombuffer(buffer, dtype=np.uint8)[arr.offset * _VIEW : (arr.offset + n) * _VIEW]
    lengths = views.view(np.int32)[:: _VIEW // 4]
    return views if int(lengths.max()) <= _INLINE else None


def _text_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(data, starts, ends, valid) of a text array: value i is data[starts[i]:ends[i]].
    Zero-copy where Arrow allows: the offsets of a string or binary array; the views
    themselves when every value is inline."""
    n = len(arr)
    views = _inline_views(arr)
    if views is not None:
        starts = np.arange(4, n * _VIEW, _VIEW, dtype=np.int64)
        lengths = views.view(np.int32)[:: _VIEW // 4]
        return views, starts, starts + lengths, _valid(arr)
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else None
    return _nonempty(data), offsets[:-1], offsets[1:], _valid(arr)


# A string view is 16 bytes: its length (int32), then up to 12 bytes inline.
_VIEW = 16
_INLINE = 12


def _nonempty(data: np.ndarray | None) -> np.ndarray:
    """The data buffer, or one byte when there is none (the kernels index into it)."""
    return data if data is not None and data.size else np.zeros(1, dtype=np.uint8)


def _by_text(arr: pa.Array, kernel, out: np.ndarray, *args) -> tuple[np.ndarray, np.ndarray]:
    """Run a text kernel over `arr` (text, or a dictionary of text) into `out`: (out, nul),
    nul[i] when value i holds a NUL byte. A null is an empty value."""
    if pa.types.is_dictionary(arr.type):
        # The dictionary's values once each, then every row by its index.
        words = arr.dictionary
        values, nul = _by_text(words, kernel, np.empty(len(words), out.dtype), *args)
        valid = _valid(arr.indices)
        out[:] = NONE if out.dtype == np.uint8 else -1
        rows_nul = np.zeros(len(arr), dtype=np.bool_)
        if len(words):
            at = arr.indices.fill_null(0).to_numpy(zero_copy_only=False)[valid]
            out[valid] = values[at]
            rows_nul[valid] = nul[at]
        return out, rows_nul
    data, starts, ends, valid = _text_buffers(arr)
    nul = np.empty(len(arr), dtype=np.bool_)
    kernel(data, starts, ends, valid, *args, out, nul)
    return out, nul


def _kinds(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    if pa.types.is_null(arr.type):
        return np.zeros(n, np.uint8), np.zeros(n, np.bool_)
    views = _inline_views(arr)
    if views is not None:
        # Polars' text: each name read from its view's two words, with no loop on bytes.
        kinds, nul = np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.bool_)
        view_kinds(views, views.view(np.uint64), _valid(arr), kinds, nul)
        return kinds, nul
    return _by_text(arr, text_kinds, np.empty(n, dtype=np.uint8))


def _ints(arr: pa.Array, valid: np.ndarray, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer values in low..high, else out of range: (in range, values as int64)."""
    values = (arr.fill_null(0) if arr.null_count else arr).to_numpy(zero_copy_only=False)
    ok = valid & (values >= low) & (values <= high)
    return ok, values


def _ids(arr: pa.Array, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, nul): ids in 0..limit, -1 where refused (docs/rules.md §2.6, §2.7, §2.11)."""
    n = len(arr)
    out = np.full(n, -1, dtype=np.int64)
    if pa.types.is_null(arr.type):
        return out, np.zeros(n, np.bool_)
    if pa.types.is_integer(arr.type):
        # Negative or past the limit: refused, as the CSV grammar refuses `-1` or `65536`.
        ok, values = _ints(arr, _valid(arr), 0, limit)
        out[ok] = values[ok]
        return out, np.zeros(n, np.bool_)
    if pa.types.is_dictionary(arr.type) and pa.types.is_integer(arr.type.value_type):
        return _ids(arr.dictionary_decode(), limit)
    return _by_text(arr, text_uints, out, limit)


_MAX_WHOLE = MAX_UNITS // UNITS_PER_WHOLE


def _amounts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(units, nul): amounts in units of 0.0001, -1 where refused (docs/rules.md §2.8)."""
    n = len(arr)
    out = np.full(n, -1, dtype=np.int64)
    t = arr.type
    if pa.types.is_null(t):
        return out, np.zeros(n, np.bool_)
    if pa.types.is_dictionary(t) and not _is_text(t.value_type):
        return _amounts(arr.dictionary_decode())
    if pa.types.is_integer(t):
        # Whole units of the currency: 2 is 2.0000.
        ok, values = _ints(arr, _valid(arr), 1, _MAX_WHOLE)
        out[ok] = values[ok].astype(np.int64) * UNITS_PER_WHOLE
        return out, np.zeros(n, np.bool_)
    if pa.types.is_decimal(t):
        if t.scale < 0:
            arr = arr.cast(pa.decimal128(38, 0), safe=False) if t.precision - t.scale <= 38 else arr
        if pa.types.is_decimal32(arr.type) or pa.types.is_decimal64(arr.type):
            arr = arr.cast(pa.decimal128(38, arr.type.scale))
        if pa.types.is_decimal128(arr.type) and 0 <= arr.type.scale <= SCALE:
            return _decimal_units(arr, out), np.zeros(n, np.bool_)
        # More than four places (exact only if the extra places are zeros), or a
        # decimal256: read as its text, with the CSV grammar.
        arr = arr.cast(pa.large_string())
    return _by_text(arr, text_amounts, out)


def _decimal_units(arr: pa.Array, out: np.ndarray) -> np.ndarray:
    """A decimal128 of scale at most 4 as units: its unscaled value times 10^(4 - scale),
    positive and at most MAX_UNITS, else -1. The bits, never a float."""
    factor = 10 ** (SCALE - arr.type.scale)
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    words = words[2 * arr.offset : 2 * (arr.offset + len(arr))].reshape(-1, 2)
    decimal_units(words, factor, MAX_UNITS // factor, _valid(arr), out)
    return out


# -- a typed batch ------------------------------------------------------------------------


@dataclass
class TypedBatch:
    """Rows of a typed source, typed as the CSV parser types lines (engine/parser.py's
    ParsedBatch): what the ledger, the events and a nightly state take."""

    rows: pa.RecordBatch  # the columns the job reads, as the source gave them
    columns: Columns
    first_line: int  # the 1-based row number of the first row
    kinds: np.ndarray
    clients: np.ndarray
    txs: np.ndarray
    amounts: np.ndarray
    status: np.ndarray
    lines: np.ndarray | None = None  # per row, when rows come from several files
    files: pa.Array | None = None  # per row, the file's path, likewise

    def line_numbers(self, rows: np.ndarray) -> np.ndarray:
        if self.lines is not None:
            return self.lines[rows]
        return rows + self.first_line

    def raw(self, rows: np.ndarray) -> pa.Array:
        """The given rows written as CSV lines: the columns the job reads, in the
        source's order, each as its text (a null empty), quoted where CSV needs it
        (docs/rules.md §2.11)."""
        at = pa.array(rows, pa.int64())
        fields = [
            _as_csv_field(_takeable(self.rows.column(name)).take(at)) for name in self.columns.order
        ]
        comma = pa.scalar(b",", pa.large_binary())
        if len(fields) == 1:
            return fields[0]
        return pc.binary_join_element_wise(*fields, comma)


def _takeable(arr: pa.Array) -> pa.Array:
    """`arr`, views cast to plain text (Arrow's take has no kernel for views)."""
    if pa.types.is_dictionary(arr.type):
        return _takeable(arr.dictionary).take(arr.indices)
    if pa.types.is_string_view(arr.type):
        return arr.cast(pa.large_string())
    if pa.types.is_binary_view(arr.type):
        return arr.cast(pa.large_binary())
    return arr


_QUOTE = pa.scalar(b'"', pa.large_binary())
_EMPTY = pa.scalar(b"", pa.large_binary())


def _as_csv_field(arr: pa.Array) -> pa.Array:
    """Each value as a CSV field: its text, quoted (inner quotes doubled) when it holds a
    comma, a quote or a line end, or starts or ends with a space or tab; null as empty."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        return pa.array([b""] * len(arr), pa.large_binary())
    if not _is_text(arr.type):
        arr = arr.cast(pa.large_string())
    arr = arr.cast(pa.large_binary()).fill_null(_EMPTY)
    needs = pc.match_substring_regex(arr, '^[ \t]|[ \t]$|[,"\r\n]')
    quoted = pc.binary_join_element_wise(
        _QUOTE, pc.replace_substring(arr, '"', '""'), _QUOTE, _EMPTY
    )
    return pc.if_else(needs, quoted, arr)


def type_batch(rows: pa.RecordBatch, columns: Columns, first_line: int) -> TypedBatch:
    """Type and check a batch of rows (docs/rules.md §2.9, §2.11): one entry per row, as
    engine/parser.py's Parser gives for lines. A row's checks run in the CSV's order: a
    NUL byte in a text value (`malformed_row`), the type, the client, the tx, and for
    deposits and withdrawals the amount."""
    n = rows.num_rows
    kinds, nul = _kinds(rows.column(columns.type))
    clients, nul_c = _ids(rows.column(columns.client), MAX_CLIENT)
    txs, nul_t = _ids(rows.column(columns.tx), MAX_TX)
    if columns.amount is not None:
        amounts, nul_a = _amounts(rows.column(columns.amount))
    else:
        amounts, nul_a = np.full(n, -1, dtype=np.int64), np.zeros(n, np.bool_)
    moves = (kinds == DEPOSIT) | (kinds == WITHDRAWAL)
    status = np.zeros(n, dtype=np.uint8)
    # Assigned from the last check to the first, so the first that fails stays.
    status[moves & (amounts < 0)] = INVALID_AMOUNT
    status[txs < 0] = INVALID_TX
    status[clients < 0] = INVALID_CLIENT
    status[kinds == NONE] = UNKNOWN_TYPE
    status[nul | nul_c | nul_t | nul_a] = MALFORMED_ROW
    bad = status != APPLIED
    kinds[bad] = NONE
    clients[bad] = 0
    txs[bad] = 0
    amounts[bad | ~moves] = 0
    return TypedBatch(
        rows,
        columns,
        first_line,
        kinds,
        clients.astype(np.uint16),
        txs.astype(np.uint32),
        amounts,
        status,
    )


# -- the run ------------------------------------------------------------------------------


def referenced_ids(source: TypedSource, columns: Columns, batch_size: int) -> tuple:
    """The first pass: the set (kernels/bitmaps.py) of the tx ids that disputes, resolves
    and chargebacks name, from the `type` and `tx` columns alone.

    It may hold more ids than the rules will ask about (the ledger then keeps a slot it
    does not need), never fewer: a Polars source is filtered by Polars itself, with
    Unicode lower-casing (which folds every name that ASCII folding does, and a few
    more) and a lenient parse of text ids."""
    referenced = new_set()
    if source.lazy is not None:
        for ids in _referenced_by_polars(source.lazy, columns, batch_size, source.name):
            referenced = set_bits(referenced, ids)
        return referenced
    for rows in source.batches([columns.type, columns.tx], batch_size):
        kinds, _ = _kinds(rows.column(columns.type))
        txs, _ = _ids(rows.column(columns.tx), MAX_TX)
        pick = (kinds >= DISPUTE) & (kinds <= CHARGEBACK) & (txs >= 0)
        if pick.any():
            referenced = set_bits(referenced, txs[pick].astype(np.uint32))
    return referenced


def _referenced_by_polars(
    lf: Any, columns: Columns, batch_size: int, name: str
) -> Iterator[np.ndarray]:
    """The referenced tx ids of a LazyFrame, batch by batch: Polars reads only the two
    columns and keeps only the rows that may reference (projection and predicate
    pushed down into the scan)."""
    import polars as pl

    schema = lf.collect_schema()
    kind = _as_text(pl.col(columns.type), schema[columns.type])
    if kind is None:
        return
    referencing = kind.str.strip_chars(" \t").str.to_lowercase().is_in(_REFERENCING_NAMES)
    tx = pl.col(columns.tx)
    if not schema[columns.tx].is_integer():
        text = _as_text(tx, schema[columns.tx])
        if text is None:
            return
        digits = text.str.strip_chars(" \t")
        # Leading zeros go first, so that a long run of them still parses ("007" is 7).
        short = digits.str.strip_chars_start("0")
        tx = pl.when((digits.str.len_bytes() > 0) & (short == "")).then(0).otherwise(short)
    ids = tx.cast(pl.UInt32, strict=False).alias("tx")
    query = lf.filter(referencing).select(ids).drop_nulls()
    try:
        for frame in query.collect_batches(chunk_size=batch_size, maintain_order=False):
            yield frame.get_column("tx").to_numpy()
    except Exception as e:
        if isinstance(e, (MemoryError, KeyboardInterrupt)):
            raise
        raise InputError(f"cannot read input {name}: {type(e).__name__}: {e}") from None


_REFERENCING_NAMES = ["dispute", "resolve", "chargeback"]


def _as_text(expr: Any, dtype: Any) -> Any:
    """`expr` as a Polars string, or None for a column with no text (all nulls)."""
    import polars as pl

    if dtype == pl.Null:
        return None
    if dtype == pl.String:
        return expr
    # Categorical, Enum; Binary (bytes that are not UTF-8 name no kind: null).
    return expr.cast(pl.String, strict=False)


def run_typed(
    source: TypedSource,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_to: TableWriter | None = None,
    events_to: TableWriter | None = None,
    keep_rejects: bool = True,
    progress: Progress | None = None,
    night: Night | None = None,
) -> Result:
    """The run over a typed source, in this process (see accounts_job.process)."""
    started = time.perf_counter()
    columns = select_columns(source.schema)
    source.prepare(list(columns.order))
    digest = None
    if night is not None:
        # Exactly once by content (docs/rules.md §7): a typed file's content is its bytes.
        digest = InputDigest()
        source.hash_into(digest.raw)
    summary = Summary.for_input(source.name, source.size, 0)
    summary.inputs[0]["form"] = source.form
    referenced = referenced_ids(source, columns, batch_size)
    if progress:
        # Rows are not bytes: each pass reports the source's bytes once it is done.
        progress("references", source.size)
    ledger = Ledger(referenced)
    if night is not None:
        assert digest is not None
        night.start([(source.name, digest)], ledger)  # AlreadyApplied if it was
    kept: list[pa.Table] = []
    line = 1
    lines = _FileLines() if source.file_column else None
    try:
        for rows in source.batches(list(columns.order), batch_size):
            files = None
            if source.file_column is not None:
                files = rows.column(source.file_column)
                rows = rows.drop_columns([source.file_column])
            batch = type_batch(rows, columns, line)
            if lines is not None and files is not None:
                batch.lines, batch.files = lines.number(files), files
            line += rows.num_rows
            ledger.apply(batch.kinds, batch.clients, batch.txs, batch.amounts, batch.status)
            if rejects_to is not None or keep_rejects:
                idx = np.flatnonzero(batch.status != APPLIED)
                rejects = rejects_of(batch.line_numbers(idx), batch.status[idx], batch.raw(idx))
                send_rejects(_with_file(rejects, batch, idx, rejects_to), rejects_to, kept)
            if events_to is not None:
                events = events_table(batch)  # type: ignore[arg-type]
                if batch.files is not None:
                    rows_of = np.flatnonzero(batch.status == APPLIED)
                    # A chargeback's two events share its row.
                    twice = 1 + (batch.kinds[rows_of] == CHARGEBACK).astype(np.int64)
                    events = _with_file(events, batch, np.repeat(rows_of, twice), events_to)
                events_to.write(events)
            if night is not None:
                night.record(batch)  # type: ignore[arg-type]
        if progress:
            progress("rules", source.size)
        if night is not None:
            assert digest is not None
            rows = int(ledger.outcomes.sum())
            night.finish(ledger, [Applied(source.name, digest, rows, source.size)])
    except BaseException:
        if night is not None:
            night.abort()
        raise
    finally:
        source.close()
    # Kept rejects are the Result's only when they were neither streamed nor declined.
    keep = rejects_to is None and keep_rejects
    return ledger_result(summary, started, ledger, kept if keep else None)


def _with_file(
    table: pa.Table, batch: TypedBatch, rows: np.ndarray, writer: TableWriter | None
) -> pa.Table:
    """`table` with its rows' file first, when the rows come from several files
    (and a writer of the caller's own takes the column)."""
    if batch.files is None or (writer is not None and "file" not in writer.schema.names):
        return table
    names = _takeable(batch.files).take(pa.array(rows, pa.int64())).cast(pa.string())
    return table.add_column(0, FILE_FIELD, names)


class _FileLines:
    """Row numbers within each file, for rows from several files in file order."""

    def __init__(self) -> None:
        self.file: str | None = None
        self.done = 0  # rows of `file` before this batch

    def number(self, files: pa.Array) -> np.ndarray:
        names = files.to_numpy(zero_copy_only=False)
        n = names.size
        out = np.empty(n, dtype=np.int64)
        if n == 0:
            return out
        # Where a new file starts within the batch.
        change = np.flatnonzero(names[1:] != names[:-1]) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [n]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            first = self.done + 1 if names[s] == self.file else 1
            out[s:e] = np.arange(first, first + e - s)
            self.file, self.done = names[s], first + e - s - 1
        return out

"""Typed sources: Parquet and Arrow files, Polars frames, Arrow tables and streams.

A typed source hands the job Arrow record batches of the columns it asks for, in the
source's row order, a bounded number of rows at a time (docs/rules.md §2.11). It is read
twice, as a CSV is: once for the `type` and `tx` columns only (the first pass,
engine/references.py's job), then for the columns the rules read. So:

- a file, a folder or a glob of Parquet files (a hive-partitioned dataset included) and
  an Arrow IPC file are scanned lazily by Polars, only the columns asked for;
- a Polars LazyFrame or DataFrame is scanned lazily too, its query run once per pass;
- a pyarrow Table is sliced;
- a stream that can be read only once (a pyarrow RecordBatchReader, or any object with
  ``__arrow_c_stream__``: DuckDB and pandas results among them) is first spooled, its
  batches as they come, to a temporary Arrow IPC file of the columns the job reads, then
  read from there: memory stays flat, the disk holds the copy while the run lasts.

Polars is imported only when a typed source is opened: the CSV path never imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import FormError, InputError
from .source import is_pattern

# Magic bytes, at the start of the file (docs/rules.md §2.11).
PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"
FEATHER1_MAGIC = b"FEA1"
_HIDDEN = (".", "_")
# Bytes read at a time while hashing a file for a nightly state.
_HASH_READ = 1 << 20


# What process() takes besides a path: a Polars LazyFrame or DataFrame, a pyarrow Table,
# RecordBatch or RecordBatchReader, or any object with __arrow_c_stream__.
TypedInput = Any


def sniff(path: str | Path) -> str | None:
    """The format of the file at `path` by its first bytes: "parquet", "arrow" (Arrow IPC,
    also Feather v2), "feather1", or None (anything else: CSV, read as text).

    >>> sniff(__file__) is None
    True
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a pipe or a device is read once, by the CSV path (§2.10)
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None  # not a readable file: the CSV path says why (docs/rules.md §6)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(ARROW_MAGIC):
        return "arrow"
    if head.startswith(FEATHER1_MAGIC):
        return "feather1"
    return None


def _parquet_files(source: str) -> list[Path] | None:
    """The Parquet files of a folder (every file under it, hive partitions included) or
    of a glob, in sorted path order; None when `source` is neither, or holds no Parquet
    file. A folder or glob that holds Parquet files and others is refused (FormError):
    reading the Parquet files alone would leave the others' rows out without a word."""
    if os.path.isdir(source):
        found = []
        for root, folders, names in os.walk(source):
            # Names starting with . or _ are a writer's own: _SUCCESS, .crc files, the
            # _temporary folder of a write still under way.
            folders[:] = [f for f in folders if not f.startswith(_HIDDEN)]
            found += [Path(root, name) for name in names if not name.startswith(_HIDDEN)]
    elif not os.path.exists(source) and is_pattern(source):
        import glob

        found = [Path(p) for p in glob.glob(source, recursive=True) if os.path.isfile(p)]
    else:
        return None
    kinds = {p: sniff(p) for p in found}
    files = sorted(p for p, kind in kinds.items() if kind == "parquet")
    if not files:
        return None  # nothing to scan: the CSV path reads it, or says why it is no input
    others = sorted(p for p, kind in kinds.items() if kind != "parquet")
    if others:
        raise FormError(
            f"{source} holds Parquet files and {len(others):,} other file(s), such as "
            f"{others[0]}: a folder or glob of typed rows holds Parquet files only "
            "(docs/rules.md §2.11)"
        )
    return files


@dataclass
class TypedSource:
    """Rows with typed columns, read in Arrow batches (see the module's docstring).

    Attributes
    ----------
    name : str
        What the summary and the state call it: a path, or a description of an object.
    schema : pyarrow.Schema
        Every column of the source (the job picks its own, docs/rules.md §2.11).
    files : list of Path
        The files it reads, in order: what a nightly state hashes (docs/rules.md §7).
        Empty for an object in memory.
    size : int
        Bytes of its files; 0 for an object in memory.
    file_column : str or None
        The name of a column the batches carry with the path of each row's file, when
        the rows come from several files.
    """

    name: str
    schema: pa.Schema
    scan: Callable[[list[str], int], Iterator[pa.RecordBatch]]
    files: list[Path] = field(default_factory=list)
    size: int = 0
    file_column: str | None = None
    _cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _prepare: Callable[[list[str]], None] | None = None
    lazy: Any = None  # the Polars LazyFrame it scans, if it is one
    # What the summary names its form (docs/rules.md §5.4): parquet, arrow, feather,
    # frame, table or stream.
    form: str = "stream"

    def prepare(self, columns: list[str]) -> None:
        """Called once, before any pass, with every column the job will read: a stream
        that can be read only once is copied then (the module's docstring)."""
        if self._prepare is not None:
            self._prepare(columns)

    def batches(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        """Batches of the given columns (and the file column, if any), every row in the
        source's order, at most about `batch_size` rows each."""
        return self.scan(columns, batch_size)

    def hash_into(self, sha: hashlib._Hash) -> None:
        """Feed the bytes of every file, in order, to `sha` (the content a nightly state
        knows the source by)."""
        for path in self.files:
            try:
                with open(path, "rb") as f:
                    while chunk := f.read(_HASH_READ):
                        sha.update(chunk)
            except OSError as e:
                raise InputError(f"cannot read input {path}: {e.strerror or e}") from None

    def close(self) -> None:
        """Remove what the source made for itself (a spooled stream's file)."""
        self._cleanup.close()


def is_typed_object(source: object) -> bool:
    """Whether `source` is a frame, a table or an Arrow stream rather than a path."""
    return not isinstance(source, (str, Path)) and (
        hasattr(source, "__arrow_c_stream__")
        or isinstance(source, (pa.Table, pa.RecordBatch, pa.RecordBatchReader))
        or type(source).__module__.split(".")[0] == "polars"
    )


def typed_source(source: object) -> TypedSource | None:
    """The typed source `source` names or is, or None for a CSV path (or a URL).

    Parameters
    ----------
    source : str, Path, polars.LazyFrame, polars.DataFrame, pyarrow.Table,
             pyarrow.RecordBatchReader or an object with ``__arrow_c_stream__``
        A path is typed when its content says so (sniff), or when it is a folder or a
        glob of Parquet files.

    Raises
    ------
    InputError
        A file Polars or Arrow cannot read.
    """
    if isinstance(source, (str, Path)):
        text = str(source)
        files = _parquet_files(text)
        if files is not None:
            return _formed(_parquet(text, files, dataset=True), "parquet")
        kind = sniff(text)
        if kind is None:
            return None
        if kind == "parquet":
            return _formed(_parquet(text, [Path(text)], dataset=False), "parquet")
        if kind == "arrow":
            return _formed(_ipc(text), "arrow")
        table = _reading(text, lambda: _feather_v1(text))
        return _formed(_table(table, text, [Path(text)]), "feather")
    if not is_typed_object(source):
        raise TypeError(
            f"process() takes a path, a Polars frame, a pyarrow Table or RecordBatchReader, "
            f"or an object with __arrow_c_stream__; not {type(source).__name__}"
        )
    import polars as pl

    if isinstance(source, pl.DataFrame):
        return _formed(_lazy(source.lazy(), f"<polars.DataFrame {source.height:,} rows>"), "frame")
    if isinstance(source, pl.LazyFrame):
        return _formed(_lazy(source, "<polars.LazyFrame>"), "frame")
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        return _formed(_table(source, f"<pyarrow.Table {source.num_rows:,} rows>", []), "table")
    return _spooled(source)


def _formed(source: TypedSource, form: str) -> TypedSource:
    source.form = form
    return source


def _feather_v1(path: str) -> pa.Table:
    """A Feather v1 file, memory-mapped (pyarrow reads it whole; v1 has no batches)."""
    import warnings

    import pyarrow.feather as feather

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # v1 is deprecated, still read
        return feather.read_table(path, memory_map=True)


def _reading(name: str, read: Callable[[], Any]) -> Any:
    """`read()`, with a failure to read the file as an InputError naming it."""
    try:
        return read()
    except OSError as e:
        raise InputError(f"cannot read input {name}: {e}") from None
    except Exception as e:  # Polars' and Arrow's own errors for a damaged file
        raise InputError(f"cannot read input {name}: {type(e).__name__}: {e}") from None


def _schema_of(lf: Any) -> pa.Schema:
    """A LazyFrame's columns as Arrow types, without running its query."""
    import polars as pl

    return pl.DataFrame(schema=lf.collect_schema()).to_arrow().schema


def _lazy(
    lf: Any,
    name: str,
    files: list[Path] | None = None,
    file_column: str | None = None,
    schema: pa.Schema | None = None,
) -> TypedSource:
    """A source over a Polars LazyFrame: each pass runs its query in Polars' streaming
    engine, which hands the batches over in order (maintain_order)."""

    import polars as pl

    def scan(columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        wanted = [*columns, file_column] if file_column else columns
        chunks = lf.select(wanted).collect_batches(chunk_size=batch_size, maintain_order=True)
        try:
            for frame in chunks:
                # Text as string views, as Polars holds it: no copy (engine/typed.py reads
                # the views).
                yield from frame.to_arrow(compat_level=pl.CompatLevel.newest()).to_batches()
        except Exception as e:
            if isinstance(e, (MemoryError, KeyboardInterrupt)):
                raise
            raise InputError(f"cannot read input {name}: {type(e).__name__}: {e}") from None

    files = files or []
    if schema is None:
        schema = _reading(name, lambda: _schema_of(lf))
    size = sum(p.stat().st_size for p in files)
    return TypedSource(name, schema, scan, files, size, file_column, lazy=lf)


# The column the scan of several files adds with each row's file (a name no source uses).
FILE_COLUMN = "__accounts_job_file__"


def _parquet(name: str, files: list[Path], dataset: bool) -> TypedSource:
    """Parquet files, scanned in the order given; `dataset`: a folder or a glob, whose
    key=value folders (a hive-partitioned dataset) become columns."""
    import polars as pl

    options: dict[str, Any] = {"hive_partitioning": dataset}
    if dataset:
        options["include_file_paths"] = FILE_COLUMN
    paths = [str(p) for p in files]
    lf = _reading(name, lambda: pl.scan_parquet(paths, **options))
    schema = _reading(name, lambda: _schema_of(lf))
    if dataset:
        schema = schema.remove(schema.get_field_index(FILE_COLUMN))
    return _lazy(lf, name, files, FILE_COLUMN if dataset else None, schema)


def _ipc(name: str) -> TypedSource:
    import polars as pl

    lf = _reading(name, lambda: pl.scan_ipc(name))
    return _lazy(lf, name, [Path(name)])


def _table(table: pa.Table, name: str, files: list[Path]) -> TypedSource:
    def scan(columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        yield from table.select(columns).to_batches(max_chunksize=batch_size)

    size = sum(p.stat().st_size for p in files)
    return TypedSource(name, table.schema, scan, files, size)


def _spooled(stream: Any) -> TypedSource:
    """A one-time stream, copied batch by batch to a temporary Arrow IPC file first."""
    try:
        reader = pa.RecordBatchReader.from_stream(stream)
    except Exception as e:
        raise InputError(
            f"cannot read {type(stream).__name__} as an Arrow stream: {type(e).__name__}: {e}"
        ) from None
    name = f"<{type(stream).__name__} Arrow stream>"
    cleanup = contextlib.ExitStack()
    schema = reader.schema
    spooled: list[str] = []  # the temporary file, once made

    def copy(columns: list[str]) -> None:
        fd, spool = tempfile.mkstemp(prefix="accounts-job-", suffix=".arrow")
        os.close(fd)
        cleanup.callback(lambda: Path(spool).unlink(missing_ok=True))
        spooled.append(spool)
        picked = pa.schema([schema.field(c) for c in columns])
        try:
            with pa.OSFile(spool, "wb") as sink, pa.ipc.new_file(sink, picked) as out:
                for batch in reader:
                    out.write_batch(batch.select(columns))
        except OSError as e:
            raise InputError(f"cannot spool {name} to {spool}: {e}") from None

    def scan(columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        if not spooled:
            raise AssertionError("a spooled stream is read before prepare()")
        with pa.OSFile(spooled[0], "rb") as f:
            ipc = pa.ipc.open_file(f)
            for i in range(ipc.num_record_batches):
                batch = ipc.get_batch(i).select(columns)
                for lo in range(0, batch.num_rows, batch_size):
                    yield batch.slice(lo, batch_size)

    return TypedSource(name, schema, scan, [], 0, None, cleanup, copy)

"""Writing results: accounts and rejects, as CSV or Parquet, whole or not at all.

Every file is written to a temporary name in its own folder and renamed into place only
when the run succeeded, so a reader (or the next night's job) never sees half a file.
The temporary file is created before any work starts, so an unwritable path fails in a
second, not after an hour of reading.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Union

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..errors import OutputError, UsageError
from .rawtext import escape_array
from .schemas import EVENTS_ARROW, REJECTS_CSV_ARROW, REJECTS_FILE_ARROW
from .source import is_url, upload

if TYPE_CHECKING:
    import polars as pl

# The accounts as the engine makes them (Arrow) or as the API returns them (Polars).
Accounts = Union[pa.Table, "pl.DataFrame"]

Format = Literal["csv", "parquet"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def format_for(path: str | Path, override: str | None = None) -> Format:
    """The output format: `override` if given, else from the file suffix."""
    if override is not None:
        if override not in ("csv", "parquet"):
            raise UsageError(f"unknown format {override!r}: use csv or parquet")
        return override  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(
            f"cannot tell the format of {path} from its suffix: "
            "name it .csv or .parquet, or pass --format"
        )
    return _SUFFIXES[suffix]


class AtomicFile:
    """A temporary file beside `path`, renamed onto it by `commit`, removed by `discard`.

    A URL `path` (io/source.py) gets a local temporary file instead, uploaded by `commit`."""

    def __init__(self, path: str | Path) -> None:
        self.url = str(path) if is_url(path) else None
        if self.url is not None:
            fd, tmp = tempfile.mkstemp(prefix=".accounts-job.", suffix=".tmp")
            os.close(fd)
            self.path, self.tmp = Path(tmp), Path(tmp)
            return
        self.path = Path(path)
        folder = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        except FileNotFoundError:
            # The folder may exist and still refuse new files (/proc): say which it is.
            if folder.is_dir():
                raise OutputError(
                    f"cannot write {path}: cannot create a file in {folder}"
                ) from None
            raise OutputError(f"cannot write {path}: folder {folder} does not exist") from None
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        os.close(fd)
        if self.path.is_dir():
            os.unlink(tmp)
            raise OutputError(f"cannot write {path}: it is a directory")
        self.tmp = Path(tmp)

    def commit(self) -> None:
        if self.url is not None:
            try:
                upload(self.tmp, self.url)
            finally:
                self.discard()
            return
        try:
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _arrow(frame: pa.Table | pl.DataFrame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else frame.to_arrow()


def write_csv(table: pa.Table, out: IO[bytes] | str | Path, header: bool = True) -> None:
    """CSV as docs/rules.md §5 has it: a plain header line, a Decimal(38, 4) with all four
    places (1.5000, -0.2500), booleans as true/false, quotes only where needed."""
    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
    if isinstance(out, (str, Path)):
        with open(out, "wb") as f:
            write_csv(table, f, header)
        return
    if header:
        out.write((",".join(table.column_names) + "\n").encode())
    pcsv.write_csv(table, out, options)


def write_accounts(accounts: Accounts, path: str | Path | None, fmt: Format | None = None) -> None:
    """Write an accounts table (docs/rules.md §5.1), whole or not at all.

    Parameters
    ----------
    accounts : pyarrow.Table or polars.DataFrame
        The accounts, as ``Result.accounts_table`` or ``Result.accounts`` hold them.
    path : str, Path or None
        Where to write; the file appears whole, by rename. None writes CSV to stdout.
    fmt : {"csv", "parquet"}, optional
        The format; by default from the suffix of `path` (.csv, .parquet, .pq).

    Raises
    ------
    UsageError
        The format cannot be told from the suffix, or is unknown.
    OutputError
        The path cannot be written; nothing is left behind.
    """
    if path is None:
        sys.stdout.flush()
        write_csv(_arrow(accounts), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    fmt = fmt or format_for(path)
    target = AtomicFile(path)
    try:
        write_accounts_to(accounts, target.tmp, fmt)
    except BaseException:
        target.discard()
        raise
    target.commit()


def write_accounts_to(accounts: Accounts, path: Path, fmt: Format) -> None:
    if fmt == "csv":
        write_csv(_arrow(accounts), path)
    else:
        pq.write_table(_arrow(accounts), path)


class TableWriter:
    """Streams a table to a CSV or Parquet file batch by batch, so rows never pile up in
    memory; the file appears, whole, on `commit`, and `discard` removes every trace.

    Parameters
    ----------
    path : str or Path
        The file to write; its temporary twin is created at once beside it, so a path
        that cannot be written fails before any work.
    schema : pyarrow.Schema
        The columns every batch is cast to.
    fmt : {"csv", "parquet"}, optional
        By default from the suffix of `path`.
    """

    def __init__(self, path: str | Path, schema: pa.Schema, fmt: Format | None = None) -> None:
        self.format = fmt or format_for(path)
        self.schema = schema
        self.file = AtomicFile(path)
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None
        if self.format == "parquet":
            self._parquet = pq.ParquetWriter(self.file.tmp, schema)
        else:
            self._csv = open(self.file.tmp, "wb")  # noqa: SIM115 - closed in close()
            self._csv.write((",".join(schema.names) + "\n").encode())

    def write(self, batch: pa.Table | pl.DataFrame) -> None:
        """Append a batch with the writer's columns (as the engine or the API has them)."""
        table = _arrow(batch).cast(self.schema)
        if table.num_rows == 0:
            return
        if self._parquet is not None:
            self._parquet.write_table(table)
        else:
            assert self._csv is not None
            write_csv(table, self._csv, header=False)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None

    def commit(self) -> None:
        self._close()
        self.file.commit()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        self.file.discard()


class RejectsWriter(TableWriter):
    """A file of rejected rows (docs/rules.md §5.2): line, reason, raw.

    Pass one (or a path) as ``process(..., rejects_to=...)``: the job writes it batch by
    batch and commits or discards it with its other outputs. `raw` is the line's exact
    bytes: a plain binary column in Parquet, so readers that predate large types read it
    too; escaped text in CSV (io/rawtext.py: never a spreadsheet formula, and
    ``unescape_raw`` gives the bytes back).
    """

    def __init__(self, path: str | Path, fmt: Format | None = None) -> None:
        fmt = fmt or format_for(path)
        super().__init__(path, REJECTS_CSV_ARROW if fmt == "csv" else REJECTS_FILE_ARROW, fmt)

    def write(self, batch: pa.Table | pl.DataFrame) -> None:
        """Append a batch of rejects (line, reason, raw as bytes)."""
        table = _arrow(batch)
        if self.format == "csv":
            at = table.column_names.index("raw")
            table = table.set_column(at, "raw", escape_array(table.column(at)))
        super().write(table)


class EventsWriter(TableWriter):
    """A file of the event stream (docs/rules.md §5.3): line, client, tx, event, amount.

    Pass one (or a path) as ``process(..., events_to=...)``: the job writes it batch by
    batch and commits or discards it with its other outputs.
    """

    def __init__(self, path: str | Path, fmt: Format | None = None) -> None:
        super().__init__(path, EVENTS_ARROW, fmt)

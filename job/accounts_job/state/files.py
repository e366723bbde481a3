"""The files of a state folder besides its manifest: balances, claimed ids, ledgers.

Open formats (Parquet), each with its schema here. The ledgers hold many rows a night and
are read in part, by row group (state/folder.py); `LedgerWriter` streams tonight's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..codes import MAX_TX
from ..engine.ledger import Ledger
from ..errors import StateError
from ..io.schemas import DECIMAL
from ..kernels.bitmaps import slot_txs
from ..kernels.rules import CHARGED_BACK, DEPOSITED, DISPUTED, EMPTY, RESOLVED, WITHDRAWN

STATE_NAMES = {
    DEPOSITED: "deposited",
    DISPUTED: "disputed",
    RESOLVED: "resolved",
    CHARGED_BACK: "charged_back",
    WITHDRAWN: "withdrawn",
}
_STATE_LIST = [STATE_NAMES.get(code, "") for code in range(max(STATE_NAMES) + 1)]
STATE_TYPE = pa.dictionary(pa.int8(), pa.string())

BALANCES_SCHEMA = pa.schema(
    [("client", pa.uint16()), ("available", DECIMAL), ("held", DECIMAL), ("locked", pa.bool_())]
)
CLAIMED_SCHEMA = pa.schema([("word", pa.uint32()), ("bits", pa.uint64())])
# The ledgers hold many rows a night: the amount as int64 units of 0.0001 (exact, half
# the bytes of a decimal), tx ids delta-encoded (they mostly count up), and dictionary
# encoding only where it pays (the state); this writes several times faster than the
# defaults and reads back faster too.
LEDGER_SCHEMA = pa.schema(
    [
        ("tx", pa.uint32()),
        ("client", pa.uint16()),
        pa.field("amount_units", pa.int64(), metadata={"unit": "0.0001"}),
        ("state", STATE_TYPE),
    ]
)
LEDGER_ROW_GROUP = 1 << 17
WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_page_checksum": True}
_LEDGER_OPTIONS: dict[str, Any] = {
    **WRITE_OPTIONS,
    "use_dictionary": ["state"],
    "column_encoding": {"tx": "DELTA_BINARY_PACKED"},
}


def open_file(path: Path, flags: int = os.O_RDONLY) -> BinaryIO:
    """A state file, opened without following a symbolic link: the state's files are its
    own, so a link planted where one should be (to truncate, or to feed a file from
    elsewhere) is refused, not followed. With O_CREAT the file must be new (O_EXCL), so
    a planted hard link is not written through either. StateError for a link or for
    what is not a regular file; OSError for the rest."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StateError(
                f"state file {path} is a symbolic link: a state folder holds none"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"state file {path} is not a regular file")
    return os.fdopen(fd, "wb" if flags & (os.O_WRONLY | os.O_RDWR) else "rb", buffering=0)


def create_file(path: Path) -> BinaryIO:
    """A new state file (see open_file); a leftover of that name is removed first."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def sync_and_close(f: BinaryIO) -> None:
    """Flush a state file to disk and close it."""
    try:
        f.flush()
        os.fsync(f.fileno())
    finally:
        f.close()


def file_sha256(f: BinaryIO) -> str:
    """The SHA-256 of an open file's content (read in large pieces from its start;
    hashing releases the GIL)."""
    h = hashlib.sha256()
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    f.seek(0)
    while got := f.readinto(buf):
        h.update(view[:got])
    return h.hexdigest()


def footer_sha256(f: BinaryIO) -> str:
    """The SHA-256 of an open Parquet file's footer: its metadata, length and magic.
    ValueError if the file's end is not a Parquet footer (its length field damaged)."""
    size = os.fstat(f.fileno()).st_size
    if size < 12:
        raise ValueError("too short for a Parquet file")
    f.seek(size - 8)
    tail = f.read(8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length > size - 12:
        raise ValueError("its footer is not a Parquet footer")
    f.seek(size - 8 - length)
    return hashlib.sha256(f.read(length + 8)).hexdigest()


class LedgerWriter:
    """Tonight's ledger file: accepted deposits and withdrawals, streamed batch by batch,
    then the earlier entries whose state tonight changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = create_file(path)
        try:
            self._writer = pq.ParquetWriter(self._file, LEDGER_SCHEMA, **_LEDGER_OPTIONS)
        except BaseException:
            self._file.close()
            path.unlink()
            raise
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, tx: np.ndarray, client: np.ndarray, amount: np.ndarray, state: np.ndarray):
        if tx.size == 0:
            return
        self._pending.append(_ledger_table(tx, client, amount, state))
        self._pending_rows += tx.size
        if self._pending_rows >= LEDGER_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=LEDGER_ROW_GROUP)
            self._pending, self._pending_rows = [], 0

    def close(self, ledger: Ledger, initial_state: np.ndarray) -> None:
        """Append every slot whose state this run changed from what it found, then close.

        New entries are already written with their first state; a later change (tonight's
        deposit disputed tonight, or an earlier night's) is a row after it."""
        self._flush()
        txs = slot_txs(ledger.referenced, ledger.slot_state.size)
        first = np.where(ledger.slot_state == WITHDRAWN, WITHDRAWN, DEPOSITED)
        base = np.where(initial_state == EMPTY, first, initial_state)
        changed = np.flatnonzero((ledger.slot_state != base) & (ledger.slot_state != EMPTY))
        if changed.size:
            # txs are in increasing order, so the update rows come sorted by tx.
            self._writer.write_table(
                _ledger_table(
                    txs[changed],
                    ledger.slot_client[changed],
                    ledger.slot_amount[changed],
                    ledger.slot_state[changed],
                ),
                row_group_size=LEDGER_ROW_GROUP,
            )
        self._writer.close()
        sync_and_close(self._file)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _ledger_table(tx, client, amount, state) -> pa.Table:
    return pa.table(
        [
            pa.array(tx, pa.uint32()),
            pa.array(client, pa.uint16()),
            pa.array(amount, pa.int64()),
            pa.DictionaryArray.from_arrays(pa.array(state.astype(np.int8)), pa.array(_STATE_LIST)),
        ],
        schema=LEDGER_SCHEMA,
    )


def state_codes(column: pa.ChunkedArray) -> np.ndarray:
    """State names back to codes, whatever dictionary the file came back with."""
    out = []
    for chunk in column.chunks:
        if isinstance(chunk, pa.DictionaryArray):
            names = chunk.dictionary.to_pylist()
            lookup = np.array([_STATE_LIST.index(n) for n in names], dtype=np.uint8)
            out.append(lookup[chunk.indices.to_numpy()])
        else:
            out.append(np.array([_STATE_LIST.index(n) for n in chunk.to_pylist()], np.uint8))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint8)


def tx_range(row_group: pq.RowGroupMetaData) -> tuple[int, int]:
    stats = row_group.column(0).statistics
    if stats is None or not stats.has_min_max:
        return 0, MAX_TX
    return int(stats.min), int(stats.max)

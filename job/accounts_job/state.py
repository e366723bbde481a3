"""Nightly runs: what the rules remember, kept on disk from one run to the next.

A state folder holds, in open formats:

- `manifest.json`: the state's version, its files with their sizes and checksums, and
  every input file applied so far (name, content hash, rows, when);
- `balances-<version>.parquet`: one row per account (client, available, held, locked);
- `claimed-<version>.parquet`: the claimed tx ids, as the non-zero 64-bit words of a
  bitmap (word index, bits);
- `ledger-<version>.parquet`, one per run: the deposits and withdrawals that run
  accepted (tx, client, amount_units (int64 units of 0.0001), state: deposited,
  disputed, resolved, charged_back, withdrawn), in file order, then the earlier ones
  whose dispute state it changed, sorted by tx. A tx's latest row, over the runs in
  order, is its current state.

A run reads the balances and the claimed ids whole (they are bounded: 65,536 accounts,
and one bit per tx id), and from the ledgers only what the night's rows reference: the
tx ids its disputes, resolves and chargebacks name that an earlier night claimed.
Row groups whose tx range holds none of those are skipped, so a night's cost depends on
how far back its rows reach, not on how much history there is.

Committing is all or nothing: new files get new names, are flushed to disk, and then a
new manifest replaces the old one with one rename. Until that rename the old state is
the state; after it, files the manifest no longer names are removed. A lock file keeps
two runs off the same folder.

Checksums: the manifest records every file's size and SHA-256, and its own. The
balances and claimed ids are read whole and checked whole. A ledger is checked by size
and by the SHA-256 of its Parquet footer (which pins its layout, row groups and
statistics), and every page read from it is checked against the CRC written with it.
So a damaged or edited byte is refused whenever it would be used, and never becomes a
balance.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from .bits import trailing_zeros
from .errors import StateBusy, StateError
from .faults import crash_point
from .kernel import (
    CHARGED_BACK,
    DEPOSITED,
    DISPUTED,
    EMPTY,
    RESOLVED,
    WITHDRAWN,
    rank_index,
    slot,
)
from .ledger import DECIMAL, Ledger, decimal_to_units

FORMAT = 1
MANIFEST = "manifest.json"
LOCK = "lock"

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
_WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_page_checksum": True}
_LEDGER_OPTIONS: dict[str, Any] = {
    **_WRITE_OPTIONS,
    "use_dictionary": ["state"],
    "column_encoding": {"tx": "DELTA_BINARY_PACKED"},
}


@dataclass
class AppliedFile:
    """An input file applied to the state."""

    name: str
    sha256: str
    rows: int
    bytes: int
    applied_at: str
    version: int


@dataclass
class Manifest:
    """The state's table of contents. `files`: name -> {"bytes", "sha256"[, "footer"]}."""

    version: int = 0
    balances: str | None = None
    claimed: str | None = None
    ledgers: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[AppliedFile] = field(default_factory=list)
    # accounts, locked accounts, claimed tx ids, ledger rows: for `state show`
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": FORMAT, **asdict(self)}
        body["checksum"] = _digest(json.dumps(body, sort_keys=True))
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            body = json.loads(text)
            checksum = body.pop("checksum")
            if checksum != _digest(json.dumps(body, sort_keys=True)):
                raise StateError(f"{where} does not match its checksum: damaged or edited")
            if body.pop("format") != FORMAT:
                raise StateError(f"{where} is of a state format this version cannot read")
            body["applied"] = [AppliedFile(**a) for a in body["applied"]]
            return cls(**body)
        except StateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise StateError(f"{where} is not a readable state manifest: {e}") from None

    def applied_with(self, sha256: str) -> AppliedFile | None:
        return next((a for a in self.applied if a.sha256 == sha256), None)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's content (read in large pieces; hashing releases the GIL)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        while got := f.readinto(buf):
            h.update(view[:got])
    return h.hexdigest()


def _footer_sha256(path: Path) -> str:
    """The SHA-256 of a Parquet file's footer: its metadata, length and magic."""
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        size = int.from_bytes(f.read(4), "little")
        f.seek(-(size + 8), os.SEEK_END)
        return hashlib.sha256(f.read()).hexdigest()


class StateDir:
    """A state folder: locked while a run uses it, read, and replaced by `commit`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- locking ------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder for this run; fail at once if another run holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StateError(f"cannot use state folder {self.path}: {e.strerror or e}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise StateBusy(
                    f"state folder {self.path} is in use by another run (pid {holder}); "
                    "try again when it has finished"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- reading ------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The current manifest; an empty one for a folder no run has committed to."""
        path = self.path / MANIFEST
        try:
            text = path.read_text()
        except FileNotFoundError:
            if self.path.is_dir() and any(p.suffix == ".parquet" for p in self.path.iterdir()):
                raise StateError(f"{self.path} has state files but no {MANIFEST}") from None
            return Manifest()
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"cannot read {path}: {e}") from None
        manifest = Manifest.from_json(text, path)
        for name, meta in manifest.files.items():
            file = self.path / name
            try:
                size = file.stat().st_size
            except OSError:
                raise StateError(f"state file {file} is missing") from None
            if size != meta["bytes"]:
                raise StateError(f"state file {file} has changed size: damaged or edited")
        return manifest

    def _whole(self, manifest: Manifest, name: str) -> pa.Table:
        """A small state file, checked whole against its SHA-256, as a table."""
        path = self.path / name
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.files[name]["sha256"]:
            raise StateError(f"state file {path} does not match its checksum: damaged or edited")
        try:
            return pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as e:
            raise StateError(f"state file {path} is damaged: {e}") from None

    def _ledger(self, manifest: Manifest, name: str) -> pq.ParquetFile:
        path = self.path / name
        if _footer_sha256(path) != manifest.files[name]["footer"]:
            raise StateError(f"state file {path} does not match its checksum: damaged or edited")
        try:
            return pq.ParquetFile(path, page_checksum_verification=True)
        except (pa.ArrowException, OSError) as e:
            raise StateError(f"state file {path} is damaged: {e}") from None

    def load(self, manifest: Manifest, ledger: Ledger) -> None:
        """Set `ledger` to the state: balances, claimed ids, and the slots of the tx ids
        this night references that an earlier night claimed."""
        try:
            self._load(manifest, ledger)
        except (ValueError, KeyError, IndexError) as e:  # columns or values not ours
            raise StateError(f"state folder {self.path} holds a file it did not write: {e}") from e

    def _load(self, manifest: Manifest, ledger: Ledger) -> None:
        if manifest.balances is not None:
            t = self._whole(manifest, manifest.balances)
            clients = t.column("client").to_numpy()
            ledger.restore_accounts(
                clients,
                decimal_to_units(t.column("available")),
                decimal_to_units(t.column("held")),
                t.column("locked").to_numpy(zero_copy_only=False),
            )
        if manifest.claimed is not None:
            t = self._whole(manifest, manifest.claimed)
            words = t.column("word").to_numpy()
            bits = t.column("bits").to_numpy()
            claimed = np.zeros(int(words.max()) + 1 if words.size else 1, dtype=np.uint64)
            claimed[words] = bits
            ledger.claimed = claimed
        # Only ids both referenced tonight and claimed before can be in the ledgers.
        n = min(ledger.referenced.size, ledger.claimed.size)
        wanted = ledger.referenced[:n] & ledger.claimed[:n]
        if not wanted.any():
            return
        wanted_rank, _ = rank_index(wanted)
        for name in manifest.ledgers:
            f = self._ledger(manifest, name)
            meta = f.metadata
            for g in range(meta.num_row_groups):
                lo, hi = _tx_range(meta.row_group(g))
                if not _any_in_range(wanted, wanted_rank, lo, hi):
                    continue
                try:
                    t = f.read_row_group(g)
                except (pa.ArrowException, OSError) as e:
                    raise StateError(f"state file {self.path / name} is damaged: {e}") from None
                _restore_slots(
                    t.column("tx").to_numpy(),
                    t.column("client").to_numpy(),
                    t.column("amount_units").to_numpy(),
                    _state_codes(t.column("state")),
                    ledger.referenced,
                    ledger.rank,
                    ledger.slot_client,
                    ledger.slot_amount,
                    ledger.slot_state,
                )

    # -- writing ------------------------------------------------------------------------

    def new_ledger_path(self, manifest: Manifest) -> Path:
        return self.path / f"ledger-{manifest.version + 1:06d}.parquet"

    def commit(
        self,
        manifest: Manifest,
        ledger: Ledger,
        ledger_file: Path,
        applied: AppliedFile,
    ) -> Manifest:
        """Write the new state beside the old and switch to it with one rename."""
        version = manifest.version + 1
        ledger_rows = pq.ParquetFile(ledger_file).metadata.num_rows
        new = Manifest(
            counts={
                "accounts": int(np.count_nonzero(ledger.flags)),
                "locked_accounts": ledger.locked_accounts(),
                "claimed_tx_ids": int(np.bitwise_count(ledger.claimed).sum()),
                "ledger_rows": manifest.counts.get("ledger_rows", 0) + ledger_rows,
            },
            version=version,
            balances=f"balances-{version:06d}.parquet",
            claimed=f"claimed-{version:06d}.parquet",
            ledgers=[*manifest.ledgers, ledger_file.name],
            files={k: v for k, v in manifest.files.items() if k.startswith("ledger-")},
            applied=[*manifest.applied, applied],
        )
        balances = ledger.accounts().drop_columns(["total"])  # total = available + held
        assert balances.schema == BALANCES_SCHEMA
        words = np.flatnonzero(ledger.claimed)
        claimed = pa.table(
            [pa.array(words, pa.uint32()), pa.array(ledger.claimed[words], pa.uint64())],
            schema=CLAIMED_SCHEMA,
        )
        for name, table in ((new.balances, balances), (new.claimed, claimed)):
            pq.write_table(table, self.path / name, **_WRITE_OPTIONS)
        crash_point("state-files-written")
        for name in (new.balances, new.claimed, ledger_file.name):
            path = self.path / name
            _fsync(path)
            entry = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
            if name.startswith("ledger-"):
                entry["footer"] = _footer_sha256(path)
            new.files[name] = entry
        crash_point("state-files-synced")
        tmp = self.path / f".{MANIFEST}.{version}.tmp"
        tmp.write_text(new.to_json())
        _fsync(tmp)
        crash_point("manifest-written")
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)
        crash_point("manifest-renamed")
        self.remove_unlisted(new)
        return new

    def remove_unlisted(self, manifest: Manifest) -> None:
        """Remove files a committed manifest does not name: earlier versions, and what a
        run that stopped before its commit left behind."""
        keep = {MANIFEST, LOCK, *manifest.files}
        for path in self.path.iterdir():
            if path.name not in keep and _STATE_FILE.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def describe(path: str | Path) -> dict[str, Any]:
    """What `accounts-job state show` prints: the state's version, size and counts, and
    every file applied to it."""
    folder = StateDir(path)
    manifest = folder.manifest()
    return {
        "state": str(folder.path),
        "version": manifest.version,
        "files": len(manifest.files),
        "bytes": sum(meta["bytes"] for meta in manifest.files.values()),
        **{k: manifest.counts.get(k, 0) for k in _COUNTS},
        "applied": [asdict(a) for a in manifest.applied],
    }


_COUNTS = ("accounts", "locked_accounts", "claimed_tx_ids", "ledger_rows")
_STATE_FILE = re.compile(r"^(\.manifest\.json\.\d+\.tmp|(balances|claimed|ledger)-\d+\.parquet)$")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs folders
        _fsync(path)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class LedgerWriter:
    """Tonight's ledger file: accepted deposits and withdrawals, streamed batch by batch,
    then the earlier entries whose state tonight changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(path, LEDGER_SCHEMA, **_LEDGER_OPTIONS)
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
        txs = _slot_txs(ledger.referenced, ledger.slot_state.size)
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

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
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


def _state_codes(column: pa.ChunkedArray) -> np.ndarray:
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


def _tx_range(row_group: pq.RowGroupMetaData) -> tuple[int, int]:
    stats = row_group.column(0).statistics
    if stats is None or not stats.has_min_max:
        return 0, (1 << 32) - 1
    return int(stats.min), int(stats.max)


def _any_in_range(bits: np.ndarray, rank: np.ndarray, lo: int, hi: int) -> bool:
    """Whether any bit in [lo, hi] is set; `rank[w]` counts the set bits before word w
    (kernel.rank_index)."""
    lo_w, hi_w = lo >> 6, hi >> 6
    hi_mask = (2 << (hi & 63)) - 1  # bits 0 .. hi of hi's word
    if hi_w >= bits.size:  # past the bitmap: up to its last bit
        hi_w, hi_mask = bits.size - 1, (1 << 64) - 1
    if lo_w > hi_w:
        return False
    below_lo = int(rank[lo_w]) + (int(bits[lo_w]) & ((1 << (lo & 63)) - 1)).bit_count()
    upto_hi = int(rank[hi_w]) + (int(bits[hi_w]) & hi_mask).bit_count()
    return upto_hi > below_lo


@njit(cache=True)
def _slot_txs(referenced, n):
    """The tx id of every slot: the set bits of `referenced`, in order."""
    out = np.empty(n, dtype=np.uint32)
    k = 0
    for w in range(referenced.size):
        word = referenced[w]
        while word:
            out[k] = w * 64 + trailing_zeros(word)
            k += 1
            word &= word - np.uint64(1)  # clear the lowest set bit
    return out


@njit(cache=True)
def _restore_slots(
    txs, clients, amounts, states, referenced, rank, slot_client, slot_amount, slot_state
):
    """Fill the slots of referenced tx ids from ledger rows; later rows win."""
    for i in range(txs.size):
        s = slot(txs[i], referenced, rank)
        if s >= 0:
            slot_client[s] = clients[i]
            slot_amount[s] = amounts[i]
            slot_state[s] = states[i]

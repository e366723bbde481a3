"""A state folder on disk: its lock, reading it into a ledger, and committing a new version.

See state/__init__.py for what the folder holds and why committing is all or nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.ledger import Ledger
from ..errors import StateBusy, StateError
from ..faults import crash_point
from ..io.schemas import decimal_to_units
from ..kernels.rules import restore_slots
from .files import (
    BALANCES_SCHEMA,
    CLAIMED_SCHEMA,
    WRITE_OPTIONS,
    file_sha256,
    footer_sha256,
    state_codes,
    tx_range,
)
from .manifest import MANIFEST, AppliedFile, Manifest

LOCK = "lock"


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
        if footer_sha256(path) != manifest.files[name]["footer"]:
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
            ledger.restore_claimed(t.column("word").to_numpy(), t.column("bits").to_numpy())
        # Only ids both referenced tonight and claimed before can be in the ledgers.
        wanted = ledger.referenced_claimed()
        if not wanted.size:
            return
        for name in manifest.ledgers:
            f = self._ledger(manifest, name)
            meta = f.metadata
            for g in range(meta.num_row_groups):
                lo, hi = tx_range(meta.row_group(g))
                if not _any_in_range(wanted, lo, hi):
                    continue
                try:
                    t = f.read_row_group(g)
                except (pa.ArrowException, OSError) as e:
                    raise StateError(f"state file {self.path / name} is damaged: {e}") from None
                restore_slots(
                    t.column("tx").to_numpy(),
                    t.column("client").to_numpy(),
                    t.column("amount_units").to_numpy(),
                    state_codes(t.column("state")),
                    ledger.references(),
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
                "claimed_tx_ids": ledger.claimed_count(),
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
        words, bits = ledger.claimed_words()
        claimed = pa.table(
            [pa.array(words, pa.uint32()), pa.array(bits, pa.uint64())],
            schema=CLAIMED_SCHEMA,
        )
        for name, table in ((new.balances, balances), (new.claimed, claimed)):
            pq.write_table(table, self.path / name, **WRITE_OPTIONS)
        crash_point("state-files-written")
        for name in (new.balances, new.claimed, ledger_file.name):
            path = self.path / name
            _fsync(path)
            entry = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
            if name.startswith("ledger-"):
                entry["footer"] = footer_sha256(path)
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


def _any_in_range(ids: np.ndarray, lo: int, hi: int) -> bool:
    """Whether any of the sorted `ids` lies in [lo, hi]."""
    return bool(np.searchsorted(ids, lo) < np.searchsorted(ids, hi, side="right"))

"""A state folder on disk: its lock, reading it into a ledger, and committing a new version.

See state/__init__.py for what the folder holds and why committing is all or nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.ledger import Ledger
from ..errors import NotAState, StateBusy, StateError, StateWriteError, UsageError
from ..faults import crash_point
from ..io.schemas import decimal_to_units
from ..kernels.rules import restore_slots
from .files import (
    BALANCES_SCHEMA,
    CLAIMED_SCHEMA,
    WRITE_OPTIONS,
    create_file,
    file_sha256,
    footer_sha256,
    open_file,
    state_codes,
    sync_and_close,
    tx_range,
)
from .manifest import MANIFEST, AppliedFile, Manifest

LOCK = "lock"


@dataclass
class Claimed:
    """The tx ids the state had claimed before tonight, as its claimed file holds them:
    the non-zero 64-bit words of the bitmap, by increasing index."""

    words: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    bits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


class StateDir:
    """A state folder: locked while a run uses it, read, and replaced by `commit`.

    `key`: the state key (docs/rules.md §7), if one is set: the manifest must then carry
    its signature, and every manifest written is signed with it.
    """

    def __init__(self, path: str | Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key

    # -- locking ------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, create: bool = False) -> Iterator[None]:
        """Hold the folder for this run; fail at once if another run holds it.

        A folder that is not a state (missing, or without a manifest) is NotAState and
        nothing is created in it, unless `create` (for `init`)."""
        if not create:
            self._require_manifest()
        try:
            lock = open_file(self.path / LOCK, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:
            raise self._not_a_state() from None
        except OSError as e:
            raise StateWriteError(
                f"cannot use state folder {self.path}: {e.strerror or e}"
            ) from None
        fd = lock.fileno()
        try:
            if os.fstat(fd).st_nlink != 1:
                # A hard link planted in its place: truncating it would truncate its twin.
                raise StateError(f"{self.path / LOCK} has other links: a state folder holds none")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise StateBusy(
                    f"state folder {self.path} is in use by another run (pid {holder}); "
                    "try again when it has finished"
                ) from None
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as e:
                raise StateWriteError(
                    f"cannot write state folder {self.path}: {e.strerror or e}"
                ) from None
            yield
        finally:
            lock.close()  # releases the lock

    def _not_a_state(self) -> NotAState:
        if not self.path.exists():
            what = f"state folder {self.path} does not exist"
        elif not self.path.is_dir():
            what = f"{self.path} is not a folder"
        else:
            what = f"{self.path} is not a state folder (it has no {MANIFEST})"
        return NotAState(
            f"{what}; to start a new state there, run: accounts-job state init {self.path}"
        )

    def _require_manifest(self) -> None:
        try:
            os.lstat(self.path / MANIFEST)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_a_state() from None
        except OSError as e:
            raise StateError(f"cannot use state folder {self.path}: {e.strerror or e}") from None

    # -- reading ------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The committed manifest, checked (and its files' sizes). NotAState if there is
        none: a folder `init` did not make."""
        path = self.path / MANIFEST
        try:
            with open_file(path) as f:
                text = f.read().decode()
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_a_state() from None
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"cannot read {path}: {e}") from None
        manifest = Manifest.from_json(text, path, self.key)
        try:
            self._check_files(manifest)
        except (TypeError, KeyError, AttributeError) as e:  # a manifest not ours
            raise StateError(f"{path} is not a readable state manifest: {e}") from None
        return manifest

    def _check_files(self, manifest: Manifest) -> None:
        """Every file the manifest names is a state file of this folder, there, of its
        size (its content is checked when it is read)."""
        where = self.path / MANIFEST
        names = [*manifest.files, *manifest.ledgers, manifest.balances, manifest.claimed]
        for name in names:
            if name is not None and (not _STATE_FILE.match(name) or name.startswith(".")):
                raise StateError(f"{where} names {name!r}, not a state file: edited")
            if name is not None and name not in manifest.files:
                raise StateError(f"{where} names {name!r} without its checksum: edited")
        for name, meta in manifest.files.items():
            file = self.path / name
            try:
                info = os.lstat(file)
            except OSError:
                raise StateError(f"state file {file} is missing") from None
            if not stat.S_ISREG(info.st_mode):
                raise StateError(f"state file {file} is not a regular file (a link?)")
            if info.st_size != meta["bytes"]:
                raise StateError(f"state file {file} has changed size: damaged or edited")

    def _whole(self, manifest: Manifest, name: str) -> pa.Table:
        """A small state file, checked whole against its SHA-256, as a table."""
        path = self.path / name
        try:
            with open_file(path) as f:
                data = f.read()
        except OSError as e:
            raise StateError(f"cannot read state file {path}: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != manifest.files[name]["sha256"]:
            raise StateError(f"state file {path} does not match its checksum: damaged or edited")
        try:
            return pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as e:
            raise StateError(f"state file {path} is damaged: {e}") from None

    @contextlib.contextmanager
    def _ledger(self, manifest: Manifest, name: str) -> Iterator[pq.ParquetFile]:
        """A ledger, its footer checked against the manifest; every page read from it is
        checked against its CRC."""
        path = self.path / name
        try:
            f = open_file(path)
        except OSError as e:
            raise StateError(f"cannot read state file {path}: {e.strerror or e}") from None
        with f:
            try:
                footer = footer_sha256(f)
            except (ValueError, OSError) as e:
                raise StateError(f"state file {path} is damaged: {e}") from None
            if footer != manifest.files[name]["footer"]:
                raise StateError(
                    f"state file {path} does not match its checksum: damaged or edited"
                )
            try:
                ledger = pq.ParquetFile(f, page_checksum_verification=True)
            except (pa.ArrowException, OSError) as e:
                raise StateError(f"state file {path} is damaged: {e}") from None
            yield ledger

    def load(self, manifest: Manifest, ledger: Ledger) -> Claimed:
        """Set `ledger` to the state: balances, claimed ids, and the slots of the tx ids
        this night references that an earlier night claimed. Returns the claimed ids."""
        try:
            return self._load(manifest, ledger)
        except (ValueError, KeyError, IndexError) as e:  # columns or values not ours
            raise StateError(f"state folder {self.path} holds a file it did not write: {e}") from e

    def _load(self, manifest: Manifest, ledger: Ledger) -> Claimed:
        if manifest.balances is not None:
            t = self._whole(manifest, manifest.balances)
            clients = t.column("client").to_numpy()
            ledger.restore_accounts(
                clients,
                decimal_to_units(t.column("available")),
                decimal_to_units(t.column("held")),
                t.column("locked").to_numpy(zero_copy_only=False),
            )
        earlier = Claimed()
        if manifest.claimed is not None:
            t = self._whole(manifest, manifest.claimed)
            words = t.column("word").to_numpy()
            bits = t.column("bits").to_numpy()
            ledger.restore_claimed(words, bits)
            earlier = Claimed(words, bits)
        # Only ids both referenced tonight and claimed before can be in the ledgers.
        wanted = ledger.referenced_claimed()
        if not wanted.size:
            return earlier
        for name in manifest.ledgers:
            with self._ledger(manifest, name) as f:
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
        return earlier

    def verify(self, manifest: Manifest) -> None:
        """Check every file of the state whole against the SHA-256 its manifest records
        (a night checks the ledgers by footer and by page; this reads them all)."""
        for name, meta in manifest.files.items():
            path = self.path / name
            try:
                with open_file(path) as f:
                    sha256 = file_sha256(f)
            except OSError as e:
                raise StateError(f"cannot read state file {path}: {e.strerror or e}") from None
            if sha256 != meta["sha256"]:
                raise StateError(
                    f"state file {path} does not match its checksum: damaged or edited"
                )

    # -- writing ------------------------------------------------------------------------

    def new_ledger_path(self, manifest: Manifest) -> Path:
        return self.path / f"ledger-{manifest.version + 1:06d}.parquet"

    def commit(
        self,
        manifest: Manifest,
        ledger: Ledger,
        ledger_file: Path,
        applied: AppliedFile | list[AppliedFile],
    ) -> Manifest:
        """Write the new state beside the old and switch to it with one rename.

        A failure before the rename (a full or read-only disk: StateWriteError) leaves
        the state as it was and removes what the commit wrote; after the rename the new
        state is the state, whatever else fails. `applied`: the input, or the inputs in
        order, that tonight applied (one version for all of them)."""
        version = manifest.version + 1
        if isinstance(applied, AppliedFile):
            applied = [applied]
        try:
            with open_file(ledger_file) as f:
                ledger_rows = pq.ParquetFile(f).metadata.num_rows
        except (pa.ArrowException, OSError) as e:
            raise StateError(f"tonight's ledger {ledger_file} cannot be read: {e}") from None
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
            applied=[*manifest.applied, *applied],
        )
        balances = ledger.accounts().drop_columns(["total"])  # total = available + held
        assert balances.schema == BALANCES_SCHEMA
        words, bits = ledger.claimed_words()
        claimed = pa.table(
            [pa.array(words, pa.uint32()), pa.array(bits, pa.uint64())],
            schema=CLAIMED_SCHEMA,
        )
        writing = self.path  # for the message, if writing fails
        try:
            for name, table in ((new.balances, balances), (new.claimed, claimed)):
                writing = self.path / name
                f = create_file(writing)
                try:
                    pq.write_table(table, f, **WRITE_OPTIONS)
                    f.flush()
                finally:
                    f.close()
            crash_point("state-files-written")
            for name in (new.balances, new.claimed, ledger_file.name):
                writing = self.path / name
                with open_file(writing) as f:
                    os.fsync(f.fileno())  # tonight's ledger was synced when it closed
                    entry = {"bytes": os.fstat(f.fileno()).st_size, "sha256": file_sha256(f)}
                    if name.startswith("ledger-"):
                        entry["footer"] = footer_sha256(f)
                new.files[name] = entry
            crash_point("state-files-synced")
            writing = self.path / _manifest_tmp(new)
            self._write_manifest(new)
        except OSError as e:
            # Not renamed: the old manifest is the state. What this commit wrote goes.
            with contextlib.suppress(OSError):
                self.remove_unlisted(manifest)
            raise StateWriteError(
                f"cannot write {writing}: {e.strerror or e}; the state is as it was"
            ) from None
        crash_point("manifest-renamed")
        with contextlib.suppress(OSError):  # the commit is done: what is left is litter
            self.remove_unlisted(new)
        return new

    def _replace_manifest(self, manifest: Manifest) -> None:
        """_write_manifest outside a night's commit (state init, state sign): a disk that
        cannot take it is a StateWriteError."""
        try:
            self._write_manifest(manifest)
        except OSError as e:
            raise StateWriteError(
                f"cannot write state folder {self.path}: {e.strerror or e}"
            ) from None

    def _write_manifest(self, new: Manifest) -> None:
        """Replace the manifest with `new` in one rename, after it and the folder are on
        disk (so the rename never names a file the disk does not have)."""
        tmp = self.path / _manifest_tmp(new)
        f = create_file(tmp)
        try:
            f.write(new.to_json(self.key).encode())
        except BaseException:
            f.close()
            raise
        sync_and_close(f)
        _fsync_dir(self.path)
        crash_point("manifest-written")
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)

    def remove_unlisted(self, manifest: Manifest) -> None:
        """Remove files a committed manifest does not name: earlier versions, and what a
        run that stopped before its commit left behind."""
        keep = {MANIFEST, LOCK, *manifest.files}
        for path in self.path.iterdir():
            if path.name not in keep and _STATE_FILE.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # -- making a state -----------------------------------------------------------------

    def init(self) -> tuple[Manifest, bool]:
        """Make this folder a state (`accounts-job state init`): (its manifest, whether
        it was made now).

        Creates the folder if needed and commits an empty manifest, version 0. A folder
        that already is a state is left as it is (its leftovers removed). A folder with
        no manifest but the leftovers of an interrupted first night (what versions
        before `init` left when killed on their first night: state files of version 1
        only) is adopted: the leftovers go. Any other folder that is not empty is
        refused (StateWriteError), and so is a folder with state files of later
        versions but no manifest (StateError: a state whose manifest was lost)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StateWriteError(f"cannot make state folder {self.path}: it is a file") from None
        except OSError as e:
            raise StateWriteError(
                f"cannot make state folder {self.path}: {e.strerror or e}"
            ) from None
        self._check_adoptable()  # before the lock file is made in a folder not ours
        with self.locked(create=True):
            try:
                os.lstat(self.path / MANIFEST)
            except FileNotFoundError:
                pass
            else:
                manifest = self.manifest()
                self.remove_leftovers(manifest)
                return manifest, False
            self._check_adoptable()
            manifest = Manifest()
            self.remove_leftovers(manifest)
            self._replace_manifest(manifest)
            return manifest, True

    def _check_adoptable(self) -> None:
        if (self.path / MANIFEST).exists() or (self.path / MANIFEST).is_symlink():
            return
        names = sorted(p.name for p in self.path.iterdir() if p.name != LOCK)
        others = [n for n in names if not _STATE_FILE.match(n)]
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise StateWriteError(
                f"cannot make {self.path} a state folder: it is not empty and not a state "
                f"(it holds {shown}); use a new or empty folder"
            )
        # Version 0: an interrupted `init`; version 1: an interrupted first night.
        versions = {int(re.sub(r"\D", "", n)) for n in names}
        if versions - {0, 1}:
            raise StateError(
                f"{self.path} holds state files of version {max(versions)} but no "
                f"{MANIFEST}: its manifest was lost; it is not adopted"
            )

    def remove_leftovers(self, manifest: Manifest) -> None:
        """Remove what an interrupted run left: the files `manifest`, the committed one,
        does not name (only under the lock). StateWriteError if the folder cannot be
        written."""
        try:
            self.remove_unlisted(manifest)
        except OSError as e:
            raise StateWriteError(
                f"cannot write state folder {self.path}: {e.strerror or e}"
            ) from None

    def sign(self) -> Manifest:
        """Sign the state with this folder's key (`accounts-job state sign`): every file
        is checked whole first, so the signature vouches only for an intact state."""
        if self.key is None:
            raise UsageError("signing a state needs a state key")
        with self.locked():
            unkeyed = StateDir(self.path)
            manifest = unkeyed.manifest()
            if manifest.signed:
                manifest = self.manifest()  # signed already: with this key, or refused
            self.verify(manifest)
            self._replace_manifest(manifest)
            return self.manifest()


def describe(path: str | Path, key: bytes | None = None) -> dict[str, Any]:
    """What `accounts-job state show` prints: the state's version, size and counts, and
    every file applied to it. NotAState for a folder that is not a state."""
    folder = StateDir(path, key)
    manifest = folder.manifest()
    return {
        "state": str(folder.path),
        "version": manifest.version,
        "signed": manifest.signed,
        "files": len(manifest.files),
        "bytes": sum(meta["bytes"] for meta in manifest.files.values()),
        **{k: manifest.counts.get(k, 0) for k in _COUNTS},
        "applied": [asdict(a) for a in manifest.applied],
    }


_COUNTS = ("accounts", "locked_accounts", "claimed_tx_ids", "ledger_rows")
_STATE_FILE = re.compile(r"^(\.manifest\.json\.\d+\.tmp|(balances|claimed|ledger)-\d+\.parquet)$")


def _manifest_tmp(manifest: Manifest) -> str:
    """The name a manifest is written under before its rename."""
    return f".{MANIFEST}.{manifest.version}.tmp"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs folders
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _any_in_range(ids: np.ndarray, lo: int, hi: int) -> bool:
    """Whether any of the sorted `ids` lies in [lo, hi]."""
    return bool(np.searchsorted(ids, lo) < np.searchsorted(ids, hi, side="right"))

"""One nightly run against a state folder, from its lock to its commit.

The engine calls the hooks of `Night` (engine/run.py) while it runs; the job
(accounts_job/job.py) then commits or discards it, after the outputs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..codes import APPLIED, DEPOSIT, WITHDRAWAL
from ..engine.ledger import Ledger
from ..engine.parser import ParsedBatch
from ..engine.summary import Summary
from ..errors import AlreadyApplied
from ..kernels.rules import DEPOSITED, WITHDRAWN
from .files import LedgerWriter
from .folder import StateDir
from .manifest import AppliedFile, Manifest, now


class Night:
    """A run's use of a state folder: holds the folder's lock from `open` until `commit` or
    `discard`, and writes tonight's ledger beside the committed state meanwhile."""

    def __init__(self, folder: StateDir, lock: contextlib.ExitStack, input: Path) -> None:
        self.folder = folder
        self.input = input
        self._lock = lock
        self.manifest: Manifest = folder.manifest()
        self._sha256: str | None = None
        self._ledger: Ledger | None = None
        self._initial_slots = np.zeros(0, dtype=np.uint8)
        self._out: LedgerWriter | None = None

    @classmethod
    def open(cls, folder: str | Path | StateDir, input: Path) -> Night:
        """Lock the folder for a run over `input` (StateBusy if another run holds it) and
        read its manifest."""
        folder = folder if isinstance(folder, StateDir) else StateDir(folder)
        with contextlib.ExitStack() as lock:
            lock.enter_context(folder.locked())
            night = cls(folder, lock.pop_all(), input)
        return night

    # -- the engine's hooks (engine.run.Night) -------------------------------------------

    def start(self, sha256: str, ledger: Ledger) -> None:
        earlier = self.manifest.applied_with(sha256)
        if earlier is not None:
            raise AlreadyApplied(
                f"{self.input} was already applied to {self.folder.path} (as {earlier.name}, "
                f"{earlier.applied_at}): nothing changed"
            )
        self.folder.load(self.manifest, ledger)
        self._sha256, self._ledger = sha256, ledger
        self._initial_slots = ledger.slot_state.copy()
        self._out = LedgerWriter(self.folder.new_ledger_path(self.manifest))

    def record(self, batch: ParsedBatch) -> None:
        # The accepted deposits and withdrawals: what later nights may reference.
        assert self._out is not None
        k, st = batch.kinds, batch.status
        rows = np.flatnonzero((st == APPLIED) & ((k == DEPOSIT) | (k == WITHDRAWAL)))
        self._out.write(
            batch.txs[rows],
            batch.clients[rows],
            batch.amounts[rows],
            np.where(k[rows] == DEPOSIT, DEPOSITED, WITHDRAWN).astype(np.uint8),
        )

    def finish(self, ledger: Ledger) -> None:
        assert self._out is not None
        self._out.close(ledger, self._initial_slots)

    def abort(self) -> None:
        if self._out is not None:
            self._out.discard()

    # -- after the run --------------------------------------------------------------------

    def commit(self, summary: Summary) -> Manifest:
        """Make tonight the state (one rename), then let go of the folder."""
        assert self._out is not None and self._ledger is not None and self._sha256 is not None
        applied = AppliedFile(
            name=self.input.name,
            sha256=self._sha256,
            rows=summary.rows_read,
            bytes=summary.input_bytes,
            applied_at=now(),
            version=self.manifest.version + 1,
        )
        # From here on tonight's ledger is the commit's: a failure part way must not
        # remove a file a renamed manifest may already name.
        ledger_file, self._out = self._out.path, None
        with self._lock:
            return self.folder.commit(self.manifest, self._ledger, ledger_file, applied)

    def discard(self) -> None:
        """Leave the state as it was, and let go of the folder."""
        with self._lock:
            self.abort()

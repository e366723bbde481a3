"""One nightly run against a state folder, from its lock to its commit.

The engine calls the hooks of `Night` (engine/run.py) while it runs; the job
(accounts_job/job.py) then commits or discards it, after the outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from ..codes import ACCOUNT_LOCKED, APPLIED, DEPOSIT, MAX_TX, NOT_DISPUTED, WITHDRAWAL
from ..engine.ledger import Ledger
from ..engine.parser import ParsedBatch
from ..engine.references import InputDigest
from ..engine.run import Applied
from ..engine.summary import Summary
from ..errors import AlreadyApplied, ProbableResend, StateWriteError, UsageError
from ..kernels.rules import DEPOSITED, WITHDRAWN
from .files import LedgerWriter
from .folder import Claimed, StateDir
from .manifest import KEY_ENV, AppliedFile, Manifest, now

# A probable re-send (docs/rules.md §7): more than half of the tx ids tonight's deposits
# and withdrawals claim were claimed on earlier nights, and at least this many. A new
# day's file claims new ids (its rows are new transactions); a file sent again claims
# the same ones. The floor keeps a small file with a few repeated ids (which the rules
# reject as duplicate_tx anyway) from being taken for one.
RESEND_MIN_IDS = 10


class Night:
    """A run's use of a state folder: holds the folder's lock from `open` until `commit` or
    `discard`, and writes tonight's ledger beside the committed state meanwhile."""

    def __init__(self, folder: StateDir, input: str | Path, allow_resend: bool) -> None:
        """Read the state of a folder this run holds (see `open`). `input`: the run's
        input, or its inputs, as messages name them."""
        self.folder = folder
        self.input = input
        self.allow_resend = allow_resend
        self._lock = contextlib.ExitStack()  # the folder's lock, once `open` has it
        self.manifest: Manifest = folder.manifest()
        if self.manifest.signed and folder.key is None:
            # Committing without the key would write an unsigned manifest over it.
            raise UsageError(
                f"the state in {folder.path} is signed: a run needs its key "
                f"({KEY_ENV} or --state-key-file)"
            )
        # The state is its manifest: anything else of ours in the folder is what a run
        # stopped before its commit left there.
        folder.remove_leftovers(self.manifest)
        self._applied: list[Applied] | None = None
        self._ledger: Ledger | None = None
        self._initial_slots = np.zeros(0, dtype=np.uint8)
        self._out: LedgerWriter | None = None
        self._earlier = Claimed()
        self._repeated = np.zeros(0, dtype=np.uint64)  # over _earlier.words

    @classmethod
    def open(
        cls,
        folder: str | Path | StateDir,
        input: str | Path,
        key: bytes | None = None,
        allow_resend: bool = False,
    ) -> Night:
        """Lock the folder for a run over `input` (StateBusy if another run holds it;
        NotAState if it is not a state) and read its manifest, checked with `key` if
        one is given. `allow_resend`: apply a probable re-send all the same."""
        if not isinstance(folder, StateDir):
            folder = StateDir(folder, key)
        elif key is not None:
            folder = StateDir(folder.path, key)
        with contextlib.ExitStack() as lock:
            lock.enter_context(folder.locked())
            night = cls(folder, input, allow_resend)  # if it fails, the lock is let go
            night._lock = lock.pop_all()
        return night

    # -- the engine's hooks (engine.run.Night) -------------------------------------------

    def start(self, inputs: Sequence[tuple[str, InputDigest]], ledger: Ledger) -> dict[int, str]:
        # An input whose bytes or content were applied on an earlier night, or that is
        # the same as an input before it tonight, is not applied again (docs/rules.md §7).
        skipped: dict[int, str] = {}
        seen: dict[str, str] = {}
        for index, (name, digest) in enumerate(inputs):
            earlier = self.manifest.applied_with(digest.sha256, digest.content_sha256)
            if earlier is not None:
                skipped[index] = f"already applied (as {earlier.name}, {earlier.applied_at})"
            elif digest.content_sha256 in seen or digest.sha256 in seen:
                first = seen.get(digest.content_sha256) or seen[digest.sha256]
                skipped[index] = f"the same content as {first}, earlier in this run"
            else:
                seen[digest.content_sha256] = seen[digest.sha256] = name
        if len(skipped) == len(inputs):
            if len(inputs) == 1:
                earlier = self.manifest.applied_with(
                    inputs[0][1].sha256, inputs[0][1].content_sha256
                )
                assert earlier is not None
                raise AlreadyApplied(
                    f"{self.input} was already applied to {self.folder.path} (as "
                    f"{earlier.name}, {earlier.applied_at}): nothing changed"
                )
            raise AlreadyApplied(
                f"every input was already applied to {self.folder.path}: nothing changed"
            )
        self._earlier = self.folder.load(self.manifest, ledger)
        self._repeated = np.zeros(self._earlier.words.size, dtype=np.uint64)
        self._ledger = ledger
        self._initial_slots = ledger.slot_state.copy()
        path = self.folder.new_ledger_path(self.manifest)
        try:
            self._out = LedgerWriter(path)
        except OSError as e:
            raise StateWriteError(f"cannot write {path}: {e.strerror or e}") from None
        return skipped

    def record(self, batch: ParsedBatch) -> None:
        # The accepted deposits and withdrawals: what later nights may reference.
        assert self._out is not None
        k, st = batch.kinds, batch.status
        moves = (k == DEPOSIT) | (k == WITHDRAWAL)
        rows = np.flatnonzero((st == APPLIED) & moves)
        try:
            self._out.write(
                batch.txs[rows],
                batch.clients[rows],
                batch.amounts[rows],
                np.where(k[rows] == DEPOSIT, DEPOSITED, WITHDRAWN).astype(np.uint8),
            )
        except OSError as e:
            raise StateWriteError(f"cannot write {self._out.path}: {e.strerror or e}") from None
        if not self.allow_resend and self._earlier.words.size:
            # Every well-formed deposit or withdrawal claims its id (docs/rules.md §4.3).
            claims = moves & ((st == APPLIED) | ((st >= ACCOUNT_LOCKED) & (st <= NOT_DISPUTED)))
            self._tally_repeats(batch.txs[claims])

    def _tally_repeats(self, txs: np.ndarray) -> None:
        """Mark which of `txs` an earlier night claimed (in _repeated, word by word)."""
        words, bits = self._earlier.words, self._earlier.bits
        # A new day's ids mostly lie past every earlier one: only the others are looked up.
        txs = txs[txs <= min((int(words[-1]) + 1) * 64 - 1, MAX_TX)]
        if not txs.size:
            return
        w = (txs >> 6).astype(words.dtype)
        at = np.minimum(np.searchsorted(words, w), words.size - 1)
        bit = np.uint64(1) << (txs & 63).astype(np.uint64)
        hit = (words[at] == w) & ((bits[at] & bit) != 0)
        np.bitwise_or.at(self._repeated, at[hit], bit[hit])

    def finish(self, ledger: Ledger, applied: Sequence[Applied]) -> None:
        assert self._out is not None
        self._applied = list(applied)
        if not self.allow_resend:
            self._refuse_a_resend(ledger)
        try:
            self._out.close(ledger, self._initial_slots)
        except OSError as e:
            raise StateWriteError(f"cannot write {self._out.path}: {e.strerror or e}") from None

    def _refuse_a_resend(self, ledger: Ledger) -> None:
        repeated = int(np.bitwise_count(self._repeated).sum())
        if repeated < RESEND_MIN_IDS:
            return
        earlier = int(np.bitwise_count(self._earlier.bits).sum())
        # Tonight's distinct claimed ids: the repeated ones and the new ones.
        claimed = repeated + ledger.claimed_count() - earlier
        if 2 * repeated > claimed:
            raise ProbableResend(
                f"{self.input} looks like a file already applied, sent again: {repeated:,} "
                f"of the {claimed:,} tx ids its deposits and withdrawals claim were claimed "
                f"on earlier nights (docs/rules.md §7); nothing changed. If it is a new "
                "file, apply it with --allow-resend"
            )

    def abort(self) -> None:
        if self._out is not None:
            self._out.discard()

    # -- after the run --------------------------------------------------------------------

    def commit(self, summary: Summary) -> Manifest:
        """Make tonight the state (one rename), then let go of the folder."""
        assert self._out is not None and self._ledger is not None and self._applied is not None
        at = now()
        version = self.manifest.version + 1
        applied = [
            AppliedFile(
                name=_stored_name(a.name),
                sha256=a.digest.sha256,
                content_sha256=a.digest.content_sha256,
                rows=a.rows,
                bytes=a.bytes,
                applied_at=at,
                version=version,
            )
            for a in self._applied
        ]
        # From here on tonight's ledger is the commit's: it removes it if it fails
        # before its rename, and keeps it after.
        ledger_file, self._out = self._out.path, None
        with self._lock:
            return self.folder.commit(self.manifest, self._ledger, ledger_file, applied)

    def discard(self) -> None:
        """Leave the state as it was, and let go of the folder."""
        with self._lock:
            self.abort()


def _stored_name(name: str) -> str:
    """An input's name as the manifest keeps it: a file's or a URL's last part, `stdin`
    for `-`."""
    if name == "-":
        return "stdin"
    return PurePosixPath(name.split("://", 1)[-1]).name or name

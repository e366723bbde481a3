"""The job: CSV in, accounts and rejects out. The plain Python API the CLI wraps.

Two passes over the file, each a stream of batches:

1. *References* (references.py): a compiled scan of the raw bytes marks the tx ids that
   disputes, resolves and chargebacks name. This is what lets the second pass remember
   only the deposits some row will ask about, instead of every deposit in the file.
2. *Rules*: the same raw blocks again; the compiled parser types their lines in parallel
   (parse.py), and the ledger decides every row in file order (kernel.py). Rejected rows
   leave with their line number and reason; applied rows are done.

Nothing per row outlives its batch, so memory depends on the batch size, the number of
referenced tx ids and the largest tx id, not on the number of rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .blocks import Block, BlockReader
from .codes import APPLIED, DEPOSIT, MALFORMED_ROW, NONE, WITHDRAWAL
from .errors import JobError, UsageError
from .events import events_table
from .header import Header, read_header
from .kernel import DEPOSITED, WITHDRAWN
from .ledger import Ledger
from .output import TableWriter
from .parse import parse_lines
from .references import first_pass
from .rejects import rejects_table
from .source import is_url
from .state import AppliedFile, LedgerWriter, Manifest, StateDir, now
from .summary import Summary

if TYPE_CHECKING:
    import polars as pl

# Lines per batch: the rules run batch by batch, with state carried across batches.
DEFAULT_BATCH_SIZE = 1 << 18

# Progress callback: (pass name, bytes done in this batch).
Progress = Callable[[str, int], None]


@dataclass
class Result:
    """What a run produced, as Arrow tables; `accounts` and `rejects` give Polars
    DataFrames. The rejects are None when they were streamed to a file instead.

    `pending` is the nightly state's commit when `process` was asked to defer it: call
    its `commit()` once the outputs are safe (or `discard()`)."""

    accounts_table: pa.Table
    rejects_tables: list[pa.Table] | None
    summary: Summary
    pending: PendingCommit | None = None

    @property
    def accounts(self) -> pl.DataFrame:
        """One row per account, sorted by client; amounts exact, as Decimal(38, 4)."""
        from .frames import accounts_frame

        return accounts_frame(self.accounts_table)

    @property
    def rejects(self) -> pl.DataFrame | None:
        """Every rejected row: line (1-based, in the input file), reason, raw line."""
        if self.rejects_tables is None:
            return None
        from .frames import rejects_frame

        return rejects_frame(self.rejects_tables)


@dataclass
class ParsedBatch:
    """Lines lo .. lo + n - 1 of a block, typed: one entry per line."""

    block: Block
    lo: int
    kinds: np.ndarray
    clients: np.ndarray
    txs: np.ndarray
    amounts: np.ndarray
    status: np.ndarray

    @property
    def first_line(self) -> int:
        return self.block.first_line + self.lo


class Parser:
    """Types the lines of blocks, batch by batch, into arrays reused from batch to batch."""

    def __init__(self, header: Header, batch_size: int) -> None:
        self.header = header
        self.batch_size = batch_size
        self.kinds = np.empty(batch_size, dtype=np.uint8)
        self.clients = np.empty(batch_size, dtype=np.uint16)
        self.txs = np.empty(batch_size, dtype=np.uint32)
        self.amounts = np.empty(batch_size, dtype=np.int64)
        self.status = np.empty(batch_size, dtype=np.uint8)

    def batches(self, block: Block) -> Iterator[ParsedBatch]:
        """The block's lines, `batch_size` at a time. A batch is valid until the next."""
        h = self.header
        for lo in range(0, len(block), self.batch_size):
            n = min(self.batch_size, len(block) - lo)
            kinds, clients, txs = self.kinds[:n], self.clients[:n], self.txs[:n]
            amounts, status = self.amounts[:n], self.status[:n]
            parse_lines(
                block.data,
                block.words,
                block.ends,
                lo,
                h.canonical,
                h.type,
                h.client,
                h.tx,
                h.amount,
                h.width,
                kinds,
                clients,
                txs,
                amounts,
                status,
            )
            if block.nul_rows.size:
                # Lines holding a NUL byte: not text we accept.
                rows = block.nul_rows[(block.nul_rows >= lo) & (block.nul_rows < lo + n)] - lo
                status[rows] = MALFORMED_ROW
                kinds[rows] = NONE
            yield ParsedBatch(block, lo, kinds, clients, txs, amounts, status)


class AlreadyApplied(JobError):
    """The input's content was already applied to the state: nothing to do."""

    exit_code = 0


class PendingCommit:
    """A nightly run's new state, written beside the old, waiting to become the state.

    Holds the state folder's lock until `commit` or `discard`."""

    def __init__(
        self,
        state: StateDir,
        manifest: Manifest,
        ledger: Ledger,
        ledger_file: Path,
        applied: AppliedFile,
    ) -> None:
        self.state, self.manifest, self.ledger = state, manifest, ledger
        self.ledger_file, self.applied = ledger_file, applied
        self._lock = contextlib.ExitStack()

    def hold(self, lock: contextlib.ExitStack) -> None:
        """Keep the state folder's lock until commit or discard."""
        self._lock = lock

    def commit(self) -> Manifest:
        with self._lock:
            return self.state.commit(self.manifest, self.ledger, self.ledger_file, self.applied)

    def discard(self) -> None:
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.ledger_file.unlink()


def process(
    path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_bytes: int | None = None,
    rejects_to: TableWriter | None = None,
    events_to: TableWriter | None = None,
    keep_rejects: bool = True,
    progress: Progress | None = None,
    state: str | Path | StateDir | None = None,
    defer_commit: bool = False,
    cluster: str | None = None,
) -> Result:
    """Run the job over the CSV at `path`.

    Returns the accounts (one row per account, sorted by client, amounts as exact
    Decimal(38, 4)), the rejected rows (line, reason, raw) unless `keep_rejects` is False
    or they go to `rejects_to`, and the summary. Raises a `JobError` for fatal errors.

    `batch_size` is the number of lines the rules take at a time, `block_bytes` the
    number of bytes read at a time (default blocks.BLOCK_BYTES); neither changes the
    answer, only memory and speed. `events_to` receives the accepted events.

    With `state` (a folder), the run starts from what earlier runs left there and
    commits the new state at the end (or leaves that to the caller: `defer_commit`). A
    file whose content was already applied raises AlreadyApplied, and nothing changes.

    With `cluster` (`tcp://HOST:PORT` of a Dask scheduler, or `local:N` for N worker
    processes here) the run is sharded by client over the cluster's workers, with the
    same result (cluster.py). It takes neither `state` nor `events_to`.
    """
    if cluster is not None:
        if state is not None or events_to is not None:
            raise UsageError("a --cluster run takes neither --state nor --events")
        from .cluster import process_on_cluster

        return process_on_cluster(
            path,
            cluster,
            batch_size=batch_size,
            rejects_to=rejects_to,
            keep_rejects=keep_rejects,
        )
    if is_url(path):
        raise UsageError(f"{path}: a URL input needs --cluster; a plain run reads local files")
    options = _Options(batch_size, block_bytes, rejects_to, events_to, keep_rejects, progress)
    if state is None:
        return _process(Path(path), options)
    folder = state if isinstance(state, StateDir) else StateDir(state)
    with contextlib.ExitStack() as lock:
        lock.enter_context(folder.locked())
        result = _process(Path(path), options, folder)
        assert result.pending is not None
        result.pending.hold(lock.pop_all())
    if not defer_commit:
        result.pending.commit()
        result.pending = None
    return result


@dataclass
class _Options:
    batch_size: int
    block_bytes: int | None
    rejects_to: TableWriter | None
    events_to: TableWriter | None
    keep_rejects: bool
    progress: Progress | None


def _process(path: Path, options: _Options, state: StateDir | None = None) -> Result:
    started = time.perf_counter()
    batch_size, progress = options.batch_size, options.progress
    rejects_to, keep_rejects = options.rejects_to, options.keep_rejects
    manifest = state.manifest() if state is not None else None
    # The content hash (exactly once) is taken by the first pass's reading thread.
    digest = hashlib.sha256() if state is not None else None
    header = read_header(path)
    summary = Summary(input=str(path), input_bytes=path.stat().st_size)
    # Lines before the header are blank by definition; they are rows read, and skipped.
    summary.rows_read = summary.blank_lines = header.line_index

    reader = BlockReader(options.block_bytes)
    referenced = first_pass(
        path,
        header,
        (lambda nbytes: progress("references", nbytes)) if progress else None,
        reader,
        digest,
    )
    ledger = Ledger(referenced)
    ledger_out: LedgerWriter | None = None
    if state is not None:
        assert manifest is not None and digest is not None
        sha256 = digest.hexdigest()
        earlier = manifest.applied_with(sha256)
        if earlier is not None:
            raise AlreadyApplied(
                f"{path} was already applied to {state.path} (as {earlier.name}, "
                f"{earlier.applied_at}): nothing changed"
            )
        state.load(manifest, ledger)
        initial_slots = ledger.slot_state.copy()
        ledger_out = LedgerWriter(state.new_ledger_path(manifest))
    parser = Parser(header, batch_size)

    kept: list[pa.Table] = []
    try:
        for block in reader.blocks(path, header.line_index + 1):
            for parsed in parser.batches(block):
                _decide(parsed, ledger, options, ledger_out, kept)
            if progress:
                progress("rules", block.data.size)
        if ledger_out is not None:
            ledger_out.close(ledger, initial_slots)
    except BaseException:
        if ledger_out is not None:
            ledger_out.discard()
        raise

    summary.add_counts(ledger.outcomes, ledger.applied)
    accounts = ledger.accounts()
    summary.accounts = accounts.num_rows
    summary.locked_accounts = ledger.locked_accounts()
    summary.state_bytes = ledger.state_bytes()
    summary.seconds = time.perf_counter() - started
    pending = None
    if state is not None:
        assert manifest is not None and ledger_out is not None
        applied = AppliedFile(
            name=path.name,
            sha256=sha256,
            rows=summary.rows_read,
            bytes=summary.input_bytes,
            applied_at=now(),
            version=manifest.version + 1,
        )
        pending = PendingCommit(state, manifest, ledger, ledger_out.path, applied)
    return Result(
        accounts_table=accounts,
        rejects_tables=kept if rejects_to is None and keep_rejects else None,
        summary=summary,
        pending=pending,
    )


def _decide(
    parsed: ParsedBatch,
    ledger: Ledger,
    options: _Options,
    ledger_out: LedgerWriter | None,
    kept: list[pa.Table],
) -> None:
    """Apply the rules to a parsed batch, then send its outcomes where they go."""
    ledger.apply(parsed.kinds, parsed.clients, parsed.txs, parsed.amounts, parsed.status)
    if options.rejects_to is not None or options.keep_rejects:
        rejects = rejects_table(parsed.block, parsed.lo, parsed.status)
        if options.rejects_to is not None:
            options.rejects_to.write(rejects)
        elif rejects.num_rows:
            kept.append(rejects)
    if options.events_to is not None:
        options.events_to.write(
            events_table(
                parsed.first_line,
                parsed.kinds,
                parsed.clients,
                parsed.txs,
                parsed.amounts,
                parsed.status,
            )
        )
    if ledger_out is not None:
        # The accepted deposits and withdrawals: what later nights may reference.
        k, st = parsed.kinds, parsed.status
        rows = np.flatnonzero((st == APPLIED) & ((k == DEPOSIT) | (k == WITHDRAWAL)))
        ledger_out.write(
            parsed.txs[rows],
            parsed.clients[rows],
            parsed.amounts[rows],
            np.where(k[rows] == DEPOSIT, DEPOSITED, WITHDRAWN).astype(np.uint8),
        )

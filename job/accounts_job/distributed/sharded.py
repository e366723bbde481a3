"""One run split by client into shards: the same answer as `process`, in pieces that can
run on different machines (cluster.py hands them to Dask).

Accounts are independent of one another but for two things the rules make global
(docs/rules.md §4.3, §4.4): a tx id is claimed by its first deposit or withdrawal row, of
any client; and a dispute, resolve or chargeback may name another client's tx. So the
run goes in four steps:

1. Scan. The file is cut into chunks of whole lines. Each chunk is parsed on its own
   (line numbers counted within the chunk), and its well-formed rows are split into
   shards by client: client % shards.
2. Settle claims. One walk over every well-formed row, in file order, decides which
   deposits and withdrawals are duplicates and which references name a tx first claimed
   in another shard (distributed/claims.py). It needs tx ids and clients, no balances.
3. Shards. Each shard runs the rules kernel over its rows in file order, the duplicates
   marked. A reference to another shard's tx finds nothing there: `unknown_tx`, unless
   its own account is locked.
4. Combine. Such a reference becomes `client_mismatch` when the claiming row was accepted
   (its shard says). Accounts are joined by client, rejects by line, and the raw bytes of
   each rejected line are read back from the file.

Every step is a plain function of its inputs, so a step lost with its worker can simply run
again. `Executor` is the seam: `InProcess` runs the steps here, one after another (the
tests use it to check the plan on many generated files); distributed/cluster.py runs them
on Dask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from ..codes import APPLIED, BLANK, CLIENT_MISMATCH, UNKNOWN_TX
from ..engine.ledger import Ledger
from ..engine.parser import DEFAULT_BATCH_SIZE, Parser
from ..engine.rejects import raw_lines, rejects_of
from ..engine.result import Result, finish
from ..engine.summary import Summary
from ..errors import HeaderError
from ..faults import crash_point
from ..io.blocks import BlockReader, skip_line
from ..io.forms import SNIFF_BYTES, check_header_error
from ..io.header import Header, read_header
from ..io.schemas import ACCOUNTS_ARROW
from ..io.source import input_size, is_url, open_input
from ..io.writers import TableWriter
from .claims import bitmap_of, referenced_ids, settle

# Bytes per chunk of the scan: large enough that per-task overhead is small, small
# enough that a cluster has many chunks to spread.
DEFAULT_CHUNK_BYTES = 64 << 20

_ROW_FIELDS = ("line", "kind", "client", "tx", "amount")
_NO_AMOUNTS = np.zeros(0, dtype=np.int64)


class Executor(Protocol):
    """Where the steps run: `submit` returns a handle (a future, or the value itself),
    which may be passed to later `submit`s; `gather` turns handles into values."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def gather(self, handles: list[Any]) -> list[Any]: ...


class InProcess:
    """Runs every step right here, in order."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def gather(self, handles: list[Any]) -> list[Any]:
        return list(handles)


@dataclass
class Rows:
    """Well-formed rows, in file order: line number and the parsed command."""

    line: np.ndarray  # int64; within the chunk (1-based) in a ChunkScan, else in the file
    kind: np.ndarray  # uint8
    client: np.ndarray  # uint16
    tx: np.ndarray  # uint32
    amount: np.ndarray  # int64 units

    def take(self, index: np.ndarray) -> Rows:
        return Rows(*(getattr(self, f)[index] for f in _ROW_FIELDS))

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        """The parts' rows, one after another, in new arrays (none: no rows)."""
        if not parts:
            return _no_rows()
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ROW_FIELDS))


@dataclass
class ChunkScan:
    """One chunk, parsed: its line count, blank and malformed lines, well-formed rows."""

    lines: int
    blank: int
    malformed_line: np.ndarray  # int64, within the chunk
    malformed_code: np.ndarray  # uint8 reason
    rows: Rows


@dataclass
class ShardClaims:
    """What settling the claims tells one shard, by index among the shard's rows (few
    rows have anything to be told, so only those are listed)."""

    dup: np.ndarray  # int64: deposits and withdrawals whose id an earlier row claimed
    cross: np.ndarray  # int64: references whose tx was first claimed in another shard,
    cross_line: np.ndarray  # int64: and the line of that claiming row
    report: np.ndarray  # int64, sorted: lines of this shard's claiming rows others name


@dataclass
class ShardResult:
    accounts: pa.Table
    outcomes: np.ndarray  # rows by status code
    applied: np.ndarray  # accepted rows by kind
    state_bytes: int
    reject_line: np.ndarray  # int64, in file order
    reject_code: np.ndarray  # uint8
    cross_claim: np.ndarray  # int64: per reject, the claiming line to ask about, or -1
    report: np.ndarray  # int64: ShardClaims.report
    report_applied: np.ndarray  # bool: whether each of those rows was accepted


def plan_chunks(path: str | Path, header: Header, chunk_bytes: int) -> list[tuple[int, int]]:
    """(start, stop) byte spans of whole lines covering everything after the header."""
    start, size = header.data_offset, input_size(path)
    spans = []
    with open_input(path, buffered=True) as f:
        while start < size:
            f.seek(min(size, start + chunk_bytes))
            if f.tell() < size:
                skip_line(f)  # to the end of the line the cut falls in
            stop = f.tell()
            spans.append((start, stop))
            start = stop
    return spans


def scan_chunk(path: str, header: Header, span: tuple[int, int]) -> ChunkScan:
    """Step 1: parse one chunk."""
    parser = Parser(header, DEFAULT_BATCH_SIZE)
    lines = blank = 0
    malformed_line, malformed_code, parts = [], [], []
    for block in BlockReader().blocks(path, span=span):
        for batch in parser.batches(block):
            status, n = batch.status, batch.status.size
            first = block.first_line + batch.lo  # 1-based within the chunk
            lines += n
            blank += int(np.count_nonzero(status == BLANK))
            bad = np.flatnonzero((status != 0) & (status != BLANK))
            malformed_line.append(bad + first)
            malformed_code.append(status[bad])
            good = np.flatnonzero(status == 0)
            parts.append(
                Rows(
                    good + first,
                    batch.kinds[good],
                    batch.clients[good],
                    batch.txs[good],
                    batch.amounts[good],
                )
            )
    return ChunkScan(
        lines,
        blank,
        _concat(malformed_line, np.int64),
        _concat(malformed_code, np.uint8),
        Rows.concat(parts),
    )


def chunk_counts(scan: ChunkScan) -> tuple[int, int]:
    return scan.lines, scan.blank


def shard_rows(scan: ChunkScan, first_line: int, shard: int, shards: int) -> Rows:
    """One shard's rows of a chunk, numbered by line in the file."""
    rows = scan.rows.take(np.flatnonzero(scan.rows.client % shards == shard))
    rows.line = rows.line + (first_line - 1)
    return rows


def claims_view(scan: ChunkScan, first_line: int) -> Rows:
    """What settling the claims needs of a chunk's rows: no amounts."""
    rows = scan.rows
    return Rows(rows.line + (first_line - 1), rows.kind, rows.client, rows.tx, _NO_AMOUNTS)


def view_references(view: Rows) -> np.ndarray:
    return referenced_ids(view.kind, view.tx)


def settle_claims(shards: int, referenced: np.ndarray, *views: Rows) -> list[ShardClaims]:
    """Step 2: the claim facts each shard needs (see claims.py). `referenced`: the set
    of every tx id a reference names; `views`: the chunks' rows, in file order."""
    pieces = ((v.kind, v.client, v.tx, v.line) for v in views)
    settled = settle(pieces, referenced, shards)
    out = []
    for k in range(shards):
        crossing = settled.cross_shard == k
        out.append(
            ShardClaims(
                dup=settled.dup_index[settled.dup_shard == k],
                cross=settled.cross_index[crossing],
                cross_line=settled.cross_line[crossing],
                report=np.unique(settled.cross_line[settled.claim_shard == k]),
            )
        )
    return out


def pick(items: list[Any], index: int) -> Any:
    return items[index]


def run_shard(claims: ShardClaims, batch_size: int, *parts: Rows) -> ShardResult:
    """Step 3: the rules over one shard's rows, in file order."""
    crash_point("shard-step")
    # New arrays, this step's own: the kernel may write the amounts of accepted
    # references into them (a step must not change its inputs, which a retry reads again).
    rows = Rows.concat(parts)
    n = rows.kind.size
    dup = np.zeros(n, dtype=np.uint8)
    dup[claims.dup] = 1
    cross = np.full(n, -1, dtype=np.int64)
    cross[claims.cross] = claims.cross_line
    ledger = Ledger(bitmap_of(referenced_ids(rows.kind, rows.tx)))
    status = np.zeros(n, dtype=np.uint8)
    for lo in range(0, n, batch_size):
        s = slice(lo, lo + batch_size)
        ledger.apply(rows.kind[s], rows.client[s], rows.tx[s], rows.amount[s], status[s], dup[s])
    rejected = np.flatnonzero(status != APPLIED)
    cross_claim = np.where(status[rejected] == UNKNOWN_TX, cross[rejected], -1)
    at = np.searchsorted(rows.line, claims.report)
    return ShardResult(
        accounts=ledger.accounts(),
        outcomes=ledger.outcomes.copy(),
        applied=ledger.applied.copy(),
        state_bytes=ledger.state_bytes(),
        reject_line=rows.line[rejected],
        reject_code=status[rejected],
        cross_claim=cross_claim,
        report=claims.report,
        report_applied=status[at] == APPLIED,
    )


def chunk_raw(path: str, span: tuple[int, int], lines: np.ndarray) -> pa.Array:
    """The raw bytes of the given lines (sorted, numbered within the chunk)."""
    pieces = []
    for block in BlockReader().blocks(path, span=span):
        lo, hi = np.searchsorted(lines, [block.first_line, block.first_line + len(block)])
        if hi > lo:
            pieces.append(raw_lines(block, lines[lo:hi] - block.first_line))
    if not pieces:
        return pa.array([], pa.large_binary())
    return pa.concat_arrays(pieces)


def process_sharded(
    path: str | Path,
    executor: Executor,
    shards: int,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_to: TableWriter | None = None,
    keep_rejects: bool = True,
) -> Result:
    """The run, step by step through `executor`; the same Result as `process`."""
    started = time.perf_counter()
    name = path if is_url(path) else str(path)
    try:
        header = read_header(name)
    except HeaderError:
        # Binary data has no header either: say what it is, as a run in one process does.
        with open_input(name) as f:
            check_header_error(str(name), f.read(SNIFF_BYTES))
        raise
    summary = Summary.for_input(name, input_size(name), header.line_index)
    spans = plan_chunks(name, header, chunk_bytes)

    scans = [executor.submit(scan_chunk, name, header, span) for span in spans]
    counts = executor.gather([executor.submit(chunk_counts, s) for s in scans])
    # The file's line number of each chunk's first line: the header is line line_index+1.
    first_lines, line = [], header.line_index + 2
    for lines, _ in counts:
        first_lines.append(line)
        line += lines
    views = [
        executor.submit(claims_view, scan, first)
        for scan, first in zip(scans, first_lines, strict=True)
    ]
    referenced = executor.submit(bitmap_of, *[executor.submit(view_references, v) for v in views])
    settled = executor.submit(settle_claims, shards, referenced, *views)
    results = []
    for k in range(shards):
        parts = [
            executor.submit(shard_rows, scan, first, k, shards)
            for scan, first in zip(scans, first_lines, strict=True)
        ]
        claims = executor.submit(pick, settled, k)
        results.append(executor.submit(run_shard, claims, batch_size, *parts))
    malformed_rows = [executor.submit(_malformed, s) for s in scans]
    # Let go of what only later steps need: a cluster frees each chunk's rows as soon as
    # the steps that read them are done.
    del scans, views, referenced, settled, parts, claims
    malformed = executor.gather(malformed_rows)
    shard_results: list[ShardResult] = executor.gather(results)

    # Rows by outcome: blank and malformed lines from the scans, the rest from the shards,
    # with the references that turned out to be client mismatches moved over.
    outcomes = np.zeros(256, dtype=np.int64)
    applied = np.zeros(8, dtype=np.int64)
    outcomes[BLANK] += sum(c[1] for c in counts)
    lines, codes = [], []
    for (m_line, m_code), first in zip(malformed, first_lines, strict=True):
        lines.append(m_line + (first - 1))
        codes.append(m_code)
        outcomes += np.bincount(m_code, minlength=256)
    moved = _settle_cross_references(shard_results)
    outcomes[UNKNOWN_TX] -= moved
    outcomes[CLIENT_MISMATCH] += moved
    for r in shard_results:
        outcomes += r.outcomes
        applied += r.applied
        lines.append(r.reject_line)
        codes.append(r.reject_code)
    line = _concat(lines, np.int64)
    code = _concat(codes, np.uint8)

    order = np.argsort(line, kind="stable")
    line, code = line[order], code[order]
    kept: list[pa.Table] = []
    if rejects_to is not None or keep_rejects:
        table = _rejects_table(executor, name, spans, first_lines, line, code)
        if rejects_to is not None:
            rejects_to.write(table)
        else:
            kept.append(table)

    return finish(
        summary,
        started,
        outcomes,
        applied,
        _join_accounts([r.accounts for r in shard_results]),
        sum(r.state_bytes for r in shard_results),
        kept if rejects_to is None and keep_rejects else None,
    )


def _malformed(scan: ChunkScan) -> tuple[np.ndarray, np.ndarray]:
    return scan.malformed_line, scan.malformed_code


def _settle_cross_references(results: list[ShardResult]) -> int:
    """Step 4: a reference to another shard's tx is a client mismatch if that tx's
    claiming row was accepted, else it stays unknown_tx. Returns how many changed."""
    asked = _concat([r.report for r in results], np.int64)
    answer = np.concatenate([r.report_applied for r in results]) if results else np.zeros(0, bool)
    order = np.argsort(asked)
    asked, answer = asked[order], answer[order]
    moved = 0
    for r in results:
        pending = np.flatnonzero(r.cross_claim >= 0)
        if pending.size:
            mismatch = pending[answer[np.searchsorted(asked, r.cross_claim[pending])]]
            r.reject_code[mismatch] = CLIENT_MISMATCH
            moved += mismatch.size
    return moved


def _rejects_table(
    executor: Executor,
    path: str,
    spans: list[tuple[int, int]],
    first_lines: list[int],
    line: np.ndarray,
    code: np.ndarray,
) -> pa.Table:
    """The rejects, with the raw bytes of each line read back from its chunk."""
    bounds = np.searchsorted(line, [*first_lines, np.iinfo(np.int64).max])
    raws = executor.gather(
        [
            executor.submit(chunk_raw, path, span, line[lo:hi] - (first - 1))
            for span, first, lo, hi in zip(spans, first_lines, bounds[:-1], bounds[1:], strict=True)
        ]
    )
    return rejects_of(line, code, pa.chunked_array(raws, pa.large_binary()))


def _join_accounts(tables: list[pa.Table]) -> pa.Table:
    """Every shard's accounts, one table sorted by client (shards hold disjoint clients)."""
    if not tables:
        return ACCOUNTS_ARROW.empty_table()
    table = pa.concat_tables(tables)
    order = np.argsort(table.column("client").to_numpy(), kind="stable")
    return table.take(pa.array(order))


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _no_rows() -> Rows:
    return Rows(
        np.zeros(0, np.int64),
        np.zeros(0, np.uint8),
        np.zeros(0, np.uint16),
        np.zeros(0, np.uint32),
        np.zeros(0, np.int64),
    )

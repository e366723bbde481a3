"""One run over a CSV in this process: two passes over its raw bytes.

1. *References* (engine/references.py): a compiled scan of the raw bytes marks the tx
   ids that disputes, resolves and chargebacks name. This is what lets the second pass
   remember only the deposits some row will ask about, instead of every deposit in the
   file.
2. *Rules*: the same raw blocks again; the compiled parser types their lines in parallel
   (engine/parser.py), and the ledger decides every row in file order
   (engine/ledger.py). Rejected rows leave with their line number and reason; applied
   rows are done.

Nothing per row outlives its batch, so memory depends on the batch size and the number of
claimed and referenced tx ids (kernels/bitmaps.py: a bit each where dense, at most a few
bytes each), not on the number of rows nor on the largest tx id.

A run over several inputs (docs/rules.md §2.10) is one stream of commands: the first
pass scans every input in order (so a dispute in the last file finds a deposit of the
first), then the second pass applies them in order to one ledger. Each input keeps its
own header and line numbers; rejects and events then name their input (`file`). An input
that cannot be read twice in place (compressed, a pipe, a URL) is spooled once, as the
first pass comes to it (io/spool.py), and its spool removed after its second pass.

A nightly run joins in through a `Night` (state/night.py implements it): this layer
never imports the state, it only calls the hooks at the right moments.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from ..io.blocks import BlockReader
from ..io.header import Header, read_header
from ..io.schemas import add_file_column
from ..io.spool import Input, Spools
from ..io.writers import TableWriter
from .events import events_table
from .ledger import Ledger
from .parser import DEFAULT_BATCH_SIZE, ParsedBatch, Parser
from .references import InputDigest, first_pass
from .rejects import rejects_table
from .result import Result, finish
from .summary import Summary

# Progress callback: (pass name, bytes). The passes: "reading" (an input's bytes as
# given, compressed ones included, while it is spooled or opened), "references" and
# "rules" (the plain bytes each pass has read); "input", an input's size as given, when
# known before it is read; and "size", its plain bytes once known, which the two passes
# will each read.
Progress = Callable[[str, int], None]


@dataclass
class Applied:
    """An input of a nightly run, as the state records it: its name, hashes and counts."""

    name: str
    digest: InputDigest
    rows: int
    bytes: int


class Night(Protocol):
    """What a run tells a nightly state, in this order: `start` once the first pass has
    hashed the inputs, `record` after each decided batch, then `finish` when every batch
    is done, or `abort` if the run fails on the way."""

    def start(self, inputs: Sequence[tuple[str, InputDigest]], ledger: Ledger) -> dict[int, str]:
        """Load the state into `ledger`. Returns the inputs (by index) not to apply, each
        with the note that says why: applied on an earlier night, or the same content as
        an input before it in this run. Raises AlreadyApplied when that is all of them."""

    def record(self, batch: ParsedBatch) -> None:
        """Keep what later nights may reference of a decided batch."""

    def finish(self, ledger: Ledger, applied: Sequence[Applied]) -> None:
        """The run is done, `applied` are the inputs it applied: write what remains."""

    def abort(self) -> None:
        """The run failed: remove what `record` wrote."""


@dataclass
class _Scanned:
    """An input after the first pass."""

    input: Input
    header: Header
    limit: int | None
    digest: InputDigest | None


def run_inputs(
    inputs: Sequence[Input],
    spools: Spools,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_bytes: int | None = None,
    rejects_to: TableWriter | None = None,
    events_to: TableWriter | None = None,
    keep_rejects: bool = True,
    progress: Progress | None = None,
    night: Night | None = None,
) -> Result:
    """The run over `inputs` in order, as one stream of commands, in this process (see
    accounts_job.process). Inputs that need it are spooled into `spools`. With more than
    one input, rejects and events carry a `file` column."""
    started = time.perf_counter()
    several = len(inputs) > 1
    summary = Summary()
    reader = BlockReader(block_bytes)
    referenced = None
    scanned: list[_Scanned] = []
    for item in inputs:
        if progress and item.size:
            progress("input", item.size)
        spools.ready(item, (lambda n: progress("reading", n)) if progress else None)
        assert item.path is not None
        if progress and item.plain_bytes:
            progress("size", item.plain_bytes)
        # The hashes exactly once goes by are taken by the first pass (engine/references.py).
        digest = InputDigest() if night is not None else None
        header = read_header(item.path)
        info = item.path.stat()
        # Both passes read the file as it is now, even if it grows meanwhile: the rows the
        # second pass decides are those the first pass scanned and hashed.
        limit = info.st_size if stat.S_ISREG(info.st_mode) else None
        referenced = first_pass(
            item.path,
            header,
            (lambda nbytes: progress("references", nbytes)) if progress else None,
            reader,
            digest,
            limit,
            referenced,
        )
        scanned.append(_Scanned(item, header, limit, digest))
    assert referenced is not None
    ledger = Ledger(referenced)
    skipped: dict[int, str] = {}
    if night is not None:
        skipped = night.start([(s.input.name, s.digest) for s in scanned], ledger)  # type: ignore[misc]
    kept: list[pa.Table] = []
    applied: list[Applied] = []
    try:
        for index, item in enumerate(scanned):
            name = item.input.name
            if index in skipped:
                summary.add_input(item.input, rows=0, skipped=skipped[index])
                spools.remove(item.input)
                continue
            rows_before = int(ledger.outcomes.sum())
            summary.rows_read += item.header.line_index  # the blank lines before its header
            summary.blank_lines += item.header.line_index
            parser = Parser(item.header, batch_size)  # each input has its own header
            assert item.input.path is not None
            for block in reader.blocks(
                item.input.path, item.header.line_index + 1, end_at=item.limit
            ):
                for parsed in parser.batches(block):
                    ledger.apply(
                        parsed.kinds, parsed.clients, parsed.txs, parsed.amounts, parsed.status
                    )
                    if rejects_to is not None or keep_rejects:
                        rejects = rejects_table(parsed.block, parsed.lo, parsed.status)
                        if several:
                            rejects = add_file_column(rejects, name)
                        send_rejects(rejects, rejects_to, kept)
                    if events_to is not None:
                        events = events_table(parsed)
                        events_to.write(add_file_column(events, name) if several else events)
                    if night is not None:
                        night.record(parsed)
                if progress:
                    progress("rules", block.data.size)
            rows = int(ledger.outcomes.sum()) - rows_before + item.header.line_index
            summary.add_input(item.input, rows=rows)
            if item.digest is not None:
                applied.append(Applied(name, item.digest, rows, item.input.size or 0))
            spools.remove(item.input)
        if night is not None:
            night.finish(ledger, applied)
    except BaseException:
        if night is not None:
            night.abort()
        raise
    # Kept rejects are the Result's only when they were neither streamed nor declined.
    keep = rejects_to is None and keep_rejects
    return ledger_result(summary, started, ledger, kept if keep else None)


def send_rejects(rejects: pa.Table, rejects_to: TableWriter | None, kept: list[pa.Table]) -> None:
    """A batch's rejects to the run's writer, or kept for Result.rejects when there is
    none (the caller asks only when one of the two wants them)."""
    if rejects_to is not None:
        rejects_to.write(rejects)
    elif rejects.num_rows:
        kept.append(rejects)


def ledger_result(
    summary: Summary, started: float, ledger: Ledger, kept: list[pa.Table] | None
) -> Result:
    """The Result of a run in this process once `ledger` has decided every row."""
    return finish(
        summary,
        started,
        ledger.outcomes,
        ledger.applied,
        ledger.accounts(),
        ledger.state_bytes(),
        kept,
    )

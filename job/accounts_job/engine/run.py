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

A nightly run joins in through a `Night` (state/night.py implements it): this layer
never imports the state, it only calls the hooks at the right moments.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from ..io.blocks import BlockReader
from ..io.header import read_header
from ..io.writers import TableWriter
from .events import events_table
from .ledger import Ledger
from .parser import DEFAULT_BATCH_SIZE, ParsedBatch, Parser
from .references import InputDigest, first_pass
from .rejects import rejects_table
from .result import Result, finish
from .summary import Summary

# Progress callback: (pass name, bytes done in this batch).
Progress = Callable[[str, int], None]


class Night(Protocol):
    """What a run tells a nightly state, in this order: `start` once the first pass has
    hashed the input, `record` after each decided batch, then `finish` when every batch
    is done, or `abort` if the run fails on the way."""

    def start(self, digest: InputDigest, ledger: Ledger) -> None:
        """Load the state into `ledger`; raise AlreadyApplied for a known input (by its
        hashes, `digest`)."""

    def record(self, batch: ParsedBatch) -> None:
        """Keep what later nights may reference of a decided batch."""

    def finish(self, ledger: Ledger) -> None:
        """The run is done: write what remains."""

    def abort(self) -> None:
        """The run failed: remove what `record` wrote."""


def run_file(
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_bytes: int | None = None,
    rejects_to: TableWriter | None = None,
    events_to: TableWriter | None = None,
    keep_rejects: bool = True,
    progress: Progress | None = None,
    night: Night | None = None,
) -> Result:
    """The run over the CSV at `path`, in this process (see accounts_job.process)."""
    started = time.perf_counter()
    # The hashes exactly once goes by are taken by the first pass (engine/references.py).
    digest = InputDigest() if night is not None else None
    header = read_header(path)
    info = path.stat()
    # Both passes read the file as it is now, even if it grows meanwhile: the rows the
    # second pass decides are those the first pass scanned and hashed.
    limit = info.st_size if stat.S_ISREG(info.st_mode) else None
    summary = Summary.for_input(str(path), info.st_size, header.line_index)

    reader = BlockReader(block_bytes)
    referenced = first_pass(
        path,
        header,
        (lambda nbytes: progress("references", nbytes)) if progress else None,
        reader,
        digest,
        limit,
    )
    ledger = Ledger(referenced)
    if night is not None:
        assert digest is not None
        night.start(digest, ledger)
    parser = Parser(header, batch_size)
    kept: list[pa.Table] = []
    try:
        for block in reader.blocks(path, header.line_index + 1, end_at=limit):
            for parsed in parser.batches(block):
                ledger.apply(
                    parsed.kinds, parsed.clients, parsed.txs, parsed.amounts, parsed.status
                )
                if rejects_to is not None or keep_rejects:
                    rejects = rejects_table(parsed.block, parsed.lo, parsed.status)
                    if rejects_to is not None:
                        rejects_to.write(rejects)
                    elif rejects.num_rows:
                        kept.append(rejects)
                if events_to is not None:
                    events_to.write(events_table(parsed))
                if night is not None:
                    night.record(parsed)
            if progress:
                progress("rules", block.data.size)
        if night is not None:
            night.finish(ledger)
    except BaseException:
        if night is not None:
            night.abort()
        raise
    return finish(
        summary,
        started,
        ledger.outcomes,
        ledger.applied,
        ledger.accounts(),
        ledger.state_bytes(),
        kept if rejects_to is None and keep_rejects else None,
    )

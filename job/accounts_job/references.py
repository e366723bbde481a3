"""The first pass: which tx ids does any dispute, resolve or chargeback name?

The rules only need to remember a deposit if some row will ask about it later. This pass
finds those tx ids, so the second pass keeps one slot per referenced deposit instead of
one per deposit in the file.

It has to be cheap: it reads the file in raw blocks (blocks.py) and looks at each line
just enough to know whether it could be a dispute, resolve or chargeback; only those
lines get the parser. The answer may be a superset (a line the second pass rejects costs
one unused slot) but never misses a row the second pass accepts, because both passes use
the same line parser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numba import njit, prange

from .blocks import BlockReader
from .codes import DISPUTE
from .header import Header
from .kernel import set_bits
from .parse import QUOTE, is_blank, parse_row


@njit(cache=True, inline="always")
def _maybe_reference(data, start, end) -> bool:
    """Could this line's first field read as dispute, resolve or chargeback?"""
    p = start
    while p < end and is_blank(data[p]):
        p += 1
    if p < end and data[p] == QUOTE:
        p += 1
        while p < end and is_blank(data[p]):
            p += 1
    if p >= end:
        return False
    c = data[p] | 32  # ASCII lowercase
    if c == 114 or c == 99:  # r, c
        return True
    # d: dispute, not deposit
    return c == 100 and p + 1 < end and (data[p + 1] | 32) == 105


@njit(cache=True, parallel=True, nogil=True)
def _referenced_in_block(
    data, ends, type_first, canonical, col_type, col_client, col_tx, col_amount, ncols, out
):
    """For each line of a block (line i ends at ends[i]): the tx id it references, or -1."""
    for i in prange(ends.size):
        s = ends[i - 1] + 1 if i > 0 else 0
        e = ends[i]
        out[i] = -1
        if type_first and not _maybe_reference(data, s, e):
            continue
        status, kind, _, tx, _ = parse_row(
            data, s, e, canonical, col_type, col_client, col_tx, col_amount, ncols
        )
        if status == 0 and kind >= DISPUTE:
            out[i] = tx


def first_pass(
    path: str | Path,
    header: Header,
    progress: Callable[[int], None] | None = None,
    reader: BlockReader | None = None,
) -> np.ndarray:
    """Scan the file once; return the bitmap of every tx id that the file's disputes,
    resolves and chargebacks name."""
    referenced = np.zeros(1, dtype=np.uint64)
    for block in (reader or BlockReader()).blocks(path, header.line_index + 1):
        out = np.empty(len(block), dtype=np.int64)
        _referenced_in_block(
            block.data,
            block.ends,
            header.type == 0,
            header.canonical,
            header.type,
            header.client,
            header.tx,
            header.amount,
            header.width,
            out,
        )
        referenced = set_bits(referenced, out)
        if progress:
            progress(block.data.size)
    return referenced

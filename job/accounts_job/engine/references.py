"""The first pass over the input: which tx ids does any dispute, resolve or chargeback name?

The rules only need to remember a deposit if some row will ask about it later
(docs/rules.md §4.4). This pass finds those tx ids, so the second pass keeps one slot per
referenced deposit instead of one per deposit in the file. The scanning itself is
compiled (kernels/references.py); this module feeds it the file's blocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io.blocks import BlockReader
from ..io.header import Header
from ..kernels.bitmaps import new_set
from ..kernels.references import PARTS, reference_capacity, referenced_in_block, set_parts


def first_pass(
    path: str | Path,
    header: Header,
    progress: Callable[[int], None] | None = None,
    reader: BlockReader | None = None,
    digest: hashlib._Hash | None = None,
) -> tuple[np.ndarray, ...]:
    """Scan the file once; return the set (kernels/bitmaps.py) of every tx id that the
    file's disputes, resolves and chargebacks name. `digest` is fed the whole file on the
    way."""
    referenced = new_set()
    # Found ids per part of a block, reused from block to block.
    ids = np.empty(0, dtype=np.uint32)
    counts = np.zeros(PARTS, dtype=np.int64)
    for block in (reader or BlockReader()).blocks(
        path, header.line_index + 1, lines=False, digest=digest
    ):
        size = reference_capacity(block.data.size)
        if ids.size < size:
            ids = np.empty(size, dtype=np.uint32)
        referenced_in_block(
            block.data,
            block.words,
            header.type == 0,
            header.canonical,
            (header.type, header.client, header.tx, header.amount, header.width),
            ids[:size],
            counts,
        )
        referenced = set_parts(referenced, ids[:size], counts)
        if progress:
            progress(block.data.size)
    return referenced

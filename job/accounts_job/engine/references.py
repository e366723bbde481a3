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
from ..kernels.lines import CONTENT_PARTS, content_lines, is_content
from ..kernels.references import PARTS, reference_capacity, referenced_in_block, set_parts


class InputDigest:
    """The two hashes of an input a nightly run knows it by (docs/rules.md §7).

    `sha256`: of its bytes, as they are. `content_sha256`: of its content as the rules
    read it (§2.1): the lines that are not blank, without the CRs, spaces and tabs at
    their ends, each ended by one LF, and no byte-order mark. So a file re-sent with
    CRLF line ends, a BOM, blank lines, trailing blanks or a final LF more or less is
    the same content. The first pass takes both on its way through the file.
    """

    def __init__(self) -> None:
        self.raw = hashlib.sha256()
        self.content = hashlib.sha256()
        self._out = np.empty(0, dtype=np.uint8)
        self._starts = np.zeros(CONTENT_PARTS, dtype=np.int64)
        self._sizes = np.zeros(CONTENT_PARTS, dtype=np.int64)
        self._first = True

    def update(self, data: np.ndarray | bytes) -> None:
        """Bytes of the file as read, in order, cut anywhere (the reading thread)."""
        self.raw.update(data)

    def lines(self, data: np.ndarray) -> None:
        """Whole lines of the file, in order (BlockReader.blocks' `content`)."""
        if self._first:
            self._first = False
            if data[:3].tobytes() == _BOM:
                data = data[3:]
        if data.ctypes.data % 8:
            data = data.copy()  # a line before the data (a block's start is aligned)
        n_words = data.size // 8
        if is_content(data, data[: n_words * 8].view(np.uint64), n_words):
            self.content.update(data)  # the common case: nothing to take out
            return
        if self._out.size < data.size + 1:
            self._out = np.empty(data.size + 1, dtype=np.uint8)
        content_lines(data, self._out, self._starts, self._sizes)
        for start, size in zip(self._starts.tolist(), self._sizes.tolist(), strict=True):
            if size:
                self.content.update(self._out[start : start + size])

    @property
    def sha256(self) -> str:
        return self.raw.hexdigest()

    @property
    def content_sha256(self) -> str:
        return self.content.hexdigest()


_BOM = b"\xef\xbb\xbf"


def first_pass(
    path: str | Path,
    header: Header,
    progress: Callable[[int], None] | None = None,
    reader: BlockReader | None = None,
    digest: InputDigest | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Scan the file once; return the bitmap of every tx id that the file's disputes,
    resolves and chargebacks name. `digest` is fed the whole file on the way. `limit`:
    read no byte at or past it (BlockReader.blocks)."""
    referenced = np.zeros(1, dtype=np.uint64)
    # Found ids per part of a block, reused from block to block.
    ids = np.empty(0, dtype=np.uint32)
    counts = np.zeros(PARTS, dtype=np.int64)
    for block in (reader or BlockReader()).blocks(
        path,
        header.line_index + 1,
        lines=False,
        digest=digest,
        limit=limit,
        content=digest.lines if digest is not None else None,
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

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
from ..kernels.lines import CONTENT_PARTS, content_lines, is_content
from ..kernels.references import PARTS, reference_capacity, referenced_in_block, set_parts


class InputDigest:
    """The two hashes of an input a nightly run knows it by (docs/rules.md §7).

    `sha256`: of its bytes, as they are. `content_sha256`: of its content as the rules
    read it (§2.1): the lines that are not blank, without the CRs, spaces and tabs at
    their ends, each ended by one LF, and no byte-order mark. So a file re-sent with
    CRLF line ends, a BOM, blank lines, trailing blanks or a final LF more or less is
    the same content. The first pass takes both on its way through the file.

    Most files are their own content: while they are, one hash serves for both, and
    the content is only copied and hashed apart from the bytes from the first line on
    that is not.
    """

    def __init__(self) -> None:
        self.raw = hashlib.sha256()
        self.content: hashlib._Hash | None = None  # None: the same as `raw` so far
        self._out = np.empty(0, dtype=np.uint8)
        self._starts = np.zeros(CONTENT_PARTS, dtype=np.int64)
        self._sizes = np.zeros(CONTENT_PARTS, dtype=np.int64)
        self._first = True

    def lines(self, data: np.ndarray) -> None:
        """Whole lines of the file, every one and in order (BlockReader.blocks'
        `content`)."""
        text = data
        if self._first:
            self._first = False
            if data[:3].tobytes() == _BOM:
                text = data[3:]
                self.content = hashlib.sha256()  # the content starts after the mark
        if text.ctypes.data % 8:
            text = text.copy()  # a line before the data (a block's start is aligned)
        n_words = text.size // 8
        clean = is_content(text, text[: n_words * 8].view(np.uint64), n_words)
        if not clean and self.content is None:
            self.content = self.raw.copy()  # the content up to these lines
        self.raw.update(data)
        if self.content is None:
            return  # the common case: the content is the bytes
        if clean:
            self.content.update(text)
            return
        if self._out.size < text.size + 1:
            self._out = np.empty(text.size + 1, dtype=np.uint8)
        content_lines(text, self._out, self._starts, self._sizes)
        for start, size in zip(self._starts.tolist(), self._sizes.tolist(), strict=True):
            if size:
                self.content.update(self._out[start : start + size])

    @property
    def sha256(self) -> str:
        return self.raw.hexdigest()

    @property
    def content_sha256(self) -> str:
        return (self.content or self.raw).hexdigest()


_BOM = b"\xef\xbb\xbf"


def first_pass(
    path: str | Path,
    header: Header,
    progress: Callable[[int], None] | None = None,
    reader: BlockReader | None = None,
    digest: InputDigest | None = None,
    limit: int | None = None,
    referenced: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, ...]:
    """Scan the file once; return the set (kernels/bitmaps.py) of every tx id that the
    file's disputes, resolves and chargebacks name, added to `referenced` if given (the
    set of the inputs before it in the run). `digest` is fed every line of the file on
    the way. `limit`: read no byte at or past it (BlockReader.blocks)."""
    if referenced is None:
        referenced = new_set()
    # Found ids per part of a block, reused from block to block.
    ids = np.empty(0, dtype=np.uint32)
    counts = np.zeros(PARTS, dtype=np.int64)
    for block in (reader or BlockReader()).blocks(
        path,
        header.line_index + 1,
        lines=False,
        end_at=limit,
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

"""Typed rows from raw blocks: the parsing kernel driven batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..codes import MALFORMED_ROW, NONE
from ..io.blocks import Block
from ..io.header import Header
from ..kernels.parse import parse_lines

# Lines per batch: the rules run batch by batch, with state carried across batches.
DEFAULT_BATCH_SIZE = 1 << 18


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

    def line_numbers(self, rows: np.ndarray) -> np.ndarray:
        """The 1-based line numbers of the given rows of the batch (docs/rules.md §5.2)."""
        return rows + self.first_line


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
                h.columns,
                kinds,
                clients,
                txs,
                amounts,
                status,
            )
            bad = block.malformed_rows
            if bad.size:
                # Lines holding a NUL byte, or too long: not text we accept (docs/rules.md
                # §2.1).
                rows = bad[(bad >= lo) & (bad < lo + n)] - lo
                status[rows] = MALFORMED_ROW
                kinds[rows] = NONE
            yield ParsedBatch(block, lo, kinds, clients, txs, amounts, status)

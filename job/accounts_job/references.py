"""The first pass: which tx ids does any dispute, resolve or chargeback name?

The rules only need to remember a deposit if some row will ask about it later. This pass
finds those tx ids, so the second pass keeps one slot per referenced deposit instead of
one per deposit in the file.

It has to be cheap: it reads the file in large blocks straight into a reused buffer and
looks at each line just enough to know whether it could be a dispute, resolve or
chargeback; only those lines get the full parser. The answer may be a superset (a line
the second pass rejects costs one unused slot) but never misses a row the second pass
accepts, because both passes use the same line parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit, prange

from .codes import DISPUTE
from .errors import ReadError
from .header import Header
from .kernel import popcount, set_bits
from .parse import QUOTE, is_blank, parse_line

BLOCK_BYTES = 32 << 20
_NEWLINE = 10


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


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_LFS = np.uint64(0x0A0A0A0A0A0A0A0A)


@njit(cache=True, inline="always")
def _lf_marks(word):
    """The high bit of each byte of `word` that is an LF, and no other bit."""
    x = word ^ _LFS  # LF bytes become zero
    return ~(((x & _LOW7) + _LOW7) | x) & _HIGH


@njit(cache=True, parallel=True)
def newline_positions(words, tail, n_words):
    """Positions of every LF in a block, in order.

    `words` is the block's first `n_words` * 8 bytes seen as 64-bit words, `tail` its
    last few bytes. Eight bytes are tested at a time (a branch-free zero-byte test), in
    parallel parts: first counted, then written at offsets the counts give.
    """
    parts = 16
    size = (n_words + parts - 1) // parts
    counts = np.zeros(parts + 1, dtype=np.int64)
    for p in prange(parts):
        found = 0
        for w in range(p * size, min(n_words, (p + 1) * size)):
            found += popcount(_lf_marks(words[w]))
        counts[p + 1] = found
    for p in range(parts):
        counts[p + 1] += counts[p]
    tail_found = 0
    for i in range(tail.size):
        tail_found += tail[i] == _NEWLINE
    out = np.empty(counts[parts] + tail_found, dtype=np.int64)
    for p in prange(parts):
        k = counts[p]
        for w in range(p * size, min(n_words, (p + 1) * size)):
            marks = _lf_marks(words[w])
            while marks:
                low = marks & (~marks + np.uint64(1))  # lowest set bit
                out[k] = w * 8 + np.int64(popcount(low - np.uint64(1))) // 8
                k += 1
                marks ^= low
    k = counts[parts]
    for i in range(tail.size):
        if tail[i] == _NEWLINE:
            out[k] = n_words * 8 + i
            k += 1
    return out


@njit(cache=True, parallel=True)
def _referenced_in_block(
    data, ends, type_first, col_type, col_client, col_tx, col_amount, ncols, out
):
    """For each line of a block (line i ends at ends[i]): the tx id it references, or -1."""
    for i in prange(ends.size):
        s = ends[i - 1] + 1 if i > 0 else 0
        e = ends[i]
        out[i] = -1
        if type_first and not _maybe_reference(data, s, e):
            continue
        status, kind, _, tx, _ = parse_line(
            data, s, e, col_type, col_client, col_tx, col_amount, ncols
        )
        if status == 0 and kind >= DISPUTE:
            out[i] = tx


@dataclass
class FirstPass:
    """What the first pass learned: referenced tx ids, and lines holding a NUL byte."""

    referenced: np.ndarray  # bitmap of tx ids named by disputes, resolves, chargebacks
    nul_lines: np.ndarray  # sorted 1-based line numbers of lines that hold a NUL byte


def first_pass(
    path: str | Path, header: Header, progress: Callable[[int], None] | None = None
) -> FirstPass:
    """Scan the file once: mark every tx id the file's disputes, resolves and chargebacks
    name, and note the lines that hold a NUL byte.

    NUL bytes: the second pass reads lines through Polars, which stops a line at a NUL
    (it stands in for the field separator there, see reader.py). Such a line is not text
    we accept, so the first pass, which sees the raw bytes, lists it, and the second pass
    rejects it as `malformed_row`. Looking costs one memchr per block.
    """
    referenced = np.zeros(1, dtype=np.uint64)
    raw = bytearray(BLOCK_BYTES)
    buf = np.frombuffer(raw, dtype=np.uint8)
    filled = 0  # bytes in buf, a partial line carried from the block before included
    line = header.line_index + 2  # 1-based number of the first line in buf
    nul_lines: list[int] = []
    try:
        with open(path, "rb", buffering=0) as f:
            # Skip the header line and everything before it.
            for _ in range(header.line_index + 1):
                f.readline()
            at_end = False
            while not at_end:
                got = f.readinto(memoryview(raw)[filled:])
                at_end = got == 0
                filled += got
                block = buf[:filled]
                n_words = filled // 8
                ends = newline_positions(
                    buf[: n_words * 8].view(np.uint64), buf[n_words * 8 : filled], n_words
                )
                if at_end and filled and (ends.size == 0 or ends[-1] != filled - 1):
                    # The last line lacks its line end.
                    ends = np.append(ends, filled)
                if ends.size == 0:
                    if filled == len(raw):  # a line longer than the buffer: grow it
                        del buf, block
                        raw = raw + bytearray(len(raw))
                        buf = np.frombuffer(raw, dtype=np.uint8)
                    continue
                out = np.empty(ends.size, dtype=np.int64)
                _referenced_in_block(
                    block,
                    ends,
                    header.type == 0,
                    header.type,
                    header.client,
                    header.tx,
                    header.amount,
                    header.width,
                    out,
                )
                referenced = set_bits(referenced, out)
                consumed = min(int(ends[-1]) + 1, filled)
                nul = raw.find(0, 0, consumed)
                while nul >= 0:
                    index = int(np.searchsorted(ends, nul))
                    nul_lines.append(line + index)
                    nul = raw.find(0, int(ends[index]) + 1, consumed)
                line += ends.size
                if progress:
                    progress(consumed)
                # Carry the partial last line to the front of the buffer.
                rest = filled - consumed
                buf[:rest] = buf[consumed:filled]
                filled = rest
    except OSError as e:
        raise ReadError(f"reading {path} failed: {e.strerror or e}") from e
    return FirstPass(referenced, np.array(nul_lines, dtype=np.int64))

"""Line ends, found eight bytes at a time.

A line is everything up to an LF (docs/rules.md §2.1); a CR before it is the parser's
business. `io.blocks` reads the input into blocks and asks these kernels where each
block's lines end, and whether any holds a NUL byte.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import popcount, trailing_zeros
from .bytes import CR, HIGH, LF, LFS, LOW7, ONES, SPACE, TAB


@njit(cache=True, inline="always")
def lf_marks(word):
    """The high bit of each byte of `word` that is an LF, and no other bit."""
    x = word ^ LFS  # LF bytes become zero
    return ~(((x & LOW7) + LOW7) | x) & HIGH


@njit(cache=True, inline="always")
def byte_marks(word, pattern):
    """The high bit of each byte of `word` equal to the byte `pattern` repeats."""
    x = word ^ pattern  # those bytes become zero
    return ~(((x & LOW7) + LOW7) | x) & HIGH


@njit(cache=True, parallel=True, nogil=True)
def newline_positions(words, tail, n_words, out):
    """(positions of every LF in a block, in order; whether the block holds a NUL byte;
    the longest line they end).

    `words` is the block's first `n_words` * 8 bytes seen as 64-bit words, `tail` its
    last few bytes. Eight bytes are tested at a time (branch-free zero-byte tests), in
    parallel parts: first counted, then written at offsets the counts give. Returns
    (out, count, has_nul, longest): the positions are out[:count], where `out` is the
    array given, or a larger one if that was too small; `longest` is the most bytes any
    line ended by one of them holds before its LF (the line limit, docs/rules.md §2.1,
    costs the reader one comparison per line this way, not a second pass).
    """
    parts = 16
    size = (n_words + parts - 1) // parts
    counts = np.zeros(parts + 1, dtype=np.int64)
    nuls = np.zeros(parts, dtype=np.uint64)
    for p in prange(parts):
        found = 0
        zero = np.uint64(0)
        for w in range(p * size, min(n_words, (p + 1) * size)):
            word = words[w]
            found += popcount(lf_marks(word))
            zero |= (word - ONES) & ~word & HIGH  # nonzero if a byte is NUL
        counts[p + 1] = found
        nuls[p] = zero
    has_nul = False
    for p in range(parts):
        counts[p + 1] += counts[p]
        has_nul = has_nul or nuls[p] != 0
    tail_found = 0
    for i in range(tail.size):
        tail_found += tail[i] == LF
        has_nul = has_nul or tail[i] == 0
    total = counts[parts] + tail_found
    if out.size < total:
        out = np.empty(total + total // 4, dtype=np.int64)
    # Per part: its first and last LF and the longest line between two of its LFs.
    firsts = np.full(parts, -1, dtype=np.int64)
    lasts = np.full(parts, -1, dtype=np.int64)
    gaps = np.zeros(parts, dtype=np.int64)
    for p in prange(parts):
        k = counts[p]
        # Before the part's first LF, `previous` is the byte before the part: the gap
        # to that LF is then part of a line, never longer than it, so the maximum is
        # still the longest line, and the loop needs no test for a first LF.
        previous = p * size * 8 - 1
        gap = 0
        for w in range(p * size, min(n_words, (p + 1) * size)):
            marks = lf_marks(words[w])
            while marks:
                position = w * 8 + np.int64(trailing_zeros(marks)) // 8
                out[k] = position
                k += 1
                gap = max(gap, position - previous - 1)
                previous = position
                marks &= marks - np.uint64(1)  # clear the lowest set bit
        if k > counts[p]:
            firsts[p] = out[counts[p]]
            lasts[p] = previous
        gaps[p] = gap
    longest = 0
    previous = -1  # the LF before the next line; -1 before the block's first line
    for p in range(parts):
        if firsts[p] >= 0:
            longest = max(longest, firsts[p] - previous - 1, gaps[p])
            previous = lasts[p]
    k = counts[parts]
    for i in range(tail.size):
        if tail[i] == LF:
            position = n_words * 8 + i
            out[k] = position
            k += 1
            longest = max(longest, position - previous - 1)
            previous = position
    return out, total, has_nul, longest


@njit(cache=True, inline="always")
def next_line_end(data, words, pos):
    """Position of the first LF at or after `pos` in `data`, or data.size if none.

    `words` is the buffer seen as 64-bit words (Block.words): whole words of `data` are
    tested eight bytes at a time.
    """
    n = data.size
    while pos < n and pos & 7:
        if data[pos] == LF:
            return pos
        pos += 1
    w = pos >> 3
    n_words = n >> 3
    while w < n_words:
        marks = lf_marks(words[w])
        if marks:
            return w * 8 + np.int64(trailing_zeros(marks)) // 8
        w += 1
    pos = max(pos, n_words * 8)
    while pos < n:
        if data[pos] == LF:
            return pos
        pos += 1
    return n


@njit(cache=True, nogil=True)
def last_line_end(data):
    """[position of the last LF in data], or [] if there is none."""
    for i in range(data.size - 1, -1, -1):
        if data[i] == LF:
            return np.array([i], dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


@njit(cache=True, inline="always")
def line_start(ends, i):
    """Where line i of a block starts: after the LF that ends line i - 1.

    `ends[i]` is the position of line i's LF (or the block's end for an unended last line).
    """
    return ends[i - 1] + 1 if i > 0 else 0


CONTENT_PARTS = 16
_CRS = ONES * np.uint64(CR)
_TABS = ONES * np.uint64(TAB)
_SPACES = ONES * np.uint64(SPACE)
_LAST_BYTE = np.uint64(56)
_BYTE = np.uint64(8)


@njit(cache=True, nogil=True)
def is_content(data, words, n_words):
    """Whether whole lines `data` are their own content (content_lines would copy them
    unchanged): no CR, no tab, no blank line, no space before a line end, and a last
    line that ends with an LF. Most files are: their bytes are then hashed as they are.

    `words` is data[: n_words * 8] as 64-bit words; eight bytes are tested at a time,
    in one thread (the first pass's own kernel has the cores). It may say no for lines
    that are content (a tab inside a line): those are then copied, to the same bytes.
    """
    n = data.size
    if n == 0 or data[n - 1] != LF:
        return False
    # Whether the byte before ends a line or is a space (an LF after either is a blank
    # line or a trailing space); before the data, a line has just ended.
    carry = np.uint64(0x80)
    found = np.uint64(0)
    for w in range(n_words):
        x = words[w]
        lf = lf_marks(x)
        ends = lf | byte_marks(x, _SPACES)
        found |= byte_marks(x, _CRS) | byte_marks(x, _TABS)
        found |= lf & ((ends << _BYTE) | carry)  # an LF right after an LF or a space
        carry = ends >> _LAST_BYTE
    if found:
        return False
    for i in range(n_words * 8, n):
        b = data[i]
        before = data[i - 1] if i > 0 else LF
        if b == CR or b == TAB or (b == LF and (before == LF or before == SPACE)):
            return False
    return True


@njit(cache=True, nogil=True)
def _content_part(data, lo, hi, out):
    """content_lines for the whole lines data[lo:hi], written to out from `lo` on."""
    k = lo  # bytes of `out` written, from lo
    line = lo  # where the current line starts in `out`
    keep = lo  # where its content ends: after its last byte that is not a blank
    for i in range(lo, hi):
        b = data[i]
        if b == LF:
            if keep > line:
                out[keep] = LF
                k = keep + 1
            else:  # a blank line: nothing of it stays
                k = line
            line = keep = k
        else:
            out[k] = b
            k += 1
            if b != SPACE and b != TAB and b != CR:
                keep = k
    if keep > line:  # a last line without its LF
        out[keep] = LF
        k = keep + 1
    else:
        k = line
    return k - lo


@njit(cache=True, nogil=True, parallel=True)
def content_lines(data, out, starts, sizes):
    """The content of whole lines, as exactly-once compares files (docs/rules.md §7):
    every line that is not blank, without the CRs, spaces and tabs at its end, and
    ended by one LF.

    `data` holds whole lines (the last may lack its LF); `out` needs data.size + 1
    bytes; `starts` and `sizes` CONTENT_PARTS entries each. The lines are cut into
    parts at line ends and done in parallel: part p's content is
    out[starts[p] : starts[p] + sizes[p]], and the parts in order are the content.
    Two files that differ only in line ends (LF or CRLF), blank lines, trailing blanks
    or a missing final LF give the same content.
    """
    n = data.size
    parts = starts.size
    for p in range(parts):
        # Each part starts after the line end at or after its share of the bytes.
        at = p * n // parts
        while 0 < at < n and data[at - 1] != LF:
            at += 1
        starts[p] = at
    for p in prange(parts):
        hi = starts[p + 1] if p + 1 < parts else n
        sizes[p] = _content_part(data, starts[p], max(starts[p], hi), out)

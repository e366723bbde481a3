"""The first pass's kernels: which tx ids does any dispute, resolve or chargeback name?

The rules only need to remember a deposit if some row will ask about it later. This pass
finds those tx ids, so the second pass keeps one slot per referenced deposit instead of
one per deposit in the file.

It has to be cheap: it reads the file in raw blocks (io/blocks.py) and looks at each line
just enough to know whether it could be a dispute, resolve or chargeback; only those
lines get the parser. The answer may be a superset (a line the second pass rejects costs
one unused slot) but never misses a row the second pass accepts, because both passes use
the same line parser.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..codes import DISPUTE, MAX_TX
from .bitmaps import set_bits
from .bits import trailing_zeros
from .bytes import COMMA, CR, QUOTE
from .lines import lf_marks, next_line_end
from .parse import (
    W_CHARGEBA,
    W_DISPUTE,
    W_RESOLVE,
    ends_with,
    is_blank,
    load8,
    number,
    parse_line,
)


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


# A row that references a tx has at least 11 bytes (`resolve,1,2`) and its line end, so
# a stretch of n bytes holds at most n // 11 + 1 of them.
_MIN_REFERENCE_LINE = 11
PARTS = 64


@njit(cache=True, inline="always")
def _canonical_reference(data, words, start, end):
    """The tx id a canonical dispute, resolve or chargeback row names; -1 for another
    canonical row; -2 when the row is not canonical (ask the parser).

    Like parse_canonical, but only as far as a reference needs: the type and the tx.
    It may name a row the rules will reject (an over-long client): one unused slot."""
    n = end
    if n > start and data[n - 1] == CR:
        n -= 1
    if n - start < 8:
        return -2
    head = load8(words, start)
    if head == W_DISPUTE or head == W_RESOLVE:
        p = start + 8
    elif head == W_CHARGEBA and ends_with(data, start, n, 99, 107):  # "ck,"
        p = start + 11
    else:
        return -2
    _, digits = number(words, p, n)  # the client
    p += digits
    if digits == 0 or p == n or data[p] != COMMA:
        return -2
    tx, digits = number(words, p + 1, n)
    p += 1 + digits
    if digits == 0 or digits > 10 or tx > MAX_TX:
        return -2
    if p == n or (p + 1 == n and data[p] == COMMA):
        return tx
    return -2


@njit(cache=True, nogil=True)
def _reference_at(data, words, s, e, type_first, canonical, cols):
    """The tx id the line data[s:e] references; -1 if it is no well-formed reference;
    -2 if `canonical` and the line is not (the caller then scans again, generally)."""
    if type_first and not _maybe_reference(data, s, e):
        return -1
    if canonical:
        return _canonical_reference(data, words, s, e)
    status, kind, _, tx, _ = parse_line(data, s, e, cols)
    return np.int64(tx) if status == 0 and kind >= DISPUTE else -1


@njit(cache=True, inline="always")
def _line_end(data, words, e, pending, ids, k, type_first, canonical, cols):
    """At the LF at `e`: record the pending candidate's reference if it is one, and make
    the next line the pending candidate if it may be one. Returns (pending, k)."""
    if pending >= 0:
        tx = _reference_at(data, words, pending, e, type_first, canonical, cols)
        if tx >= 0:
            ids[k] = tx
            k += 1
        elif tx == -2:
            return -2, -1  # not canonical: the part must be scanned again, generally
    # Bounded by the block's end, not by the line's (not known yet), this check may
    # pass a line it should not; the parse then says no.
    if e + 1 < data.size and (not type_first or _maybe_reference(data, e + 1, data.size)):
        return e + 1, k
    return -1, k


@njit(cache=True, nogil=True)
def _scan_part(data, words, w_lo, w_hi, type_first, canonical, cols, ids, k):
    """One part of referenced_in_block: words w_lo .. w_hi - 1. Returns the new k, or -1
    if `canonical` and a row that may be a reference is not canonical (the caller then
    scans the part again with `canonical` False: the general parser for every row)."""
    n = data.size
    n_words = n >> 3
    # A candidate line's start, parsed once its LF turns up.
    pending = -1
    if w_lo == 0 and n > 0 and (not type_first or _maybe_reference(data, np.int64(0), n)):
        pending = 0  # the block's first line
    for w in range(w_lo, w_hi):
        marks = lf_marks(words[w])
        if w == n_words:  # the last, partial word: mask off the bytes past the block
            marks &= (np.uint64(1) << np.uint64(8 * (n - n_words * 8))) - np.uint64(1)
        while marks:
            e = w * 8 + np.int64(trailing_zeros(marks)) // 8
            marks &= marks - np.uint64(1)  # clear the lowest set bit
            pending, k = _line_end(data, words, e, pending, ids, k, type_first, canonical, cols)
            if pending == -2:
                return -1
    if pending >= 0:
        # A candidate whose line ends in a later part (or is the block's last).
        e = next_line_end(data, words, pending)
        tx = _reference_at(data, words, pending, e, type_first, canonical, cols)
        if tx >= 0:
            ids[k] = tx
            k += 1
        elif tx == -2:
            return -1
    return k


@njit(cache=True, parallel=True, nogil=True)
def referenced_in_block(data, words, type_first, canonical, cols, ids, counts):
    """The tx ids that the block's disputes, resolves and chargebacks name.

    The block is cut into parts walked in parallel, eight bytes at a time. A part owns
    the lines that start right after its LFs (the first part also the block's first
    line), and looks at each only as far as needed: a line whose first byte cannot start
    dispute, resolve or chargeback is never read further. Nothing is stored per line.
    Part p's ids go to ids[p * cap : p * cap + counts[p]]; `ids` must hold
    reference_capacity(data.size) entries.
    """
    total_words = (data.size + 7) >> 3  # `words` reaches past the data (Block.words)
    per_part = (total_words + PARTS - 1) // PARTS
    cap = ids.size // PARTS
    for p in prange(PARTS):
        w_lo = min(total_words, p * per_part)
        w_hi = min(total_words, w_lo + per_part)
        # `fast` is a bool, never the constant True or False, so that numba compiles
        # _scan_part once, not once per constant (as it would for a literal argument).
        fast = canonical
        k = -1
        if fast:
            k = _scan_part(data, words, w_lo, w_hi, type_first, fast, cols, ids, p * cap)
        if k < 0:
            fast = np.bool_(False)
            k = _scan_part(data, words, w_lo, w_hi, type_first, fast, cols, ids, p * cap)
        counts[p] = k - p * cap


def reference_capacity(n: int) -> int:
    """Room for the ids referenced_in_block may find in n bytes."""
    per_part = ((n + 7) // 8 + PARTS - 1) // PARTS
    return PARTS * (per_part * 8 // _MIN_REFERENCE_LINE + 2)


@njit(cache=True, nogil=True)
def set_parts(bits, ids, counts):
    """Add every id referenced_in_block found to the set `bits`; returns the set (which
    may be new arrays: see bitmaps.add)."""
    cap = ids.size // counts.size
    found = np.empty(counts.sum(), dtype=ids.dtype)
    k = 0
    for p in range(counts.size):
        found[k : k + counts[p]] = ids[p * cap : p * cap + counts[p]]
        k += counts[p]
    return set_bits(bits, found)

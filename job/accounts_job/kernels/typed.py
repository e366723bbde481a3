"""Typing the text columns of a typed source (Parquet, Arrow): compiled, one value at a time.

A text column comes as Arrow lays it out: the bytes of its values and where each starts
and ends (an offsets buffer, or the inline part of a string view). Each value is read
exactly as the CSV parser reads a field (docs/rules.md §2.11): spaces and tabs trimmed at
both ends, then the same grammar for the type name, the ids and the amount (the
functions of kernels/parse.py), so a value means the same in a Parquet file as in a CSV.

The loops are serial: a batch's text columns take a few milliseconds, and the threads
are better left to the Parquet reader running beside them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..codes import CHARGEBACK, DEPOSIT, DISPUTE, NONE, RESOLVE, WITHDRAWAL
from .parse import _parse_amount, _parse_uint, is_blank, word

# The type names folded to lowercase, as _folded reads them (a name of 10 bytes: its
# first 8, then its last 2).
_DEPOSIT = word(b"deposit")
_DISPUTE = word(b"dispute")
_RESOLVE = word(b"resolve")
_WITHDRAW = word(b"withdraw")
_CHARGEBA = word(b"chargeba")
_AL = word(b"al")
_CK = word(b"ck")


@njit(cache=True, inline="always")
def _folded(data, start, n):
    """Bytes start .. start + n - 1 (n <= 8), each OR 0x20, as a little-endian word.

    For a lowercase ASCII letter L, ``b | 0x20 == L`` holds exactly when b is L or its
    uppercase: so comparing folded words is the case-insensitive ASCII comparison of
    docs/rules.md §2.5 (no other byte, and no byte of a non-ASCII letter, folds to it)."""
    w = np.uint64(0)
    for j in range(n):
        w |= np.uint64(data[start + j] | 0x20) << np.uint64(8 * j)
    return w


@njit(cache=True, inline="always")
def _named(n, key, tail):
    """The kind a value of n bytes names (docs/rules.md §2.5), or NONE: `key` is its
    first bytes (7, or 8 when it has more) and `tail` its 9th and 10th, each folded
    (_folded). The one table of names that kind_of and view_kinds read."""
    if n == 7:
        if key == _DEPOSIT:
            return DEPOSIT
        if key == _DISPUTE:
            return DISPUTE
        if key == _RESOLVE:
            return RESOLVE
    elif n == 8:
        if key == _WITHDRAW:
            return WITHDRAWAL
    elif n == 10:
        if key == _WITHDRAW and tail == _AL:
            return WITHDRAWAL
        if key == _CHARGEBA and tail == _CK:
            return CHARGEBACK
    return NONE


@njit(cache=True, inline="always")
def kind_of(data, start, end):
    """The kind a trimmed value names (docs/rules.md §2.5), or NONE."""
    n = end - start
    if n != 7 and n != 8 and n != 10:
        return NONE
    tail = _folded(data, start + 8, 2) if n == 10 else np.uint64(0)
    return _named(n, _folded(data, start, min(n, 8)), tail)


@njit(cache=True, inline="always")
def _bounds(data, starts, ends, valid, i):
    """The trimmed bounds of value i, and whether it holds a NUL byte. A null is empty."""
    if not valid[i]:
        return starts[i], starts[i], False
    return _trimmed(data, starts[i], ends[i])


@njit(cache=True, inline="always")
def _trimmed(data, start, end):
    """The bounds of data[start:end] without blanks at either end, and whether it holds
    a NUL byte."""
    nul = False
    for p in range(start, end):
        if data[p] == 0:
            nul = True
            break
    while start < end and is_blank(data[start]):
        start += 1
    while end > start and is_blank(data[end - 1]):
        end -= 1
    return start, end, nul


@njit(cache=True, nogil=True)
def text_kinds(data, starts, ends, valid, kinds, nul):
    """The kind of each value (codes.NONE when it names none); nul[i] set if value i
    holds a NUL byte. Value i is data[starts[i]:ends[i]]."""
    for i in range(kinds.size):
        start, end, has_nul = _bounds(data, starts, ends, valid, i)
        kinds[i] = kind_of(data, start, end)
        nul[i] = has_nul


@njit(cache=True, nogil=True)
def text_uints(data, starts, ends, valid, limit, values, nul):
    """Each value as an id of at most `limit` (-1 if the CSV grammar refuses it)."""
    for i in range(values.size):
        start, end, has_nul = _bounds(data, starts, ends, valid, i)
        values[i] = _parse_uint(data, start, end, limit)
        nul[i] = has_nul


@njit(cache=True, nogil=True)
def text_amounts(data, starts, ends, valid, units, nul):
    """Each value as an amount in units of 0.0001 (-1 if docs/rules.md §2.8 refuses it)."""
    for i in range(units.size):
        start, end, has_nul = _bounds(data, starts, ends, valid, i)
        units[i] = _parse_amount(data, start, end)
        nul[i] = has_nul


@njit(cache=True, nogil=True)
def decimal_units(words, factor, limit, valid, units):
    """decimal128 values (words: their 16-byte little-endian unscaled integers, as
    (low, high) int64 pairs) times `factor` as units of 0.0001: positive and at most
    `limit` units before the factor, else -1 (docs/rules.md §2.8)."""
    for i in range(units.size):
        low = words[i, 0]
        # The value fits int64 when its high word is the sign of its low word.
        fits = words[i, 1] == (low >> 63)
        if valid[i] and fits and low > 0 and low <= limit:
            units[i] = low * factor
        else:
            units[i] = -1


_FOLD4 = np.uint64(0x20202020)  # each of four bytes OR 0x20
_FOLD3 = np.uint64(0x202020)
_FOLD2 = np.uint64(0x2020)
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW24 = np.uint64(0xFFFFFF)
_LOW16 = np.uint64(0xFFFF)
_S32 = np.uint64(32)


@njit(cache=True, nogil=True)
def view_kinds(data, words, valid, kinds, nul):
    """text_kinds over string views whose values are all inline (12 bytes or fewer).

    `words` is the views' buffer as uint64, two words per view: the length (the low 32
    bits of the first) then the bytes inline. A value spelt exactly as a name (in any
    case) is found from the two words at once; any other value (blanks to trim, a NUL,
    no name at all) goes through text_kinds's reading of its bytes in `data`, the same
    buffer as bytes."""
    for i in range(kinds.size):
        kind = NONE
        if valid[i]:
            w0 = words[2 * i]
            w1 = words[2 * i + 1]
            n = w0 & _LOW32
            head = (w0 >> _S32) | _FOLD4  # the first four bytes, folded
            if n == 7:
                kind = _named(n, head | (((w1 & _LOW24) | _FOLD3) << _S32), np.uint64(0))
            elif n == 8 or n == 10:
                key = head | (((w1 & _LOW32) | _FOLD4) << _S32)
                kind = _named(n, key, ((w1 >> _S32) & _LOW16) | _FOLD2)
        if kind != NONE:
            kinds[i] = kind
            nul[i] = False
            continue
        start = np.int64(16 * i + 4)
        end = start + np.int64(words[2 * i] & _LOW32)
        if not valid[i]:
            end = start
        start, end, has_nul = _trimmed(data, start, end)
        kinds[i] = kind_of(data, start, end)
        nul[i] = has_nul

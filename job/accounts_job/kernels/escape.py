"""The rejects' `raw` as CSV text and back, compiled (docs/rules.md §5.2).

A rejected line is bytes, any bytes but LF. A CSV file is text that people open in
spreadsheets, so the CSV form of `raw` is escaped such that it is valid UTF-8, holds no
control character, cannot start a formula, and still gives back the exact bytes:

- a backslash is written `\\\\`;
- a control byte (00 to 1F, 7F), each byte of a C1 control character (U+0080 to U+009F,
  `C2 80` to `C2 9F`) and each byte that is not part of valid UTF-8 is written `\\xNN`,
  two upper-case hex digits;
- a line that starts with an apostrophe `'`, or whose first character after any spaces
  is `=`, `+`, `-`, `@` or their full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), gets
  one more apostrophe in front.

Reading back drops one leading apostrophe, if any, and undoes the backslash escapes.
`io/rawtext.py` drives these kernels over Arrow arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bytes import SPACE

BACKSLASH = 92
APOSTROPHE = 39
_X = 120  # x
_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


@njit(cache=True, inline="always")
def _utf8_length(data, i, end):
    """Bytes of the valid UTF-8 character starting at data[i] (1 to 4), or 0 if the byte
    there does not start one that ends before `end` (RFC 3629: no overlong forms, no
    surrogates, nothing past U+10FFFF)."""
    c = data[i]
    if c < 0x80:
        return 1
    if c < 0xC2:
        return 0
    if c < 0xE0:
        need, lo, hi = 1, 0x80, 0xBF
    elif c < 0xF0:
        need = 2
        lo = 0xA0 if c == 0xE0 else 0x80
        hi = 0x9F if c == 0xED else 0xBF
    elif c < 0xF5:
        need = 3
        lo = 0x90 if c == 0xF0 else 0x80
        hi = 0x8F if c == 0xF4 else 0xBF
    else:
        return 0
    if i + need >= end:
        return 0
    b = data[i + 1]
    if b < lo or b > hi:
        return 0
    for k in range(2, need + 1):
        if data[i + k] & 0xC0 != 0x80:
            return 0
    return need + 1


@njit(cache=True, inline="always")
def _needs_apostrophe(data, start, end):
    """Whether a line's text could start a spreadsheet formula (or starts with `'`)."""
    if start < end and data[start] == APOSTROPHE:
        return True
    p = start
    while p < end and data[p] == SPACE:
        p += 1
    if p >= end:
        return False
    c = data[p]
    if c == 61 or c == 43 or c == 45 or c == 64:  # = + - @
        return True
    # Full-width = + - @: EF BC 9D, EF BC 8B, EF BC 8D, EF BC A0.
    if c == 0xEF and p + 2 < end and data[p + 1] == 0xBC:
        d = data[p + 2]
        return d == 0x9D or d == 0x8B or d == 0x8D or d == 0xA0
    return False


@njit(cache=True, inline="always")
def _put_hex(out, k, byte, write):
    if write:
        out[k] = BACKSLASH
        out[k + 1] = _X
        out[k + 2] = _HEX[byte >> 4]
        out[k + 3] = _HEX[byte & 15]
    return k + 4


@njit(cache=True)
def _escape_one(data, start, end, out, k, write):
    """Escape data[start:end] into out[k:] (only counted unless `write`); the new k."""
    if _needs_apostrophe(data, start, end):
        if write:
            out[k] = APOSTROPHE
        k += 1
    i = start
    while i < end:
        c = data[i]
        if c < 0x80:
            if c < 0x20 or c == 0x7F:
                k = _put_hex(out, k, c, write)
            elif c == BACKSLASH:
                if write:
                    out[k] = BACKSLASH
                    out[k + 1] = BACKSLASH
                k += 2
            else:
                if write:
                    out[k] = c
                k += 1
            i += 1
            continue
        size = _utf8_length(data, i, end)
        if size == 0:
            k = _put_hex(out, k, c, write)  # not UTF-8: this byte alone
            i += 1
        elif size == 2 and c == 0xC2 and data[i + 1] < 0xA0:
            k = _put_hex(out, k, c, write)  # a C1 control character
            k = _put_hex(out, k, data[i + 1], write)
            i += 2
        else:
            if write:
                for j in range(size):
                    out[k + j] = data[i + j]
            k += size
            i += size
    return k


@njit(cache=True)
def escape_lines(offsets, data):
    """Escape every value of an Arrow binary array, given as its int64 `offsets` (one
    more than values) and `data`; returns the escaped text's (offsets, bytes)."""
    n = offsets.size - 1
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    none = np.empty(0, dtype=np.uint8)
    for j in range(n):
        out_offsets[j + 1] = _escape_one(
            data, offsets[j], offsets[j + 1], none, out_offsets[j], False
        )
    out = np.empty(out_offsets[n], dtype=np.uint8)
    for j in range(n):
        _escape_one(data, offsets[j], offsets[j + 1], out, out_offsets[j], True)
    return out_offsets, out


@njit(cache=True, inline="always")
def _hex_value(c):
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


@njit(cache=True)
def unescape_lines(offsets, data):
    """The inverse of escape_lines: (offsets, bytes, bad), where `bad` is the index of
    the first value that is not in the escaped form (a stray backslash), or -1."""
    n = offsets.size - 1
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    out = np.empty(offsets[n] - offsets[0], dtype=np.uint8)  # unescaping never grows
    k = 0
    for j in range(n):
        i, end = offsets[j], offsets[j + 1]
        if i < end and data[i] == APOSTROPHE:
            i += 1
        while i < end:
            c = data[i]
            if c != BACKSLASH:
                out[k] = c
                k += 1
                i += 1
                continue
            if i + 1 < end and data[i + 1] == BACKSLASH:
                out[k] = BACKSLASH
                k += 1
                i += 2
                continue
            if i + 3 < end and data[i + 1] == _X:
                high = _hex_value(data[i + 2])
                low = _hex_value(data[i + 3])
                if high >= 0 and low >= 0:
                    out[k] = high * 16 + low
                    k += 1
                    i += 4
                    continue
            return out_offsets, out[:0], j
        out_offsets[j + 1] = k
    return out_offsets, out[:k], -1

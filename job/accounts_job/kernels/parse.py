"""Typing and validating raw lines, compiled.

The block reader (io/blocks.py) hands over raw bytes and the positions of their line
ends. These kernels turn every line into a typed command, or a malformed-row reason,
exactly as docs/rules.md §2 says: fields split on commas, double quotes honoured, spaces
and tabs trimmed, ragged rows padded or checked, and amounts read as exact integer units
of 0.0001.

Why not let Polars split and type the fields? Its CSV reader cannot reject one bad row
and go on, and the rules' tolerance (trimming, ragged rows, exact amounts with at most
four places, blank lines that still count as lines) needs a pass over every field
anyway: one compiled pass over the bytes costs less than Polars' own typed read of the
same columns. The kernel is stateless per line, so it runs in parallel on every core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..codes import (
    BLANK,
    CHARGEBACK,
    DEPOSIT,
    DISPUTE,
    INVALID_AMOUNT,
    INVALID_CLIENT,
    INVALID_TX,
    MALFORMED_ROW,
    MAX_CLIENT,
    MAX_TX,
    MAX_UNITS,
    NONE,
    RESOLVE,
    UNITS_PER_WHOLE,
    UNKNOWN_TYPE,
    WITHDRAWAL,
)
from .bits import load_bytes8, trailing_zeros
from .bytes import COMMA, CR, DOT, HIGH, LOW7, QUOTE, SPACE, TAB, ZERO
from .lines import line_start

# Type names, lowercase ASCII; compared case-insensitively.
_DEPOSIT = np.frombuffer(b"deposit", dtype=np.uint8)
_WITHDRAWAL = np.frombuffer(b"withdrawal", dtype=np.uint8)
_WITHDRAW = np.frombuffer(b"withdraw", dtype=np.uint8)
_DISPUTE = np.frombuffer(b"dispute", dtype=np.uint8)
_RESOLVE = np.frombuffer(b"resolve", dtype=np.uint8)
_CHARGEBACK = np.frombuffer(b"chargeback", dtype=np.uint8)

# Amounts are int64 units of 0.0001: the whole part may not pass 922337203685477, and at
# that whole part the fraction may not pass .5807.
_MAX_WHOLE = MAX_UNITS // UNITS_PER_WHOLE
_MAX_FRAC_AT_MAX_WHOLE = MAX_UNITS % UNITS_PER_WHOLE
_POW10 = np.array([1, 10, 100, 1000, 10000], dtype=np.int64)
_POW10_16 = 10 ** np.arange(17, dtype=np.int64)


@njit(cache=True, inline="always")
def is_blank(c: int) -> bool:
    return c == SPACE or c == TAB


@njit(cache=True)
def _equals_ci(data, start, end, word) -> bool:
    """Whether data[start:end] equals the lowercase ASCII `word`, ignoring ASCII case."""
    if end - start != word.size:
        return False
    for i in range(word.size):
        c = data[start + i]
        if 65 <= c <= 90:  # A-Z
            c += 32
        if c != word[i]:
            return False
    return True


@njit(cache=True)
def _parse_kind(data, start, end) -> int:
    if _equals_ci(data, start, end, _DEPOSIT):
        return DEPOSIT
    if _equals_ci(data, start, end, _WITHDRAWAL) or _equals_ci(data, start, end, _WITHDRAW):
        return WITHDRAWAL
    if _equals_ci(data, start, end, _DISPUTE):
        return DISPUTE
    if _equals_ci(data, start, end, _RESOLVE):
        return RESOLVE
    if _equals_ci(data, start, end, _CHARGEBACK):
        return CHARGEBACK
    return NONE


@njit(cache=True)
def _parse_uint(data, start, end, limit) -> int:
    """Digits only (no sign, leading zeros allowed), at most `limit`; -1 if not."""
    if start >= end:
        return -1
    value = 0
    for i in range(start, end):
        d = data[i] - ZERO
        if d < 0 or d > 9:
            return -1
        value = value * 10 + d
        if value > limit:
            return -1
    return value


@njit(cache=True)
def _parse_amount(data, start, end) -> int:
    """A plain positive decimal as exact units of 0.0001; -1 if docs/rules.md §2.8 refuses it.

    Digits with at most one point, at least one digit; no sign, no exponent, no
    separators. Places past the fourth must be zeros (`1.50000` is 1.5, `1.00001` is
    not). Zero and anything past the int64 range of units are refused too.
    """
    whole = 0
    frac = 0
    frac_digits = 0
    digits = 0
    seen_point = False
    for i in range(start, end):
        c = data[i]
        if c == DOT:
            if seen_point:
                return -1
            seen_point = True
            continue
        d = c - ZERO
        if d < 0 or d > 9:
            return -1
        digits += 1
        if not seen_point:
            whole = whole * 10 + d
            if whole > _MAX_WHOLE:
                return -1
        elif frac_digits < 4:
            frac = frac * 10 + d
            frac_digits += 1
        elif d != 0:
            return -1
    if digits == 0:
        return -1
    frac *= _POW10[4 - frac_digits]
    if whole == _MAX_WHOLE and frac > _MAX_FRAC_AT_MAX_WHOLE:
        return -1
    units = whole * 10_000 + frac
    if units == 0:
        return -1
    return units


@njit(cache=True)
def parse_line(data, start, end, cols):
    """Parse one line: (status, kind, client, tx, amount), status 0 when well formed.

    `cols` is the header's layout, ``(type, client, tx, amount, width)``: each column's
    0-based position (amount -1 when absent) and the number of fields the header has
    (io.header.Header.columns).
    """
    col_type, col_client, col_tx, col_amount, ncols = cols
    # The CR of a CRLF line end, if the reader left it; then: is the line blank?
    while end > start and (data[end - 1] == CR or is_blank(data[end - 1])):
        end -= 1
    p = start
    while p < end and is_blank(data[p]):
        p += 1
    if p == end:
        return BLANK, NONE, 0, 0, 0

    # Bounds of the four fields we read; absent fields stay empty (ragged rows).
    t0 = t1 = c0 = c1 = x0 = x1 = a0 = a1 = 0
    field = 0
    pos = start
    while True:
        # One field: skip leading blanks, then a quoted or a bare value.
        while pos < end and is_blank(data[pos]):
            pos += 1
        if pos < end and data[pos] == QUOTE:
            q = pos + 1
            # Closing quote; a doubled quote inside is an escaped quote.
            close = -1
            while q < end:
                if data[q] == QUOTE:
                    if q + 1 < end and data[q + 1] == QUOTE:
                        q += 2
                        continue
                    close = q
                    break
                q += 1
            if close < 0:
                return MALFORMED_ROW, NONE, 0, 0, 0  # unterminated quote
            fs = pos + 1
            fe = close
            pos = close + 1
            while pos < end and is_blank(data[pos]):
                pos += 1
            if pos < end and data[pos] != COMMA:
                return MALFORMED_ROW, NONE, 0, 0, 0  # text after the closing quote
            # Spaces inside the quotes are trimmed too.
            while fs < fe and is_blank(data[fs]):
                fs += 1
            while fe > fs and is_blank(data[fe - 1]):
                fe -= 1
        else:
            fs = pos
            while pos < end and data[pos] != COMMA:
                pos += 1
            fe = pos
            while fe > fs and is_blank(data[fe - 1]):
                fe -= 1
        if field == col_type:
            t0, t1 = fs, fe
        elif field == col_client:
            c0, c1 = fs, fe
        elif field == col_tx:
            x0, x1 = fs, fe
        elif field == col_amount:
            a0, a1 = fs, fe
        elif field >= ncols and fe > fs:
            return MALFORMED_ROW, NONE, 0, 0, 0  # a non-empty field past the header
        field += 1
        if pos >= end:
            break
        pos += 1  # the comma; a trailing one opens one more, empty, field

    kind = _parse_kind(data, t0, t1)
    if kind == NONE:
        return UNKNOWN_TYPE, NONE, 0, 0, 0
    client = _parse_uint(data, c0, c1, np.int64(MAX_CLIENT))  # int64: one compile
    if client < 0:
        return INVALID_CLIENT, NONE, 0, 0, 0
    tx = _parse_uint(data, x0, x1, np.int64(MAX_TX))
    if tx < 0:
        return INVALID_TX, NONE, 0, 0, 0
    amount = 0
    if kind == DEPOSIT or kind == WITHDRAWAL:
        amount = _parse_amount(data, a0, a1)
        if amount < 0:
            return INVALID_AMOUNT, NONE, 0, 0, 0
    return 0, kind, client, tx, amount


# Eight bytes at a time (SWAR): a canonical row's fields are short runs of digits, and
# reading a run byte by byte costs a mispredicted branch where it ends. Loading eight
# bytes and finding the run's length and value with a few multiplications costs none.
_U = np.uint64
_ASCII_ZEROS = _U(0x3030303030303030)
_ABOVE_NINE = _U(0x7676767676767676)  # 0x76 + a byte's low 7 bits sets bit 7 if > 9


def word(text: bytes) -> np.uint64:
    """Up to 8 bytes as a little-endian word (zeros after them), as load8 reads bytes."""
    return np.uint64(int.from_bytes(text.ljust(8, b"\0")[:8], "little"))


# A type word and its comma, as the eight bytes load8 returns for them.
_W_DEPOSIT = word(b"deposit,")
W_DISPUTE = word(b"dispute,")
W_RESOLVE = word(b"resolve,")
_W_WITHDRAW = word(b"withdraw")
W_CHARGEBA = word(b"chargeba")


@njit(cache=True, inline="always")
def load8(words, p):
    """The 8 bytes data[p : p + 8] as a little-endian word (`words`: see Block.words)."""
    return load_bytes8(words, p)


@njit(cache=True, inline="always")
def _digit_run(v):
    """(how many of v's bytes, from the first, are ASCII digits: 0..8; v with every digit
    byte turned into its value 0..9)."""
    x = v ^ _ASCII_ZEROS
    other = (((x & LOW7) + _ABOVE_NINE) | x) & HIGH
    # Trailing zeros of `other` in whole bytes; 8 when every byte is a digit.
    return np.int64(trailing_zeros(other)) >> 3, x


@njit(cache=True, inline="always")
def _digits_value(x, n):
    """The number spelled by the first n (1..8) digit values of x."""
    x = x << _U(8 * (8 - n))  # drop the rest; zeros come in as leading zeros
    x = ((x & _U(0x0F0F0F0F0F0F0F0F)) * _U(2561)) >> _U(8)
    x = ((x & _U(0x00FF00FF00FF00FF)) * _U(6553601)) >> _U(16)
    x = ((x & _U(0x0000FFFF0000FFFF)) * _U(42949672960001)) >> _U(32)
    return np.int64(x)


@njit(cache=True, inline="always")
def number(words, p, end):
    """(value, digits) of the run of digits at data[p:end]; at most 16 digits are read."""
    length, x = _digit_run(load8(words, p))
    length = min(length, end - p)
    if length == 0:
        return 0, 0
    value = _digits_value(x, length)
    if length == 8 and p + 8 < end:
        more, x = _digit_run(load8(words, p + 8))
        more = min(more, end - p - 8)
        if more:
            value = value * _POW10_16[more] + _digits_value(x, more)
            length += more
    return value, length


@njit(cache=True, inline="always")
def ends_with(data, p, n, a, b) -> bool:
    """Whether the 8-byte word at p goes on with bytes a, b and a comma (an 11-byte type)."""
    return n - p >= 11 and data[p + 8] == a and data[p + 9] == b and data[p + 10] == COMMA


@njit(cache=True, inline="always")
def parse_canonical(data, words, start, end):
    """The fast path: a row exactly as generators and most partners write it.

    `type,client,tx[,amount]` with the header `type,client,tx,amount`: a lowercase type,
    plain digits, an amount with at most four places, no spaces, no quotes, LF or CRLF.
    Returns (True, kind, client, tx, amount) for such a row, which parse_line would
    read the same way. For anything else it returns (False, ...) and the caller asks
    parse_line, which knows every form docs/rules.md §2 allows; so this path never has to be
    complete, only right about what it accepts.
    """
    n = end
    if n > start and data[n - 1] == CR:
        n -= 1
    p = start
    if n - p < 8:
        return False, NONE, 0, 0, 0
    head = load8(words, p)
    if head == _W_DEPOSIT:
        kind = DEPOSIT
        p += 8
    elif head == _W_WITHDRAW:
        if not ends_with(data, p, n, 97, 108):  # "al,"
            return False, NONE, 0, 0, 0
        kind = WITHDRAWAL
        p += 11
    elif head == W_DISPUTE:
        kind = DISPUTE
        p += 8
    elif head == W_RESOLVE:
        kind = RESOLVE
        p += 8
    elif head == W_CHARGEBA:
        if not ends_with(data, p, n, 99, 107):  # "ck,"
            return False, NONE, 0, 0, 0
        kind = CHARGEBACK
        p += 11
    else:
        return False, NONE, 0, 0, 0
    # client: one to five digits, at most 65535, then a comma
    client, digits = number(words, p, n)
    p += digits
    if digits == 0 or digits > 5 or client > MAX_CLIENT or p == n or data[p] != COMMA:
        return False, NONE, 0, 0, 0
    p += 1
    # tx: one to ten digits, at most 2**32 - 1
    tx, digits = number(words, p, n)
    p += digits
    if digits == 0 or digits > 10 or tx > MAX_TX:
        return False, NONE, 0, 0, 0
    if kind >= DISPUTE:
        # The amount is ignored, but a non-empty one is the general parser's to judge.
        if p == n or (p + 1 == n and data[p] == COMMA):
            return True, kind, client, tx, 0
        return False, NONE, 0, 0, 0
    if p == n or data[p] != COMMA:
        return False, NONE, 0, 0, 0
    p += 1
    # amount: 1 to 14 whole digits (far from the int64 limit), then . and 1 to 4 places
    whole, digits = number(words, p, n)
    p += digits
    if digits == 0 or digits > 14:
        return False, NONE, 0, 0, 0
    frac = 0
    if p < n:
        if data[p] != DOT:
            return False, NONE, 0, 0, 0
        p += 1
        frac, digits = number(words, p, n)
        p += digits
        if digits == 0 or digits > 4 or p != n:
            return False, NONE, 0, 0, 0
        frac *= _POW10[4 - digits]
    units = whole * UNITS_PER_WHOLE + frac
    if units == 0:
        return False, NONE, 0, 0, 0
    return True, kind, client, tx, units


@njit(cache=True, inline="always")
def parse_row(data, words, start, end, canonical, cols):
    """parse_line, through the fast path first when the header is the canonical one."""
    if canonical:
        ok, kind, client, tx, amount = parse_canonical(data, words, start, end)
        if ok:
            return 0, kind, client, tx, amount
    return parse_line(data, start, end, cols)


@njit(cache=True, parallel=True, nogil=True)
def parse_lines(data, words, ends, lo, canonical, cols, kinds, clients, txs, amounts, status):
    """Parse lines lo, lo + 1, ... of a block, one entry per line, in parallel.

    Parameters
    ----------
    data : uint8 array
        The block's bytes; line i is ``data[line_start(ends, i) : ends[i]]``.
    words : uint64 array
        The same buffer as 64-bit words, reaching past the data (io.blocks.Block.words).
    ends : int64 array
        Where each line of the block ends (its LF, or the end of an unended last line).
    lo : int
        The first line to parse; as many lines are parsed as the output arrays hold.
    canonical : bool
        Whether the header is exactly ``type,client,tx,amount``, so that rows may take
        the fast path (parse_canonical).
    cols : tuple of int
        The header's layout, as parse_line takes it.
    kinds, clients, txs, amounts, status : arrays, one entry per line
        The parsed rows. `status` gets 0 for a well-formed row, BLANK for a blank line,
        else the malformed reason; `kinds` is 0 (NONE) for every row that is not well
        formed. (Separate arguments, not a tuple: numba's parallel loops write into
        arrays unpacked from a tuple argument as if into copies.)
    """
    for j in prange(status.size):
        i = lo + j
        st, kind, client, tx, amount = parse_row(
            data, words, line_start(ends, i), ends[i], canonical, cols
        )
        status[j] = st
        kinds[j] = kind
        clients[j] = client
        txs[j] = tx
        amounts[j] = amount

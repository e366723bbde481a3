"""How the rows look as text: CSV lines in a chosen Shape, built with Polars.

Choices of spelling, padding, quoting and garbage are small integer codes drawn with numpy
and turned into text by Polars string expressions, so no Python loop runs per row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import polars as pl

from .options import KINDS, Shape
from .rows import DEPOSIT, DISPUTE, HUGE_AMOUNTS, UNITS_PER_UNIT, WITHDRAWAL, Rows

HEADER = ("type", "client", "tx", "amount")

# Other spellings of each kind, with the share of that kind's rows that get them.
_SPELLINGS: dict[int, tuple[tuple[str, float], ...]] = {
    0: (("Deposit", 0.10), ("DEPOSIT", 0.05)),
    1: (("withdraw", 0.50), ("Withdraw", 0.10), ("WITHDRAW", 0.05), ("Withdrawal", 0.05)),
    2: (("Dispute", 0.10), ("DISPUTE", 0.05)),
    3: (("Resolve", 0.10), ("RESOLVE", 0.05)),
    4: (("Chargeback", 0.10), ("ChargeBack", 0.05), ("CHARGEBACK", 0.05)),
}

# Garbage for malformed rows. None of these is a valid value for its field.
BAD_TYPES = ("transfer", "depositt", "withdrawl", "refund", "", "dispute?", "#N/A", "garbage")
BAD_CLIENTS = ("70000", "65536", "-1", "x", "", "1.5", "0x10", "1 2")
BAD_TXS = ("4294967296", "-7", "t9", "", "12a", "99999999999", "1e3")
BAD_AMOUNTS = (
    "1.00001",
    "-5",
    "1e3",
    '"1,000"',
    "abc",
    "",
    "0",
    "0.0000",
    "+5",
    "1.2.3",
    "NaN",
    "$5",
)
BAD_EXTRAS = (",x", ",0", ",extra", ",1.0")
# Amounts on dispute/resolve/chargeback rows: allowed, and ignored by the job.
IGNORED_AMOUNTS = ("5.0", "abc", "-1", "0")

# Kinds of malformation and the share of malformed rows each takes.
BLANK, BAD_TYPE, BAD_CLIENT, BAD_TX, BAD_AMOUNT, BAD_EXTRA = range(1, 7)
_BAD_CDF = np.cumsum([0.10, 0.20, 0.20, 0.15, 0.25, 0.10])

# Padding for --spaces; plain "," stays among the choices so rows differ.
_SEPARATORS = (",", ", ", " ,", " , ", ",\t", "\t,", ", \t", ",  ")
_LINE_PADS = ("", "", "", " ", "\t", "  ")
_HEADER_SEPARATORS = (", ", ",\t", " , ")

_QUOTE_SHARE = 0.15  # per field
_SHORT_SHARE = 0.25  # dispute/resolve/chargeback rows without the amount field
_IGNORED_AMOUNT_SHARE = 0.05  # dispute/resolve/chargeback rows with an amount
_EXTRA_EMPTY_SHARE = 0.05  # rows with one more, empty, field

# Table of every type text: the canonical names first, so a kind code is its own index.
_TYPES = (
    *KINDS,
    *(text for variants in _SPELLINGS.values() for text, _ in variants),
    *BAD_TYPES,
)
_FIRST_BAD_TYPE = len(_TYPES) - len(BAD_TYPES)
# Texts that replace the amount field; code 0 means none.
_AMOUNT_TEXTS = ("", *HUGE_AMOUNTS, *BAD_AMOUNTS, *IGNORED_AMOUNTS)
_FIRST_HUGE = 1
_FIRST_BAD_AMOUNT = _FIRST_HUGE + len(HUGE_AMOUNTS)
_FIRST_IGNORED_AMOUNT = _FIRST_BAD_AMOUNT + len(BAD_AMOUNTS)
# Texts appended to a line; code 0 means none, 1 an empty extra field.
_EXTRAS = ("", ",", *BAD_EXTRAS)
# The decimal part of an amount for each count of 0.0001 below one: "", ".0001", ".5", ...
# Looking these up is several times faster than formatting and trimming digits.
_FRACTIONS = ("", *(f".{i:04d}".rstrip("0") for i in range(1, UNITS_PER_UNIT)))
_QUOTES = ("", '"')


@dataclass(frozen=True)
class Rendered:
    """One chunk as bytes, and what went into it."""

    data: bytes
    malformed: int
    """Rows replaced by garbage, blank lines included."""
    blank: int


def _lookup(table: tuple[str, ...], column: str) -> pl.Expr:
    """Text for integer codes: code i is `table[i]`."""
    return pl.lit(pl.Series(table, dtype=pl.String)).gather(pl.col(column))


def _number_or(column: str, code: str, table: tuple[str, ...], overridden: bool) -> pl.Expr:
    """An integer column as text, replaced by `table[code]` where code is not 0."""
    number = pl.col(column).cast(pl.String)
    if not overridden:
        return number
    return pl.when(pl.col(code) == 0).then(number).otherwise(_lookup(table, code))


class Renderer:
    """Turns chunks of Rows into CSV bytes in one Shape.

    Draws its choices from its own random generator, so the shape never changes what the
    rows say, only how they look.
    """

    def __init__(self, shape: Shape, rng: np.random.Generator) -> None:
        self._shape = shape
        self._rng = rng
        self._eol = "\r\n" if shape.crlf else "\n"

    def header(self) -> bytes:
        """The header line, with the byte-order mark when asked for."""
        shape = self._shape
        names = [name.capitalize() if shape.withdraw_spelling else name for name in HEADER]
        if shape.withdraw_spelling:
            names[2] = "TX"
        if shape.quotes:
            names = [f'"{name}"' for name in names]
        if shape.spaces:
            line = names[0]
            for i, name in enumerate(names[1:]):
                line += _HEADER_SEPARATORS[i] + name
        else:
            line = ",".join(names)
        bom = "\ufeff" if shape.bom else ""
        return (bom + line + self._eol).encode()

    def render(self, rows: Rows) -> Rendered:
        """The lines of one chunk, each ended by the line end."""
        shape, rng = self._shape, self._rng
        n = len(rows)
        kind = rows.kind
        refers = kind >= DISPUTE

        type_code = kind.astype(np.uint16)
        if shape.withdraw_spelling:
            self._respell(kind, type_code)

        amount_code = np.zeros(n, np.uint8)
        has_huge = rows.huge > 0
        amount_code[has_huge] = _FIRST_HUGE - 1 + rows.huge[has_huge]
        short = np.zeros(n, bool)
        extra_code = np.zeros(n, np.uint8)
        if shape.ragged:
            draw = rng.random(n)
            short = refers & (draw < _SHORT_SHARE)
            ignored = refers & (draw >= 1 - _IGNORED_AMOUNT_SHARE)
            amount_code[ignored] = _FIRST_IGNORED_AMOUNT + rng.integers(
                0, len(IGNORED_AMOUNTS), int(ignored.sum())
            )
            extra_code[rng.random(n) < _EXTRA_EMPTY_SHARE] = 1

        bad = np.zeros(n, np.uint8)
        client_code = np.zeros(n, np.uint8)  # 0: the client id, else 1 + index
        tx_code = np.zeros(n, np.uint8)
        if shape.malformed_rate > 0:
            self._spoil(rows, bad, type_code, client_code, tx_code, amount_code, extra_code)
            short[(bad == BAD_AMOUNT) | (bad == BAD_EXTRA)] = False

        # An amount is its whole part (absent where there is no amount, or another text
        # replaces it), its decimal part (empty then), and the replacing text if any.
        shows_units = (rows.units > 0) & (amount_code == 0)
        frac = np.where(shows_units, rows.units % UNITS_PER_UNIT, 0).astype(np.uint16)
        columns: dict[str, np.ndarray] = {
            "type": type_code,
            "client": rows.client,
            "client_code": client_code,
            "tx": rows.tx,
            "tx_code": tx_code,
            "whole": rows.units // UNITS_PER_UNIT,
            "shows_units": shows_units,
            "frac": frac,
            "amount_code": amount_code,
            # The last separator is left out on short rows, the last table entry.
            "sep2": short.astype(np.uint8),
            "extra_code": extra_code,
        }
        separators = (",", "")
        if shape.spaces:
            separators = (*_SEPARATORS, "")
            for i in range(3):
                columns[f"sep{i}"] = rng.integers(0, len(_SEPARATORS), n, dtype=np.uint8)
            columns["sep2"][short] = len(_SEPARATORS)
            for i in range(2):
                columns[f"pad{i}"] = rng.integers(0, len(_LINE_PADS), n, dtype=np.uint8)
        else:
            columns["sep0"] = columns["sep1"] = np.zeros(n, np.uint8)

        amount = [
            pl.when(pl.col("shows_units")).then(pl.col("whole").cast(pl.String)),
            _lookup(_FRACTIONS, "frac"),
        ]
        if amount_code.any():
            amount.append(_lookup(_AMOUNT_TEXTS, "amount_code"))
        fields = [
            [_lookup(_TYPES, "type")],
            [_number_or("client", "client_code", ("", *BAD_CLIENTS), client_code.any())],
            [_number_or("tx", "tx_code", ("", *BAD_TXS), tx_code.any())],
            amount,
        ]
        if shape.quotes:
            # Garbage stays unquoted: quoting it could make it valid, or break it further.
            quote = (rng.random((4, n)) < _QUOTE_SHARE) & (bad == 0)
            quote[3] &= ~short  # a short row has no amount field to quote
            for i in range(4):
                columns[f"quote{i}"] = quote[i].astype(np.uint8)
                mark = _lookup(_QUOTES, f"quote{i}")
                fields[i] = [mark, *fields[i], mark]

        parts: list[pl.Expr] = []
        if shape.spaces:
            parts.append(_lookup(_LINE_PADS, "pad0"))
        for i in range(3):
            parts += fields[i]
            parts.append(_lookup(separators, f"sep{i}"))
        parts += fields[3]
        if shape.spaces:
            parts.append(_lookup(_LINE_PADS, "pad1"))
        if extra_code.any():
            parts.append(_lookup(_EXTRAS, "extra_code"))
        line = pl.concat_str(parts, ignore_nulls=True)
        if (bad == BLANK).any():
            columns["blank"] = bad == BLANK
            line = pl.when(pl.col("blank")).then(pl.lit("")).otherwise(line)

        buffer = io.BytesIO()
        pl.DataFrame(columns).select(line.alias("line")).write_csv(
            buffer, include_header=False, quote_style="never", line_terminator=self._eol
        )
        return Rendered(
            data=buffer.getvalue(),
            malformed=int((bad > 0).sum()),
            blank=int((bad == BLANK).sum()),
        )

    def _respell(self, kind: np.ndarray, type_code: np.ndarray) -> None:
        """Give some rows another spelling of their kind."""
        draw = self._rng.random(len(kind))
        code = len(KINDS)
        for k, variants in _SPELLINGS.items():
            of_kind = kind == k
            low = 0.0
            for _, share in variants:
                type_code[of_kind & (draw >= low) & (draw < low + share)] = code
                low += share
                code += 1

    def _spoil(
        self,
        rows: Rows,
        bad: np.ndarray,
        type_code: np.ndarray,
        client_code: np.ndarray,
        tx_code: np.ndarray,
        amount_code: np.ndarray,
        extra_code: np.ndarray,
    ) -> None:
        """Replace a share of the rows after the opening deposits by garbage, in place."""
        rng = self._rng
        n = len(rows)
        hit = rng.random(n) < self._shape.malformed_rate
        hit[: rows.opening] = False
        count = int(hit.sum())
        bad[hit] = 1 + np.searchsorted(_BAD_CDF, rng.random(count), side="right").clip(max=5)
        choice = np.zeros(n, np.int64)  # picks the garbage text, and more, by its bits
        choice[hit] = rng.integers(0, 1 << 16, count)

        def pick(what: int, size: int) -> tuple[np.ndarray, np.ndarray]:
            where = bad == what
            return where, (choice[where] % size).astype(np.uint16)

        where, index = pick(BAD_TYPE, len(BAD_TYPES))
        type_code[where] = _FIRST_BAD_TYPE + index
        where, index = pick(BAD_CLIENT, len(BAD_CLIENTS))
        client_code[where] = 1 + index
        where, index = pick(BAD_TX, len(BAD_TXS))
        tx_code[where] = 1 + index
        where, index = pick(BAD_AMOUNT, len(BAD_AMOUNTS))
        # A bad amount only matters on a deposit or a withdrawal.
        refers = where & (rows.kind >= DISPUTE)
        type_code[refers] = np.where(choice[refers] & 1, WITHDRAWAL, DEPOSIT)
        amount_code[where] = _FIRST_BAD_AMOUNT + index
        where, index = pick(BAD_EXTRA, len(BAD_EXTRAS))
        extra_code[where] = 2 + index  # past "" and ","

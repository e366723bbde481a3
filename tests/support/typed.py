"""A CSV's rows as a typed table (Parquet, Arrow): typed columns where the values allow,
text where they do not, as a data team converting the file would (docs/rules.md §2.11).

The conversion reads the CSV with the reference model (support/model.py), so it shares no
code with the engine. Blank lines have no row in a table: `lines` maps each row of the
table (1-based, in order) to its CSV line, so rejects can be compared line for line. A
malformed CSV row (a quoting error, a NUL byte, a non-empty field past the header) has no
fields to convert: it becomes a row whose type holds a NUL byte, which §2.11 makes
`malformed_row` as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from .model import (
    MAX_LINE_BYTES,
    ModelHeaderError,
    QuoteError,
    is_blank,
    parse_row,
    read_header,
    split_fields,
    split_raw_lines,
)

DIGITS = re.compile(r"[0-9]+")
DECIMAL = re.compile(r"([0-9]*)\.?([0-9]*)")
ROLES = ("type", "client", "tx", "amount")


@dataclass
class Converted:
    table: pa.Table
    lines: list[int]  # lines[i]: the CSV line of row i + 1


def csv_to_table(data: bytes, prefer: dict[str, str], nulls: bool = True) -> Converted | None:
    """The CSV `data` as a table, or None if it has no usable header.

    `prefer` says how to type each column when its values allow: `type` as "string",
    "categorical" or "binary"; `client` and `tx` as "int" or "text"; `amount` as
    "decimal", "int" or "text". `nulls`: empty fields become nulls (else empty text).
    """
    raw_lines = split_raw_lines(data)
    try:
        header_index, columns, width = read_header(raw_lines)
    except ModelHeaderError:
        return None
    names = split_fields(raw_lines[header_index].decode("utf-8"))
    lines = [line.decode("utf-8", errors="replace") for line in raw_lines]
    values: dict[str, list[str | None]] = {role: [] for role in columns}
    numbers = []
    for index in range(header_index + 1, len(lines)):
        if len(raw_lines[index]) < MAX_LINE_BYTES and is_blank(lines[index]):
            continue
        numbers.append(index + 1)
        row = (
            "malformed_row"
            if len(raw_lines[index]) >= MAX_LINE_BYTES
            else parse_row(lines[index], columns, width)
        )
        if row == "malformed_row":
            for role in columns:
                values[role].append("\x00" if role == "type" else None)
            continue
        try:
            fields = split_fields(lines[index])
        except QuoteError:  # pragma: no cover - parse_row said malformed_row
            raise
        for role, position in columns.items():
            text = fields[position] if position < len(fields) else ""
            values[role].append(None if nulls and text == "" else text)
    arrays, fields_out = [], []
    for role, position in sorted(columns.items(), key=lambda item: item[1]):
        arrays.append(_column(role, values[role], prefer.get(role, "text")))
        fields_out.append(names[position])
    # An ignored column, as partners' files have.
    arrays.append(pa.array(["note"] * len(numbers), pa.string()))
    fields_out.append("memo")
    return Converted(pa.Table.from_arrays(arrays, names=fields_out), numbers)


def _column(role: str, values: list[str | None], prefer: str) -> pa.Array:
    present = [v for v in values if v not in (None, "")]
    if role == "type":
        if prefer == "categorical":
            return pa.array(values, pa.string()).dictionary_encode()
        if prefer == "binary":
            return pa.array([_bytes(v) for v in values], pa.binary())
        return pa.array(values, pa.string())
    if prefer == "int" and all(DIGITS.fullmatch(v) and len(v) <= 18 for v in present):
        return pa.array([None if v in (None, "") else int(v) for v in values], pa.int64())
    if role == "amount" and prefer == "decimal" and all(_decimal(v) for v in present):
        return pa.array(
            [None if v in (None, "") else _decimal(v) for v in values], pa.decimal128(38, 4)
        )
    return pa.array(values, pa.string())


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogateescape")


def _decimal(text: str) -> Decimal | None:
    """`text` as an exact decimal of four places that decimal(38, 4) holds, or None."""
    m = DECIMAL.fullmatch(text)
    if m is None or not (m.group(1) or m.group(2)):
        return None
    whole, frac = m.group(1), m.group(2)
    if frac[4:].strip("0") or len(whole.lstrip("0")) > 30:
        return None
    return Decimal(f"{whole or '0'}.{frac[:4].ljust(4, '0')}")

"""Finding and reading the header line (docs/rules.md §2.2).

The header is the first non-blank line; names are trimmed, case-insensitive and in any
order; `type`, `client` and `tx` are required, `amount` is optional, other columns are
ignored. Anything else is a fatal error, not a reject, because without a header no row
can be read at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import HeaderError, InputError
from .source import open_input

REQUIRED = ("type", "client", "tx")
OPTIONAL = ("amount",)
_BOM = b"\xef\xbb\xbf"
_BLANKS = " \t"
# A header further down than this many bytes is not a header: the file is not ours.
_MAX_LEADING_BYTES = 1 << 20


@dataclass(frozen=True)
class Header:
    """Where the columns are. Positions are 0-based; `amount` is -1 when absent."""

    type: int
    client: int
    tx: int
    amount: int
    width: int  # number of fields in the header; a row may carry more only if they're empty
    line_index: int  # 0-based physical line of the header; data starts on the next line

    @property
    def canonical(self) -> bool:
        """Exactly `type,client,tx,amount`: rows may take the parser's fast path."""
        return self.columns == (0, 1, 2, 3, 4)

    @property
    def columns(self) -> tuple[int, int, int, int, int]:
        """(type, client, tx, amount, width): the layout as the parsing kernels take it."""
        return (self.type, self.client, self.tx, self.amount, self.width)


def _is_blank(line: bytes) -> bool:
    return not line.strip(b" \t\r\n")


def split_fields(line: str, line_index: int = 0) -> list[str]:
    """Split a line into trimmed fields by the same rules the row parser applies.

    Commas separate fields; a field may be double-quoted (a doubled quote inside is a
    quote); spaces and tabs are trimmed outside and inside the quotes.
    """
    fields: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos] in _BLANKS:
            pos += 1
        if pos < end and line[pos] == '"':
            value: list[str] = []
            pos += 1
            while True:
                close = line.find('"', pos)
                if close < 0:
                    raise HeaderError(f"header on line {line_index + 1} has an unclosed quote")
                value.append(line[pos:close])
                if line.startswith('"', close + 1):
                    value.append('"')
                    pos = close + 2
                    continue
                pos = close + 1
                break
            while pos < end and line[pos] in _BLANKS:
                pos += 1
            if pos < end and line[pos] != ",":
                raise HeaderError(f"header on line {line_index + 1} has text after a closing quote")
            fields.append("".join(value).strip(_BLANKS))
        else:
            comma = line.find(",", pos)
            stop = end if comma < 0 else comma
            fields.append(line[pos:stop].strip(_BLANKS))
            pos = stop
        if pos >= end:
            return fields
        pos += 1  # the comma; a trailing one opens one more, empty, field


def parse_header_line(line: str, line_index: int = 0) -> Header:
    """Map a header line's names to column positions, or raise HeaderError."""
    names = tuple(name.lower() for name in split_fields(line, line_index))
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in REQUIRED or name in OPTIONAL:
            if name in positions:
                raise HeaderError(f"header names column {name!r} twice: {line.strip()!r}")
            positions[name] = i
    missing = [n for n in REQUIRED if n not in positions]
    if missing:
        raise HeaderError(
            f"header lacks required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: found {line.strip()!r} on line {line_index + 1}"
        )
    return Header(
        type=positions["type"],
        client=positions["client"],
        tx=positions["tx"],
        amount=positions.get("amount", -1),
        width=len(names),
        line_index=line_index,
    )


def read_header(path: str | Path) -> Header:
    """Read the first non-blank line of a local file and parse it as the header."""
    try:
        with open_input(path, buffered=True) as f:
            consumed = 0
            for index, raw in enumerate(f):
                if index == 0 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                consumed += len(raw)
                if not _is_blank(raw):
                    try:
                        # As for a row (docs/rules.md §2.1), trailing CRs and blanks go.
                        text = raw.decode("utf-8").rstrip("\r\n \t")
                    except UnicodeDecodeError:
                        raise HeaderError(f"header on line {index + 1} is not UTF-8 text") from None
                    return parse_header_line(text, index)
                if consumed > _MAX_LEADING_BYTES:
                    break
    except FileNotFoundError:
        raise InputError(f"input not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"input is a directory, not a file: {path}") from None
    except PermissionError:
        raise InputError(f"input not readable (permission denied): {path}") from None
    except OSError as e:
        raise InputError(f"cannot read input {path}: {e.strerror or e}") from None
    raise HeaderError(f"no header line: {path} is empty or blank")

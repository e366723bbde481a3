"""Checking the input and finding and reading the header line (docs/rules.md §2.2).

The header is the first non-blank line; names are trimmed, case-insensitive and in any
order; `type`, `client` and `tx` are required, `amount` is optional, other columns are
ignored. Anything else is a fatal error, not a reject, because without a header no row
can be read at all.

The head of the file is read in blocks and never held whole: blank lines count toward
a bound of 1 MiB, and the header line toward the line limit (docs/rules.md §2.1).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from ..errors import HeaderError, InputError
from . import blocks
from .source import is_url, open_input

REQUIRED = ("type", "client", "tx")
OPTIONAL = ("amount",)
_BOM = b"\xef\xbb\xbf"
_BLANKS = " \t"
# A header further down than this many bytes is not a header: the file is not ours.
_MAX_LEADING_BYTES = 1 << 20
# Bytes read at a time while looking for the header.
_READ = 64 << 10
# Characters of a header line an error message shows.
_SHOWN = 80


@dataclass(frozen=True)
class Header:
    """Where the columns are. Positions are 0-based; `amount` is -1 when absent."""

    type: int
    client: int
    tx: int
    amount: int
    width: int  # number of fields in the header; a row may carry more only if they're empty
    line_index: int  # 0-based physical line of the header; data starts on the next line
    data_offset: int = 0  # byte offset in the file of the line after the header

    @property
    def canonical(self) -> bool:
        """Exactly `type,client,tx,amount`: rows may take the parser's fast path."""
        return self.columns == (0, 1, 2, 3, 4)

    @property
    def columns(self) -> tuple[int, int, int, int, int]:
        """(type, client, tx, amount, width): the layout as the parsing kernels take it."""
        return (self.type, self.client, self.tx, self.amount, self.width)


def _is_blank(line: bytes | bytearray) -> bool:
    return not line.strip(b" \t\r\n")


def shown(text: str) -> str:
    """`text` quoted for an error message, cut after _SHOWN characters: a hostile header
    must not fill the screen."""
    quoted = repr(text[: _SHOWN + 1])
    if len(quoted) <= _SHOWN + 2:
        return quoted
    return quoted[:_SHOWN] + "…"


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


def match_columns(
    names: Sequence[str],
) -> tuple[dict[str, int], tuple[str, int, int] | None, list[str]]:
    """Which of a header's (or a typed source's) column names are the job's columns
    (docs/rules.md §2.2, §2.11: blanks around a name trimmed, any case, any order, other
    names ignored).

    Returns (positions, twice, missing): each role found and the index of its column;
    the first role named twice as (role, first index, second index), else None (then
    the roles after it are not looked for); the required roles not found.
    """
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        role = name.strip(_BLANKS).lower()
        if role in REQUIRED or role in OPTIONAL:
            if role in positions:
                return positions, (role, positions[role], i), []
            positions[role] = i
    return positions, None, [n for n in REQUIRED if n not in positions]


def parse_header_line(line: str, line_index: int = 0) -> Header:
    """Map a header line's names to column positions, or raise HeaderError."""
    names = split_fields(line, line_index)
    positions, twice, missing = match_columns(names)
    if twice is not None:
        raise HeaderError(f"header names column {twice[0]!r} twice: {shown(line.strip())}")
    if missing:
        raise HeaderError(
            f"header lacks required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: found {shown(line.strip())} on line {line_index + 1}"
        )
    return Header(
        type=positions["type"],
        client=positions["client"],
        tx=positions["tx"],
        amount=positions.get("amount", -1),
        width=len(names),
        line_index=line_index,
    )


def check_input(path: str | Path) -> None:
    """Raise InputError unless `path` is a regular file the passes can read twice, or a
    URL (a cluster's workers read their ranges of it).

    A pipe, a compressed file or a URL of a run in one process reaches the passes as its
    spool file (io/spool.py), which is a regular file; checked before anything is opened,
    since opening a FIFO waits for a writer.
    """
    if is_url(path):
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise _input_error(path, e) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"input is a directory, not a file: {path}")
    if not stat.S_ISREG(mode):
        raise InputError(f"input {path} is not a regular file: the passes read files")


def read_header(path: str | Path) -> Header:
    """Read the first non-blank line of the input and parse it as the header."""
    check_input(path)
    try:
        with open_input(path, buffered=True) as f:
            return _find_header(f, path)
    except OSError as e:
        raise _input_error(path, e) from None


def _input_error(path: str | Path, e: OSError) -> InputError:
    """The InputError (66) for an input that cannot be opened or looked at."""
    if isinstance(e, FileNotFoundError):
        return InputError(f"input not found: {path}")
    if isinstance(e, IsADirectoryError):
        return InputError(f"input is a directory, not a file: {path}")
    if isinstance(e, PermissionError):
        return InputError(f"input not readable (permission denied): {path}")
    return InputError(f"cannot read input {path}: {e.strerror or e}")


def _find_header(f: BinaryIO, path: str | Path) -> Header:
    """The header of the file `f`, read a block at a time: at most 1 MiB of blank lines,
    then a line shorter than the line limit. Memory holds one block and one line."""
    limit = blocks.MAX_LINE_BYTES
    pending = bytearray(f.read(_READ))  # the file from `offset` on, as far as read
    offset = 0
    if pending.startswith(_BOM):
        del pending[: len(_BOM)]
        offset = len(_BOM)
    at_end = not pending
    pos = 0  # where in `pending` line `index` starts
    index = 0
    blank = 0  # bytes of blank lines so far, their LFs included
    while True:
        # Every whole line before the first byte that is not blank is blank: skip
        # them all at once (a file may start with a million blank lines).
        found = _NOT_BLANK.search(pending, pos)
        text_at = found.start() if found else len(pending)
        last_lf = pending.rfind(b"\n", pos, text_at)
        if last_lf >= 0:
            index += pending.count(b"\n", pos, last_lf + 1)
            blank += last_lf + 1 - pos
            pos = last_lf + 1
            if blank > _MAX_LEADING_BYTES:
                raise _no_header_within(path)
        end = pending.find(b"\n", pos) if found else -1
        if end < 0 and not at_end:
            # Part of a line: read on, unless it is already past a bound.
            if not found and blank + len(pending) - pos > _MAX_LEADING_BYTES:
                raise _no_header_within(path)
            if found and len(pending) - pos >= limit:
                raise _too_long(pending[pos:], index)
            del pending[:pos]
            offset += pos
            pos = 0
            more = f.read(_READ)
            at_end = not more
            pending += more
            continue
        if not found:
            if blank + len(pending) - pos > _MAX_LEADING_BYTES:
                raise _no_header_within(path)
            raise HeaderError(f"no header line: {path} is empty or blank")
        line = pending[pos:end] if end >= 0 else pending[pos:]
        if len(line) >= limit:
            raise _too_long(line, index)
        try:
            # As for a row (docs/rules.md §2.1), trailing CRs and blanks go.
            text = bytes(line).decode("utf-8").rstrip("\r\n \t")
        except UnicodeDecodeError:
            raise HeaderError(f"header on line {index + 1} is not UTF-8 text") from None
        header = parse_header_line(text, index)
        return replace(header, data_offset=offset + pos + len(line) + (end >= 0))


_NOT_BLANK = re.compile(rb"[^ \t\r\n]")


def _no_header_within(path: str | Path) -> HeaderError:
    return HeaderError(f"no header in the first 1 MiB of {path}: only blank lines")


def _too_long(line: bytearray, index: int) -> HeaderError:
    start = bytes(line[: 4 * _SHOWN]).decode("utf-8", errors="backslashreplace")
    return HeaderError(
        f"header on line {index + 1} is too long: {blocks.MAX_LINE_BYTES:,} bytes or more "
        f"(docs/rules.md §2.1); it starts {shown(start)}"
    )

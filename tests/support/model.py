"""A reference model of docs/rules.md in plain Python, written for readability, not speed.

It reads the whole text at once, splits it into lines and fields by hand, and applies the
rules with dicts and sets. The engine is compared against it; it shares no code with it.

The rules it follows, by section of docs/rules.md:
- §2.1: only `\\n` ends a line; a line of `max_line` bytes or more before its LF is
  too long, `malformed_row`; a line's trailing carriage returns, spaces and tabs are
  dropped; a line holding only spaces, tabs and carriage returns is blank; bytes that are
  not UTF-8 are read as U+FFFD, so they can only fail a field's check; a line holding a
  NUL byte (and not blank otherwise) is `malformed_row`;
- §2.2: the header is the first line that is not blank, UTF-8 and not too long, after at
  most 1 MiB of blank lines; its names are trimmed and compared in any case; `type`,
  `client`, `tx` are required and none of the four named twice;
- §2.3: a field is quoted when its first non-blank character is `"`; `""` inside quotes
  is one quote; spaces and tabs inside the quotes are trimmed too; an unterminated quote
  or text after a closing quote makes the row `malformed_row`;
- §2.4: missing trailing fields are empty; a non-empty field past the header's width
  makes the row `malformed_row`;
- §2.5 to §2.8: `type` in any ASCII case; `client` and `tx` are ASCII digits only (no
  sign, leading zeros allowed) within their ranges; `amount` a plain positive decimal,
  exact at four places, read for deposits and withdrawals only;
- §2.9: a malformed row's reason is the first of `malformed_row`, `unknown_type`,
  `invalid_client`, `invalid_tx`, `invalid_amount`;
- §4.2 to §4.4: the order of checks of a well-formed row; a deposit is `overflow` when
  `total` would pass 2**63 - 1 units (`available` <= `total` always, so that covers
  `available` too); a dispute that would carry `held` past it is `overflow`, checked
  after the referenced-tx checks;
- §5.4: rows read, applied by kind, rejected, blank lines (those before the header too).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

MAX_UNITS = 2**63 - 1
MAX_LINE_BYTES = 1 << 20  # §2.1
MAX_LEADING_BYTES = 1 << 20  # §2.2: blank lines before the header, their LFs included
MAX_CLIENT = 65_535
MAX_TX = 4_294_967_295

KINDS = {
    "deposit": "deposit",
    "withdrawal": "withdrawal",
    "withdraw": "withdrawal",
    "dispute": "dispute",
    "resolve": "resolve",
    "chargeback": "chargeback",
}
REQUIRED = ("type", "client", "tx")

DIGITS = re.compile(r"[0-9]+")
AMOUNT = re.compile(r"([0-9]*)\.?([0-9]*)")


class ModelHeaderError(Exception):
    """The text has no usable header."""


class QuoteError(Exception):
    """An unterminated quote, or text after a closing quote."""


def units_to_decimal(units: int) -> Decimal:
    """Units of 0.0001 as a Decimal with four places (§3)."""
    return Decimal(units).scaleb(-4)


def split_raw_lines(data: bytes) -> list[bytes]:
    """Physical lines (§2.1) as bytes: split on LF, after a leading byte-order mark."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def raw_of(line: bytes, max_line: int = MAX_LINE_BYTES) -> bytes:
    """A rejected line's `raw` (§5.2): without a final CR; a too-long line cut to
    `max_line` bytes, so only those have that length."""
    if len(line) >= max_line:
        return line[:max_line]
    return line.removesuffix(b"\r")


def split_lines(text: str) -> list[str]:
    """Physical lines (§2.1): split on LF; a final line end does not open another line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def is_blank(line: str) -> bool:
    """§2.1: nothing but spaces, tabs and carriage returns."""
    return line.strip(" \t\r") == ""


def split_fields(line: str) -> list[str]:
    """Fields of a line, trimmed (§2.3); raises QuoteError."""
    line = line.rstrip(" \t\r")
    fields = []
    i = 0
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == '"':
            value = ""
            i += 1
            while True:
                if i >= len(line):
                    raise QuoteError("unterminated quote")
                if line.startswith('""', i):
                    value += '"'
                    i += 2
                elif line[i] == '"':
                    i += 1
                    break
                else:
                    value += line[i]
                    i += 1
            while i < len(line) and line[i] in " \t":
                i += 1
            if i < len(line) and line[i] != ",":
                raise QuoteError("text after the closing quote")
        else:
            end = line.find(",", i)
            if end < 0:
                end = len(line)
            value = line[i:end]
            i = end
        fields.append(value.strip(" \t"))
        if i >= len(line):
            return fields
        i += 1  # past the comma


def parse_uint(text: str, limit: int) -> int | None:
    """A `client` (§2.6) or `tx` (§2.7): ASCII digits, at most `limit`; or None."""
    if not DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:
        return None
    return int(digits)


def parse_amount(text: str) -> int | None:
    """A plain positive decimal as units of 0.0001 (§2.8), or None."""
    m = AMOUNT.fullmatch(text)
    if m is None:
        return None
    whole, frac = m.group(1), m.group(2)
    if whole == "" and frac == "":
        return None
    if frac[4:].strip("0"):
        return None  # not exact at four places
    whole = whole.lstrip("0")
    if len(whole) > 20:
        return None
    units = int(whole or "0") * 10_000 + int(frac[:4].ljust(4, "0"))
    if units == 0 or units > MAX_UNITS:
        return None
    return units


@dataclass
class Account:
    available: int = 0
    held: int = 0
    locked: bool = False


@dataclass
class Tx:
    """An accepted deposit or withdrawal."""

    kind: str
    client: int
    amount: int
    state: str = "ok"  # ok, disputed, resolved, charged_back


@dataclass
class Outcome:
    accounts: dict[int, tuple[Decimal, Decimal, Decimal, bool]]
    rejects: list[tuple[int, str]]
    blank: int
    rows_read: int
    applied: Counter = field(default_factory=Counter)
    raw: list[bytes] = field(default_factory=list)  # each reject's raw (§5.2), in order


def read_header(
    lines: list[bytes], max_line: int = MAX_LINE_BYTES
) -> tuple[int, dict[str, int], int]:
    """(index of the header line, column positions, width), by §2.2."""
    leading = 0
    for index, raw in enumerate(lines):
        line = raw.decode("utf-8", errors="replace")
        if is_blank(line):
            leading += len(raw) + 1
            if leading > MAX_LEADING_BYTES:
                raise ModelHeaderError("no header in the first 1 MiB")
            continue
        if len(raw) >= max_line:
            raise ModelHeaderError("header too long")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelHeaderError("header not UTF-8") from None
        try:
            names = [name.lower() for name in split_fields(line)]
        except QuoteError as e:
            raise ModelHeaderError(str(e)) from None
        columns: dict[str, int] = {}
        for position, name in enumerate(names):
            if name in (*REQUIRED, "amount"):
                if name in columns:
                    raise ModelHeaderError(f"duplicate column {name}")
                columns[name] = position
        if any(name not in columns for name in REQUIRED):
            raise ModelHeaderError("missing column")
        return index, columns, len(names)
    raise ModelHeaderError("no header")


def parse_row(line: str, columns: dict[str, int], width: int):
    """(kind, client, tx, amount) of a well-formed row, or the malformed reason (a str),
    the first check of §2.9 that fails."""
    if "\x00" in line:
        return "malformed_row"
    try:
        fields = split_fields(line)
    except QuoteError:
        return "malformed_row"
    if any(fields[width:]):
        return "malformed_row"

    def get(name: str) -> str:
        position = columns.get(name, -1)
        return fields[position] if 0 <= position < len(fields) else ""

    type_text = get("type")
    kind = KINDS.get(type_text.lower()) if type_text.isascii() else None
    if kind is None:
        return "unknown_type"
    client = parse_uint(get("client"), MAX_CLIENT)
    if client is None:
        return "invalid_client"
    tx = parse_uint(get("tx"), MAX_TX)
    if tx is None:
        return "invalid_tx"
    amount = None
    if kind in ("deposit", "withdrawal"):
        amount = parse_amount(get("amount"))
        if amount is None:
            return "invalid_amount"
    return kind, client, tx, amount


def decide(kind, account: Account, tx_id, amount, client, claimed, txs) -> str | None:
    """Apply one well-formed row to the state (§4.2 to §4.4); the reject reason, or None if
    applied."""
    duplicate = False
    if kind in ("deposit", "withdrawal"):
        # docs/rules.md §4.3: the row claims its tx id when it is read, whatever happens next.
        duplicate = tx_id in claimed
        claimed.add(tx_id)
    if account.locked:
        return "account_locked"
    if duplicate:
        return "duplicate_tx"

    if kind == "deposit":
        if account.available + account.held + amount > MAX_UNITS:
            return "overflow"
        account.available += amount
        txs[tx_id] = Tx("deposit", client, amount)
        return None
    if kind == "withdrawal":
        if account.available < amount:
            return "insufficient_funds"
        account.available -= amount
        txs[tx_id] = Tx("withdrawal", client, amount)
        return None

    ref = txs.get(tx_id)
    if ref is None:
        return "unknown_tx"
    if ref.client != client:
        return "client_mismatch"
    if ref.kind == "withdrawal":
        return "not_disputable"
    if kind == "dispute":
        if ref.state == "disputed":
            return "already_disputed"
        if ref.state == "charged_back":
            return "already_charged_back"
        if account.held + ref.amount > MAX_UNITS:
            return "overflow"
        account.available -= ref.amount
        account.held += ref.amount
        ref.state = "disputed"
        return None
    if ref.state != "disputed":
        return "not_disputed"
    account.held -= ref.amount
    if kind == "resolve":
        account.available += ref.amount
        ref.state = "resolved"
    else:
        ref.state = "charged_back"
        account.locked = True
    return None


@dataclass
class Book:
    """What the rules remember across the lines of a stream, and across its files."""

    accounts: dict[int, Account] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)  # tx ids of well-formed deposits/withdrawals
    txs: dict[int, Tx] = field(default_factory=dict)  # accepted deposits and withdrawals


def simulate(text: str | bytes, max_line: int = MAX_LINE_BYTES) -> Outcome:
    """Run docs/rules.md over the text of a CSV file, with lines of `max_line` bytes or
    more too long (§2.1). Raises ModelHeaderError (§2.2)."""
    return simulate_files([text], max_line)


def simulate_files(texts: list[str | bytes], max_line: int = MAX_LINE_BYTES) -> Outcome:
    """Run docs/rules.md over several CSV files in order as one stream of commands
    (§2.10): each file has its own header and its own line numbers, the rules' memory
    goes on from file to file. The rejects are (line, reason) for one file, (file index,
    line, reason) for several. Raises ModelHeaderError if any file has no header."""
    book = Book()
    outcomes = [_simulate_into(book, text, max_line) for text in texts]
    result = {
        client: (
            units_to_decimal(a.available),
            units_to_decimal(a.held),
            units_to_decimal(a.available + a.held),
            a.locked,
        )
        for client, a in sorted(book.accounts.items())
    }
    if len(texts) == 1:
        rejects = outcomes[0].rejects
    else:
        rejects = [(k, line, reason) for k, o in enumerate(outcomes) for line, reason in o.rejects]
    applied: Counter = Counter()
    for o in outcomes:
        applied.update(o.applied)
    return Outcome(
        result,
        rejects,
        sum(o.blank for o in outcomes),
        sum(o.rows_read for o in outcomes),
        applied,
        [raw for o in outcomes for raw in o.raw],
    )


def _simulate_into(book: Book, text: str | bytes, max_line: int) -> Outcome:
    """One file of a stream, its rows applied to `book`; its outcome (accounts left
    empty: they are the stream's)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    raw_lines = split_raw_lines(data)
    header_index, columns, width = read_header(raw_lines, max_line)
    lines = [line.decode("utf-8", errors="replace") for line in raw_lines]
    raws: list[bytes] = []

    accounts, claimed, txs = book.accounts, book.claimed, book.txs
    rejects: list[tuple[int, str]] = []
    applied: Counter = Counter()
    blank = header_index  # lines before the header are blank

    for index in range(header_index + 1, len(lines)):
        line_number = index + 1
        raw = raw_of(raw_lines[index], max_line)
        if len(raw_lines[index]) >= max_line:
            row = "malformed_row"  # too long, whatever it holds (§2.1)
        elif is_blank(lines[index]):
            blank += 1
            continue
        else:
            row = parse_row(lines[index], columns, width)
        if isinstance(row, str):
            rejects.append((line_number, row))
            raws.append(raw)
            continue
        kind, client, tx_id, amount = row
        account = accounts.setdefault(client, Account())
        reason = decide(kind, account, tx_id, amount, client, claimed, txs)
        if reason is None:
            applied[kind] += 1
        else:
            rejects.append((line_number, reason))
            raws.append(raw)

    rows_read = len(lines) - 1
    return Outcome({}, rejects, blank, rows_read, applied, raws)


def model(text: str | bytes):
    """(accounts, rejects, blank lines) of the text, by docs/rules.md."""
    outcome = simulate(text)
    return outcome.accounts, outcome.rejects, outcome.blank

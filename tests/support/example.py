"""The worked example of docs/rules.md §9, read from the document itself.

The document is the one place the example is written out: its input, the accounts CSV it
must produce and its rejected lines are the three fenced ```csv blocks of §9, each
preceded by a marker line (`<!-- worked-example:input -->`, `...:accounts -->`,
`...:rejects -->`). Every test that runs the example takes it from here, so the example
the document shows is the one the suite checks.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "docs" / "rules.md"

FENCE = "```"


def worked_example_block(name: str, text: str | None = None) -> str:
    """The text of the fenced block after `<!-- worked-example:NAME -->`, with a line end
    after each line. Raises ValueError when the marker or its block is missing."""
    text = RULES.read_text(encoding="utf-8") if text is None else text
    marker = f"<!-- worked-example:{name} -->"
    lines = text.splitlines()
    if lines.count(marker) != 1:
        raise ValueError(f"{RULES}: expected one line {marker!r}, found {lines.count(marker)}")
    at = lines.index(marker) + 1
    while at < len(lines) and not lines[at].strip():
        at += 1
    if at >= len(lines) or lines[at].strip() != FENCE + "csv":
        raise ValueError(f"{RULES}: {marker} is not followed by a ```csv block")
    try:
        end = lines.index(FENCE, at + 1)
    except ValueError:
        raise ValueError(f"{RULES}: the block after {marker} is not closed") from None
    return "".join(line + "\n" for line in lines[at + 1 : end])


# The input: a header and nine rows.
WORKED_EXAMPLE = worked_example_block("input")
# The accounts CSV it must produce, byte for byte (docs/rules.md §5.1).
WORKED_EXAMPLE_CSV = worked_example_block("accounts")


def _rejects(text: str) -> list[tuple[int, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    if rows[0] != ["line", "reason"]:
        raise ValueError(f"{RULES}: the rejects block's header is {rows[0]}, not line,reason")
    return [(int(line), reason) for line, reason in rows[1:]]


def _accounts(text: str) -> list[tuple[int, Decimal, Decimal, Decimal, bool]]:
    rows = list(csv.reader(io.StringIO(text)))
    flags = {"true": True, "false": False}
    return [
        (int(client), Decimal(available), Decimal(held), Decimal(total), flags[locked])
        for client, available, held, total, locked in rows[1:]
    ]


# Its rejected rows, in file order: (line, reason).
WORKED_EXAMPLE_REJECTS: list[tuple[int, str]] = _rejects(worked_example_block("rejects"))
# The same rejects with the raw line each one names (docs/rules.md §5.2).
WORKED_EXAMPLE_REJECTS_RAW: list[tuple[int, str, str]] = [
    (line, reason, WORKED_EXAMPLE.splitlines()[line - 1]) for line, reason in WORKED_EXAMPLE_REJECTS
]
# The accounts as values: (client, available, held, total, locked).
WORKED_EXAMPLE_ROWS = _accounts(WORKED_EXAMPLE_CSV)

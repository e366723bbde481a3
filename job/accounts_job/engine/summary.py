"""What a run did, in counts: the same figures for people (stderr) and programs (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..codes import BLANK, KIND_NAMES, REASON_NAMES


@dataclass
class Summary:
    """The counts of a run (docs/rules.md §5.4), for people and for programs.

    Always ``rows_read == applied_total + rejected_total + blank_lines``.

    Attributes
    ----------
    input, input_bytes : str, int
        The input's name and size as given (compressed, for a compressed input); for a
        run over several inputs, their names joined by ", " and their sizes summed.
    inputs : list of dict
        Every input of the run, in order: `name`, `form` (csv, gzip, zstd, bz2, xz),
        `bytes` (as given), `plain_bytes` (as read by the passes), `rows` (lines after
        its header), and `skipped`, the note that says why a nightly run did not apply
        it (docs/rules.md §7), or None.
    rows_read : int
        Every line but the header, blank lines included.
    applied : dict of str to int
        Accepted commands by kind, every kind present.
    rejected : dict of str to int
        Rejected rows by reason (docs/rules.md §8), every reason present.
    blank_lines, accounts, locked_accounts : int
    state_bytes : int
        The memory the rules held at the end: balances, tx ids, referenced deposits.
    seconds : float
    version : str
        The accounts-job version that ran.

    Examples
    --------
    >>> s = Summary(rows_read=3, blank_lines=1)
    >>> s.applied["deposit"] = 2
    >>> s.applied_total + s.rejected_total + s.blank_lines == s.rows_read
    True
    """

    input: str = ""
    input_bytes: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    applied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KIND_NAMES.values(), 0))
    rejected: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(REASON_NAMES.values(), 0)
    )
    blank_lines: int = 0
    accounts: int = 0
    locked_accounts: int = 0
    state_bytes: int = 0  # memory the rules held at the end: balances, tx ids, references
    seconds: float = 0.0
    version: str = __version__

    @classmethod
    def for_input(cls, name: str, size: int, header_line: int) -> Summary:
        """The summary of a run over input `name` of `size` bytes, before any row: the
        `header_line` lines before the header are blank lines (docs/rules.md §2.1), rows
        read and skipped."""
        named = {"name": name, "form": "csv", "bytes": size, "plain_bytes": size}
        return cls(
            input=name,
            input_bytes=size,
            inputs=[{**named, "rows": None, "skipped": None}],
            rows_read=header_line,
            blank_lines=header_line,
        )

    def add_input(self, item: Any, rows: int, skipped: str | None = None) -> None:
        """Name an input of the run (an io.spool.Input), in order, with its rows."""
        self.inputs.append(
            {
                "name": item.name,
                "form": item.form,
                "bytes": item.size or 0,
                "plain_bytes": item.plain_bytes or 0,
                "rows": rows,
                "skipped": skipped,
            }
        )
        self.input = ", ".join(i["name"] for i in self.inputs)
        self.input_bytes = sum(i["bytes"] for i in self.inputs)

    @property
    def applied_total(self) -> int:
        return sum(self.applied.values())

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def add_counts(self, outcomes: np.ndarray, applied: np.ndarray) -> None:
        """Add rows counted by outcome (indexed by status code) and accepted rows by kind."""
        self.rows_read += int(outcomes.sum())
        self.blank_lines += int(outcomes[BLANK])
        for code, name in REASON_NAMES.items():
            self.rejected[name] += int(outcomes[code])
        for code, name in KIND_NAMES.items():
            self.applied[name] += int(applied[code])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["applied_total"] = self.applied_total
        d["rejected_total"] = self.rejected_total
        d["rows_per_second"] = round(self.rows_per_second, 1)
        d["seconds"] = round(self.seconds, 3)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_text(self) -> str:
        """A short human report, one fact a line."""
        lines = []
        for i in self.inputs:
            form = "" if i["form"] == "csv" else f", {i['form']}"
            what = f"{i['bytes']:,} bytes{form}"
            if i["skipped"]:
                what += f"; not applied: {i['skipped']}"
            elif i["rows"] is not None:
                what += f", {i['rows']:,} rows"
            lines.append(f"input            {i['name']}   ({what})")
        lines += [
            f"rows read        {self.rows_read:>14,}",
            f"  applied        {self.applied_total:>14,}   "
            + ", ".join(f"{k} {v:,}" for k, v in self.applied.items() if v),
            f"  rejected       {self.rejected_total:>14,}   "
            + ", ".join(f"{k} {v:,}" for k, v in self.rejected.items() if v),
            f"  blank lines    {self.blank_lines:>14,}",
            f"accounts         {self.accounts:>14,}   locked {self.locked_accounts:,}",
            f"time             {self.seconds:>13.2f}s   {self.rows_per_second:,.0f} rows/s",
        ]
        return "\n".join(line.rstrip() for line in lines) + "\n"

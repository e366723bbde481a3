"""Small shared helpers: write a CSV, run the job on it, get plain Python values back."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import accounts_job
from accounts_job.engine import DEFAULT_BATCH_SIZE

HEADER = "type,client,tx,amount"


@dataclass
class Run:
    accounts: dict[int, tuple[Decimal, Decimal, Decimal, bool]]
    rejects: list[tuple[int, str]]
    raw: list[str]
    summary: accounts_job.Summary


def csv_text(*lines: str, header: str = HEADER) -> str:
    """A file's text: the header, then the lines, each ending with LF."""
    return "".join(f"{line}\n" for line in (header, *lines))


def run_path(path: Path, batch_size: int = DEFAULT_BATCH_SIZE) -> Run:
    result = accounts_job.process(path, batch_size=batch_size)
    accounts = {
        client: (available, held, total, locked)
        for client, available, held, total, locked in result.accounts.iter_rows()
    }
    rejects = [(line, reason) for line, reason, _ in result.rejects.iter_rows()]
    raw = list(result.rejects.get_column("raw"))
    return Run(accounts, rejects, raw, result.summary)


def run_csv(
    tmp_path: Path, text: str | bytes, batch_size: int = DEFAULT_BATCH_SIZE, name: str = "in.csv"
) -> Run:
    """Write `text` (str as UTF-8, or bytes as is) to a file and run the job on it."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return run_path(path, batch_size)


def D(text: str) -> Decimal:
    return Decimal(text)


def zero() -> tuple[Decimal, Decimal, Decimal, bool]:
    """A new account: all zero, unlocked."""
    return (D("0"), D("0"), D("0"), False)

"""Small shared helpers: write a CSV, run the job on it, get plain Python values back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import accounts_job
import pytest
from accounts_job.engine import DEFAULT_BATCH_SIZE

HEADER = "type,client,tx,amount"

# SPEC.md, "A worked example": the input, and the accounts CSV it must produce.
WORKED_EXAMPLE = (
    "type,client,tx,amount\n"
    "deposit,1,1,10\n"
    "withdrawal,1,2,4\n"
    "dispute,1,1\n"
    "withdrawal,1,3,1\n"
    "deposit,2,4,5\n"
    "chargeback,1,1\n"
    "deposit,1,5,1\n"
    "withdrawal,2,6,9.99999\n"
    "dispute,2,2\n"
)
WORKED_EXAMPLE_CSV = (
    "client,available,held,total,locked\n"
    "1,-4.0000,0.0000,-4.0000,true\n"
    "2,5.0000,0.0000,5.0000,false\n"
)

# SPEC.md's reject reasons, in its order of checks.
REASONS = (
    "malformed_row",
    "unknown_type",
    "invalid_client",
    "invalid_tx",
    "invalid_amount",
    "account_locked",
    "duplicate_tx",
    "overflow",
    "insufficient_funds",
    "unknown_tx",
    "client_mismatch",
    "not_disputable",
    "already_disputed",
    "already_charged_back",
    "not_disputed",
)


@dataclass
class Run:
    accounts: dict[int, tuple[Decimal, Decimal, Decimal, bool]]
    rejects: list[tuple[int, str]]
    raw: list[str]
    summary: accounts_job.Summary


def csv_text(*lines: str, header: str = HEADER) -> str:
    """A file's text: the header, then the lines, each ending with LF."""
    return "".join(f"{line}\n" for line in (header, *lines))


def run_path(
    path: Path, batch_size: int = DEFAULT_BATCH_SIZE, block_bytes: int | None = None
) -> Run:
    result = accounts_job.process(path, batch_size=batch_size, block_bytes=block_bytes)
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


def console_script() -> Path:
    """The installed `accounts-job` script (the suite skips what needs it without it)."""
    script = Path(sys.executable).with_name("accounts-job")
    if not script.exists():
        found = shutil.which("accounts-job")
        if found is None:
            pytest.skip("the accounts-job console script is not installed")
        script = Path(found)
    return script


def run_script(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `accounts-job` as a real process; its output captured."""
    return subprocess.run(
        [str(console_script()), *map(str, args)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )

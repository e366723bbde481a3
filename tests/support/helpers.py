"""Small shared helpers: write a CSV, run the job on it, get plain Python values back."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import accounts_job
import accounts_job.io.blocks
import pytest
from accounts_gen import generate
from accounts_job.engine.parser import DEFAULT_BATCH_SIZE
from accounts_job.faults import ENV
from accounts_job.io.source import open_input
from accounts_job.state.folder import StateDir

HEADER = "type,client,tx,amount"

# The reject reasons in the order of their codes, 1 to 15 (docs/rules.md §8). This is not
# the order of checks (§2.9, §4.2): `overflow`, code 8, is a dispute's last check.
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
    raw: list[bytes]  # each reject's raw line, its exact bytes (docs/rules.md §5.2)
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


# Nightly runs killed during their commit (test_nightly_cli.py, test_api_commit.py).


def hostile_days(folder: Path, n: int = 3, rows: int = 3000) -> list[Path]:
    """Generated hostile data (accounts_gen), cut into `n` day files in `folder`."""
    text = io.StringIO()
    generate(text, clients=30, transactions=rows, seed=11, hostile=True)
    lines = text.getvalue().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    size = len(body) // n
    paths = []
    for k in range(n):
        part = body[k * size : (k + 1) * size if k < n - 1 else len(body)]
        path = folder / f"day-{k}.csv"
        path.write_text(header + "".join(part))
        paths.append(path)
    return paths


def new_state(folder: Path) -> Path:
    """A new, empty nightly state folder, as `accounts-job state init` makes it."""
    StateDir(folder).init()
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a state folder by name, but its lock file."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "lock"}


# The crash points of a nightly commit, in order (job.py, state/night.py), and the one
# after the commit's rename: a run killed there has committed.
COMMIT_POINTS = [
    "outputs-written",
    "state-files-written",
    "state-files-synced",
    "manifest-written",
    "manifest-renamed",
]
COMMITTED_AT = {"manifest-renamed"}
POINTS_BEFORE = [p for p in COMMIT_POINTS if p not in COMMITTED_AT]
POINTS_AFTER = [p for p in COMMIT_POINTS if p in COMMITTED_AT]


def crash_env(crash_at: str | None = None) -> dict[str, str]:
    """This process's environment for a child that kills itself (SIGKILL) at the crash
    point `crash_at` (accounts_job.faults), or at none."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if crash_at:
        env[ENV] = crash_at
    return env


def run_on_terminal(
    args: list[object], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run the script with stderr on a pseudo-terminal (so it draws its progress bar) and
    stdout into a file: (exit status, stdout, what the terminal showed)."""
    pty = pytest.importorskip("pty")
    try:
        master, slave = pty.openpty()
    except OSError:
        pytest.skip("no pseudo-terminal available")
    stdout_path = cwd / ".stdout"
    with open(stdout_path, "wb") as stdout:
        try:
            proc = subprocess.Popen(
                [str(console_script()), *map(str, args)],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=slave,
            )
        finally:
            os.close(slave)
        terminal = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        os.close(master)
        code = proc.wait(timeout=600)
    captured = stdout_path.read_bytes()
    stdout_path.unlink()
    return code, captured, bytes(terminal)


PROCESS = (
    "import json, sys, accounts_job\naccounts_job.process(sys.argv[1], **json.loads(sys.argv[2]))\n"
)


def process_in_a_child(source: Path, crash_at: str | None = None, **options: object):
    """`accounts_job.process(source, **options)` in a new interpreter that kills itself
    (SIGKILL) at the crash point `crash_at` (options go through JSON, as strings)."""
    kwargs = json.dumps({k: str(v) for k, v in options.items()})
    return subprocess.run(
        [sys.executable, "-c", PROCESS, str(source), kwargs],
        env=crash_env(crash_at),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )


def fail_the_second_pass(mp: pytest.MonkeyPatch) -> None:
    """Make the input's disk fail part way through the job's second pass, after two
    small blocks were read: the first pass reads the whole file; the second opening of
    the input fails on its third read."""
    opened = []

    class FailingFile(io.FileIO):
        reads = 0

        def readinto(self, buffer):
            self.reads += 1
            if self.reads > 2:
                raise OSError(errno.EIO, "Input/output error")
            return super().readinto(buffer)

    def failing_open(path, buffered=False):
        opened.append(path)
        return FailingFile(path, "r") if len(opened) == 2 else open_input(path, buffered)

    mp.setattr(accounts_job.io.blocks, "open_input", failing_open)
    mp.setattr(accounts_job.io.blocks, "BLOCK_BYTES", 64)


def two_nights(tmp_path: Path) -> Path:
    """A state that applied two small nights, the second disputing the first."""
    state = new_state(tmp_path / "state")
    for n, text in enumerate(["deposit,1,1,5\ndeposit,2,2,7\n", "dispute,1,1\n"]):
        day = tmp_path / f"n{n}.csv"
        day.write_text(HEADER + "\n" + text)
        accounts_job.process(day, state=state)
    return state

"""A sample to explore when there is no run at hand: generated, hostile, run through
`process`, so that every section of the notebook has something to show."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..job import process
from .load import Outputs, read_events

# The default sample: small enough to generate and run in well under a second, hostile so
# that every section of the notebook has something to show (rejects of many reasons,
# chargebacks and locked accounts, disputes that left `available` negative).
SAMPLE_CLIENTS = 500
SAMPLE_TRANSACTIONS = 4_000
SAMPLE_SEED = 2024
SAMPLE_MALFORMED_RATE = 0.01


def generate_sample(
    path: str | Path,
    *,
    clients: int = SAMPLE_CLIENTS,
    transactions: int = SAMPLE_TRANSACTIONS,
    seed: int = SAMPLE_SEED,
    malformed_rate: float = SAMPLE_MALFORMED_RATE,
    prefer_api: bool = True,
) -> Path:
    """Write a sample transactions file with the generator: its Python API when it is
    importable (and `prefer_api`), else its `accounts-gen` command."""
    path = Path(path)
    if prefer_api:
        try:
            from accounts_gen.generate import generate
            from accounts_gen.options import Shape
        except ImportError:
            pass
        else:
            generate(
                path,
                clients=clients,
                transactions=transactions,
                seed=seed,
                hostile=True,
                shape=Shape(malformed_rate=malformed_rate),
            )
            return path
    # The command installed beside this interpreter first: the one on PATH may belong to
    # another environment.
    beside = Path(sys.executable).with_name("accounts-gen")
    command = str(beside) if beside.exists() else shutil.which("accounts-gen")
    if command is None:
        raise RuntimeError("cannot make a sample: the accounts-gen generator is not installed")
    args = [
        command,
        *("--clients", str(clients), "--transactions", str(transactions), "--seed", str(seed)),
        *("--hostile", "--malformed-rate", str(malformed_rate), "--quiet", "--out", str(path)),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"accounts-gen failed ({done.returncode}): {done.stderr.strip()}")
    return path


def sample_outputs(
    folder: str | Path,
    *,
    clients: int = SAMPLE_CLIENTS,
    transactions: int = SAMPLE_TRANSACTIONS,
    seed: int = SAMPLE_SEED,
    malformed_rate: float = SAMPLE_MALFORMED_RATE,
    prefer_api: bool = True,
) -> Outputs:
    """Generate a sample file into `folder` (see `generate_sample`) and run the job on it
    through `process`."""
    path = generate_sample(
        Path(folder) / "transactions.csv",
        clients=clients,
        transactions=transactions,
        seed=seed,
        malformed_rate=malformed_rate,
        prefer_api=prefer_api,
    )
    events_path = Path(folder) / "events.parquet"
    result = process(path, events_to=events_path)
    return Outputs(
        accounts=result.accounts,
        rejects=result.rejects,
        summary=result.summary,
        events=read_events(events_path),
        source=f"sample generated into {path}",
    )

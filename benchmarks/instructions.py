"""Instructions the rules kernel runs per row, counted (valgrind), not timed.

On a shared machine the rules' share of a run moves by 10% from one run to the next;
the count of instructions does not. This runs the rules over the first N rows of a
generated file (the benchmarks' default mix), once and three times, each in a new
process under valgrind's cachegrind, and prints the instructions the two extra passes
took, per row: the rules kernel and the Ledger it fills, nothing of start-up or parsing.
Needs valgrind on the PATH.

    python3 -m uv run python benchmarks/instructions.py --rows 1m
    python3 -m uv run python benchmarks/instructions.py --package /other/tree/accounts_job
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from run import ensure_file, label, parse_size

# Parses the rows once, then decides them `passes` times with a new Ledger each time.
CHILD = r"""
import sys
from pathlib import Path
from accounts_job.engine.ledger import Ledger
from accounts_job.engine.parser import Parser
from accounts_job.engine.references import first_pass
from accounts_job.io.blocks import BlockReader
from accounts_job.io.header import read_header

path, passes = Path(sys.argv[1]), int(sys.argv[2])
header = read_header(path)
reader = BlockReader()
referenced = first_pass(path, header, None, reader, None, None)
parser = Parser(header, 1 << 18)
batches = [
    tuple(a.copy() for a in (p.kinds, p.clients, p.txs, p.amounts, p.status))
    for block in reader.blocks(path, header.line_index + 1)
    for p in parser.batches(block)
]
Ledger(referenced).apply(*(a[:10].copy() for a in batches[0]))  # loads the kernel
for _ in range(passes):
    ledger = Ledger(referenced)
    for kinds, clients, txs, amounts, status in batches:
        ledger.apply(kinds, clients, txs, amounts.copy(), status.copy())
"""


def instructions(site: Path, csv: Path, passes: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_NUM_THREADS": "1"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", CHILD, str(csv), "1"], env=env, check=True)
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
    valgrind.append("--cachegrind-out-file=/dev/null")
    done = subprocess.run(
        [*valgrind, sys.executable, "-c", CHILD, str(csv), str(passes)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1m", help="rows of the generated file to decide")
    parser.add_argument(
        "--package",
        type=Path,
        default=None,
        help="an accounts_job package folder to count instead of the installed one",
    )
    args = parser.parse_args()
    rows = parse_size(args.rows)
    source = ensure_file(10_000_000, 65_000, 7)
    with tempfile.TemporaryDirectory(prefix="accounts-job-instructions-") as tmp:
        csv = Path(tmp) / f"tx-{label(rows).lower()}.csv"
        with source.open("rb") as f, csv.open("wb") as out:
            for _ in range(rows + 1):  # the header and `rows` rows
                out.write(f.readline())
        site = args.package.resolve().parent if args.package else None
        if site is None:
            import accounts_job

            site = Path(accounts_job.__file__).resolve().parent.parent
        once, thrice = instructions(site, csv, 1), instructions(site, csv, 3)
    per_pass = (thrice - once) / 2
    print("| rows | instructions per pass | per row |")
    print("|---:|---:|---:|")
    print(f"| {label(rows)} | {per_pass:,.0f} | {per_pass / rows:.1f} |")


if __name__ == "__main__":
    main()

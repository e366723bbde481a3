"""Memory follows the tx ids used, not the largest one (README "How it works").

The rules remember two sets of tx ids, the claimed and the referenced (kernels/bitmaps.py).
A plain bitmap sized to the largest id made a single row with tx 4294967295 cost over
700 MiB, and a file whose ids spread over the whole u32 range 1.5 GB. These tests run the
job as a real process and read its peak resident memory; they check the answers with sparse
ids against the reference model, across batches, nights and shards; and they check the sets
themselves against Python's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import accounts_job
import numpy as np
import pytest
from accounts_job.distributed.sharded import InProcess, process_sharded
from accounts_job.kernels import bitmaps
from hypothesis import given, settings
from hypothesis import strategies as st
from support.helpers import HEADER, console_script, run_path
from support.model import simulate
from support.strategies import row

MiB = 1 << 20
TOP = 2**32 - 1

# Runs a command and prints the peak resident memory of its process (the only child of
# this one) in KiB, then its exit status: a test's own earlier children do not count.
PEAK = """
import resource, subprocess, sys
status = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)
"""


def run_measured(path: Path, folder: Path) -> tuple[int, dict]:
    """Run the installed job on `path` as a process: (its peak RSS in bytes, summary)."""
    summary = folder / f"{path.stem}-summary.json"
    args = [console_script(), "run", path, "--out", folder / f"{path.stem}.accounts.csv"]
    args += ["--summary", summary, "--quiet"]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, timeout=600
    )
    peak_kib, status = map(int, done.stdout.split()[-2:])
    assert status == 0, done.stderr.decode(errors="replace")
    return peak_kib * 1024, json.loads(summary.read_text())


def spread_file(path: Path, rows: int, seed: int = 7) -> Path:
    """`rows` rows whose tx ids spread over the whole u32 range (4294967295 among them):
    four in five deposits and withdrawals, the rest disputes, resolves and chargebacks of
    them (some before the row they name)."""
    rng = np.random.default_rng(seed)
    n = rows * 4 // 5
    txs = rng.integers(0, 2**32, n, dtype=np.uint64)
    txs[0] = TOP
    clients = rng.integers(0, 1 << 16, n)
    cents = rng.integers(1, 100_000, n)
    kinds = np.where(rng.random(n) < 0.8, "deposit", "withdrawal")
    columns = (kinds.tolist(), clients.tolist(), txs.tolist(), cents.tolist())
    lines = [f"{k},{c},{t},{a // 100}.{a % 100:02d}" for k, c, t, a in zip(*columns, strict=True)]
    named = rng.integers(0, n, rows - n)
    refs = rng.choice(["dispute", "resolve", "chargeback"], rows - n, p=[0.6, 0.3, 0.1])
    after = np.sort(rng.integers(0, n, rows - n))
    out, j = [], 0
    for i, line in enumerate(lines):
        out.append(line)
        while j < after.size and after[j] == i:
            k = named[j]
            out.append(f"{refs[j]},{clients[k]},{txs[k]},")
            j += 1
    path.write_text(HEADER + "\n" + "\n".join(out) + "\n")
    return path


def one_row(path: Path, tx: int) -> Path:
    path.write_text(f"{HEADER}\ndeposit,1,{tx},1.5\n")
    return path


# -- peak memory of the whole process ------------------------------------------------


def test_a_single_row_with_the_largest_tx_id_costs_no_more_than_one_with_tx_1(tmp_path):
    # The process's own floor (Python, numba, Arrow, Polars) is about 200 MiB: what the
    # largest id may add on top of a row with tx 1 is a few MiB, not a bitmap up to it.
    base, _ = run_measured(one_row(tmp_path / "small.csv", 1), tmp_path)
    peak, summary = run_measured(one_row(tmp_path / "top.csv", TOP), tmp_path)
    assert peak - base < 32 * MiB, (peak / MiB, base / MiB)
    assert summary["state_bytes"] < 4 * MiB
    assert (tmp_path / "top.csv").exists()


def test_ids_spread_over_the_u32_range_stay_small(tmp_path):
    # 200,000 rows here; the 1M-row file of the slow test below stays under 300 MiB.
    rows = 200_000
    base, _ = run_measured(one_row(tmp_path / "small.csv", 1), tmp_path)
    peak, summary = run_measured(spread_file(tmp_path / "spread.csv", rows), tmp_path)
    assert peak < 300 * MiB, peak / MiB
    assert peak - base < 64 * MiB, (peak / MiB, base / MiB)
    # What the rules hold: no more than about 32 bytes a row, whatever the ids.
    assert summary["state_bytes"] < 4 * MiB + 32 * rows, summary["state_bytes"]


@pytest.mark.slow
def test_a_million_rows_spread_over_the_u32_range_stay_under_300_mib(tmp_path):
    peak, summary = run_measured(spread_file(tmp_path / "spread.csv", 1_000_000), tmp_path)
    assert peak < 300 * MiB, peak / MiB
    assert summary["rows_read"] == 1_000_000


# -- the same answers with sparse ids ------------------------------------------------

# Ids near the ends of the u32 range and of the sets' containers (65,536 ids each) and of
# their words (64 ids each), and a few dense ones.
SPARSE_TXS = [
    str(t)
    for t in (
        0,
        1,
        63,
        64,
        65535,
        65536,
        65537,
        131071,
        1 << 31,
        (1 << 31) + 64,
        TOP - 65536,
        TOP - 64,
        TOP - 1,
        TOP,
        123456789,
        3000000000,
    )
]
COLUMNS = ["type", "client", "tx", "amount"]


@st.composite
def sparse_rows(draw, max_rows: int = 40) -> list[str]:
    clients = draw(st.lists(st.sampled_from(["1", "2", "65535"]), min_size=1, max_size=3))
    txs = draw(st.lists(st.sampled_from(SPARSE_TXS), min_size=1, max_size=8))
    return draw(st.lists(row(COLUMNS, clients, txs), max_size=max_rows))


def text_of(rows: list[str]) -> bytes:
    return (HEADER + "\n" + "".join(r + "\n" for r in rows)).encode("utf-8", "surrogateescape")


@given(rows=sparse_rows(), batch_size=st.sampled_from([1, 3, 1 << 18]))
def test_sparse_ids_give_what_the_model_gives(rows, batch_size):
    data = text_of(rows)
    expected = simulate(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(data)
        got = run_path(path, batch_size)
    assert got.rejects == expected.rejects
    assert got.accounts == expected.accounts


def test_many_ids_in_one_container_and_its_neighbours(tmp_path):
    # 3,000 deposits into one container of ids (more than it keeps as an array), in
    # falling order, and their disputes; then a duplicate of each end.
    high = 77 << 16
    ids = [high + 65535 - 20 * k for k in range(3000)]
    rows = [f"deposit,{k % 5},{t},1" for k, t in enumerate(ids)]
    rows += [f"dispute,{k % 5},{t}," for k, t in enumerate(ids) if k % 7 == 0]
    rows += [f"deposit,1,{ids[0]},1", f"deposit,1,{ids[-1]},1", f"dispute,1,{high - 1},"]
    data = text_of(rows)
    expected = simulate(data)
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    for batch_size in (1, 100, 1 << 18):
        got = run_path(path, batch_size)
        assert got.rejects == expected.rejects
        assert got.accounts == expected.accounts


def test_a_sharded_run_over_spread_ids_gives_what_one_run_gives(tmp_path):
    path = spread_file(tmp_path / "spread.csv", 3000, seed=3)
    one = accounts_job.process(path)
    sharded = process_sharded(path, InProcess(), 3, chunk_bytes=20_000, batch_size=500)
    assert sharded.accounts_table.equals(one.accounts_table)
    assert sharded.rejects.equals(one.rejects)


def test_nights_with_huge_ids_give_what_one_run_gives(tmp_path):
    # Night 1 claims 4294967295 and ids spread over the range; night 2 disputes, resolves
    # and charges some of them back, and deposits an id night 1 claimed.
    spread = [int(t) for t in np.linspace(0, TOP, 400, dtype=np.uint64)]
    night1 = [f"deposit,{k % 9},{t},{k + 1}" for k, t in enumerate(spread)]
    night1.append(f"withdrawal,4,{TOP - 1},1")
    night2 = [f"dispute,{k % 9},{t}," for k, t in enumerate(spread) if k % 3 == 0]
    night2 += [f"resolve,{k % 9},{t}," for k, t in enumerate(spread) if k % 6 == 0]
    night2 += [f"chargeback,{k % 9},{t}," for k, t in enumerate(spread) if k % 9 == 3]
    night2 += [f"deposit,1,{TOP},5", f"dispute,4,{TOP - 1},", f"dispute,0,{TOP},"]
    state = tmp_path / "state"
    accounts_job.init_state(state)
    rejects = []
    for n, rows in enumerate((night1, night2)):
        path = tmp_path / f"night-{n}.csv"
        path.write_bytes(text_of(rows))
        last = accounts_job.process(path, state=state)
        offset = len(night1) if n else 0
        rejects += [(line + offset, reason) for line, reason, _ in last.rejects.iter_rows()]
    whole = tmp_path / "whole.csv"
    whole.write_bytes(text_of(night1 + night2))
    one = accounts_job.process(whole)
    assert last.accounts.rows() == one.accounts.rows()
    assert rejects == [(line, reason) for line, reason, _ in one.rejects.iter_rows()]
    # Night 1's claims of the largest ids, as night 2 finds them (not unknown_tx).
    end = len(night1) + len(night2) + 1  # the last row's line (the header is line 1)
    assert [reason for line, reason in rejects if line > end - 3] == [
        "duplicate_tx",
        "not_disputable",
        "client_mismatch",
    ]


# -- the sets themselves ---------------------------------------------------------------

ID = st.one_of(
    st.integers(0, TOP),
    st.sampled_from([int(t) for t in SPARSE_TXS]),
    st.integers(0, 3 * 65536),  # dense: containers turn into bitmaps
)


@settings(max_examples=60)
@given(ids=st.lists(ID, max_size=3000), probes=st.lists(ID, max_size=50))
def test_sets_agree_with_python_sets(ids, probes):
    arr = np.array(ids, dtype=np.uint32)
    adds = np.ones(arr.size, dtype=np.bool_)
    adds[1::3] = False  # every third only asks
    was = np.zeros(arr.size, dtype=np.bool_)
    s = bitmaps.add_all(bitmaps.new_set(), arr, adds, was)
    seen: set[int] = set()
    expected_was = []
    for t, a in zip(ids, adds.tolist(), strict=True):
        expected_was.append(t in seen)
        if a:
            seen.add(t)
    assert was.tolist() == expected_was
    ordered = sorted(seen)
    assert bitmaps.count(s) == len(ordered)
    assert bitmaps.slot_txs(s, len(ordered)).tolist() == ordered
    asked = np.array(probes + ids, dtype=np.uint32)
    assert bitmaps.contains_each(s, asked).tolist() == [int(t) in seen for t in asked]
    for one in (s, bitmaps.in_order(s)):
        rank, total = bitmaps.rank_index(one)
        assert total == len(ordered)
        got = bitmaps.slots(one, rank, asked, np.empty(asked.size, np.int64)).tolist()
        assert got == [ordered.index(t) if t in seen else -1 for t in asked.tolist()]
    # The state's file form (words of a plain bitmap), and back.
    words, bits = bitmaps.words_of(s)
    plain: dict[int, int] = {}
    for t in ordered:
        plain[t >> 6] = plain.get(t >> 6, 0) | 1 << (t & 63)
    assert words.tolist() == sorted(plain)
    assert bits.tolist() == [plain[w] for w in sorted(plain)]
    back = bitmaps.set_words(bitmaps.set_bits(bitmaps.new_set(), arr[:5]), words, bits)
    assert bitmaps.slot_txs(back, bitmaps.count(back)).tolist() == sorted(seen | set(ids[:5]))
    # At most 8 bytes an id, room to grow included, beyond the container table.
    assert bitmaps.nbytes(s) <= 2 * bitmaps.CONTAINERS * 4 + 64 + 16 * max(len(seen), 512)


def test_a_container_after_a_dense_flat_one_starts_as_a_bitmap():
    """Ids in order fill containers one after another. The next one starts as a bitmap,
    flat (the rules' fast path), once the one before holds 2,048 ids or more; after a
    sparse one it starts as an array, so ids spread in order never cost 8 KiB each."""
    s = bitmaps.new_set()
    for t in range(0, 65536, 16):  # 4,096 ids: container 0 turns into a bitmap
        s, _ = bitmaps.add(s, t)
    s, was = bitmaps.add(s, 65536)
    size, _, _, _, used = s
    assert not was
    assert size[1] == bitmaps.BITMAP and used[2] == 2  # both flat
    assert bitmaps.contains(s, 65536) and not bitmaps.contains(s, 65537)
    s = bitmaps.new_set()
    for t in range(0, 10 * 65536, 4096):  # 16 ids in each of 10 containers, in order
        s, _ = bitmaps.add(s, t)
    assert s[0][:10].tolist() == [16] * 10  # arrays, each of 16 ids

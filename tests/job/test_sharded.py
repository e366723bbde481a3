"""The sharded plan (distributed/sharded.py) run in process: the same answer as one run,
whatever the number of shards, the chunk size or the batch size.

The Dask plumbing is tested in test_cluster.py; here the plan itself is checked on many
generated files, which a real cluster would make too slow.
"""

from __future__ import annotations

import io
import itertools
import tempfile
from pathlib import Path

import accounts_job
import numpy as np
import pytest
from accounts_gen import generate
from accounts_job.codes import DEPOSIT, DISPUTE, RESOLVE, WITHDRAWAL
from accounts_job.distributed.claims import bitmap_of, referenced_ids, settle
from accounts_job.distributed.sharded import InProcess, plan_chunks, process_sharded
from accounts_job.errors import HeaderError
from accounts_job.io.header import read_header
from hypothesis import given
from hypothesis import strategies as st
from support.strategies import csv_files

VOLATILE = ("seconds", "rows_per_second", "state_bytes")


def counts(summary: accounts_job.Summary) -> dict:
    d = summary.to_dict()
    for key in VOLATILE:
        d.pop(key)
    return d


def assert_same(path: Path, shards: int, chunk_bytes: int, batch_size: int = 1 << 18) -> None:
    try:
        one = accounts_job.process(path)
    except HeaderError as e:
        with pytest.raises(HeaderError, match=str(e).split(":")[0]):
            process_sharded(path, InProcess(), shards, chunk_bytes=chunk_bytes)
        return
    sharded = process_sharded(
        path, InProcess(), shards, chunk_bytes=chunk_bytes, batch_size=batch_size
    )
    assert sharded.accounts_table.equals(one.accounts_table)
    assert sharded.rejects.equals(one.rejects)
    assert counts(sharded.summary) == counts(one.summary)


@given(
    data=csv_files(max_rows=40),
    shards=st.integers(1, 4),
    chunk_bytes=st.integers(1, 120),
    batch_size=st.integers(1, 30),
)
def test_sharded_runs_give_what_one_run_gives(data, shards, chunk_bytes, batch_size):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(data)
        assert_same(path, shards, chunk_bytes, batch_size)


def hostile(tmp_path: Path, seed: int, clients: int = 40, transactions: int = 4000) -> Path:
    text = io.StringIO()
    generate(text, clients=clients, transactions=transactions, seed=seed, hostile=True)
    path = tmp_path / f"hostile-{seed}.csv"
    path.write_text(text.getvalue())
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shards", [2, 3, 5])
def test_generated_hostile_data_gives_what_one_run_gives(tmp_path, seed, shards):
    """tx ids reused across clients, references to other clients' txs, locked accounts."""
    path = hostile(tmp_path, seed)
    one = accounts_job.process(path)
    reasons = set(one.rejects.get_column("reason"))
    assert {"duplicate_tx", "client_mismatch", "account_locked", "unknown_tx"} <= reasons
    assert_same(path, shards, chunk_bytes=20_000)


def test_hostile_data_crosses_shards(tmp_path):
    """The cases the plan settles between shards do occur in the data above: duplicates
    of another shard's claim, and references to another shard's tx."""
    path = hostile(tmp_path, 1)
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    names = {"deposit": DEPOSIT, "withdrawal": WITHDRAWAL, "dispute": DISPUTE}
    well = [
        (names[r[0]], int(r[1]), int(r[2]), n)
        for n, r in enumerate(rows)
        if r[0] in names and r[1].isdigit() and r[2].isdigit() and int(r[1]) < 65536
    ]
    kinds, clients, txs, lines = (np.array(c) for c in zip(*well, strict=True))
    settled = settle_pieces(
        [
            (
                kinds.astype(np.uint8),
                clients.astype(np.uint16),
                txs.astype(np.uint32),
                lines.astype(np.int64),
            )
        ],
        2,
    )
    first_claim: dict[int, int] = {}
    crossed_dups = 0
    for kind, client, tx, _ in well:
        if kind in (DEPOSIT, WITHDRAWAL):
            owner = first_claim.setdefault(tx, client)
            crossed_dups += owner % 2 != client % 2
    assert crossed_dups > 10
    assert settled.cross_index.size > 10
    assert settled.dup_index.size >= crossed_dups


def settle_pieces(pieces, shards):
    """claims.settle, with the referenced ids taken from the pieces themselves."""
    ids = [referenced_ids(kinds, txs) for kinds, _, txs, _ in pieces]
    return settle(iter(pieces), bitmap_of(*ids), shards)


def test_settle_by_hand():
    """Shard of client c: c % 2. Rows: (kind, client, tx)."""
    rows = [
        (DEPOSIT, 1, 7),  # line 0: claims 7 in shard 1
        (DISPUTE, 2, 7),  # line 1: names shard 1's claim from shard 0
        (WITHDRAWAL, 2, 7),  # line 2: a duplicate of another shard's claim
        (DISPUTE, 3, 7),  # line 3: same shard as the claim: its shard decides
        (DISPUTE, 2, 9),  # line 4: no claim yet: its shard says unknown_tx
        (DEPOSIT, 4, 9),  # line 5: claims 9 in shard 0
        (DEPOSIT, 4, 9),  # line 6: a duplicate within the shard
        (RESOLVE, 1, 9),  # line 7: names shard 0's claim from shard 1
    ]
    kinds, clients, txs = (np.array(c) for c in zip(*rows, strict=True))
    piece = (
        kinds.astype(np.uint8),
        clients.astype(np.uint16),
        txs.astype(np.uint32),
        np.arange(len(rows), dtype=np.int64),
    )
    # The same rows whole, or cut into pieces: the same answer.
    for pieces in ([piece], [tuple(a[:3] for a in piece), tuple(a[3:] for a in piece)]):
        settled = settle_pieces(pieces, 2)
        # Shard 0 holds lines 1, 2, 4, 5, 6 (indices 0..4); shard 1 lines 0, 3, 7.
        assert list(zip(settled.dup_shard, settled.dup_index, strict=True)) == [(0, 1), (0, 4)]
        assert settled.cross_shard.tolist() == [0, 1]
        assert settled.cross_index.tolist() == [0, 2]  # line 1 in shard 0, line 7 in shard 1
        assert settled.cross_line.tolist() == [0, 5]
        assert settled.claim_shard.tolist() == [1, 0]


def test_chunks_cover_the_file_in_whole_lines(tmp_path):
    path = tmp_path / "in.csv"
    body = "".join(f"deposit,{i},{i},1.5\n" for i in range(1, 200))
    path.write_text("\n \ntype,client,tx,amount\n" + body + "deposit,1,999,2")  # no final LF
    header = read_header(path)
    data = path.read_bytes()
    for size in (1, 7, 100, 10_000):
        spans = plan_chunks(path, header, size)
        assert spans[0][0] == data.index(b"deposit")
        assert spans[-1][1] == len(data)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert all(data[stop - 1 : stop] == b"\n" for _, stop in spans[:-1])

"""Nightly runs through the Python API: a state folder carried from file to file.

The contract: applying files f1..fn night by night gives exactly what one run over their
concatenation gives (accounts, and the same rejects with line numbers per file); a file
already applied changes nothing; a damaged or edited state is refused, never used
(docs/rules.md §7).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from decimal import Decimal
from pathlib import Path

import accounts_job
import accounts_job.job
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from accounts_gen import generate
from accounts_job import AlreadyApplied
from accounts_job.errors import StateError
from accounts_job.io.schemas import EVENTS_ARROW
from accounts_job.state.folder import StateDir
from accounts_job.state.manifest import MANIFEST
from hypothesis import given, settings
from hypothesis import strategies as st
from support.helpers import HEADER, new_state, two_nights
from support.strategies import CLIENTS, TXS, row

COLUMNS = ["type", "client", "tx", "amount"]


def split_days(rows: list[str], cuts: list[int]) -> list[list[str]]:
    bounds = [0, *sorted(cuts), len(rows)]
    return [rows[a:b] for a, b in itertools.pairwise(bounds)]


def write_rows(path: Path, rows: list[str]) -> Path:
    # Rows may hold bytes that are not UTF-8 (as surrogate escapes).
    text = HEADER + "\n" + "".join(r + "\n" for r in rows)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def one_run(folder: Path, rows: list[str]):
    return accounts_job.process(write_rows(folder / "all.csv", rows))


def content_of(data: bytes) -> tuple[bytes, ...]:
    """What exactly-once compares of a file (docs/rules.md §7): its lines that are not
    blank, without the spaces, tabs and CRs at their end."""
    lines = (line.rstrip(b" \t\r") for line in data.split(b"\n"))
    return tuple(line for line in lines if line)


def nightly(folder: Path, days: list[list[str]], state: Path | None = None):
    """Run each day's file against one state folder: the last result, every reject with
    its line number in the concatenation of the applied days, and those days' rows.

    A day whose file has the same content as an earlier one's (docs/rules.md §7: blank
    lines and trailing blanks aside) is refused (exactly once), so it is not part of the
    concatenation."""
    state = state or folder / "state"
    if not state.exists():
        new_state(state)
    rejects, applied, result = [], [], None
    seen = set()
    for n, day in enumerate(days):
        path = write_rows(folder / f"day-{n:02d}.csv", day)
        content = content_of(path.read_bytes())
        if content in seen:
            with pytest.raises(AlreadyApplied):
                accounts_job.process(path, state=state)
            continue
        seen.add(content)
        result = accounts_job.process(path, state=state)
        offset = len(applied)
        rejects += [(line + offset, reason) for line, reason, _ in result.rejects.iter_rows()]
        applied += day
    return result, rejects, applied


def assert_same_as_one_run(folder: Path, rows: list[str], cuts: list[int]) -> None:
    last, rejects, applied = nightly(folder, split_days(rows, cuts))
    whole = one_run(folder, applied)
    assert last is not None
    assert last.accounts.rows() == whole.accounts.rows()
    assert rejects == [(line, reason) for line, reason, _ in whole.rejects.iter_rows()]


@st.composite
def days_of_rows(draw):
    clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=3))
    txs = draw(st.lists(st.sampled_from(TXS), min_size=1, max_size=6))
    rows = draw(st.lists(row(COLUMNS, clients, txs), max_size=40))
    cuts = draw(st.lists(st.integers(0, len(rows)), max_size=4))
    return rows, cuts


@settings(max_examples=settings.default.max_examples // 2)
@given(days=days_of_rows())
def test_nights_give_what_one_run_gives(tmp_path_factory, days):
    rows, cuts = days
    assert_same_as_one_run(tmp_path_factory.mktemp("nights"), rows, cuts)


def cross_day_references(days: list[list[str]]) -> int:
    """Disputes, resolves and chargebacks naming a tx first seen on an earlier day."""
    first_day: dict[str, int] = {}
    count = 0
    for n, day in enumerate(days):
        for line in day:
            fields = [f.strip().strip('"').strip().lower() for f in line.split(",")]
            if len(fields) < 3:
                continue
            kind, tx = fields[0], fields[2]
            if kind in ("deposit", "withdrawal", "withdraw"):
                first_day.setdefault(tx, n)
            elif kind in ("dispute", "resolve", "chargeback") and first_day.get(tx, n) < n:
                count += 1
    return count


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nights_of_generated_hostile_data_give_what_one_run_gives(tmp_path, seed):
    """Disputes, resolves and chargebacks of earlier days, tx ids reused across days,
    accounts locked on an earlier day: all in generated hostile data."""
    text = io.StringIO()
    generate(text, clients=40, transactions=4000, seed=seed, hostile=True)
    rows = text.getvalue().splitlines()[1:]
    cuts = [500, 1500, 1501, 2600, 3900]
    assert cross_day_references(split_days(rows, cuts)) > 50
    whole = one_run(tmp_path, rows)
    reasons = {reason for _, reason, _ in whole.rejects.iter_rows()}
    assert {"duplicate_tx", "account_locked", "client_mismatch", "not_disputed"} <= reasons
    assert_same_as_one_run(tmp_path, rows, cuts)


def test_a_dispute_tonight_of_a_deposit_months_ago(tmp_path):
    days = [
        ["deposit,1,7,10", "deposit,2,8,5", "withdrawal,2,9,1"],
        *([[f"deposit,3,{100 + n},1"] for n in range(5)]),
        ["dispute,1,7", "dispute,2,9", "dispute,3,8", "deposit,1,7,3", "resolve,1,7"],
        ["dispute,1,7", "chargeback,1,7", "deposit,1,50,1", "dispute,2,8"],
    ]
    last, rejects, _ = nightly(tmp_path, days)
    assert last is not None
    accounts = {r[0]: r[1:] for r in last.accounts.rows()}
    assert accounts[1] == (Decimal("0"), Decimal("0"), Decimal("0"), True)
    assert accounts[2] == (Decimal("-1"), Decimal("5"), Decimal("4"), False)
    assert [reason for _, reason in rejects] == [
        "not_disputable",
        "client_mismatch",
        "duplicate_tx",
        "account_locked",
    ]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def one_night(tmp_path: Path) -> tuple[Path, Path]:
    """A state folder with one file applied: (state, that file)."""
    state = new_state(tmp_path / "state")
    day = tmp_path / "day.csv"
    day.write_text(HEADER + "\ndeposit,1,1,5\n")
    accounts_job.process(day, state=state)
    return state, day


def test_a_file_already_applied_changes_nothing(tmp_path, one_night):
    state, day = one_night
    before = files(state)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(day.read_bytes())
    with pytest.raises(AlreadyApplied, match=r"already applied .*as day\.csv"):
        accounts_job.process(copy, state=state)
    assert files(state) == before


def test_manifest_lists_every_applied_file(tmp_path):
    state = new_state(tmp_path / "state")
    days = []
    for n in range(3):
        day = tmp_path / f"d{n}.csv"
        # Blank lines before the header are part of the content hash too.
        day.write_text("\n" * n + HEADER + f"\ndeposit,1,{n},5\n\n")
        accounts_job.process(day, state=state)
        days.append(day)
    manifest = StateDir(state).manifest()
    assert [a.name for a in manifest.applied] == ["d0.csv", "d1.csv", "d2.csv"]
    assert [a.rows for a in manifest.applied] == [2, 3, 4]
    assert [a.sha256 for a in manifest.applied] == [
        hashlib.sha256(day.read_bytes()).hexdigest() for day in days
    ]
    assert manifest.version == 3
    assert len(manifest.ledgers) == 3
    # Earlier versions of the balances and claimed ids are gone; the ledgers stay.
    names = sorted(p.name for p in state.iterdir())
    assert names == sorted(
        [MANIFEST, "lock", "balances-000003.parquet", "claimed-000003.parquet"]
        + [f"ledger-{v:06d}.parquet" for v in (1, 2, 3)]
    )


def test_a_run_that_fails_leaves_the_state_as_it_was(tmp_path, one_night):
    state, _ = one_night
    before = files(state)
    bad = tmp_path / "bad.csv"
    bad.write_text("no header here\n")
    with pytest.raises(accounts_job.JobError):
        accounts_job.process(bad, state=state)
    assert files(state) == before


def test_a_run_that_fails_after_the_rules_ran_changes_nothing(tmp_path, monkeypatch):
    """The state is committed only after the outputs (docs/rules.md §7): a run whose rules
    all ran, but whose accounts could not then be written, leaves the state as it was and
    no output behind."""
    state = new_state(tmp_path / "state")
    day = tmp_path / "day.csv"
    day.write_text(HEADER + "\ndeposit,1,1,5\n")
    out = tmp_path / "out"
    out.mkdir()
    written = []

    def failing(table, *args, **kwargs):
        written.append(table.num_rows)
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(accounts_job.job, "write_accounts_to", failing)
    with pytest.raises(RuntimeError, match="the disk filled up"):
        accounts_job.process(
            day,
            state=state,
            accounts_to=out / "accounts.csv",
            rejects_to=out / "rejects.csv",
            events_to=out / "events.parquet",
            summary_to=out / "summary.json",
        )
    assert written == [1]  # the run got as far as its accounts
    assert StateDir(state).manifest().version == 0
    assert not list(state.glob("*.parquet"))
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    accounts_job.process(day, state=state)  # and the file can still be applied
    assert StateDir(state).manifest().version == 1


def tonight(tmp_path: Path, text: str) -> Path:
    day = tmp_path / "tonight.csv"
    day.write_text(HEADER + "\n" + text)
    return day


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["balances", "claimed", "ledger"])
def test_a_damaged_state_file_is_refused(tmp_path, kind):
    state = two_nights(tmp_path)
    (target,) = sorted(state.glob(f"{kind}-*.parquet"))[-1:]
    flip_byte(target, target.stat().st_size // 2)
    with pytest.raises(StateError, match="damaged"):
        # Resolving tx 1 reads it from the last ledger.
        accounts_job.process(tonight(tmp_path, "resolve,1,1\n"), state=state)


def test_a_hand_edited_balances_file_is_refused(tmp_path):
    state = two_nights(tmp_path)
    (path,) = state.glob("balances-*.parquet")
    table = pq.read_table(path)
    held = table.column("held").to_pylist()
    held[0] = Decimal("1000")
    edited = table.set_column(2, "held", pa.array(held, table.schema.field("held").type))
    pq.write_table(edited, path)
    with pytest.raises(StateError, match="damaged or edited"):
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state)


def test_a_hand_edited_ledger_is_refused(tmp_path):
    state = two_nights(tmp_path)
    path = sorted(state.glob("ledger-*.parquet"))[0]
    table = pq.read_table(path)
    amounts = table.column("amount_units").to_pylist()
    amounts[0] = 5_000_000
    pq.write_table(table.set_column(2, "amount_units", pa.array(amounts, pa.int64())), path)
    with pytest.raises(StateError, match="damaged or edited"):
        accounts_job.process(tonight(tmp_path, "resolve,1,1\n"), state=state)


def test_an_edited_manifest_is_refused(tmp_path):
    state = two_nights(tmp_path)
    manifest = state / MANIFEST
    manifest.write_text(manifest.read_text().replace('"rows": 1', '"rows": 2', 1))
    with pytest.raises(StateError, match="checksum"):
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state)


def test_a_missing_state_file_is_refused(tmp_path):
    state = two_nights(tmp_path)
    os.unlink(sorted(state.glob("ledger-*.parquet"))[0])
    with pytest.raises(StateError, match="missing"):
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state)


def test_state_files_without_a_manifest_are_refused(tmp_path):
    state = two_nights(tmp_path)
    os.unlink(state / MANIFEST)
    with pytest.raises(StateError, match=r"no manifest\.json"):
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state)


def test_a_second_run_on_a_held_state_fails_fast(tmp_path):
    state = StateDir(new_state(tmp_path / "state"))
    with state.locked(), pytest.raises(accounts_job.JobError, match="in use by another run"):
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state.path)


# The event stream


def replay(events: pa.Table) -> dict[int, list]:
    """The accounts as the projection of the events, from zero balances."""
    accounts: dict[int, list] = {}
    for e in events.to_pylist():
        a = accounts.setdefault(e["client"], [Decimal(0), Decimal(0), False])
        amount = e["amount"]
        if e["event"] == "credited":
            a[0] += amount
        elif e["event"] == "debited":
            a[0] -= amount
        elif e["event"] == "held":
            a[0] -= amount
            a[1] += amount
        elif e["event"] == "released":
            a[0] += amount
            a[1] -= amount
        elif e["event"] == "reversed":
            a[1] -= amount
        elif e["event"] == "locked":
            assert amount is None
            a[2] = True
    return accounts


@pytest.mark.parametrize("batch_size", [1, 3, 1 << 18])
def test_the_accounts_are_the_projection_of_the_events(tmp_path, batch_size):
    text = io.StringIO()
    generate(text, clients=30, transactions=3000, seed=5, hostile=True)
    path = tmp_path / "in.csv"
    path.write_text(text.getvalue())
    result = accounts_job.process(
        path, batch_size=batch_size, events_to=tmp_path / "events.parquet"
    )
    events = pq.read_table(tmp_path / "events.parquet")
    assert events.schema == EVENTS_ARROW
    lines = events.column("line").to_pylist()
    assert lines == sorted(lines)
    assert len(events) == result.summary.applied_total + result.summary.applied["chargeback"]
    projected = replay(events)
    for client, available, held, _total, locked in result.accounts.rows():
        if client in projected:
            assert projected[client] == [available, held, locked]
        else:  # named only by rejected rows
            assert (available, held, locked) == (0, 0, False)


def test_a_night_reads_only_the_ledger_row_groups_it_references(tmp_path, monkeypatch):
    import accounts_job.state.files as state_files

    monkeypatch.setattr(state_files, "LEDGER_ROW_GROUP", 4)
    read: list[int] = []
    real = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):
        read.append(i)
        return real(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    state = new_state(tmp_path / "state")
    for night in "abc":
        (tmp_path / night).mkdir()
    first = [f"deposit,{1 + n % 3},{n},1" for n in range(40)]  # ten row groups of four
    nightly(tmp_path / "a", [first], state)
    assert read == []
    nightly(tmp_path / "b", [["deposit,1,100,1"]], state)
    assert read == []  # nothing tonight names an earlier tx
    last, rejects, _ = nightly(tmp_path / "c", [["dispute,2,13"]], state)
    assert read == [3]  # tx 13 is in the fourth row group of the first night's ledger
    assert rejects == []
    assert last is not None
    assert {r[0]: r[2] for r in last.accounts.rows()}[2] == Decimal(1)


@given(
    ids=st.lists(st.integers(0, 300), max_size=20),
    lo=st.integers(0, 400),
    width=st.integers(0, 400),
)
def test_row_groups_are_skipped_only_when_no_wanted_id_is_in_their_range(ids, lo, width):
    import numpy as np
    from accounts_job.state.folder import _any_in_range

    hi = lo + width
    assert _any_in_range(np.unique(np.array(ids, np.uint32)), lo, hi) == any(
        lo <= i <= hi for i in ids
    )


def test_a_row_group_reaching_past_tonights_ids_is_still_read(tmp_path):
    # Night 1's ledger holds tx 120 and 1000 in one row group; night 2 disputes tx 120,
    # the highest id it names, so the row group's range reaches past its bitmap.
    state = new_state(tmp_path / "state")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    nightly(tmp_path / "a", [["deposit,1,120,2", "deposit,2,1000,3"]], state)
    last, rejects, _ = nightly(tmp_path / "b", [["dispute,1,120"]], state)
    assert rejects == []
    assert last is not None
    assert last.accounts.row(0) == (1, Decimal(0), Decimal(2), Decimal(2), False)

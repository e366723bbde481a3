"""Typed sources: Parquet and Arrow files, Polars frames, Arrow tables and streams
(docs/rules.md §2.11).

The property test converts every CSV the property tests generate to a typed table (typed
columns where the values allow, text where they do not: support/typed.py) and checks that
the job gives the same accounts and the same rejects, line for line, as for the CSV.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from accounts_job import process
from accounts_job.engine.typed import _kinds
from accounts_job.errors import AlreadyApplied, FormError, HeaderError, UsageError
from accounts_job.io.typed import sniff, typed_source
from accounts_job.kernels.parse import _parse_kind
from accounts_job.kernels.typed import text_kinds
from hypothesis import given
from hypothesis import strategies as st
from support.helpers import D, csv_text, run_csv, run_script
from support.model import simulate
from support.strategies import csv_files
from support.typed import csv_to_table

AMOUNT = pa.decimal128(38, 4)


def rows_of(result) -> tuple[dict, list[tuple[int, str]]]:
    accounts = {row[0]: row[1:] for row in result.accounts.iter_rows()}
    rejects = [(line, reason) for line, reason, *_ in result.rejects.iter_rows()]
    return accounts, rejects


def table(**columns) -> pa.Table:
    return pa.table(columns)


# -- the same answer as the CSV ----------------------------------------------------------------

PREFERENCES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["string", "categorical", "binary"]),
        "client": st.sampled_from(["int", "int", "text"]),
        "tx": st.sampled_from(["int", "int", "text"]),
        "amount": st.sampled_from(["decimal", "decimal", "int", "text"]),
    }
)


@given(data=csv_files(), prefer=PREFERENCES, nulls=st.booleans(), batch=st.integers(1, 7))
def test_a_csv_as_parquet_gives_the_same_accounts_and_rejects(data, prefer, nulls, batch):
    converted = csv_to_table(data, prefer, nulls)
    if converted is None:
        return  # no usable header: nothing to convert (the CSV is a fatal error, §2.2)
    expected = simulate(data)
    row_of = {line: row for row, line in enumerate(converted.lines, start=1)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.parquet"
        pq.write_table(converted.table, path)
        for source, batch_size in ((path, 1 << 18), (pl.scan_parquet(path), batch)):
            result = process(source, batch_size=batch_size)
            accounts, rejects = rows_of(result)
            assert accounts == {c: v for c, v in expected.accounts.items()}
            assert rejects == [(row_of[line], reason) for line, reason in expected.rejects]
            summary = result.summary
            assert summary.rows_read == len(converted.lines)
            assert summary.blank_lines == 0
            assert {k: v for k, v in summary.applied.items() if v} == dict(expected.applied)
            assert summary.rejected_total == len(expected.rejects)
    # The Arrow table itself, without Polars' scan: the kernels' own first pass.
    result = process(converted.table, batch_size=batch)
    assert rows_of(result) == (
        expected.accounts,
        [(row_of[line], reason) for line, reason in expected.rejects],
    )


@given(data=csv_files(max_rows=20), prefer=PREFERENCES, cuts=st.lists(st.integers(0, 20)))
def test_a_csv_cut_into_a_folder_of_parquet_files_gives_the_same_answer(data, prefer, cuts):
    """Rows cut over several files, read in path order: the same accounts, and each
    reject's line is its row's number in its own file, beside that file's path."""
    converted = csv_to_table(data, prefer)
    if converted is None or converted.table.num_rows == 0:
        return  # no header, or no rows: a folder of no files holds no rows to read
    expected = simulate(data)
    n = converted.table.num_rows
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    where = {}  # CSV line -> (file, row in file)
    with tempfile.TemporaryDirectory() as folder:
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            # Names that sort as the rows go, whatever the number of files.
            path = Path(folder) / f"part={i:03d}" / "rows.parquet"
            path.parent.mkdir()
            pq.write_table(converted.table.slice(lo, hi - lo), path)
            for row in range(lo, hi):
                where[converted.lines[row]] = (str(path), row - lo + 1)
        result = process(folder)
        assert rows_of(result)[0] == expected.accounts
        got = [(file, line, reason) for file, line, reason, _ in result.rejects.iter_rows()]
        assert got == [(*where[line], reason) for line, reason in expected.rejects]


@given(
    text=st.lists(
        st.sampled_from(
            [
                *("deposit", "withdrawal", "withdraw", "dispute", "resolve", "chargeback"),
                *("x", " ", "\t", "\x00", "\u212a", "DEPOSIT", "K", "k", "é", "@", "`", "{"),
            ]
        ),
        max_size=4,
    ).map("".join),
    flips=st.lists(st.integers(0, 11), max_size=3),
)
def test_the_type_kernel_reads_a_name_as_the_csv_parser_does(text, flips):
    """kernels/typed.py folds case with a word compare; the CSV parser byte by byte."""
    data = bytearray(text.encode("utf-8"))
    for at in flips:
        if at < len(data):
            data[at] ^= 0x20  # a case flip, or a byte that only looks like one
    buf = np.frombuffer(bytes(data) or b"\x01", dtype=np.uint8)
    kinds, nul = np.empty(1, np.uint8), np.empty(1, np.bool_)
    start, end = 0, len(data)
    text_kinds(buf, np.array([start]), np.array([end]), np.ones(1, np.bool_), kinds, nul)
    while start < end and data[start] in b" \t":
        start += 1
    while end > start and data[end - 1] in b" \t":
        end -= 1
    assert kinds[0] == _parse_kind(buf, start, end)
    assert nul[0] == (0 in data)
    # Polars' string views: the names found from the views' words (kernels.view_kinds)
    # where every value is inline, by the bytes otherwise; a null names no kind.
    for values in ([bytes(data), None, b"deposit"], [bytes(data), b"x" * 13]):
        views = pa.array([b"dispute", *values], pa.binary_view()).slice(1)  # an offset
        got, got_nul = _kinds(views)
        assert got[0] == kinds[0] and got_nul[0] == nul[0]
        assert got[1] == 0 and not got_nul[1]


# -- sources -------------------------------------------------------------------------------------

ROWS = {
    "type": ["deposit", "deposit", "withdrawal", "dispute", "chargeback", "deposit"],
    "client": [1, 2, 1, 1, 1, 2],
    "tx": [1, 2, 3, 1, 1, 4],
    "amount": [Decimal("10"), Decimal("5.5"), Decimal("4"), None, None, Decimal("1")],
    "month": ["2024-01", "2024-01", "2024-01", "2024-02", "2024-02", "2024-02"],
}
CSV = csv_text(
    "deposit,1,1,10",
    "deposit,2,2,5.5",
    "withdrawal,1,3,4",
    "dispute,1,1",
    "chargeback,1,1",
    "deposit,2,4,1",
    header="type,client,tx,amount",
)


def frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema_overrides={"amount": pl.Decimal(38, 4)})


class OnlyAStream:
    """An object that exports Arrow only through the PyCapsule stream interface (as
    DuckDB and pandas results do), once."""

    def __init__(self, data: pa.Table) -> None:
        self.data = data

    def __arrow_c_stream__(self, requested_schema=None):
        return self.data.__arrow_c_stream__(requested_schema)


def test_every_kind_of_source_gives_the_csvs_answer(tmp_path):
    expected = run_csv(tmp_path, CSV)
    df = frame()
    df.write_parquet(tmp_path / "tx.parquet")
    df.write_ipc(tmp_path / "tx.arrow")
    v1 = df.with_columns(pl.col("amount").cast(pl.String)).to_arrow()  # v1 has no decimal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # v1 is deprecated: still read
        feather.write_feather(v1, tmp_path / "tx.feather1", version=1)
    sources = [
        tmp_path / "tx.parquet",
        str(tmp_path / "tx.arrow"),
        tmp_path / "tx.feather1",
        df,
        df.lazy(),
        df.to_arrow(),
        pa.RecordBatchReader.from_stream(df.to_arrow()),
        OnlyAStream(df.to_arrow()),
    ]
    forms = ["parquet", "arrow", "feather", "frame", "frame", "table", "stream", "stream"]
    for source, form in zip(sources, forms, strict=True):
        result = process(source)
        assert rows_of(result) == (expected.accounts, expected.rejects), type(source)
        assert result.summary.rows_read == 6
        # The summary says what was read (docs/rules.md §5.4), not "csv".
        assert result.summary.inputs[0]["form"] == form, source
    # A locked account and a credited one: the answer is not trivially empty.
    assert expected.accounts[1][3] is True and expected.accounts[2][0] == D("6.5")


def test_a_file_is_known_by_its_content_not_its_suffix(tmp_path):
    frame().write_parquet(tmp_path / "looks.csv")
    (tmp_path / "looks.parquet").write_text(CSV)
    assert sniff(tmp_path / "looks.csv") == "parquet"
    assert sniff(tmp_path / "looks.parquet") is None
    a = process(tmp_path / "looks.csv")
    b = process(tmp_path / "looks.parquet")
    assert rows_of(a) == rows_of(b)
    assert b.summary.rows_read == 6 and a.summary.input_bytes > 0


def test_a_lazy_frame_filtered_to_one_month(tmp_path):
    frame().write_parquet(tmp_path / "tx.parquet")
    january = pl.scan_parquet(tmp_path / "tx.parquet").filter(pl.col("month") == "2024-01")
    accounts, rejects = rows_of(process(january))
    assert accounts == {
        1: (D("6"), D("0"), D("6"), False),
        2: (D("5.5"), D("0"), D("5.5"), False),
    }
    assert rejects == []


def test_batches_hold_at_most_the_batch_size_in_source_order(tmp_path):
    n = 10_000
    pl.DataFrame(
        {"type": ["deposit"] * n, "client": [1] * n, "tx": list(range(n)), "amount": [1] * n}
    ).write_parquet(tmp_path / "tx.parquet", row_group_size=3000)
    source = typed_source(tmp_path / "tx.parquet")
    assert source is not None
    sizes, txs = [], []
    for batch in source.batches(["tx"], 1000):
        sizes.append(batch.num_rows)
        txs += batch.column("tx").to_pylist()
    assert max(sizes) <= 1000 and len(sizes) >= 10
    assert txs == list(range(n))


def test_a_plain_csv_run_does_not_import_polars(tmp_path):
    (tmp_path / "in.csv").write_text(CSV)
    code = (
        "import sys, accounts_job\n"
        f"accounts_job.process({str(tmp_path / 'in.csv')!r}, keep_rejects=False)\n"
        "assert 'polars' not in sys.modules, 'polars imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- columns, types and values (docs/rules.md §2.11) -----------------------------------------------


def test_columns_are_matched_as_the_header_is(tmp_path):
    t = pa.table(
        {
            "note": ["a", "b"],
            " TX ": pa.array([7, 8], pa.uint32()),
            "Client": pa.array([3, 3], pa.uint16()),
            "TYPE": ["Deposit", "withdraw"],
            "amount": pa.array([Decimal("2.5"), Decimal("1")], AMOUNT),
        }
    )
    accounts, rejects = rows_of(process(t))
    assert accounts == {3: (D("1.5"), D("0"), D("1.5"), False)}
    without_amount = t.drop_columns(["amount"])
    accounts, rejects = rows_of(process(without_amount))
    assert rejects == [(1, "invalid_amount"), (2, "invalid_amount")]
    assert accounts == {}


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"type": ["deposit"], "client": [1]}, "lacks required column tx"),
        ({"type": ["deposit"], "client": [1], "tx": [1], "TX": [2]}, "'tx' twice"),
        ({"type": ["deposit"], "client": [[1]], "tx": [1]}, "'client' has type list"),
        ({"type": [1], "client": [1], "tx": [1]}, "'type' has type int64"),
        ({"type": ["deposit"], "client": [1], "tx": [1], "amount": [1.5]}, "'amount' is a float"),
        ({"type": ["deposit"], "client": [1.0], "tx": [1]}, "'client' is a float"),
        ({"type": ["deposit"], "client": [1], "tx": [True]}, "'tx' has type bool"),
    ],
)
def test_a_column_that_can_never_be_valid_is_fatal(tmp_path, columns, words):
    with pytest.raises(HeaderError, match=words) as caught:
        process(pa.table(columns))
    assert caught.value.exit_code == 65


def test_the_command_line_names_the_impossible_column_and_exits_65(tmp_path):
    pq.write_table(pa.table({"type": ["deposit"], "client": [[1]], "tx": [1]}), tmp_path / "x.pq")
    done = run_script("run", tmp_path / "x.pq", "--quiet")
    assert done.returncode == 65
    message = done.stderr.decode()
    assert message.startswith("accounts-job: error: column 'client' has type large_list<")
    assert message.count("\n") == 1
    assert done.stdout == b""


def test_ids_of_any_integer_type_or_text_out_of_range_or_negative_are_refused():
    t = pa.table(
        {
            "type": ["deposit"] * 7,
            "client": pa.array([1, -1, 65536, 2, 2, 2, 2], pa.int64()),
            "tx": pa.array(["1", "2", "3", "-4", "4294967296", " 007 ", "1e3"]),
            "amount": pa.array([1] * 7, pa.int8()),
        }
    )
    accounts, rejects = rows_of(process(t))
    assert rejects == [
        (2, "invalid_client"),
        (3, "invalid_client"),
        (4, "invalid_tx"),
        (5, "invalid_tx"),
        (7, "invalid_tx"),
    ]
    assert accounts == {1: (D("1"), D("0"), D("1"), False), 2: (D("1"), D("0"), D("1"), False)}
    big = pa.table(
        {
            "type": ["deposit", "deposit"],
            "client": pa.array([1, 1], pa.uint64()),
            "tx": pa.array([2**63, 4294967295], pa.uint64()),
            "amount": pa.array([1, 1], pa.uint64()),
        }
    )
    assert rows_of(process(big))[1] == [(1, "invalid_tx")]


def test_amounts_as_decimals_integers_and_text():
    def deposits(amount: pa.Array) -> list[tuple[int, str]]:
        n = len(amount)
        t = pa.table(
            {
                "type": ["deposit"] * n,
                "client": list(range(n)),
                "tx": list(range(n)),
                "amount": amount,
            }
        )
        return rows_of(process(t))

    scale2 = pa.array([Decimal("1.25"), Decimal("0"), Decimal("-1"), None], pa.decimal128(9, 2))
    accounts, rejects = deposits(scale2)
    assert accounts[0] == (D("1.25"), D("0"), D("0") + D("1.25"), False)
    assert rejects == [(2, "invalid_amount"), (3, "invalid_amount"), (4, "invalid_amount")]
    # Six places: exact at four places or refused, never rounded (§2.8).
    scale6 = pa.array([Decimal("1.500000"), Decimal("1.000001")], pa.decimal128(20, 6))
    accounts, rejects = deposits(scale6)
    assert accounts[0][0] == D("1.5") and rejects == [(2, "invalid_amount")]
    # Integers are whole units; the largest balance bounds them (§3).
    ints = pa.array([2, 0, 922337203685477, 922337203685478], pa.int64())
    accounts, rejects = deposits(ints)
    assert accounts[0][0] == D("2") and accounts[2][0] == D("922337203685477")
    assert rejects == [(2, "invalid_amount"), (4, "invalid_amount")]
    text = pa.array([" 2.5 ", "1e3", ".5", "1,000", "922337203685477.5808", "7."])
    accounts, rejects = deposits(text)
    assert [accounts[i][0] for i in (0, 2, 5)] == [D("2.5"), D("0.5"), D("7")]
    assert rejects == [(2, "invalid_amount"), (4, "invalid_amount"), (5, "invalid_amount")]
    big = pa.array([Decimal("922337203685477.5807"), Decimal("1e20")], pa.decimal128(38, 4))
    accounts, rejects = deposits(big)
    assert accounts[0][0] == D("922337203685477.5807") and rejects == [(2, "invalid_amount")]


def test_type_as_categorical_enum_or_text_and_nulls_as_empty_fields():
    types = ["DEPOSIT", None, " withdraw\t", "dispute", "deposit\x00", "bogus"]
    n = len(types)
    base = {
        "client": pa.array([1, 1, 1, 1, 1, None], pa.int32()),
        "tx": pa.array([1, 2, 3, None, 5, 6], pa.int32()),
        "amount": pa.array(["5", "1", "2", "x", "1", "1"]),
    }
    expected = [(2, "unknown_type"), (4, "invalid_tx"), (5, "malformed_row"), (6, "unknown_type")]
    for column in (
        pa.array(types),
        pa.array(types).dictionary_encode(),
        pl.Series(types, dtype=pl.Categorical).to_arrow(),
        pa.array(types, pa.large_string()),
        pa.array([t.encode() if t else None for t in types], pa.binary()),
    ):
        accounts, rejects = rows_of(process(pa.table({"type": column, **base})))
        assert rejects == expected, column.type
        assert accounts == {1: (D("3"), D("0"), D("3"), False)}
    enum = pl.DataFrame(
        {"type": ["deposit", "resolve"], "client": [1, 1], "tx": [1, 1], "amount": [1, None]},
        schema_overrides={"type": pl.Enum(["deposit", "resolve"])},
    )
    assert rows_of(process(enum))[1] == [(2, "not_disputed")]
    assert n == 6


def test_a_rejects_raw_is_the_row_written_as_a_csv_line(tmp_path):
    t = pa.table(
        {
            "memo": ["ignored", "ignored"],
            "amount": pa.array([Decimal("1.5"), None], AMOUNT),
            "type": ["deposit", 'say "hi", x'],
            "client": pa.array([70000, 1], pa.int64()),
            "tx": pa.array([1, 2], pa.uint32()),
        }
    )
    result = process(t, rejects_to=tmp_path / "rejects.csv")
    assert (tmp_path / "rejects.csv").read_text().splitlines() == [
        "line,reason,raw",
        '1,"invalid_client","1.5000,deposit,70000,1"',
        '2,"unknown_type",",""say """"hi"""", x"",1,2"',
    ]
    assert result.rejects is None
    kept = process(t).rejects
    assert kept.get_column("raw").to_list() == [b"1.5000,deposit,70000,1", b',"say ""hi"", x",1,2']


# -- folders, globs and hive datasets -------------------------------------------------------------


def test_a_hive_dataset_is_read_in_path_order_with_the_file_of_each_row(tmp_path):
    df = frame()
    for month in ("2024-02", "2024-01"):  # written out of order: read in path order
        folder = tmp_path / "tx" / f"month={month}"
        folder.mkdir(parents=True)
        df.filter(pl.col("month") == month).drop("month").write_parquet(folder / "part-0.parquet")
    (tmp_path / "tx" / "_SUCCESS").write_text("")
    (tmp_path / "tx" / "_temporary").mkdir()  # a write under way: not part of the data
    df.write_parquet(tmp_path / "tx" / "_temporary" / "part-9.parquet")
    expected = run_csv(tmp_path, CSV)
    rejects_csv, events_csv = tmp_path / "rejects.csv", tmp_path / "events.csv"
    for source in (tmp_path / "tx", str(tmp_path / "tx" / "month=*" / "*.parquet")):
        result = process(source)
        assert rows_of(result)[0] == expected.accounts
        assert result.summary.rows_read == 6
    bad = df.with_columns(pl.lit("bogus").alias("type"))
    bad.filter(pl.col("month") == "2024-02").drop("month").write_parquet(
        tmp_path / "tx" / "month=2024-02" / "part-1.parquet"
    )
    process(tmp_path / "tx", rejects_to=rejects_csv, events_to=events_csv)
    second = str(tmp_path / "tx" / "month=2024-02" / "part-1.parquet")
    assert rejects_csv.read_text().splitlines() == [
        "file,line,reason,raw",
        *(
            f'"{second}",{i},"unknown_type","bogus,{c},{t},{a}"'
            for i, c, t, a in (
                (1, 1, 1, ""),
                (2, 1, 1, ""),
                (3, 2, 4, "1.0000"),
            )
        ),
    ]
    events = pl.read_csv(events_csv)
    assert events.columns == ["file", "line", "client", "tx", "event", "amount"]
    # The chargeback's two events: line 2 of February's first file.
    assert events.filter(pl.col("event").is_in(["reversed", "locked"])).select(
        "line", pl.col("file").str.contains("month=2024-02/part-0")
    ).rows() == [(2, True), (2, True)]


# -- nightly state and the command line -----------------------------------------------------------


def test_a_parquet_file_is_applied_once_by_its_content(tmp_path):
    state = tmp_path / "state"
    assert run_script("state", "init", state).returncode == 0
    frame().write_parquet(tmp_path / "day1.parquet")
    first = run_script("run", tmp_path / "day1.parquet", "--state", state, "--quiet")
    assert first.returncode == 0, first.stderr
    (tmp_path / "again.parquet").write_bytes((tmp_path / "day1.parquet").read_bytes())
    again = run_script("run", tmp_path / "again.parquet", "--state", state)
    assert again.returncode == 0 and b"already applied" in again.stderr
    with pytest.raises(AlreadyApplied):
        process(tmp_path / "again.parquet", state=state)
    with pytest.raises(UsageError, match="write the frame or table to a Parquet file"):
        process(frame().lazy(), state=state)
    # A new night's rows, as Parquet: it reaches back into the first night's deposit.
    pq.write_table(
        pa.table(
            {"type": ["resolve", "deposit"], "client": [2, 2], "tx": [2, 9], "amount": [None, 1]}
        ),
        tmp_path / "day2.parquet",
    )
    second = process(tmp_path / "day2.parquet", state=state)
    assert rows_of(second)[1] == [(1, "not_disputed")]
    assert rows_of(second)[0][2] == (D("7.5"), D("0"), D("7.5"), False)


def test_the_command_line_runs_parquet_and_refuses_it_on_a_cluster(tmp_path):
    frame().write_parquet(tmp_path / "tx.parquet")
    done = run_script("run", tmp_path / "tx.parquet", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [
        "client,available,held,total,locked",
        "1,-4.0000,0.0000,-4.0000,true",
        "2,6.5000,0.0000,6.5000,false",
    ]
    refused = run_script("run", tmp_path / "tx.parquet", "--cluster", "local:1", "--quiet")
    assert refused.returncode == 2 and b"reads CSV" in refused.stderr


def test_a_damaged_or_empty_typed_file(tmp_path):
    (tmp_path / "damaged.parquet").write_bytes(b"PAR1 not really a Parquet file")
    done = run_script("run", tmp_path / "damaged.parquet", "--quiet")
    assert done.returncode == 66
    assert done.stderr.decode().startswith("accounts-job: error: cannot read input ")
    assert done.stderr.count(b"\n") == 1
    frame().head(0).write_parquet(tmp_path / "empty.parquet")
    result = process(tmp_path / "empty.parquet")
    assert result.summary.rows_read == 0 and result.accounts.height == 0


def test_progress_reports_each_pass_of_a_file_by_its_bytes(tmp_path):
    frame().write_parquet(tmp_path / "tx.parquet")
    calls = []
    process(tmp_path / "tx.parquet", progress=lambda name, n: calls.append((name, n)))
    size = (tmp_path / "tx.parquet").stat().st_size
    assert calls == [("references", size), ("rules", size)]


def test_a_folder_or_glob_of_parquet_and_other_files_is_refused_not_read_in_part(tmp_path):
    """Reading the Parquet files alone would leave the CSV's rows out without a word
    (docs/rules.md §2.11): the run stops with status 65, one line, nothing written."""
    lake = tmp_path / "lake"
    lake.mkdir()
    frame().write_parquet(lake / "part-0.parquet")
    (lake / "part-1.csv").write_text(CSV)
    (lake / "_SUCCESS").write_text("")  # a writer's own file: skipped, not "other"
    out = tmp_path / "accounts.csv"
    for source in (lake, lake / "part-*"):
        done = run_script("run", source, "--out", out, "--quiet")
        assert done.returncode == 65, done.stderr
        assert done.stderr.count(b"\n") == 1
        assert b"part-1.csv" in done.stderr and b"Parquet files only" in done.stderr
        assert not out.exists()
        with pytest.raises(FormError):
            process(str(source))
    # Parquet files alone (and a writer's own files) are read.
    (lake / "part-1.csv").unlink()
    assert process(lake).summary.rows_read == 6

"""The accounts output, through the Python API: CSV text and Parquet types, docs/rules.md
§5.1.

Every expected value here is worked out by hand from the rules of docs/rules.md, but the
worked example's, which is that of §9.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from accounts_job import process, write_accounts
from support.example import WORKED_EXAMPLE, WORKED_EXAMPLE_CSV, WORKED_EXAMPLE_ROWS

HEADER = "client,available,held,total,locked\n"

EXAMPLE = WORKED_EXAMPLE
EXAMPLE_CSV = WORKED_EXAMPLE_CSV

MAX = "922337203685477.5807"  # (2**63 - 1) units of 0.0001: the largest balance

# Clients appear out of order; each ends with an amount that tests the formatting.
EDGES = (
    "type,client,tx,amount\n"
    # client 7: the largest balance there is
    f"deposit,7,1,{MAX}\n"
    # client 3: deposit the largest, withdraw it all, dispute the deposit:
    # available -MAX, held MAX, total 0
    f"deposit,3,2,{MAX}\n"
    f"withdrawal,3,3,{MAX}\n"
    "dispute,3,2\n"
    # client 65535: 0.25 + 1 - 1.25 = 0, then dispute the 0.25: available -0.25
    "deposit,65535,4,0.25\n"
    "deposit,65535,5,1\n"
    "withdrawal,65535,6,1.25\n"
    "dispute,65535,4\n"
    # client 0: the smallest unit
    "deposit,0,7,0.0001\n"
    # client 9: 2.5 + 1, the 1 disputed and charged back: 2.5, locked
    "deposit,9,8,2.5\n"
    "deposit,9,9,1\n"
    "dispute,9,9\n"
    "chargeback,9,9\n"
    # client 10: a fraction that needs a zero after the point
    "deposit,10,10,12.05\n"
    # client 12: 2 + 1.05 - 3.05 = 0, then dispute the 1.05: available -1.05
    "deposit,12,11,2\n"
    "deposit,12,12,1.05\n"
    "withdrawal,12,13,3.05\n"
    "dispute,12,12\n"
)
EDGES_CSV = HEADER + (
    "0,0.0001,0.0000,0.0001,false\n"
    f"3,-{MAX},{MAX},0.0000,false\n"
    f"7,{MAX},0.0000,{MAX},false\n"
    "9,2.5000,0.0000,2.5000,true\n"
    "10,12.0500,0.0000,12.0500,false\n"
    "12,-1.0500,1.0500,0.0000,false\n"
    "65535,-0.2500,0.2500,0.0000,false\n"
)
D = Decimal
EDGES_ROWS = [
    (0, D("0.0001"), D("0"), D("0.0001"), False),
    (3, -D(MAX), D(MAX), D("0"), False),
    (7, D(MAX), D("0"), D(MAX), False),
    (9, D("2.5"), D("0"), D("2.5"), True),
    (10, D("12.05"), D("0"), D("12.05"), False),
    (12, D("-1.05"), D("1.05"), D("0"), False),
    (65535, D("-0.25"), D("0.25"), D("0"), False),
]

# Inputs whose output has no accounts at all.
NO_ACCOUNTS = {
    "header_only": "type,client,tx,amount\n",
    "header_without_line_end": "type,client,tx,amount",
    "header_and_blank_lines": "type,client,tx,amount\n\n\n",
    # Every row malformed (docs/rules.md §2.9: a malformed row does not name its client).
    "no_well_formed_rows": (
        "type,client,tx,amount\n"
        "refund,1,1,1.0\n"  # unknown_type
        "deposit,65536,2,1.0\n"  # invalid_client
        "deposit,1,-3,1.0\n"  # invalid_tx
        "deposit,1,4,1.00001\n"  # invalid_amount
        "withdrawal,1,5,\n"  # invalid_amount
        "deposit,1,6,1.0,extra\n"  # malformed_row
    ),
}

COLUMNS = ["client", "available", "held", "total", "locked"]


def write_input(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def accounts_of(tmp_path: Path, text: str) -> pl.DataFrame:
    return process(write_input(tmp_path, text)).accounts


def csv_to_stdout(accounts: pl.DataFrame, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    write_accounts(accounts, None)
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def assert_parquet_schema(schema: pa.Schema) -> None:
    assert schema.names == COLUMNS
    assert schema.field("client").type == pa.uint16()
    for name in ("available", "held", "total"):
        t = schema.field(name).type
        assert pa.types.is_decimal(t), (name, t)
        assert not pa.types.is_floating(t)
        assert t.scale == 4, (name, t)
        # Wide enough for every signed 64-bit count of units (19 digits).
        assert t.precision >= 19, (name, t)
    assert schema.field("locked").type == pa.bool_()


def parquet_rows(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    assert_parquet_schema(table.schema)
    rows = [tuple(r[c] for c in COLUMNS) for r in table.to_pylist()]
    for row in rows:
        for amount in row[1:4]:
            assert isinstance(amount, Decimal)
            assert amount.as_tuple().exponent == -4
    return rows


# ---------------------------------------------------------------------------- CSV


def test_csv_worked_example_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert csv_to_stdout(accounts_of(tmp_path, EXAMPLE), capsys) == EXAMPLE_CSV


def test_csv_worked_example_to_file(tmp_path: Path) -> None:
    target = tmp_path / "accounts.csv"
    write_accounts(accounts_of(tmp_path, EXAMPLE), target)
    assert target.read_bytes() == EXAMPLE_CSV.encode()


def test_csv_four_places_signs_and_extremes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = accounts_of(tmp_path, EDGES)
    assert csv_to_stdout(accounts, capsys) == EDGES_CSV
    target = tmp_path / "edges.csv"
    write_accounts(accounts, target)
    assert target.read_text() == EDGES_CSV


def test_csv_every_amount_has_exactly_four_places(tmp_path: Path) -> None:
    target = tmp_path / "edges.csv"
    write_accounts(accounts_of(tmp_path, EDGES), target)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == len(EDGES_ROWS)
    for row in rows:
        assert row["locked"] in ("true", "false")
        for name in ("available", "held", "total"):
            whole, point, places = row[name].lstrip("-").partition(".")
            assert point == "." and len(places) == 4 and places.isdigit(), row
            assert whole.isdigit() and (whole == "0" or not whole.startswith("0")), row
            assert row[name] != "-0.0000"


def test_csv_values_match_the_rules(tmp_path: Path) -> None:
    target = tmp_path / "edges.csv"
    write_accounts(accounts_of(tmp_path, EDGES), target)
    rows = [
        (
            int(r["client"]),
            D(r["available"]),
            D(r["held"]),
            D(r["total"]),
            {"true": True, "false": False}[r["locked"]],
        )
        for r in csv.DictReader(io.StringIO(target.read_text()))
    ]
    assert rows == EDGES_ROWS
    for _, available, held, total, _ in rows:
        assert total == available + held
        assert held >= 0


def test_accounts_sorted_by_client_number(tmp_path: Path) -> None:
    # Input order 7, 3, 65535, 0, 9, 10, 12; as text 10 and 12 would sort before 3.
    accounts = accounts_of(tmp_path, EDGES)
    assert accounts.get_column("client").to_list() == [0, 3, 7, 9, 10, 12, 65535]


def test_csv_format_argument(tmp_path: Path) -> None:
    target = tmp_path / "accounts.txt"
    write_accounts(accounts_of(tmp_path, EXAMPLE), target, "csv")
    assert target.read_text() == EXAMPLE_CSV


# ---------------------------------------------------------------------------- API frame


def test_api_accounts_frame_is_exact(tmp_path: Path) -> None:
    accounts = accounts_of(tmp_path, EDGES)
    assert accounts.columns == COLUMNS
    assert accounts.schema["client"] == pl.UInt16
    for name in ("available", "held", "total"):
        dtype = accounts.schema[name]
        assert isinstance(dtype, pl.Decimal), (name, dtype)
        assert dtype.scale == 4
    assert accounts.schema["locked"] == pl.Boolean
    assert [tuple(r) for r in accounts.iter_rows()] == EDGES_ROWS


# ---------------------------------------------------------------------------- Parquet


@pytest.mark.parametrize("name", ["accounts.parquet", "accounts.pq"])
def test_parquet_by_suffix(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    write_accounts(accounts_of(tmp_path, EDGES), target)
    assert target.read_bytes()[:4] == b"PAR1"
    assert parquet_rows(target) == EDGES_ROWS


def test_parquet_format_argument(tmp_path: Path) -> None:
    target = tmp_path / "accounts.bin"
    write_accounts(accounts_of(tmp_path, EDGES), target, "parquet")
    assert parquet_rows(target) == EDGES_ROWS


def test_parquet_worked_example(tmp_path: Path) -> None:
    target = tmp_path / "accounts.parquet"
    write_accounts(accounts_of(tmp_path, EXAMPLE), target)
    assert parquet_rows(target) == WORKED_EXAMPLE_ROWS


def test_parquet_extremes_survive_bit_for_bit(tmp_path: Path) -> None:
    """The largest balance, 2**63 - 1 units, is not representable in a float64."""
    target = tmp_path / "accounts.parquet"
    write_accounts(accounts_of(tmp_path, EDGES), target)
    table = pq.read_table(target)
    available = table.column("available").to_pylist()
    assert D(MAX) in available and -D(MAX) in available
    assert float(D(MAX)) == float(D(MAX) - D("0.0001"))  # what a float would lose
    assert D(MAX).scaleb(4) == 2**63 - 1


def test_parquet_and_csv_agree(tmp_path: Path) -> None:
    accounts = accounts_of(tmp_path, EDGES)
    write_accounts(accounts, tmp_path / "a.csv")
    write_accounts(accounts, tmp_path / "a.parquet")
    from_csv = [
        (int(r["client"]), D(r["available"]), D(r["held"]), D(r["total"]), r["locked"] == "true")
        for r in csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text()))
    ]
    assert from_csv == parquet_rows(tmp_path / "a.parquet")


# ---------------------------------------------------------------------------- no accounts


@pytest.mark.parametrize("text", NO_ACCOUNTS.values(), ids=NO_ACCOUNTS.keys())
def test_no_accounts_csv_is_the_header(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = accounts_of(tmp_path, text)
    assert accounts.height == 0
    assert csv_to_stdout(accounts, capsys) == HEADER
    target = tmp_path / "accounts.csv"
    write_accounts(accounts, target)
    assert target.read_bytes() == HEADER.encode()


@pytest.mark.parametrize("text", NO_ACCOUNTS.values(), ids=NO_ACCOUNTS.keys())
def test_no_accounts_parquet_has_the_schema(tmp_path: Path, text: str) -> None:
    target = tmp_path / "accounts.parquet"
    write_accounts(accounts_of(tmp_path, text), target)
    table = pq.read_table(target)
    assert table.num_rows == 0
    assert_parquet_schema(table.schema)


def test_no_well_formed_rows_are_all_rejected(tmp_path: Path) -> None:
    result = process(write_input(tmp_path, NO_ACCOUNTS["no_well_formed_rows"]))
    assert result.accounts.height == 0
    assert result.rejects is not None
    assert result.rejects.get_column("line").to_list() == [2, 3, 4, 5, 6, 7]
    assert result.rejects.get_column("reason").cast(pl.String).to_list() == [
        "unknown_type",
        "invalid_client",
        "invalid_tx",
        "invalid_amount",
        "invalid_amount",
        "malformed_row",
    ]
    assert result.summary.accounts == 0
    assert result.summary.rows_read == 6


def test_rejected_well_formed_rows_still_open_accounts(tmp_path: Path) -> None:
    """The counterpart: a well-formed row names its client even when it is rejected."""
    text = "type,client,tx,amount\nwithdrawal,5,1,1.0\ndispute,4,9\n"
    target = tmp_path / "accounts.csv"
    write_accounts(accounts_of(tmp_path, text), target)
    assert target.read_text() == HEADER + (
        "4,0.0000,0.0000,0.0000,false\n5,0.0000,0.0000,0.0000,false\n"
    )

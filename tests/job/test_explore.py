"""`accounts_job.explore`: the notebook's analysis, on small frames made by hand.

Expected values are worked out by hand from the rows below, never by running the code:
exact Decimal sums, the order of every table, the rows each reason's sample keeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import accounts_job
import polars as pl
import pytest
from accounts_job import explore
from accounts_job.engine.summary import Summary
from accounts_job.io.frames import ACCOUNTS_FRAME, REJECTS_FRAME
from accounts_job.io.writers import RejectsWriter, write_accounts
from polars.testing import assert_frame_equal


def D(text: str) -> Decimal:
    return Decimal(text)


# Beyond float precision: 2**53 is about 9.007e15, these have 18 significant digits.
BIG = "92233720368547.7580"


def accounts_frame(*rows: tuple[int, str, str, bool]) -> pl.DataFrame:
    """Accounts from (client, available, held, locked); total = available + held."""
    return pl.DataFrame(
        [(c, D(a), D(h), D(a) + D(h), locked) for c, a, h, locked in rows],
        schema=ACCOUNTS_FRAME,
        orient="row",
    )


def rejects_frame(*rows: tuple[int, str, str]) -> pl.DataFrame:
    """Rejects as the job gives them: `raw` is the line's bytes (docs/rules.md §5.2)."""
    rows_as_read = [(line, reason, raw.encode()) for line, reason, raw in rows]
    return pl.DataFrame(rows_as_read, schema=REJECTS_FRAME, orient="row")


# Six accounts: two with open disputes, two with negative available, two locked.
ACCOUNTS = accounts_frame(
    (1, "-4.0000", "0.0000", True),
    (2, "5.0000", "0.0000", False),
    (3, "-0.0001", "10.0000", False),
    (4, "7.5000", "2.5000", False),
    (5, "0.0000", "0.0000", True),
    (9, "12.3456", "0.0000", False),
)


def summary(**fields: object) -> Summary:
    s = Summary()
    for name, value in fields.items():
        if name in ("applied", "rejected"):
            getattr(s, name).update(value)
        else:
            setattr(s, name, value)
    return s


def rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return list(frame.iter_rows())


# --- The run at a glance ----------------------------------------------------------------


def test_run_overview_lists_the_six_counts_of_the_summary() -> None:
    s = summary(
        rows_read=20,
        applied={"deposit": 6, "withdrawal": 3, "chargeback": 1},
        rejected={"insufficient_funds": 4, "unknown_tx": 3},
        blank_lines=3,
        accounts=6,
        locked_accounts=2,
    )
    assert rows(explore.run_overview(s)) == [
        ("rows read", 20),
        ("applied", 10),
        ("rejected", 7),
        ("blank lines", 3),
        ("accounts", 6),
        ("locked accounts", 2),
    ]


def test_run_overview_without_a_summary_counts_the_accounts() -> None:
    assert rows(explore.run_overview(None, ACCOUNTS)) == [("accounts", 6), ("locked accounts", 2)]


def test_applied_by_kind_keeps_every_kind_in_order_zeros_included() -> None:
    s = summary(applied={"deposit": 6, "dispute": 2})
    assert rows(explore.applied_by_kind(s)) == [
        ("deposit", 6),
        ("withdrawal", 0),
        ("dispute", 2),
        ("resolve", 0),
        ("chargeback", 0),
    ]


def test_rejected_by_reason_drops_zeros_most_frequent_first_ties_in_code_order() -> None:
    # unknown_tx (code 10) comes after invalid_amount (code 5) in docs/rules.md §8; both
    # have 2.
    s = summary(rejected={"unknown_tx": 2, "insufficient_funds": 5, "invalid_amount": 2})
    assert rows(explore.rejected_by_reason(s)) == [
        ("insufficient_funds", 5),
        ("invalid_amount", 2),
        ("unknown_tx", 2),
    ]


def test_rejected_by_reason_of_a_clean_run_is_empty() -> None:
    assert explore.rejected_by_reason(summary()).height == 0


# --- Where the money is -----------------------------------------------------------------


def test_balance_totals_are_exact_decimal_sums() -> None:
    assert rows(explore.balance_totals(ACCOUNTS)) == [(6, D("20.8455"), D("12.5000"), D("33.3455"))]


def test_balance_totals_stay_exact_beyond_float_precision() -> None:
    accounts = accounts_frame((1, BIG, "0.0001", False), (2, "0.0001", "0.0000", False))
    (row,) = rows(explore.balance_totals(accounts))
    assert row == (2, D("92233720368547.7581"), D("0.0001"), D("92233720368547.7582"))
    assert all(isinstance(amount, Decimal) for amount in row[1:])
    # The same sum in floats is off: the reason amounts never pass through float.
    assert Decimal(float(BIG) + 0.0002) != D("92233720368547.7582")


def test_balance_distribution_uses_nearest_rank_on_actual_balances() -> None:
    # Totals sorted: -4, 0, 5, 9.9999, 10, 12.3456 (n = 6).
    # ceil(p * 6 / 100): p10 -> 1, p25 -> 2, p50 -> 3, p75 -> 5, p90 -> 6, p99 -> 6.
    assert rows(explore.balance_distribution(ACCOUNTS)) == [
        ("min", D("-4")),
        ("p10", D("-4")),
        ("p25", D("0")),
        ("median", D("5")),
        ("p75", D("10")),
        ("p90", D("12.3456")),
        ("p99", D("12.3456")),
        ("max", D("12.3456")),
    ]


def test_balance_distribution_of_another_column_and_chosen_percentiles() -> None:
    # Held sorted: 0, 0, 0, 0, 2.5, 10; ceil(50 * 6 / 100) = 3, ceil(80 * 6 / 100) = 5.
    table = explore.balance_distribution(ACCOUNTS, "held", percentiles=(50, 80))
    assert rows(table) == [
        ("min", D("0")),
        ("median", D("0")),
        ("p80", D("2.5")),
        ("max", D("10")),
    ]
    assert table.schema["value"] == pl.Decimal(38, 4)


def test_balance_distribution_of_no_accounts_is_empty() -> None:
    assert explore.balance_distribution(ACCOUNTS.clear()).height == 0


def test_largest_accounts_by_total_ties_by_client() -> None:
    accounts = accounts_frame(
        (7, "1.0000", "0.0000", False),
        (3, "2.0000", "0.0000", False),
        (5, "1.0000", "0.0000", False),
        (2, "0.5000", "0.5000", False),
    )
    assert explore.largest_accounts(accounts, 3)["client"].to_list() == [3, 2, 5]
    assert explore.largest_accounts(accounts, 10)["client"].to_list() == [3, 2, 5, 7]


def test_largest_accounts_by_another_column() -> None:
    assert explore.largest_accounts(ACCOUNTS, 2, by="held")["client"].to_list() == [3, 4]


def test_open_disputes_are_accounts_holding_funds_most_held_first() -> None:
    disputes = explore.open_disputes(ACCOUNTS)
    assert rows(disputes.select("client", "held")) == [(3, D("10")), (4, D("2.5"))]


# --- Risk -------------------------------------------------------------------------------


def test_exposure_is_the_exact_sum_of_negative_available() -> None:
    exposed = explore.exposure(ACCOUNTS)
    assert exposed.count == 2
    assert exposed.amount == D("-4.0001")
    assert isinstance(exposed.amount, Decimal)
    # Most negative first.
    assert exposed.accounts["client"].to_list() == [1, 3]


def test_exposure_with_no_negative_available_is_zero() -> None:
    exposed = explore.exposure(accounts_frame((1, "0.0000", "3.0000", False)))
    assert exposed.count == 0
    assert exposed.amount == 0
    assert isinstance(exposed.amount, Decimal)


def test_exposure_stays_exact_with_large_and_tiny_amounts() -> None:
    accounts = accounts_frame(
        (1, "-" + BIG, BIG, False),
        (2, "-0.0001", "0.0001", False),
        (3, "-0.0001", "0.0001", True),
    )
    assert explore.exposure(accounts).amount == D("-92233720368547.7582")


def test_locked_accounts_by_client() -> None:
    assert explore.locked_accounts(ACCOUNTS)["client"].to_list() == [1, 5]


def test_lock_chargebacks_without_events_is_none() -> None:
    assert explore.lock_chargebacks(ACCOUNTS, None) is None


def test_lock_chargebacks_pairs_each_locked_account_with_its_chargeback() -> None:
    events = pl.DataFrame(
        {
            "line": [2, 4, 7, 7, 9, 12, 12],
            "event": ["credited", "held", "reversed", "locked", "credited", "reversed", "locked"],
            "client": [1, 1, 1, 1, 5, 5, 5],
            "tx": [1, 1, 1, 1, 8, 8, 8],
            "amount": [D("10"), D("10"), D("10"), None, D("3"), D("3"), None],
        },
        schema_overrides={"amount": pl.Decimal(38, 4)},
    )
    found = explore.lock_chargebacks(ACCOUNTS, events)
    assert found is not None
    assert rows(found.select("client", "line", "tx", "charged_back", "total")) == [
        (1, 7, 1, D("10"), D("-4")),
        (5, 12, 8, D("3"), D("0")),
    ]


# --- The rejects ------------------------------------------------------------------------

REJECTS = rejects_frame(
    (30, "unknown_tx", "dispute,1,99,"),
    (4, "insufficient_funds", "withdrawal,1,3,9"),
    (12, "unknown_tx", "resolve,2,98,"),
    (9, "insufficient_funds", "withdrawal,2,5,8"),
    (2, "invalid_amount", "deposit,1,1,1.00001"),
    (21, "insufficient_funds", "withdrawal,3,6,7"),
    (15, "invalid_amount", "deposit,2,7,-1"),
    (40, "insufficient_funds", "withdrawal,4,9,6"),
)


def test_reject_samples_first_rows_of_each_reason_most_frequent_reason_first() -> None:
    # insufficient_funds (4) first; invalid_amount and unknown_tx (2 each) in the code order
    # of docs/rules.md §8.
    assert rows(explore.reject_samples(REJECTS, 2)) == [
        ("insufficient_funds", 4, b"withdrawal,1,3,9"),
        ("insufficient_funds", 9, b"withdrawal,2,5,8"),
        ("invalid_amount", 2, b"deposit,1,1,1.00001"),
        ("invalid_amount", 15, b"deposit,2,7,-1"),
        ("unknown_tx", 12, b"resolve,2,98,"),
        ("unknown_tx", 30, b"dispute,1,99,"),
    ]


def test_reject_samples_keep_every_row_of_a_small_reason() -> None:
    samples = explore.reject_samples(REJECTS, 3)
    counts = dict(samples.group_by("reason").len().iter_rows())
    assert counts == {"insufficient_funds": 3, "invalid_amount": 2, "unknown_tx": 2}


def test_reject_samples_with_a_seed_are_reproducible_subsets_per_reason() -> None:
    first = explore.reject_samples(REJECTS, 2, seed=7)
    assert_frame_equal(first, explore.reject_samples(REJECTS, 2, seed=7))
    assert (
        first["reason"].to_list()
        == ["insufficient_funds"] * 2 + ["invalid_amount"] * 2 + ["unknown_tx"] * 2
    )
    whole = set(REJECTS.select("reason", "line", "raw").iter_rows())
    assert set(first.iter_rows()) <= whole
    for _, part in first.group_by("reason", maintain_order=True):
        assert part["line"].is_sorted()


def test_reject_samples_of_no_rejects_is_empty_with_the_columns() -> None:
    samples = explore.reject_samples(REJECTS.clear(), 3)
    assert samples.height == 0
    assert samples.columns == ["reason", "line", "raw"]


# --- Loading ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_load_outputs_reads_back_what_the_job_writes(tmp_path: Path, suffix: str) -> None:
    write_accounts(ACCOUNTS, tmp_path / f"accounts.{suffix}")
    writer = RejectsWriter(tmp_path / f"rejects.{suffix}")
    writer.write(REJECTS)
    writer.commit()
    s = summary(rows_read=12, applied={"deposit": 4}, rejected={"unknown_tx": 8})
    (tmp_path / "summary.json").write_text(s.to_json())

    loaded = explore.load_outputs(
        accounts=tmp_path / f"accounts.{suffix}",
        rejects=tmp_path / f"rejects.{suffix}",
        summary=tmp_path / "summary.json",
        events=tmp_path / "no-events.parquet",
    )
    assert_frame_equal(loaded.accounts, ACCOUNTS)
    assert_frame_equal(loaded.rejects, REJECTS)
    assert loaded.summary == s
    assert loaded.events is None
    assert "events    absent" in loaded.describe()


def test_load_outputs_needs_only_the_accounts(tmp_path: Path) -> None:
    write_accounts(ACCOUNTS, tmp_path / "accounts.csv")
    loaded = explore.load_outputs(accounts=tmp_path / "accounts.csv")
    assert (loaded.rejects, loaded.summary, loaded.events) == (None, None, None)


def test_load_outputs_reads_events_when_present(tmp_path: Path) -> None:
    write_accounts(ACCOUNTS, tmp_path / "accounts.csv")
    (tmp_path / "events.csv").write_text(
        'line,client,tx,event,amount\n7,1,1,"reversed",10.0000\n7,1,1,"locked",\n'
    )
    loaded = explore.load_outputs(
        accounts=tmp_path / "accounts.csv", events=tmp_path / "events.csv"
    )
    assert loaded.events is not None
    found = explore.lock_chargebacks(loaded.accounts, loaded.events)
    assert found is not None
    assert rows(found.select("client", "line")) == [(1, 7)]


def test_read_accounts_refuses_amounts_it_would_have_to_round(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("client,available,held,total,locked\n1,1.00001,0.0000,1.00001,false\n")
    with pytest.raises(ValueError, match=r"'available' holds '1\.00001'"):
        explore.read_accounts(path)


def test_read_summary_fills_reasons_missing_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"rows_read": 3, "rejected": {"overflow": 1}, "extra": 1}))
    s = explore.read_summary(path)
    assert s.rows_read == 3
    assert s.rejected["overflow"] == 1
    assert s.rejected["unknown_tx"] == 0
    assert s.rejected_total == 1


# --- The sample -------------------------------------------------------------------------


def test_the_generator_api_and_command_write_the_same_sample(tmp_path: Path) -> None:
    options = {"clients": 20, "transactions": 300, "seed": 5, "malformed_rate": 0.05}
    by_api = explore.generate_sample(tmp_path / "api.csv", **options)
    by_command = explore.generate_sample(tmp_path / "cli.csv", prefer_api=False, **options)
    assert by_api.read_bytes() == by_command.read_bytes()
    assert by_api.read_text().startswith("type,client,tx,amount\n")


def test_sample_outputs_are_the_job_run_on_the_sample(tmp_path: Path) -> None:
    sample = explore.sample_outputs(tmp_path, clients=30, transactions=600, seed=3)
    again = accounts_job.process(tmp_path / "transactions.csv")
    assert_frame_equal(sample.accounts, again.accounts)
    assert sample.rejects is not None and again.rejects is not None
    assert_frame_equal(sample.rejects, again.rejects)
    s = sample.summary
    assert s is not None
    assert s.rows_read == s.applied_total + s.rejected_total + s.blank_lines == 600
    assert s.accounts == sample.accounts.height == 30
    assert sample.events is not None
    assert sample.events.height == s.applied_total + s.applied["chargeback"]


# --- Charts -----------------------------------------------------------------------------


def test_rejects_chart_draws_one_labelled_bar_per_reason_most_frequent_on_top() -> None:
    s = summary(rows_read=20, rejected={"unknown_tx": 2, "insufficient_funds": 5})
    axes = explore.rejects_chart(s).axes[0]
    assert axes.get_title() == "Rejected rows by reason: 7 of 20 rows"
    bars = sorted(axes.patches, key=lambda bar: -bar.get_y())  # top first
    assert [bar.get_width() for bar in bars] == [5, 2]
    labels = {tick.get_text(): tick.get_position()[1] for tick in axes.get_yticklabels()}
    assert labels["insufficient_funds"] > labels["unknown_tx"]


def test_rejects_chart_of_a_clean_run_says_so() -> None:
    axes = explore.rejects_chart(summary(rows_read=3)).axes[0]
    assert [text.get_text() for text in axes.texts] == ["No rejected rows"]


def test_balance_chart_counts_every_account_and_reds_only_negative_bins() -> None:
    axes = explore.balance_chart(ACCOUNTS, bins=5).axes[0]
    heights = {(bar.get_x(), bar.get_facecolor()): bar.get_height() for bar in axes.patches}
    assert sum(heights.values()) == ACCOUNTS.height
    red = [bar for bar in axes.patches if bar.get_height() and bar.get_facecolor()[0] > 0.7]
    assert len(red) == 1
    assert red[0].get_height() == 1  # client 1, total -4
    assert red[0].get_x() + red[0].get_width() <= 1e-9


def test_risk_chart_titles_the_exact_exposure() -> None:
    axes = explore.risk_chart(ACCOUNTS).axes[0]
    assert axes.get_title() == "Held vs available: 2 accounts below zero, exposure -4.0001"
    assert sum(len(c.get_offsets()) for c in axes.collections) == ACCOUNTS.height


def test_largest_accounts_chart_labels_bars_with_exact_totals() -> None:
    axes = explore.largest_accounts_chart(ACCOUNTS, 3).axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["client 9", "client 4", "client 3"]
    assert [t.get_text().strip() for t in axes.texts] == ["12.3456", "10.0000", "9.9999"]


def test_neither_the_cli_nor_the_tables_import_matplotlib() -> None:
    code = (
        "import sys, polars as pl, accounts_job.cli, accounts_job.explore as e; "
        "from accounts_job.io.frames import ACCOUNTS_FRAME; "
        "e.balance_totals(pl.DataFrame(schema=ACCOUNTS_FRAME)); "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The rules of docs/rules.md, one at a time, on small files with hand-derived expectations.

The worked example is the one exception: its expected outputs are those docs/rules.md §9
writes out (support/example.py reads them from there).
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from accounts_job import process, write_accounts
from support.example import (
    WORKED_EXAMPLE,
    WORKED_EXAMPLE_CSV,
    WORKED_EXAMPLE_REJECTS,
    WORKED_EXAMPLE_REJECTS_RAW,
    WORKED_EXAMPLE_ROWS,
)
from support.helpers import REASONS, D, csv_text, run_csv, zero

MAX = "922337203685477.5807"  # the largest amount: 2**63 - 1 units of 0.0001


def acct(available: str, held: str, locked: bool = False):
    """An account as (available, held, total, locked), total derived."""
    return (D(available), D(held), D(available) + D(held), locked)


# The worked example (docs/rules.md §9)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 1 << 20])
def test_worked_example(tmp_path, batch_size):
    run = run_csv(tmp_path, WORKED_EXAMPLE, batch_size)
    assert run.accounts == {row[0]: row[1:] for row in WORKED_EXAMPLE_ROWS}
    assert run.rejects == WORKED_EXAMPLE_REJECTS
    assert run.raw == [raw.encode() for _, _, raw in WORKED_EXAMPLE_REJECTS_RAW]
    s = run.summary
    assert s.rows_read == 9
    assert s.blank_lines == 0
    assert {k: v for k, v in s.applied.items() if v} == {
        "deposit": 2,
        "withdrawal": 1,
        "dispute": 1,
        "chargeback": 1,
    }
    assert {k: v for k, v in s.rejected.items() if v} == {
        "insufficient_funds": 1,
        "account_locked": 1,
        "invalid_amount": 1,
        "client_mismatch": 1,
    }
    assert (s.accounts, s.locked_accounts) == (2, 1)


def test_worked_example_csv_output(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(WORKED_EXAMPLE)
    out = tmp_path / "out.csv"
    write_accounts(process(src).accounts, out)
    assert out.read_text() == WORKED_EXAMPLE_CSV


# Each kind's effect when accepted


def test_deposit_and_withdrawal_move_available_and_total(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,10", "withdrawal,1,2,3.5", "deposit,1,3,0.25"))
    assert run.accounts == {1: acct("6.75", "0")}
    assert run.rejects == []


def test_withdrawal_of_exactly_available_is_accepted(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "withdrawal,1,2,5.0001", "withdrawal,1,3,5"))
    assert run.rejects == [(3, "insufficient_funds")]
    assert run.accounts == {1: acct("0", "0")}


def test_withdrawal_from_a_new_account_is_insufficient_funds(tmp_path):
    run = run_csv(tmp_path, csv_text("withdrawal,7,1,0.0001"))
    assert run.rejects == [(2, "insufficient_funds")]
    assert run.accounts == {7: zero()}


def test_dispute_moves_the_deposit_amount_to_held(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,10", "deposit,1,2,2.5", "dispute,1,2,999"))
    assert run.rejects == []
    assert run.accounts == {1: acct("10", "2.5")}


def test_resolve_moves_held_back_to_available(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,10", "dispute,1,1", "resolve,1,1"))
    assert run.rejects == []
    assert run.accounts == {1: acct("10", "0")}


def test_chargeback_removes_held_and_locks(tmp_path):
    text = csv_text("deposit,1,1,10", "deposit,1,2,3", "dispute,1,1", "chargeback,1,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("3", "0", locked=True)}
    assert (run.summary.accounts, run.summary.locked_accounts) == (1, 1)


def test_dispute_after_withdrawal_leaves_available_negative(tmp_path):
    text = csv_text("deposit,1,1,10", "withdrawal,1,2,8", "dispute,1,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("-8", "10")}
    # ... and a chargeback then leaves the total negative: the exposure.
    run = run_csv(tmp_path, text + "chargeback,1,1\n")
    assert run.accounts == {1: acct("-8", "0", locked=True)}


def test_negative_available_blocks_withdrawals(tmp_path):
    text = csv_text("deposit,1,1,10", "withdrawal,1,2,8", "dispute,1,1", "withdrawal,1,3,0.0001")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(5, "insufficient_funds")]
    assert run.accounts == {1: acct("-8", "10")}


# Check 1: locked


def locked_client_1(*more: str) -> str:
    """Client 1 locked by line 6; tx 2 was disputed before the lock and stays held."""
    return csv_text(
        "deposit,1,1,10", "deposit,1,2,5", "dispute,1,2", "dispute,1,1", "chargeback,1,1", *more
    )


def test_locked_account_rejects_every_kind(tmp_path):
    run = run_csv(
        tmp_path,
        locked_client_1(
            "deposit,1,10,1",
            "withdrawal,1,11,1",
            "withdraw,1,12,1",
            "dispute,1,2",
            "resolve,1,2",
            "chargeback,1,2",
            "dispute,1,99",
        ),
    )
    assert run.rejects == [(line, "account_locked") for line in range(7, 14)]
    assert run.accounts == {1: acct("0", "5", locked=True)}


def test_locked_is_checked_before_duplicate_tx(tmp_path):
    run = run_csv(tmp_path, locked_client_1("deposit,1,1,1", "withdrawal,1,2,1"))
    assert run.rejects == [(7, "account_locked"), (8, "account_locked")]


def test_locked_is_checked_before_the_reference(tmp_path):
    # unknown tx, another client's tx, and a tx that is not disputed: all account_locked.
    run = run_csv(
        tmp_path,
        locked_client_1("deposit,2,20,1", "dispute,1,77", "dispute,1,20", "resolve,1,1"),
    )
    assert run.rejects == [(8, "account_locked"), (9, "account_locked"), (10, "account_locked")]


def test_lock_is_per_client(tmp_path):
    run = run_csv(tmp_path, locked_client_1("deposit,2,20,1", "withdrawal,2,21,0.5"))
    assert run.rejects == []
    assert run.accounts == {1: acct("0", "5", locked=True), 2: acct("0.5", "0")}


def test_row_on_a_locked_account_still_claims_its_tx_id(tmp_path):
    # docs/rules.md §4.3: a deposit or withdrawal row claims its tx id when it is read,
    # whatever happens next; the tx id was named by an earlier well-formed row, accepted or
    # not.
    run = run_csv(
        tmp_path,
        locked_client_1("deposit,1,30,5", "withdrawal,1,31,5", "deposit,2,30,5", "deposit,2,31,5"),
    )
    assert run.rejects == [
        (7, "account_locked"),
        (8, "account_locked"),
        (9, "duplicate_tx"),
        (10, "duplicate_tx"),
    ]
    assert run.accounts == {1: acct("0", "5", locked=True), 2: zero()}


# Check 2: duplicate tx ids


def test_duplicate_tx_same_client(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "deposit,1,1,7", "withdrawal,1,1,1"))
    assert run.rejects == [(3, "duplicate_tx"), (4, "duplicate_tx")]
    assert run.accounts == {1: acct("5", "0")}


def test_tx_ids_are_global_across_clients(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "deposit,2,1,3", "withdrawal,3,1,1"))
    assert run.rejects == [(3, "duplicate_tx"), (4, "duplicate_tx")]
    assert run.accounts == {1: acct("5", "0"), 2: zero(), 3: zero()}


def test_rejected_withdrawal_claims_its_tx_id(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "withdrawal,1,2,100", "deposit,1,2,5"))
    assert run.rejects == [(3, "insufficient_funds"), (4, "duplicate_tx")]
    assert run.accounts == {1: acct("5", "0")}


def test_rejected_deposit_claims_its_tx_id(tmp_path):
    text = csv_text(f"deposit,1,1,{MAX}", "deposit,1,2,1", "deposit,2,2,1", "withdrawal,2,2,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(3, "overflow"), (4, "duplicate_tx"), (5, "duplicate_tx")]
    assert run.accounts == {1: acct(MAX, "0"), 2: zero()}


def test_duplicate_is_checked_before_the_kinds_own_rule(tmp_path):
    # A duplicate that would also overflow, or also lack funds, is a duplicate.
    text = csv_text(f"deposit,1,1,{MAX}", "deposit,1,1,1", "withdrawal,2,1,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(3, "duplicate_tx"), (4, "duplicate_tx")]


def test_malformed_row_does_not_claim_its_tx_id(tmp_path):
    text = csv_text(
        "deposit,1,1,abc",  # invalid_amount
        "deposit,1,2,5,junk",  # malformed_row
        "deposit,x,3,5",  # invalid_client
        "deposit,1,1,5",
        "deposit,1,2,5",
        "deposit,1,3,5",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [(2, "invalid_amount"), (3, "malformed_row"), (4, "invalid_client")]
    assert run.accounts == {1: acct("15", "0")}


def test_references_do_not_claim_tx_ids(tmp_path):
    # A dispute naming a tx id before its deposit: unknown_tx, and the deposit still counts.
    text = csv_text("dispute,1,9", "resolve,1,9", "chargeback,1,9", "deposit,1,9,5", "dispute,1,9")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(2, "unknown_tx"), (3, "unknown_tx"), (4, "unknown_tx")]
    assert run.accounts == {1: acct("0", "5")}


# Check 3: the kinds' own rules; references


@pytest.mark.parametrize("kind", ["dispute", "resolve", "chargeback"])
def test_unknown_tx(tmp_path, kind):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", f"{kind},1,2"))
    assert run.rejects == [(3, "unknown_tx")]
    assert run.accounts == {1: acct("5", "0")}


def test_reference_to_a_rejected_deposit_is_unknown_tx(tmp_path):
    # The deposit was rejected, so no accepted deposit has the id, even for the same client.
    text = csv_text(f"deposit,1,1,{MAX}", "deposit,1,2,1", "dispute,1,2", "dispute,2,2")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(3, "overflow"), (4, "unknown_tx"), (5, "unknown_tx")]


def test_reference_to_a_rejected_withdrawal_is_unknown_tx(tmp_path):
    run = run_csv(tmp_path, csv_text("withdrawal,1,1,5", "dispute,1,1"))
    assert run.rejects == [(2, "insufficient_funds"), (3, "unknown_tx")]


def test_forward_reference_is_unknown_tx(tmp_path):
    run = run_csv(tmp_path, csv_text("dispute,1,1", "deposit,1,1,5", "resolve,1,1"))
    assert run.rejects == [(2, "unknown_tx"), (4, "not_disputed")]
    assert run.accounts == {1: acct("5", "0")}


@pytest.mark.parametrize("kind", ["dispute", "resolve", "chargeback"])
def test_client_mismatch(tmp_path, kind):
    text = csv_text("deposit,1,1,5", "dispute,1,1", f"{kind},2,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(4, "client_mismatch")]
    assert run.accounts == {1: acct("0", "5"), 2: zero()}


def test_client_mismatch_before_not_disputable(tmp_path):
    text = csv_text("deposit,1,1,5", "withdrawal,1,2,1", "dispute,2,2")
    assert run_csv(tmp_path, text).rejects == [(4, "client_mismatch")]


def test_client_mismatch_before_not_disputed(tmp_path):
    text = csv_text("deposit,1,1,5", "resolve,2,1", "chargeback,2,1")
    assert run_csv(tmp_path, text).rejects == [(3, "client_mismatch"), (4, "client_mismatch")]


@pytest.mark.parametrize("kind", ["dispute", "resolve", "chargeback"])
def test_withdrawal_is_not_disputable(tmp_path, kind):
    # For resolve and chargeback too: not_disputable comes before not_disputed.
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "withdrawal,1,2,2", f"{kind},1,2"))
    assert run.rejects == [(4, "not_disputable")]
    assert run.accounts == {1: acct("3", "0")}


def test_already_disputed(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", "dispute,1,1", "dispute,1,1"))
    assert run.rejects == [(4, "already_disputed")]
    assert run.accounts == {1: acct("0", "5")}


def test_resolved_tx_may_be_disputed_again(tmp_path):
    text = csv_text(
        "deposit,1,1,5",
        "dispute,1,1",
        "resolve,1,1",
        "resolve,1,1",  # not disputed now
        "dispute,1,1",  # again
        "dispute,1,1",  # already
        "chargeback,1,1",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [(5, "not_disputed"), (7, "already_disputed")]
    assert run.accounts == {1: acct("0", "0", locked=True)}
    assert run.summary.applied == {
        "deposit": 1,
        "withdrawal": 0,
        "dispute": 2,
        "resolve": 1,
        "chargeback": 1,
    }


@pytest.mark.parametrize("kind", ["resolve", "chargeback"])
def test_not_disputed(tmp_path, kind):
    run = run_csv(tmp_path, csv_text("deposit,1,1,5", f"{kind},1,1"))
    assert run.rejects == [(3, "not_disputed")]
    assert run.accounts == {1: acct("5", "0")}


def test_already_charged_back_is_preempted(tmp_path):
    # A charged-back tx belongs to a locked account, so a later dispute of it meets check 1
    # (its own client: account_locked) or the client check (another client) first:
    # with the order of docs/rules.md §4.2, already_charged_back cannot be reached (§4.5).
    text = csv_text("deposit,1,1,5", "dispute,1,1", "chargeback,1,1", "dispute,1,1", "dispute,2,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(5, "account_locked"), (6, "client_mismatch")]
    assert run.summary.rejected["already_charged_back"] == 0


def test_dispute_charges_the_deposit_not_the_row_amount(tmp_path):
    text = csv_text("deposit,1,1,5", "dispute,1,1,100", "chargeback,1,1,1")
    assert run_csv(tmp_path, text).accounts == {1: acct("0", "0", locked=True)}


@pytest.mark.parametrize("batch_size", [2, 7, 64, 1 << 20])
def test_state_carries_across_batches(tmp_path, batch_size):
    ids = range(1, 301)
    rows = [f"deposit,{i % 3},{i},{i}" for i in ids]  # tx i: i units of money, client i % 3
    rows += [f"dispute,{i % 3},{i}" for i in reversed(ids) if i % 2 == 0]
    rows += ["chargeback,0,300", "deposit,0,301,1", "deposit,1,300,1", "resolve,2,2"]
    run = run_csv(tmp_path, csv_text(*rows), batch_size)
    n = len(rows)
    assert run.rejects == [(n - 1, "account_locked"), (n, "duplicate_tx")]
    expected = {}
    for c in range(3):
        total = sum(i for i in ids if i % 3 == c) - (300 if c == 0 else 0)
        held = sum(i for i in ids if i % 3 == c and i % 2 == 0) - (300 if c == 0 else 0)
        held -= 2 if c == 2 else 0
        expected[c] = (D(total - held), D(held), D(total), c == 0)
    assert run.accounts == expected


# Accounts


def test_client_with_only_rejected_rows_has_an_all_zero_account(tmp_path):
    text = csv_text(
        "withdrawal,3,1,5",  # insufficient funds
        "dispute,3,99",  # unknown tx
        "resolve,4,1",  # unknown tx
        "deposit,5,1,1",  # duplicate (tx 1 claimed above)
    )
    run = run_csv(tmp_path, text)
    assert run.accounts == {3: zero(), 4: zero(), 5: zero()}
    assert run.summary.accounts == 3


def test_malformed_row_does_not_create_an_account(tmp_path):
    text = csv_text(
        "deposit,4,1,abc",
        "deposit,5,2,5,extra",
        "transfer,6,3,5",
        "deposit,7,x,5",
        'deposit,8,4,"5',
        "deposit,9,5,5",
    )
    run = run_csv(tmp_path, text)
    assert run.accounts == {9: acct("5", "0")}


def test_accounts_sorted_by_client_including_extremes(tmp_path):
    text = csv_text("deposit,65535,1,1", "deposit,7,2,2", "deposit,0,3,3", "deposit,300,4,4")
    run = run_csv(tmp_path, text)
    assert list(run.accounts) == [0, 7, 300, 65535]
    assert run.accounts[65535] == acct("1", "0")
    assert run.accounts[0] == acct("3", "0")


def test_no_rows_or_no_well_formed_rows_give_no_accounts(tmp_path):
    for text in (csv_text(), csv_text("deposit,1,1,x", "", "foo,1,2,3")):
        result = process(_write(tmp_path, text))
        assert result.accounts.height == 0
        assert result.accounts.columns == ["client", "available", "held", "total", "locked"]


# Arithmetic: int64 units, no wrap


def test_largest_amount_is_accepted_and_exact(tmp_path):
    run = run_csv(tmp_path, csv_text(f"deposit,1,1,{MAX}", f"withdrawal,1,2,{MAX}"))
    assert run.rejects == []
    assert run.accounts == {1: zero()}
    run = run_csv(tmp_path, csv_text(f"deposit,1,1,{MAX}"))
    assert run.accounts == {1: acct(MAX, "0")}


def test_one_unit_past_the_largest_amount_is_invalid(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,922337203685477.5808", "deposit,1,2,1"))
    assert run.rejects == [(2, "invalid_amount")]
    assert run.accounts == {1: acct("1", "0")}


def test_deposit_overflow_at_the_boundary(tmp_path):
    half = "461168601842738.7903"  # two of these plus 0.0001 make MAX
    text = csv_text(
        f"deposit,1,1,{half}",
        f"deposit,1,2,{half}",
        "deposit,1,3,0.0002",  # one unit too many
        "deposit,1,4,0.0001",  # exactly MAX
        "deposit,1,5,0.0001",  # past it
        "withdrawal,1,6,0.0001",
        "deposit,1,7,0.0001",  # fits again
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [(4, "overflow"), (6, "overflow")]
    assert run.accounts == {1: acct(MAX, "0")}


def test_deposit_overflow_counts_held_funds(tmp_path):
    # available is 0 while everything is held: the total would still pass the range.
    text = csv_text(f"deposit,1,1,{MAX}", "dispute,1,1", "deposit,1,2,0.0001")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(4, "overflow")]
    assert run.accounts == {1: acct("0", MAX)}


def test_overflow_is_per_account(tmp_path):
    text = csv_text(f"deposit,1,1,{MAX}", f"deposit,2,2,{MAX}", "deposit,1,3,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(4, "overflow")]
    assert run.accounts == {1: acct(MAX, "0"), 2: acct(MAX, "0")}


def test_dispute_that_would_overflow_held_is_rejected(tmp_path):
    # Two deposits of MAX withdrawn in turn; disputing both would hold 2 * MAX.
    text = csv_text(
        f"deposit,1,1,{MAX}",
        f"withdrawal,1,2,{MAX}",
        f"deposit,1,3,{MAX}",
        f"withdrawal,1,4,{MAX}",
        "dispute,1,1",
        "dispute,1,3",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [(7, "overflow")]
    assert run.accounts == {1: acct("-" + MAX, MAX)}


# Output: four places, exact decimals


def test_balances_have_exactly_four_places(tmp_path):
    text = csv_text("deposit,1,1,1", "withdrawal,1,2,0.75", "dispute,1,1", "deposit,2,3,12.5")
    result = process(_write(tmp_path, text))
    for name in ("available", "held", "total"):
        dtype = result.accounts.schema[name]
        assert (dtype.precision, dtype.scale) == (38, 4)
    values = [str(v) for row in result.accounts.iter_rows() for v in row[1:4]]
    assert values == ["-0.7500", "1.0000", "0.2500", "12.5000", "0.0000", "12.5000"]
    out = tmp_path / "out.csv"
    write_accounts(result.accounts, out)
    assert out.read_text() == (
        "client,available,held,total,locked\n"
        "1,-0.7500,1.0000,0.2500,false\n"
        "2,12.5000,0.0000,12.5000,false\n"
    )


def test_extreme_balances_print_exactly(tmp_path):
    text = csv_text(
        f"deposit,1,1,{MAX}", f"withdrawal,1,2,{MAX}", "dispute,1,1", "deposit,2,3,0.0001"
    )
    out = tmp_path / "out.csv"
    write_accounts(process(_write(tmp_path, text)).accounts, out)
    assert out.read_text() == (
        "client,available,held,total,locked\n"
        f"1,-{MAX},{MAX},0.0000,false\n"
        "2,0.0001,0.0000,0.0001,false\n"
    )


def test_parquet_output_types(tmp_path):
    out = tmp_path / "out.parquet"
    write_accounts(process(_write(tmp_path, WORKED_EXAMPLE)).accounts, out)
    table = pq.read_table(out)
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "client": "uint16",
        "available": "decimal128(38, 4)",
        "held": "decimal128(38, 4)",
        "total": "decimal128(38, 4)",
        "locked": "bool",
    }
    assert table.column("total").to_pylist() == [row[3] for row in WORKED_EXAMPLE_ROWS]


def test_empty_output_has_the_header(tmp_path):
    out = tmp_path / "out.csv"
    write_accounts(process(_write(tmp_path, csv_text())).accounts, out)
    assert out.read_text() == "client,available,held,total,locked\n"


# Accounting for every row


def test_reject_reasons_are_the_codes_of_section_8(tmp_path):
    """docs/rules.md §8: the fifteen reasons, and no other."""
    result = process(_write(tmp_path, WORKED_EXAMPLE))
    assert set(result.rejects.schema["reason"].categories) == set(REASONS)
    assert set(result.summary.rejected) == set(REASONS)


def test_every_row_is_accounted_for(tmp_path):
    lines = [
        "type,client,tx,amount",
        "deposit,1,1,10",
        "",
        "deposit,1,1,10",
        "  \t",
        "bogus,1,2,3",
        "withdrawal,2,3,1",
        "dispute,1,1",
        "resolve,1,1",
        "dispute,1,1",
        "chargeback,1,1",
        "deposit,1,4,1",
        "",
    ]
    run = run_csv(tmp_path, "\r\n".join(lines) + "\r\n")
    s = run.summary
    # 12 lines after the header: 3 blank, 4 rejected, 5 applied.
    assert (s.rows_read, s.blank_lines, s.rejected_total, s.applied_total) == (12, 3, 4, 5)
    assert run.rejects == [
        (4, "duplicate_tx"),
        (6, "unknown_type"),
        (7, "insufficient_funds"),
        (12, "account_locked"),
    ]
    assert run.accounts == {1: acct("0", "0", locked=True), 2: zero()}
    for available, held, total, _ in run.accounts.values():
        assert total == available + held and held >= 0


def _write(tmp_path, text: str):
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path

"""Rules that random files reach only by chance, pinned by hand-made ones.

Each file runs three ways, and all three must give the answer derived here from
docs/rules.md: the engine, the sharded plan in process (several shards, chunks down to a
line each), and the reference model the property tests compare the engine with (a bug
shared by the engine and the model would pass every property test).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import accounts_job
import pytest
from accounts_job.distributed.sharded import InProcess, process_sharded
from support.helpers import D, csv_text, run_path
from support.model import model

MAX = "922337203685477.5807"  # the largest amount: 2**63 - 1 units of 0.0001

Accounts = dict[int, tuple[Decimal, Decimal, Decimal, bool]]


def acct(available: str, held: str, locked: bool = False) -> tuple:
    """An account as (available, held, total, locked), total derived."""
    return (D(available), D(held), D(available) + D(held), locked)


def plain(result: accounts_job.Result) -> tuple[Accounts, list[tuple[int, str]]]:
    accounts = {row[0]: tuple(row[1:]) for row in result.accounts.iter_rows()}
    rejects = [(line, reason) for line, reason, _ in result.rejects.iter_rows()]
    return accounts, rejects


def every_way(tmp_path: Path, text: str) -> dict[str, tuple[Accounts, list[tuple[int, str]]]]:
    """(accounts, rejects) of `text` by the engine, the sharded plan and the model."""
    path = tmp_path / "in.csv"
    path.write_text(text)
    engine = run_path(path)
    answers = {"engine": (engine.accounts, engine.rejects)}
    for shards in (1, 2, 3):
        for chunk_bytes in (1, 1 << 20):
            sharded = process_sharded(path, InProcess(), shards, chunk_bytes=chunk_bytes)
            answers[f"sharded {shards} shards, {chunk_bytes} B chunks"] = plain(sharded)
    accounts, rejects, _ = model(text)
    answers["model"] = (accounts, rejects)
    return answers


def assert_every_way(tmp_path: Path, text: str, accounts: Accounts, rejects: list) -> None:
    for way, answer in every_way(tmp_path, text).items():
        assert answer == (accounts, rejects), way


# docs/rules.md §4.4: a resolved deposit is not disputed; only a new dispute can hold it
# again. Accepting the chargeback (a known bug of implementations that track "was
# disputed" instead of "is disputed") would take the money a second time and lock.


def test_a_chargeback_after_a_resolve_is_not_disputed(tmp_path):
    text = csv_text(
        "deposit,1,1,5",
        "deposit,2,2,3",
        "dispute,1,1",
        "resolve,1,1",
        "chargeback,1,1",  # line 6: resolved, so not disputed now
        "deposit,1,3,1",  # the account is not locked: accepted
    )
    assert_every_way(
        tmp_path,
        text,
        accounts={1: acct("6", "0"), 2: acct("3", "0")},
        rejects=[(6, "not_disputed")],
    )


def test_a_chargeback_after_a_resolve_and_a_new_dispute_is_accepted(tmp_path):
    """The counterpart: disputed again, the deposit can be charged back."""
    text = csv_text(
        "deposit,1,1,5",
        "dispute,1,1",
        "resolve,1,1",
        "chargeback,1,1",  # line 5: not disputed
        "dispute,1,1",
        "chargeback,1,1",
    )
    assert_every_way(
        tmp_path, text, accounts={1: acct("0", "0", locked=True)}, rejects=[(5, "not_disputed")]
    )


# docs/rules.md §4.2: a dispute's overflow check is its last, after already_disputed.


def test_a_dispute_both_already_disputed_and_too_large_for_held_is_already_disputed(tmp_path):
    text = csv_text(
        f"deposit,1,1,{MAX}",
        "dispute,1,1",  # held is MAX
        "dispute,1,1",  # line 4: disputed now, and held + MAX would pass the range
    )
    assert_every_way(
        tmp_path, text, accounts={1: acct("0", MAX)}, rejects=[(4, "already_disputed")]
    )


@pytest.mark.parametrize("then", ["resolve", "chargeback"])
def test_a_dispute_too_large_for_held_and_not_disputed_is_overflow(tmp_path, then):
    """Two deposits of MAX, each withdrawn: disputing both would hold 2 * MAX. The
    refused dispute leaves its deposit undisputed: a resolve or chargeback of it is
    not_disputed."""
    text = csv_text(
        f"deposit,1,1,{MAX}",
        f"withdrawal,1,2,{MAX}",
        f"deposit,1,3,{MAX}",
        f"withdrawal,1,4,{MAX}",
        "dispute,1,1",
        "dispute,1,3",  # line 7: not disputed, too large for held
        f"{then},1,3",  # line 8
    )
    assert_every_way(
        tmp_path,
        text,
        accounts={1: acct("-" + MAX, MAX)},
        rejects=[(7, "overflow"), (8, "not_disputed")],
    )

"""The questions an operator asks the morning after, each a small function over the
outputs' DataFrames (see explore/load.py) returning a DataFrame or a plain value.

Amounts stay exact: Decimal(38, 4) in every frame and `decimal.Decimal` in every sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from ..codes import KIND_NAMES, REASON_NAMES
from ..engine.summary import Summary
from ..io.frames import AMOUNT
from .load import AMOUNTS

ZERO = Decimal("0.0000")


# --- The run at a glance ----------------------------------------------------------------


def run_overview(summary: Summary | None, accounts: pl.DataFrame | None = None) -> pl.DataFrame:
    """The run in six counts: rows read, applied, rejected, blank lines, accounts, locked.

    Without a summary only the account counts are known, taken from `accounts`.
    """
    rows: list[tuple[str, int]] = []
    if summary is not None:
        rows += [
            ("rows read", summary.rows_read),
            ("applied", summary.applied_total),
            ("rejected", summary.rejected_total),
            ("blank lines", summary.blank_lines),
            ("accounts", summary.accounts),
            ("locked accounts", summary.locked_accounts),
        ]
    elif accounts is not None:
        rows += [
            ("accounts", accounts.height),
            ("locked accounts", int(accounts.get_column("locked").sum())),
        ]
    return pl.DataFrame(rows, schema={"measure": pl.String, "value": pl.Int64}, orient="row")


def applied_by_kind(summary: Summary) -> pl.DataFrame:
    """Applied rows per kind, every kind in file-format order, zeros included."""
    kinds = list(KIND_NAMES.values())
    return pl.DataFrame(
        {"kind": kinds, "rows": [summary.applied.get(kind, 0) for kind in kinds]},
        schema={"kind": pl.String, "rows": pl.Int64},
    )


def rejected_by_reason(summary: Summary) -> pl.DataFrame:
    """Rejected rows per reason, reasons that occurred only, most frequent first.

    Ties keep the code order of reasons (docs/rules.md §8), so the table is the same
    from run to run.
    """
    counts = [(reason, summary.rejected.get(reason, 0)) for reason in REASON_NAMES.values()]
    counts = sorted((c for c in counts if c[1] > 0), key=lambda c: -c[1])
    return pl.DataFrame(counts, schema={"reason": pl.String, "rows": pl.Int64}, orient="row")


# --- Where the money is -----------------------------------------------------------------


def balance_totals(accounts: pl.DataFrame) -> pl.DataFrame:
    """One row: the number of accounts and the exact sums of available, held and total."""
    return accounts.select(
        pl.len().alias("accounts"),
        *(pl.col(name).sum().cast(AMOUNT) for name in AMOUNTS),
    )


def balance_distribution(
    accounts: pl.DataFrame,
    column: str = "total",
    percentiles: Sequence[int] = (10, 25, 50, 75, 90, 99),
) -> pl.DataFrame:
    """min, the given percentiles and max of one amount column, exact.

    Percentiles are nearest-rank: the smallest value with at least p% of the accounts at
    or below it. That is always a balance some account has, so no interpolation, no
    rounding. An empty frame gives an empty table.
    """
    values = accounts.get_column(column).sort()
    n = values.len()
    if n == 0:
        return pl.DataFrame(schema={"statistic": pl.String, "value": AMOUNT})
    names = ["min", *(f"p{p}" if p != 50 else "median" for p in percentiles), "max"]
    # ceil(p * n / 100) in integers: a float here could land one rank off.
    ranks = [1, *(max(1, -(-p * n // 100)) for p in percentiles), n]
    return pl.DataFrame(
        {"statistic": names, "value": [values[rank - 1] for rank in ranks]},
        schema={"statistic": pl.String, "value": AMOUNT},
    )


def largest_accounts(accounts: pl.DataFrame, n: int = 10, by: str = "total") -> pl.DataFrame:
    """The `n` accounts with the most `by`, largest first; equal amounts by client id."""
    return accounts.sort([by, "client"], descending=[True, False]).head(n)


def open_disputes(accounts: pl.DataFrame) -> pl.DataFrame:
    """Accounts holding funds (held > 0): the open disputes. Most held first."""
    return accounts.filter(pl.col("held") > 0).sort(["held", "client"], descending=[True, False])


# --- Risk -------------------------------------------------------------------------------


@dataclass
class Exposure:
    """Accounts whose available is negative: funds disputed after they were withdrawn."""

    accounts: pl.DataFrame
    """Those accounts, most negative first."""
    amount: Decimal
    """The sum of their available: what is exposed, as a negative amount (0 when none)."""

    @property
    def count(self) -> int:
        return self.accounts.height


def exposure(accounts: pl.DataFrame) -> Exposure:
    """The accounts with negative available and the exact sum of it."""
    negative = accounts.filter(pl.col("available") < 0).sort(["available", "client"])
    amount = negative.get_column("available").sum() if negative.height else ZERO
    return Exposure(accounts=negative, amount=Decimal(amount))


def locked_accounts(accounts: pl.DataFrame) -> pl.DataFrame:
    """The locked accounts, by client id."""
    return accounts.filter(pl.col("locked")).sort("client")


def lock_chargebacks(accounts: pl.DataFrame, events: pl.DataFrame | None) -> pl.DataFrame | None:
    """The chargebacks that locked the locked accounts, with the account's balances.

    A chargeback locks its account and nothing applies after it, so each locked account has
    exactly one applied chargeback. None when there are no events to read it from: the
    rejects cannot tell, since a chargeback that locked an account was applied, not rejected.
    """
    if events is None:
        return None
    # A chargeback is two events on its line: `reversed` (with the amount), then `locked`.
    charged = events.filter(pl.col("event").cast(pl.String) == "reversed")
    charged = charged.select(
        pl.col("client").cast(pl.UInt16), "line", "tx", pl.col("amount").alias("charged_back")
    )
    balances = locked_accounts(accounts).select("client", *AMOUNTS)
    return charged.join(balances, on="client", how="inner").sort("client", "line")


# --- The rejects ------------------------------------------------------------------------


def reject_samples(
    rejects: pl.DataFrame, per_reason: int = 3, *, seed: int | None = None
) -> pl.DataFrame:
    """Up to `per_reason` rejected rows of each reason: reason, line, raw.

    Reasons come most frequent first (ties in the code order of docs/rules.md §8), rows
    by line number. By default the rows are each reason's first ones in the file, where a
    partner's problem starts; with a `seed`, a reproducible random sample of each reason
    instead.
    """
    columns = ["reason", "line", "raw"]
    if rejects.height == 0 or per_reason <= 0:
        return rejects.select(columns).clear()
    counts = rejects.group_by("reason").len()
    # The Enum's physical order is the code order of docs/rules.md §8: a stable tie-break.
    reasons = counts.sort(
        [pl.col("len"), pl.col("reason").to_physical()], descending=[True, False]
    ).get_column("reason")
    parts = []
    for reason in reasons:
        rows = rejects.filter(pl.col("reason") == reason)
        if seed is None:
            rows = rows.sort("line").head(per_reason)
        else:
            rows = rows.sample(n=min(per_reason, rows.height), seed=seed).sort("line")
        parts.append(rows.select(columns))
    return pl.concat(parts)

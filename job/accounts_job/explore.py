"""The morning after a run: load its outputs and answer what an operator asks first.

Used by `notebooks/explore_accounts.ipynb`, and usable on its own. Every function takes
polars DataFrames (the shapes `process` returns) or a `Summary` and returns a DataFrame, a
plain value or a matplotlib figure, so the notebook stays a list of questions.

Amounts stay exact: they are Decimal(38, 4) in every frame and `decimal.Decimal` in every
sum. Only the chart functions turn them into floats, and only as positions on an axis.

matplotlib is imported inside the chart functions: the job's command line never imports
this module, and the tables here work without matplotlib installed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from .codes import KIND_NAMES, REASON_NAMES
from .engine import process
from .frames import REJECTS_SCHEMA
from .output import EventsWriter
from .summary import Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

AMOUNT = pl.Decimal(38, 4)
AMOUNTS = ("available", "held", "total")
ACCOUNTS_SCHEMA: dict[str, pl.DataType] = {
    "client": pl.UInt16(),
    "available": AMOUNT,
    "held": AMOUNT,
    "total": AMOUNT,
    "locked": pl.Boolean(),
}
ZERO = Decimal("0.0000")

# An amount as text, at most four places. Casting text to Decimal(38, 4) would silently
# round `1.00001`; a file with such a value was not written by the job and must not pass.
_AMOUNT_TEXT = r"^-?[0-9]+(\.[0-9]{0,4})?$"

# The default sample: small enough to generate and run in well under a second, hostile so
# that every section of the notebook has something to show (rejects of many reasons,
# chargebacks and locked accounts, disputes that left `available` negative).
SAMPLE_CLIENTS = 500
SAMPLE_TRANSACTIONS = 4_000
SAMPLE_SEED = 2024
SAMPLE_MALFORMED_RATE = 0.01


@dataclass
class Outputs:
    """One run's outputs. Only the accounts are required; the rest may be absent (None)."""

    accounts: pl.DataFrame
    rejects: pl.DataFrame | None = None
    summary: Summary | None = None
    # The job's --events output: line, client, tx, event, amount.
    events: pl.DataFrame | None = None
    source: str = ""

    def describe(self) -> str:
        """Where the outputs came from and which of them are here, one fact a line."""
        parts = {
            "accounts": f"{self.accounts.height:,} accounts",
            "rejects": "absent" if self.rejects is None else f"{self.rejects.height:,} rows",
            "summary": "absent" if self.summary is None else "present",
            "events": "absent" if self.events is None else f"{self.events.height:,} rows",
        }
        lines = [f"source    {self.source}"] if self.source else []
        lines += [f"{name:<9} {text}" for name, text in parts.items()]
        return "\n".join(lines)


# --- Loading ----------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def read_accounts(path: str | Path) -> pl.DataFrame:
    """The accounts file the job wrote, CSV or Parquet, with exact Decimal(38, 4) amounts."""
    path = Path(path)
    if _is_parquet(path):
        frame = pl.read_parquet(path)
        return frame.select(pl.col(name).cast(dtype) for name, dtype in ACCOUNTS_SCHEMA.items())
    text = pl.read_csv(
        path, schema_overrides={name: pl.String for name in AMOUNTS}, infer_schema=False
    )
    for name in AMOUNTS:
        bad = text.filter(~pl.col(name).str.contains(_AMOUNT_TEXT))
        if bad.height:
            raise ValueError(
                f"{path}: column {name!r} holds {bad.item(0, name)!r}, "
                "not an amount with at most four decimal places"
            )
    return text.select(
        pl.col("client").cast(pl.UInt16),
        *(pl.col(name).cast(AMOUNT) for name in AMOUNTS),
        pl.col("locked").str.to_lowercase().replace_strict({"true": True, "false": False}),
    )


def read_rejects(path: str | Path) -> pl.DataFrame:
    """The rejects file the job wrote, CSV or Parquet: line, reason (an Enum), raw line."""
    path = Path(path)
    if _is_parquet(path):
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, schema={"line": pl.UInt64, "reason": pl.String, "raw": pl.String})
    # Another writer may leave an empty raw line unquoted, which reads as null.
    frame = frame.with_columns(pl.col("raw").fill_null(""))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in REJECTS_SCHEMA.items())


def read_summary(path: str | Path) -> Summary:
    """The summary JSON the job wrote, back as a `Summary`. Derived figures are recomputed."""
    data = json.loads(Path(path).read_text())
    known = {f.name for f in dataclasses.fields(Summary)}
    summary = Summary(**{key: value for key, value in data.items() if key in known})
    # Start from every name at 0, so a reason or kind missing from the file still shows.
    summary.applied = {**Summary().applied, **summary.applied}
    summary.rejected = {**Summary().rejected, **summary.rejected}
    return summary


def read_events(path: str | Path) -> pl.DataFrame:
    """The events file the job wrote (--events), CSV or Parquet, amounts exact."""
    path = Path(path)
    if _is_parquet(path):
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, schema_overrides={"amount": pl.String}, infer_schema=False)
        bad = frame.filter(
            pl.col("amount").is_not_null() & ~pl.col("amount").str.contains(_AMOUNT_TEXT)
        )
        if bad.height:
            raise ValueError(f"{path}: amount {bad.item(0, 'amount')!r} is not an exact amount")
    missing = {"line", "client", "tx", "event", "amount"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: an events file needs the columns {sorted(missing)}")
    return frame.select(
        pl.col("line").cast(pl.UInt64),
        pl.col("client").cast(pl.UInt16),
        pl.col("tx").cast(pl.UInt32),
        pl.col("event").cast(pl.String),
        pl.col("amount").cast(AMOUNT),
    )


def load_outputs(
    accounts: str | Path,
    rejects: str | Path | None = None,
    summary: str | Path | None = None,
    events: str | Path | None = None,
) -> Outputs:
    """Read a run's output files. Only `accounts` is required.

    A rejects or summary path that does not exist is an error: it was asked for. An events
    path that does not exist is not: the events output is new, and a run by an older job
    simply has none.
    """
    events_frame = None
    if events is not None and Path(events).exists():
        events_frame = read_events(events)
    return Outputs(
        accounts=read_accounts(accounts),
        rejects=read_rejects(rejects) if rejects is not None else None,
        summary=read_summary(summary) if summary is not None else None,
        events=events_frame,
        source=str(Path(accounts).resolve().parent),
    )


def generate_sample(
    path: str | Path,
    *,
    clients: int = SAMPLE_CLIENTS,
    transactions: int = SAMPLE_TRANSACTIONS,
    seed: int = SAMPLE_SEED,
    malformed_rate: float = SAMPLE_MALFORMED_RATE,
    prefer_api: bool = True,
) -> Path:
    """Write a sample transactions file with the generator: its Python API when it is
    importable (and `prefer_api`), else its `accounts-gen` command."""
    path = Path(path)
    if prefer_api:
        try:
            from accounts_gen.generate import generate
            from accounts_gen.options import Shape
        except ImportError:
            pass
        else:
            generate(
                path,
                clients=clients,
                transactions=transactions,
                seed=seed,
                hostile=True,
                shape=Shape(malformed_rate=malformed_rate),
            )
            return path
    # The command installed beside this interpreter first: the one on PATH may belong to
    # another environment.
    beside = Path(sys.executable).with_name("accounts-gen")
    command = str(beside) if beside.exists() else shutil.which("accounts-gen")
    if command is None:
        raise RuntimeError("cannot make a sample: the accounts-gen generator is not installed")
    args = [
        command,
        *("--clients", str(clients), "--transactions", str(transactions), "--seed", str(seed)),
        *("--hostile", "--malformed-rate", str(malformed_rate), "--quiet", "--out", str(path)),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"accounts-gen failed ({done.returncode}): {done.stderr.strip()}")
    return path


def sample_outputs(
    folder: str | Path,
    *,
    clients: int = SAMPLE_CLIENTS,
    transactions: int = SAMPLE_TRANSACTIONS,
    seed: int = SAMPLE_SEED,
    malformed_rate: float = SAMPLE_MALFORMED_RATE,
    prefer_api: bool = True,
) -> Outputs:
    """Generate a sample file into `folder` (see `generate_sample`) and run the job on it
    through `process`."""
    path = generate_sample(
        Path(folder) / "transactions.csv",
        clients=clients,
        transactions=transactions,
        seed=seed,
        malformed_rate=malformed_rate,
        prefer_api=prefer_api,
    )
    events_path = Path(folder) / "events.parquet"
    writer = EventsWriter(events_path)
    try:
        result = process(path, events_to=writer)
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    return Outputs(
        accounts=result.accounts,
        rejects=result.rejects,
        summary=result.summary,
        events=read_events(events_path),
        source=f"sample generated into {path}",
    )


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

    Ties keep SPEC.md's order of reasons, so the table is the same from run to run.
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

    Reasons come most frequent first (ties in SPEC.md's order), rows by line number. By
    default the rows are each reason's first ones in the file, where a partner's problem
    starts; with a `seed`, a reproducible random sample of each reason instead.
    """
    columns = ["reason", "line", "raw"]
    if rejects.height == 0 or per_reason <= 0:
        return rejects.select(columns).clear()
    counts = rejects.group_by("reason").len()
    # The Enum's physical order is SPEC.md's order of reasons: a stable tie-break.
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


# --- Charts -----------------------------------------------------------------------------
# Each returns a matplotlib Figure built without pyplot: no global state and no GUI
# backend, just Agg rendering to PNG, which is what a notebook shows inline and what GitHub
# and exported HTML keep.

_BLUE = "#3b6ea8"
_RED = "#c0392b"
_GREY = "#9aa5b1"
_AMBER = "#e0a030"


def _figure(width: float = 8.0, height: float = 4.5) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _plot_values(series: pl.Series) -> list[float]:
    # Floats as positions on an axis only: matplotlib draws with floats. Every figure that
    # is printed as a number (titles, labels, tables) comes from the exact Decimals.
    return [float(value) for value in series]


def _money(amount: Decimal) -> str:
    return f"{amount:,}"


def _thousands(axis: object) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))  # type: ignore[attr-defined]


def _nothing(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _count_bars(axes: Axes, labels: list[str], counts: list[int], color: str) -> None:
    """Horizontal bars, the first label on top, each bar labelled with its count."""
    positions = list(range(len(labels)))[::-1]
    bars = axes.barh(positions, counts, color=color)
    axes.set_yticks(positions, labels)
    axes.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=3)
    axes.margins(x=0.12)
    _thousands(axes.xaxis)


def rejects_chart(summary: Summary) -> Figure:
    """Rejected rows by reason, most frequent on top, each bar labelled with its count."""
    counts = rejected_by_reason(summary)
    figure, axes = _figure(8.0, max(2.5, 0.32 * counts.height + 1.2))
    axes.set_title(
        f"Rejected rows by reason: {summary.rejected_total:,} of {summary.rows_read:,} rows"
    )
    if counts.height == 0:
        _nothing(axes, "No rejected rows")
        return figure
    _count_bars(axes, counts["reason"].to_list(), counts["rows"].to_list(), _RED)
    axes.set_xlabel("rows")
    return figure


def applied_chart(summary: Summary) -> Figure:
    """Applied rows by kind."""
    counts = applied_by_kind(summary)
    figure, axes = _figure(8.0, 3.2)
    axes.set_title(f"Applied rows by kind: {summary.applied_total:,} of {summary.rows_read:,} rows")
    _count_bars(axes, counts["kind"].to_list(), counts["rows"].to_list(), _BLUE)
    axes.set_xlabel("rows")
    return figure


def balance_chart(accounts: pl.DataFrame, column: str = "total", bins: int = 40) -> Figure:
    """A histogram of one amount column over all accounts; negative balances in red.

    Zero is always a bin edge, so a red bar holds negative balances only.
    """
    figure, axes = _figure()
    axes.set_title(f"Distribution of {column} balances over {accounts.height:,} accounts")
    if accounts.height == 0:
        _nothing(axes, "No accounts")
        return figure
    values = _plot_values(accounts.get_column(column))
    low, high = min(*values, 0.0), max(*values, 0.0)
    width = (high - low) / bins or 1.0
    first = math.floor(low / width)
    # One edge beyond the top, so float rounding of the edges never drops the largest value.
    edges = [(first + i) * width for i in range(math.ceil(high / width) - first + 2)]
    negative = [v for v in values if v < 0]
    rest = [v for v in values if v >= 0]
    axes.hist(rest, bins=edges, color=_BLUE, edgecolor="white", label=f"{len(rest):,} >= 0")
    if negative:
        axes.hist(
            negative, bins=edges, color=_RED, edgecolor="white", label=f"{len(negative):,} < 0"
        )
        axes.axvline(0, color="black", linewidth=0.8)
        axes.legend(frameon=False)
    axes.set_xlabel(column)
    axes.set_ylabel("accounts")
    _thousands(axes.xaxis)
    return figure


def largest_accounts_chart(accounts: pl.DataFrame, n: int = 15) -> Figure:
    """The `n` largest accounts by total, each bar split into available and held."""
    top = largest_accounts(accounts, n)
    figure, axes = _figure(8.0, max(2.5, 0.35 * top.height + 1.5))
    axes.set_title(f"The {top.height} largest accounts by total")
    if top.height == 0:
        _nothing(axes, "No accounts")
        return figure
    positions = list(range(top.height))[::-1]
    available = _plot_values(top["available"])
    held = _plot_values(top["held"])
    axes.barh(positions, available, color=_BLUE, label="available")
    # Held is stacked after positive available; a negative available extends to the left.
    axes.barh(positions, held, left=[max(a, 0.0) for a in available], color=_AMBER, label="held")
    axes.set_yticks(positions, [f"client {c}" for c in top["client"]])
    ends = [max(a, 0.0) + h for a, h in zip(available, held, strict=True)]
    for position, total, end in zip(positions, top["total"], ends, strict=True):
        axes.text(end, position, f" {_money(total)}", va="center", fontsize=8)
    # Room on the right for the labels; on the left only as far as a negative available.
    span = max(ends) - min(0.0, *available) or 1.0
    axes.set_xlim(min(0.0, *available) - 0.02 * span, max(ends) + 0.2 * span)
    axes.set_xlabel("amount")
    axes.legend(loc="lower right", frameon=False)
    _thousands(axes.xaxis)
    return figure


def risk_chart(accounts: pl.DataFrame) -> Figure:
    """Every account as a point, held against available; below the line is exposure."""
    exposed = exposure(accounts)
    figure, axes = _figure()
    axes.set_title(
        f"Held vs available: {exposed.count:,} accounts below zero, "
        f"exposure {_money(exposed.amount)}"
    )
    if accounts.height == 0:
        _nothing(axes, "No accounts")
        return figure
    # Colour says the sign of available, the marker says whether the account is locked.
    below, locked = pl.col("available") < 0, pl.col("locked")
    groups = [
        ("available >= 0", ~below & ~locked, _BLUE, "o"),
        ("available < 0", below & ~locked, _RED, "o"),
        ("locked, available >= 0", ~below & locked, _BLUE, "x"),
        ("locked, available < 0", below & locked, _RED, "x"),
    ]
    for label, condition, color, marker in groups:
        part = accounts.filter(condition)
        if part.height:
            axes.scatter(
                _plot_values(part["held"]),
                _plot_values(part["available"]),
                s=16,
                color=color,
                marker=marker,
                label=f"{label} ({part.height:,})",
                alpha=0.8,
            )
    axes.axhline(0, color=_GREY, linewidth=0.8)
    axes.set_xlabel("held")
    axes.set_ylabel("available")
    axes.legend(frameon=False)
    _thousands(axes.xaxis)
    _thousands(axes.yaxis)
    return figure

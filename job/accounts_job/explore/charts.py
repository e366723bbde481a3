"""Charts of a run, for the notebook. Floats appear here only, as positions on an axis.

matplotlib is imported inside the functions: the tables (explore/analyses.py) work
without it installed.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from ..engine.summary import Summary
from .analyses import (
    applied_by_kind,
    exposure,
    largest_accounts,
    rejected_by_reason,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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

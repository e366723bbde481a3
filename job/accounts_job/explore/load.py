"""Loading a run's outputs as Polars DataFrames: accounts, rejects, events, summary.

Every reader checks what it reads: an amount with more than four places is not the job's
and is refused, never rounded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..engine.summary import Summary
from ..io.frames import ACCOUNTS_FRAME, AMOUNT, REJECTS_FRAME
from ..io.rawtext import unescape_array

AMOUNTS = ("available", "held", "total")

# An amount as text, at most four places. Casting text to Decimal(38, 4) would silently
# round `1.00001`; a file with such a value was not written by the job and must not pass.
_AMOUNT_TEXT = r"^-?[0-9]+(\.[0-9]{0,4})?$"


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
        return frame.select(pl.col(name).cast(dtype) for name, dtype in ACCOUNTS_FRAME.items())
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
    """The rejects file the job wrote, CSV or Parquet: line, reason (an Enum), and raw,
    the line's exact bytes (docs/rules.md §5.2); after `file`, the input, for a run over
    several inputs.

    In CSV, `raw` is escaped text: it is read back to the bytes (io/rawtext.py). A
    Parquet file whose `raw` is text (written by an older job) is read as its UTF-8 bytes.
    """
    path = Path(path)
    if _is_parquet(path):
        frame = pl.read_parquet(path)
        if frame.schema["raw"] != pl.Binary:
            frame = frame.with_columns(pl.col("raw").cast(pl.String).cast(pl.Binary))
    else:
        frame = pl.read_csv(path, infer_schema=False)  # every column as text
        # Another writer may leave an empty raw line unquoted, which reads as null.
        text = frame.get_column("raw").fill_null("").to_arrow()
        frame = frame.with_columns(pl.Series("raw", unescape_array(text), dtype=pl.Binary))
    frame = frame.with_columns(pl.col("raw").fill_null(b""))
    schema = {"file": pl.String(), **REJECTS_FRAME} if "file" in frame.columns else REJECTS_FRAME
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


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
    """The events file the job wrote (--events), CSV or Parquet, amounts exact; with its
    `file` column first for a run over several inputs."""
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
    named = [pl.col("file").cast(pl.String)] if "file" in frame.columns else []
    return frame.select(
        *named,
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

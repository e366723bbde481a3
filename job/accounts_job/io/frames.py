"""The results as Polars DataFrames: the shapes the Python API and the notebook use.

The engine builds Arrow tables; this module, and so Polars, is only imported when a
caller asks for a DataFrame (the command line never does).
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from ..codes import REASON_NAMES, SCALE

# Money at the edges (docs/rules.md §3), as io/schemas.py's DECIMAL.
AMOUNT = pl.Decimal(38, SCALE)
# The reject reasons as an Enum: every reason known, in code order.
REASON = pl.Enum(list(REASON_NAMES.values()))

# The Polars twins of io/schemas.py's ACCOUNTS_ARROW and REJECTS_ARROW.
ACCOUNTS_FRAME: dict[str, pl.DataType] = {
    "client": pl.UInt16(),
    "available": AMOUNT,
    "held": AMOUNT,
    "total": AMOUNT,
    "locked": pl.Boolean(),
}
# `raw` is the rejected line's exact bytes (docs/rules.md §5.2).
REJECTS_FRAME: dict[str, pl.DataType] = {"line": pl.UInt64(), "reason": REASON, "raw": pl.Binary()}


def accounts_frame(table: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(table)  # type: ignore[return-value]


def rejects_frame(tables: list[pa.Table]) -> pl.DataFrame:
    """One DataFrame of rejected rows (line, reason, raw; after `file` in a run over
    several inputs) from the engine's batches."""
    if not tables:
        return pl.DataFrame(schema=REJECTS_FRAME)
    frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)
    # A run over several inputs names each row's input first (docs/rules.md §5.2).
    schema = {"file": pl.String(), **REJECTS_FRAME} if "file" in frame.columns else REJECTS_FRAME
    return frame.cast(schema)  # type: ignore[arg-type]

"""The morning after a run: load its outputs and answer what an operator asks first.

Used by `notebooks/explore_accounts.ipynb`, and usable on its own. `load` reads a run's
outputs, `sample` makes one to explore, `analyses` answers the questions, `charts` draws
them. Every function takes
polars DataFrames (the shapes `process` returns) or a `Summary` and returns a DataFrame, a
plain value or a matplotlib figure, so the notebook stays a list of questions.

Amounts stay exact: they are Decimal(38, 4) in every frame and `decimal.Decimal` in every
sum. Only the chart functions turn them into floats, and only as positions on an axis.

matplotlib is imported inside the chart functions: the job's command line never imports
this module, and the tables here work without matplotlib installed.
"""

from .analyses import (
    ZERO,
    Exposure,
    applied_by_kind,
    balance_distribution,
    balance_totals,
    exposure,
    largest_accounts,
    lock_chargebacks,
    locked_accounts,
    open_disputes,
    reject_samples,
    rejected_by_reason,
    run_overview,
)
from .charts import (
    applied_chart,
    balance_chart,
    largest_accounts_chart,
    rejects_chart,
    risk_chart,
)
from .load import (
    AMOUNTS,
    Outputs,
    load_outputs,
    read_accounts,
    read_events,
    read_rejects,
    read_summary,
)
from .sample import (
    SAMPLE_CLIENTS,
    SAMPLE_MALFORMED_RATE,
    SAMPLE_SEED,
    SAMPLE_TRANSACTIONS,
    generate_sample,
    sample_outputs,
)

__all__ = [
    "AMOUNTS",
    "SAMPLE_CLIENTS",
    "SAMPLE_MALFORMED_RATE",
    "SAMPLE_SEED",
    "SAMPLE_TRANSACTIONS",
    "ZERO",
    "Exposure",
    "Outputs",
    "applied_by_kind",
    "applied_chart",
    "balance_chart",
    "balance_distribution",
    "balance_totals",
    "exposure",
    "generate_sample",
    "largest_accounts",
    "largest_accounts_chart",
    "load_outputs",
    "lock_chargebacks",
    "locked_accounts",
    "open_disputes",
    "read_accounts",
    "read_events",
    "read_rejects",
    "read_summary",
    "reject_samples",
    "rejected_by_reason",
    "rejects_chart",
    "risk_chart",
    "run_overview",
    "sample_outputs",
]

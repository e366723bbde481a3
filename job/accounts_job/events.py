"""The event stream: every accepted command, as what it did to its account.

The accounts table is the projection of this stream: replaying it from zero balances
gives the accounts. Each accepted row becomes one event (a chargeback two: the funds
reversed, then the account locked), in file order, with its line number.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .codes import APPLIED, CHARGEBACK, DEPOSIT, DISPUTE, RESOLVE, WITHDRAWAL
from .ledger import DECIMAL, units_to_decimal

LOCKED_EVENT = 6
EVENT_NAMES = {
    DEPOSIT: "credited",
    WITHDRAWAL: "debited",
    DISPUTE: "held",
    RESOLVE: "released",
    CHARGEBACK: "reversed",
    LOCKED_EVENT: "locked",
}
_EVENT_LIST = [EVENT_NAMES.get(code, "") for code in range(max(EVENT_NAMES) + 1)]
EVENTS_SCHEMA = pa.schema(
    [
        ("line", pa.uint64()),
        ("client", pa.uint16()),
        ("tx", pa.uint32()),
        ("event", pa.string()),
        ("amount", DECIMAL),
    ]
)
_EVENT_BY_CODE = pa.array(_EVENT_LIST, pa.string())


def events_table(
    first_line: int,
    kinds: np.ndarray,
    clients: np.ndarray,
    txs: np.ndarray,
    amounts: np.ndarray,
    status: np.ndarray,
) -> pa.Table:
    """The events of a decided batch whose first row is on line `first_line`.

    `amounts` holds what moved: the row's amount, or for a dispute, resolve and
    chargeback the referenced deposit's (the rules kernel puts it there). A `locked`
    event has no amount.
    """
    rows = np.flatnonzero(status == APPLIED)
    chargeback = kinds[rows] == CHARGEBACK
    repeat = 1 + chargeback.astype(np.int64)
    rows = np.repeat(rows, repeat)
    codes = kinds[rows].astype(np.int64)
    # The second event of each chargeback: the account locked.
    seconds = (np.cumsum(repeat) - 1)[chargeback]
    codes[seconds] = LOCKED_EVENT
    amount = units_to_decimal(amounts[rows])
    if seconds.size:
        valid = np.ones(rows.size, dtype=bool)
        valid[seconds] = False
        amount = pa.Array.from_buffers(
            DECIMAL, rows.size, [pa.array(valid).buffers()[1], amount.buffers()[1]]
        )
    return pa.table(
        [
            pa.array(rows + first_line, pa.uint64()),
            pa.array(clients[rows], pa.uint16()),
            pa.array(txs[rows], pa.uint32()),
            _EVENT_BY_CODE.take(pa.array(codes)),
            amount,
        ],
        schema=EVENTS_SCHEMA,
    )

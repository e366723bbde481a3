"""The event stream: every accepted command, as what it did to its account (docs/rules.md §4.6).

The accounts table is the projection of this stream: replaying it from zero balances
gives the accounts. Each accepted row becomes one event (a chargeback two: the funds
reversed, then the account locked), in file order, with its line number.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..codes import APPLIED, CHARGEBACK, DEPOSIT, DISPUTE, RESOLVE, WITHDRAWAL
from ..io.schemas import DECIMAL, EVENTS_ARROW, units_to_decimal
from .parser import ParsedBatch

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
_EVENT_BY_CODE = pa.array(_EVENT_LIST, pa.string())


def events_table(batch: ParsedBatch) -> pa.Table:
    """The events of a decided batch (docs/rules.md §4.6).

    The batch's `amounts` hold what moved: the row's amount, or for a dispute, resolve
    and chargeback the referenced deposit's (the rules kernel puts it there). A `locked`
    event has no amount.
    """
    kinds, clients, txs = batch.kinds, batch.clients, batch.txs
    amounts, status = batch.amounts, batch.status
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
            pa.array(batch.line_numbers(rows), pa.uint64()),
            pa.array(clients[rows], pa.uint16()),
            pa.array(txs[rows], pa.uint32()),
            _EVENT_BY_CODE.take(pa.array(codes)),
            amount,
        ],
        schema=EVENTS_ARROW,
    )

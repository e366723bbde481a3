"""The account aggregate: the sequential rules of docs/rules.md §4, compiled.

Each well-formed row is a command on its client's account. The kernel walks a batch in
file order, decides each command (the first failing check names the reject reason), and
applies the accepted ones as events to the balances. State lives in plain arrays owned by
`Ledger` (engine/ledger.py) and is carried from batch to batch, so the file never has to be
in memory at once.

What the rules must remember, and nothing more:
- per client: available, held, and flags (has an account, locked): 65,536 slots;
- which tx ids were claimed by a deposit or withdrawal row: a bitmap, grown to the largest
  id seen (512 MiB at most, for the full u32 range);
- the deposits and withdrawals that some later dispute, resolve or chargeback names: one
  slot per such tx id, found by rank in the `referenced` bitmap built by a first pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..codes import (
    ACCOUNT_LOCKED,
    ALREADY_CHARGED_BACK,
    ALREADY_DISPUTED,
    APPLIED,
    CLIENT_MISMATCH,
    DEPOSIT,
    DISPUTE,
    DUPLICATE_TX,
    INSUFFICIENT_FUNDS,
    MAX_UNITS,
    NONE,
    NOT_DISPUTABLE,
    NOT_DISPUTED,
    OVERFLOW,
    RESOLVE,
    UNKNOWN_TX,
    WITHDRAWAL,
)
from .bitmaps import grow_bitmap, slot, word_bit

# Account flags.
EXISTS = np.uint8(1)
LOCKED = np.uint8(2)

# Slot states of a referenced tx.
EMPTY = 0  # no accepted deposit or withdrawal with this id (yet)
DEPOSITED = 1  # an accepted deposit, not under dispute
DISPUTED = 2
RESOLVED = 3  # disputed, then resolved: may be disputed again
CHARGED_BACK = 4
WITHDRAWN = 5  # an accepted withdrawal: it can be named, but not disputed


@njit(cache=True)
def apply_batch(rows, accounts, claimed, references, counts, preclaimed=None):
    """Decide and apply every well-formed row of a batch, in order (docs/rules.md §4.2).

    Parameters
    ----------
    rows : tuple of arrays, one entry per row
        ``(kinds, clients, txs, amounts, status)`` as the parser left them. `status` is
        0 for a well-formed row and leaves with each row's outcome: APPLIED or the
        reject reason. For accepted disputes, resolves and chargebacks, `amounts` gets
        the referenced deposit's amount, so the batch's events carry what moved.
    accounts : tuple of arrays, one entry per client
        ``(available, held, flags)``: balances in units, EXISTS and LOCKED bits.
    claimed : uint64 array
        Bitmap of the tx ids claimed so far (kernels/bitmaps.py).
    references : tuple of arrays
        ``(referenced, rank, slot_client, slot_amount, slot_state)``: the bitmap of the
        tx ids some reference names, its rank index, and one slot per such id.
    counts : tuple of arrays
        ``(outcomes, applied)``: rows by status code, accepted rows by kind; the batch's
        rows are added.
    preclaimed : uint8 array or None
        One flag per row: the deposits and withdrawals whose tx id an earlier row
        outside this batch's stream claimed. A shard of a sharded run sees only its own
        clients' rows; the claims across shards are settled before it runs
        (distributed/sharded.py).

    Returns
    -------
    uint64 array
        `claimed`, grown if this batch claimed a larger id.
    """
    kinds, clients, txs, amounts, status = rows
    available, held, flags = accounts
    referenced, rank, slot_client, slot_amount, slot_state = references
    outcomes, applied = counts
    top = -1
    for i in range(kinds.size):
        if (kinds[i] == DEPOSIT or kinds[i] == WITHDRAWAL) and np.int64(txs[i]) > top:
            top = np.int64(txs[i])
    claimed = grow_bitmap(claimed, top)

    for i in range(kinds.size):
        kind = kinds[i]
        if kind == NONE:
            continue  # blank or malformed: not a command, names no account
        c = clients[i]
        flags[c] |= EXISTS
        tx = txs[i]

        if kind == DEPOSIT or kind == WITHDRAWAL:
            # A deposit or withdrawal row claims its tx id when read, whatever happens
            # next: even on a locked account.
            w, bit = word_bit(tx)
            was_claimed = claimed[w] & bit
            if preclaimed is not None and preclaimed[i]:
                was_claimed = bit
            claimed[w] |= bit
            if flags[c] & LOCKED:
                status[i] = ACCOUNT_LOCKED
                continue
            if was_claimed:
                status[i] = DUPLICATE_TX
                continue
            a = amounts[i]
            if kind == DEPOSIT:
                total = available[c] + held[c]
                if total > 0 and a > MAX_UNITS - total:
                    status[i] = OVERFLOW
                    continue
                available[c] += a
                new_state = DEPOSITED
            else:
                if available[c] < a:
                    status[i] = INSUFFICIENT_FUNDS
                    continue
                available[c] -= a
                new_state = WITHDRAWN
            status[i] = APPLIED
            s = slot(tx, referenced, rank)
            if s >= 0:
                slot_client[s] = c
                slot_amount[s] = a
                slot_state[s] = new_state
            continue

        if flags[c] & LOCKED:
            status[i] = ACCOUNT_LOCKED
            continue
        # dispute, resolve, chargeback: find the referenced tx.
        s = slot(tx, referenced, rank)
        if s < 0 or slot_state[s] == EMPTY:
            status[i] = UNKNOWN_TX
            continue
        if slot_client[s] != c:
            status[i] = CLIENT_MISMATCH
            continue
        state = slot_state[s]
        if state == WITHDRAWN:
            status[i] = NOT_DISPUTABLE
            continue
        a = slot_amount[s]
        if kind == DISPUTE:
            if state == DISPUTED:
                status[i] = ALREADY_DISPUTED
                continue
            if state == CHARGED_BACK:
                status[i] = ALREADY_CHARGED_BACK
                continue
            if a > MAX_UNITS - held[c]:
                # Held may not pass the int64 range either: nothing ever wraps (§3, §4.2).
                status[i] = OVERFLOW
                continue
            available[c] -= a
            held[c] += a
            slot_state[s] = DISPUTED
        else:
            if state != DISPUTED:
                status[i] = NOT_DISPUTED
                continue
            held[c] -= a
            if kind == RESOLVE:
                available[c] += a
                slot_state[s] = RESOLVED
            else:
                slot_state[s] = CHARGED_BACK
                flags[c] |= LOCKED
        amounts[i] = a
        status[i] = APPLIED

    for i in range(kinds.size):
        outcomes[status[i]] += 1
        if status[i] == APPLIED:
            applied[kinds[i]] += 1
    return claimed


@njit(cache=True)
def restore_slots(txs, clients, amounts, states, references):
    """Fill the slots of referenced tx ids from a nightly ledger's rows; later rows win.
    `references`: as apply_batch takes them."""
    referenced, rank, slot_client, slot_amount, slot_state = references
    for i in range(txs.size):
        s = slot(txs[i], referenced, rank)
        if s >= 0:
            slot_client[s] = clients[i]
            slot_amount[s] = amounts[i]
            slot_state[s] = states[i]

"""The account aggregate: SPEC.md's sequential rules, compiled.

Each well-formed row is a command on its client's account. The kernel walks a batch in
file order, decides each command (the first failing check names the reject reason), and
applies the accepted ones as events to the balances. State lives in plain arrays owned by
`Ledger` (see ledger.py) and is carried from batch to batch, so the file never has to be
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

from .bits import popcount
from .codes import (
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

# Largest bitmap: the full u32 range of tx ids, in 64-bit words.
MAX_WORDS = 1 << 26


@njit(cache=True)
def grow_bitmap(bits, words):
    """`bits`, or a copy zero-extended to at least `words` words (doubling, capped)."""
    if words <= bits.size:
        return bits
    size = max(words, min(2 * bits.size, MAX_WORDS))
    out = np.zeros(size, dtype=np.uint64)
    out[: bits.size] = bits
    return out


@njit(cache=True, nogil=True)
def set_bits(bits, ids):
    """`bits` with the bit of every id set: in place, or in a grown copy (grow_bitmap)
    when an id lies past its end."""
    top = -1
    for i in range(ids.size):
        top = max(top, np.int64(ids[i]))
    bits = grow_bitmap(bits, (top >> 6) + 1)
    for i in range(ids.size):
        t = np.uint64(ids[i])
        bits[t >> np.uint64(6)] |= np.uint64(1) << (t & np.uint64(63))
    return bits


@njit(cache=True)
def rank_index(referenced):
    """(rank, total): per word, the number of set bits before it, and all set bits.

    The slot of tx t is rank[t's word] + the set bits below t in its word. A word's rank
    is below 2**32, so uint32 holds it and halves the index (256 MiB for the full u32
    range); the total, which may reach 2**32, comes apart.
    """
    rank = np.empty(referenced.size, dtype=np.uint32)
    total = 0
    for w in range(referenced.size):
        rank[w] = total
        total += popcount(referenced[w])
    return rank, total


@njit(cache=True, inline="always")
def slot(tx, referenced, rank):
    """Slot of a referenced tx id, or -1 if no later row names it."""
    t = np.uint64(tx)
    w = np.int64(t >> np.uint64(6))
    if w >= referenced.size:
        return -1
    bit = np.uint64(1) << (t & np.uint64(63))
    word = referenced[w]
    if word & bit == 0:
        return -1
    return np.int64(rank[w]) + np.int64(popcount(word & (bit - np.uint64(1))))


@njit(cache=True)
def apply_batch(
    kinds,
    clients,
    txs,
    amounts,
    status,
    available,
    held,
    flags,
    claimed,
    referenced,
    rank,
    slot_client,
    slot_amount,
    slot_state,
    outcomes,
    applied,
    preclaimed=None,
):
    """Decide and apply every well-formed row of a batch, in order.

    `status` comes in as the parser left it (0 for well-formed rows) and leaves with each
    row's outcome: APPLIED or the reject reason. For accepted disputes, resolves and
    chargebacks, `amounts` gets the referenced deposit's amount, so the events of the
    batch carry what moved. `outcomes` (by status code) and `applied` (by kind) count
    the batch's rows. Returns `claimed`, grown if this batch claimed a larger id.

    `preclaimed` (one flag per row, or None) marks the deposits and withdrawals whose tx
    id an earlier row outside this batch's stream claimed: a shard of a sharded run sees
    only its own clients' rows, and the claims across shards are settled before it runs
    (sharded.py).
    """
    top = -1
    for i in range(kinds.size):
        if (kinds[i] == DEPOSIT or kinds[i] == WITHDRAWAL) and np.int64(txs[i]) > top:
            top = np.int64(txs[i])
    claimed = grow_bitmap(claimed, (top >> 6) + 1)

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
            t = np.uint64(tx)
            w = t >> np.uint64(6)
            bit = np.uint64(1) << (t & np.uint64(63))
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
                # Held may not pass the int64 range either: nothing ever wraps.
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

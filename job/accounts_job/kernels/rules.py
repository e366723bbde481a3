"""The account aggregate: the sequential rules of docs/rules.md §4, compiled.

Each well-formed row is a command on its client's account. The kernel walks a batch in
file order, decides each command (the first failing check names the reject reason), and
applies the accepted ones as events to the balances. State lives in plain arrays owned by
`Ledger` (engine/ledger.py) and is carried from batch to batch, so the file never has to be
in memory at once.

What the rules must remember, and nothing more:
- per client: available, held, and flags (has an account, locked): 65,536 slots;
- which tx ids were claimed by a deposit or withdrawal row: a set of ids
  (kernels/bitmaps.py) whose memory follows the ids claimed, a bit each where they are
  dense, never more than about 8 bytes each, whatever the largest id;
- the deposits and withdrawals that some later dispute, resolve or chargeback names: one
  slot per such tx id, found by rank in the `referenced` set built by a first pass.
"""

from __future__ import annotations

import numpy as np
from numba import literally, njit

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
from .bitmaps import CONTAINER_WORDS, add_in_place, make_room, slot_in_array, slots
from .bits import popcount

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


# Rows the general loop decides before the flat one is tried again (apply_batch).
GENERAL_ROWS = 256


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
    claimed : set of tx ids (kernels/bitmaps.py)
        The tx ids claimed so far.
    references : tuple
        ``(referenced, rank, slot_client, slot_amount, slot_state)``: the set of the tx
        ids some reference names, its rank index, and one slot per such id.
    counts : tuple of arrays
        ``(outcomes, applied)``: rows by status code, accepted rows by kind; the batch's
        rows are added.
    preclaimed : uint8 array or None
        One flag per row: the deposits and withdrawals whose tx id an earlier row
        outside this batch's stream claimed. A shard of a sharded run sees only its own
        clients' rows; the claims across shards are settled before it runs
        (distributed/sharded.py). None, in a plain run, compiles apart, without the
        test: the loop is some 20% faster for it.

    Returns
    -------
    set of tx ids
        `claimed` with this batch's claims: the same arrays, or new ones if they had to
        grow (kernels/bitmaps.py `make_room`).
    """
    kinds, status = rows[0], rows[4]
    outcomes, applied = counts
    n = np.int64(kinds.size)
    start = np.int64(0)
    while start < n:
        # The rows whose tx ids lie in the flat parts of both sets (kernels/bitmaps.py),
        # as dense ids do: a loop with nothing else to hold, which runs the fastest.
        start = _decide(rows, accounts, claimed, references, preclaimed, start, n, True)
        if start == n:
            break
        # From the first row that is not, the general loop, for a stretch of rows.
        stop = min(n, start + GENERAL_ROWS)
        done = _decide(rows, accounts, claimed, references, preclaimed, start, stop, False)
        if done == start:
            # Row `start` claims an id for which the claimed set needs room first. The
            # set is rebound out here only, so the loops keep their arrays in place.
            claimed = make_room(claimed)
        start = done

    for i in range(kinds.size):
        outcomes[status[i]] += 1
        if status[i] == APPLIED:
            applied[kinds[i]] += 1
    return claimed


@njit(cache=True)
def _decide(rows, accounts, claimed, references, preclaimed, start, stop, flat):
    """apply_batch's loop over rows start .. stop - 1. Returns `stop` when all are done,
    or the row whose claim needs room in `claimed` first (bitmaps.make_room), or with
    `flat` the first row whose id is not in the flat parts of both sets. Nothing of the
    row returned is done yet but `flags[c] |= EXISTS`, which a second try does again to
    no effect.

    `flat` is a compile-time constant (`literally`): the loop is compiled twice, and
    the flat one, without any path for ids outside the flat parts, holds so few values
    that they stay in registers.

    The look-ups in the two sets are spelt out here (kernels/bitmaps.py says how a set
    is laid out): an id in the flat part of a set is a plain bitmap's word; another in a
    bitmap container goes through `size` and `off`; the rare rest calls bitmaps. A
    helper taking the sets' arrays would cost a reference count per array and row, and
    indices are unsigned because numba checks a signed one for a negative value first.
    """
    literally(flat)
    kinds, clients, txs, amounts, status = rows
    available, held, flags = accounts
    referenced, rank, slot_client, slot_amount, slot_state = references
    # The sets' arrays, taken apart once.
    ref_size, ref_off, ref_words, _, ref_used = referenced
    ref_rank = rank[1]
    ref_flat = np.uint64(ref_used[2]) << np.uint64(16)
    claimed_size, claimed_off, claimed_words, _, claimed_used = claimed
    claimed_flat = np.uint64(claimed_used[2]) << np.uint64(16)
    word_mask = np.uint64(CONTAINER_WORDS - 1)

    def slot_of(t, bit):
        """The slot of tx t (bit: its mask in its word): -1 if no row references it, -2
        if the id is in an array container (then slot_in_array says). Inlined where it
        is called, reading the arrays above as they are."""
        if t < ref_flat:
            p = t >> np.uint64(6)
            word = ref_words[p]
            if word & bit:
                return np.int64(ref_rank[p]) + np.int64(popcount(word & (bit - np.uint64(1))))
            return np.int64(-1)
        high = t >> np.uint64(16)
        w = (t >> np.uint64(6)) & word_mask
        if ref_size[high] < 0:
            p = np.uint64(ref_off[high]) + w
            word = ref_words[p]
            if word & bit:
                return np.int64(ref_rank[p]) + np.int64(popcount(word & (bit - np.uint64(1))))
            return np.int64(-1)
        if ref_size[high] == 0:
            return np.int64(-1)
        return np.int64(-2)

    for i in range(np.uint64(start), np.uint64(stop)):
        kind = kinds[i]
        if kind == NONE:
            continue  # blank or malformed: not a command, names no account
        c = clients[i]
        flags[c] |= EXISTS
        t = np.uint64(txs[i])
        bit = np.uint64(1) << (t & np.uint64(63))  # its mask in its word

        if kind == DEPOSIT or kind == WITHDRAWAL:
            if flat and (t >= claimed_flat or t >= ref_flat):
                return np.int64(i)
            # A deposit or withdrawal row claims its tx id when read, whatever happens
            # next: even on a locked account.
            if t < claimed_flat:
                p = t >> np.uint64(6)
                was_claimed = claimed_words[p] & bit != 0
                claimed_words[p] |= bit
            elif claimed_size[t >> np.uint64(16)] < 0:
                # Its container's word (the id's high 16 bits pick the container).
                w = (t >> np.uint64(6)) & word_mask
                p = np.uint64(claimed_off[t >> np.uint64(16)]) + w
                was_claimed = claimed_words[p] & bit != 0
                claimed_words[p] |= bit
            else:
                was = add_in_place(claimed, t)
                if was < 0:
                    return np.int64(i)
                was_claimed = was == 1
                claimed_flat = np.uint64(claimed_used[2]) << np.uint64(16)
            if preclaimed is not None and preclaimed[i]:
                was_claimed = True
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
            s = slot_of(t, bit)
            if s == -2:
                s = slot_in_array(referenced, rank, t)
            if s >= 0:
                slot_client[s] = c
                slot_amount[s] = a
                slot_state[s] = new_state
            continue

        if flags[c] & LOCKED:
            status[i] = ACCOUNT_LOCKED
            continue
        # dispute, resolve, chargeback: the referenced tx is in slot s.
        if flat and t >= ref_flat:
            return np.int64(i)
        s = slot_of(t, bit)
        if s == -2:
            s = slot_in_array(referenced, rank, t)
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
    return stop


@njit(cache=True)
def restore_slots(txs, clients, amounts, states, references):
    """Fill the slots of referenced tx ids from a nightly ledger's rows; later rows win.
    `references`: as apply_batch takes them."""
    referenced, rank, slot_client, slot_amount, slot_state = references
    slot_of = slots(referenced, rank, txs, np.empty(txs.size, dtype=np.int64))
    for i in range(txs.size):
        s = slot_of[i]
        if s >= 0:
            slot_client[s] = clients[i]
            slot_amount[s] = amounts[i]
            slot_state[s] = states[i]

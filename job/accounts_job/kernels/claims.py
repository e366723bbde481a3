"""The claims walk of a sharded run, compiled: one pass over every well-formed row in
file order with the set of the ids claimed so far. distributed/claims.py drives it and
says why a sharded run needs it (docs/rules.md §4.3: a row claims its id when read)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..codes import DEPOSIT, DISPUTE, WITHDRAWAL
from .bitmaps import add_all, slots


@njit(cache=True, nogil=True)
def settle_piece(kinds, clients, txs, lines, shards, referenced, rank, state, counters, out):
    """Walk one piece of the rows (file order, after the pieces before it); returns how
    many duplicates and cross-shard references it wrote to `out`, and the set of claimed
    ids it leaves (the state's, or new arrays if they had to grow)."""
    claimed, claim_shard, claim_line = state
    dup_shard, dup_index, cross_shard, cross_index, cross_line, claim_of = out
    # Whether each row's id was claimed by an earlier row, and the claims of this piece.
    claims = (kinds == DEPOSIT) | (kinds == WITHDRAWAL)
    was_claimed = np.empty(kinds.size, dtype=np.bool_)
    claimed = add_all(claimed, txs, claims, was_claimed)
    slot_of = slots(referenced, rank, txs, np.empty(kinds.size, dtype=np.int64))
    d = c = 0
    for i in range(kinds.size):
        shard = np.int64(clients[i]) % shards
        index = counters[shard]  # the row's index among its shard's rows
        counters[shard] += 1
        if claims[i]:
            if was_claimed[i]:
                dup_shard[d] = shard
                dup_index[d] = index
                d += 1
                continue
            s = slot_of[i]
            if s >= 0:
                claim_shard[s] = shard
                claim_line[s] = lines[i]
        elif kinds[i] >= DISPUTE:
            if not was_claimed[i]:
                continue  # no claim yet: unknown_tx, which the shard finds itself
            s = slot_of[i]
            if claim_shard[s] != shard:
                cross_shard[c] = shard
                cross_index[c] = index
                cross_line[c] = claim_line[s]
                claim_of[c] = claim_shard[s]
                c += 1
    return d, c, claimed

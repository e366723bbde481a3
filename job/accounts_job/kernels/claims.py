"""The claims walk of a sharded run, compiled: one pass over every well-formed row in
file order with a bitmap of the ids claimed so far. distributed/claims.py drives it and
says why a sharded run needs it (docs/rules.md §4.3: a row claims its id when read)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..codes import DEPOSIT, DISPUTE, WITHDRAWAL
from .bitmaps import slot, word_bit


@njit(cache=True, nogil=True)
def settle_piece(kinds, clients, txs, lines, shards, referenced, rank, state, counters, out):
    """Walk one piece of the rows (file order, after the pieces before it); returns how
    many duplicates and cross-shard references it wrote to `out`."""
    claimed, claim_shard, claim_line = state
    dup_shard, dup_index, cross_shard, cross_index, cross_line, claim_of = out
    d = c = 0
    for i in range(kinds.size):
        w, bit = word_bit(txs[i])
        shard = np.int64(clients[i]) % shards
        index = counters[shard]  # the row's index among its shard's rows
        counters[shard] += 1
        if kinds[i] == DEPOSIT or kinds[i] == WITHDRAWAL:
            if claimed[w] & bit:
                dup_shard[d] = shard
                dup_index[d] = index
                d += 1
                continue
            claimed[w] |= bit
            s = slot(txs[i], referenced, rank)
            if s >= 0:
                claim_shard[s] = shard
                claim_line[s] = lines[i]
        elif kinds[i] >= DISPUTE:
            if w >= claimed.size or not claimed[w] & bit:
                continue  # no claim yet: unknown_tx, which the shard finds itself
            s = slot(txs[i], referenced, rank)
            if claim_shard[s] != shard:
                cross_shard[c] = shard
                cross_index[c] = index
                cross_line[c] = claim_line[s]
                claim_of[c] = claim_shard[s]
                c += 1
    return d, c

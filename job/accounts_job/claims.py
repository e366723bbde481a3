"""Settling tx-id claims across shards: the one step of a sharded run that sees every row.

A deposit or withdrawal row claims its tx id when it is read, accepted or not (SPEC.md,
check 2), so who claimed an id first depends only on the order of the rows, never on a
balance. That is what lets a sharded run decide it before any shard applies a rule: one
walk over the well-formed rows in file order, with a bitmap of the ids claimed so far.

For each row the walk says what its shard cannot know alone:
- a deposit or withdrawal whose id an earlier row claimed: a duplicate, whatever shard the
  earlier row went to (`dup`);
- a dispute, resolve or chargeback whose tx was first claimed by a row in another shard:
  the line of that claiming row (`cross`). Its own shard finds no such tx and says
  `unknown_tx`; the run then asks the claiming row's shard whether that row was accepted,
  and if it was, the answer is `client_mismatch` (the two rows' clients differ, since
  their shards do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .codes import DEPOSIT, DISPUTE, WITHDRAWAL
from .kernel import rank_index, slot


@njit(cache=True, nogil=True)
def _settle(kinds, clients, txs, lines, shards, referenced, rank, state, counters, out, k):
    """Walk one piece of the rows (file order, after the pieces before it)."""
    claimed, claim_shard, claim_line = state
    dup_shard, dup_index, cross_shard, cross_index, cross_line, claim_of = out
    d, c = k
    for i in range(kinds.size):
        t = np.uint64(txs[i])
        w = np.int64(t >> np.uint64(6))
        bit = np.uint64(1) << (t & np.uint64(63))
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


@dataclass
class Settled:
    """The rows a shard cannot judge alone, each as (its shard, its index among that
    shard's rows, in file order)."""

    dup_shard: np.ndarray  # deposits and withdrawals whose id an earlier row claimed
    dup_index: np.ndarray
    cross_shard: np.ndarray  # references whose tx a row of another shard claimed first,
    cross_index: np.ndarray
    cross_line: np.ndarray  # the line of that claiming row,
    claim_shard: np.ndarray  # and its shard


def settle(pieces: list[tuple[np.ndarray, ...]], shards: int) -> Settled:
    """Settle the claims of well-formed rows given as pieces (kinds, clients, txs, lines)
    in file order. Only rows that need telling are listed, so the result is small."""
    referenced = np.zeros(1, dtype=np.uint64)
    top, n_claims, n_refs = 0, 0, 0
    for kinds, _, txs, _ in pieces:
        refs = kinds >= DISPUTE
        claims = (kinds == DEPOSIT) | (kinds == WITHDRAWAL)
        if claims.any():
            top = max(top, int(txs[claims].max()))
        n_claims += int(np.count_nonzero(claims))
        n_refs += int(np.count_nonzero(refs))
        bits = bitmap_of(txs[refs])
        if bits.size > referenced.size:
            referenced, bits = bits, referenced
        referenced[: bits.size] |= bits
    rank, n_ref = rank_index(referenced)
    state = (
        np.zeros((top >> 6) + 1, dtype=np.uint64),
        np.full(n_ref, -1, dtype=np.int64),
        np.full(n_ref, -1, dtype=np.int64),
    )
    # Room for the worst case; np.empty costs no memory until written.
    out = tuple(np.empty(n, dtype=np.int64) for n in (n_claims, n_claims) + (n_refs,) * 4)
    counters = np.zeros(shards, dtype=np.int64)
    k = (0, 0)
    for kinds, clients, txs, lines in pieces:
        k = _settle(kinds, clients, txs, lines, shards, referenced, rank, state, counters, out, k)
    d, c = k
    return Settled(out[0][:d], out[1][:d], out[2][:c], out[3][:c], out[4][:c], out[5][:c])


@njit(cache=True, nogil=True)
def bitmap_of(ids):
    """A bitmap (uint64 words) with the bit of every id set."""
    top = 0
    for i in range(ids.size):
        top = max(top, np.int64(ids[i]))
    bits = np.zeros((top >> 6) + 1, dtype=np.uint64)
    for i in range(ids.size):
        t = np.uint64(ids[i])
        bits[t >> np.uint64(6)] |= np.uint64(1) << (t & np.uint64(63))
    return bits

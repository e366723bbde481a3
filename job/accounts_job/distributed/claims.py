"""Settling tx-id claims across shards: the one step of a sharded run that sees every row.

A deposit or withdrawal row claims its tx id when it is read, accepted or not (docs/rules.md
§4.3), so who claimed an id first depends only on the order of the rows, never on a
balance. That is what lets a sharded run decide it before any shard applies a rule: one
walk over the well-formed rows in file order, with the set of the ids claimed so far.

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

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..codes import DISPUTE
from ..kernels.bitmaps import new_set, rank_index, set_bits
from ..kernels.claims import settle_piece


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


def settle(
    pieces: Iterable[tuple[np.ndarray, ...]], referenced: tuple[np.ndarray, ...], shards: int
) -> Settled:
    """Settle the claims of well-formed rows that come as pieces (kinds, clients, txs,
    lines), in file order; `referenced` is the set of every tx id the rows' references
    name (kernels/bitmaps.py). Pieces are taken one at a time: memory holds one piece, the
    sets, a slot per referenced id, and the rows that need telling (few, and all the
    result lists)."""
    rank, n_ref = rank_index(referenced)
    claimed = new_set()
    claim_shard = np.full(n_ref, -1, dtype=np.int64)
    claim_line = np.full(n_ref, -1, dtype=np.int64)
    counters = np.zeros(shards, dtype=np.int64)
    found: list[tuple[np.ndarray, ...]] = []
    for kinds, clients, txs, lines in pieces:
        # Room for the worst case; np.empty costs no memory until written.
        out = tuple(np.empty(kinds.size, dtype=np.int64) for _ in range(6))
        state = (claimed, claim_shard, claim_line)
        d, c, claimed = settle_piece(
            kinds, clients, txs, lines, shards, referenced, rank, state, counters, out
        )
        found.append((*(a[:d].copy() for a in out[:2]), *(a[:c].copy() for a in out[2:])))
    return Settled(
        *(np.concatenate([f[i] for f in found] or [np.zeros(0, np.int64)]) for i in range(6))
    )


def referenced_ids(kinds: np.ndarray, txs: np.ndarray) -> np.ndarray:
    """The tx ids that a piece's disputes, resolves and chargebacks name."""
    return txs[kinds >= DISPUTE]


def bitmap_of(*ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """One set of tx ids (kernels/bitmaps.py) with every id of every array."""
    bits = new_set()
    for some in ids:
        bits = set_bits(bits, some)
    return bits

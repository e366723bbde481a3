"""The state the rules carry from row to row, and the projection of it into accounts.

`Ledger` owns the arrays the compiled kernel updates. It is built after the first
pass over the file finds which tx ids are referenced at all (engine/references.py); the
ledger then sizes one slot per referenced id. The second pass feeds batches to `apply`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..codes import N_CLIENTS
from ..io.schemas import ACCOUNTS_ARROW, units_to_decimal
from ..kernels import bitmaps
from ..kernels.rules import EXISTS, LOCKED, apply_batch


class Ledger:
    """Per-client balances, claimed tx ids, and the referenced deposits."""

    def __init__(self, referenced: tuple[np.ndarray, ...]) -> None:
        """`referenced`: the first pass's set of the tx ids some row names
        (kernels/bitmaps.py)."""
        self.available = np.zeros(N_CLIENTS, dtype=np.int64)
        self.held = np.zeros(N_CLIENTS, dtype=np.int64)
        self.flags = np.zeros(N_CLIENTS, dtype=np.uint8)
        self.claimed = bitmaps.new_set()
        # One slot per referenced tx id, found by rank in the set; its bitmaps laid out in
        # order, so that the rules find dense ids as in a plain bitmap (bitmaps.in_order).
        self.referenced, self.rank, n = bitmaps.indexed(referenced)
        self.slot_client = np.zeros(n, dtype=np.uint16)
        self.slot_amount = np.zeros(n, dtype=np.int64)
        self.slot_state = np.zeros(n, dtype=np.uint8)
        # Rows so far by outcome (status code) and accepted rows by kind.
        self.outcomes = np.zeros(256, dtype=np.int64)
        self.applied = np.zeros(8, dtype=np.int64)

    def apply(
        self,
        kinds: np.ndarray,
        clients: np.ndarray,
        txs: np.ndarray,
        amounts: np.ndarray,
        status: np.ndarray,
        preclaimed: np.ndarray | None = None,
    ) -> None:
        """Second pass: decide and apply one batch of parsed rows, in order.
        `preclaimed`: see kernels.rules.apply_batch (sharded runs only)."""
        self.claimed = apply_batch(
            (kinds, clients, txs, amounts, status),
            (self.available, self.held, self.flags),
            self.claimed,
            self.references(),
            (self.outcomes, self.applied),
            preclaimed,
        )

    def references(self) -> tuple:
        """(referenced, rank, slot_client, slot_amount, slot_state): the referenced tx ids
        and their slots, as the kernels take them."""
        return (self.referenced, self.rank, self.slot_client, self.slot_amount, self.slot_state)

    def accounts_units(self) -> tuple[np.ndarray, ...]:
        """(client, available, held, total, locked) of every account, amounts in units."""
        clients = np.flatnonzero(self.flags & EXISTS)
        available = self.available[clients]
        held = self.held[clients]
        locked = (self.flags[clients] & LOCKED) != 0
        return clients.astype(np.uint16), available, held, available + held, locked

    def restore_accounts(
        self, clients: np.ndarray, available: np.ndarray, held: np.ndarray, locked: np.ndarray
    ) -> None:
        """Start from accounts an earlier run left (nightly state)."""
        self.available[clients] = available
        self.held[clients] = held
        self.flags[clients] = EXISTS | np.where(locked, LOCKED, 0).astype(np.uint8)

    def state_bytes(self) -> int:
        """Memory the rules hold: everything here, nothing per input row."""
        held = (self.available, self.held, self.flags, *self.claimed, *self.referenced)
        held += (*self.rank, self.slot_client, self.slot_amount, self.slot_state)
        return sum(a.nbytes for a in held)

    # -- the claimed ids, as the nightly state keeps them --------------------------------

    def claimed_words(self) -> tuple[np.ndarray, np.ndarray]:
        """(word, bits): the claimed ids as the non-zero 64-bit words of a bitmap of the
        u32 range, in increasing order of word (id t is bit t % 64 of word t // 64)."""
        return bitmaps.words_of(self.claimed)

    def restore_claimed(self, words: np.ndarray, bits: np.ndarray) -> None:
        """Add the claimed ids of claimed_words's (word, bits) to this ledger's."""
        words = np.asarray(words, dtype=np.uint32)
        bits = np.asarray(bits, dtype=np.uint64)
        if words.size != bits.size or (words.size and int(words.max()) >= 1 << 26):
            raise ValueError("claimed ids: a word past the u32 range")
        self.claimed = bitmaps.set_words(self.claimed, words, bits)

    def claimed_count(self) -> int:
        """The number of claimed tx ids."""
        return int(bitmaps.count(self.claimed))

    def referenced_claimed(self) -> np.ndarray:
        """The tx ids both referenced tonight and claimed, sorted: the only ones an
        earlier night's ledger can hold a slot for."""
        txs = bitmaps.slot_txs(self.referenced, self.slot_state.size)
        return txs[bitmaps.contains_each(self.claimed, txs)]

    def locked_accounts(self) -> int:
        return int(np.count_nonzero(self.flags & LOCKED))

    def accounts(self) -> pa.Table:
        """The projection: one row per account, sorted by client, exact decimals."""
        client, available, held, total, locked = self.accounts_units()
        return pa.table(
            [
                pa.array(client, type=pa.uint16()),
                units_to_decimal(available),
                units_to_decimal(held),
                units_to_decimal(total),
                pa.array(locked, type=pa.bool_()),
            ],
            schema=ACCOUNTS_ARROW,
        )

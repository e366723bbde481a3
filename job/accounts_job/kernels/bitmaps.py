"""Bitmaps of tx ids, and the slots found by rank in them.

A set of u32 tx ids is a bitmap of 64-bit words: id t is bit t % 64 of word t // 64.
The rules keep two such sets (the ids claimed so far, the ids some reference names), the
claims step of a sharded run one more. A referenced id gets a slot, its rank among the
set bits, which is how the rules remember one deposit per referenced id and no more.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import popcount, trailing_zeros

# Largest bitmap: the full u32 range of tx ids, in 64-bit words.
MAX_WORDS = 1 << 26


@njit(cache=True, inline="always")
def word_bit(tx):
    """(word index, bit mask) of tx id `tx` in a bitmap.

    >>> word_bit(65)
    (1, 2)
    """
    t = np.uint64(tx)
    return np.int64(t >> np.uint64(6)), np.uint64(1) << (t & np.uint64(63))


@njit(cache=True)
def grow_bitmap(bits, top):
    """`bits`, or a copy zero-extended (doubling, capped) to hold the bit of tx id `top`;
    `bits` itself when `top` is -1 (no id).

    >>> grow_bitmap(np.zeros(1, np.uint64), 64).size
    2
    """
    words = (top >> 6) + 1
    if words <= bits.size:
        return bits
    size = max(words, min(2 * bits.size, MAX_WORDS))
    out = np.zeros(size, dtype=np.uint64)
    out[: bits.size] = bits
    return out


@njit(cache=True, nogil=True)
def set_bits(bits, ids):
    """`bits` with the bit of every id set: in place, or in a grown copy (grow_bitmap)
    when an id lies past its end.

    >>> set_bits(np.zeros(1, np.uint64), np.array([0, 3, 64], np.uint32)).tolist()
    [9, 1]
    """
    top = -1
    for i in range(ids.size):
        top = max(top, np.int64(ids[i]))
    bits = grow_bitmap(bits, top)
    for i in range(ids.size):
        w, bit = word_bit(ids[i])
        bits[w] |= bit
    return bits


@njit(cache=True)
def rank_index(referenced):
    """(rank, total): per word, the number of set bits before it, and all set bits.

    The slot of tx t is rank[t's word] + the set bits below t in its word. A word's rank
    is below 2**32, so uint32 holds it and halves the index (256 MiB for the full u32
    range); the total, which may reach 2**32, comes apart.

    >>> rank, total = rank_index(np.array([0b1011, 0, 1], np.uint64))
    >>> rank.tolist(), total
    ([0, 3, 3], 4)
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
    w, bit = word_bit(tx)
    if w >= referenced.size:
        return -1
    word = referenced[w]
    if word & bit == 0:
        return -1
    return np.int64(rank[w]) + np.int64(popcount(word & (bit - np.uint64(1))))


@njit(cache=True)
def slot_txs(referenced, n):
    """The tx id of every slot: the set bits of `referenced`, in order.

    >>> slot_txs(np.array([0b101, 1], np.uint64), 3).tolist()
    [0, 2, 64]
    """
    out = np.empty(n, dtype=np.uint32)
    k = 0
    for w in range(referenced.size):
        word = referenced[w]
        while word:
            out[k] = w * 64 + trailing_zeros(word)
            k += 1
            word &= word - np.uint64(1)  # clear the lowest set bit
    return out

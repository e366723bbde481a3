"""Sets of tx ids, and the slots found by rank in them.

The rules keep two sets of u32 tx ids (the ids claimed so far, the ids some reference
names), the claims step of a sharded run one more. A referenced id gets a slot, its rank
in the set, which is how the rules remember one deposit per referenced id and no more.

A set is kept the way Roaring bitmaps keep one, so that its memory follows the ids in it,
not the largest id: the u32 range is cut into 65,536 containers of 65,536 ids (by an id's
high 16 bits). A container with at most ARRAY_MAX ids holds them as a sorted array of
their low 16 bits; with more, as a bitmap of 1,024 64-bit words (8 KiB), where id t is
bit t % 64 of word (t // 64) % 1024. One exception: a container right after the flat
part (below), added to while the one before it holds at least 2 * ARRAY_MAX ids, starts
as a bitmap, as ids that come in order will fill it. A file of dense ids (1, 2, 3, ...)
costs a bit per id, as a plain bitmap would; an id alone in its container costs a few
bytes. At most 8 bytes an id, plus 512 KiB for the container table, whatever the ids.

A set is a tuple of arrays, which the kernels take and give back (a kernel that adds ids
may move the arrays that hold them, and returns the set it leaves):

- ``size``: int32 per container: its number of ids while it is an array (0: empty),
  BITMAP once it is a bitmap;
- ``off``: int32 per container: where its array starts in ``arr``, or its bitmap in
  ``words``;
- ``words``: uint64, the containers' bitmaps, 1,024 words each, in the order made;
- ``arr``: uint16, the containers' arrays, each in a region of ``capacity(size)``;
- ``used``: int64 [words in use, array entries in use, flat containers]. FLAT: the
  leading containers 0 .. used[2] - 1 are bitmaps that lie at the start of ``words`` in
  container order, so an id t below used[2] * 65,536 is bit t % 64 of words[t // 64],
  just as in a plain bitmap. That is what a file of dense ids (1, 2, 3, ...) makes, and
  the kernels' loops look such ids up without going through ``size`` and ``off``.

>>> s = set_bits(new_set(), np.array([70, 3, 4294967295], np.uint32))
>>> count(s), contains(s, 3), contains(s, 5), slot_txs(s, 3).tolist()
(3, True, False, [3, 70, 4294967295])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import popcount, trailing_zeros

# Containers of a set: the high 16 bits of a u32 id.
CONTAINERS = 1 << 16
# Words of a container's bitmap: 65,536 bits.
CONTAINER_WORDS = 1 << 10
# Ids a container keeps as a sorted array; one more turns it into a bitmap. At 1,024 an
# array costs at most 2 KiB (8 KiB with room to grow and the space left by moves), a
# bitmap 8 KiB: either way no more than about 8 bytes an id, and an insertion into a
# sorted array moves at most 2 KiB.
ARRAY_MAX = 1024
# `size` of a container kept as a bitmap.
BITMAP = -1
# The smallest region of `arr` a container's array takes.
MIN_ARRAY = 4


@njit(cache=True, inline="always")
def word_bit(tx):
    """(word index, bit mask) of tx id `tx` in a plain bitmap of the u32 range; the
    state's file of claimed ids (state/files.py) stores its words so.

    >>> word_bit(65)
    (1, 2)
    """
    t = np.uint64(tx)
    return np.int64(t >> np.uint64(6)), np.uint64(1) << (t & np.uint64(63))


def new_set() -> tuple[np.ndarray, ...]:
    """An empty set of tx ids. (Plain Python: each compiled function a run calls from
    Python costs its start-up a load from numba's cache.)

    >>> count(new_set())
    0
    """
    return (
        np.zeros(CONTAINERS, dtype=np.int32),
        np.zeros(CONTAINERS, dtype=np.int32),
        np.zeros(0, dtype=np.uint64),
        np.zeros(0, dtype=np.uint16),
        np.zeros(3, dtype=np.int64),
    )


@njit(cache=True, inline="always")
def _capacity(n):
    """Entries of `arr` an array of n ids takes: 0 for none, else a power of two >= n."""
    if n == 0:
        return 0
    cap = MIN_ARRAY
    while cap < n:
        cap *= 2
    return cap


@njit(cache=True, inline="always")
def _search(arr, lo, n, low):
    """The first index i in [0, n) with arr[lo + i] >= low; n if there is none."""
    a, b = 0, n
    while a < b:
        m = (a + b) >> 1
        if arr[lo + m] < low:
            a = m + 1
        else:
            b = m
    return a


@njit(cache=True, inline="always")
def _in_container(t):
    """(word within its container's bitmap, bit mask) of id t."""
    return (t >> 6) & (CONTAINER_WORDS - 1), np.uint64(1) << np.uint64(t & 63)


@njit(cache=True)
def contains(s, tx):
    """Whether tx id `tx` is in set `s`."""
    size, off, words, arr, _ = s
    t = np.int64(tx)
    c = t >> 16
    n = size[c]
    if n < 0:
        w, bit = _in_container(t)
        return words[off[c] + w] & bit != 0
    low = t & 0xFFFF
    i = _search(arr, off[c], n, low)
    return i < n and arr[off[c] + i] == low


@njit(cache=True)
def add(s, tx):
    """(set, was in it): `s` with tx id `tx` added; the set is `s`, or a new tuple when
    the arrays had to grow (then `s` is not to be used again).

    For many ids, use add_all or set_bits: a set that a loop rebinds costs a reference
    count on each of its arrays at every turn."""
    was = add_in_place(s, tx)
    if was < 0:
        s = make_room(s)
        was = add_in_place(s, tx)
    return s, was == 1


@njit(cache=True)
def add_in_place(s, tx):
    """Add tx id `tx` to `s` without moving its arrays: 1 if it was in `s` already, 0 if
    added, -1 if adding it needs more room (then nothing changed: make_room, then again).

    >>> s = new_set()
    >>> add_in_place(s, 7)
    -1
    >>> s = make_room(s)
    >>> add_in_place(s, 7), add_in_place(s, 7)
    (0, 1)
    """
    size, off, words, arr, used = s
    t = np.int64(tx)
    c = t >> 16
    w, bit = _in_container(t)
    if size[c] < 0:
        was = words[off[c] + w] & bit != 0
        words[off[c] + w] |= bit
        return np.int64(was)
    # An array (or empty).
    n = np.int64(size[c])
    if n == 0 and c == used[2] and _dense_before(s, c):
        # The container right after the flat part, which is dense: ids that come in
        # order (as tx ids mostly do) will fill this one as densely, so it starts as a
        # bitmap, flat too, and the rules find its ids as in a plain bitmap rather than
        # insert its first ARRAY_MAX ids one by one into an array.
        if used[0] + CONTAINER_WORDS > words.size:
            return np.int64(-1)
        size[c] = BITMAP
        off[c] = np.int32(used[0])
        used[0] += CONTAINER_WORDS
        words[off[c] + w] |= bit
        _extend_flat(s)
        return np.int64(0)
    low = t & 0xFFFF
    i = _search(arr, off[c], n, low)
    if i < n and arr[off[c] + i] == low:
        return np.int64(1)
    if n == ARRAY_MAX:
        if used[0] + CONTAINER_WORDS > words.size:
            return np.int64(-1)
        _to_bitmap(s, c)
        words[off[c] + w] |= bit
        return np.int64(0)
    cap = _capacity(n)
    if n == cap:  # full (or empty): move it to a region twice as large
        new_cap = max(MIN_ARRAY, 2 * cap)
        if used[1] + new_cap > arr.size:
            return np.int64(-1)
        lo = used[1]
        arr[lo : lo + n] = arr[off[c] : off[c] + n]
        off[c] = lo
        used[1] += new_cap
    lo = off[c]
    for j in range(n, i, -1):
        arr[lo + j] = arr[lo + j - 1]
    arr[lo + i] = low
    size[c] = n + 1
    return np.int64(0)


@njit(cache=True)
def _dense_before(s, c):
    """Whether container c - 1 is the last of the flat part, ends where `words` is used
    up (so a bitmap for c, made next, is flat too), and holds at least 2 * ARRAY_MAX
    ids: then c may start as a bitmap, and the two still cost at most 8 bytes an id
    (16 KiB for more than 2,048 ids)."""
    size, _, words, _, used = s
    if c == 0 or size[c - 1] >= 0 or used[0] != c * CONTAINER_WORDS:
        return False
    n = 0
    for k in range((c - 1) * CONTAINER_WORDS, c * CONTAINER_WORDS):
        n += popcount(words[k])
    return n >= 2 * ARRAY_MAX


@njit(cache=True)
def make_room(s):
    """`s` with room for any one add_in_place: a bitmap's words, an array's largest move.
    The set is `s`, or a new tuple when the arrays had to grow."""
    # int64 values, not literals: each kernel compiles once (a literal argument makes a
    # signature of its own).
    return _reserve_array(_reserve_words(s, np.int64(CONTAINER_WORDS)), np.int64(2 * ARRAY_MAX))


@njit(cache=True)
def _reserve_words(s, need):
    """`s` with room for `need` more words at the end of `words` (at least doubling it
    when it has not)."""
    size, off, words, arr, used = s
    if used[0] + need <= words.size:
        return s
    grown = np.zeros(max(2 * words.size, used[0] + need), dtype=np.uint64)
    grown[: used[0]] = words[: used[0]]
    return size, off, grown, arr, used


@njit(cache=True)
def _reserve_array(s, need):
    """`s` with room for `need` more entries at the end of `arr`. A full `arr` is
    replaced by one that holds only the arrays in use, packed, with as much room again:
    the regions left behind by arrays that moved or became bitmaps are dropped. A pack
    walks every container, so when the arrays in use are few, the room still doubles
    with each pack, up to CONTAINERS entries: a set of a few arrays merged into again and
    again (set_bits) would otherwise pack at nearly every merge."""
    size, off, words, arr, used = s
    if used[1] + need <= arr.size:
        return s
    live = 0
    for c in range(CONTAINERS):
        if size[c] > 0:
            live += _capacity(size[c])
    room = max(2 * (live + need), min(2 * arr.size, live + need + CONTAINERS))
    out = np.empty(max(room, 64), dtype=np.uint16)
    k = 0
    for c in range(CONTAINERS):
        n = size[c]
        if n > 0:
            out[k : k + n] = arr[off[c] : off[c] + n]
            off[c] = k
            k += _capacity(n)
    used[1] = k
    return size, off, words, out, used


@njit(cache=True)
def _to_bitmap(s, c):
    """Turn container c, an array, into a bitmap; `words` must have room for it."""
    size, off, words, arr, used = s
    # Never used before: regions of `words` are never given back, so this one is zero.
    at = np.int32(used[0])
    used[0] += CONTAINER_WORDS
    for i in range(size[c]):
        low = np.int64(arr[off[c] + i])
        words[at + (low >> 6)] |= np.uint64(1) << np.uint64(low & 63)
    off[c] = at
    size[c] = BITMAP
    _extend_flat(s)


@njit(cache=True)
def _extend_flat(s):
    """Count in used[2] the leading containers (0, 1, 2, ...) that are bitmaps lying in
    `words` in container order from its start: for an id t of these, the word is simply
    t // 64, as in a plain bitmap (see FLAT in the module's docstring)."""
    size, off, _, _, used = s
    k = used[2]
    while k < CONTAINERS and size[k] < 0 and off[k] == k * CONTAINER_WORDS:
        k += 1
    used[2] = k


@njit(cache=True)
def in_order(s):
    """A copy of `s` whose bitmaps lie in `words` in container order, so that its flat
    part (used[2]) reaches as far as its leading bitmap containers go. For a set that no
    longer changes (the referenced ids), whose slots the rules look up on every row.

    >>> s = set_bits(new_set(), np.arange(65536 + 2000, 65536 + 3100, dtype=np.uint32))
    >>> s = set_bits(s, np.arange(0, 1100, dtype=np.uint32))
    >>> int(s[4][2]), int(in_order(s)[4][2])
    (0, 2)
    """
    size, off, words, arr, used = s
    size, off, arr, used = size.copy(), off.copy(), arr.copy(), used.copy()
    out = np.zeros(used[0], dtype=np.uint64)
    k = 0
    for c in range(CONTAINERS):
        if size[c] < 0:
            out[k : k + CONTAINER_WORDS] = words[off[c] : off[c] + CONTAINER_WORDS]
            off[c] = k
            k += CONTAINER_WORDS
    used[2] = 0
    t = (size, off, out, arr, used)
    _extend_flat(t)
    return t


@njit(cache=True, nogil=True)
def make_room_for(s, ids, adds):
    """`s` with room for adding every ids[i] where adds[i] by add_in_place, so that none
    of them needs make_room: a loop over the ids can then keep the set's arrays where
    they are. The set is `s`, or a new tuple when the arrays had to grow.

    The room is counted per container: an array may take a region twice the size of
    what it may hold at the end (the regions it leaves behind on the way), and a bitmap
    if it may pass ARRAY_MAX."""
    size = s[0]
    # The containers, not bitmaps, that the ids to add fall in, one entry per id: few
    # once the ids are dense (their containers are bitmaps), and no table of them all.
    into = np.empty(ids.size, dtype=np.int64)
    k = 0
    for i in range(ids.size):
        if adds[i]:
            c = np.uint64(ids[i]) >> np.uint64(16)
            if size[c] >= 0:
                into[k] = c
                k += 1
    into = np.sort(into[:k])
    bitmaps = 0
    entries = 0
    i = 0
    while i < k:
        j = i
        while j < k and into[j] == into[i]:
            j += 1
        n = size[into[i]] + (j - i)
        if n > ARRAY_MAX:
            bitmaps += 1
        else:
            entries += 2 * _capacity(n)
        i = j
    s = _reserve_words(s, bitmaps * CONTAINER_WORDS)
    # A container these ids may take past ARRAY_MAX becomes a bitmap now, so that they
    # are added to it a word each rather than into a sorted array first. (Should some of
    # them be repeats, it holds fewer ids than a bitmap needs: still 8 KiB.)
    i = 0
    while i < k:
        j = i
        while j < k and into[j] == into[i]:
            j += 1
        if size[into[i]] + (j - i) > ARRAY_MAX:
            _to_bitmap(s, into[i])
        i = j
    return _reserve_array(s, entries)


@njit(cache=True, nogil=True)
def add_all(s, ids, adds, was):
    """The set `s` left with ids[i] added where adds[i], in order; was[i] gets whether
    ids[i] was in the set at its turn (added by an earlier i, or before). See `add` for
    the set it returns.

    >>> ids, adds = np.array([7, 7, 9, 9], np.uint32), np.array([1, 1, 0, 1], np.bool_)
    >>> was = np.zeros(4, np.bool_)
    >>> s = add_all(new_set(), ids, adds, was)
    >>> was.tolist(), count(s)
    ([False, True, False, False], 2)
    """
    s = make_room_for(s, ids, adds)
    _add_all_in_place(s, ids, adds, was)
    return s


@njit(cache=True, nogil=True)
def _add_all_in_place(s, ids, adds, was):
    """add_all, once make_room_for has made room."""
    size, off, words, _, _ = s
    for i in range(ids.size):
        # An id of a bitmap container, spelt out (see `slots`); the others by a call.
        t = np.uint64(ids[i])
        c = t >> np.uint64(16)
        if size[c] < 0:
            p = np.uint64(off[c]) + ((t >> np.uint64(6)) & np.uint64(CONTAINER_WORDS - 1))
            bit = np.uint64(1) << (t & np.uint64(63))
            was[i] = words[p] & bit != 0
            if adds[i]:
                words[p] |= bit
        elif adds[i]:
            added = add_in_place(s, t)
            if added < 0:
                raise AssertionError("add_all: make_room_for made too little room")
            was[i] = added == 1
        else:
            was[i] = contains(s, t)


@njit(cache=True, nogil=True)
def set_bits(s, ids):
    """`s` with every id of `ids` added (see `add` for the set it returns).

    The ids of bitmap containers are set a word each, and so are those of containers
    that these ids take past ARRAY_MAX, which become bitmaps first: ids in no order (the
    first pass's referenced ids come so) would otherwise each move half an array on the
    way. The few others are added one by one.

    >>> slot_txs(set_bits(new_set(), np.array([64, 0, 3, 64], np.uint32)), 3).tolist()
    [0, 3, 64]
    >>> s = set_bits(new_set(), np.array([9, 5], np.uint32))
    >>> slot_txs(set_bits(s, np.array([7, 5, 1], np.uint32)), 4).tolist()
    [1, 5, 7, 9]
    """
    rest = np.empty(ids.size, dtype=np.uint32)
    k = _set_in_bitmaps(s, ids, rest)
    if k == 0:
        return s
    # Ids per container, for the containers that are arrays (or empty).
    size = s[0]
    per = np.zeros(CONTAINERS, dtype=np.int32)
    for i in range(k):
        per[rest[i] >> 16] += 1
    bitmaps = 0
    for i in range(k):
        c = rest[i] >> 16
        if per[c] > 0:  # the container's first id here: count it once
            if size[c] + per[c] > ARRAY_MAX:
                bitmaps += 1
            per[c] = -per[c]
    if bitmaps:
        s = _reserve_words(s, bitmaps * CONTAINER_WORDS)
        size = s[0]
        for i in range(k):
            c = rest[i] >> 16
            if per[c] < 0 and size[c] - per[c] > ARRAY_MAX:
                _to_bitmap(s, np.int64(c))
            per[c] = 0
        k = _set_in_bitmaps(s, rest[:k], rest)
    for i in range(k):
        s, _ = add(s, np.uint64(rest[i]))
    return s


@njit(cache=True, nogil=True)
def _set_in_bitmaps(s, ids, rest):
    """Add the ids of bitmap containers to `s`; copy the others to `rest` (which may be
    `ids` itself) and return how many."""
    size, off, words, _, _ = s
    k = 0
    for i in range(ids.size):
        t = np.uint64(ids[i])
        c = t >> np.uint64(16)
        if size[c] < 0:
            p = np.uint64(off[c]) + ((t >> np.uint64(6)) & np.uint64(CONTAINER_WORDS - 1))
            words[p] |= np.uint64(1) << (t & np.uint64(63))
        else:
            rest[k] = ids[i]
            k += 1
    return k


@njit(cache=True)
def count(s):
    """The number of ids in `s`."""
    size, _, words, _, used = s
    n = 0
    for c in range(CONTAINERS):
        if size[c] > 0:
            n += size[c]
    for p in range(used[0]):
        n += np.int64(popcount(words[p]))
    return n


@njit(cache=True)
def contains_each(s, ids):
    """One bool per id of `ids`: whether it is in `s`.

    >>> s = set_bits(new_set(), np.array([4, 70000], np.uint32))
    >>> contains_each(s, np.array([4, 5, 70000])).tolist()
    [True, False, True]
    """
    out = np.empty(ids.size, dtype=np.bool_)
    _add_all_in_place(s, ids, np.zeros(ids.size, dtype=np.bool_), out)  # adds nothing
    return out


@njit(cache=True)
def rank_index(s):
    """(rank, total): what `slot` needs to find an id's rank in `s`, and the ids in `s`.

    The rank is ``(base, word_rank)``: per container, the ids in the containers before it;
    per bitmap word, the ids before it in the whole set (below 2**32, so uint32 holds it;
    the total, which may reach 2**32, comes apart). The slot of an id of an array is its
    container's base + its index in the array.

    >>> rank, total = rank_index(set_bits(new_set(), np.array([0, 1, 3, 70000], np.uint32)))
    >>> rank[0][:3].tolist(), total
    ([0, 3, 4], 4)
    """
    size, off, words, _, used = s
    base = np.empty(CONTAINERS, dtype=np.int64)
    word_rank = np.empty(used[0], dtype=np.uint32)
    total = 0
    for c in range(CONTAINERS):
        base[c] = total
        if size[c] < 0:
            for p in range(off[c], off[c] + CONTAINER_WORDS):
                word_rank[p] = total
                total += np.int64(popcount(words[p]))
        else:
            total += size[c]
    return (base, word_rank), total


@njit(cache=True)
def indexed(s):
    """(set, rank, total): `s` laid out in order (in_order) and its rank_index, in one
    call: what the rules need of the referenced ids.

    >>> t, rank, total = indexed(set_bits(new_set(), np.array([3, 70000], np.uint32)))
    >>> slots(t, rank, np.array([70000, 3, 4], np.uint32), np.empty(3, np.int64)).tolist()
    [1, 0, -1]
    """
    t = in_order(s)
    rank, total = rank_index(t)
    return t, rank, total


@njit(cache=True, nogil=True)
def slots(s, rank, ids, out):
    """out[i] = the slot of ids[i]: its rank in set `s` (rank from rank_index); -1 if
    it is not in `s` (no row names it).

    The kernels look their rows' slots up here, in one loop over a batch, rather than one
    by one in their own loops: a helper that takes arrays, inlined in a loop, costs a
    reference count on each array at every turn, which the loop here is written to avoid.

    >>> s = set_bits(new_set(), np.array([5, 9, 100000], np.uint32))
    >>> rank, _ = rank_index(s)
    >>> out = np.empty(4, np.int64)
    >>> slots(s, rank, np.array([5, 9, 100000, 6], np.uint32), out).tolist()
    [0, 1, 2, -1]
    """
    size, off, words, _, _ = s
    word_rank = rank[1]
    for i in range(ids.size):
        # Unsigned indices: numba checks a signed one for a negative value first.
        t = np.uint64(ids[i])
        c = t >> np.uint64(16)
        n = size[c]
        if n < 0:
            p = np.uint64(off[c]) + ((t >> np.uint64(6)) & np.uint64(CONTAINER_WORDS - 1))
            bit = np.uint64(1) << (t & np.uint64(63))
            word = words[p]
            if word & bit:
                out[i] = np.int64(word_rank[p]) + np.int64(popcount(word & (bit - np.uint64(1))))
            else:
                out[i] = -1
        elif n == 0:
            out[i] = -1
        else:
            out[i] = slot_in_array(s, rank, t)
    return out


@njit(cache=True)
def slot_in_array(s, rank, tx):
    """The slot of tx id `tx` (as `slots` gives it) when its container is an array."""
    size, off, _, arr, _ = s
    t = np.int64(tx)
    c = t >> 16
    n = np.int64(size[c])
    low = t & 0xFFFF
    i = _search(arr, off[c], n, low)
    if i < n and arr[off[c] + i] == low:
        return rank[0][c] + i
    return np.int64(-1)


@njit(cache=True)
def slot_txs(s, n):
    """The tx id of every slot: the n ids of `s`, in increasing order.

    >>> slot_txs(set_bits(new_set(), np.array([2, 65536, 0], np.uint32)), 3).tolist()
    [0, 2, 65536]
    """
    size, off, words, arr, _ = s
    out = np.empty(n, dtype=np.uint32)
    k = 0
    for c in range(CONTAINERS):
        high = np.int64(c) << 16
        if size[c] < 0:
            for j in range(CONTAINER_WORDS):
                word = words[off[c] + j]
                while word:
                    out[k] = high + j * 64 + np.int64(trailing_zeros(word))
                    k += 1
                    word &= word - np.uint64(1)  # clear the lowest set bit
        else:
            for i in range(size[c]):
                out[k] = high + np.int64(arr[off[c] + i])
                k += 1
    return out


@njit(cache=True)
def words_of(s):
    """(word, bits): the non-zero words of `s` as a plain bitmap of the u32 range would
    hold them (word_bit), in increasing order of word.

    >>> w, b = words_of(set_bits(new_set(), np.array([0, 3, 64, 4294967295], np.uint32)))
    >>> w.tolist(), b.tolist()
    ([0, 1, 67108863], [9, 1, 9223372036854775808])
    """
    size, off, words, arr, _ = s
    room = 0
    for c in range(CONTAINERS):
        room += CONTAINER_WORDS if size[c] < 0 else size[c]
    out_word = np.empty(room, dtype=np.uint32)
    out_bits = np.empty(room, dtype=np.uint64)
    k = 0
    for c in range(CONTAINERS):
        first = np.int64(c) * CONTAINER_WORDS
        if size[c] < 0:
            for j in range(CONTAINER_WORDS):
                if words[off[c] + j]:
                    out_word[k] = first + j
                    out_bits[k] = words[off[c] + j]
                    k += 1
        else:
            for i in range(size[c]):
                low = np.int64(arr[off[c] + i])
                w = first + (low >> 6)
                bit = np.uint64(1) << np.uint64(low & 63)
                if k > 0 and out_word[k - 1] == w:  # ids are sorted: same word, same run
                    out_bits[k - 1] |= bit
                else:
                    out_word[k] = w
                    out_bits[k] = bit
                    k += 1
    return out_word[:k].copy(), out_bits[:k].copy()


@njit(cache=True)
def set_words(s, word, bits):
    """`s` with the ids of plain-bitmap words added (the inverse of words_of); each
    word must be below 2**26. See `add` for the set it returns.

    >>> w, b = np.array([0, 1023, 1024], np.uint32), np.array([5, 1, 2], np.uint64)
    >>> s = set_words(new_set(), w, b)
    >>> slot_txs(s, count(s)).tolist()
    [0, 2, 65472, 65537]
    """
    for r in range(word.size):
        w = np.int64(word[r])
        b = bits[r]
        c = w >> 10
        size = s[0]
        if size[c] >= 0 and size[c] + np.int64(popcount(b)) > ARRAY_MAX:
            s = _reserve_words(s, CONTAINER_WORDS)
            _to_bitmap(s, c)
        size, off, words, _, _ = s
        if size[c] < 0:
            words[off[c] + (w & (CONTAINER_WORDS - 1))] |= b
            continue
        while b:
            s, _ = add(s, w * 64 + np.int64(trailing_zeros(b)))
            b &= b - np.uint64(1)
    return s


def nbytes(s: tuple[np.ndarray, ...]) -> int:
    """Memory a set holds (its arrays, room to grow included)."""
    return sum(a.nbytes for a in s)

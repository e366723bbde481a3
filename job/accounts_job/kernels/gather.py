"""Copying rejected lines out of a block, compiled: the `raw` column of the rejects."""

from __future__ import annotations

import numpy as np
from numba import njit

from .bytes import CR
from .lines import line_start


@njit(cache=True)
def gather_lines(data, ends, rows, limit):
    """The given lines of a block, copied out byte for byte as Arrow binary buffers
    (offsets, bytes), without their line ends (the LF and a CR before it).

    A line of `limit` bytes or more is too long (docs/rules.md §2.1): its first `limit`
    bytes are copied, a CR among them included, so its raw is exactly `limit` bytes long
    and every other raw is shorter.
    """
    n = rows.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        i = rows[j]
        s = line_start(ends, i)
        e = ends[i]
        if e - s >= limit:
            e = s + limit
        elif e > s and data[e - 1] == CR:
            e -= 1
        offsets[j + 1] = offsets[j] + e - s
    out = np.empty(offsets[n], dtype=np.uint8)
    for j in range(n):
        s = line_start(ends, rows[j])
        size = offsets[j + 1] - offsets[j]
        out[offsets[j] : offsets[j + 1]] = data[s : s + size]
    return offsets, out

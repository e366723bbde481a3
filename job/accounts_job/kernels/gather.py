"""Copying rejected lines out of a block, compiled: the `raw` column of the rejects."""

from __future__ import annotations

import numpy as np
from numba import njit

from .bytes import CR
from .lines import line_start


@njit(cache=True)
def gather_lines(data, ends, rows):
    """The given lines of a block, copied out as Arrow string buffers (offsets, bytes),
    with their CR line ends dropped, and which of them hold bytes past ASCII.

    Lines past ASCII are left empty: the caller decodes them (see engine/rejects.py's raw_lines).
    """
    n = rows.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    wide = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        i = rows[j]
        s = line_start(ends, i)
        e = ends[i]
        if e > s and data[e - 1] == CR:
            e -= 1
        for k in range(s, e):
            if data[k] >= 128:
                wide[j] = True
                break
        offsets[j + 1] = offsets[j] + (0 if wide[j] else e - s)
    out = np.empty(offsets[n], dtype=np.uint8)
    for j in range(n):
        if not wide[j]:
            i = rows[j]
            s = line_start(ends, i)
            size = offsets[j + 1] - offsets[j]
            out[offsets[j] : offsets[j + 1]] = data[s : s + size]
    return offsets, out, wide

"""The bytes the kernels look for, and the eight-bytes-at-a-time masks they test with.

One home for each: the parser, the line scanner, the first pass and the rejects all
read the same bytes, so they name them here.
"""

from __future__ import annotations

import numpy as np

# ASCII bytes of the CSV grammar (docs/rules.md §2.1, §2.3).
TAB = 9
LF = 10
CR = 13
SPACE = 32
QUOTE = 34
COMMA = 44
DOT = 46
ZERO = 48

# SWAR ("SIMD within a register") masks: a uint64 holds eight bytes, and these test all
# eight at once without a branch.
LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)  # the low seven bits of every byte
HIGH = np.uint64(0x8080808080808080)  # the high bit of every byte
ONES = np.uint64(0x0101010101010101)  # one in every byte
LFS = np.uint64(0x0A0A0A0A0A0A0A0A)  # an LF in every byte

"""Bit counting on 64-bit words, as single CPU instructions inside compiled kernels.

The kernels find line ends and digit runs eight bytes at a time; what is left is to count
bits in a word. LLVM has an instruction for each count, so we ask for it directly
instead of spelling the count out in shifts and masks.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of an unsigned integer."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


@intrinsic
def trailing_zeros(typingctx, x):
    """The number of zero bits below the lowest set bit; the bit width for zero."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen

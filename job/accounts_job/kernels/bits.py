"""Words and bit counts, as single CPU instructions inside compiled kernels.

The kernels find line ends and digit runs eight bytes at a time: they load eight bytes
from any byte offset, and count bits in a word. LLVM has an instruction for each, so we
ask for it directly instead of spelling it out in shifts and masks.
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


@intrinsic
def load_bytes8(typingctx, words, p):
    """The 8 bytes that start at byte offset p of a uint64 array's memory, as one
    little-endian word: a single unaligned load (x86 and ARM64 do these at full speed).
    The caller makes sure all 8 bytes lie inside the array."""
    if not (isinstance(words, types.Array) and isinstance(p, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        byte = ir.IntType(8).as_pointer()
        at = builder.gep(builder.bitcast(array.data, byte), [args[1]])
        return builder.load(builder.bitcast(at, ir.IntType(64).as_pointer()), align=1)

    return types.uint64(words, p), codegen

"""2^u for u <= 0 in Numba loops that the compiler can vectorise, without fastmath.

A call to the C library's ``exp`` inside a loop stops LLVM from vectorising it, and the
vector math libraries that would replace it come with fastmath (which reorders sums, so
results would change with the thread count and between processes). :func:`exp2_nonpositive`
is built from IEEE additions, multiplications and fused multiply-adds alone (an explicit fma is
correctly rounded by IEEE 754, unlike a contraction the compiler may or may not make), so a
loop over it vectorises (8 lanes with AVX-512) and gives the same bits on every machine:

    u = k + r,  k = round(u),  |r| <= 1/2  (both exact: k by the 1.5 * 2^52 rounding trick),
    2^u = 2^k p(r),  p = the degree-11 interpolant of 2^r at the Chebyshev points of [-1/2, 1/2]
                     (its relative error is 4.2e-18 there, computed in 40-digit arithmetic),
                     evaluated by Horner's rule in fused multiply-adds,

2^k written straight into the exponent bits. e^t is ``exp2_nonpositive(t * LOG2E)``; callers
fold LOG2E into their constants (for a Gaussian, -|x - y|^2 / (2 sigma^2) log2 e), so the
rounding of the argument is that of the product they form anyway. Measured against numpy's
exp2 on 10^6 points of [-1021, 0]: at most 1.0 ulp (tests/test_vector_exp.py). Below
u = -1021 (2^u < 4.5e-308, where the exponent bits would underflow) it returns 0.

Numba's on-disk cache keys a kernel on its own file: after editing this module, delete the
callers' cached kernels (``fpsolver/particles/__pycache__/*.nbi``, ``*.nbc``).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
ROUND = 6755399441055744.0              # 1.5 * 2^52: u + ROUND rounds u to an integer in the low bits
ROUND_BITS = int(np.float64(ROUND).view(np.int64))
U_MIN = -1021.0                         # 2^u is a normal double for u >= U_MIN
# p(r) = sum_j P[j] r^j (P[0] = 1 to the last bit)
P = (1.0, 0.6931471805599453, 0.24022650695910158, 0.055504108664821625, 0.009618129107587256,
     0.001333355814640647, 0.00015403530463724353, 1.5252733841556773e-05, 1.3215432535912375e-06,
     1.0178057087733941e-07, 7.074194297288521e-09, 4.4558179083360645e-10)


@intrinsic
def _bits_of(typingctx, x):
    """The int64 with the bits of the float64 x."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _float_of(typingctx, x):
    """The float64 with the bits of the int64 x."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a b + c rounded once (IEEE 754 fusedMultiplyAdd; llvm.fma)."""
    def codegen(context, builder, signature, args):
        return builder.fma(args[0], args[1], args[2])
    return types.float64(types.float64, types.float64, types.float64), codegen


@numba.njit(inline="always")
def exp2_nonpositive(u):
    """2^u for U_MIN <= u <= 0 to 1 ulp; 0 for u < U_MIN (see the module docstring)."""
    kk = u + ROUND
    r = u - (kk - ROUND)
    p = fma(P[11], r, P[10])
    p = fma(p, r, P[9])
    p = fma(p, r, P[8])
    p = fma(p, r, P[7])
    p = fma(p, r, P[6])
    p = fma(p, r, P[5])
    p = fma(p, r, P[4])
    p = fma(p, r, P[3])
    p = fma(p, r, P[2])
    p = fma(p, r, P[1])
    p = fma(p, r, P[0])
    two_k = _float_of((_bits_of(kk) - ROUND_BITS + 1023) << 52)
    return p * two_k if u >= U_MIN else 0.0


@numba.njit(cache=True)
def exp2_nonpositive_array(u, out):
    """out[i] = exp2_nonpositive(u[i]) (a vectorised loop; for tests)."""
    for i in range(u.size):
        out[i] = exp2_nonpositive(u[i])
    return out

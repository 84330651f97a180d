"""exp, log and log1p for the Numba kernels: the twins of ``_cython/fl_math.h``.

    from fastloss._numba._math import fexp, flog, flog1p

Call them from any ``@njit`` function (parallel, cached, with or without
``fastmath``) on a float32 or float64 scalar; float32 computes in float32
(every constant here is typed, nothing promotes to float64). The installed
llvmlite has no SVML, so ``np.exp`` in a Numba loop is a scalar libm call;
these are made of arithmetic, integer bit operations, ``llvm.fma`` and
selects, are inlined into the caller by LLVM, and a loop over them
vectorises (16 float32 / 8 float64 lanes with AVX-512). Accuracy and special
values are those of fl_math.h (below 1 ulp, libm semantics for NaN,
+-inf, 0, negatives, overflow and denormals), whose header comment explains
the algorithms; the code below follows it line by line, with the same
constants.

Reassociation (``reassoc`` in FASTMATH) cannot undo the range reductions:
the Cody-Waite steps are ``llvm.fma`` calls, which LLVM never splits, and the
exponent arithmetic happens on integers inside the intrinsics below. Callers
must not use blanket ``fastmath=True`` (its ``nnan``/``ninf`` would let LLVM
drop the NaN and inf selects); ``_jit.FASTMATH`` is fine.

Called from plain Python (or with ``NUMBA_DISABLE_JIT=1``) the names fall back
to NumPy's ``np.exp``/``np.log``/``np.log1p`` on the scalar.
"""
import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ._jit import FASTMATH

__all__ = ["fexp", "flog", "flog1p", "flog1p_unit"]


def fexp(x):
    """exp(x) for a float32 or float64 scalar (float32 stays float32)."""
    return np.exp(x)


def flog(x):
    """log(x) for a float32 or float64 scalar (float32 stays float32)."""
    return np.log(x)


def flog1p(x):
    """log1p(x) for a float32 or float64 scalar (float32 stays float32)."""
    return np.log1p(x)


def flog1p_unit(x):
    """log1p(x) for x in [0, 1] (the sigmoid losses' exp(-|z|)): fl_log1p_unitf."""
    return np.log1p(x)


def _logk(f, k):
    """k ln2 + log(1 + f) for f in [-1/4, 1/2] (the kernel of flog, flog1p)."""
    return k * np.log(2.0) + np.log1p(f)


# ------------------------------------------------------------- intrinsics
# Bit-level helpers, one per step of fl_math.h that needs integers. Each
# works for float32 (i32 bits) and float64 (i64 bits); the integer work stays
# in the float's own width so float32 lanes stay 16 wide.

_FLOATS = (types.float32, types.float64)


def _layout(fty):
    """(integer type, mantissa bits, exponent bias) of an LLVM float type."""
    if isinstance(fty, ir.FloatType):
        return ir.IntType(32), 23, 127
    return ir.IntType(64), 52, 1023


def _bits(fty, value):
    """The bits of the Python float ``value`` rounded to ``fty``, as an int."""
    if isinstance(fty, ir.FloatType):
        return int(np.float32(value).view(np.uint32))
    return int(np.float64(value).view(np.uint64))


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma)."""
    if a in _FLOATS and a == b == c:
        def codegen(context, builder, sig, args):
            ty = args[0].type
            name = "llvm.fma.f32" if isinstance(ty, ir.FloatType) else "llvm.fma.f64"
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ty, [ty, ty, ty]), name)
            return builder.call(fn, args)
        return a(a, b, c), codegen
    return None


if numba.config.DISABLE_JIT:  # pure Python (NUMBA_DISABLE_JIT=1): an intrinsic has no body
    def _fma(a, b, c):  # noqa: F811
        """a * b + c with one rounding (in float64), in the type of ``a``."""
        T = type(a)
        if math.isfinite(a) and math.isfinite(b) and math.isfinite(c):
            return T(float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))))
        return T(a * b + c)


@intrinsic
def _div(typingctx, a, b):
    """a / b as a bare fdiv: no zero check, whatever the caller's error_model."""
    if a in _FLOATS and a == b:
        def codegen(context, builder, sig, args):
            return builder.fdiv(args[0], args[1])
        return a(a, b), codegen
    return None


def _exp_n(builder, t):
    """n as i32 from t = 1.5 * 2^p + n (the low bits of t)."""
    ity, mant, _ = _layout(t.type)
    n = builder.sub(builder.bitcast(t, ity), ity(_bits(t.type, 1.5 * 2.0**mant)))
    return builder.trunc(n, ir.IntType(32)) if ity.width == 64 else n


@intrinsic
def _exp_nf(typingctx, t):
    """n as a float from t = 1.5 * 2^p + n."""
    if t in _FLOATS:
        def codegen(context, builder, sig, args):
            return builder.sitofp(_exp_n(builder, args[0]), args[0].type)
        return t(t), codegen
    return None


@intrinsic
def _exp_scale(typingctx, p, t):
    """p * 2^n for n from t as in _exp_nf, p in [0.7, 1.42]: 2^floor(n/2) is
    added to the exponent bits of p (exact), then one multiply by
    2^(n - floor(n/2)) rounds a denormal result once or overflows to inf."""
    if p in _FLOATS and p == t:
        def codegen(context, builder, sig, args):
            fty = args[0].type
            ity, mant, bias = _layout(fty)
            n = _exp_n(builder, args[1])
            n1 = builder.ashr(n, n.type(1))
            n2 = builder.sub(n, n1)
            if ity.width == 64:
                n1, n2 = builder.sext(n1, ity), builder.sext(n2, ity)
            p1 = builder.add(builder.bitcast(args[0], ity), builder.shl(n1, ity(mant)))
            s2 = builder.shl(builder.add(n2, ity(bias)), ity(mant))
            return builder.fmul(builder.bitcast(p1, fty), builder.bitcast(s2, fty))
        return p(p, t), codegen
    return None


def _split_bits(builder, x):
    """Bits of x plus those of 1.0 minus those of 0.75: the exponent field is
    then k with x = 2^k m, m in [0.75, 1.5)."""
    ity, _, _ = _layout(x.type)
    off = _bits(x.type, 1.0) - _bits(x.type, 0.75)
    return builder.add(builder.bitcast(x, ity), ity(off)), ity


@intrinsic
def _log_k(typingctx, x):
    """k as a float, x = 2^k m with m in [0.75, 1.5) (x positive normal)."""
    if x in _FLOATS:
        def codegen(context, builder, sig, args):
            ix, ity = _split_bits(builder, args[0])
            _, mant, bias = _layout(args[0].type)
            kb = builder.lshr(ix, ity(mant))
            if ity.width == 64:
                kb = builder.trunc(kb, ir.IntType(32))
            k = builder.sub(kb, kb.type(bias))
            return builder.sitofp(k, args[0].type)
        return x(x), codegen
    return None


@intrinsic
def _log_m(typingctx, x):
    """m in [0.75, 1.5), x = 2^k m (x positive normal)."""
    if x in _FLOATS:
        def codegen(context, builder, sig, args):
            ix, ity = _split_bits(builder, args[0])
            _, mant, _ = _layout(args[0].type)
            m = builder.add(builder.and_(ix, ity((1 << mant) - 1)),
                            ity(_bits(args[0].type, 0.75)))
            return builder.bitcast(m, args[0].type)
        return x(x), codegen
    return None


@intrinsic
def _pow2_neg_k(typingctx, u):
    """2^-k for u = 2^k m, m in [0.75, 1.5) (u positive normal, 2^-k normal)."""
    if u in _FLOATS:
        def codegen(context, builder, sig, args):
            iu, ity = _split_bits(builder, args[0])
            _, mant, bias = _layout(args[0].type)
            kb = builder.lshr(iu, ity(mant))  # k + bias
            return builder.bitcast(builder.shl(builder.sub(ity(2 * bias), kb), ity(mant)),
                                   args[0].type)
        return u(u), codegen
    return None


# ------------------------------------------------------------------ float32

_f = np.float32
_ONE32, _TWO32, _HALF32 = _f(1.0), _f(2.0), _f(0.5)
_INF32, _NINF32, _NAN32 = _f(np.inf), _f(-np.inf), _f(np.nan)
_LN2_HI32 = _f(float.fromhex("0x1.62e430p-1"))
_LN2_LO32 = _f(float.fromhex("-0x1.05c610p-29"))   # ln2 - ln2_hi
_LOG2E32 = _f(float.fromhex("0x1.715476p+0"))
_SHIFT32 = _f(float.fromhex("0x1.8p23"))           # 1.5 * 2^23
_EXP_LO32 = _f(-104.0)  # exp(-104) < 2^-150, half the least denormal: 0
_EXP_HI32 = _f(89.0)    # exp(89) > FLT_MAX: inf
_EXP_Q32 = tuple(_f(float.fromhex(h)) for h in (   # q(r) of degree 4, highest first
    "0x1.6d15f8p-10", "0x1.12105cp-7", "0x1.555516p-5", "0x1.5554d8p-3", "0x1.000000p-1"))
_LOG_P32 = tuple(_f(float.fromhex(h)) for h in (   # P(z) of degree 3, highest first
    "0x1.e6693ep-3", "0x1.242c76p-2", "0x1.999a6cp-2", "0x1.555556p-1"))
_MIN_NORMAL32 = _f(2.0**-126)
_DENORM_SCALE32, _DENORM_K32 = _f(2.0**25), _f(-25.0)
_BIG32 = _f(2.0**100)  # log1p above 2^100: scale by 2^-64 so 2^-k stays normal
_BIG_SCALE32, _BIG_K32 = _f(2.0**-64), _f(64.0)
_ZERO32, _MONE32 = _f(0.0), _f(-1.0)


def _exp32(x):
    xc = x if x > _EXP_LO32 else _EXP_LO32  # NaN -> low end, restored below
    xc = xc if xc < _EXP_HI32 else _EXP_HI32
    t = _fma(xc, _LOG2E32, _SHIFT32)        # 1.5 * 2^23 + rint(x / ln2)
    kf = _exp_nf(t)
    r = _fma(kf, -_LN2_HI32, xc)            # exact
    r = _fma(kf, -_LN2_LO32, r)
    q = _EXP_Q32[0]
    q = _fma(q, r, _EXP_Q32[1])
    q = _fma(q, r, _EXP_Q32[2])
    q = _fma(q, r, _EXP_Q32[3])
    q = _fma(q, r, _EXP_Q32[4])
    p = _fma(_fma(q, r, _ONE32), r, _ONE32)  # 1 + r + r^2 q
    y = _exp_scale(p, t)
    return y if x == x else x + x


def _logk32(f, k):
    s = _div(f, _TWO32 + f)
    z = s * s
    P = _LOG_P32[0]
    P = _fma(P, z, _LOG_P32[1])
    P = _fma(P, z, _LOG_P32[2])
    P = _fma(P, z, _LOG_P32[3])
    hf = _HALF32 * f
    a = _fma(s, _fma(z, P, hf * f), k * _LN2_LO32)
    lo = _fma(-hf, f, a)
    return _fma(k, _LN2_HI32, f + lo)


def _log32(x):
    tiny = x < _MIN_NORMAL32
    xs = x * _DENORM_SCALE32 if tiny else x
    kadj = _DENORM_K32 if tiny else _ZERO32
    k = _log_k(xs) + kadj
    f = _log_m(xs) - _ONE32                  # exact
    y = _logk(f, k)
    y = _NAN32 if x < _ZERO32 else y
    y = _NINF32 if x == _ZERO32 else y
    return y if x < _INF32 else x + x


def _log1p32(x):
    big = x > _BIG32
    xs = x * _BIG_SCALE32 if big else x
    kadj = _BIG_K32 if big else _ZERO32
    u = _ONE32 + xs                          # only its exponent is used
    k = _log_k(u) + kadj
    s = _pow2_neg_k(u)
    f = _fma(xs, s, s - _ONE32)              # (1 + x) 2^-k - 1, exact
    y = _logk(f, k)
    y = _NAN32 if x < _MONE32 else y
    y = _NINF32 if x == _MONE32 else y
    return y if x < _INF32 else x + x


_LOG1P_UNIT_S32 = tuple(_f(float.fromhex(h)) for h in (  # S(u) of degree 9, highest first
    "0x1.73b7d6p-9", "-0x1.2c13dep-8", "0x1.7a0aa0p-8", "-0x1.3d3934p-7", "0x1.135644p-6",
    "-0x1.da8c7cp-6", "0x1.a27862p-5", "-0x1.7dde6ep-4", "0x1.6f0d7cp-3", "-0x1.833706p-2"))


def _log1p_unit32(x):
    u = x - _HALF32
    S = _LOG1P_UNIT_S32[0]
    S = _fma(S, u, _LOG1P_UNIT_S32[1])
    S = _fma(S, u, _LOG1P_UNIT_S32[2])
    S = _fma(S, u, _LOG1P_UNIT_S32[3])
    S = _fma(S, u, _LOG1P_UNIT_S32[4])
    S = _fma(S, u, _LOG1P_UNIT_S32[5])
    S = _fma(S, u, _LOG1P_UNIT_S32[6])
    S = _fma(S, u, _LOG1P_UNIT_S32[7])
    S = _fma(S, u, _LOG1P_UNIT_S32[8])
    S = _fma(S, u, _LOG1P_UNIT_S32[9])
    return _fma(x, x * S, x)


# ------------------------------------------------------------------ float64

_d = np.float64
_ONE64, _TWO64, _HALF64 = _d(1.0), _d(2.0), _d(0.5)
_INF64, _NINF64, _NAN64 = _d(np.inf), _d(-np.inf), _d(np.nan)
_LN2_HI64 = _d(float.fromhex("0x1.62e42fefa39efp-1"))
_LN2_LO64 = _d(float.fromhex("0x1.abc9e3b39803fp-56"))
_LOG2E64 = _d(float.fromhex("0x1.71547652b82fep+0"))
_SHIFT64 = _d(float.fromhex("0x1.8p52"))
_EXP_LO64 = _d(-746.0)  # exp(-746) < 2^-1075: 0
_EXP_HI64 = _d(710.0)   # exp(710) > DBL_MAX: inf
_EXP_Q64 = tuple(_d(float.fromhex(h)) for h in (
    "0x1.af3cd7b3560d9p-26", "0x1.2894eb03786e2p-22", "0x1.71de0be80e7e8p-19",
    "0x1.a019b62aaa671p-16", "0x1.a01a01a83a3a3p-13", "0x1.6c16c1794bd5cp-10",
    "0x1.111111111091ap-7", "0x1.5555555553b72p-5", "0x1.5555555555556p-3",
    "0x1.0000000000001p-1"))
_LOG_P64 = tuple(_d(float.fromhex(h)) for h in (
    "0x1.16b140e6043a9p-3", "0x1.0e899991a1d04p-3", "0x1.3b29f3d254dfdp-3",
    "0x1.745cab60435b7p-3", "0x1.c71c72e23d47bp-3", "0x1.24924923dc35dp-2",
    "0x1.9999999999f2bp-2", "0x1.5555555555555p-1"))
_MIN_NORMAL64 = _d(2.0**-1022)
_DENORM_SCALE64, _DENORM_K64 = _d(2.0**54), _d(-54.0)
_BIG64 = _d(2.0**1000)
_BIG_SCALE64, _BIG_K64 = _d(2.0**-512), _d(512.0)
_ZERO64, _MONE64 = _d(0.0), _d(-1.0)


def _exp64(x):
    xc = x if x > _EXP_LO64 else _EXP_LO64
    xc = xc if xc < _EXP_HI64 else _EXP_HI64
    t = _fma(xc, _LOG2E64, _SHIFT64)
    kf = _exp_nf(t)
    r = _fma(kf, -_LN2_HI64, xc)
    r = _fma(kf, -_LN2_LO64, r)
    q = _EXP_Q64[0]
    q = _fma(q, r, _EXP_Q64[1])
    q = _fma(q, r, _EXP_Q64[2])
    q = _fma(q, r, _EXP_Q64[3])
    q = _fma(q, r, _EXP_Q64[4])
    q = _fma(q, r, _EXP_Q64[5])
    q = _fma(q, r, _EXP_Q64[6])
    q = _fma(q, r, _EXP_Q64[7])
    q = _fma(q, r, _EXP_Q64[8])
    q = _fma(q, r, _EXP_Q64[9])
    p = _fma(_fma(q, r, _ONE64), r, _ONE64)
    y = _exp_scale(p, t)
    return y if x == x else x + x


def _logk64(f, k):
    s = _div(f, _TWO64 + f)
    z = s * s
    P = _LOG_P64[0]
    P = _fma(P, z, _LOG_P64[1])
    P = _fma(P, z, _LOG_P64[2])
    P = _fma(P, z, _LOG_P64[3])
    P = _fma(P, z, _LOG_P64[4])
    P = _fma(P, z, _LOG_P64[5])
    P = _fma(P, z, _LOG_P64[6])
    P = _fma(P, z, _LOG_P64[7])
    hf = _HALF64 * f
    a = _fma(s, _fma(z, P, hf * f), k * _LN2_LO64)
    lo = _fma(-hf, f, a)
    return _fma(k, _LN2_HI64, f + lo)


def _log64(x):
    tiny = x < _MIN_NORMAL64
    xs = x * _DENORM_SCALE64 if tiny else x
    kadj = _DENORM_K64 if tiny else _ZERO64
    k = _log_k(xs) + kadj
    f = _log_m(xs) - _ONE64
    y = _logk(f, k)
    y = _NAN64 if x < _ZERO64 else y
    y = _NINF64 if x == _ZERO64 else y
    return y if x < _INF64 else x + x


def _log1p64(x):
    big = x > _BIG64
    xs = x * _BIG_SCALE64 if big else x
    kadj = _BIG_K64 if big else _ZERO64
    u = _ONE64 + xs
    k = _log_k(u) + kadj
    s = _pow2_neg_k(u)
    f = _fma(xs, s, s - _ONE64)
    y = _logk(f, k)
    y = _NAN64 if x < _MONE64 else y
    y = _NINF64 if x == _MONE64 else y
    return y if x < _INF64 else x + x


# ---------------------------------------------------------------- overloads

_IMPLS = {
    fexp: {types.float32: _exp32, types.float64: _exp64},
    flog: {types.float32: _log32, types.float64: _log64},
    flog1p: {types.float32: _log1p32, types.float64: _log1p64},
    flog1p_unit: {types.float32: _log1p_unit32, types.float64: _log1p64},
}
# Numba-IR inlining (inline="always") of these selects trips Numba's SSA
# checks (NumbaIRAssumptionWarning); LLVM inlines them anyway.
_OPTIONS = dict(inline="never", jit_options={"fastmath": FASTMATH})


def _register(stub, impls):
    @overload(stub, **_OPTIONS)
    def _ol(x):
        return impls.get(x)


for _stub, _impls in _IMPLS.items():
    _register(_stub, _impls)


@overload(_logk, **_OPTIONS)
def _ol_logk(f, k):
    if f == k:
        return {types.float32: _logk32, types.float64: _logk64}.get(f)
    return None

"""Elementwise kernels in Numba: the twins of ``fastloss/_cython/_elementwise.pyx``.

Same design, same names, same order as the Cython file (see its docstring):
one closed-form point function per loss returns (loss, gradient, Hessian) of
one element; ``point_loop`` runs the chosen one over a block of elements into
scratch buffers (one branch per block, so each loop is specialised and
vectorises); ``finish`` applies the multiplier and the scale and writes the
outputs or the block's partial sum. Point functions compute in the input's
dtype (``T``); partial sums in float64.
"""
import numpy as np
from numba import prange

from .._backend import numba_threads
from ._jit import kernel, point, readonly
from ._math import _fma, fexp, flog, flog1p

BCE, SIGMOID_FOCAL, HUBER, MSE, L1, PINBALL = range(6)


# -- point functions: (loss, gradient, Hessian) of one element -----------------
@point
def sigmoid_parts(x):
    """e = exp(-|x|), s2 = s(x) s(-x), s(x), s(-x), log1p(e): exact in both tails."""
    T = type(x)
    e = fexp(-abs(x))
    inv = T(1) / (T(1) + e)
    pos = x >= 0
    sig = inv if pos else e * inv
    sig_neg = e * inv if pos else inv
    return e, e * inv * inv, sig, sig_neg, flog1p(e)


@point
def bce_point(x, t, pw):
    """l = pw t softplus(-x) + (1-t) softplus(x); g = (1-t) s(x) - pw t s(-x); h = (1-t+pw t) s(x) s(-x)."""
    T = type(x)
    e, s2, sig, sig_neg, lp = sigmoid_parts(x)
    zero = T(0)
    sp = (x if x > zero else zero) + lp  # softplus(x)
    sp_neg = (-x if x < zero else zero) + lp  # softplus(-x)
    u = T(1) - t
    return (
        pw * t * sp_neg + u * sp,
        u * sig - pw * t * sig_neg,
        s2 + (pw - T(1)) * t * s2,  # exactly s2 for pw = 1, as focal at gamma = 0
    )


@point
def sigmoid_focal_point(x, t, alpha, gamma, square):
    """torchvision's focal loss alpha_t BCE(x, t) q^gamma, q = 1 - p_t, in log space.

    q = t s(-x) + (1-t) s(x) = (c e + 1 - c) / (1 + e) with c the target weight
    of the small sigmoid (t for x >= 0, 1 - t below); log q = log(c e + 1 - c)
    - log1p(e), where c = 1 gives log(e) = -|x| (no log of 0); c e + 1 - c is
    one fma, so that reassociation cannot turn it into c (e - 1) + 1, which
    loses e when it is tiny. With
    r = s(x) s(-x) / q (bounded by 1) and F = q^gamma:
      g = alpha_t F H,  H = d1 + gamma (1-2t) ce r,   d1 = (1-t) s(x) - t s(-x)
      h = alpha_t F (gamma (1-2t) r H + s2 + gamma (1-2t) (d1 r + ce r'))
      r' = r (s(-x) - s(x)) - (1-2t) r^2,  s2 = s(x) s(-x)
    ``square`` (gamma = 2, the default) takes F = q q with q = den / (1 + e),
    as accurate and a log and an exp cheaper.
    """
    T = type(x)
    e, s2, sig, sig_neg, lp = sigmoid_parts(x)
    zero = T(0)
    one = T(1)
    ax = abs(x)
    u = one - t
    ce = t * ((-x if x < zero else zero) + lp) + u * ((x if x > zero else zero) + lp)
    d1 = u * sig - t * sig_neg
    c = t if x >= zero else u
    den = _fma(c, e, one - c)
    big = sig if x >= zero else sig_neg  # 1 / (1 + e)
    r = e * big / den if den > zero else big
    if square:
        q = den * big
        f = q * q
    else:
        f = fexp(T(gamma) * ((-ax if c == one else flog(den)) - lp))
    a = T(alpha) * t + (one - T(alpha)) * u if alpha >= 0 else one
    k = T(gamma) * (one - T(2) * t)
    h_ = d1 + k * ce * r
    dr = r * (sig_neg - sig) - (one - T(2) * t) * r * r
    af = a * f
    return af * ce, af * h_, af * (k * r * h_ + s2 + k * (d1 * r + ce * dr))


@point
def huber_point(x, t, delta, factor):
    """d = x - t: 0.5 d^2 inside |d| < delta, delta (|d| - delta/2) outside; times factor."""
    T = type(x)
    d = x - t
    ad = abs(d)
    dl = T(delta)
    f = T(factor)
    outside = ad >= dl  # false for NaN, which then flows through d
    return (
        f * (dl * (ad - T(0.5) * dl) if outside else T(0.5) * d * d),
        f * (dl if d >= dl else (-dl if d <= -dl else d)),
        T(0) if outside else f,
    )


@point
def mse_point(x, t):
    d = x - t
    return d * d, d + d, type(x)(2)


@point
def l1_point(x, t):
    T = type(x)
    d = x - t
    return abs(d), (T(1) if d > 0 else (T(-1) if d < 0 else T(0))), T(0)


@point
def pinball_point(x, t, q):
    """max(q (t - x), (q - 1)(t - x)); gradient -q below t, 1 - q from t up (NaN for NaN)."""
    T = type(x)
    d = t - x
    return (
        q * d if x < t else (q - T(1)) * d,
        -q if x < t else (T(1) - q if x >= t else d),
        T(0),
    )


# -- one block -------------------------------------------------------------------
# Blocks are passed as slices and indexed by ``range(n)`` variables: Numba then
# knows every index is non-negative and emits no wraparound select (a factor
# of five in these loops).
@point
def point_loop(kind, x, t, aux, p1, p2, lb, gb, hb):
    """The point function of ``kind`` over the block x, t into the scratch buffers."""
    scalar = aux.size == 1
    if kind == BCE:
        if scalar:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = bce_point(x[k], t[k], aux[0])
        else:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = bce_point(x[k], t[k], aux[k])
    elif kind == SIGMOID_FOCAL:
        if p2 == 2.0:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = sigmoid_focal_point(x[k], t[k], p1, 2.0, True)
        else:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = sigmoid_focal_point(x[k], t[k], p1, p2, False)
    elif kind == HUBER:
        for k in range(x.size):
            lb[k], gb[k], hb[k] = huber_point(x[k], t[k], p1, p2)
    elif kind == MSE:
        for k in range(x.size):
            lb[k], gb[k], hb[k] = mse_point(x[k], t[k])
    elif kind == L1:
        for k in range(x.size):
            lb[k], gb[k], hb[k] = l1_point(x[k], t[k])
    elif kind == PINBALL:
        if scalar:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = pinball_point(x[k], t[k], aux[0])
        else:
            for k in range(x.size):
                lb[k], gb[k], hb[k] = pinball_point(x[k], t[k], aux[k])


@point
def finish(lb, gb, hb, n, m, scale, grad, hess, rows):
    """Multiply by m (if any), write k * grad and k * hess, and the losses or their sum."""
    T = lb.dtype.type
    fs = T(scale)
    if m.size > 0:
        for k in range(n):
            w = m[k]
            lb[k] *= w
            gb[k] *= w
            hb[k] *= w
    if grad.size > 0:
        for k in range(n):
            grad[k] = gb[k] * fs
    if hess.size > 0:
        for k in range(n):
            hess[k] = hb[k] * fs
    s = 0.0
    if rows.size > 0:
        for k in range(n):
            rows[k] = lb[k]
    else:
        for k in range(n):
            s += lb[k]
    return s


@kernel
def _elementwise(kind, x, t, aux, m, p1, p2, scale, block, none, grad, hess, rows, n_threads):
    size = x.size
    n_blocks = (size + block - 1) // block
    # One prange iteration per thread, each with its own scratch; blocks are
    # dealt round-robin, and each block's partial sum lands in its own slot.
    for tid in prange(n_threads):
        lb = np.empty(block, x.dtype)
        gb = np.empty(block, x.dtype)
        hb = np.empty(block, x.dtype)
        for b in range(tid, n_blocks, n_threads):
            lo = b * block
            hi = min(lo + block, size)
            point_loop(kind, x[lo:hi], t[lo:hi], aux[lo:hi] if aux.size > 1 else aux,
                       p1, p2, lb, gb, hb)
            s = finish(lb, gb, hb, hi - lo, m[lo:hi], scale, grad[lo:hi], hess[lo:hi],
                       rows[lo:hi] if none else rows[:0])
            if not none:
                rows[b] = s


def elementwise(kind, x, t, aux, m, p1, p2, scale, block, none, grad, hess, rows, n_threads):
    n_threads = numba_threads(n_threads)
    _elementwise(kind, *readonly(x, t, aux, m), p1, p2, scale, block, none, grad, hess, rows,
                 n_threads)

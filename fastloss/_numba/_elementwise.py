"""Elementwise kernels in Numba: the twins of ``fastloss/_cython/_elementwise.pyx``.

Same design, same names, same order as the Cython file (see its docstring):
one closed-form point function per loss returns (loss, gradient, Hessian) of
one element; ``point_loop`` runs the chosen one over a block of elements,
the gradient and Hessian straight into the outputs (one branch per block, so
each loop is specialised and vectorises), the losses into scratch, which is
then written out or summed. Without a multiplier, m reaches the kernel as
None, so Numba compiles a loop without the multiply (see ``_jit.part``).
Point functions compute in the input's dtype (``T``); partial sums in
float64.
"""
import numpy as np
from numba import prange, types
from numba.extending import overload

from .._backend import numba_threads
from ._jit import (kernel, or_scratch, part, part_or, pick, point, put_back, readonly,
                   serial_kernel, store, weight)
from ._math import _fma, fexp, flog, flog1p_unit

BCE, SIGMOID_FOCAL, HUBER, MSE, L1, PINBALL = range(6)
TAIL = 64  # a multiple of every vector length times LLVM's interleave (16 x 4 float32 lanes)


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
    return e, e * inv * inv, sig, sig_neg, flog1p_unit(e)


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
    c = -dl if d < -dl else d  # d clipped to [-dl, dl]: a max and a min
    c = dl if c > dl else c
    return (
        f * (dl * (ad - T(0.5) * dl) if outside else T(0.5) * d * d),
        f * c,
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
def weighted(v, m, k):
    """v m[k] with one rounding, or v itself without m (None)."""
    return v if m is None else v * m[k]


@overload(weighted, inline="always")
def _weighted(v, m, k):
    if isinstance(m, types.NoneType):
        return lambda v, m, k: v
    return lambda v, m, k: _fma(v, m[k], type(v)(0))


@point
def put(k, lgh, m, fs, lb, gb, hb):
    """Element k's (loss, grad, hess) times w = m[k] (1 without m), the derivatives
    also times fs; no Hessian where hb is None.

    The products are fmas with a zero addend: with ``reassoc`` LLVM may regroup
    a chain of multiplies, and would regroup the one ending in m[k] (a load)
    and the one ending in 1 differently; an fma is never regrouped, and no
    multiply is fused into it, so weights of one give the bits of no weights."""
    l, g, h = lgh
    T = type(l)
    wf = weight(m, k, T(1)) * fs
    lb[k] = weighted(l, m, k)
    gb[k] = _fma(g, wf, T(0))
    store(hb, k, _fma(h, wf, T(0)))


@serial_kernel  # not inlined: called for the body and the padded tail, compiled once
def point_loop(kind, x, t, aux, m, p1, p2, fs, lb, gb, hb, hs):
    """The point function of ``kind`` over the block x, t, straight into the outputs.

    One loop per loss (the branch is taken once per block, so each loop is
    specialised and vectorises). Without a Hessian (hb None) the sigmoid losses
    still compute theirs, into the scratch hs: their loss and gradient share
    terms with it, and LLVM would contract a loop without it differently
    (.loss_grad must give the gradient of .grad_hess bit for bit). The other
    losses' Hessians are constants or selects that share nothing: skipped.
    """
    scalar = aux.size == 1
    if kind == BCE:
        hb = or_scratch(hb, hs)
        if scalar:
            for k in range(x.size):
                put(k, bce_point(x[k], t[k], aux[0]), m, fs, lb, gb, hb)
        else:
            for k in range(x.size):
                put(k, bce_point(x[k], t[k], aux[k]), m, fs, lb, gb, hb)
    elif kind == SIGMOID_FOCAL:
        hb = or_scratch(hb, hs)
        if p2 == 2.0:
            for k in range(x.size):
                put(k, sigmoid_focal_point(x[k], t[k], p1, 2.0, True), m, fs, lb, gb, hb)
        else:
            for k in range(x.size):
                put(k, sigmoid_focal_point(x[k], t[k], p1, p2, False), m, fs, lb, gb, hb)
    elif kind == HUBER:
        for k in range(x.size):
            put(k, huber_point(x[k], t[k], p1, p2), m, fs, lb, gb, hb)
    elif kind == MSE:
        for k in range(x.size):
            put(k, mse_point(x[k], t[k]), m, fs, lb, gb, hb)
    elif kind == L1:
        for k in range(x.size):
            put(k, l1_point(x[k], t[k]), m, fs, lb, gb, hb)
    elif kind == PINBALL:
        if scalar:
            for k in range(x.size):
                put(k, pinball_point(x[k], t[k], aux[0]), m, fs, lb, gb, hb)
        else:
            for k in range(x.size):
                put(k, pinball_point(x[k], t[k], aux[k]), m, fs, lb, gb, hb)


@point
def block_sum(a):
    s = 0.0
    for k in range(a.size):
        s += a[k]
    return s


@kernel
def _elementwise(kind, x, t, aux, m, tail, p1, p2, scale, block, none, grad, hess, rows,
                 n_threads):
    size = x.size
    n_blocks = (size + block - 1) // block
    fs = x.dtype.type(scale)
    xt, tt, at, mt = tail
    # One prange iteration per thread; blocks are dealt round-robin, and each
    # block's partial sum lands in its own slot (summed in a fixed order by the
    # caller): results do not depend on the thread count. The losses go to
    # scratch and are summed by a loop of their own, not inside the point
    # loop: a float64 accumulator there would halve the loop's vector width,
    # and a loop that stores may take LLVM's scalar fallback (when its runtime
    # alias check cannot rule out an overlap), which sums in another order.
    # The gradient is always computed (into scratch for .loss): LLVM could
    # contract a loop without it differently, and .loss must give the loss of
    # .loss_grad bit for bit (the Hessian: see point_loop). The point loop only
    # ever runs on a multiple of TAIL elements, as in the Cython file: the
    # last size % TAIL elements come zero-padded in ``tail``, so none of them
    # takes LLVM's scalar remainder loop (which may round differently) and an
    # element's result does not depend on its position.
    for tid in prange(n_threads):
        lbuf = np.empty(block + TAIL, x.dtype)
        gbuf = np.empty(block, x.dtype)
        hbuf = np.empty(block, x.dtype)
        gt = np.empty(TAIL, x.dtype)
        ht = np.empty(TAIL, x.dtype)
        for b in range(tid, n_blocks, n_threads):
            lo = b * block
            hi = min(lo + block, size)
            mid = hi - (hi - lo) % TAIL
            point_loop(kind, x[lo:mid], t[lo:mid], aux[lo:mid] if aux.size > 1 else aux,
                       part(m, lo, mid), p1, p2, fs, lbuf[:mid - lo],
                       part_or(grad, lo, mid, gbuf), part(hess, lo, mid), hbuf)
            if mid < hi:
                point_loop(kind, xt, tt, at, mt, p1, p2, fs, lbuf[mid - lo:mid - lo + TAIL],
                           gt, pick(hess, ht), hbuf)
                put_back(grad, mid, gt[:hi - mid])
                put_back(hess, mid, ht[:hi - mid])
            if none:
                rows[lo:hi] = lbuf[:hi - lo]
            else:
                rows[b] = block_sum(lbuf[:hi - lo])


def _padded_tail(a, r):
    """The last r elements of a, zero-padded to TAIL."""
    out = np.zeros(TAIL, a.dtype)
    out[:r] = a[a.size - r:]
    return out


def elementwise(kind, x, t, aux, m, p1, p2, scale, block, none, grad, hess, rows, n_threads):
    """Empty m, grad, hess: no multiplier, gradient, Hessian (None in the kernel,
    see _jit.part). No output may share memory with an input (the caller sees to
    it: out=input goes through a copy)."""
    if block % TAIL:
        raise ValueError(f"block: must be a multiple of {TAIL}, got {block}")
    r = x.size % TAIL
    at = aux if aux.size == 1 else _padded_tail(aux, r)
    tail = (*readonly(_padded_tail(x, r), _padded_tail(t, r), at),
            readonly(_padded_tail(m, r))[0] if m.size else None)
    _elementwise(kind, *readonly(x, t, aux), readonly(m)[0] if m.size else None, tail, p1,
                 p2, scale, block, none, grad if grad.size else None,
                 hess if hess.size else None, rows, numba_threads(n_threads))

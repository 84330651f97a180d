"""Pairwise kernels in Numba: the twins of ``fastloss/_cython/_pairwise.pyx``.

Same design, same names, same order as the Cython file (see its docstring):
one row per ``prange`` iteration (margin ranking: one block of elements, with
one partial sum per block unless ``reduction="none"``); one point function per
loss returns the row's loss and writes k * gradient into the row's gradient
views (empty views: no gradient); sweep 1 computes the distances (double sums of
input-precision components, float64 rows rescaled where the sum of squares
overflows or underflows), sweep 2 the gradients, reading every input at j
before writing at j so that ``out=`` may be the inputs. v = (x - y) + eps is
one ``llvm.fma`` with a runtime multiplier ``one`` (= 1), which ``reassoc``
cannot rewrite as (x + eps) - y. Per-row losses go to ``rows`` in float64,
reduced by the caller in a fixed order.
"""
import math
import sys

import numba
import numpy as np
from numba import prange

from .._backend import numba_threads
from ._jit import kernel, point, readonly, serial_kernel
from ._math import _fma

P_ZERO, P_ONE, P_TWO, P_INF, P_GENERAL = range(5)

HUGE_SUM = 1e300  # above: a float64 sum of squares may have overflowed
TINY_SUM = 1e-290  # below: it may have lost digits to denormals (or be 0 from underflow)
DBL_MAX = sys.float_info.max
#: widening: inside Numba, float() of a float32 stays float32; np.float64() widens
f64 = np.float64


# -- one row's norm and its gradient ---------------------------------------------
@point
def diff(x, y, eps, one):
    """v = (x - y) + eps, rounded as written (see the module docstring)."""
    return _fma(x - y, one, eps)


if numba.config.DISABLE_JIT:  # pure Python (NUMBA_DISABLE_JIT=1): _fma has no Python body
    def diff(x, y, eps, one):  # noqa: F811 - the same value: one is 1, x - y is rounded once
        return (x - y) * one + eps


@point
def absmax(x, y, eps, one, want_ties):
    """(max_j |v_j| (NaN if any v_j is NaN), how many reach it if want_ties else 1)."""
    nan = 0
    m = 0.0
    for j in range(x.size):
        a = abs(f64(diff(x[j], y[j], eps, one)))
        if a != a:
            nan += 1
        m = a if a > m else m
    ties = 1  # when not counted (or NaN): 1, so that 1 / ties stays finite
    if nan:
        return math.nan, ties
    if want_ties:
        ties = 0
        for j in range(x.size):
            if abs(f64(diff(x[j], y[j], eps, one))) == m:
                ties += 1
    return m, ties


@point
def scaled_l2(x, y, eps, one):
    """||x - y + eps||_2 as m ||v / m||_2, m = max |v|: no overflow, no denormals."""
    m, _ = absmax(x, y, eps, one, False)
    if m == 0.0 or m > DBL_MAX:
        return m
    s = 0.0
    for j in range(x.size):
        v = f64(diff(x[j], y[j], eps, one)) / m
        s += v * v
    return m * math.sqrt(s)


@serial_kernel  # not inlined into Numba's IR: three call sites, compiled once
def pdist(x, y, eps, one, kind, p):
    """(d = ||x - y + eps||_p of one row in float64, ties at the max for p = inf)."""
    s = 0.0
    if kind == P_TWO:
        for j in range(x.size):
            w = f64(diff(x[j], y[j], eps, one))
            s += w * w
        # float32 squares neither overflow nor underflow in float64; a float64
        # sum that did is redone with the row scaled by its largest |v|
        if x.itemsize == 8 and not (s != s or TINY_SUM <= s <= HUGE_SUM):
            return scaled_l2(x, y, eps, one), 1
        return math.sqrt(s), 1
    if kind == P_ONE:
        for j in range(x.size):
            s += abs(f64(diff(x[j], y[j], eps, one)))
        return s, 1
    if kind == P_ZERO:
        for j in range(x.size):
            w = f64(diff(x[j], y[j], eps, one))
            if w != 0.0:
                s += 1.0 if w == w else w  # NaN stays NaN
        return s, 1
    m, ties = absmax(x, y, eps, one, kind == P_INF)
    if kind == P_INF or m == 0.0 or m != m or m > DBL_MAX:
        return m, ties
    for j in range(x.size):
        s += math.pow(abs(f64(diff(x[j], y[j], eps, one))) / m, p)
    return m * math.pow(s, 1.0 / p), ties


@point
def inverse(d):
    """1 / d; 0 for d = 0 (the gradient of a norm at v = 0 is 0), NaN for NaN."""
    return 1.0 / d if d > 0.0 else (0.0 if d == 0.0 else d)


@point
def dnorm(v, d, inv, kind, p, inv_ties):
    """d ||v||_p / d v_j for one component v = v_j of a row whose norm is d.

    inv = 1 / d (0 when d = 0: the gradient at v = 0 is 0, as PyTorch's);
    inv_ties = 1 / (number of |v_j| equal to the maximum) for p = inf.
    """
    fv = f64(v)
    a = abs(fv)
    sgn = 1.0 if fv > 0.0 else (-1.0 if fv < 0.0 else fv * 0.0)
    if kind == P_TWO:
        return fv * inv
    if kind == P_ONE:
        return sgn
    if kind == P_ZERO:
        return 0.0
    if kind == P_INF:
        return sgn * inv_ties if a == d else 0.0
    return sgn * math.pow(a * inv, p - 1.0) if a > 0.0 else sgn  # (|v| / d)^(p-1) <= 1


# -- point functions: one row each ------------------------------------------------
@point
def triplet_row(a, pos, neg, ga, gp, gn, margin, kind, p, eps, one, swap, k):
    """max(0, margin + d(a, p) - d_neg), d_neg = d(a, n), or min(d(a, n), d(p, n)) with swap.

    With u_xy = d d(x, y) / d v (v = x - y + eps) and the hinge active (z >= 0,
    PyTorch passes the gradient at 0), c_an / c_pn the shares of d_neg (1 / 0,
    0 / 1 when swapped, 1/2 each on a tie, as torch.min):
      g_a = k (u_ap - c_an u_an),  g_p = -k (u_ap + c_pn u_pn),  g_n = k (c_an u_an + c_pn u_pn)
    """
    D = a.size
    d_ap, t_ap = pdist(a, pos, eps, one, kind, p)
    d_an, t_an = pdist(a, neg, eps, one, kind, p)
    d_pn = 0.0
    t_pn = 1
    d_neg = d_an
    c_an = 1.0
    c_pn = 0.0
    if swap:
        d_pn, t_pn = pdist(pos, neg, eps, one, kind, p)
        if d_pn < d_an:
            d_neg = d_pn
            c_an = 0.0
            c_pn = 1.0
        elif d_pn == d_an:
            c_an = 0.5
            c_pn = 0.5
    z = margin + d_ap - d_neg
    if ga.size == 0:
        return z if not z < 0.0 else 0.0
    if z < 0.0:  # inactive: a zero gradient (NaN z keeps going and spreads NaN)
        for j in range(D):
            ga[j] = 0.0
            gp[j] = 0.0
            gn[j] = 0.0
        return 0.0
    i_ap = inverse(d_ap)
    i_an = inverse(d_an)
    i_pn = inverse(d_pn)
    if kind == P_TWO:
        w_ap = k * i_ap  # used as temporary: k u = k v / d
        w_an = k * c_an * i_an
        w_pn = k * c_pn * i_pn
        if c_pn == 0.0:
            for j in range(D):
                xa = a[j]  # read all three before writing: out may be the inputs
                xp = pos[j]
                xn = neg[j]
                v1 = diff(xa, xp, eps, one)
                v2 = diff(xa, xn, eps, one)
                ga[j] = w_ap * v1 - w_an * v2  # gradient
                gp[j] = -w_ap * v1
                gn[j] = w_an * v2
        else:
            for j in range(D):
                xa = a[j]
                xp = pos[j]
                xn = neg[j]
                v1 = diff(xa, xp, eps, one)
                v2 = diff(xa, xn, eps, one)
                v3 = diff(xp, xn, eps, one)
                ga[j] = w_ap * v1 - w_an * v2
                gp[j] = -w_ap * v1 - w_pn * v3
                gn[j] = w_an * v2 + w_pn * v3
        return z
    w_ap = k
    w_an = k * c_an
    w_pn = k * c_pn
    for j in range(D):
        xa = a[j]  # read all three before writing: out may be the inputs
        xp = pos[j]
        xn = neg[j]
        u1 = w_ap * dnorm(diff(xa, xp, eps, one), d_ap, i_ap, kind, p, 1.0 / t_ap)
        u2 = 0.0
        u3 = 0.0
        if c_an != 0.0:
            u2 = w_an * dnorm(diff(xa, xn, eps, one), d_an, i_an, kind, p, 1.0 / t_an)
        if c_pn != 0.0:
            u3 = w_pn * dnorm(diff(xp, xn, eps, one), d_pn, i_pn, kind, p, 1.0 / t_pn)
        ga[j] = u1 - u2  # gradient
        gp[j] = -u1 - u3
        gn[j] = u2 + u3
    return z


@point
def contrastive_row(x1, x2, g1, g2, y, margin, k, zero, one):
    """1/2 y d^2 + 1/2 (1 - y) max(0, m - d)^2, d = ||x1 - x2||_2.

    g1 = -g2 = k c v, v = x1 - x2, c = y - (1 - y) (m - d) / d where m > d
    (c = y where the hinge is inactive, and at d = 0, where v = 0 anyway).
    d^2 is the sum of squares itself, never sqrt(s)^2.
    """
    D = x1.size
    s = 0.0
    for j in range(D):
        v = f64(x1[j] - x2[j])
        s += v * v
    d = math.sqrt(s)
    # (a dissimilar pair at d = inf costs 0, not 0 * inf; a NaN still propagates)
    loss = 0.5 * y * s if y != 0 or s != s else 0.0
    if x1.itemsize == 8 and not (s != s or TINY_SUM <= s <= HUGE_SUM):  # as pdist
        d = scaled_l2(x1, x2, zero, one)
        loss = (0.5 * y * d) * d if y != 0 or d != d else 0.0
    h = margin - d
    c = y
    if h > 0.0:
        loss += 0.5 * (1.0 - y) * h * h  # loss
        if d > 0.0:
            c = y - (1.0 - y) * h / d  # used as temporary
    elif d != d:
        c = d
    if g1.size > 0:
        c *= k
        for j in range(D):
            v = x1[j] - x2[j]  # both read before writing: out may be the inputs
            g1[j] = c * v
            g2[j] = -c * v
    return loss


@point
def ranking_block(x1, x2, y, sw, margin, scale, g1, g2, rows):
    """max(0, margin - y (x1 - x2)) of a block into rows (or, rows empty, their sum);
    g1 = -g2 = -y k where the hinge is >= 0 (PyTorch passes it at 0); NaN stays NaN.

    The twin of FL_RANKING_SWEEP in the Cython file. Blocks arrive as slices indexed
    by range(n): no wraparound selects, and the loop vectorises (selects, no branches).
    """
    # One loop per case, each touching only the arrays it uses: an array the
    # loop never reads or writes (an empty ``sw``, ``rows[:0]``, absent
    # gradients) would still enter LLVM's runtime alias check, with the loop's
    # length, and whenever the allocator put it within a block's length of a
    # gradient the sum fell back to the scalar loop: another summation order,
    # other bits (seen from worker threads, whose arenas mix small and large
    # arrays).
    n = x1.size
    s = 0.0
    if rows.size > 0:  # reduction="none": no sum, no order to protect
        for i in range(n):
            w = f64(sw[i]) if sw.size > 0 else 1.0
            rows[i] = ranking_point(x1[i] - x2[i], f64(y[i]), w, margin, scale, g1, g2, i,
                                    g1.size > 0)
    elif sw.size > 0:
        if g1.size > 0:
            for i in range(n):
                s += ranking_point(x1[i] - x2[i], f64(y[i]), f64(sw[i]), margin, scale,
                                   g1, g2, i, True)
        else:
            for i in range(n):
                s += ranking_point(x1[i] - x2[i], f64(y[i]), f64(sw[i]), margin, scale,
                                   g1, g2, i, False)
    elif g1.size > 0:
        for i in range(n):
            s += ranking_point(x1[i] - x2[i], f64(y[i]), 1.0, margin, scale, g1, g2, i, True)
    else:
        for i in range(n):
            s += ranking_point(x1[i] - x2[i], f64(y[i]), 1.0, margin, scale, g1, g2, i, False)
    return s


@point
def ranking_point(d, yi, w, margin, scale, g1, g2, i, has_g):
    """One element of ranking_block: its loss, and its gradients when has_g."""
    z = margin - yi * d
    k = yi * scale * w
    if has_g:  # each its own select: no -0 where the hinge is off
        g1[i] = -k if z >= 0.0 else (0.0 if z < 0.0 else z)
        g2[i] = k if z >= 0.0 else (0.0 if z < 0.0 else z)
    return (0.0 if z < 0.0 else z) * w


# -- kernels: prange over rows -----------------------------------------------------
@kernel
def _triplet(a, pos, neg, sw, margin, kind, p, eps, swap, one, scale, ga, gp, gn, rows):
    n = a.shape[0]
    T = a.dtype.type
    e = T(eps)
    o = T(one)
    has_sw = sw.size > 0
    for i in prange(n):
        k = scale * (f64(sw[i]) if has_sw else 1.0)
        loss = triplet_row(a[i], pos[i], neg[i], ga[i], gp[i], gn[i], margin, kind, p, e, o,
                           swap, k)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _contrastive(x1, x2, y, sw, margin, scale, g1, g2, rows):
    n = x1.shape[0]
    T = x1.dtype.type
    zero = T(0)
    one = T(1)
    has_sw = sw.size > 0
    for i in prange(n):
        k = scale * (f64(sw[i]) if has_sw else 1.0)
        loss = contrastive_row(x1[i], x2[i], g1[i], g2[i], f64(y[i]), margin, k, zero, one)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _ranking(x1, x2, y, sw, margin, scale, block, none, g1, g2, rows):
    n = x1.size
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        lo = b * block
        hi = min(lo + block, n)
        s = ranking_block(x1[lo:hi], x2[lo:hi], y[lo:hi], sw[lo:hi] if sw.size > 0 else sw,
                          margin, scale, g1[lo:hi] if g1.size > 0 else g1,
                          g2[lo:hi] if g2.size > 0 else g2, rows[lo:hi] if none else rows[:0])
        if not none:
            rows[b] = s


# -- entry points: the Cython kernels' signatures ------------------------------------
def triplet(a, pos, neg, sw, margin, kind, p, eps, swap, one, scale, ga, gp, gn, rows,
            n_threads):
    numba_threads(n_threads)
    _triplet(*readonly(a, pos, neg, sw), float(margin), int(kind), float(p), float(eps),
             bool(swap), float(one), float(scale), ga, gp, gn, rows)


def contrastive(x1, x2, y, sw, margin, scale, g1, g2, rows, n_threads):
    numba_threads(n_threads)
    _contrastive(*readonly(x1, x2, y, sw), float(margin), float(scale), g1, g2, rows)


def ranking(x1, x2, y, sw, margin, scale, block, none, g1, g2, rows, n_threads):
    if block < 1:
        raise ValueError(f"block: must be >= 1, got {block}")
    numba_threads(n_threads)
    _ranking(*readonly(x1, x2, y, sw), float(margin), float(scale), int(block), bool(none),
             g1, g2, rows)

"""Softmax kernels in Numba: the twins of ``fastloss/_cython/_softmax.pyx``.

Same design, same names, same order as the Cython file (see its docstring):
one row per ``prange`` iteration, three sweeps per row (max; e_c = exp(x_c -
max) stored into the gradient while summed; the gradient formed in place),
everything from x_c - max, per-row scalars in float64, per-row losses written
to ``rows`` and reduced by the caller in a fixed order. Element sweeps use
the input's dtype (``T = x.dtype.type``) so that float32 vectorises 16 wide.
Optional arrays arrive empty when absent (grad and hess as ``(N, 0)``).

Every loop indexes a row view with a ``range(n)`` variable: Numba then knows
the index is non-negative and emits no wraparound select, which otherwise
costs a factor of five in these loops.
"""
import math

import numpy as np
from numba import prange

from .._backend import numba_threads
from ._jit import kernel, point, readonly
from ._math import fexp


# -- sweeps over one row ---------------------------------------------------------
@point
def rowmax(x):
    """max_c x[c], in eight independent lanes.

    LLVM does not vectorise a compare-and-select max reduction without
    ``nnan``; eight lanes give the core the same parallelism (the sweep runs
    at memory speed). A NaN may be dropped here; it still reaches the sum.
    """
    n = x.size
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[0]
    for b in range(n // 8):
        c = 8 * b
        v = x[c]
        m0 = v if v > m0 else m0
        v = x[c + 1]
        m1 = v if v > m1 else m1
        v = x[c + 2]
        m2 = v if v > m2 else m2
        v = x[c + 3]
        m3 = v if v > m3 else m3
        v = x[c + 4]
        m4 = v if v > m4 else m4
        v = x[c + 5]
        m5 = v if v > m5 else m5
        v = x[c + 6]
        m6 = v if v > m6 else m6
        v = x[c + 7]
        m7 = v if v > m7 else m7
    tail = x[n - n % 8:]
    for c in range(tail.size):
        v = tail[c]
        m0 = v if v > m0 else m0
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    m4 = m5 if m5 > m4 else m4
    m6 = m7 if m7 > m6 else m6
    m0 = m2 if m2 > m0 else m0
    m4 = m6 if m6 > m4 else m4
    return m4 if m4 > m0 else m0


@point
def expsum(x, shift, e, skip):
    """sum_{c != skip} exp(x[c] - shift) (skip = -1: every c), each term (skip's
    too) stored in e[c] unless e is empty.

    The focal loss sums the other classes in this one sweep over the whole row,
    not in two around the label: in place (e is x) the two slices of a row are
    two arrays to LLVM, whose runtime overlap test then fails and sends the
    loop to its scalar version, which sums in another order than the vector
    one (out=logits gave other bits than a fresh gradient)."""
    s = shift - shift
    zero = s
    if e.size > 0:
        for c in range(x.size):
            v = fexp(x[c] - shift)
            e[c] = v
            s += v if c != skip else zero
    else:
        for c in range(x.size):
            v = fexp(x[c] - shift)
            s += v if c != skip else zero
    return s


@point
def expsum_dot(x, shift, e, w):
    """As expsum, and sum_c w[c] (x[c] - shift) (w empty: weights 1)."""
    s = shift - shift
    d = s
    if w.size > 0:
        for c in range(x.size):
            z = x[c] - shift
            v = fexp(z)
            d += w[c] * z
            s += v
            if e.size > 0:
                e[c] = v
    else:
        for c in range(x.size):
            z = x[c] - shift
            v = fexp(z)
            d += z
            s += v
            if e.size > 0:
                e[c] = v
    return s, d


@point
def expsum_soft(x, shift, e, t, w, eps):
    """Probability targets: q = ((1 - eps) t + eps / C) w; returns (sum exp, sum q, sum q z)."""
    T = x.dtype.type
    keep = T(1.0 - eps)
    spread = T(eps / x.size)
    s = shift - shift
    qs = s
    d = s
    for c in range(x.size):
        z = x[c] - shift
        v = fexp(z)
        q = (keep * t[c] + spread) * (w[c] if w.size > 0 else T(1))
        s += v
        qs += q
        d += q * z
        if e.size > 0:
            e[c] = v
    return s, qs, d


@point
def softmax_hess(e, h, s, coef):
    """h_c = coef p_c (1 - p_c), p_c = e_c / s, from the stored e_c.

    1 - p_c is formed as (s - e_c) / s, except for the row's largest class
    (e_c == 1), whose 1 - p is the sum of the other terms: s - 1 would round
    a tiny positive Hessian to 0.
    """
    T = e.dtype.type
    f = T(coef / (s * s))
    fs = T(s)
    for c in range(e.size):
        h[c] = f * e[c] * (fs - e[c])
    top = -1
    rest = 0.0
    for c in range(e.size):
        if e[c] == 1 and top < 0:
            top = c
        else:
            rest += e[c]
    if top >= 0:
        h[top] = T(coef * rest / (s * s))


# -- point functions: one row each ---------------------------------------------
@point
def ce_hard_row(x, g, h, w, y, eps, wsum, k):
    """Cross-entropy of one row with label y; k * grad into g, k * hess into h.

    loss = a (lse - x_y) + b sum_c w_c (lse - x_c),  a = (1 - eps) w_y, b = eps / C
    grad = (a + b W) p - a [c == y] - b w,          hess = (a + b W) p (1 - p)
    """
    T = x.dtype.type
    n = x.size
    xy = x[y]  # read before sweep 2: g may be x
    m = rowmax(x)
    a = (1.0 - eps) * (np.float64(w[y]) if w.size > 0 else 1.0)
    b = eps / n
    dot = 0.0
    if b != 0:
        s_t, d_t = expsum_dot(x, m, g, w)  # also sum_c w_c (x_c - m)
        s = np.float64(s_t)
        dot = np.float64(d_t)
    else:
        s = np.float64(expsum(x, m, g, -1))
    log_s = math.log(s)
    loss = a * (log_s - np.float64(xy - m)) + b * (wsum * log_s - dot)
    if g.size == 0:
        return loss
    coef = (a + b * wsum) * k
    if h.size > 0:
        softmax_hess(g, h, s, coef)
    fcoef = T(coef / s)  # e_c * fcoef = (a + b W) k p_c
    fb = T(b * k)
    if b == 0:
        for c in range(n):
            g[c] = g[c] * fcoef
    elif w.size == 0:
        for c in range(n):
            g[c] = g[c] * fcoef - fb
    else:
        for c in range(n):
            g[c] = g[c] * fcoef - fb * w[c]
    g[y] -= T(a * k)
    return loss


@point
def ce_soft_row(x, t, g, h, w, eps, k):
    """Cross-entropy of one row with target probabilities t.

    q = ((1 - eps) t + eps / C) w;  loss = sum_c q_c (lse - x_c)
    grad = p Q - q,  hess = Q p (1 - p),  Q = sum_c q_c
    """
    T = x.dtype.type
    n = x.size
    m = rowmax(x)
    s_t, q_t, d_t = expsum_soft(x, m, g, t, w, eps)
    s = np.float64(s_t)
    qsum = np.float64(q_t)
    loss = qsum * math.log(s) - np.float64(d_t)
    if g.size == 0:
        return loss
    if h.size > 0:
        softmax_hess(g, h, s, qsum * k)
    fcoef = T(qsum * k / s)
    keep = T(1.0 - eps)
    spread = T(eps / n)
    fk = T(k)
    if w.size == 0:
        for c in range(n):
            g[c] = g[c] * fcoef - (keep * t[c] + spread) * fk
    else:
        for c in range(n):
            g[c] = g[c] * fcoef - (keep * t[c] + spread) * w[c] * fk
    return loss


@point
def focal_row(x, g, h, y, wy, gamma, k):
    """Softmax focal loss of one row: -w_y u^gamma log p, p = p_y, u = 1 - p.

    u is the other classes' share, sum_{c != y} e_c / s, never 1 - p. With
    lp = log p and r = lp / u (-> -1 as u -> 0):
      G    = u^gamma (1 - gamma p r)                     grad_c = w k G (p_c - [c == y])
      A    = gamma p u^(gamma+1) ((gamma - 1) p r - 2 - lp)
      hess = w k (p_c (1 - p_c) G - (e_c / s_other)^2 A)   for c != y
      hess = w k (p u G - A)                               for c == y
    """
    T = x.dtype.type
    n = x.size
    xy = x[y]  # read before sweep 2: g may be x
    m = rowmax(x)
    s_other = np.float64(expsum(x, m, g, y))  # directly: never s - e_y
    ey = math.exp(np.float64(xy - m))
    s = s_other + ey
    # p_y near 1 only when y holds the max; then log p = -log1p(s_other) exactly.
    lp = -math.log1p(s_other) if xy == m else np.float64(xy - m) - math.log(s)
    u = s_other / s
    p = ey / s
    r = lp / u if u > 0 else -1.0
    ug = u**gamma
    G = ug * (1.0 - gamma * p * r)
    if g.size == 0:
        return -wy * ug * lp
    g[y] = T(ey)
    if h.size > 0:
        A = gamma * p * ug * u * ((gamma - 1.0) * p * r - 2.0 - lp)
        fg = T(wy * k * G / (s * s))
        fa = T(wy * k * A)
        fi = T(1.0 / s_other if s_other > 0 else 0.0)
        fs = T(s)
        for c in range(n):
            q = g[c] * fi
            h[c] = fg * g[c] * (fs - g[c]) - q * q * fa
        h[y] = T(wy * k * (p * u * G - A))
    fg = T(wy * k * G / s)
    for c in range(n):
        g[c] = g[c] * fg
    g[y] = T(-wy * k * G * u)
    return -wy * ug * lp


# -- kernels: prange over rows -------------------------------------------------
@point
def zero_row(a):
    for c in range(a.size):
        a[c] = 0


@kernel
def _ce_hard(x, y, w, sw, eps, ignore_index, scale, grad, hess, rows, inplace):
    n, C = x.shape
    has_sw = sw.size > 0
    # W enters only through label smoothing (see the Cython twin)
    wsum = np.float64(C) if eps != 0 else 0.0
    if w.size > 0 and eps != 0:
        wsum = 0.0
        for c in range(C):
            wsum += w[c]
    for i in prange(n):
        if y[i] == ignore_index:
            rows[i] = 0.0
            zero_row(grad[i])
            zero_row(hess[i])
            continue
        k = scale * (np.float64(sw[i]) if has_sw else 1.0)
        # In place, the row is passed as both operands: LLVM then sees one
        # array and vectorises without a runtime overlap test (which fails).
        if inplace:
            loss = ce_hard_row(grad[i], grad[i], hess[i], w, y[i], eps, wsum, k)
        else:
            loss = ce_hard_row(x[i], grad[i], hess[i], w, y[i], eps, wsum, k)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _ce_soft(x, t, w, sw, eps, scale, grad, hess, rows, inplace):
    n = x.shape[0]
    has_sw = sw.size > 0
    for i in prange(n):
        k = scale * (np.float64(sw[i]) if has_sw else 1.0)
        if inplace:
            loss = ce_soft_row(grad[i], t[i], grad[i], hess[i], w, eps, k)
        else:
            loss = ce_soft_row(x[i], t[i], grad[i], hess[i], w, eps, k)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _focal(x, y, w, sw, gamma, ignore_index, scale, grad, hess, rows, inplace):
    n = x.shape[0]
    has_w = w.size > 0
    has_sw = sw.size > 0
    for i in prange(n):
        if y[i] == ignore_index:
            rows[i] = 0.0
            zero_row(grad[i])
            zero_row(hess[i])
            continue
        wy = np.float64(w[y[i]]) if has_w else 1.0
        k = scale * (np.float64(sw[i]) if has_sw else 1.0)
        if inplace:
            loss = focal_row(grad[i], grad[i], hess[i], y[i], wy, gamma, k)
        else:
            loss = focal_row(x[i], grad[i], hess[i], y[i], wy, gamma, k)
        rows[i] = loss * sw[i] if has_sw else loss


# -- entry points: the Cython kernels' signatures ------------------------------
def _inplace(x, grad):
    return grad.size > 0 and x.ctypes.data == grad.ctypes.data


def ce_hard(x, y, w, sw, eps, ignore_index, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _ce_hard(*readonly(x, y, w, sw), eps, ignore_index, scale, grad, hess, rows,
             _inplace(x, grad))


def ce_soft(x, t, w, sw, eps, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _ce_soft(*readonly(x, t, w, sw), eps, scale, grad, hess, rows, _inplace(x, grad))


def focal(x, y, w, sw, gamma, ignore_index, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _focal(*readonly(x, y, w, sw), gamma, ignore_index, scale, grad, hess, rows,
           _inplace(x, grad))

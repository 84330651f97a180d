"""Softmax kernels in Numba: the twins of ``fastloss/_cython/_softmax.pyx``.

Same design, same names, same order as the Cython file (see its docstring):
one row per ``prange`` iteration, three sweeps per row (max; e_c = exp(x_c -
max) stored into the gradient while summed; the gradient formed in place),
everything from x_c - max, per-row scalars in float64, per-row losses written
to ``rows`` and reduced by the caller in a fixed order. Element sweeps use
the input's dtype (``T = x.dtype.type``) so that float32 vectorises 16 wide.
Optional arrays arrive empty when absent.
"""
import math

import numpy as np
from numba import prange

from .._backend import numba_threads
from ._jit import kernel, point, readonly
from ._math import fexp


# -- sweeps --------------------------------------------------------------------
@point
def rowmax(x, i, n):
    """max_c x[i, c], in eight independent lanes.

    LLVM does not vectorise a compare-and-select max reduction without
    ``nnan``; eight lanes give the core the same parallelism (the sweep runs
    at memory speed). A NaN may be dropped here; it still reaches the sum.
    """
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[i, 0]
    c = 0
    while c + 8 <= n:
        v = x[i, c]
        m0 = v if v > m0 else m0
        v = x[i, c + 1]
        m1 = v if v > m1 else m1
        v = x[i, c + 2]
        m2 = v if v > m2 else m2
        v = x[i, c + 3]
        m3 = v if v > m3 else m3
        v = x[i, c + 4]
        m4 = v if v > m4 else m4
        v = x[i, c + 5]
        m5 = v if v > m5 else m5
        v = x[i, c + 6]
        m6 = v if v > m6 else m6
        v = x[i, c + 7]
        m7 = v if v > m7 else m7
        c += 8
    for j in range(c, n):
        v = x[i, j]
        m0 = v if v > m0 else m0
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    m4 = m5 if m5 > m4 else m4
    m6 = m7 if m7 > m6 else m6
    m0 = m2 if m2 > m0 else m0
    m4 = m6 if m6 > m4 else m4
    return m4 if m4 > m0 else m0


@point
def expsum(x, i, lo, hi, shift, g, store):
    """sum_{lo <= c < hi} exp(x[i, c] - shift), each term stored in g[i, c] if store."""
    s = shift - shift
    if store:
        for c in range(lo, hi):
            v = fexp(x[i, c] - shift)
            g[i, c] = v
            s += v
    else:
        for c in range(lo, hi):
            s += fexp(x[i, c] - shift)
    return s


@point
def softmax_hess(g, h, i, n, s, coef):
    """h_c = coef p_c (1 - p_c) from the stored e_c (see the Cython twin)."""
    T = g.dtype.type
    f = T(coef / (s * s))
    fs = T(s)
    for c in range(n):
        h[i, c] = f * g[i, c] * (fs - g[i, c])
    top = -1
    rest = 0.0
    for c in range(n):
        if g[i, c] == 1 and top < 0:
            top = c
        else:
            rest += g[i, c]
    if top >= 0:
        h[i, top] = T(coef * rest / (s * s))


# -- point functions: one row each ---------------------------------------------
@point
def ce_hard_row(x, g, h, w, i, n, y, eps, wsum, k, has_g, has_h):
    """Cross-entropy of row i with label y; k * grad into g, k * hess into h.

    loss = a (lse - x_y) + b sum_c w_c (lse - x_c),  a = (1 - eps) w_y, b = eps / C
    grad = (a + b W) p - a [c == y] - b w,          hess = (a + b W) p (1 - p)
    """
    T = x.dtype.type
    xy = x[i, y]  # read before sweep 2: g may be x
    m = rowmax(x, i, n)
    has_w = w.size > 0
    a = (1.0 - eps) * (float(w[y]) if has_w else 1.0)
    b = eps / n
    dot = 0.0
    if b != 0:
        # Separate accumulator names: Numba would unify a reused name to float64.
        d_t = T(0)
        s_t = T(0)
        if has_w:
            for c in range(n):
                z = x[i, c] - m
                v = fexp(z)
                d_t += w[c] * z
                s_t += v
                if has_g:
                    g[i, c] = v
        else:
            for c in range(n):
                z = x[i, c] - m
                v = fexp(z)
                d_t += z
                s_t += v
                if has_g:
                    g[i, c] = v
        dot = float(d_t)
        s = float(s_t)
    else:
        s = float(expsum(x, i, 0, n, m, g, has_g))
    log_s = math.log(s)
    loss = a * (log_s - float(xy - m)) + b * (wsum * log_s - dot)
    if not has_g:
        return loss
    coef = (a + b * wsum) * k
    if has_h:
        softmax_hess(g, h, i, n, s, coef)
    fcoef = T(coef / s)  # e_c * fcoef = (a + b W) k p_c
    fb = T(b * k)
    if b == 0:
        for c in range(n):
            g[i, c] = g[i, c] * fcoef
    elif not has_w:
        for c in range(n):
            g[i, c] = g[i, c] * fcoef - fb
    else:
        for c in range(n):
            g[i, c] = g[i, c] * fcoef - fb * w[c]
    g[i, y] -= T(a * k)
    return loss


@point
def ce_soft_row(x, t, g, h, w, i, n, eps, k, has_g, has_h):
    """Cross-entropy of row i with target probabilities t[i].

    q = ((1 - eps) t + eps / C) w;  loss = sum_c q_c (lse - x_c)
    grad = p Q - q,  hess = Q p (1 - p),  Q = sum_c q_c
    """
    T = x.dtype.type
    m = rowmax(x, i, n)
    keep = T(1.0 - eps)
    spread = T(eps / n)
    has_w = w.size > 0
    s_t = T(0)
    q_t = T(0)
    d_t = T(0)
    for c in range(n):
        z = x[i, c] - m
        v = fexp(z)
        q = (keep * t[i, c] + spread) * (w[c] if has_w else T(1))
        s_t += v
        q_t += q
        d_t += q * z
        if has_g:
            g[i, c] = v
    s = float(s_t)
    qsum = float(q_t)
    loss = qsum * math.log(s) - float(d_t)
    if not has_g:
        return loss
    if has_h:
        softmax_hess(g, h, i, n, s, qsum * k)
    fcoef = T(qsum * k / s)
    fk = T(k)
    if not has_w:
        for c in range(n):
            g[i, c] = g[i, c] * fcoef - (keep * t[i, c] + spread) * fk
    else:
        for c in range(n):
            g[i, c] = g[i, c] * fcoef - (keep * t[i, c] + spread) * w[c] * fk
    return loss


@point
def focal_row(x, g, h, i, n, y, wy, gamma, k, has_g, has_h):
    """Softmax focal loss of row i: -w_y u^gamma log p, p = p_y, u = 1 - p.

    u is the other classes' share, sum_{c != y} e_c / s, never 1 - p. With
    lp = log p and r = lp / u (-> -1 as u -> 0):
      G    = u^gamma (1 - gamma p r)                     grad_c = w k G (p_c - [c == y])
      A    = gamma p u^(gamma+1) ((gamma - 1) p r - 2 - lp)
      hess = w k (p_c (1 - p_c) G - (e_c / s_other)^2 A)   for c != y
      hess = w k (p u G - A)                               for c == y
    """
    T = x.dtype.type
    xy = x[i, y]  # read before sweep 2: g may be x
    m = rowmax(x, i, n)
    # Sweep 2 in two parts around y gives the other classes' sum directly.
    s_other = float(expsum(x, i, 0, y, m, g, has_g)) + float(expsum(x, i, y + 1, n, m, g, has_g))
    ey = math.exp(float(xy - m))
    s = s_other + ey
    # p_y near 1 only when y holds the max; then log p = -log1p(s_other) exactly.
    lp = -math.log1p(s_other) if xy == m else float(xy - m) - math.log(s)
    u = s_other / s
    p = ey / s
    r = lp / u if u > 0 else -1.0
    ug = u**gamma
    G = ug * (1.0 - gamma * p * r)
    if not has_g:
        return -wy * ug * lp
    g[i, y] = T(ey)
    if has_h:
        A = gamma * p * ug * u * ((gamma - 1.0) * p * r - 2.0 - lp)
        fg = T(wy * k * G / (s * s))
        fa = T(wy * k * A)
        fi = T(1.0 / s_other if s_other > 0 else 0.0)
        fs = T(s)
        for c in range(n):
            q = g[i, c] * fi
            h[i, c] = fg * g[i, c] * (fs - g[i, c]) - q * q * fa
        h[i, y] = T(wy * k * (p * u * G - A))
    fg = T(wy * k * G / s)
    for c in range(n):
        g[i, c] = g[i, c] * fg
    g[i, y] = T(-wy * k * G * u)
    return -wy * ug * lp


# -- kernels: prange over rows -------------------------------------------------
@point
def zero_row(a, i, n):
    for c in range(n):
        a[i, c] = 0


@kernel
def _ce_hard(x, y, w, sw, eps, ignore_index, scale, grad, hess, rows):
    n, C = x.shape
    has_sw = sw.size > 0
    has_g = grad.shape[0] > 0
    has_h = hess.shape[0] > 0
    wsum = float(C)
    if w.size > 0:
        wsum = 0.0
        for c in range(C):
            wsum += w[c]
    for i in prange(n):
        if y[i] == ignore_index:
            rows[i] = 0.0
            if has_g:
                zero_row(grad, i, C)
            if has_h:
                zero_row(hess, i, C)
            continue
        k = scale * (float(sw[i]) if has_sw else 1.0)
        loss = ce_hard_row(x, grad, hess, w, i, C, y[i], eps, wsum, k, has_g, has_h)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _ce_soft(x, t, w, sw, eps, scale, grad, hess, rows):
    n, C = x.shape
    has_sw = sw.size > 0
    has_g = grad.shape[0] > 0
    has_h = hess.shape[0] > 0
    for i in prange(n):
        k = scale * (float(sw[i]) if has_sw else 1.0)
        loss = ce_soft_row(x, t, grad, hess, w, i, C, eps, k, has_g, has_h)
        rows[i] = loss * sw[i] if has_sw else loss


@kernel
def _focal(x, y, w, sw, gamma, ignore_index, scale, grad, hess, rows):
    n, C = x.shape
    has_w = w.size > 0
    has_sw = sw.size > 0
    has_g = grad.shape[0] > 0
    has_h = hess.shape[0] > 0
    for i in prange(n):
        if y[i] == ignore_index:
            rows[i] = 0.0
            if has_g:
                zero_row(grad, i, C)
            if has_h:
                zero_row(hess, i, C)
            continue
        wy = float(w[y[i]]) if has_w else 1.0
        k = scale * (float(sw[i]) if has_sw else 1.0)
        loss = focal_row(x, grad, hess, i, C, y[i], wy, gamma, k, has_g, has_h)
        rows[i] = loss * sw[i] if has_sw else loss


# -- entry points: the Cython kernels' signatures ------------------------------
def ce_hard(x, y, w, sw, eps, ignore_index, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _ce_hard(*readonly(x, y, w, sw), eps, ignore_index, scale, grad, hess, rows)


def ce_soft(x, t, w, sw, eps, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _ce_soft(*readonly(x, t, w, sw), eps, scale, grad, hess, rows)


def focal(x, y, w, sw, gamma, ignore_index, scale, grad, hess, rows, n_threads):
    numba_threads(n_threads)
    _focal(*readonly(x, y, w, sw), gamma, ignore_index, scale, grad, hess, rows)

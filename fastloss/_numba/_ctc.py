"""CTC kernels in Numba: the twins of ``fastloss/_cython/_ctc.pyx``.

Same algorithm, same names, same order as the Cython file (see its
docstring): log-space forward-backward over the states of the extended
target, forward and backward variables in float64, exp and log of the small
differences in the input's precision, occupancies normalised per frame.
Sequences are dealt to threads round-robin; each thread owns one row of the
workspace for its forward variables.
"""
import numpy as np
from numba import prange

from .._backend import numba_threads
from ._jit import kernel, point, readonly
from ._math import fexp, flog

INF = np.inf
U = np.uint64
LANES = 16  # states are padded to a multiple of this: no scalar loop remainders


@point
def row_width(S):
    """States per row of the forward variables: S padded to LANES, plus two
    leading -inf for the states before the first."""
    return (S + LANES - 1) // LANES * LANES + 2


@point
def band_lo(t, T, S):
    """The first state at frame t from which the last states are still in
    reach (two states per frame), rounded down to LANES."""
    lo = S - 2 * (T - t)
    return lo // LANES * LANES if lo > 0 else 0


@point
def band_hi(t, V):
    """One past the last state reachable at frame t (2t + 1), rounded up to LANES."""
    hi = (2 * t + 2 + LANES - 1) // LANES * LANES
    return hi if hi < V else V


def workspace(n_frames, n_labels):
    """Doubles per thread for sequences of up to n_frames frames and n_labels labels."""
    return n_frames * row_width(2 * n_labels + 1)


@point
def frame(a, batch_first, n, t):
    """Frame t of sequence n: a (C,) view."""
    return a[n, t] if batch_first else a[t, n]


@point
def log_frame(xt, log_probs, y):
    """y = log_softmax(x_t) in float64 (x_t itself for log-probabilities);
    returns whether x_t holds a NaN (which the max skips, and the sum keeps)."""
    T = xt.dtype.type
    s = T(0)
    if log_probs:
        for c in range(xt.size):
            y[c] = xt[c]
            s += xt[c]
        return s != s
    mx = -INF
    for c in range(xt.size):
        v = np.float64(xt[c])
        mx = v if v > mx else mx
    for c in range(xt.size):
        s += fexp(T(xt[c] - mx))
    lse = mx + flog(s)
    for c in range(xt.size):
        y[c] = xt[c] - lse
    return s != s


@point
def lse3(a, b, c, p):
    """log(e^a + e^b + e^c), exp and log in the precision of type(p); no branch."""
    T = type(p)
    hi = a if a > b else b
    lo = a if a < b else b
    top = hi if hi > c else c
    mid = hi if hi < c else c
    bot = lo if lo < mid else mid
    mid = lo if lo > mid else mid
    hi = top if top > -INF else 0.0
    return top + flog(T(1) + fexp(T(mid - hi)) + fexp(T(bot - hi)))


@point
def log_space(x, bf, n, grad, has_grad, T, lab, sk, S, log_probs, coef, alpha):
    """-log p(l | x) by the forward-backward recursions, the gradient into
    grad (if has_grad). inf for an impossible alignment, NaN for a NaN input.
    The loops over states run over the padded row, V = W - 2 states, and
    only over the band of states on a complete alignment (see the Cython twin).

    State indices are unsigned and the arrays are indexed flat (state s of
    frame t at alpha[t W + 2 + s]): Numba then emits no wraparound select,
    and no view is made per frame (each would cost two atomic refcounts)."""
    F = x.dtype.type
    p = F(0)
    W = row_width(S)
    V = W - 2
    Wu, Vu, Su, one, two = U(W), U(V), U(S), U(1), U(2)
    y = np.empty(x.shape[2])
    e = np.empty(W)
    b = np.empty(W)
    nb = np.empty(W)
    gam = np.empty(W)
    for t in range(T):
        if log_frame(frame(x, bf, n, t), log_probs, y):
            return np.nan
        lo = U(band_lo(t, T, S))
        hi = U(band_hi(t, V))
        for s in range(lo, hi):
            e[s] = y[lab[s]]
        r = U(t) * Wu + two  # state s of frame t is alpha[r + s]
        for s in range(r - two, r + lo):
            alpha[s] = -INF
        if t == 0:
            for s in range(lo, hi):
                alpha[r + s] = e[s] if s < two else -INF
        else:
            q = r - Wu
            for s in range(lo, hi):
                alpha[r + s] = e[s] + lse3(alpha[q + s], alpha[q + s - one],
                                           sk[s] + alpha[q + s - two], p)
        for s in range(r + hi, r + Vu):
            alpha[s] = -INF
    r = U(T - 1) * Wu + two
    log_p = lse3(alpha[r + Su - one], alpha[r + Su - two] if S > 1 else -INF, -INF, p)
    if log_p == -INF:
        return INF
    if not has_grad:
        return -log_p
    for s in range(W):
        b[s] = 0.0 if S - 2 <= s < S else -INF
        e[s] = -INF
    for t in range(T - 1, -1, -1):
        r = U(t) * Wu + two
        log_frame(frame(x, bf, n, t), log_probs, y)
        if t > 0:
            # beta_{t-1}(s): the states s' reachable from s, emitting at frame t
            lo = U(band_lo(t - 1, T, S))
            hi = U(band_hi(t - 1, V))
            for s in range(lo, Vu):
                e[s] = y[lab[s]]
            for s in range(lo):
                nb[s] = -INF
            for s in range(lo, hi):
                nb[s] = lse3(e[s] + b[s], e[s + one] + b[s + one],
                             sk[s + two] + e[s + two] + b[s + two], p)
            for s in range(hi, Wu):
                nb[s] = -INF
        # gamma_t(s) = exp(alpha + beta - log p), normalised at the frame
        # (alpha + beta is stored once: a reassociated sum could round above
        # the max and overflow exp for logits of 1e30)
        lo = U(band_lo(t, T, S))
        hi = U(band_hi(t, V))
        mx = -INF
        for s in range(lo, hi):
            gam[s] = alpha[r + s] + b[s]
            mx = gam[s] if gam[s] > mx else mx
        z = F(0)
        for s in range(lo, hi):
            gam[s] = fexp(F(gam[s] - mx))
            z += F(gam[s])
        for c in range(y.size):
            y[c] = 0.0 if log_probs else fexp(F(y[c]))
        # the blank states summed apart (see the Cython twin)
        hi = min(hi, Su)
        z = F(1) / z
        v = 0.0
        for s in range(lo, hi, two):
            v += gam[s]
        y[lab[0]] -= v * z
        for s in range(lo + one, hi, two):
            y[lab[s]] -= gam[s] * z
        g = frame(grad, bf, n, t)
        for c in range(y.size):
            g[c] = coef * y[c]
        for s in range(W):  # a copy, not a swap: LLVM then sees that nb never aliases b
            b[s] = nb[s]
    return -log_p


@point
def sequence(x, bf, n, grad, labels, T, blank, log_probs, zero_infinity, coef, alpha):
    """The loss of one sequence; its gradient rows (all frames) into grad if it has any."""
    L = labels.size
    S = 2 * L + 1
    W = row_width(S)
    has_grad = grad.shape[2] > 0
    T_all = x.shape[1] if bf else x.shape[0]
    repeats = 0
    for s in range(1, L):
        repeats += labels[s] == labels[s - 1]
    loss = 0.0
    if T < L + repeats:
        loss = INF  # no alignment fits: each repeat needs a blank in between
    elif T > 0:
        lab = np.empty(W, np.uint32)  # unsigned: its gathers need no wraparound check
        sk = np.empty(W)
        for s in range(W):
            lab[s] = labels[(s - 1) // 2] if s % 2 == 1 and s < S else blank
        for s in range(W):
            sk[s] = 0.0 if s % 2 == 1 and 3 <= s < S and lab[s] != lab[s - 2] else -INF
        loss = log_space(x, bf, n, grad, has_grad, T, lab, sk, S, log_probs, coef, alpha)
    if has_grad:
        first_zero = T
        if loss != loss:
            for t in range(T):
                frame(grad, bf, n, t)[:] = np.nan
        elif loss == INF:
            first_zero = 0  # an impossible sequence has a zero gradient
        for t in range(first_zero, T_all):
            frame(grad, bf, n, t)[:] = 0
    if loss == INF and zero_infinity:
        return 0.0
    return loss


@kernel
def _ctc(x, bf, labels, offsets, in_len, blank, log_probs, zero_infinity, m, scale, grad,
         rows, ws, n_threads):
    N = in_len.size
    for tid in prange(n_threads):
        for n in range(tid, N, n_threads):
            rows[n] = sequence(x, bf, n, grad, labels[offsets[n]:offsets[n + 1]], in_len[n],
                               blank, log_probs, zero_infinity, scale * m[n], ws[tid])


def ctc(x, batch_first, labels, offsets, in_len, blank, log_probs, zero_infinity, m, scale,
        grad, rows, ws, n_threads):
    n_threads = numba_threads(n_threads)
    _ctc(*readonly(x), bool(batch_first), *readonly(labels, offsets, in_len), int(blank),
         bool(log_probs), bool(zero_infinity), *readonly(m), float(scale), grad, rows, ws,
         n_threads)

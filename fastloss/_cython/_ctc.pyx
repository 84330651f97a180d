"""CTC kernels: forward-backward in log space, log-softmax fused in.

Why they are built this way:
- One sequence per ``prange`` iteration (dynamic schedule: lengths differ);
  a sequence's result never depends on which thread ran it, so results are
  bitwise identical for any number of threads.
- Log space, not per-frame scaled probabilities. Scaled recursions cost a
  few multiply-adds per state, but the states of one frame span more than a
  double's range on long sequences (T = 1000, S = 200 with random logits
  already underflows), and a state lost to underflow can be the one every
  surviving alignment needs. Log space has no such failure.
- Forward and backward variables are doubles; log-sum-exp and the
  occupancies take their exp and log in the input's precision (float32 for
  float32), on differences that are small, so float32 inputs run at float32
  speed and keep double accuracy in the variables, which grow to -1e4 on
  long sequences. The loops over the states of a frame carry no branch and
  vectorise.
- Occupancies are normalised per frame (they sum to 1 there), not divided
  by p(l | x): exact in exact arithmetic, and with logits of 1e30 the
  exponents' rounding errors cannot overflow.
- Frames are visited in order, and frame t's gradient row is written only
  after its logits were read for the last time: ``out=`` may be the input.
- Labels and lengths were range-checked by fastloss._validation (labels in
  [0, C) and not blank, lengths within the arrays), and the workspace was
  sized by the caller for the longest sequence: no index here can leave its
  array, which is what lets bounds checking stay off.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from ._math cimport fexp, fl_vector_bits, flog

cdef enum:
    LANES = 16  # states are padded to a multiple of this: no scalar loop remainders


cdef inline Py_ssize_t row_width(Py_ssize_t S) noexcept nogil:
    """States per row of the forward variables: S padded to LANES, plus two
    leading -inf for the states before the first."""
    return (S + LANES - 1) // LANES * LANES + 2


cdef inline Py_ssize_t band_lo(Py_ssize_t t, Py_ssize_t T, Py_ssize_t S) noexcept nogil:
    """The first state at frame t from which the last states are still in
    reach (two states per frame), rounded down to LANES."""
    cdef Py_ssize_t lo = S - 2 * (T - t)
    return lo // LANES * LANES if lo > 0 else 0


cdef inline Py_ssize_t band_hi(Py_ssize_t t, Py_ssize_t V) noexcept nogil:
    """One past the last state reachable at frame t (2t + 1), rounded up to LANES."""
    cdef Py_ssize_t hi = (2 * t + 2 + LANES - 1) // LANES * LANES
    return hi if hi < V else V


def workspace(Py_ssize_t n_frames, Py_ssize_t n_labels):
    """Doubles per thread for sequences of up to n_frames frames and n_labels labels."""
    return n_frames * row_width(2 * n_labels + 1)


cdef bint log_frame(const floating *xt, Py_ssize_t C, bint log_probs,
                    double *y) noexcept nogil:
    """y = log_softmax(x_t) in double (x_t itself for log-probabilities);
    returns whether x_t holds a NaN (which the max skips, and the sum keeps)."""
    cdef Py_ssize_t c
    cdef double mx = -INFINITY, lse
    cdef floating s = 0
    if log_probs:
        for c in range(C):
            y[c] = xt[c]
            s += xt[c]
        return s != s
    for c in range(C):
        mx = xt[c] if xt[c] > mx else mx
    for c in range(C):
        s += fexp(<floating>(xt[c] - mx))
    lse = mx + flog(s)
    for c in range(C):
        y[c] = xt[c] - lse
    return s != s


cdef inline double lse3(double a, double b, double c, floating precision) noexcept nogil:
    """log(e^a + e^b + e^c): the largest term is e^0 = 1 and the two others
    take exp in the precision of ``precision``'s type; no branch, so that loops
    over it vectorise. -inf when all three are -inf."""
    cdef double hi = a if a > b else b
    cdef double lo = a if a < b else b
    cdef double top = hi if hi > c else c
    cdef double mid = hi if hi < c else c
    cdef double bot = lo if lo < mid else mid
    mid = lo if lo > mid else mid
    cdef floating one = 1  # a bare 1 is the double 1.0: the log would run in double
    hi = top if top > -INFINITY else 0
    return top + flog(one + fexp(<floating>(mid - hi)) + fexp(<floating>(bot - hi)))


cdef double log_space(const floating *x, floating *g, Py_ssize_t fs, Py_ssize_t C,
                      Py_ssize_t T, const int *lab, const double *sk, Py_ssize_t S,
                      bint log_probs, double coef, double *alpha, double *y, double *e,
                      double *b, double *nb, double *gam) noexcept nogil:
    """-log p(l | x) by the forward-backward recursions, the gradient into g
    (if not NULL). sk[s] is 0 where state s may be entered from s - 2, else
    -inf. Returns inf for an impossible alignment and NaN for a NaN input,
    leaving g to the caller in both cases. The loops over states run over the
    padded row, V = W - 2 states: the padding states (blank, -inf backward
    variables) never feed a real one.

    Only the band of states that lie on a complete alignment is computed at
    each frame (those reachable from the start, from which the end is still
    reachable, rounded out to LANES); the others are -inf, and are read only
    by states outside the band of the next frame."""
    cdef Py_ssize_t t, s, c, lo, hi, W = row_width(S), V = row_width(S) - 2
    cdef double *row
    cdef double *prev
    cdef double *tmp
    cdef double log_p, mx, v
    cdef floating z, p = 0, one = 1
    for t in range(T):
        if log_frame(x + t * fs, C, log_probs, y):
            return NAN
        lo = band_lo(t, T, S)
        hi = band_hi(t, V)
        for s in range(lo, hi):
            e[s] = y[lab[s]]
        row = alpha + t * W + 2
        for s in range(-2, lo):
            row[s] = -INFINITY
        if t == 0:
            for s in range(lo, hi):
                row[s] = e[s] if s < 2 else -INFINITY
        else:
            prev = row - W
            for s in range(lo, hi):
                row[s] = e[s] + lse3(prev[s], prev[s - 1], sk[s] + prev[s - 2], p)
        for s in range(hi, V):
            row[s] = -INFINITY
    row = alpha + (T - 1) * W
    log_p = lse3(row[1 + S], row[S] if S > 1 else -INFINITY, -INFINITY, p)
    if log_p == -INFINITY:
        return INFINITY
    if g == NULL:
        return -log_p
    for s in range(W):
        b[s] = 0 if S - 2 <= s < S else -INFINITY
        e[s] = -INFINITY
    for t in range(T - 1, -1, -1):
        row = alpha + t * W + 2
        log_frame(x + t * fs, C, log_probs, y)
        if t > 0:
            # beta_{t-1}(s): the states s' reachable from s, emitting at frame t
            lo = band_lo(t - 1, T, S)
            hi = band_hi(t - 1, V)
            for s in range(lo, V):
                e[s] = y[lab[s]]
            for s in range(lo):
                nb[s] = -INFINITY
            for s in range(lo, hi):
                nb[s] = lse3(e[s] + b[s], e[s + 1] + b[s + 1], sk[s + 2] + e[s + 2] + b[s + 2], p)
            for s in range(hi, W):
                nb[s] = -INFINITY
        # gamma_t(s) = exp(alpha + beta - log p), normalised at the frame
        # (alpha + beta is stored once: a reassociated sum could round above
        # the max and overflow exp for logits of 1e30)
        lo = band_lo(t, T, S)
        hi = band_hi(t, V)
        mx = -INFINITY
        for s in range(lo, hi):
            gam[s] = row[s] + b[s]
            mx = gam[s] if gam[s] > mx else mx
        z = 0
        for s in range(lo, hi):
            gam[s] = fexp(<floating>(gam[s] - mx))
            z += <floating>gam[s]
        for c in range(C):
            y[c] = 0 if log_probs else fexp(<floating>y[c])
        # the blank states (even s) summed apart: scattered one by one they
        # would chain every other store on y[blank]
        hi = hi if hi < S else S
        z = one / z
        v = 0
        for s in range(lo, hi, 2):
            v += gam[s]
        y[lab[0]] -= v * z
        for s in range(lo + 1, hi, 2):
            y[lab[s]] -= gam[s] * z
        for c in range(C):
            g[t * fs + c] = <floating>(coef * y[c])
        tmp = b
        b = nb
        nb = tmp
    return -log_p


# -- one sequence ------------------------------------------------------------------
cdef double sequence(const floating *x, floating *g, Py_ssize_t fs, Py_ssize_t C,
                     Py_ssize_t T, Py_ssize_t T_all, const int *labels, Py_ssize_t L,
                     int blank, bint log_probs, bint zero_infinity, double coef,
                     double *alpha) noexcept nogil:
    """The loss of one sequence; its gradient rows (all T_all frames) into g if not NULL."""
    cdef Py_ssize_t S = 2 * L + 1, W = row_width(2 * L + 1), t, c, s, repeats = 0
    cdef double loss = 0
    cdef int *lab
    cdef double *buf
    for s in range(1, L):
        repeats += labels[s] == labels[s - 1]
    if T < L + repeats:
        loss = INFINITY  # no alignment fits: each repeat needs a blank in between
    elif T > 0:
        # the extended target (blanks between and around the labels) and,
        # per state, 0 if it may be entered from two states back, else -inf
        lab = <int *>malloc(W * sizeof(int))
        buf = <double *>malloc((6 * W + C) * sizeof(double))
        for s in range(W):
            lab[s] = labels[(s - 1) // 2] if s % 2 == 1 and s < S else blank
            buf[s] = 0 if (s % 2 == 1 and 3 <= s < S and lab[s] != lab[s - 2]) else -INFINITY
        loss = log_space(x, g, fs, C, T, lab, buf, S, log_probs, coef, alpha, buf + 5 * W,
                         buf + W, buf + 2 * W, buf + 3 * W, buf + 4 * W)
        free(lab)
        free(buf)
    if g != NULL:
        if loss != loss:
            for t in range(T):
                for c in range(C):
                    g[t * fs + c] = NAN
        elif loss == INFINITY:
            T = 0  # an impossible sequence has a zero gradient
        for t in range(T, T_all):
            for c in range(C):
                g[t * fs + c] = 0
    if loss == INFINITY and zero_infinity:
        return 0
    return loss


def ctc(const floating[:, :, ::1] x, bint batch_first, const int[::1] labels,
        const int64_t[::1] offsets, const int64_t[::1] in_len, int blank, bint log_probs,
        bint zero_infinity, const double[::1] m, double scale, floating[:, :, ::1] grad,
        double[::1] rows, double[:, ::1] ws, int n_threads):
    cdef Py_ssize_t N = in_len.shape[0], C = x.shape[2], n
    cdef Py_ssize_t T_all = x.shape[1] if batch_first else x.shape[0]
    # frame stride, and the offset of sequence n's first frame, in elements
    cdef Py_ssize_t fs = C if batch_first else N * C
    cdef Py_ssize_t seq = T_all * C if batch_first else C
    cdef bint has_grad = grad.shape[2] > 0 and T_all > 0
    if N == 0:
        return
    # Base pointers, taken only where there is an element 0 (no frames, or every
    # target empty, leaves nothing to index: the sequences then read nothing).
    cdef const floating *xp = &x[0, 0, 0] if T_all > 0 and C > 0 else NULL
    cdef floating *gp = &grad[0, 0, 0] if has_grad else NULL
    cdef const int *lp = &labels[0] if labels.shape[0] > 0 else NULL
    with nogil:
        for n in prange(N, schedule="dynamic", num_threads=n_threads):
            rows[n] = sequence(xp + n * seq if xp != NULL else NULL,
                               gp + n * seq if has_grad else NULL,
                               fs, C, in_len[n], T_all, lp + offsets[n] if lp != NULL else NULL,
                               offsets[n + 1] - offsets[n], blank, log_probs, zero_infinity,
                               scale * m[n], &ws[threadid(), 0])


def vector_bits():
    """The widest vectors (bits) the compiler was asked to use in this module's loops."""
    return fl_vector_bits()

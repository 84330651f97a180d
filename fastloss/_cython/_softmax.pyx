"""Softmax kernels: cross-entropy (labels or probabilities) and softmax focal.

Why they are built this way:
- One row per ``prange`` iteration (static schedule). A row takes three sweeps
  over its C contiguous values: (1) the max, (2) e_c = exp(x_c - max), written
  straight into the gradient buffer while they are summed, (3) the gradient
  formed in place from e_c. exp runs once per element and the row stays in
  L1/L2 between sweeps, so the logits cross memory once and the gradient
  once; softmax is never stored in an array of its own. With ``out=logits``
  sweep 2 overwrites x_c by e_c after reading it, which is why x_y is read
  first. Sweeps 1 and 2 are C (fl_simd.h), where ``#pragma omp simd`` allows
  that aliasing and vectorises the reductions.
- Everything is computed from x_c - max: exp never sees a positive number, and
  lse - x_y = log(s) - (x_y - max) keeps its precision for logits of 1e30.
- Per-row scalars (log s, the focal factors) are computed in double; the
  per-element sweeps in the input's precision, where they vectorise.
- Each row's loss is written (in double) to ``rows``; the caller reduces
  them in a fixed order, so results do not depend on the number of threads.
- Optional arrays arrive empty when absent (weights, sample weights, grad,
  hess) and become NULL pointers here. Labels were range-checked by
  fastloss._validation, which is what lets bounds checking stay off.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, pow
from libc.stdint cimport int64_t

from ._math cimport fl_vector_bits

cdef extern from "fl_simd.h" nogil:
    float fl_rowmaxf(const float *x, Py_ssize_t n)
    double fl_rowmaxd(const double *x, Py_ssize_t n)
    float fl_expsumf(const float *x, float shift, float *e, Py_ssize_t n)
    double fl_expsumd(const double *x, double shift, double *e, Py_ssize_t n)
    float fl_expsum_dotf(const float *x, float shift, float *e, const float *w,
                         float *dot, Py_ssize_t n)
    double fl_expsum_dotd(const double *x, double shift, double *e, const double *w,
                          double *dot, Py_ssize_t n)
    float fl_expsum_softf(const float *x, float shift, float *e, const float *t,
                          const float *w, float eps, float *qsum, float *dot, Py_ssize_t n)
    double fl_expsum_softd(const double *x, double shift, double *e, const double *t,
                           const double *w, double eps, double *qsum, double *dot,
                           Py_ssize_t n)

cdef extern from *:
    """
    static int fl_openmp_enabled(void) {
    #ifdef _OPENMP
        return 1;
    #else
        return 0;
    #endif
    }
    """
    int fl_openmp_enabled()


def openmp_enabled():
    """Whether these kernels were compiled with OpenMP (else they run serially)."""
    return bool(fl_openmp_enabled())


def vector_bits():
    """The widest vectors (bits) the compiler was asked to use in this module's loops."""
    return fl_vector_bits()


# -- sweeps, dispatched on the dtype ------------------------------------------
cdef inline floating rowmax(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fl_rowmaxf(x, n)
    else:
        return fl_rowmaxd(x, n)


cdef inline floating expsum(const floating *x, floating shift, floating *e,
                            Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fl_expsumf(x, shift, e, n)
    else:
        return fl_expsumd(x, shift, e, n)


cdef inline floating expsum_dot(const floating *x, floating shift, floating *e,
                                const floating *w, floating *dot, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fl_expsum_dotf(x, shift, e, w, dot, n)
    else:
        return fl_expsum_dotd(x, shift, e, w, dot, n)


cdef inline floating expsum_soft(const floating *x, floating shift, floating *e,
                                 const floating *t, const floating *w, floating eps,
                                 floating *qsum, floating *dot, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fl_expsum_softf(x, shift, e, t, w, eps, qsum, dot, n)
    else:
        return fl_expsum_softd(x, shift, e, t, w, eps, qsum, dot, n)


cdef inline const floating* vec_or_null(const floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline void softmax_hess(const floating *e, floating *h, double s, double coef,
                              Py_ssize_t n) noexcept nogil:
    """h_c = coef p_c (1 - p_c), p_c = e_c / s, from the stored e_c.

    1 - p_c is formed as (s - e_c) / s, except for the row's largest class
    (e_c == 1), whose 1 - p is the sum of the other terms: s - 1 would round
    a tiny positive Hessian to 0.
    """
    cdef Py_ssize_t c, top = -1
    cdef double rest = 0
    cdef floating f = <floating>(coef / (s * s))
    for c in range(n):
        h[c] = f * e[c] * (<floating>s - e[c])
    for c in range(n):
        if e[c] == 1 and top < 0:
            top = c
        else:
            rest += e[c]
    if top >= 0:
        h[top] = <floating>(coef * rest / (s * s))


# -- point functions: one row each --------------------------------------------
cdef double ce_hard_row(const floating *x, floating *g, floating *h, const floating *w,
                        Py_ssize_t n, Py_ssize_t y, double eps, double wsum,
                        double k) noexcept nogil:
    """Cross-entropy of one row with label y; k * grad into g, k * hess into h.

    loss = a (lse - x_y) + b sum_c w_c (lse - x_c),  a = (1 - eps) w_y, b = eps / C
    grad = (a + b W) p - a [c == y] - b w,          hess = (a + b W) p (1 - p)
    """
    cdef floating xy = x[y]  # read before sweep 2: g may be x
    cdef floating m = rowmax(x, n)
    cdef floating dot = 0
    cdef double a = (1 - eps) * (w[y] if w != NULL else 1.0)
    cdef double b = eps / n
    cdef double s, log_s, coef
    cdef floating fcoef, fb
    cdef Py_ssize_t c
    if b != 0:
        s = expsum_dot(x, m, g, w, &dot, n)  # also dot = sum_c w_c (x_c - m)
    else:
        s = expsum(x, m, g, n)
    log_s = log(s)
    if g == NULL:
        return a * (log_s - (xy - m)) + b * (wsum * log_s - dot)
    coef = (a + b * wsum) * k
    if h != NULL:
        softmax_hess(g, h, s, coef, n)
    fcoef = <floating>(coef / s)  # e_c * fcoef = (a + b W) k p_c
    if b == 0:
        for c in range(n):
            g[c] = g[c] * fcoef
    elif w == NULL:
        fb = <floating>(b * k)
        for c in range(n):
            g[c] = g[c] * fcoef - fb
    else:
        fb = <floating>(b * k)
        for c in range(n):
            g[c] = g[c] * fcoef - fb * w[c]
    g[y] -= <floating>(a * k)
    return a * (log_s - (xy - m)) + b * (wsum * log_s - dot)


cdef double ce_soft_row(const floating *x, const floating *t, floating *g, floating *h,
                        const floating *w, Py_ssize_t n, double eps,
                        double k) noexcept nogil:
    """Cross-entropy of one row with target probabilities t.

    q = ((1 - eps) t + eps / C) w;  loss = sum_c q_c (lse - x_c)
    grad = p Q - q,  hess = Q p (1 - p),  Q = sum_c q_c
    """
    cdef floating m = rowmax(x, n)
    cdef floating qsum = 0, dot = 0
    cdef double s = expsum_soft(x, m, g, t, w, <floating>eps, &qsum, &dot, n)
    cdef double loss = qsum * log(s) - dot
    cdef floating fcoef, keep = <floating>(1 - eps), spread = <floating>(eps / n)
    cdef floating fk = <floating>k
    cdef Py_ssize_t c
    if g == NULL:
        return loss
    if h != NULL:
        softmax_hess(g, h, s, qsum * k, n)
    fcoef = <floating>(qsum * k / s)
    if w == NULL:
        for c in range(n):
            g[c] = g[c] * fcoef - (keep * t[c] + spread) * fk
    else:
        for c in range(n):
            g[c] = g[c] * fcoef - (keep * t[c] + spread) * w[c] * fk
    return loss


cdef double focal_row(const floating *x, floating *g, floating *h, Py_ssize_t n,
                      Py_ssize_t y, double wy, double gamma, double k) noexcept nogil:
    """Softmax focal loss of one row: -w_y u^gamma log p, p = p_y, u = 1 - p.

    u is the other classes' share, sum_{c != y} e_c / s, never 1 - p. With
    lp = log p and r = lp / u (-> -1 as u -> 0):
      G    = u^gamma (1 - gamma p r)                     grad_c = w k G (p_c - [c == y])
      A    = gamma p u^(gamma+1) ((gamma - 1) p r - 2 - lp)
      hess = w k (p_c (1 - p_c) G - (e_c / s_other)^2 A)   for c != y
      hess = w k (p u G - A)                               for c == y
    A is (p_c - [c == y])^2 dG/dlp with the u^(gamma-1) of dG/dlp folded in,
    so nothing diverges as p -> 1, also for 0 < gamma < 1.
    """
    cdef floating xy = x[y]  # read before sweep 2: g may be x
    cdef floating m = rowmax(x, n)
    cdef floating *gy = g + y + 1 if g != NULL else NULL
    # Sweep 2 in two parts around y gives the other classes' sum directly.
    cdef double s_other = expsum(x, m, g, y) + expsum(x + y + 1, m, gy, n - y - 1)
    cdef double ey = exp(<double>(xy - m))
    cdef double s = s_other + ey
    # p_y near 1 only when y holds the max; then log p = -log1p(s_other) exactly.
    cdef double lp = -log1p(s_other) if xy == m else (xy - m) - log(s)
    cdef double u = s_other / s, p = ey / s
    cdef double r = lp / u if u > 0 else -1.0
    cdef double ug = pow(u, gamma)
    cdef double G = ug * (1 - gamma * p * r)
    cdef double A, inv_other
    cdef floating fg, fa, fi, q
    cdef Py_ssize_t c
    if g == NULL:
        return -wy * ug * lp
    g[y] = <floating>ey
    if h != NULL:
        A = gamma * p * ug * u * ((gamma - 1) * p * r - 2 - lp)
        inv_other = 1 / s_other if s_other > 0 else 0.0
        fg = <floating>(wy * k * G / (s * s))
        fa = <floating>(wy * k * A)
        fi = <floating>inv_other
        for c in range(n):
            q = g[c] * fi
            h[c] = fg * g[c] * (<floating>s - g[c]) - q * q * fa
        h[y] = <floating>(wy * k * (p * u * G - A))
    fg = <floating>(wy * k * G / s)
    for c in range(n):
        g[c] = g[c] * fg
    g[y] = <floating>(-wy * k * G * u)
    return -wy * ug * lp


# -- kernels: prange over rows ------------------------------------------------
cdef inline floating* data_or_null(floating[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef inline void zero_row(floating *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t c
    if a != NULL:
        for c in range(n):
            a[c] = 0


def ce_hard(const floating[:, ::1] x, const int64_t[::1] y, const floating[::1] w,
            const floating[::1] sw, double eps, int64_t ignore_index, double scale,
            floating[:, ::1] grad, floating[:, ::1] hess, double[::1] rows, int n_threads):
    cdef Py_ssize_t i, j, n = x.shape[0], C = x.shape[1]
    cdef const floating *wp = vec_or_null(w)
    cdef floating *gp = data_or_null(grad)
    cdef floating *hp = data_or_null(hess)
    cdef bint has_sw = sw.shape[0] > 0
    cdef double wsum = 0, k
    if n == 0:
        return
    # W = sum of the class weights enters only through label smoothing; left 0
    # without it, so that a NaN weight reaches only the samples of its class
    if eps != 0:
        for j in range(C):
            wsum += w[j] if wp != NULL else 1.0
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            if y[i] == ignore_index:
                rows[i] = 0
                zero_row(gp + i * C if gp != NULL else NULL, C)
                zero_row(hp + i * C if hp != NULL else NULL, C)
                continue
            k = scale * (sw[i] if has_sw else 1.0)
            rows[i] = ce_hard_row(&x[i, 0], gp + i * C if gp != NULL else NULL,
                                  hp + i * C if hp != NULL else NULL, wp, C, y[i], eps, wsum, k)
            if has_sw:
                rows[i] = rows[i] * sw[i]


def ce_soft(const floating[:, ::1] x, const floating[:, ::1] t, const floating[::1] w,
            const floating[::1] sw, double eps, double scale, floating[:, ::1] grad,
            floating[:, ::1] hess, double[::1] rows, int n_threads):
    cdef Py_ssize_t i, n = x.shape[0], C = x.shape[1]
    cdef const floating *wp = vec_or_null(w)
    cdef floating *gp = data_or_null(grad)
    cdef floating *hp = data_or_null(hess)
    cdef bint has_sw = sw.shape[0] > 0
    cdef double k
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            k = scale * (sw[i] if has_sw else 1.0)
            rows[i] = ce_soft_row(&x[i, 0], &t[i, 0], gp + i * C if gp != NULL else NULL,
                                  hp + i * C if hp != NULL else NULL, wp, C, eps, k)
            if has_sw:
                rows[i] = rows[i] * sw[i]


def focal(const floating[:, ::1] x, const int64_t[::1] y, const floating[::1] w,
          const floating[::1] sw, double gamma, int64_t ignore_index, double scale,
          floating[:, ::1] grad, floating[:, ::1] hess, double[::1] rows, int n_threads):
    cdef Py_ssize_t i, n = x.shape[0], C = x.shape[1]
    cdef floating *gp = data_or_null(grad)
    cdef floating *hp = data_or_null(hess)
    cdef bint has_w = w.shape[0] > 0, has_sw = sw.shape[0] > 0
    cdef double k, wy
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            if y[i] == ignore_index:
                rows[i] = 0
                zero_row(gp + i * C if gp != NULL else NULL, C)
                zero_row(hp + i * C if hp != NULL else NULL, C)
                continue
            wy = w[y[i]] if has_w else 1.0
            k = scale * (sw[i] if has_sw else 1.0)
            rows[i] = focal_row(&x[i, 0], gp + i * C if gp != NULL else NULL,
                                hp + i * C if hp != NULL else NULL, C, y[i], wy, gamma, k)
            if has_sw:
                rows[i] = rows[i] * sw[i]

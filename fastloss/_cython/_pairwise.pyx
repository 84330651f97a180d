"""Pairwise kernels: triplet margin, contrastive and margin ranking losses.

Why they are built this way:
- One ``prange`` iteration per row (static schedule; margin ranking, whose rows
  are single numbers: per block of elements, with one partial sum per block
  unless ``reduction="none"``), one closed-form point function per loss
  (``triplet_row``, ``contrastive_row``, ``ranking_block``)
  that returns the row's loss and, when gradient buffers are given, writes
  k * gradient into them: the loss and its gradient come from the same code.
  Each row's loss goes (in double) to ``rows``; the caller adds them in a
  fixed order, so results do not depend on the number of threads.
- A row takes two sweeps over its D values: (1) the distances, one
  vectorised reduction each (the row is in L1 afterwards), (2) the gradients,
  re-forming v = x - y + eps from the inputs. Sweep 2 reads every input at j
  before it writes any gradient at j, so ``out=`` may be the inputs
  themselves, in any order.
- Element arithmetic (x - y + eps) is in the input's precision, as PyTorch
  does; the D-sums, the distances and the per-row scalars are in double.
  float32 sums of squares cannot overflow or underflow in double; a float64
  sum that does (|v| beyond ~1e154 or below ~1e-146) is redone with the row
  scaled by its largest |v|, so the distance is right wherever it is
  representable. The general-p norm always scales (|v|^p overflows easily).
- v = (x - y) + eps is one fma with a multiplier ``one`` that the compiler
  cannot see is 1 (it comes from the caller): the build's -fassociative-math
  could otherwise rewrite it as (x + eps) - y, which loses eps when x == y.
- Optional arrays arrive empty when absent (sample weights, gradients).
  Shapes were checked by fastloss._validation, which is what lets bounds
  checking stay off.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport DBL_MAX
from libc.math cimport NAN, fabs, pow, sqrt

from ._math cimport ffma, fl_vector_bits

cdef extern from *:
    """
    /* Sweep 2 of the triplet loss for p = 2, in C for one pragma. Every input
     * is read at j before any gradient is written at j, so iterations are
     * independent even when out= is the inputs themselves; but with three
     * inputs and three outputs the compiler cannot prove it (too many alias
     * pairs to test at run time) and leaves the loop scalar. FL_IVDEP says so
     * (GCC ivdep, clang assume_safety; both honoured without OpenMP). */
    #if defined(__clang__)
    #define FL_IVDEP _Pragma("clang loop vectorize(assume_safety)")
    #elif defined(__GNUC__)
    #define FL_IVDEP _Pragma("GCC ivdep")
    #else
    #define FL_IVDEP
    #endif
    #define FL_TRIPLET_SWEEPS(SFX, T, FMA)                                              \
    static void fl_triplet_grad2##SFX(const T *a, const T *p, const T *n, T *ga, T *gp, \
                                      T *gn, double w_ap, double w_an, T eps, T one,    \
                                      Py_ssize_t D)                                     \
    {                                                                                   \
        FL_IVDEP                                                                        \
        for (Py_ssize_t j = 0; j < D; j++) {                                            \
            T xa = a[j], xp = p[j], xn = n[j];                                          \
            T v1 = FMA(xa - xp, one, eps), v2 = FMA(xa - xn, one, eps);                 \
            ga[j] = (T)(w_ap * v1 - w_an * v2);                                         \
            gp[j] = (T)(-w_ap * v1);                                                    \
            gn[j] = (T)(w_an * v2);                                                     \
        }                                                                               \
    }                                                                                   \
    static void fl_triplet_grad3##SFX(const T *a, const T *p, const T *n, T *ga, T *gp, \
                                      T *gn, double w_ap, double w_an, double w_pn,     \
                                      T eps, T one, Py_ssize_t D)                       \
    {                                                                                   \
        FL_IVDEP                                                                        \
        for (Py_ssize_t j = 0; j < D; j++) {                                            \
            T xa = a[j], xp = p[j], xn = n[j];                                          \
            T v1 = FMA(xa - xp, one, eps), v2 = FMA(xa - xn, one, eps);                 \
            T v3 = FMA(xp - xn, one, eps);                                              \
            ga[j] = (T)(w_ap * v1 - w_an * v2);                                         \
            gp[j] = (T)(-w_ap * v1 - w_pn * v3);                                        \
            gn[j] = (T)(w_an * v2 + w_pn * v3);                                         \
        }                                                                               \
    }
    FL_TRIPLET_SWEEPS(f, float, fmaf)
    FL_TRIPLET_SWEEPS(d, double, fma)

    /* Margin ranking over a block of n elements: z = margin - y (x1 - x2), the loss
     * max(0, z) times w = sw (1 without), gradient g1 = -g2 = -y k w where z >= 0
     * (PyTorch passes it at 0); NaN stays NaN in both. The losses go to rows, or
     * (rows == NULL) their sum is returned. In C for the same pragma: with seven
     * arrays the compiler would keep the loop scalar, and its two data-dependent
     * branches per element mispredict half the time; vectorised, they are selects. */
    #define FL_RANKING_SWEEP(SFX, T)                                                    \
    static double fl_ranking##SFX(const T *x1, const T *x2, const T *y, const T *sw,    \
                                  double margin, double scale, T *g1, T *g2,            \
                                  double *rows, Py_ssize_t n)                           \
    {                                                                                   \
        double s = 0;                                                                   \
        FL_IVDEP                                                                        \
        for (Py_ssize_t i = 0; i < n; i++) {                                            \
            T d = x1[i] - x2[i];                                                        \
            double yi = y[i], w = sw != NULL ? (double)sw[i] : 1.0;                     \
            double z = margin - yi * d;                                                 \
            double k = yi * scale * w;                                                  \
            double l = (z < 0 ? 0.0 : z) * w;                                           \
            if (g1 != NULL) { /* each its own select: no -0 where the hinge is off */   \
                g1[i] = (T)(z >= 0 ? -k : (z < 0 ? 0.0 : z));                           \
                g2[i] = (T)(z >= 0 ? k : (z < 0 ? 0.0 : z));                            \
            }                                                                           \
            if (rows != NULL)                                                           \
                rows[i] = l;                                                            \
            else                                                                        \
                s += l;                                                                 \
        }                                                                               \
        return s;                                                                       \
    }
    FL_RANKING_SWEEP(f, float)
    FL_RANKING_SWEEP(d, double)
    """
    void fl_triplet_grad2f(const float *a, const float *p, const float *n, float *ga,
                           float *gp, float *gn, double w_ap, double w_an, float eps,
                           float one, Py_ssize_t D) nogil
    void fl_triplet_grad2d(const double *a, const double *p, const double *n, double *ga,
                           double *gp, double *gn, double w_ap, double w_an, double eps,
                           double one, Py_ssize_t D) nogil
    void fl_triplet_grad3f(const float *a, const float *p, const float *n, float *ga,
                           float *gp, float *gn, double w_ap, double w_an, double w_pn,
                           float eps, float one, Py_ssize_t D) nogil
    double fl_rankingf(const float *x1, const float *x2, const float *y, const float *sw,
                       double margin, double scale, float *g1, float *g2, double *rows,
                       Py_ssize_t n) nogil
    double fl_rankingd(const double *x1, const double *x2, const double *y, const double *sw,
                       double margin, double scale, double *g1, double *g2, double *rows,
                       Py_ssize_t n) nogil
    void fl_triplet_grad3d(const double *a, const double *p, const double *n, double *ga,
                           double *gp, double *gn, double w_ap, double w_an, double w_pn,
                           double eps, double one, Py_ssize_t D) nogil

cpdef enum:
    # how the p-norm is computed (the kernel's ``kind``)
    P_ZERO     # p = 0: number of non-zero components; gradient 0
    P_ONE      # p = 1: sum |v|; gradient sign(v) (0 at v = 0)
    P_TWO      # p = 2: sqrt(sum v^2); gradient v / d
    P_INF      # p = inf: max |v|; gradient sign(v) / ties at the maximum, as PyTorch
    P_GENERAL  # other p > 0: m (sum (|v| / m)^p)^(1/p), m = max |v|

cdef double HUGE_SUM = 1e300  # above: a float64 sum of squares may have overflowed
cdef double TINY_SUM = 1e-290  # below: it may have lost digits to denormals (or be 0 from underflow)


# -- one row's norm and its gradient ---------------------------------------------
cdef inline floating diff(floating x, floating y, floating eps, floating one) noexcept nogil:
    """v = (x - y) + eps, rounded as written (see the module docstring)."""
    return ffma(x - y, one, eps)


cdef double absmax(const floating *x, const floating *y, floating eps, floating one,
                   Py_ssize_t D, Py_ssize_t *ties) noexcept nogil:
    """max_j |v_j| (NaN if any v_j is NaN); with ties != NULL, how many reach it."""
    cdef Py_ssize_t j, nan = 0
    cdef double m = 0, a
    for j in range(D):
        a = fabs(<double>diff(x[j], y[j], eps, one))
        nan += a != a
        m = a if a > m else m
    if nan:
        return NAN
    if ties != NULL:
        ties[0] = 0
        for j in range(D):
            ties[0] += fabs(<double>diff(x[j], y[j], eps, one)) == m
    return m


cdef double scaled_l2(const floating *x, const floating *y, floating eps, floating one,
                      Py_ssize_t D) noexcept nogil:
    """||x - y + eps||_2 as m ||v / m||_2, m = max |v|: no overflow, no denormals."""
    cdef Py_ssize_t j
    cdef double m = absmax(x, y, eps, one, D, NULL), s = 0, v
    if m == 0 or m > DBL_MAX:
        return m
    for j in range(D):
        v = diff(x[j], y[j], eps, one) / m
        s += v * v
    return m * sqrt(s)


cdef double pdist(const floating *x, const floating *y, floating eps, floating one,
                  int kind, double p, Py_ssize_t D, Py_ssize_t *ties) noexcept nogil:
    """d = ||x - y + eps||_p of one row, in double; for p = inf, ties as in ``absmax``."""
    cdef Py_ssize_t j
    cdef double s = 0, m
    cdef floating w
    if kind == P_TWO:
        for j in range(D):
            w = diff(x[j], y[j], eps, one)
            s += <double>w * w
        # float32 squares neither overflow nor underflow in double; a float64
        # sum that did is redone with the row scaled by its largest |v|
        if floating is double:
            if not (s != s or TINY_SUM <= s <= HUGE_SUM):
                return scaled_l2(x, y, eps, one, D)
        return sqrt(s)
    if kind == P_ONE:
        for j in range(D):
            s += fabs(<double>diff(x[j], y[j], eps, one))
        return s
    if kind == P_ZERO:
        for j in range(D):
            w = diff(x[j], y[j], eps, one)
            if w != 0:
                s += 1.0 if w == w else <double>w  # NaN stays NaN
        return s
    m = absmax(x, y, eps, one, D, ties if kind == P_INF else NULL)
    if kind == P_INF or m == 0 or m != m or m > DBL_MAX:
        return m
    for j in range(D):
        s += pow(fabs(<double>diff(x[j], y[j], eps, one)) / m, p)
    return m * pow(s, 1 / p)


cdef inline double inverse(double d) noexcept nogil:
    """1 / d; 0 for d = 0 (the gradient of a norm at v = 0 is 0), NaN for NaN."""
    return 1 / d if d > 0 else (0.0 if d == 0 else d)


cdef inline double dnorm(floating v, double d, double inv, int kind, double p,
                         double inv_ties) noexcept nogil:
    """d ||v||_p / d v_j for one component v = v_j of a row whose norm is d.

    inv = 1 / d (0 when d = 0: the gradient at v = 0 is 0, as PyTorch's);
    inv_ties = 1 / (number of |v_j| equal to the maximum) for p = inf.
    """
    cdef double a = fabs(<double>v), sgn = 1.0 if v > 0 else (-1.0 if v < 0 else <double>v * 0)
    if kind == P_TWO:
        return v * inv
    if kind == P_ONE:
        return sgn
    if kind == P_ZERO:
        return 0.0
    if kind == P_INF:
        return sgn * inv_ties if a == d else 0.0
    return sgn * pow(a * inv, p - 1) if a > 0 else sgn  # (|v| / d)^(p-1): bounded by 1


# -- point functions: one row each ------------------------------------------------
cdef double triplet_row(const floating *a, const floating *pos, const floating *neg,
                        floating *ga, floating *gp, floating *gn, Py_ssize_t D,
                        double margin, int kind, double p, floating eps, floating one,
                        bint swap, double k) noexcept nogil:
    """max(0, margin + d(a, p) - d_neg), d_neg = d(a, n), or min(d(a, n), d(p, n)) with swap.

    With u_xy = d d(x, y) / d v (v = x - y + eps) and the hinge active (z >= 0,
    PyTorch passes the gradient at 0), c_an / c_pn the shares of d_neg (1 / 0,
    0 / 1 when swapped, 1/2 each on a tie, as torch.min):
      g_a = k (u_ap - c_an u_an),  g_p = -k (u_ap + c_pn u_pn),  g_n = k (c_an u_an + c_pn u_pn)
    """
    cdef Py_ssize_t j, t_ap = 1, t_an = 1, t_pn = 1
    cdef double d_ap = pdist(a, pos, eps, one, kind, p, D, &t_ap)
    cdef double d_an = pdist(a, neg, eps, one, kind, p, D, &t_an)
    cdef double d_pn = 0, d_neg = d_an, c_an = 1, c_pn = 0
    cdef double z, i_ap, i_an, i_pn, w_ap, w_an, w_pn, u1, u2, u3
    cdef floating xa, xp, xn
    if swap:
        d_pn = pdist(pos, neg, eps, one, kind, p, D, &t_pn)
        if d_pn < d_an:
            d_neg, c_an, c_pn = d_pn, 0.0, 1.0
        elif d_pn == d_an:
            c_an, c_pn = 0.5, 0.5
    z = margin + d_ap - d_neg
    if ga == NULL:
        return z if not z < 0 else 0.0
    if z < 0:  # inactive: a zero gradient (NaN z keeps going and spreads NaN)
        for j in range(D):
            ga[j] = 0
            gp[j] = 0
            gn[j] = 0
        return 0.0
    i_ap = inverse(d_ap)
    i_an = inverse(d_an)
    i_pn = inverse(d_pn)
    if kind == P_TWO:
        w_ap = k * i_ap  # used as temporary: k u = k v / d
        w_an = k * c_an * i_an
        w_pn = k * c_pn * i_pn
        # sweep 2 (C above): ga = w_ap v1 - w_an v2, gp = -w_ap v1 - w_pn v3, gn = w_an v2 + w_pn v3
        if floating is float:
            if c_pn == 0:
                fl_triplet_grad2f(a, pos, neg, ga, gp, gn, w_ap, w_an, eps, one, D)
            else:
                fl_triplet_grad3f(a, pos, neg, ga, gp, gn, w_ap, w_an, w_pn, eps, one, D)
        else:
            if c_pn == 0:
                fl_triplet_grad2d(a, pos, neg, ga, gp, gn, w_ap, w_an, eps, one, D)
            else:
                fl_triplet_grad3d(a, pos, neg, ga, gp, gn, w_ap, w_an, w_pn, eps, one, D)
        return z
    w_ap, w_an, w_pn = k, k * c_an, k * c_pn
    for j in range(D):
        xa = a[j]  # read all three before writing: out may be the inputs
        xp = pos[j]
        xn = neg[j]
        u1 = w_ap * dnorm(diff(xa, xp, eps, one), d_ap, i_ap, kind, p, 1.0 / t_ap)
        u2 = 0.0
        u3 = 0.0
        if c_an != 0:
            u2 = w_an * dnorm(diff(xa, xn, eps, one), d_an, i_an, kind, p, 1.0 / t_an)
        if c_pn != 0:
            u3 = w_pn * dnorm(diff(xp, xn, eps, one), d_pn, i_pn, kind, p, 1.0 / t_pn)
        ga[j] = <floating>(u1 - u2)  # gradient
        gp[j] = <floating>(-u1 - u3)
        gn[j] = <floating>(u2 + u3)
    return z


cdef double contrastive_row(const floating *x1, const floating *x2, floating *g1,
                            floating *g2, Py_ssize_t D, double y, double margin,
                            double k) noexcept nogil:
    """1/2 y d^2 + 1/2 (1 - y) max(0, m - d)^2, d = ||x1 - x2||_2.

    g1 = -g2 = k c v, v = x1 - x2, c = y - (1 - y) (m - d) / d where m > d
    (c = y where the hinge is inactive, and at d = 0, where v = 0 anyway).
    d^2 is the sum of squares itself, never sqrt(s)^2.
    """
    cdef Py_ssize_t j
    cdef double s = 0, d, h, c, loss
    cdef floating v, one = 1
    for j in range(D):
        v = x1[j] - x2[j]
        s += <double>v * v
    d = sqrt(s)
    # (a dissimilar pair at d = inf costs 0, not 0 * inf; a NaN still propagates)
    loss = 0.5 * y * s if y != 0 or s != s else 0.0
    if floating is double:
        if not (s != s or TINY_SUM <= s <= HUGE_SUM):  # as in pdist
            d = scaled_l2(x1, x2, <floating>0, one, D)
            loss = (0.5 * y * d) * d if y != 0 or d != d else 0.0
    h = margin - d
    c = y
    if h > 0:
        loss += 0.5 * (1 - y) * h * h  # loss
        if d > 0:
            c = y - (1 - y) * h / d  # used as temporary
    elif d != d:
        c = d
    if g1 != NULL:
        c *= k
        for j in range(D):
            v = x1[j] - x2[j]  # both read before writing: out may be the inputs
            g1[j] = <floating>(c * v)
            g2[j] = <floating>(-c * v)
    return loss


cdef inline double ranking_block(const floating *x1, const floating *x2, const floating *y,
                                 const floating *sw, double margin, double scale,
                                 floating *g1, floating *g2, double *rows,
                                 Py_ssize_t n) noexcept nogil:
    """max(0, margin - y (x1 - x2)) of n elements into rows (or their sum, rows = NULL);
    g1 = -g2 = -y k where the hinge is >= 0 (PyTorch). The point function is written in
    C above (FL_RANKING_SWEEP)."""
    if floating is float:
        return fl_rankingf(x1, x2, y, sw, margin, scale, g1, g2, rows, n)
    else:
        return fl_rankingd(x1, x2, y, sw, margin, scale, g1, g2, rows, n)


# -- kernels: prange over rows --------------------------------------------------
def triplet(const floating[:, ::1] a, const floating[:, ::1] pos, const floating[:, ::1] neg,
            const floating[::1] sw, double margin, int kind, double p, double eps, bint swap,
            double one, double scale, floating[:, ::1] ga, floating[:, ::1] gp,
            floating[:, ::1] gn, double[::1] rows, int n_threads):
    cdef Py_ssize_t i, n = a.shape[0], D = a.shape[1]
    cdef bint has_sw = sw.shape[0] > 0, has_g = ga.shape[1] > 0 and D > 0
    cdef double k
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            k = scale * (sw[i] if has_sw else 1.0)
            rows[i] = triplet_row(&a[i, 0] if D > 0 else NULL, &pos[i, 0] if D > 0 else NULL,
                                  &neg[i, 0] if D > 0 else NULL,
                                  &ga[i, 0] if has_g else NULL, &gp[i, 0] if has_g else NULL,
                                  &gn[i, 0] if has_g else NULL, D, margin, kind, p,
                                  <floating>eps, <floating>one, swap, k)
            if has_sw:
                rows[i] = rows[i] * sw[i]


def contrastive(const floating[:, ::1] x1, const floating[:, ::1] x2, const floating[::1] y,
                const floating[::1] sw, double margin, double scale, floating[:, ::1] g1,
                floating[:, ::1] g2, double[::1] rows, int n_threads):
    cdef Py_ssize_t i, n = x1.shape[0], D = x1.shape[1]
    cdef bint has_sw = sw.shape[0] > 0, has_g = g1.shape[1] > 0 and D > 0
    cdef double k
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            k = scale * (sw[i] if has_sw else 1.0)
            rows[i] = contrastive_row(&x1[i, 0] if D > 0 else NULL, &x2[i, 0] if D > 0 else NULL,
                                      &g1[i, 0] if has_g else NULL,
                                      &g2[i, 0] if has_g else NULL, D, y[i], margin, k)
            if has_sw:
                rows[i] = rows[i] * sw[i]


def ranking(const floating[::1] x1, const floating[::1] x2, const floating[::1] y,
            const floating[::1] sw, double margin, double scale, Py_ssize_t block, bint none,
            floating[::1] g1, floating[::1] g2, double[::1] rows, int n_threads):
    """Elements in blocks of ``block`` (fixed by the caller): per-element losses into rows
    with ``none``, else one partial sum per block, added by the caller in a fixed order."""
    cdef Py_ssize_t b, lo, n = x1.shape[0]
    cdef bint has_sw = sw.shape[0] > 0, has_g = g1.shape[0] > 0
    cdef Py_ssize_t n_blocks = (n + block - 1) // block
    cdef double s
    if block < 1:
        raise ValueError(f"block: must be >= 1, got {block}")
    if n == 0:
        return
    with nogil:
        for b in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = b * block
            s = ranking_block(&x1[lo], &x2[lo], &y[lo], &sw[lo] if has_sw else NULL, margin,
                              scale, &g1[lo] if has_g else NULL, &g2[lo] if has_g else NULL,
                              &rows[lo] if none else NULL, min(block, n - lo))
            if not none:
                rows[b] = s


def vector_bits():
    """The widest vectors (bits) the compiler was asked to use in this module's loops."""
    return fl_vector_bits()

"""Elementwise kernels: BCE with logits, sigmoid focal, Huber, MSE, L1, pinball.

Why they are built this way:
- One closed-form point function per loss gives (loss, gradient, Hessian) of
  one element, written once and used for all three: the three share their
  temporaries (one exp(-|x|) serves sigmoid, softplus and the Hessian).
- The elements are cut in blocks of ``block`` (fixed by the caller, not by
  the thread count). ``point_loop`` runs one loss's point function over a
  block and writes each element once: the gradient (and Hessian) straight
  into the outputs, times the per-element multiplier (sample weight x BCE
  weight, if any) and the scale, the loss into stack scratch. The loss is picked once per block, so each loop is specialised
  and vectorises. The data crosses memory once: for Huber, MSE and L1 that
  is the whole cost.
- The losses are then written out ("none") or summed in double by a loop of
  their own (a double accumulator in the point loop would halve its vector
  width). Block sums are added by the caller in a fixed order: results do
  not depend on the number of threads.
- Constants are typed (``one``, ``zero``...): Cython writes a bare ``1`` as
  the double ``1.0``, which would silently compute float32 expressions in
  double (a double division costs twice a float one, per lane).
- Everything optional arrives as an empty array (no multiplier, no grad, no
  hess); a per-element operand (pos_weight, quantile) of length 1 is a scalar.
- No output may overlap an input (the Python caller copies for out=input):
  GCC versions each loop on a runtime overlap test, and the scalar version
  could round differently.
"""
from cython cimport floating
from cython.parallel cimport prange
from ._math cimport fexp, ffma, fl_vector_bits, flog, flog1p_unit

cpdef enum:
    BCE
    SIGMOID_FOCAL
    HUBER
    MSE
    L1
    PINBALL

cdef enum:
    MAX_BLOCK = 2048  # the scratch buffers' length; the caller's block must not exceed it
    TAIL = 64  # a multiple of every vector length (16 float / 8 double lanes), divides MAX_BLOCK


# -- point functions: (loss, gradient, Hessian) of one element -----------------
cdef inline floating sigmoid_parts(floating x, floating *e, floating *s2, floating *sig,
                                   floating *sig_neg) noexcept nogil:
    """e = exp(-|x|), s2 = s(x) s(-x), s(x), s(-x); returns log1p(e). Exact in both tails."""
    cdef floating inv, one = 1
    e[0] = fexp(-x if x >= 0 else x)
    inv = one / (one + e[0])
    s2[0] = e[0] * inv * inv
    sig[0] = inv if x >= 0 else e[0] * inv
    sig_neg[0] = e[0] * inv if x >= 0 else inv
    return flog1p_unit(e[0])


cdef inline void bce_point(floating x, floating t, floating pw, floating *l, floating *g,
                           floating *h) noexcept nogil:
    """l = pw t softplus(-x) + (1-t) softplus(x); g = (1-t) s(x) - pw t s(-x); h = (1-t+pw t) s(x) s(-x)."""
    cdef floating e, s2, sig, sig_neg, zero = 0, one = 1
    cdef floating lp = sigmoid_parts(x, &e, &s2, &sig, &sig_neg)
    cdef floating sp = (x if x > zero else zero) + lp  # softplus(x)
    cdef floating sp_neg = (-x if x < zero else zero) + lp  # softplus(-x)
    cdef floating u = one - t
    l[0] = pw * t * sp_neg + u * sp
    g[0] = u * sig - pw * t * sig_neg
    h[0] = s2 + (pw - one) * t * s2  # exactly s2 for pw = 1, as the focal loss at gamma = 0


cdef inline void sigmoid_focal_point(floating x, floating t, double alpha, double gamma,
                                     bint square, floating *l, floating *g,
                                     floating *h) noexcept nogil:
    """torchvision's focal loss alpha_t BCE(x, t) q^gamma, q = 1 - p_t, in log space.

    q = t s(-x) + (1-t) s(x) = (c e + 1 - c) / (1 + e) with c the target weight
    of the small sigmoid (t for x >= 0, 1 - t below); log q = log(c e + 1 - c)
    - log1p(e), where c = 1 gives log(e) = -|x| (no log of 0). With
    r = s(x) s(-x) / q (bounded by 1) and F = q^gamma:
      g = alpha_t F H,  H = d1 + gamma (1-2t) ce r,   d1 = (1-t) s(x) - t s(-x)
      h = alpha_t F (gamma (1-2t) r H + s2 + gamma (1-2t) (d1 r + ce r'))
      r' = r (s(-x) - s(x)) - (1-2t) r^2,  s2 = s(x) s(-x)
    ``square`` (gamma = 2, the default) takes F = q q with q = den / (1 + e),
    as accurate and a log and an exp cheaper.
    """
    cdef floating e, s2, sig, sig_neg, zero = 0, one = 1, two = 2
    cdef floating lp = sigmoid_parts(x, &e, &s2, &sig, &sig_neg)
    cdef floating ax = x if x >= zero else -x
    cdef floating u = one - t
    cdef floating ce = t * ((-x if x < zero else zero) + lp) + u * ((x if x > zero else zero) + lp)
    cdef floating d1 = u * sig - t * sig_neg
    cdef floating c = t if x >= zero else u
    cdef floating den = ffma(c, e, one - c)
    cdef floating big = sig if x >= 0 else sig_neg  # 1 / (1 + e)
    cdef floating r = e * big / den if den > 0 else big
    cdef floating q, f
    if square:
        q = den * big
        f = q * q
    else:
        f = fexp(<floating>gamma * ((-ax if c == one else flog(den)) - lp))
    cdef floating a = <floating>alpha * t + (one - <floating>alpha) * u if alpha >= 0 else one
    cdef floating k = <floating>gamma * (one - two * t)
    cdef floating hh = d1 + k * ce * r
    cdef floating dr = r * (sig_neg - sig) - (one - two * t) * r * r
    cdef floating af = a * f
    l[0] = af * ce
    g[0] = af * hh
    h[0] = af * (k * r * hh + s2 + k * (d1 * r + ce * dr))


cdef inline void huber_point(floating x, floating t, double delta, double factor,
                             floating *l, floating *g, floating *h) noexcept nogil:
    """d = x - t: 0.5 d^2 inside |d| < delta, delta (|d| - delta/2) outside; times factor."""
    cdef floating d = x - t, zero = 0, half = 0.5
    cdef floating ad = d if d >= zero else -d
    cdef floating dl = <floating>delta, f = <floating>factor
    cdef bint outside = ad >= dl  # false for NaN, which then flows through d
    cdef floating c = -dl if d < -dl else d  # d clipped to [-dl, dl]: a max and a min
    c = dl if c > dl else c
    l[0] = f * (dl * (ad - half * dl) if outside else half * d * d)
    g[0] = f * c
    h[0] = zero if outside else f


cdef inline void mse_point(floating x, floating t, floating *l, floating *g,
                           floating *h) noexcept nogil:
    cdef floating d = x - t, two = 2
    l[0] = d * d
    g[0] = d + d
    h[0] = two


cdef inline void l1_point(floating x, floating t, floating *l, floating *g,
                          floating *h) noexcept nogil:
    cdef floating d = x - t, zero = 0, one = 1
    l[0] = d if d >= zero else -d
    g[0] = one if d > zero else (-one if d < zero else zero)
    h[0] = zero


cdef inline void pinball_point(floating x, floating t, floating q, floating *l, floating *g,
                               floating *h) noexcept nogil:
    """max(q (t - x), (q - 1)(t - x)); gradient -q below t, 1 - q from t up (NaN for NaN)."""
    cdef floating d = t - x, zero = 0, one = 1
    l[0] = q * d if x < t else (q - one) * d
    g[0] = -q if x < t else (one - q if x >= t else d)
    h[0] = zero


# -- one block -------------------------------------------------------------------
# Every output is written (to stack scratch when not asked for): the compiler
# may contract and regroup floating-point expressions (-ffp-contract=fast,
# -fassociative-math) differently in a loop that has no use for one of them,
# and .loss, .loss_grad and .grad_hess must agree bit for bit. Whether there is
# a multiplier is a fused type (``with_m``): the loop without one loads no
# weights (a fifth of the time of Huber and MSE), and put keeps the two loops'
# bits equal for weights of one.
cdef struct Yes:
    char unused
cdef struct No:
    char unused
ctypedef fused with_m:
    Yes
    No


cdef inline void put(with_m *has_m, Py_ssize_t k, floating l, floating g, floating h,
                     const floating *m, floating fs, floating *lb, floating *gb,
                     floating *hb) noexcept nogil:
    """Element k's (loss, grad, hess) times w = m[k] (1 without m), the derivatives
    also times fs.

    The products are fmas with a zero addend, also by w = 1 (GCC keeps an fma
    by one: it turns -0 into +0 as the one by a weight of one does).
    -fassociative-math may otherwise merge them into the point function's
    chains of multiplies, and regroup those differently in different copies
    of the loop (the vector body, the padded tail, with and without m)."""
    cdef floating zero = 0, one = 1, w, wf
    if with_m is Yes:
        w = m[k]
        wf = w * fs
    else:
        w = one
        wf = fs
    lb[k] = ffma(l, w, zero)
    gb[k] = ffma(g, wf, zero)
    hb[k] = ffma(h, wf, zero)


cdef void point_loop(with_m *has_m, int kind, const floating *x,
                     const floating *t, const floating *aux, bint scalar, const floating *m,
                     double p1, double p2, floating fs, Py_ssize_t n, floating *lb,
                     floating *gb, floating *hb) noexcept nogil:
    """The point function of ``kind`` over n elements, straight into the outputs."""
    cdef Py_ssize_t k
    cdef floating l, g, h
    # a scalar operand read once: a load of aux[0] inside the loop could alias the
    # stores as far as GCC knows, and it then leaves the loop scalar
    cdef floating a0 = aux[0]
    if kind == BCE:
        if scalar:
            for k in range(n):
                bce_point(x[k], t[k], a0, &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)
        else:
            for k in range(n):
                bce_point(x[k], t[k], aux[k], &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)
    elif kind == SIGMOID_FOCAL:
        if p2 == 2:
            for k in range(n):
                sigmoid_focal_point(x[k], t[k], p1, 2, 1, &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)
        else:
            for k in range(n):
                sigmoid_focal_point(x[k], t[k], p1, p2, 0, &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)
    elif kind == HUBER:
        for k in range(n):
            huber_point(x[k], t[k], p1, p2, &l, &g, &h)
            put(has_m, k, l, g, h, m, fs, lb, gb, hb)
    elif kind == MSE:
        for k in range(n):
            mse_point(x[k], t[k], &l, &g, &h)
            put(has_m, k, l, g, h, m, fs, lb, gb, hb)
    elif kind == L1:
        for k in range(n):
            l1_point(x[k], t[k], &l, &g, &h)
            put(has_m, k, l, g, h, m, fs, lb, gb, hb)
    elif kind == PINBALL:
        if scalar:
            for k in range(n):
                pinball_point(x[k], t[k], a0, &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)
        else:
            for k in range(n):
                pinball_point(x[k], t[k], aux[k], &l, &g, &h)
                put(has_m, k, l, g, h, m, fs, lb, gb, hb)


cdef double block_run(int kind, const floating *x, const floating *t, const floating *aux,
                      bint scalar, const floating *m, double p1, double p2, double scale,
                      Py_ssize_t n, floating *grad, floating *hess,
                      double *rows) noexcept nogil:
    # The losses go to scratch on this call's stack (one per thread) and are
    # summed by a loop of their own, in double. The point loop only ever runs
    # on a multiple of TAIL elements: GCC may round a loop's vector body and
    # its scalar remainder differently (contraction), so the last n % TAIL go
    # through it again, copied into zero-padded buffers, and an element's
    # result does not depend on its position.
    cdef floating lb[MAX_BLOCK]
    cdef floating gscratch[MAX_BLOCK]
    cdef floating hscratch[MAX_BLOCK]
    cdef floating xt[TAIL]
    cdef floating tt[TAIL]
    cdef floating at[TAIL]
    cdef floating mt[TAIL]
    cdef floating gt[TAIL]
    cdef floating ht[TAIL]
    cdef floating fs = <floating>scale
    cdef Py_ssize_t k, body = n - n % TAIL
    cdef double s = 0
    cdef floating *gb = grad if grad != NULL else gscratch
    cdef floating *hb = hess if hess != NULL else hscratch
    if m == NULL:
        point_loop(<No *>NULL, kind, x, t, aux, scalar, m, p1, p2, fs, body, lb, gb, hb)
    else:
        point_loop(<Yes *>NULL, kind, x, t, aux, scalar, m, p1, p2, fs, body, lb, gb, hb)
    if body < n:
        for k in range(TAIL):
            xt[k] = x[body + k] if body + k < n else 0
            tt[k] = t[body + k] if body + k < n else 0
            at[k] = aux[0] if scalar else (aux[body + k] if body + k < n else 0)
            mt[k] = m[body + k] if m != NULL and body + k < n else 0
        # (body + TAIL <= MAX_BLOCK: body is a multiple of TAIL below n <= MAX_BLOCK)
        if m == NULL:
            point_loop(<No *>NULL, kind, xt, tt, at, scalar, m, p1, p2, fs, TAIL, lb + body,
                       gt, ht)
        else:
            point_loop(<Yes *>NULL, kind, xt, tt, at, scalar, mt, p1, p2, fs, TAIL, lb + body,
                       gt, ht)
        for k in range(n - body):
            if grad != NULL:
                grad[body + k] = gt[k]
            if hess != NULL:
                hess[body + k] = ht[k]
    if rows != NULL:
        for k in range(n):
            rows[k] = lb[k]
    else:
        for k in range(n):
            s += lb[k]
    return s


def elementwise(int kind, const floating[::1] x, const floating[::1] t,
                const floating[::1] aux, const floating[::1] m, double p1, double p2,
                double scale, Py_ssize_t block, bint none, floating[::1] grad,
                floating[::1] hess, double[::1] rows, int n_threads):
    """Empty m, grad, hess: no multiplier, gradient, Hessian. No output may share
    memory with an input (the caller sees to it: out=input goes through a copy)."""
    cdef Py_ssize_t size = x.shape[0], b, lo, n_blocks
    cdef bint scalar = aux.shape[0] == 1
    cdef const floating *mp = &m[0] if m.shape[0] > 0 else NULL
    cdef floating *gp = &grad[0] if grad.shape[0] > 0 else NULL
    cdef floating *hp = &hess[0] if hess.shape[0] > 0 else NULL
    cdef double s
    if not 0 < block <= MAX_BLOCK:
        raise ValueError(f"block: must be in [1, {MAX_BLOCK}], got {block}")
    if size == 0:
        return
    n_blocks = (size + block - 1) // block
    with nogil:
        for b in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = b * block
            s = block_run(kind, &x[lo], &t[lo], &aux[0] if scalar else &aux[lo], scalar,
                          mp + lo if mp != NULL else NULL, p1, p2, scale,
                          min(block, size - lo), gp + lo if gp != NULL else NULL,
                          hp + lo if hp != NULL else NULL, &rows[lo] if none else NULL)
            if not none:
                rows[b] = s


def vector_bits():
    """The widest vectors (bits) the compiler was asked to use in this module's loops."""
    return fl_vector_bits()

/* Vector sweeps over one contiguous row, for the Cython kernels.
 *
 * Why C: `#pragma omp simd` promises the compiler two things Cython cannot
 * say. (1) An output may alias the input element by element (out=logits):
 * without the promise GCC versions the loop on a runtime overlap test and
 * falls back to scalar code exactly in the in-place case. (2) A max or a sum
 * may be reordered across lanes: GCC does not vectorise a floating-point max
 * reduction otherwise. The order is fixed at compile time (vector width), so
 * results stay independent of the thread count. Each sweep is written once,
 * for float and double, by the FL_SWEEPS macro.
 */
#ifndef FL_SIMD_H
#define FL_SIMD_H

#include <stddef.h>
#include "fl_math.h"

#define FL_SWEEPS(T, S, EXP)                                                     \
/* max_j x[j]. A NaN may be dropped here; it still reaches the sum below. */    \
static inline T fl_rowmax##S(const T *x, ptrdiff_t n)                           \
{                                                                               \
    T m = x[0];                                                                 \
    _Pragma("omp simd reduction(max:m)")                                        \
    for (ptrdiff_t j = 1; j < n; j++) m = x[j] > m ? x[j] : m;                  \
    return m;                                                                   \
}                                                                               \
/* sum_j exp(x[j] - shift); stores each term in e (which may be x) if e. */     \
static inline T fl_expsum##S(const T *x, T shift, T *e, ptrdiff_t n)            \
{                                                                               \
    T s = 0;                                                                    \
    if (e) {                                                                    \
        _Pragma("omp simd reduction(+:s)")                                      \
        for (ptrdiff_t j = 0; j < n; j++) { T v = EXP(x[j] - shift); e[j] = v; s += v; } \
    } else {                                                                    \
        _Pragma("omp simd reduction(+:s)")                                      \
        for (ptrdiff_t j = 0; j < n; j++) s += EXP(x[j] - shift);               \
    }                                                                           \
    return s;                                                                   \
}                                                                               \
/* As fl_expsum, and *dot = sum_j w[j] (x[j] - shift) (w NULL: weights 1). */   \
static inline T fl_expsum_dot##S(const T *x, T shift, T *e, const T *w,         \
                                 T *dot, ptrdiff_t n)                           \
{                                                                               \
    T s = 0, d = 0;                                                             \
    if (w) {                                                                    \
        _Pragma("omp simd reduction(+:s, d)")                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                     \
            T z = x[j] - shift, v = EXP(z); d += w[j] * z; s += v; if (e) e[j] = v; } \
    } else {                                                                    \
        _Pragma("omp simd reduction(+:s, d)")                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                     \
            T z = x[j] - shift, v = EXP(z); d += z; s += v; if (e) e[j] = v; }  \
    }                                                                           \
    *dot = d;                                                                   \
    return s;                                                                   \
}                                                                               \
/* Probability targets: q[j] = ((1 - eps) t[j] + eps / n) w[j] (w NULL: 1).     \
 * Returns sum_j exp(x[j] - shift) (terms stored in e, which may be x, if e),   \
 * *qsum = sum_j q[j] and *dot = sum_j q[j] (x[j] - shift). */                  \
static inline T fl_expsum_soft##S(const T *x, T shift, T *e, const T *t,        \
                                  const T *w, T eps, T *qsum, T *dot,           \
                                  ptrdiff_t n)                                  \
{                                                                               \
    T s = 0, d = 0, qs = 0, keep = 1 - eps, spread = eps / (T)n;                \
    _Pragma("omp simd reduction(+:s, d, qs)")                                   \
    for (ptrdiff_t j = 0; j < n; j++) {                                         \
        T z = x[j] - shift, v = EXP(z);                                         \
        T q = (keep * t[j] + spread) * (w ? w[j] : (T)1);                       \
        s += v; qs += q; d += q * z; if (e) e[j] = v;                           \
    }                                                                           \
    *qsum = qs; *dot = d;                                                       \
    return s;                                                                   \
}

FL_SWEEPS(float, f, fl_expf)
FL_SWEEPS(double, d, fl_exp)

#undef FL_SWEEPS
#endif

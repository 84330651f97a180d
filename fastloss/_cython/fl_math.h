/* fl_math.h -- exp, log and log1p for float and double, written to vectorise.
 *
 * Why: a libm call (expf, log) in a loop stays a scalar call, about ten times
 * slower than what the core can do (shared/PERFORMANCE.md). These functions
 * are `static inline` and made only of arithmetic, integer bit operations,
 * fma/fmaf (one instruction with -march=native or x86-64-v3; without FMA
 * hardware they become libm calls: still correct, not vectorised) and
 * selects, so GCC -O3 if-converts and vectorises any loop calling them (16
 * float or 8 double lanes with AVX-512, 8 / 4 with AVX2). The float versions
 * never touch double. Special values (NaN, +-inf, 0, negatives, overflow,
 * denormals) are handled by selects at the end, not by branches.
 * Accuracy, max error over every float32 / 6.4e7 sampled float64, in ulps:
 * exp 0.951 / 0.951, log 0.801 / 0.812, log1p 0.801 / 0.815 (always one of
 * the two floats around the exact value). tests/test_math.py checks it.
 *
 * Safe under the build's -fassociative-math -ffp-contract=fast: nothing relies
 * on an evaluation order of + or * that the compiler may change. Where order
 * matters, an fma does the work (the compiler never splits or re-associates
 * an explicit fma) or integer arithmetic on the bits does it:
 *   exp:   x = n ln2 + r, n = rint(x / ln2) read from the low bits of
 *          fma(x, 1/ln2, 1.5 * 2^p) (p = 23 or 52); r = x - n ln2 by a
 *          Cody-Waite split of ln2 in two fmas (the first is exact: n * ln2_hi
 *          is exact inside the fma and the difference is exact by Sterbenz);
 *          exp(r) = 1 + r + r^2 q(r) for |r| <= ln2/2 with q a near-minimax
 *          (Chebyshev) polynomial; 2^n is applied in two steps, 2^(n/2) added to
 *          the exponent bits (exact) then one multiply by 2^(n - n/2), so a
 *          denormal result is rounded once and overflow gives inf.
 *   log:   x = 2^k m with m in [0.75, 1.5) from the bits (denormals are
 *          first scaled into the normal range), f = m - 1 (exact), and
 *          log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), R a
 *          near-minimax polynomial (the fdlibm/musl scheme); k ln2 is added by
 *          an fma with the full-precision ln2_hi, its tail ln2_lo beside R.
 *   log1p: k from the exponent of u = 1 + x (rounded), then
 *          f = (1 + x) 2^-k - 1 = fma(x, 2^-k, 2^-k - 1), which is exact
 *          (see fl_log1pf): no rounding error of 1 + x to recover, so no
 *          compensated sum for the compiler to fold away. Then the log
 *          kernel. For tiny x, f = x.
 * Bit casts use memcpy, which GCC turns into register moves. Integer
 * arithmetic on bits is unsigned (wraps) so garbage lanes (NaN, inf,
 * negative inputs) are never undefined behaviour; selects replace them.
 */
#ifndef FL_MATH_H
#define FL_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t fl_f2u(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
static inline float fl_u2f(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
static inline uint64_t fl_d2u(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
static inline double fl_u2d(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

/* ------------------------------------------------------------------ exp */

static inline float fl_expf(float x)
{
    /* Clamp (NaN goes to the low end, and is restored at the return). Below
     * -104: exp(x) < 2^-150, half the least denormal, so the result rounds
     * to 0. Above 89: exp(x) > FLT_MAX, the result overflows to inf. Both
     * happen naturally in the final multiply; the clamp keeps n in
     * [-150, 128] so the exponent arithmetic below cannot wrap. */
    float xc = x > -104.0f ? x : -104.0f;
    xc = xc < 89.0f ? xc : 89.0f;
    /* t = 1.5 * 2^23 + n exactly, n = rint(x / ln2): n sits in the low bits */
    float t = fmaf(xc, 0x1.715476p+0f, 0x1.8p23f);
    int32_t n = (int32_t)(fl_f2u(t) - 0x4b400000u);
    float kf = (float)n;
    float r = fmaf(kf, -0x1.62e430p-1f, xc); /* ln2_hi: exact, see top */
    r = fmaf(kf, 0x1.05c610p-29f, r);        /* -ln2_lo = -(ln2 - ln2_hi) */
    /* exp(r) on |r| <= 0.35: 1 + r + r^2 q(r), q of degree 4 (rel. err 1.2e-8) */
    float q = 0x1.6d15f8p-10f;
    q = fmaf(q, r, 0x1.12105cp-7f);
    q = fmaf(q, r, 0x1.555516p-5f);
    q = fmaf(q, r, 0x1.5554d8p-3f);
    q = fmaf(q, r, 0x1.000000p-1f);
    float p = fmaf(fmaf(q, r, 1.0f), r, 1.0f); /* in [0.70, 1.42] */
    /* 2^n = 2^n1 * 2^n2, n1 = floor(n/2) in [-75, 64], n2 = n - n1: p * 2^n1
     * is a normal float (exponent add, exact), 2^n2 a normal float, and the
     * one multiply rounds a denormal result once or overflows to inf. */
    int32_t n1 = n >> 1;
    int32_t n2 = n - n1;
    float p1 = fl_u2f(fl_f2u(p) + ((uint32_t)n1 << 23));
    float s2 = fl_u2f((uint32_t)(n2 + 127) << 23);
    float y = p1 * s2;
    return x == x ? y : x + x; /* NaN in, NaN out */
}

static inline double fl_exp(double x)
{
    /* Below -746: exp(x) < 2^-1075, half the least denormal: rounds to 0.
     * Above 710: exp(x) > DBL_MAX: overflows to inf. n stays in [-1076, 1024]. */
    double xc = x > -746.0 ? x : -746.0;
    xc = xc < 710.0 ? xc : 710.0;
    /* t = 1.5 * 2^52 + n exactly, n = rint(x / ln2) */
    double t = fma(xc, 0x1.71547652b82fep+0, 0x1.8p52);
    int32_t n = (int32_t)(fl_d2u(t) - 0x4338000000000000ull);
    double kf = (double)n;
    double r = fma(kf, -0x1.62e42fefa39efp-1, xc); /* ln2_hi: exact, see top */
    r = fma(kf, -0x1.abc9e3b39803fp-56, r);        /* ln2_lo = ln2 - ln2_hi */
    /* exp(r) on |r| <= 0.35: 1 + r + r^2 q(r), q of degree 9 (rel. err 2e-17) */
    double q = 0x1.af3cd7b3560d9p-26;
    q = fma(q, r, 0x1.2894eb03786e2p-22);
    q = fma(q, r, 0x1.71de0be80e7e8p-19);
    q = fma(q, r, 0x1.a019b62aaa671p-16);
    q = fma(q, r, 0x1.a01a01a83a3a3p-13);
    q = fma(q, r, 0x1.6c16c1794bd5cp-10);
    q = fma(q, r, 0x1.111111111091ap-7);
    q = fma(q, r, 0x1.5555555553b72p-5);
    q = fma(q, r, 0x1.5555555555556p-3);
    q = fma(q, r, 0x1.0000000000001p-1);
    double p = fma(fma(q, r, 1.0), r, 1.0);
    /* 2^n in two steps as in fl_expf: n1 in [-538, 512] */
    int32_t n1 = n >> 1;
    int32_t n2 = n - n1;
    double p1 = fl_u2d(fl_d2u(p) + ((uint64_t)(int64_t)n1 << 52));
    double s2 = fl_u2d((uint64_t)(int64_t)(n2 + 1023) << 52);
    double y = p1 * s2;
    return x == x ? y : x + x;
}

/* ------------------------------------------------------------------ log */

/* k ln2 + log(1 + f) for f in [-1/4, 1/2], k integral:
 * log(1+f) = f - f^2/2 + s (f^2/2 + R), s = f / (2 + f) in [-1/7, 1/5].
 * The small terms are summed first, f - f^2/2 + (small) is one fma plus one
 * add, so no chain is left for -fassociative-math to reorder. */
static inline float fl_logkf(float f, float k)
{
    float s = f / (2.0f + f);
    float z = s * s; /* <= 0.04 */
    /* R(z) = z P(z) ~ log((1+s)/(1-s))/s - 2 on [0, 0.04], P of degree 3,
     * |error| < 2e-10 */
    float P = 0x1.e6693ep-3f;
    P = fmaf(P, z, 0x1.242c76p-2f);
    P = fmaf(P, z, 0x1.999a6cp-2f);
    P = fmaf(P, z, 0x1.555556p-1f);
    float hf = 0.5f * f;
    float a = fmaf(s, fmaf(z, P, hf * f), k * -0x1.05c610p-29f); /* ln2_lo */
    float lo = fmaf(-hf, f, a);                                  /* - f^2/2 */
    return fmaf(k, 0x1.62e430p-1f, f + lo);                      /* ln2_hi */
}

static inline double fl_logk(double f, double k)
{
    double s = f / (2.0 + f);
    double z = s * s;
    /* R(z) = z P(z) on [0, 0.04], P of degree 7, |error| < 2e-18 */
    double P = 0x1.16b140e6043a9p-3;
    P = fma(P, z, 0x1.0e899991a1d04p-3);
    P = fma(P, z, 0x1.3b29f3d254dfdp-3);
    P = fma(P, z, 0x1.745cab60435b7p-3);
    P = fma(P, z, 0x1.c71c72e23d47bp-3);
    P = fma(P, z, 0x1.24924923dc35dp-2);
    P = fma(P, z, 0x1.9999999999f2bp-2);
    P = fma(P, z, 0x1.5555555555555p-1);
    double hf = 0.5 * f;
    double a = fma(s, fma(z, P, hf * f), k * 0x1.abc9e3b39803fp-56); /* ln2_lo */
    double lo = fma(-hf, f, a);                                       /* - f^2/2 */
    return fma(k, 0x1.62e42fefa39efp-1, f + lo);                      /* ln2_hi */
}

static inline float fl_logf(float x)
{
    /* Denormals (below FLT_MIN = 2^-126) are scaled by 2^25 into the normal
     * range (exact); zero and negatives also land here and are replaced below. */
    int tiny = x < 0x1p-126f;
    float xs = tiny ? x * 0x1p25f : x;
    float kadj = tiny ? -25.0f : 0.0f;
    /* Adding the bits of 1.0 - those of 0.75 moves the exponent step from
     * m = 1 to m = 0.75: x = 2^k m with m in [0.75, 1.5), f = m - 1 exact. */
    uint32_t ix = fl_f2u(xs) + (0x3f800000u - 0x3f400000u);
    float k = (float)((int32_t)(ix >> 23) - 127) + kadj;
    float f = fl_u2f((ix & 0x007fffffu) + 0x3f400000u) - 1.0f;
    float y = fl_logkf(f, k);
    y = x < 0.0f ? NAN : y;
    y = x == 0.0f ? -INFINITY : y;  /* also -0 */
    return x < INFINITY ? y : x + x; /* +inf -> +inf, NaN -> NaN */
}

static inline double fl_log(double x)
{
    /* Denormals (below DBL_MIN = 2^-1022) are scaled by 2^54 (exact). */
    int tiny = x < 0x1p-1022;
    double xs = tiny ? x * 0x1p54 : x;
    double kadj = tiny ? -54.0 : 0.0;
    /* x = 2^k m, m in [0.75, 1.5) (bits of 1.0 minus those of 0.75) */
    uint64_t ix = fl_d2u(xs) + (0x3ff0000000000000ull - 0x3fe8000000000000ull);
    double k = (double)((int32_t)(ix >> 52) - 1023) + kadj;
    double f = fl_u2d((ix & 0x000fffffffffffffull) + 0x3fe8000000000000ull) - 1.0;
    double y = fl_logk(f, k);
    y = x < 0.0 ? NAN : y;
    y = x == 0.0 ? -INFINITY : y;
    return x < INFINITY ? y : x + x;
}

/* ---------------------------------------------------------------- log1p */

static inline float fl_log1pf(float x)
{
    /* Above 2^100, log1p(x) = log(x) to 2^-100 relative: x is scaled by 2^-64
     * (and 64 ln2 added back) so that 2^-k below stays a normal float. */
    int big = x > 0x1p100f;
    float xs = big ? x * 0x1p-64f : x;
    float kadj = big ? 64.0f : 0.0f;
    float u = 1.0f + xs; /* rounded: only its exponent k is used */
    uint32_t iu = fl_f2u(u) + (0x3f800000u - 0x3f400000u);
    int32_t kb = (int32_t)(iu >> 23); /* k + 127, k in [-24, 64] */
    float k = (float)(kb - 127) + kadj;
    float s = fl_u2f((uint32_t)(254 - kb) << 23); /* 2^-k */
    /* f = (1 + x) 2^-k - 1 in [-1/4, 1/2]. x 2^-k and 2^-k - 1 are exact
     * for k <= 24 and so is their sum: splitting at m = 0.75 (not sqrt(2)/2)
     * keeps x >= 2^(k-1) in every k >= 1 band, so f is a multiple of
     * 2^-24 below 1/2 in size. For k > 24, 2^-k - 1 rounds by < 2^-25 against
     * a result > 16. k = 0 gives f = x. */
    float f = fmaf(xs, s, s - 1.0f);
    float y = fl_logkf(f, k);
    y = x < -1.0f ? NAN : y;
    y = x == -1.0f ? -INFINITY : y;
    return x < INFINITY ? y : x + x;
}

static inline double fl_log1p(double x)
{
    /* Above 2^1000, scale by 2^-512 (log1p(x) = log(x) to 2^-1000). */
    int big = x > 0x1p1000;
    double xs = big ? x * 0x1p-512 : x;
    double kadj = big ? 512.0 : 0.0;
    double u = 1.0 + xs;
    uint64_t iu = fl_d2u(u) + (0x3ff0000000000000ull - 0x3fe8000000000000ull);
    int32_t kb = (int32_t)(iu >> 52); /* k + 1023, k in [-53, 1000] */
    double k = (double)(kb - 1023) + kadj;
    double s = fl_u2d((uint64_t)(int64_t)(2046 - kb) << 52); /* 2^-k */
    double f = fma(xs, s, s - 1.0); /* exact for k <= 53, as in fl_log1pf */
    double y = fl_logk(f, k);
    y = x < -1.0 ? NAN : y;
    y = x == -1.0 ? -INFINITY : y;
    return x < INFINITY ? y : x + x;
}

/* ----------------------------------------------------- log1p on [0, 1] */

/* log1p(e) for e in [0, 1] (NaN passes through), as the sigmoid losses need
 * it: e = exp(-|x|). float only: log1p(e) = e + e (e S(u)), u = e - 1/2,
 * S(u) = (log1p(e) - e) / e^2 in [-1/2, -0.31] a near-minimax polynomial of
 * degree 9 (relative error 9e-9). No division, no bit work, no special
 * cases: about a third of fl_log1pf's operations. Since |e S| <= 0.31, the
 * rounding of e S shrinks in the sum; max error 1.31 ulp (fl_log1pf: 0.80),
 * exact for e below 2^-24 (denormals included). */
static inline float fl_log1p_unitf(float e)
{
    float u = e - 0.5f;
    float S = 0x1.73b7d6p-9f;
    S = fmaf(S, u, -0x1.2c13dep-8f);
    S = fmaf(S, u, 0x1.7a0aa0p-8f);
    S = fmaf(S, u, -0x1.3d3934p-7f);
    S = fmaf(S, u, 0x1.135644p-6f);
    S = fmaf(S, u, -0x1.da8c7cp-6f);
    S = fmaf(S, u, 0x1.a27862p-5f);
    S = fmaf(S, u, -0x1.7dde6ep-4f);
    S = fmaf(S, u, 0x1.6f0d7cp-3f);
    S = fmaf(S, u, -0x1.833706p-2f);
    return fmaf(e, e * S, e);
}

/* ------------------------------------------------------- build probe */

/* The widest vectors the including module was compiled to use (x86): 512
 * where setup.py asked GCC for them (FL_PREFER_512) and the target has
 * AVX-512. `python -m fastloss` prints it per module. */
#ifndef FL_PREFER_512
#define FL_PREFER_512 0
#endif
static inline int fl_vector_bits(void)
{
#if defined(__AVX512F__) && FL_PREFER_512
    return 512;
#elif defined(__AVX__)
    return 256;
#else
    return 128;
#endif
}

#endif /* FL_MATH_H */

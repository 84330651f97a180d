# Point functions exp, log, log1p (and fma) for the Cython kernels, dtype-generic.
#
#     from fastloss._cython._math cimport fexp, flog, flog1p
#
# They inline the C functions of fl_math.h (see its header comment): no libm
# call, so a loop over them vectorises (16 float / 8 double lanes with
# AVX-512). float stays float: fexp(<float>x) computes in single precision.
# Accuracy: below 1 ulp for all three, both precisions (tests/test_math.py).
# Special values as libm: NaN -> NaN, exp(+-inf) = inf / 0, exp overflow ->
# inf, exp underflow -> denormals then 0; log(0) = -inf, log(x < 0) = NaN,
# log(+inf) = inf; log1p(-1) = -inf, log1p(x < -1) = NaN.
from cython cimport floating
from libc.math cimport fma, fmaf

cdef extern from "fl_math.h" nogil:
    float fl_expf(float x)
    double fl_exp(double x)
    float fl_logf(float x)
    double fl_log(double x)
    float fl_log1pf(float x)
    double fl_log1p(double x)
    float fl_log1p_unitf(float e)
    int fl_vector_bits()  # the widest vectors of the module's loops (a build probe)


cdef inline floating fexp(floating x) noexcept nogil:
    if floating is float:
        return fl_expf(x)
    else:
        return fl_exp(x)


cdef inline floating flog(floating x) noexcept nogil:
    if floating is float:
        return fl_logf(x)
    else:
        return fl_log(x)


cdef inline floating flog1p(floating x) noexcept nogil:
    if floating is float:
        return fl_log1pf(x)
    else:
        return fl_log1p(x)


cdef inline floating flog1p_unit(floating e) noexcept nogil:
    """log1p(e) for e in [0, 1]: a short polynomial in float (1.31 ulp), flog1p in double."""
    if floating is float:
        return fl_log1p_unitf(e)
    else:
        return fl_log1p(e)


cdef inline floating ffma(floating a, floating b, floating c) noexcept nogil:
    """a * b + c with one rounding, in the precision of floating (libc's fma is double)."""
    if floating is float:
        return fmaf(a, b, c)
    else:
        return fma(a, b, c)

"""Array entry points to the point functions of ``_math.pxd``, for the tests.

``exp(a)``, ``log(a)``, ``log1p(a)``: ``a`` a 1-D C-contiguous float32 or
float64 array (read-only is fine); returns a new array of the same dtype. The
loops are plain C loops over pointers, so they run the vectorised code the
kernels get. Not part of the public API.
"""
import numpy as np

from cython cimport floating


cdef void _exp(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = fexp(x[i])


cdef void _log(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = flog(x[i])


cdef void _log1p(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = flog1p(x[i])


cdef _empty_like(const floating[::1] a):
    return np.empty(a.shape[0], dtype=np.float32 if floating is float else np.float64)


def exp(const floating[::1] a):
    """exp of each element of a 1-D float32 / float64 array, a new array."""
    out = _empty_like(a)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _exp(&a[0], &y[0], a.shape[0])
    return out


def log(const floating[::1] a):
    """log of each element of a 1-D float32 / float64 array, a new array."""
    out = _empty_like(a)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _log(&a[0], &y[0], a.shape[0])
    return out


def log1p(const floating[::1] a):
    """log1p of each element of a 1-D float32 / float64 array, a new array."""
    out = _empty_like(a)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _log1p(&a[0], &y[0], a.shape[0])
    return out

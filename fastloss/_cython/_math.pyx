"""Array entry points to the point functions of ``_math.pxd``, for the tests.

``exp(a, out=None)``, ``log(a, out=None)``, ``log1p(a, out=None)`` and
``log1p_unit(a, out=None)`` (values in [0, 1]): ``a`` a
1-D C-contiguous float32 or float64 array (read-only is fine); the result
goes to ``out`` (same dtype and length) or to a new array, which is returned.
The loops are plain C loops over pointers, so they run the same vectorised
code as the kernels. Not part of the public API.
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


cdef void _log1p_unit(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = flog1p_unit(x[i])


cdef _output(const floating[::1] a, out):
    if out is None:
        return np.empty(a.shape[0], dtype=np.float32 if floating is float else np.float64)
    if out.shape != (a.shape[0],):
        raise ValueError(f"out: must have shape ({a.shape[0]},), got {out.shape}")
    return out


def exp(const floating[::1] a, out=None):
    """exp of each element of a 1-D float32 / float64 array."""
    out = _output(a, out)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _exp(&a[0], &y[0], a.shape[0])
    return out


def log(const floating[::1] a, out=None):
    """log of each element of a 1-D float32 / float64 array."""
    out = _output(a, out)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _log(&a[0], &y[0], a.shape[0])
    return out


def log1p(const floating[::1] a, out=None):
    """log1p of each element of a 1-D float32 / float64 array."""
    out = _output(a, out)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _log1p(&a[0], &y[0], a.shape[0])
    return out


def log1p_unit(const floating[::1] a, out=None):
    """log1p of each element of a 1-D float32 / float64 array with values in [0, 1]."""
    out = _output(a, out)
    cdef floating[::1] y = out
    if a.shape[0]:
        with nogil:
            _log1p_unit(&a[0], &y[0], a.shape[0])
    return out

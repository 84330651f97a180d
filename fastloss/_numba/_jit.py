"""The one place that calls ``numba.njit``.

Kernels are compiled lazily (no signatures) and cached on disk, so importing
fastloss compiles nothing. ``FASTMATH`` lets LLVM vectorise reductions and
contract multiply-adds, but keeps NaN and inf semantics: no ``nnan``/``ninf``
(umap learned that blanket ``fastmath=True`` turns infs into NaNs).
"""
import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # Numba wants a set
_OPTIONS = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)


def kernel(fn):
    """A parallel kernel: ``prange`` over rows."""
    return numba.njit(parallel=True, **_OPTIONS)(fn)


def serial_kernel(fn):
    return numba.njit(parallel=False, **_OPTIONS)(fn)


def point(fn):
    """A point function, inlined into the kernels that call it."""
    return numba.njit(inline="always", **_OPTIONS)(fn)


def readonly(*arrays):
    """Read-only views of the kernels' input arrays.

    Numba types a read-only array apart from a writeable one and compiles
    each mix anew (seconds per kernel); passing every input as a read-only
    view keeps it to one compilation per dtype.
    """
    views = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    return views

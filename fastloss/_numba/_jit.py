"""The one place that calls ``numba.njit``.

Kernels are compiled lazily (no signatures) and cached on disk, so importing
fastloss compiles nothing. ``FASTMATH`` lets LLVM vectorise reductions and
contract multiply-adds, but keeps NaN and inf semantics: no ``nnan``/``ninf``
(umap learned that blanket ``fastmath=True`` turns infs into NaNs).
"""
import functools
import importlib
import os
import threading

import numba
from numba import types
from numba.extending import overload

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # Numba wants a set
_OPTIONS = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)


def _threadsafe_layer_available():
    """Whether Numba can load a thread-safe threading layer (tbb, or omp with an OpenMP runtime)."""
    for module in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{module}")
            return True
        except Exception:  # ImportError, or OSError for a missing libtbb / libgomp
            pass
    return False


# Numba's ``workqueue`` layer aborts the process ("Terminating: Nested parallel
# kernel launch detected") when two Python threads launch parallel kernels at
# once. Unless the user chose a layer, ask for a thread-safe one (this must
# happen before the first parallel launch); where only workqueue exists (or the
# user asked for it), launches are serialised by a lock.
if os.environ.get("NUMBA_THREADING_LAYER") is None and numba.config.THREADING_LAYER == "default":
    if _threadsafe_layer_available():
        numba.config.THREADING_LAYER = "threadsafe"
_SERIALISE = (not numba.config.DISABLE_JIT
              and numba.config.THREADING_LAYER in ("workqueue", "forksafe", "default"))
_LAUNCH_LOCK = threading.Lock()


def kernel(fn):
    """A parallel kernel: ``prange`` over rows (launches serialised under workqueue)."""
    dispatcher = numba.njit(parallel=True, **_OPTIONS)(fn)
    if not _SERIALISE:
        return dispatcher

    @functools.wraps(fn)
    def launch(*args):
        with _LAUNCH_LOCK:
            return dispatcher(*args)

    launch.dispatcher = dispatcher
    return launch


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


# -- optional arrays, resolved when the kernel is typed ------------------------
# A kernel that takes an array *or None* is compiled once for each, and the
# None version costs nothing: no load, no multiply by one, no store. (A
# runtime test inside the loop would stop the vectoriser or keep the work.)
# Each helper is a plain Python function too, for NUMBA_DISABLE_JIT.
def part(a, lo, hi):
    """a[lo:hi], or None for None."""
    return None if a is None else a[lo:hi]


def part_or(a, lo, hi, scratch):
    """a[lo:hi], or scratch[:hi - lo] for None."""
    return scratch[:hi - lo] if a is None else a[lo:hi]


def or_scratch(a, scratch):
    """a, or scratch for None."""
    return scratch if a is None else a


def pick(a, b):
    """b, or None where a is None."""
    return None if a is None else b


def store(a, k, v):
    """a[k] = v, or nothing for None."""
    if a is not None:
        a[k] = v


def put_back(a, lo, src):
    """a[lo:lo + src.size] = src, or nothing for None."""
    if a is not None:
        a[lo:lo + src.size] = src


def weight(m, k, one):
    """m[k], or ``one`` (the element's 1 in its dtype) for None."""
    return one if m is None else m[k]


@overload(part, inline="always")
def _part(a, lo, hi):
    if isinstance(a, types.NoneType):
        return lambda a, lo, hi: None
    return lambda a, lo, hi: a[lo:hi]


@overload(part_or, inline="always")
def _part_or(a, lo, hi, scratch):
    if isinstance(a, types.NoneType):
        return lambda a, lo, hi, scratch: scratch[:hi - lo]
    return lambda a, lo, hi, scratch: a[lo:hi]


@overload(or_scratch, inline="always")
def _or_scratch(a, scratch):
    if isinstance(a, types.NoneType):
        return lambda a, scratch: scratch
    return lambda a, scratch: a


@overload(pick, inline="always")
def _pick(a, b):
    if isinstance(a, types.NoneType):
        return lambda a, b: None
    return lambda a, b: b


@overload(store, inline="always")
def _store(a, k, v):
    if isinstance(a, types.NoneType):
        return lambda a, k, v: None

    def impl(a, k, v):
        a[k] = v
    return impl


@overload(put_back, inline="always")
def _put_back(a, lo, src):
    if isinstance(a, types.NoneType):
        return lambda a, lo, src: None

    def impl(a, lo, src):
        a[lo:lo + src.size] = src
    return impl


@overload(weight, inline="always")
def _weight(m, k, one):
    if isinstance(m, types.NoneType):
        return lambda m, k, one: one
    return lambda m, k, one: m[k]

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

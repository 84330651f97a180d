"""Backend choice and thread count, shared by every loss.

The Cython kernels are imported eagerly (they are compiled ahead of time and
cost nothing to load); the Numba ones only when first used, so that
``import fastloss`` neither imports Numba nor compiles anything.
"""
import contextlib
import importlib
import operator
import os
import threading

BACKENDS = ("cython", "numba")

_state = threading.local()
_default = {"backend": None, "threads": None}


def _check_backend(name):
    if name not in BACKENDS:
        raise ValueError(f"backend: must be one of {BACKENDS}, got {name!r}")
    return name


def _env_backend():
    name = os.environ.get("FASTLOSS_BACKEND", "cython").strip().lower()
    try:
        return _check_backend(name)
    except ValueError:
        raise ValueError(
            f"FASTLOSS_BACKEND: must be one of {BACKENDS}, got {name!r}"
        ) from None


def get_backend():
    """The backend used by losses created without ``backend=``."""
    name = getattr(_state, "backend", None) or _default["backend"]
    if name is None:
        name = _default["backend"] = _env_backend()
    return name


def set_backend(name):
    """Set the default backend, ``"cython"`` or ``"numba"``, for every thread."""
    _default["backend"] = _check_backend(name)
    _state.backend = None


@contextlib.contextmanager
def use_backend(name):
    """Use ``name`` as the backend inside a ``with`` block (this thread only)."""
    _check_backend(name)
    previous = getattr(_state, "backend", None)
    _state.backend = name
    try:
        yield name
    finally:
        _state.backend = previous


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _check_threads(n):
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n_threads: must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"n_threads: must be >= 1, got {n}")
    return n


def get_num_threads():
    """Threads the kernels use; the default is every core this process may run on."""
    n = getattr(_state, "threads", None) or _default["threads"]
    return n if n is not None else _available_cores()


def set_num_threads(n):
    """Set the number of threads the kernels use, for every thread."""
    _default["threads"] = _check_threads(n)
    _state.threads = None


#: Elements per thread below which another thread costs more than it saves:
#: waking a pool thread takes microseconds, a kernel does an element in about
#: a nanosecond. Results do not depend on the thread count, so this is safe.
MIN_WORK_PER_THREAD = 1 << 15


def threads_for(work):
    """Threads worth using for ``work`` elements, at most ``get_num_threads()``."""
    return max(1, min(get_num_threads(), work // MIN_WORK_PER_THREAD))


@contextlib.contextmanager
def num_threads(n):
    """Use ``n`` threads inside a ``with`` block (this thread only)."""
    n = _check_threads(n)
    previous = getattr(_state, "threads", None)
    _state.threads = n
    try:
        yield n
    finally:
        _state.threads = previous


_numba_lock = threading.Lock()


def kernels(family, backend=None):
    """The kernel module of ``family`` ("softmax", ...) for ``backend``."""
    backend = backend or get_backend()
    package = "fastloss._cython" if backend == "cython" else "fastloss._numba"
    return importlib.import_module(f"{package}._{family}")


def numba_threads(n):
    """Clamp ``n`` to Numba's pool and set it for this thread."""
    import numba

    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n

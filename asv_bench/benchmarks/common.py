"""Shared pieces of the fastloss asv suite: data, timer, references, memory probe.

Data comes from seeded generators cached per process, filled when built (so
page faults happen in ``setup``, never in a timed body) and read-only (so a
benchmark that writes into its input cannot corrupt the cache: writing
benchmarks take a copy in ``setup``).
"""
import functools
import os
import timeit

import numpy as np

#: wall-clock, so that thread speed-ups show (process time would add the threads up)
timer = timeit.default_timer

SHAPES = [(8192, 1000), (2048, 32000)]
DTYPES = ["float32", "float64"]
BACKENDS = ["cython", "numba"]
THREADS = [1, 2]
ERROR_ROWS = 64          # rows of the slice checked against the float64 reference


@functools.lru_cache(maxsize=2)
def softmax_data(shape, dtype, seed=0):
    """Logits ``(N, C)`` (standard normal times 2) and int64 labels ``(N,)``, read-only."""
    n, c = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c), dtype=np.dtype(dtype))   # no float64 temporary
    x *= 2
    y = rng.integers(0, c, n, dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def filled_like(x):
    """A writeable copy of ``x`` whose pages are already touched."""
    out = np.empty_like(x)
    out[...] = x
    return out


def warm(fn, x, y, **kwargs):
    """Warm a path: a 1-row call (Numba compiles or loads its cache), then one
    on the real input (thread pools start, the allocator gets its pages)."""
    fn(x[:1], y[:1], **{k: (v[:1] if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()})
    fn(x, y, **kwargs)


# ---- float64 NumPy references, per sample (reduction="none") -------------
def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ref_cross_entropy(x, y):
    """Per-sample loss and the gradient of their sum."""
    logp = _log_softmax(x)
    rows = np.arange(len(y))
    grad = np.exp(logp)
    grad[rows, y] -= 1.0
    return -logp[rows, y], grad


def ref_softmax_focal(x, y, gamma=2.0):
    """``-(1 - p_y)^gamma log p_y`` per sample and the gradient of their sum."""
    logp = _log_softmax(x)
    rows = np.arange(len(y))
    p = np.exp(logp)
    lpy = logp[rows, y]
    py = p[rows, y]
    q = 1.0 - py
    loss = -(q ** gamma) * lpy
    # d loss / d p_y, then d p_y / d x_j = p_y (delta_jy - p_j)
    dpy = gamma * q ** (gamma - 1) * lpy - q ** gamma / py
    onehot = np.zeros_like(p)
    onehot[rows, y] = 1.0
    grad = (dpy * py)[:, None] * (onehot - p)
    return loss, grad


def max_abs_error(got, ref):
    """Largest absolute difference over (loss, grad) pairs."""
    return float(max(np.max(np.abs(np.asarray(g, np.float64) - r)) for g, r in zip(got, ref)))


# ---- memory ---------------------------------------------------------------
def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss():
    """Forget the peak resident size reached so far (Linux), so that an asv
    ``peakmem_*`` benchmark (which reads ``ru_maxrss``, a lifetime peak) sees
    the data built in ``setup`` plus what the benchmark itself allocates, not
    the temporaries of ``setup``'s warm-up calls. Returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_increase(fn):
    """Bytes by which the peak resident size exceeds the current one while
    ``fn()`` runs (Linux: resets the high-water mark via /proc/self/clear_refs).
    NaN where that is not available."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
    except (OSError, KeyError):
        return float("nan")
    fn()
    return (_status_kib("VmHWM") - before) * 1024.0


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

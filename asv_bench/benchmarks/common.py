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

#: FASTLOSS_ASV_SMOKE=1 (set by .ci/run) keeps only the first value of the size, dtype
#: and thread grids: every benchmark still runs, for both backends, in a fraction of
#: the time. Unset, the grids are whole.
SMOKE = os.environ.get("FASTLOSS_ASV_SMOKE") == "1"


def grid(values):
    return values[:1] if SMOKE else values


SHAPES = grid([(8192, 1000), (2048, 32000)])
DTYPES = grid(["float32", "float64"])
BACKENDS = ["cython", "numba"]
THREADS = grid([1, 2])
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


# ---- CTC ------------------------------------------------------------------
#: (T, N, C, S): logits (T, N, C), padded targets (N, S); as in `python -m fastloss bench`
CTC_SHAPES = grid([(200, 32, 40, 50), (1000, 8, 60, 200)])


@functools.lru_cache(maxsize=2)
def ctc_data(shape, dtype, seed=0):
    """Logits ``(T, N, C)`` (standard normal), int64 targets ``(N, S)`` with labels
    in ``[1, C)`` (blank 0), input lengths all ``T``, target lengths uniform in
    ``[S // 2, S]``; read-only."""
    t, n, c, s = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, n, c), dtype=np.dtype(dtype))
    targets = rng.integers(1, c, (n, s), dtype=np.int64)
    input_lengths = np.full(n, t, dtype=np.int64)
    target_lengths = rng.integers(s // 2, s + 1, n, dtype=np.int64)
    for a in (x, targets, input_lengths, target_lengths):
        a.flags.writeable = False
    return x, targets, input_lengths, target_lengths


def _logsumexp(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def ref_ctc(x, targets, input_lengths, target_lengths, blank=0):
    """Per-sequence CTC loss on raw logits ``(T, N, C)`` (log-softmax included)
    and the gradient of their sum, float64, by the log-space forward-backward
    recursion (loops over time, vectorised over the extended label)."""
    logp = _log_softmax(x)
    grad = np.zeros_like(logp)
    loss = np.zeros(logp.shape[1])
    for i in range(logp.shape[1]):
        t_i, l_i = int(input_lengths[i]), int(target_lengths[i])
        lab = np.full(2 * l_i + 1, blank, dtype=np.int64)
        lab[1::2] = targets[i, :l_i]
        m = len(lab)
        skip = np.zeros(m, dtype=bool)           # s-2 -> s allowed
        skip[2:] = (lab[2:] != blank) & (lab[2:] != lab[:-2])
        lp = logp[:t_i, i, :][:, lab]            # (T_i, 2L+1) emissions
        alpha = np.full((t_i, m), -np.inf)
        beta = np.full((t_i, m), -np.inf)
        if t_i == 0:
            loss[i] = 0.0 if l_i == 0 else np.inf
            continue
        alpha[0, :min(2, m)] = lp[0, :min(2, m)]
        for t in range(1, t_i):
            a = alpha[t - 1]
            stack = np.full((3, m), -np.inf)
            stack[0] = a
            stack[1, 1:] = a[:-1]
            stack[2, 2:] = np.where(skip[2:], a[:-2], -np.inf)
            alpha[t] = _logsumexp(stack, 0) + lp[t]
        beta[-1, max(m - 2, 0):] = lp[-1, max(m - 2, 0):]
        for t in range(t_i - 2, -1, -1):
            b = beta[t + 1]
            stack = np.full((3, m), -np.inf)
            stack[0] = b
            stack[1, :-1] = b[1:]
            stack[2, :-2] = np.where(skip[2:], b[2:], -np.inf)
            beta[t] = _logsumexp(stack, 0) + lp[t]
        ll = _logsumexp(alpha[-1, max(m - 2, 0):], 0)
        loss[i] = -ll
        if not np.isfinite(ll):
            continue                             # impossible alignment: grad 0
        occ = np.exp(alpha + beta - lp - ll)     # (T_i, 2L+1) occupancy
        g = np.exp(logp[:t_i, i, :])
        for s_ in range(m):
            g[:, lab[s_]] -= occ[:, s_]
        grad[:t_i, i, :] = g
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

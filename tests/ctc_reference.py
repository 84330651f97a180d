"""Independent NumPy references for the CTC loss (Graves et al. 2006), float64.

Two ways to the same numbers, sharing no code with each other nor with the kernels:

- ``brute_force_sequence``: enumerate all C**T label paths of one sequence, keep those
  that collapse (merge repeats, then drop blanks) to the target, sum their probabilities
  in log space. The gradient w.r.t. the log-probabilities is minus the occupancy:
  d(-log P)/d lp[t, c] = -sum over the kept paths with path[t] == c of P(path) / P.
  Only for tiny T and C.
- ``forward_backward_sequence``: the log-space alpha/beta recursions over the
  extended target (blank, l1, blank, l2, ..., blank), a loop over t vectorised over
  the 2L+1 states. The occupancy of frame t is normalised over the states of that
  frame, softmax_s(log alpha_t(s) + log beta_t(s)) -- every path visits exactly one
  state per frame, so the sum over s is P for every t -- which keeps it exact even
  when log P is ~1e31 (logits of 1e30) and alpha_t + beta_t - log P would be rounding
  noise of 1e15.

Both work on *any* log-probabilities, normalised or not (``log_probs=True`` semantics:
the loss is -log sum_paths exp(sum_t lp[t, path_t]) and the gradient is its true
derivative). ``ctc_loss`` wraps either one into the library's full interface
(layouts, padded or concatenated targets, log-softmax of raw logits and the chain
rule through it, zero_infinity, sample_weight, reductions).
"""
import itertools

import numpy as np

__all__ = ["log_softmax", "collapse", "is_feasible", "min_frames", "brute_force_sequence",
           "forward_backward_sequence", "ctc_loss", "split_targets"]


def log_softmax(x):
    """Stable log-softmax over the last axis, float64, vectorised.

    log p_c = (x_c - m) - log1p(sum_{c != k} exp(x_c - m)), k = argmax, m = x_k: the
    largest term is the exact 1 of log1p, so the winning class keeps full relative
    precision (log p ~ -1e-30 stays -1e-30, not 0).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] == 0 or x.size == 0:
        return x.copy()
    k = np.argmax(x, axis=-1)[..., None]
    m = np.take_along_axis(x, k, axis=-1)
    e = np.exp(x - m)
    np.put_along_axis(e, k, 0.0, axis=-1)
    return (x - m) - np.log1p(e.sum(axis=-1, keepdims=True))


def collapse(path, blank):
    """CTC's many-to-one map: merge adjacent repeats, then remove blanks."""
    out = []
    prev = None
    for c in path:
        c = int(c)
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def min_frames(target):
    """The fewest frames that can emit ``target``: L plus one blank per repeated pair."""
    target = [int(v) for v in target]
    return len(target) + sum(1 for a, b in zip(target, target[1:]) if a == b)


def is_feasible(input_length, target):
    return int(input_length) >= min_frames(target)


def _logsumexp(v):
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return -np.inf
    m = np.max(v)
    if not np.isfinite(m):
        return m
    return m + np.log(np.sum(np.exp(v - m)))


# --------------------------------------------------------------------------- brute force
_PATHS = {}


def _all_paths(n_frames, n_classes, blank):
    """Every path of ``n_frames`` labels and what it collapses to (cached: target-free)."""
    key = (n_frames, n_classes, blank)
    if key not in _PATHS:
        paths = np.array(list(itertools.product(range(n_classes), repeat=n_frames)),
                         dtype=np.int64).reshape(n_classes ** n_frames, n_frames)
        _PATHS[key] = (paths, [collapse(p, blank) for p in paths])
    return _PATHS[key]


def brute_force_sequence(lp, target, blank):
    """-log P and d(-log P)/d lp for one sequence by enumerating every path.

    lp: (T, C) log-probabilities of the used frames (any real numbers); target: 1-D labels.
    Returns (nll, grad (T, C)); an impossible target gives (inf, zeros).
    """
    lp = np.asarray(lp, dtype=np.float64)
    n_frames, n_classes = lp.shape
    target = tuple(int(v) for v in target)
    if n_classes ** n_frames > 300_000:
        raise ValueError("brute force: too many paths")
    paths, collapsed = _all_paths(n_frames, n_classes, blank)
    keep = np.array([c == target for c in collapsed], dtype=bool)
    grad = np.zeros((n_frames, n_classes))
    if not keep.any():
        return np.inf, grad
    paths = paths[keep]
    frames = np.arange(n_frames)
    path_logp = lp[frames[None, :], paths].sum(axis=1)
    log_p = _logsumexp(path_logp)
    if not np.isfinite(log_p):  # every path has probability 0
        return np.inf, grad
    share = np.exp(path_logp - log_p)  # P(path) / P
    for t in range(n_frames):
        grad[t] -= np.bincount(paths[:, t], weights=share, minlength=n_classes)
    return -log_p, grad


# --------------------------------------------------------------------------- alpha / beta
def _lse3(a, b, c):
    m = np.maximum(np.maximum(a, b), c)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = safe + np.log(np.exp(a - safe) + np.exp(b - safe) + np.exp(c - safe))
    return np.where(np.isneginf(m), -np.inf, out)


def forward_backward_sequence(lp, target, blank):
    """-log P and d(-log P)/d lp for one sequence, log-space forward-backward.

    lp: (T, C) log-probabilities of the used frames (any real numbers); target: 1-D labels.
    Returns (nll, grad (T, C)); an impossible target gives (inf, zeros).
    """
    lp = np.asarray(lp, dtype=np.float64)
    n_frames, n_classes = lp.shape
    target = np.asarray(target, dtype=np.int64).reshape(-1)
    n_labels = target.shape[0]
    grad = np.zeros((n_frames, n_classes))
    if n_frames == 0:
        return (0.0 if n_labels == 0 else np.inf), grad
    n_states = 2 * n_labels + 1
    ext = np.full(n_states, blank, dtype=np.int64)
    ext[1::2] = target
    skip = np.zeros(n_states, dtype=bool)  # s-2 -> s allowed
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    neg = np.full(n_states, -np.inf)

    # alpha_t(s): log prob of the frames 0..t, ending in state s (emission at t included).
    alpha = np.empty((n_frames, n_states))
    a = neg.copy()
    a[0] = lp[0, ext[0]]
    if n_states > 1:
        a[1] = lp[0, ext[1]]
    alpha[0] = a
    for t in range(1, n_frames):
        prev1 = np.concatenate(([-np.inf], a[:-1]))
        prev2 = np.where(skip, np.concatenate(([-np.inf, -np.inf], a[:-2]))[:n_states], -np.inf)
        a = _lse3(a, prev1, prev2) + lp[t, ext]
        alpha[t] = a
    ends = a[-2:] if n_states > 1 else a[-1:]
    log_p = _logsumexp(ends)
    if not np.isfinite(log_p):
        return np.inf, grad

    # beta_t(s): log prob of the frames t+1..T-1 given state s at t (emission at t excluded).
    b = neg.copy()
    b[-1] = 0.0
    if n_states > 1:
        b[-2] = 0.0
    skip_next = np.zeros(n_states, dtype=bool)  # s -> s+2 allowed
    skip_next[:-2] = skip[2:]
    for t in range(n_frames - 1, -1, -1):
        occ = alpha[t] + b
        occ = np.exp(occ - _logsumexp(occ))  # per-frame normalised occupancy
        grad[t] = -np.bincount(ext, weights=occ, minlength=n_classes)
        if t == 0:
            break
        e = b + lp[t, ext]  # beta_{t}(s') + lp_t(ext[s'])
        nxt1 = np.concatenate((e[1:], [-np.inf]))
        nxt2 = np.where(skip_next, np.concatenate((e[2:], [-np.inf, -np.inf]))[:n_states],
                        -np.inf)
        b = _lse3(e, nxt1, nxt2)
    return -log_p, grad


# --------------------------------------------------------------------------- full interface
def split_targets(targets, target_lengths):
    """Per-sequence label lists from padded (N, S) or concatenated 1-D targets."""
    targets = np.asarray(targets)
    target_lengths = np.asarray(target_lengths, dtype=np.int64)
    if targets.ndim == 2:
        return [targets[i, :target_lengths[i]].astype(np.int64)
                for i in range(len(target_lengths))]
    offsets = np.concatenate(([0], np.cumsum(target_lengths)))
    return [targets[offsets[i]:offsets[i + 1]].astype(np.int64)
            for i in range(len(target_lengths))]


def ctc_loss(x, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, log_probs=False, batch_first=False, sample_weight=None,
             method="dp"):
    """The library's ``ctc_loss`` in float64: returns (loss, grad).

    log_probs=False: x are raw logits, lp = log_softmax(x), grad w.r.t. x by the chain
    rule g_x = g_lp - softmax(x) * sum_c g_lp. log_probs=True: lp = x as given, grad is
    d loss / d lp. Per sequence i: l_i = -log P_i (inf when impossible; 0 with
    zero_infinity, gradient 0 either way), w_i = sample_weight (ones when None);
    "none": w_i l_i, "sum": sum w_i l_i, "mean": sum w_i l_i / max(L_i, 1) / sum w_i
    (0 with a zero gradient when sum w_i == 0). Frames t >= input_lengths[i] are never
    read and get a zero gradient. method: "dp" (forward-backward) or "brute".
    """
    single = {"dp": forward_backward_sequence, "brute": brute_force_sequence}[method]
    x = np.asarray(x, dtype=np.float64)
    if batch_first:
        x = np.swapaxes(x, 0, 1)
    n_frames, n_seq, n_classes = x.shape
    input_lengths = np.asarray(input_lengths, dtype=np.int64)
    target_lengths = np.asarray(target_lengths, dtype=np.int64)
    labels = split_targets(targets, target_lengths)
    w = (np.ones(n_seq) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    nll = np.zeros(n_seq)
    grad = np.zeros((n_frames, n_seq, n_classes))
    for i in range(n_seq):
        used = int(input_lengths[i])
        xi = x[:used, i]
        lp = xi if log_probs else log_softmax(xi)
        l_i, g = single(lp, labels[i], blank)
        if np.isinf(l_i):
            g = np.zeros_like(g)
            if zero_infinity:
                l_i = 0.0
        if not log_probs:
            g = g - np.exp(lp) * g.sum(axis=-1, keepdims=True)
        nll[i] = l_i
        grad[:used, i] = g
    if reduction == "none":
        loss = w * nll
        coef = w
    elif reduction == "sum":
        loss = np.sum(w * nll)
        coef = w
    elif reduction == "mean":
        total = np.sum(w)
        if total == 0:
            loss, coef = 0.0, np.zeros(n_seq)
        else:
            coef = w / np.maximum(target_lengths, 1) / total
            loss = np.sum(coef * nll)
    else:
        raise ValueError(f"unknown reduction {reduction!r}")
    grad = grad * coef[None, :, None]
    if batch_first:
        grad = np.swapaxes(grad, 0, 1)
    return loss, grad

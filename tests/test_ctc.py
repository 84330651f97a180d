"""CTC loss: values, gradients, edge cases, validation, engine invariants.

Expected values come from independent sources:
- PyTorch float64 ``F.ctc_loss(F.log_softmax(x))`` with autograd (the gradient w.r.t. the
  raw logits through log_softmax);
- ``ctc_reference.py``: a brute-force sum over all C**T label paths (tiny inputs) and a
  log-space forward-backward in NumPy float64 (loop over t, vectorised over states), both
  checked against each other and against PyTorch here;
- closed forms: a single possible path, an empty target (all blanks);
- central finite differences (``numdiff.py``) of the library's own loss.
Every test runs on both backends (``backend=``) and, unless it is about one precision, on
float32 and float64 inputs.

Tolerances (API.md / notes/CTC.md): float64 rtol=1e-12, atol=1e-14, float32 rtol=1e-4,
atol=1e-5, the absolute bound scaled by the magnitude of the result. For CTC that magnitude
is the log-domain one: a gradient entry is p - occupancy, and the occupancy is
exp(log alpha + log beta - log P) with log-values of the size of the per-sequence loss
-log P, so its rounding error grows like eps * |log P| (PyTorch float64 itself differs from
a long-double forward-backward by ~1e-15 * |log P|). The absolute bound on gradients is
therefore multiplied by max(1, max_i |l_i| / 10) and by the gradient's scale.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

import ctc_reference as cref
import fastloss
import numdiff
from reference import REDUCTIONS

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-14)}


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _one_thread():
    """Small problems: one thread (thread invariance has its own test, which asks for two)."""
    with fastloss.num_threads(1):
        yield


def tol_of(dtype):
    return TOL[np.dtype(dtype).type]


def tight(dtype):
    """Two computations by the library of the same quantity: a few ulps."""
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps)


def labels_without(rng, n_classes, blank, size):
    """Random labels in [0, C) other than blank."""
    allowed = np.array([c for c in range(n_classes) if c != blank])
    return allowed[rng.integers(0, len(allowed), size=size)]


def blank_of(kind, n_classes):
    return {"first": 0, "last": n_classes - 1, "middle": n_classes // 2}[kind]


def make_case(rng, T, N, C, *, blank=0, max_target=None, layout="padded", junk=True,
              impossible=(), scale=1.5, extra_cols=2):
    """Random logits (T, N, C) float64 and CTC targets.

    Target lengths are random in [0, max_target] (sequence 0 gets max_target, sequence 1
    gets 0 when N > 2), labels random non-blank classes (repeats happen), input lengths
    random in [min_frames, T] with the longest sequence at T. Sequences in ``impossible``
    get an input length one frame short of their target's minimum. Padded targets are
    (N, max(L) + extra_cols) with junk (-1, C, blank, 2**40) beyond each target length:
    it must be neither read nor validated.
    Returns x, targets, input_lengths, target_lengths, clean_targets (junk replaced by a
    valid label, for PyTorch).
    """
    if max_target is None:
        max_target = max(1, (T - 1) // 3)
    x = scale * rng.standard_normal((T, N, C))
    tl = rng.integers(0, max_target + 1, size=N)
    tl[0] = max_target
    if N > 2:
        tl[1] = 0
    for i in impossible:
        tl[i] = max(tl[i], 1)
    seqs = []
    for i in range(N):
        while True:
            lab = labels_without(rng, C, blank, tl[i])
            if cref.min_frames(lab) <= T:
                break
        seqs.append(lab)
    il = np.empty(N, dtype=np.int64)
    for i in range(N):
        low = cref.min_frames(seqs[i])
        il[i] = rng.integers(low, T + 1)
        if i in impossible:
            assert low >= 1
            il[i] = low - 1
    free = [i for i in range(N) if i not in impossible]
    if free:
        il[free[0]] = T  # one sequence uses every frame
    if layout == "padded":
        width = int(tl.max(initial=0)) + extra_cols
        fill = np.array([-1, C, blank, 2**40], dtype=np.int64)
        targets = fill[np.arange(N * width) % 4].reshape(N, width) if junk else \
            np.full((N, width), labels_without(rng, C, blank, 1)[0], dtype=np.int64)
        clean = np.full((N, width), labels_without(rng, C, blank, 1)[0], dtype=np.int64)
        for i, lab in enumerate(seqs):
            targets[i, :len(lab)] = lab
            clean[i, :len(lab)] = lab
    else:
        targets = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs] +
                                 [np.zeros(0, dtype=np.int64)])
        clean = targets
    return x, targets, il, tl.astype(np.int64), clean


def torch_ctc(x, targets, il, tl, *, blank=0, reduction="mean", zero_infinity=False,
              batch_first=False, log_probs=False, sample_weight=None):
    """PyTorch float64: ctc_loss(log_softmax(x)) (or ctc_loss(x) for log_probs=True, x then
    being a normalised log-softmax), loss and gradient w.r.t. x by autograd.
    sample_weight: per-sample losses from reduction="none", weighed and reduced here with
    w_i l_i / max(L_i, 1) / sum w for "mean"."""
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    xtn = xt.transpose(0, 1) if batch_first else xt
    lp = xtn if log_probs else F.log_softmax(xtn, dim=-1)
    args = (lp, torch.tensor(np.asarray(targets, np.int64)),
            torch.tensor(np.asarray(il, np.int64)), torch.tensor(np.asarray(tl, np.int64)))
    if sample_weight is None:
        loss = F.ctc_loss(*args, blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    else:
        per = F.ctc_loss(*args, blank=blank, reduction="none", zero_infinity=zero_infinity)
        w = torch.tensor(np.asarray(sample_weight, np.float64))
        if reduction == "none":
            loss = w * per
        elif reduction == "sum":
            loss = (w * per).sum()
        else:
            denom = torch.tensor(np.maximum(np.asarray(tl, np.float64), 1.0))
            loss = (w * per / denom).sum() / w.sum()
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    return loss.detach().numpy(), grad.numpy()


def per_sequence_nll(x, targets, il, tl, blank, log_probs=False, batch_first=False):
    """The reference's per-sequence losses (for tolerance scaling)."""
    nll, _ = cref.ctc_loss(x, targets, il, tl, blank=blank, reduction="none",
                           log_probs=log_probs, batch_first=batch_first)
    return nll


def magnitude(nll):
    finite = np.abs(np.asarray(nll, np.float64))
    finite = finite[np.isfinite(finite)]
    return max(1.0, float(finite.max(initial=0.0)) / 10)


def assert_ctc_close(loss, grad, ref_loss, ref_grad, dtype, mag, *, tol=None):
    """Loss: rtol with atol scaled by the log-domain magnitude; gradient: the same, the
    absolute bound also scaled by the gradient's size (reduction="mean" divides it)."""
    tol = tol or tol_of(dtype)
    loss = np.asarray(loss, np.float64)
    grad = np.asarray(grad, np.float64)
    assert_allclose(loss, ref_loss, rtol=tol["rtol"], atol=tol["atol"] * mag)
    gscale = float(np.max(np.abs(ref_grad), initial=0.0)) or 1.0
    assert np.all(np.isfinite(grad))
    assert_allclose(grad, ref_grad, rtol=tol["rtol"], atol=tol["atol"] * mag * gscale)


def check_types(loss, grad, x, reduction, dtype, n_seq):
    assert grad.dtype == dtype and grad.shape == x.shape
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype and loss.shape == (n_seq,)
    else:
        assert isinstance(loss, np.floating) and loss.dtype == dtype


# --------------------------------------------------------------------------- the references
def test_references_agree_with_each_other_and_with_torch(rng):
    """The oracles themselves: brute force == forward-backward (normalised or not, every
    blank position, impossible targets), and forward-backward == PyTorch float64."""
    for _ in range(60):
        T = int(rng.integers(0, 6))
        C = int(rng.integers(2, 5))
        blank = int(rng.integers(0, C))
        lab = labels_without(rng, C, blank, int(rng.integers(0, 4)))
        lp = rng.normal(-1.0, 1.5, size=(T, C))
        a = cref.brute_force_sequence(lp, lab, blank)
        b = cref.forward_backward_sequence(lp, lab, blank)
        assert np.isinf(a[0]) == np.isinf(b[0]) == (not cref.is_feasible(T, lab))
        assert_allclose(a[0], b[0], rtol=1e-13)
        assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-14)
    x, targets, il, tl, clean = make_case(rng, 25, 4, 6, blank=2, max_target=7)
    for reduction in REDUCTIONS:
        want = torch_ctc(x, clean, il, tl, blank=2, reduction=reduction)
        got = cref.ctc_loss(x, targets, il, tl, blank=2, reduction=reduction)
        assert_allclose(got[0], want[0], rtol=1e-13)
        assert_allclose(got[1], want[1], rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- against PyTorch
# (id, T, N, C, max_target, blank kind, layout, batch_first, zero_infinity, impossible)
TORCH_CASES = [
    ("blank-first-padded", 12, 4, 5, 3, "first", "padded", False, False, ()),
    ("blank-last-concat", 15, 3, 6, 5, "last", "concat", False, False, ()),
    ("blank-middle-batch-first", 10, 5, 7, 3, "middle", "padded", True, False, ()),
    ("zero-infinity", 8, 4, 4, 3, "middle", "padded", False, True, (0, 3)),
    ("zero-infinity-concat-batch-first", 9, 4, 5, 3, "last", "concat", True, True, (2,)),
    ("many-repeats", 40, 3, 3, 14, "first", "padded", False, False, ()),
    ("one-label-class", 9, 3, 2, 4, "last", "concat", False, False, ()),
    ("single-sequence", 20, 1, 8, 6, "middle", "padded", False, False, ()),
    ("tight-lengths", 7, 6, 4, 4, "first", "padded", True, False, ()),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch(backend, dtype, rng, case, weighted):
    _, T, N, C, S, blank_kind, layout, batch_first, zero_inf, impossible = case
    blank = blank_of(blank_kind, C)
    x, targets, il, tl, clean = make_case(rng, T, N, C, blank=blank, max_target=S,
                                          layout=layout, impossible=impossible)
    if case[0] == "tight-lengths":  # every input length at its minimum
        il = np.array([cref.min_frames(s) for s in cref.split_targets(targets, tl)])
    if batch_first:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    x = x.astype(dtype)
    sw = rng.uniform(0.2, 2.0, size=N) if weighted else None
    mag = magnitude(per_sequence_nll(x, targets, il, tl, blank, batch_first=batch_first))
    opts = dict(blank=blank, zero_infinity=zero_inf, batch_first=batch_first)
    for reduction in REDUCTIONS:
        loss, grad = fastloss.ctc_loss(x, targets, il, tl, **opts, reduction=reduction,
                                       sample_weight=sw, backend=backend)
        check_types(loss, grad, x, reduction, dtype, N)
        want_loss, want_grad = torch_ctc(x, clean, il, tl, **opts, reduction=reduction,
                                         sample_weight=sw)
        assert_ctc_close(loss, grad, want_loss, want_grad, dtype, mag)
        # the class, forward only and fused
        ctc = fastloss.CTC(**opts, reduction=reduction, backend=backend)
        assert_allclose(ctc.loss(x, targets, il, tl, sample_weight=sw), loss, **tight(dtype))
        l2, g2 = ctc(x, targets, il, tl, sample_weight=sw)
        assert_array_equal(l2, loss)
        assert_array_equal(g2, grad)


@pytest.mark.parametrize("layout", ["padded", "concat"])
def test_log_probs_true_against_torch_and_chain_rule(backend, dtype, rng, layout):
    """log_probs=True on lp = log_softmax(x): the loss is torch's; g_lp is d loss / d lp
    (minus the occupancy), and g_lp - softmax * sum_c g_lp is torch's gradient w.r.t. x."""
    T, N, C, blank = 14, 4, 6, 1
    x, targets, il, tl, clean = make_case(rng, T, N, C, blank=blank, max_target=4,
                                          layout=layout)
    lp = np.asarray(F.log_softmax(torch.tensor(x), dim=-1)).astype(dtype)
    lp64 = lp.astype(np.float64)
    mag = magnitude(per_sequence_nll(lp64, targets, il, tl, blank, log_probs=True))
    for reduction in REDUCTIONS:
        loss, g_lp = fastloss.ctc_loss(lp, targets, il, tl, blank=blank, reduction=reduction,
                                       log_probs=True, backend=backend)
        check_types(loss, g_lp, lp, reduction, dtype, N)
        want_loss, want_gx = torch_ctc(x, clean, il, tl, blank=blank, reduction=reduction)
        g = g_lp.astype(np.float64)
        chain = g - np.exp(lp64) * g.sum(axis=-1, keepdims=True)
        assert_ctc_close(loss, chain, want_loss, want_gx, dtype, mag)
        # and the gradient itself: minus the occupancy (reference forward-backward)
        ref_loss, ref_g = cref.ctc_loss(lp64, targets, il, tl, blank=blank,
                                        reduction=reduction, log_probs=True)
        assert_ctc_close(loss, g_lp, ref_loss, ref_g, dtype, mag)
        # every used frame's occupancy sums to one: sum_c g_lp = -coef_i
        if reduction != "mean":
            used = np.arange(T)[:, None] < il[None, :]
            assert_allclose(g.sum(axis=-1)[used], -1.0, rtol=0, atol=tol_of(dtype)["atol"] * mag)
            assert np.all(g[~used] == 0)


def test_log_probs_true_unnormalised_finite_differences(backend, rng):
    """Random, not normalised log-probs: the loss is -log sum_paths exp(sum_t lp) (brute
    force) and the gradient is its true derivative (finite differences of our own loss)."""
    T, N, C, blank = 5, 3, 3, 2
    lp = rng.normal(-0.7, 1.2, size=(T, N, C))
    targets = np.array([[0, 1, 0], [1, 1, -7], [0, 9, 9]])
    tl = np.array([3, 2, 1])
    il = np.array([5, 4, 3])
    sw = np.array([0.5, 2.0, 1.5])
    for reduction in REDUCTIONS:
        ctc = fastloss.CTC(blank=blank, reduction=reduction, log_probs=True, backend=backend)
        loss, grad = ctc.loss_grad(lp, targets, il, tl, sample_weight=sw)
        ref_loss, ref_grad = cref.ctc_loss(lp, targets, il, tl, blank=blank, log_probs=True,
                                           reduction=reduction, sample_weight=sw,
                                           method="brute")
        assert_ctc_close(loss, grad, ref_loss, ref_grad, np.float64, 1.0)
        fd = numdiff.gradient(
            lambda v: np.sum(ctc.loss(v, targets, il, tl, sample_weight=sw)), lp, h=1e-3)
        assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
        assert np.all(grad[T - 1:, 1] == 0) and np.all(grad[3:, 2] == 0)


@pytest.mark.parametrize("batch_first", [False, True], ids=["", "batch-first"])
def test_gradient_finite_differences_raw_logits(backend, rng, batch_first):
    T, N, C, blank = 6, 3, 4, 3
    x, targets, il, tl, _ = make_case(rng, T, N, C, blank=blank, max_target=3)
    if batch_first:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    sw = np.array([1.5, -0.5, 0.75])
    for reduction in REDUCTIONS:
        ctc = fastloss.CTC(blank=blank, reduction=reduction, batch_first=batch_first,
                           backend=backend)
        loss, grad = ctc.loss_grad(x, targets, il, tl, sample_weight=sw)
        fd = numdiff.gradient(
            lambda v: np.sum(ctc.loss(v, targets, il, tl, sample_weight=sw)), x, h=1e-3)
        assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
@pytest.mark.parametrize("n_classes", [3, 4])
def test_brute_force_over_all_alignments(backend, dtype, rng, n_classes, log_probs):
    """Every sequence of a tiny batch against the explicit sum over all C**T paths
    (impossible ones included: inf and a zero gradient)."""
    T, N = 5, 8
    for blank in (0, n_classes - 1, 1):
        tl = rng.integers(0, 4, size=N)
        targets = np.full((N, 3), -3)
        for i in range(N):
            targets[i, :tl[i]] = labels_without(rng, n_classes, blank, tl[i])
        targets[N - 1, :2] = labels_without(rng, n_classes, blank, 1)[0]  # a repeat
        tl[N - 1] = 2
        il = rng.integers(0, T + 1, size=N)
        il[N - 1] = 3
        x = rng.normal(-1.0 if log_probs else 0.0, 1.5, size=(T, N, n_classes)).astype(dtype)
        nll = per_sequence_nll(x, targets, il, tl, blank, log_probs=log_probs)
        for zero_infinity in (False, True):
            for reduction in REDUCTIONS:
                loss, grad = fastloss.ctc_loss(x, targets, il, tl, blank=blank,
                                               reduction=reduction, log_probs=log_probs,
                                               zero_infinity=zero_infinity, backend=backend)
                want = cref.ctc_loss(x, targets, il, tl, blank=blank, reduction=reduction,
                                     log_probs=log_probs, zero_infinity=zero_infinity,
                                     method="brute")
                assert_ctc_close(loss, grad, *want, dtype, magnitude(nll))


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
def test_single_path(backend, dtype, rng, log_probs):
    """T_i == L_i with no repeated adjacent labels: one path, loss = -sum_t lp_t(l_t),
    d loss / d lp = -onehot, d loss / d x = softmax - onehot."""
    T, N, C, blank = 6, 3, 5, 2
    tl = np.array([6, 4, 1])
    targets = np.array([[0, 1, 3, 4, 1, 0], [4, 3, 4, 0, 9, 9], [1, 9, 9, 9, 9, 9]])
    il = tl.copy()
    x = rng.normal(-1.0, 2.0, size=(T, N, C)).astype(dtype)
    x64 = x.astype(np.float64)
    lp = x64 if log_probs else cref.log_softmax(x64)
    onehot = np.zeros((T, N, C))
    nll = np.zeros(N)
    for i in range(N):
        for t in range(tl[i]):
            onehot[t, i, targets[i, t]] = 1.0
            nll[i] -= lp[t, i, targets[i, t]]
    used = (np.arange(T)[:, None] < il[None, :])[..., None]
    want_grad = -onehot if log_probs else np.where(used, np.exp(lp) - onehot, 0.0)
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, blank=blank, reduction="none",
                                   log_probs=log_probs, backend=backend)
    assert_ctc_close(loss, grad, nll, want_grad, dtype, magnitude(nll))


@pytest.mark.parametrize("layout", ["padded", "concat", "no-columns"])
def test_zero_length_targets(backend, dtype, rng, layout):
    """Empty targets: the only path is all blanks, loss = -sum_{t < T_i} log p_t(blank)."""
    T, N, C, blank = 7, 4, 5, 3
    x = rng.normal(0, 2.0, size=(T, N, C)).astype(dtype)
    il = np.array([7, 3, 1, 5])
    tl = np.zeros(N, dtype=np.int64)
    targets = {"padded": np.full((N, 3), -5), "concat": np.zeros(0, dtype=np.int64),
               "no-columns": np.zeros((N, 0), dtype=np.int64)}[layout]
    lp = cref.log_softmax(x.astype(np.float64))
    used = (np.arange(T)[:, None] < il[None, :])
    nll = -np.sum(np.where(used, lp[..., blank], 0.0), axis=0)
    onehot = np.zeros(C)
    onehot[blank] = 1
    want_grad = np.where(used[..., None], np.exp(lp) - onehot, 0.0)
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, blank=blank, reduction="none",
                                   backend=backend)
    assert_ctc_close(loss, grad, nll, want_grad, dtype, magnitude(nll))
    # "mean" divides by max(L_i, 1) = 1: the plain mean of the per-sequence losses
    loss, grad_mean = fastloss.ctc_loss(x, targets, il, tl, blank=blank, backend=backend)
    assert_ctc_close(loss, grad_mean, nll.mean(), want_grad / N, dtype, magnitude(nll))


def test_input_length_zero(backend, dtype, rng):
    """T_i == 0: loss 0 for an empty target, inf otherwise; gradient 0 either way.
    Also a whole input of T == 0 frames."""
    T, N, C = 4, 4, 3
    x = rng.normal(size=(T, N, C)).astype(dtype)
    targets = np.array([[1, 2], [1, 0], [2, 2], [1, 1]])
    tl = np.array([0, 1, 2, 1])
    il = np.array([0, 0, 4, 3])
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction="none", backend=backend)
    assert loss.dtype == dtype
    assert loss[0] == 0 and loss[1] == np.inf
    assert np.all(grad[:, :2] == 0)
    want = cref.ctc_loss(x, targets, il, tl, reduction="none")
    assert_ctc_close(loss, grad, *want, dtype, 1.0)

    x0 = np.zeros((0, 3, C), dtype=dtype)
    for reduction, want_loss in (("none", [0.0, np.inf, 0.0]), ("sum", np.inf),
                                 ("mean", np.inf)):
        loss, grad = fastloss.ctc_loss(x0, np.array([[1, 1], [2, 1], [0, 0]]), [0, 0, 0],
                                       [0, 1, 0], reduction=reduction, backend=backend)
        assert grad.shape == x0.shape and grad.dtype == dtype
        assert_array_equal(loss, np.asarray(want_loss, dtype))
    loss, _ = fastloss.ctc_loss(x0, np.zeros((3, 0), int), [0, 0, 0], [0, 0, 0],
                                backend=backend)
    assert loss == 0 and loss.dtype == dtype


def test_empty_batch(backend, dtype):
    x = np.zeros((5, 0, 4), dtype=dtype)
    for reduction in REDUCTIONS:
        loss, grad = fastloss.ctc_loss(x, np.zeros((0, 2), int), np.zeros(0, int),
                                       np.zeros(0, int), reduction=reduction, backend=backend)
        assert grad.shape == x.shape and grad.dtype == dtype
        if reduction == "none":
            assert loss.shape == (0,) and loss.dtype == dtype
        else:
            assert loss == 0 and loss.dtype == dtype and not np.isnan(loss)


# --------------------------------------------------------------------------- impossible alignments
@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
def test_impossible_alignments(backend, dtype, rng, log_probs):
    """Too short, or repeated labels without room for the blank between them: inf and a
    gradient of exactly 0 for that sequence; zero_infinity: 0 and 0; the others unchanged.
    Target [1, 1] needs T >= 3 (T=2 impossible); [1, 2] fits in T=2."""
    T, N, C = 6, 6, 4
    targets = np.array([[1, 1, 0], [1, 1, 0], [1, 2, 0], [3, 1, 2], [2, 2, 2], [1, 3, 1]])
    tl = np.array([2, 2, 2, 3, 3, 3])
    il = np.array([2, 3, 2, 2, 4, 6])  # impossible: 0 (repeat), 3 (too short), 4 (2 repeats)
    bad = np.array([True, False, False, True, True, False])
    x = rng.normal(-1.0 if log_probs else 0.0, 1.5, size=(T, N, C)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, size=N)
    nll = per_sequence_nll(x, targets, il, tl, 0, log_probs=log_probs)
    assert np.array_equal(np.isinf(nll), bad)  # the reference agrees on which
    for zero_infinity in (False, True):
        for weights in (None, sw):
            for reduction in REDUCTIONS:
                loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction=reduction,
                                               zero_infinity=zero_infinity, log_probs=log_probs,
                                               sample_weight=weights, backend=backend)
                assert np.all(grad[:, bad] == 0)
                assert np.all(np.isfinite(grad))
                if reduction == "none":
                    assert_array_equal(loss[bad], 0.0 if zero_infinity else np.inf)
                elif not zero_infinity:
                    assert loss == np.inf
                want = cref.ctc_loss(x, targets, il, tl, reduction=reduction,
                                     zero_infinity=zero_infinity, log_probs=log_probs,
                                     sample_weight=weights)
                assert_ctc_close(loss, grad, *want, dtype, magnitude(nll))


def test_zero_probability_is_impossible(backend, dtype, rng):
    """log_probs=True with log p = -inf for a needed label at every frame: probability 0,
    so inf and a zero gradient (zero_infinity: 0); a -inf at some frames only leaves a
    feasible path: a finite loss and gradient (0 where the log-prob is -inf)."""
    T, N, C = 5, 3, 4
    lp = rng.normal(-1.2, 1.0, size=(T, N, C))
    targets = np.array([[1, 2], [3, 1], [2, 0]])
    tl = np.array([2, 2, 1])
    il = np.array([5, 5, 4])
    lp[:, 0, 2] = -np.inf          # sequence 0 can never emit its label 2
    lp[1:3, 1, 3] = -np.inf        # sequence 1 can still emit 3 at frames 0, 3, 4
    lp = lp.astype(dtype)
    for zero_infinity in (False, True):
        loss, grad = fastloss.ctc_loss(lp, targets, il, tl, reduction="none", log_probs=True,
                                       zero_infinity=zero_infinity, backend=backend)
        assert loss[0] == (0 if zero_infinity else np.inf)
        assert np.all(grad[:, 0] == 0)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(loss[1:]))
        assert np.all(grad[1:3, 1, 3] == 0)
        want = cref.ctc_loss(lp, targets, il, tl, reduction="none", log_probs=True,
                             zero_infinity=zero_infinity)
        assert_ctc_close(loss, grad, *want, dtype, 1.0)


# --------------------------------------------------------------------------- unused frames, NaN
@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["", "batch-first"])
def test_frames_beyond_input_length_are_never_read(backend, dtype, rng, batch_first,
                                                   log_probs):
    T, N, C = 9, 4, 5
    x, targets, il, tl, _ = make_case(rng, T, N, C, blank=0, max_target=3)
    il[2] = 0
    tl[2] = 0
    unused = np.arange(T)[:, None] >= il[None, :]  # (T, N)
    if batch_first:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        unused = unused.T
    x = x.astype(dtype)
    poisoned = x.copy()
    poisoned[unused] = np.nan
    poisoned2 = x.copy()
    poisoned2[unused] = np.inf
    for reduction in REDUCTIONS:
        ctc = fastloss.CTC(reduction=reduction, batch_first=batch_first, log_probs=log_probs,
                           backend=backend)
        loss, grad = ctc.loss_grad(x, targets, il, tl)
        assert np.all(grad[unused] == 0)
        for other in (poisoned, poisoned2):
            with np.errstate(over="ignore"):
                l2, g2 = ctc.loss_grad(other, targets, il, tl)
            assert_array_equal(l2, loss)
            assert_array_equal(g2, grad)
            assert_array_equal(ctc.loss(other, targets, il, tl), ctc.loss(x, targets, il, tl))


def test_nan_in_a_used_frame_propagates_to_that_sequence_only(backend, dtype, rng):
    T, N, C = 6, 3, 4
    x, targets, il, tl, _ = make_case(rng, T, N, C, max_target=2)
    il[:] = T
    x = x.astype(dtype)
    bad = x.copy()
    bad[2, 1, 3] = np.nan
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction="none", backend=backend)
    l2, g2 = fastloss.ctc_loss(bad, targets, il, tl, reduction="none", backend=backend)
    assert np.isnan(l2[1])
    assert_array_equal(l2[[0, 2]], loss[[0, 2]])
    assert_array_equal(g2[:, [0, 2]], grad[:, [0, 2]])


# --------------------------------------------------------------------------- sample_weight
def test_sample_weight(backend, dtype, rng):
    """none: w_i l_i; sum: sum w_i l_i; mean: sum w_i l_i / max(L_i, 1) / sum w_i; the
    gradient scaled alike; ones == None; weights summing to 0: a mean of 0."""
    T, N, C, blank = 10, 5, 6, 5
    x, targets, il, tl, _ = make_case(rng, T, N, C, blank=blank, max_target=3)
    x = x.astype(dtype)
    sw = np.array([0.5, 2.0, -0.75, 1.25, 3.0])
    nll = cref.ctc_loss(x, targets, il, tl, blank=blank, reduction="none")[0]
    g_each = cref.ctc_loss(x, targets, il, tl, blank=blank, reduction="sum")[1]
    mag = magnitude(nll)
    for reduction in REDUCTIONS:
        coef = sw if reduction != "mean" else sw / np.maximum(tl, 1) / sw.sum()
        want_loss = coef * nll if reduction == "none" else np.sum(coef * nll)
        want_grad = g_each * coef[None, :, None]
        loss, grad = fastloss.ctc_loss(x, targets, il, tl, blank=blank, reduction=reduction,
                                       sample_weight=sw.astype(dtype), backend=backend)
        assert_ctc_close(loss, grad, want_loss, want_grad, dtype, mag)
        plain = fastloss.ctc_loss(x, targets, il, tl, blank=blank, reduction=reduction,
                                  backend=backend)
        ones = fastloss.ctc_loss(x, targets, il, tl, blank=blank, reduction=reduction,
                                 sample_weight=np.ones(N), backend=backend)
        assert_allclose(ones[0], plain[0], **tight(dtype))
        assert_allclose(ones[1], plain[1], **tight(dtype))
    zero_sum = np.array([1.0, -1.0, 0.5, -0.5, 0.0])
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, blank=blank, sample_weight=zero_sum,
                                   backend=backend)
    assert loss == 0 and not np.any(grad)


# --------------------------------------------------------------------------- long sequences
@pytest.fixture(scope="module")
def long_case():
    """T = 5000 frames, a 1500-label target (3001 states), C = 30, float32 logits, and the
    float64 reference on those float32 values (computed once)."""
    rng = np.random.default_rng(5000)
    T, N, C, S = 5000, 2, 30, 1500
    x = (2.0 * rng.standard_normal((T, N, C))).astype(np.float32)
    targets = rng.integers(1, C, size=(N, S))
    tl = np.array([S, S - 100])
    il = np.array([T, T - 700])
    nll, grad = cref.ctc_loss(x, targets, il, tl, reduction="none")
    return x, targets, il, tl, nll, grad


@pytest.mark.parametrize("prec", [np.float32, np.float64], ids=["float32", "float64"])
def test_long_sequence(backend, long_case, prec):
    """float32: the loss within rtol 1e-4 and the gradient within 1e-3 (~ eps32 * |log P|,
    |log P| ~ 1.5e4; PyTorch float32 is off by ~5e-2 here) of the float64 reference.
    float64 (the same values): rtol 1e-12 on the loss, 1e-14 * |log P| on the gradient."""
    x, targets, il, tl, nll, want_grad = long_case
    x = x.astype(prec)
    loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction="none", backend=backend)
    assert loss.dtype == prec and grad.dtype == prec
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    if prec == np.float32:
        assert_allclose(loss, nll, rtol=1e-4)
        assert_allclose(grad, want_grad, rtol=0, atol=1e-3)
    else:
        assert_allclose(loss, nll, rtol=1e-12)
        assert_allclose(grad, want_grad, rtol=0, atol=1e-14 * nll.max())
    assert np.all(grad[il[1]:, 1] == 0)


# --------------------------------------------------------------------------- extreme logits
def extreme_case(rng, dtype, log_probs):
    """Logits of magnitude up to 1e4 (float32; integers, so that float32 holds every
    difference exactly) or 1e30 (float64), with the target labels' logits pushed to the
    bottom: a feasible alignment whose probability underflows any float (~exp(-1e4))."""
    T, N, C = 12, 4, 5
    big = 1e4 if dtype == np.float32 else 1e30
    if dtype == np.float32:
        x = rng.integers(-int(big), int(big) + 1, size=(T, N, C)).astype(np.float64)
    else:
        x = rng.uniform(-big, big, size=(T, N, C))
    targets = np.array([[1, 2, 3, 4], [2, 2, 2, 0], [4, 4, 1, 1], [3, 0, 0, 0]])
    tl = np.array([4, 3, 4, 1])
    il = np.array([12, 5, 9, 12])  # [2, 2, 2] in exactly 5 frames: a single path
    for i in range(N):
        for lab in targets[i, :tl[i]]:
            x[:, i, lab] = -np.abs(x[:, i, lab]) if dtype == np.float64 else \
                -rng.integers(int(big) // 2, int(big) + 1, size=T)
    if log_probs:
        x = cref.log_softmax(x)
    return x.astype(dtype), targets, il, tl


@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
def test_extreme_logits(backend, dtype, rng, log_probs):
    """Finite loss equal to the log-space reference, NaN-free gradient: softmax minus an
    occupancy of (almost exactly) 0 or 1 on the dominant alignment."""
    x, targets, il, tl = extreme_case(rng, dtype, log_probs)
    nll, want_grad = cref.ctc_loss(x, targets, il, tl, reduction="none", log_probs=log_probs)
    big = 1e4 if dtype == np.float32 else 1e30
    assert np.all(np.isfinite(nll)) and nll.min() > big / 10  # P ~ exp(-1e3) underflows
    gtol = 1e-3 if dtype == np.float32 else 1e-9
    for reduction in REDUCTIONS:
        loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction=reduction,
                                       log_probs=log_probs, backend=backend)
        assert np.all(np.isfinite(loss)), loss
        assert not np.any(np.isnan(grad)) and np.all(np.isfinite(grad))
        coef = np.ones(4) if reduction != "mean" else 1 / np.maximum(tl, 1) / 4
        want_loss = coef * nll if reduction == "none" else np.sum(coef * nll)
        assert_allclose(loss, want_loss, rtol=tol_of(dtype)["rtol"])
        assert_allclose(grad, want_grad * coef[None, :, None], rtol=0, atol=gtol * coef.max())


# --------------------------------------------------------------------------- validation
def _valid():
    T, N, C = 6, 3, 5
    x = np.linspace(-1, 1, T * N * C).reshape(T, N, C)
    targets = np.array([[1, 2, 0], [3, 3, 4], [4, 0, 0]])
    return x, targets, np.array([6, 5, 2]), np.array([2, 3, 1])


def _bad_calls():
    """(id, kwargs replacing those of _valid(), match)."""
    x, targets, il, tl = _valid()
    concat = np.array([1, 2, 3, 3, 4, 4])
    cases = [
        ("label-C", dict(targets=np.array([[1, 2, 0], [3, 5, 4], [4, 0, 0]])), r"targets.*\b5\b"),
        ("label-negative", dict(targets=np.array([[1, 2, 0], [3, 3, 4], [-2, 0, 0]])),
         r"targets.*-2"),
        ("label-blank", dict(targets=np.array([[1, 0, 7], [3, 3, 4], [4, 0, 0]])),
         r"targets.*\b0\b"),
        ("label-blank-middle", dict(targets=np.array([[1, 2, 0], [3, 2, 4], [4, 0, 0]]),
                                    blank=2), r"targets.*\b2\b"),
        ("concat-label-C", dict(targets=np.array([1, 2, 3, 3, 4, 9])), r"targets.*\b9\b"),
        ("concat-label-blank", dict(targets=np.array([1, 2, 3, 0, 4, 4])), r"targets.*\b0\b"),
        ("concat-too-long", dict(targets=np.array([1, 2, 3, 3, 4, 4, 1])),
         "targets|target_lengths"),
        ("concat-too-short", dict(targets=concat[:5]), "targets|target_lengths"),
        ("targets-3d", dict(targets=targets[None]), "targets"),
        ("targets-batch-mismatch", dict(targets=np.vstack([targets, targets[:1]])), "targets"),
        ("targets-float-fraction", dict(targets=targets + 0.5), "targets"),
        ("input-length-negative", dict(input_lengths=np.array([6, -1, 2])), "input_lengths"),
        ("input-length-over-T", dict(input_lengths=np.array([6, 7, 2])), "input_lengths"),
        ("input-length-fraction", dict(input_lengths=np.array([6, 4.5, 2])), "input_lengths"),
        ("input-lengths-too-many", dict(input_lengths=np.array([6, 5, 2, 2])), "input_lengths"),
        ("input-lengths-2d", dict(input_lengths=il[None]), "input_lengths"),
        ("target-length-negative", dict(target_lengths=np.array([2, -3, 1])),
         "target_lengths"),
        ("target-length-over-S", dict(target_lengths=np.array([2, 4, 1])), "target_lengths"),
        ("target-lengths-too-few", dict(target_lengths=np.array([2, 3])), "target_lengths"),
        ("blank-C", dict(blank=5, targets=targets), "blank"),
        ("blank-negative", dict(blank=-1), "blank"),
        ("input-2d", dict(x=x[:, 0]), "input"),
        ("input-4d", dict(x=x[None]), "input"),
        ("reduction", dict(reduction="avg"), "reduction"),
        ("sample-weight-shape", dict(sample_weight=np.ones(4)), "sample_weight"),
        ("batch-first-input-length-over-T",
         dict(x=np.zeros((3, 4, 5)), batch_first=True, input_lengths=np.array([4, 5, 2])),
         "input_lengths"),
    ]
    return cases


BAD_CALLS = _bad_calls()


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_validation(backend, dtype, case):
    """A ValueError naming the culprit, raised before anything is written to out=."""
    _, change, match = case
    x, targets, il, tl = _valid()
    args = dict(x=x, targets=targets, input_lengths=il, target_lengths=tl)
    args.update(change)
    x = np.asarray(args.pop("x")).astype(dtype)
    call = [x, args.pop("targets"), args.pop("input_lengths"), args.pop("target_lengths")]
    out = np.full(x.shape, 7.5, dtype=dtype)
    with pytest.raises(ValueError, match=match):
        fastloss.ctc_loss(*call, **args, out=out, backend=backend)
    assert np.all(out == 7.5)
    opts = {k: args.pop(k) for k in list(args) if k in
            ("blank", "reduction", "batch_first", "zero_infinity", "log_probs")}
    if "reduction" in opts:  # may be refused by the constructor already
        with pytest.raises(ValueError, match=match):
            fastloss.CTC(**opts, backend=backend).loss(*call, **args)
        return
    with pytest.raises(ValueError, match=match):
        fastloss.CTC(**opts, backend=backend).loss(*call, **args)
    with pytest.raises(ValueError, match=match):
        fastloss.CTC(**opts, backend=backend).loss_grad(*call, **args, out=out)
    assert np.all(out == 7.5)


def test_complex_input_is_a_type_error(backend):
    x, targets, il, tl = _valid()
    with pytest.raises(TypeError, match="input"):
        fastloss.ctc_loss(x.astype(np.complex128), targets, il, tl, backend=backend)


def test_bad_label_message_gives_position_and_value(backend):
    x, targets, il, tl = _valid()
    targets = targets.copy()
    targets[1, 2] = 17
    with pytest.raises(ValueError, match=r"targets.*17") as err:
        fastloss.ctc_loss(x, targets, il, tl, backend=backend)
    assert "1, 2" in str(err.value) or "[1][2]" in str(err.value)
    with pytest.raises(ValueError, match=r"targets.*17") as err:
        fastloss.ctc_loss(x, np.array([1, 2, 3, 3, 17, 4]), il, tl, backend=backend)
    assert "4" in str(err.value).replace("17", "")


def test_padding_beyond_target_lengths_is_not_validated(backend):
    x, targets, il, tl = _valid()
    junk = targets.copy()
    junk[0, 2] = 0      # blank
    junk[2, 1:] = [-9, 2**40]
    a = fastloss.ctc_loss(x, targets, il, tl, reduction="none", backend=backend)
    b = fastloss.ctc_loss(x, junk, il, tl, reduction="none", backend=backend)
    assert_array_equal(a[0], b[0])
    assert_array_equal(a[1], b[1])


def test_no_hessian():
    assert not hasattr(fastloss.CTC(), "grad_hess")


# --------------------------------------------------------------------------- conventions
def test_out_is_filled_and_returned_and_may_be_the_input(backend, dtype, rng):
    x, targets, il, tl, _ = make_case(rng, 8, 3, 5, max_target=2)
    x = x.astype(dtype)
    for reduction in REDUCTIONS:
        loss, grad = fastloss.ctc_loss(x, targets, il, tl, reduction=reduction,
                                       backend=backend)
        out = np.full_like(x, np.nan)
        l2, g2 = fastloss.ctc_loss(x, targets, il, tl, reduction=reduction, out=out,
                                   backend=backend)
        assert g2 is out
        assert_array_equal(out, grad)
        assert_array_equal(l2, loss)
        inplace = x.copy()
        l3, g3 = fastloss.CTC(reduction=reduction, backend=backend).loss_grad(
            inplace, targets, il, tl, out=inplace)
        assert g3 is inplace
        assert_array_equal(l3, loss)
        assert_array_equal(inplace, grad)
    for bad in (np.zeros(x.shape, np.float64 if dtype == np.float32 else np.float32),
                np.zeros(x.shape[:-1] + (x.shape[-1] + 1,), dtype),
                np.zeros(x.shape[::-1], dtype).T):
        with pytest.raises(ValueError, match="out"):
            fastloss.ctc_loss(x, targets, il, tl, out=bad, backend=backend)
        assert not np.any(bad)


def test_inputs_are_never_modified(backend, dtype, rng):
    x, targets, il, tl, _ = make_case(rng, 8, 4, 5, max_target=3, blank=4)
    x = x.astype(dtype)
    sw = rng.uniform(0.5, 2, size=4).astype(dtype)
    args = [x, targets, il, tl, sw]
    copies = [a.copy() for a in args]
    for reduction in REDUCTIONS:
        for log_probs in (False, True):
            ctc = fastloss.CTC(blank=4, reduction=reduction, log_probs=log_probs,
                               backend=backend)
            ctc.loss_grad(x, targets, il, tl, sample_weight=sw)
            ctc.loss(x, targets, il, tl, sample_weight=sw)
    for a, c in zip(args, copies):
        assert_array_equal(a, c)


def test_dtypes(backend, rng):
    """float32 -> float32; float64, float16, ints -> float64; labels and lengths of any int
    dtype (or lists) give the same results."""
    x, targets, il, tl, _ = make_case(rng, 7, 3, 4, max_target=2)
    for xd, want in ((np.float32, np.float32), (np.float64, np.float64),
                     (np.float16, np.float64), (np.int32, np.float64)):
        xx = (x * 2).astype(xd)
        for reduction in REDUCTIONS:
            loss, grad = fastloss.ctc_loss(xx, targets, il, tl, reduction=reduction,
                                           backend=backend)
            check_types(loss, grad, xx, reduction, want, 3)
            ref = fastloss.ctc_loss(xx.astype(want), targets, il, tl, reduction=reduction,
                                    backend=backend)
            assert_array_equal(loss, ref[0])
            assert_array_equal(grad, ref[1])
    base = fastloss.ctc_loss(x, targets, il, tl, reduction="none", backend=backend)
    small = targets % 128  # labels (< C) unchanged, the junk padding stays junk
    for t_kind in (np.int32, np.uint8, np.int16):
        got = fastloss.ctc_loss(x, small.astype(t_kind), il.astype(t_kind), tl.astype(t_kind),
                                reduction="none", backend=backend)
        assert_array_equal(got[0], base[0])
        assert_array_equal(got[1], base[1])
    got = fastloss.ctc_loss(x, small.tolist(), il.tolist(), tl.tolist(), reduction="none",
                            backend=backend)
    assert_array_equal(got[0], base[0])


def test_read_only_and_non_contiguous_inputs(backend, dtype, rng):
    x, targets, il, tl, _ = make_case(rng, 8, 3, 5, max_target=3)
    x = x.astype(dtype)
    sw = rng.uniform(0.5, 2, size=3)
    want = fastloss.ctc_loss(x, targets, il, tl, sample_weight=sw, reduction="none",
                             backend=backend)
    big = np.zeros((16, 3, 10), dtype)
    big[::2, :, ::2] = x
    xs = big[::2, :, ::2]
    tbig = np.zeros((3, 2 * targets.shape[1]), np.int64)
    tbig[:, ::2] = targets
    ts = tbig[:, ::2]
    ils = np.repeat(il, 2)[::2]
    tls = np.repeat(tl, 2)[::2]
    sws = np.repeat(sw, 2)[::2]
    for a in (xs, ts, ils, tls, sws):
        a.flags.writeable = False
    assert not xs.flags.c_contiguous and not ts.flags.c_contiguous
    got = fastloss.ctc_loss(xs, ts, ils, tls, sample_weight=sws, reduction="none",
                            backend=backend)
    assert_allclose(got[0], want[0], **tight(dtype))
    assert_allclose(got[1], want[1], **tight(dtype))
    # batch_first given as a transposed (non-contiguous) view of the (T, N, C) array
    got = fastloss.ctc_loss(np.swapaxes(x, 0, 1), targets, il, tl, sample_weight=sw,
                            reduction="none", batch_first=True, backend=backend)
    assert_allclose(got[0], want[0], **tight(dtype))
    assert_allclose(got[1], np.swapaxes(want[1], 0, 1), **tight(dtype))


def test_registry_row(rng):
    from fastloss._registry import REGISTRY

    spec = REGISTRY["ctc_loss"]
    assert spec.family == "ctc" and spec.cls is fastloss.CTC and spec.func is fastloss.ctc_loss
    x, (targets, il, tl) = spec.make_data(rng, (12, 3, 6), np.float64)
    assert x.shape == (12, 3, 6)
    loss, grad = spec.func(x, targets, il, tl)
    want = cref.ctc_loss(x, targets, il, tl)
    assert np.isfinite(loss)
    assert_ctc_close(loss, grad, *want, np.float64, magnitude(
        per_sequence_nll(x, targets, il, tl, 0)))


# --------------------------------------------------------------------------- engine invariants
def test_results_do_not_depend_on_the_number_of_threads(backend, dtype, rng, monkeypatch):
    # Small inputs run on one thread whatever is asked; make two really run, on sequences
    # long enough for the threads to overlap (a workspace shared by mistake shows).
    monkeypatch.setattr(fastloss._backend, "MIN_WORK_PER_THREAD", 1)
    x, targets, il, tl, _ = make_case(rng, 200, 17, 8, max_target=60, impossible=(5,))
    x = x.astype(dtype)
    sw = rng.uniform(0.5, 2, size=17)
    for reduction in REDUCTIONS:
        for weights in (None, sw):
            for opts in ({}, {"zero_infinity": True, "log_probs": True, "blank": 0},
                         {"batch_first": True, "blank": 7}):
                xx = np.ascontiguousarray(np.swapaxes(x, 0, 1)) if opts.get("batch_first") else x
                tt = np.where(targets == 7, 0, targets) if opts.get("blank") == 7 else targets
                runs = []
                for n in (1, 2):
                    with fastloss.num_threads(n):
                        ctc = fastloss.CTC(**opts, reduction=reduction, backend=backend)
                        runs.append((*ctc.loss_grad(xx, tt, il, tl, sample_weight=weights),
                                     ctc.loss(xx, tt, il, tl, sample_weight=weights)))
                for u, v in zip(*runs):
                    assert np.asarray(u).dtype == np.asarray(v).dtype
                    assert_array_equal(u, v)


@pytest.mark.parametrize("log_probs", [False, True], ids=["logits", "log-probs"])
def test_backends_agree(dtype, rng, log_probs):
    x, targets, il, tl, _ = make_case(rng, 30, 6, 7, blank=3, max_target=8)
    x = x.astype(dtype)
    sw = rng.uniform(0.5, 2, size=6)
    mag = magnitude(per_sequence_nll(x, targets, il, tl, 3, log_probs=log_probs))
    for reduction in REDUCTIONS:
        for weights in (None, sw):
            kw = dict(blank=3, reduction=reduction, log_probs=log_probs,
                      sample_weight=weights)
            a = fastloss.ctc_loss(x, targets, il, tl, **kw, backend="cython")
            b = fastloss.ctc_loss(x, targets, il, tl, **kw, backend="numba")
            assert a[0].dtype == b[0].dtype == dtype
            assert_ctc_close(a[0], a[1], b[0], b[1].astype(np.float64), dtype, mag)

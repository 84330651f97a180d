"""Elementwise losses: BCE with logits, sigmoid focal, Huber, smooth L1, MSE, L1, pinball.

Expected values come from independent sources:
- ``reference.py``: the formulas in plain NumPy float64 / longdouble, one element at a time;
- PyTorch float64 autograd (gradient, and the Hessian diagonal by double backward) for every
  loss PyTorch has; torchvision's ``sigmoid_focal_loss`` formula written with torch ops;
- scikit-learn's ``mean_pinball_loss`` for the pinball loss;
- central finite differences (``numdiff.py``) of the longdouble reference;
- mpmath at 60 digits for the sigmoid focal loss in the tails.
Every test runs on both backends (``backend=``) and, unless it is about one precision, on
float32 and float64 inputs. The generic conventions (dtypes, layouts, ``out=``, threads,
backend parity) are in test_common.py, driven by the registry.
"""
import functools

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal, assert_array_max_ulp
from sklearn.metrics import mean_pinball_loss

import fastloss
import numdiff
import reference as ref
from reference import REDUCTIONS, tolerance

LD = np.longdouble
SHAPES = [(24,), (6, 4), (2, 3, 4)]
SHAPE_IDS = ["N", "NC", "ABC"]
SW_KINDS = [None, "rows", "full"]  # sample_weight: none, (N,), the input's shape
SW_IDS = ["", "sw-rows", "sw-full"]
FOCAL_GAMMAS = [0.0, 0.3, 0.5, 1.0, 2.0, 3.5]


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _one_thread():
    """Every array here is far below one kernel block (2048 elements), so a second thread
    would have nothing to do; thread invariance is test_common's job. One thread also keeps
    two OpenMP runtimes (Cython's, Numba's) from spinning against each other on small calls."""
    with fastloss.num_threads(1):
        yield


def tight(dtype):
    """Two computations by the library of the same quantity: a few ulps."""
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps)


def make_logits(rng, shape, dtype, scale=2.0, clip=6.0):
    return np.clip(scale * rng.standard_normal(shape), -clip, clip).astype(dtype)


def make_probabilities(rng, shape, dtype):
    """Targets in [0, 1]: a third exactly 0, a third exactly 1, a third soft."""
    t = rng.random(shape)
    flat = t.reshape(-1)
    flat[0::3] = 0.0
    flat[1::3] = 1.0
    return t.astype(dtype)


def make_regression(rng, shape, dtype):
    """Predictions and targets; every fifth target equals its prediction exactly."""
    x = (2 * rng.standard_normal(shape)).astype(dtype)
    t = (2 * rng.standard_normal(shape)).astype(dtype)
    t.reshape(-1)[::5] = x.reshape(-1)[::5]
    return x, t


def make_sample_weight(rng, kind, shape, dtype):
    if kind is None:
        return None
    return rng.uniform(0.2, 2.0, shape[:1] if kind == "rows" else shape).astype(dtype)


def expand_sample_weight(sw, shape):
    """sample_weight as the library applies it: every element of row n for an (N,) weight."""
    sw = np.asarray(sw, np.float64)
    if sw.shape != tuple(shape):
        sw = sw.reshape(sw.shape + (1,) * (len(shape) - 1))
    return np.broadcast_to(sw, shape)


def check_loss_type(loss, reduction, shape, dtype):
    if reduction == "none":
        assert isinstance(loss, np.ndarray)
        assert loss.shape == shape
        assert loss.dtype == dtype
    else:
        assert isinstance(loss, np.floating), type(loss)
        assert loss.dtype == dtype


def all_three(obj, x, t, sw=None):
    """(loss, grad, hess) from one loss object, checking that its methods agree."""
    loss, grad = obj.loss_grad(x, t, sample_weight=sw)
    grad2, hess = obj.grad_hess(x, t, sample_weight=sw)
    only = obj.loss(x, t, sample_weight=sw)
    tol = tight(np.asarray(grad).dtype)
    assert type(only) is type(loss)
    assert_allclose(only, loss, **tol)
    assert_allclose(grad2, grad, **tol)
    return loss, grad, hess


# --------------------------------------------------------------------------- the losses
# name -> (class, function, reference, data kind)
LOSSES = {
    "bce": (fastloss.BCEWithLogits, fastloss.binary_cross_entropy_with_logits,
            ref.binary_cross_entropy_with_logits, "logits"),
    "focal": (fastloss.SigmoidFocal, fastloss.sigmoid_focal_loss, ref.sigmoid_focal_loss,
              "logits"),
    "huber": (fastloss.Huber, fastloss.huber_loss, ref.huber_loss, "regression"),
    "smooth_l1": (fastloss.SmoothL1, fastloss.smooth_l1_loss, ref.smooth_l1_loss, "regression"),
    "mse": (fastloss.MSE, fastloss.mse_loss, ref.mse_loss, "regression"),
    "l1": (fastloss.L1, fastloss.l1_loss, ref.l1_loss, "regression"),
    "pinball": (fastloss.Pinball, fastloss.pinball_loss, ref.pinball_loss, "quantile"),
}


def _per_column(low, high):
    """An option of shape (C,) (the last axis), values in [low, high]."""
    return lambda rng, s, dtype: rng.uniform(low, high, s[-1:]).astype(dtype)


def _per_row(low, high):
    """An option of shape (N, 1, ...) (broadcast along every axis but the first)."""
    return lambda rng, s, dtype: rng.uniform(low, high, s[:1] + (1,) * (len(s) - 1)).astype(dtype)


def _full(low, high):
    return lambda rng, s, dtype: rng.uniform(low, high, s).astype(dtype)


def _const(value):
    return lambda rng, s, dtype: np.asarray(value, dtype)


# (id, loss name, options: name -> value or maker(rng, shape, dtype))
VARIANTS = [
    ("bce", "bce", {}),
    ("bce-weight-C", "bce", {"weight": _per_column(0.2, 2.0)}),
    ("bce-weight-rows", "bce", {"weight": _per_row(0.2, 2.0)}),
    ("bce-pos_weight-C", "bce", {"pos_weight": _per_column(0.5, 3.0)}),
    ("bce-pos_weight-1", "bce", {"pos_weight": _const([3.0])}),
    ("bce-weight-full-pos_weight-C", "bce",
     {"weight": _full(0.2, 2.0), "pos_weight": _per_column(0.5, 3.0)}),
    ("focal", "focal", {}),
    ("focal-g0", "focal", {"gamma": 0.0}),
    ("focal-g0.3", "focal", {"gamma": 0.3}),
    ("focal-g0.5-noalpha", "focal", {"alpha": -1.0, "gamma": 0.5}),
    ("focal-g1-noalpha", "focal", {"alpha": -1.0, "gamma": 1.0}),
    ("focal-g3.5-a0.75", "focal", {"alpha": 0.75, "gamma": 3.5}),
    ("huber", "huber", {}),
    ("huber-d0.5", "huber", {"delta": 0.5}),
    ("huber-d3", "huber", {"delta": 3.0}),
    ("smooth_l1", "smooth_l1", {}),
    ("smooth_l1-b0.5", "smooth_l1", {"beta": 0.5}),
    ("smooth_l1-b0", "smooth_l1", {"beta": 0.0}),
    ("mse", "mse", {}),
    ("l1", "l1", {}),
]
VARIANT_IDS = [v[0] for v in VARIANTS]


def build_options(opts, rng, shape, dtype):
    return {k: (v(rng, shape, dtype) if callable(v) else v) for k, v in opts.items()}


def make_data(name, rng, shape, dtype):
    kind = LOSSES[name][3]
    if kind == "logits":
        return make_logits(rng, shape, dtype), make_probabilities(rng, shape, dtype)
    return make_regression(rng, shape, dtype)


# --------------------------------------------------------------------------- torch
def _t(a):
    return None if a is None else torch.tensor(np.asarray(a, np.float64))


def torch_focal(xt, tt, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss (reduction="none"), written with torch ops."""
    p = torch.sigmoid(xt)
    ce = F.binary_cross_entropy_with_logits(xt, tt, reduction="none")
    p_t = p * tt + (1 - p) * (1 - tt)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * tt + (1 - alpha) * (1 - tt)
        loss = alpha_t * loss
    return loss


def torch_loss(name, xt, tt, opts, reduction):
    """PyTorch's loss with PyTorch's own reduction (torchvision's for focal)."""
    if name == "bce":
        return F.binary_cross_entropy_with_logits(
            xt, tt, weight=_t(opts.get("weight")), pos_weight=_t(opts.get("pos_weight")),
            reduction=reduction)
    if name == "focal":
        loss = torch_focal(xt, tt, opts.get("alpha", 0.25), opts.get("gamma", 2.0))
        return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
    if name == "huber":
        return F.huber_loss(xt, tt, reduction=reduction, delta=opts.get("delta", 1.0))
    if name == "smooth_l1":
        return F.smooth_l1_loss(xt, tt, reduction=reduction, beta=opts.get("beta", 1.0))
    if name == "mse":
        return F.mse_loss(xt, tt, reduction=reduction)
    if name == "l1":
        return F.l1_loss(xt, tt, reduction=reduction)
    raise KeyError(name)


def torch_results(name, x, t, opts, reduction, sample_weight=None):
    """(loss, grad, hess) in float64 by autograd. Without sample_weight, torch's own
    reduction; with it (torch has none), torch's "none" times the weights expanded to every
    element, and "mean" divides by the sum of those (API.md). The Hessian of an elementwise
    loss is diagonal: its diagonal is the gradient of sum(grad)."""
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    tt = torch.tensor(np.asarray(t, np.float64))
    if sample_weight is None:
        loss = torch_loss(name, xt, tt, opts, reduction)
    else:
        sw = torch.tensor(np.ascontiguousarray(expand_sample_weight(sample_weight, x.shape)))
        per = torch_loss(name, xt, tt, opts, "none") * sw
        loss = {"none": per, "sum": per.sum(), "mean": per.sum() / sw.sum()}[reduction]
    (grad,) = torch.autograd.grad(loss.sum(), xt, create_graph=True)
    if grad.requires_grad:
        (hess,) = torch.autograd.grad(grad.sum(), xt, allow_unused=True)
        hess = torch.zeros_like(xt) if hess is None else hess
    else:  # piecewise-linear losses: torch's gradient does not depend on x
        hess = torch.zeros_like(xt)
    # force=True: a ZeroTensor (the double backward of L1) only converts that way
    return tuple(a.detach().numpy(force=True) for a in (loss, grad, hess))


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("vid, name, opts", VARIANTS, ids=VARIANT_IDS)
def test_against_reference_and_torch(backend, dtype, rng, vid, name, opts, shape, reduction,
                                     sw_kind):
    """Loss against the NumPy reference; loss, gradient and Hessian diagonal against
    PyTorch float64 autograd, with every reduction and sample_weight (N,) or full."""
    cls, func, reference, _ = LOSSES[name]
    x, t = make_data(name, rng, shape, dtype)
    opts = build_options(opts, rng, shape, dtype)
    sw = make_sample_weight(rng, sw_kind, shape, dtype)

    obj = cls(**opts, reduction=reduction, backend=backend)
    loss, grad, hess = all_three(obj, x, t, sw)

    check_loss_type(loss, reduction, shape, dtype)
    assert grad.shape == hess.shape == shape
    assert grad.dtype == hess.dtype == dtype
    tol = tolerance(dtype)
    assert_allclose(loss, reference(x, t, **opts, reduction=reduction, sample_weight=sw), **tol)
    t_loss, t_grad, t_hess = torch_results(name, x, t, opts, reduction, sw)
    assert_allclose(loss, t_loss, **tol)
    assert_allclose(grad, t_grad, **tol)
    assert_allclose(hess, t_hess, **tol)
    f_loss, f_grad = func(x, t, **opts, reduction=reduction, sample_weight=sw, backend=backend)
    assert_array_equal(f_loss, loss)
    assert_array_equal(f_grad, grad)


@pytest.mark.parametrize("vid, name, opts", VARIANTS, ids=VARIANT_IDS)
def test_sample_weight_of_ones_is_none_and_zero_sum_gives_zero(backend, dtype, rng, vid, name,
                                                               opts):
    shape = (6, 4)
    cls = LOSSES[name][0]
    x, t = make_data(name, rng, shape, dtype)
    opts = build_options(opts, rng, shape, dtype)
    for reduction in REDUCTIONS:
        obj = cls(**opts, reduction=reduction, backend=backend)
        plain = all_three(obj, x, t)
        for ones in (np.ones(shape[:1], dtype), np.ones(shape, dtype)):
            for a, b in zip(all_three(obj, x, t, ones), plain):
                assert_allclose(a, b, **tight(dtype))
    sw = np.array([1.0, -1.0, 0.5, -0.5, 0.0, 0.0], dtype)
    loss, grad = cls(**opts, backend=backend).loss_grad(x, t, sample_weight=sw)
    assert loss == 0.0 and loss.dtype == dtype
    assert np.all(np.isfinite(grad))


# --------------------------------------------------------------------------- pinball
PINBALL_CASES = [
    ((30,), 0.5),
    ((30,), 0.1),
    ((30,), 0.9),
    ((30,), 0.37),
    ((30, 1), 0.8),
    ((30, 3), np.array([0.1, 0.5, 0.9])),
    ((30, 4), np.array([0.05, 0.37, 0.5, 0.95])),
]
PINBALL_IDS = ["N-q0.5", "N-q0.1", "N-q0.9", "N-q0.37", "N1-q0.8", "NQ3", "NQ4"]


def make_pinball(rng, shape, dtype):
    """Predictions (N,) or (N, Q) and targets (N,); a few predictions equal their target."""
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape[:1]).astype(dtype)
    x.reshape(shape[0], -1)[::4, 0] = t[::4]
    return x, t


def sklearn_pinball_mean(x, t, quantile, sample_weight=None):
    """The mean over the Q columns of scikit-learn's mean_pinball_loss, one quantile each."""
    x = np.asarray(x, np.float64).reshape(len(t), -1)
    q = np.broadcast_to(np.asarray(quantile, np.float64), x.shape[1:])
    sw = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    per_column = [mean_pinball_loss(np.asarray(t, np.float64), x[:, j], alpha=float(q[j]),
                                    sample_weight=sw) for j in range(x.shape[1])]
    return float(np.mean(per_column))


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape, quantile", PINBALL_CASES, ids=PINBALL_IDS)
def test_pinball_against_sklearn_and_reference(backend, dtype, rng, shape, quantile, reduction,
                                               sw_kind):
    """Loss against scikit-learn (per quantile, then averaged; sample_weight (N,)) and the
    reference (also sample_weight of the input's shape); gradient -q below the target and
    1 - q from the target up (equality included); Hessian exactly 0."""
    x, t = make_pinball(rng, shape, dtype)
    sw = make_sample_weight(rng, sw_kind, shape, dtype)
    quantile = quantile if np.ndim(quantile) == 0 else quantile.astype(dtype)
    obj = fastloss.Pinball(quantile=quantile, reduction=reduction, backend=backend)
    loss, grad, hess = all_three(obj, x, t, sw)

    check_loss_type(loss, reduction, shape, dtype)
    assert grad.shape == hess.shape == shape and grad.dtype == hess.dtype == dtype
    tol = tolerance(dtype)
    assert_allclose(loss, ref.pinball_loss(x, t, quantile, reduction=reduction,
                                           sample_weight=sw), **tol)
    w = np.ones(shape) if sw is None else expand_sample_weight(sw, shape)
    if sw_kind != "full":
        mean = sklearn_pinball_mean(x, t, quantile, sw)
        if reduction == "mean":
            assert_allclose(loss, mean, **tol)
        elif reduction == "sum":
            assert_allclose(loss, mean * w.sum(), **tol)
    q = np.broadcast_to(np.asarray(quantile, np.float64), shape)
    below = x < t.reshape((-1,) + (1,) * (len(shape) - 1))
    expected_grad = np.where(below, -q, 1 - q) * w
    if reduction == "mean":
        expected_grad = expected_grad / w.sum()
    assert_allclose(grad, expected_grad, **tol)
    assert_array_equal(hess, np.zeros(shape, dtype))


def test_pinball_scalar_quantile_with_several_columns(backend, dtype, rng):
    """A scalar quantile with an (N, Q) input applies to every column (the class docstring:
    "(N, Q) with quantile of shape (Q,) (or a scalar)"), as Q copies of it do."""
    x, t = make_pinball(rng, (10, 3), dtype)
    for reduction in REDUCTIONS:
        scalar = all_three(fastloss.Pinball(quantile=0.3, reduction=reduction, backend=backend),
                           x, t)
        vector = all_three(fastloss.Pinball(quantile=np.full(3, 0.3), reduction=reduction,
                                            backend=backend), x, t)
        for a, b in zip(scalar, vector):
            assert_array_equal(a, b)


@pytest.mark.parametrize("one", [[0.3], np.array([0.3]), np.float32(0.3)], ids=["list", "array", "np"])
def test_pinball_one_quantile_as_a_list_is_the_scalar(backend, dtype, rng, one):
    """quantile=[q] (Q = 1) for an (N, 1) or (N,) input is quantile=q."""
    for shape in ((10, 1), (10,)):
        x, t = make_pinball(rng, shape, dtype)
        for reduction in REDUCTIONS:
            want = all_three(fastloss.Pinball(quantile=float(np.float32(0.3)) if isinstance(
                one, np.float32) else 0.3, reduction=reduction, backend=backend), x, t)
            got = all_three(fastloss.Pinball(quantile=one, reduction=reduction,
                                             backend=backend), x, t)
            for a, b in zip(got, want):
                assert_array_equal(a, b)


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9, np.array([0.2, 0.7, 0.95])],
                         ids=["0.1", "0.5", "0.9", "vector"])
def test_pinball_gradient_at_equality_is_one_minus_q(backend, dtype, quantile):
    shape = (5,) if np.ndim(quantile) == 0 else (5, 3)
    x = np.linspace(-2, 2, int(np.prod(shape))).reshape(shape).astype(dtype)
    t = x.reshape(5, -1)[:, 0].copy()
    x = np.broadcast_to(t.reshape((5,) + (1,) * (len(shape) - 1)), shape).copy()
    loss, grad = fastloss.pinball_loss(x, t, quantile=quantile, reduction="sum", backend=backend)
    assert loss == 0.0
    expected = np.broadcast_to(1 - np.asarray(quantile, dtype), shape)
    assert_allclose(grad, expected, **tight(dtype))


# --------------------------------------------------------------------------- finite differences
FD_VARIANTS = VARIANTS + [
    ("pinball-q0.3", "pinball", {"quantile": 0.3}),
    ("pinball-NQ", "pinball", {"quantile": _const([0.1, 0.5, 0.85])}),
]
FD_IDS = [v[0] for v in FD_VARIANTS]


def kinks(name, opts):
    """|x - t| values where the loss is not twice differentiable."""
    if name == "huber":
        return [opts.get("delta", 1.0)]
    if name == "smooth_l1":
        return [opts.get("beta", 1.0)]
    if name in ("l1", "pinball"):
        return [0.0]
    return []


def away_from_kinks(rng, name, opts, shape, dtype, margin=0.1):
    """Data whose |x - t| stays ``margin`` away from every kink of the loss."""
    if name == "pinball":
        q = opts.get("quantile", 0.5)
        shape = (shape[0], np.size(q)) if np.ndim(q) else shape[:1]
    if LOSSES[name][3] == "logits":
        return make_logits(rng, shape, dtype, scale=3.0, clip=8.0), \
            make_probabilities(rng, shape, dtype)
    magnitude = rng.uniform(0.0, 3.0, shape)
    for k in kinks(name, opts):
        for _ in range(100):
            bad = np.abs(magnitude - k) < margin
            if not bad.any():
                break
            magnitude[bad] = rng.uniform(0.0, 3.0, bad.sum())
    d = np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    if name == "pinball":
        t = rng.standard_normal(shape[:1]).astype(dtype)
        x = (t.reshape((-1,) + (1,) * (len(shape) - 1)) + d).astype(dtype)
        t_full = np.broadcast_to(t.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    else:
        t = (2 * rng.standard_normal(shape)).astype(dtype)
        x = (t + d).astype(dtype)
        t_full = t
    dx = np.abs(x.astype(np.float64) - t_full)
    for k in kinks(name, opts):
        assert np.all(np.abs(dx - k) > margin / 2)
    return x, t


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("vid, name, opts", FD_VARIANTS, ids=FD_IDS)
def test_derivatives_against_finite_differences(backend, dtype, rng, vid, name, opts,
                                                reduction):
    """Gradient and Hessian diagonal against 4th-order central differences of the longdouble
    reference (every element is its own sample, so all elements move at once), away from the
    kinks; in float64 also the Hessian against differences of the library's own gradient."""
    cls, _, reference, _ = LOSSES[name]
    opts = build_options(opts, rng, (6, 4), dtype)
    x, t = away_from_kinks(rng, name, opts, (6, 4), dtype)
    sw = rng.uniform(0.2, 2.0, x.shape).astype(dtype)
    obj = cls(**opts, reduction=reduction, backend=backend)
    loss, grad, hess = all_three(obj, x, t, sw)

    def per_element(z):  # (n, 1) -> (n,): each "row" is one element
        return reference(z.reshape(x.shape), t, **opts, reduction="none", sample_weight=sw,
                         dtype=LD).reshape(-1)

    flat = x.astype(LD).reshape(-1, 1)
    g_fd = numdiff.gradient_rowwise(per_element, flat).reshape(x.shape)
    h_fd = numdiff.hessian_diagonal_rowwise(per_element, flat, h=1e-2).reshape(x.shape)
    if reduction == "mean":
        denominator = sw.astype(LD).sum()
        g_fd, h_fd = g_fd / denominator, h_fd / denominator
    g_fd, h_fd = g_fd.astype(np.float64), h_fd.astype(np.float64)
    if dtype == np.float64:
        assert_allclose(grad, g_fd, rtol=1e-9, atol=1e-12)
        assert_allclose(hess, h_fd, rtol=1e-7, atol=1e-10)
        h_from_grad = numdiff.derivative(lambda z: obj.loss_grad(z, t, sample_weight=sw)[1], x)
        assert_allclose(hess, h_from_grad, rtol=1e-8, atol=1e-11)
    else:
        scale = np.abs(g_fd).max()
        assert_allclose(grad, g_fd, rtol=1e-5, atol=1e-6 * scale)
        assert_allclose(hess, h_fd, rtol=1e-5, atol=1e-6 * max(np.abs(h_fd).max(), scale))


@pytest.mark.parametrize("vid, name, opts", FD_VARIANTS, ids=FD_IDS)
def test_mean_gradient_against_scalar_finite_differences(backend, rng, vid, name, opts):
    """The "mean" loss as one scalar function of every input (no separability assumed),
    with (N,) sample weights: checks the denominator of the mean."""
    cls, _, reference, _ = LOSSES[name]
    opts = build_options(opts, rng, (3, 2), np.float64)
    x, t = away_from_kinks(rng, name, opts, (3, 2), np.float64)
    sw = rng.uniform(0.2, 2.0, x.shape[:1])
    obj = cls(**opts, reduction="mean", backend=backend)
    loss, grad, hess = all_three(obj, x, t, sw)

    def mean(z):
        return reference(z, t, **opts, reduction="mean", sample_weight=sw, dtype=LD)

    assert_allclose(loss, float(mean(x.astype(LD))), rtol=1e-12)
    assert_allclose(grad, numdiff.gradient(mean, x.astype(LD)).astype(np.float64),
                    rtol=1e-9, atol=1e-12)
    assert_allclose(hess, numdiff.hessian_diagonal(mean, x.astype(LD)).astype(np.float64),
                    rtol=1e-7, atol=1e-10)


# --------------------------------------------------------------------------- identities
def _wide_logits(rng, dtype):
    """Moderate random logits plus the tails and the extremes of the promise."""
    big = 1e4 if dtype == np.float32 else 1e30
    tails = [0.0, 5.0, -5.0, 15.0, -15.0, 30.0, -30.0, 90.0, -90.0, big, -big]
    x = np.concatenate([3 * rng.standard_normal(33), tails]).astype(dtype)
    return x.reshape(4, 11)


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_gamma0_without_alpha_is_bce_exactly(backend, dtype, rng, reduction, sw_kind):
    x = _wide_logits(rng, dtype)
    t = make_probabilities(rng, x.shape, dtype)
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    for alpha in (-1.0, -0.5):
        focal = fastloss.SigmoidFocal(alpha=alpha, gamma=0.0, reduction=reduction,
                                      backend=backend)
        bce = fastloss.BCEWithLogits(reduction=reduction, backend=backend)
        for a, b in zip(all_three(focal, x, t, sw), all_three(bce, x, t, sw)):
            assert np.all(np.isfinite(a))
            # the same formula; a compiler may fuse its multiply-adds differently: 1 ulp
            assert_array_max_ulp(a, b, maxulp=1)


@pytest.mark.parametrize("gamma", FOCAL_GAMMAS[1:])
def test_focal_is_at_most_bce(backend, dtype, rng, gamma):
    """(1 - p_t)^gamma <= 1: focal <= BCE elementwise (alpha < 0), and >= 0."""
    x = _wide_logits(rng, dtype)
    t = make_probabilities(rng, x.shape, dtype)
    focal = fastloss.SigmoidFocal(alpha=-1.0, gamma=gamma, reduction="none", backend=backend)
    bce = fastloss.BCEWithLogits(reduction="none", backend=backend)
    f, b = focal.loss(x, t), bce.loss(x, t)
    assert np.all(np.isfinite(f))
    assert np.all(f <= b), (x[f > b], t[f > b], f[f > b], b[f > b])
    assert np.all(f >= 0)
    # and strictly below wherever the reference says so by a clear margin
    ref_f = ref.sigmoid_focal_loss(x, t, alpha=-1.0, gamma=gamma, reduction="none")
    ref_b = ref.binary_cross_entropy_with_logits(x, t, reduction="none")
    clear = (ref_f < 0.99 * ref_b) & (ref_b > 1e-3)
    assert clear.sum() > 10
    assert np.all(f[clear] < b[clear])


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.25, 1.0, 2.5])
def test_beta_times_smooth_l1_is_huber(backend, dtype, rng, beta, reduction, sw_kind):
    x, t = make_regression(rng, (6, 4), dtype)
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    s_loss, s_grad, s_hess = all_three(
        fastloss.SmoothL1(beta=beta, reduction=reduction, backend=backend), x, t, sw)
    h_loss, h_grad, h_hess = all_three(
        fastloss.Huber(delta=beta, reduction=reduction, backend=backend), x, t, sw)
    tol = tight(dtype)
    assert_allclose(beta * s_loss.astype(np.float64), h_loss, **tol)
    assert_allclose(beta * s_grad.astype(np.float64), h_grad, **tol)
    assert_allclose(beta * s_hess.astype(np.float64), h_hess, **tol)


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_with_huge_delta_is_half_mse(backend, dtype, rng, reduction, sw_kind):
    x, t = make_regression(rng, (6, 4), dtype)
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    h = all_three(fastloss.Huber(delta=1e6, reduction=reduction, backend=backend), x, t, sw)
    m = all_three(fastloss.MSE(reduction=reduction, backend=backend), x, t, sw)
    for a, b in zip(h, m):
        assert_allclose(a, 0.5 * b, **tight(dtype))


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pinball_median_is_half_l1(backend, dtype, rng, reduction, sw_kind):
    """q = 0.5: half the absolute error; gradients agree off equality (at equality pinball's
    is 1 - q = 0.5 and L1's is 0); both Hessians are 0."""
    x, t = make_pinball(rng, (12, 3), dtype)
    t_full = np.broadcast_to(t[:, None], x.shape).copy()
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    p_loss, p_grad, p_hess = all_three(
        fastloss.Pinball(quantile=np.full(3, 0.5), reduction=reduction, backend=backend),
        x, t, sw)
    l_loss, l_grad, l_hess = all_three(
        fastloss.L1(reduction=reduction, backend=backend), x, t_full, sw)
    tol = tight(dtype)
    assert_allclose(p_loss, 0.5 * l_loss, **tol)
    equal = x == t_full
    assert equal.any() and not equal.all()
    assert_allclose(p_grad[~equal], 0.5 * l_grad[~equal], **tol)
    w = np.ones(x.shape) if sw is None else expand_sample_weight(sw, x.shape)
    scale = 1 / w.sum() if reduction == "mean" else 1.0
    assert_allclose(p_grad[equal], 0.5 * (w * scale)[equal], **tol)
    assert_array_equal(l_grad[equal], 0)
    assert_array_equal(p_hess, 0)
    assert_array_equal(l_hess, 0)


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smooth_l1_with_beta_zero_is_l1(backend, dtype, rng, reduction, sw_kind):
    x, t = make_regression(rng, (6, 4), dtype)
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    s = all_three(fastloss.SmoothL1(beta=0.0, reduction=reduction, backend=backend), x, t, sw)
    l1 = all_three(fastloss.L1(reduction=reduction, backend=backend), x, t, sw)
    for a, b in zip(s, l1):
        assert_array_equal(a, b)
    assert_array_equal(s[1][x == t], 0)  # L1's gradient at equality is 0


@pytest.mark.parametrize("sw_kind", SW_KINDS, ids=SW_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_piecewise_hessians_are_exact(backend, dtype, rng, reduction, sw_kind):
    """Huber: 1 inside |x - t| < delta, 0 outside; smooth L1: 1/beta inside; MSE: 2;
    L1 and pinball: 0 - exactly (times the sample weight and the mean's 1/D)."""
    x, t = make_regression(rng, (6, 4), dtype)
    sw = make_sample_weight(rng, sw_kind, x.shape, dtype)
    w = np.ones(x.shape, dtype) if sw is None else \
        np.broadcast_to(expand_sample_weight(sw, x.shape), x.shape).astype(dtype)
    scale = dtype(1 / w.astype(np.float64).sum()) if reduction == "mean" else dtype(1)
    d = np.abs(x.astype(np.float64) - t)
    for delta in (0.5, 1.0, 2.0):
        inside = d < delta
        assert inside.any() and not inside.all()
        _, hess = fastloss.Huber(delta=delta, reduction=reduction, backend=backend).grad_hess(
            x, t, sample_weight=sw)
        assert_array_equal(hess, np.where(inside, w * scale, 0).astype(dtype))
    _, hess = fastloss.SmoothL1(beta=0.5, reduction=reduction, backend=backend).grad_hess(
        x, t, sample_weight=sw)
    assert_array_equal(hess, np.where(d < 0.5, w * dtype(2) * scale, 0).astype(dtype))
    _, hess = fastloss.MSE(reduction=reduction, backend=backend).grad_hess(x, t, sample_weight=sw)
    assert_array_equal(hess, (w * dtype(2) * scale).astype(dtype))
    for obj in (fastloss.L1(reduction=reduction, backend=backend),
                fastloss.SmoothL1(beta=0.0, reduction=reduction, backend=backend)):
        assert_array_equal(obj.grad_hess(x, t, sample_weight=sw)[1], 0)
    xp, tp = make_pinball(rng, (6, 4), dtype)
    for q in (np.full(4, 0.2), np.array([0.1, 0.3, 0.5, 0.9])):
        _, hess = fastloss.Pinball(quantile=q, reduction=reduction, backend=backend).grad_hess(
            xp, tp, sample_weight=sw)
        assert_array_equal(hess, np.zeros(xp.shape, dtype))
    sw_1d = sw if sw is None or sw.ndim == 1 else sw[:, 0].copy()  # (N,) input: (N,) weights
    _, hess = fastloss.Pinball(quantile=0.2, reduction=reduction, backend=backend).grad_hess(
        xp[:, 0].copy(), tp, sample_weight=sw_1d)
    assert_array_equal(hess, np.zeros(xp.shape[:1], dtype))


# --------------------------------------------------------------------------- BCE stability
def bce_derivatives(x, t, pos_weight=1.0, dtype=LD):
    """BCE gradient and Hessian from the textbook formulas, in ``dtype``:
    g = (1 - t) s(x) - pw t s(-x), h = (1 - t + pw t) s(x) s(-x)."""
    x = np.asarray(x, dtype)
    t = np.asarray(t, dtype)
    pw = np.broadcast_to(np.asarray(pos_weight, dtype), x.shape)
    g = np.empty(x.shape, dtype)
    h = np.empty(x.shape, dtype)
    for i in np.ndindex(*x.shape):
        s, s_neg = ref.sigmoid(x[i]), ref.sigmoid(-x[i])
        g[i] = (1 - t[i]) * s - pw[i] * t[i] * s_neg
        h[i] = (1 - t[i] + pw[i] * t[i]) * s * s_neg
    return g, h


@pytest.mark.parametrize("pos_weight", [None, 3.0, 0.25], ids=["", "pw3", "pw0.25"])
def test_bce_extreme_logits_finite_and_accurate(backend, dtype, pos_weight):
    """Logits of +-1e4 (float32) and +-1e30 (float64): finite, and equal to the longdouble
    softplus form (the exact values: a loss ~ |x|, a gradient of (1 - t) or -pw t)."""
    big = 1e4 if dtype == np.float32 else 1e30
    xs = [big, -big, 0.5 * big, -0.5 * big, 100.0, -100.0, 0.0]
    ts = [0.0, 1.0, 0.3, 0.75]
    x = np.array([[v] * len(ts) for v in xs], dtype)
    t = np.array([ts] * len(xs), dtype)
    opts = {} if pos_weight is None else {"pos_weight": np.array([pos_weight])}
    obj = fastloss.BCEWithLogits(**opts, reduction="none", backend=backend)
    loss, grad, hess = all_three(obj, x, t)
    for a in (loss, grad, hess):
        assert np.all(np.isfinite(a)), a
    tol = tolerance(dtype)
    expected = ref.binary_cross_entropy_with_logits(x, t, **opts, reduction="none", dtype=LD)
    g, h = bce_derivatives(x, t, 1.0 if pos_weight is None else pos_weight)
    assert_allclose(loss, expected.astype(np.float64), **tol)
    assert_allclose(grad, g.astype(np.float64), **tol)
    assert_allclose(hess, h.astype(np.float64), **tol)
    for reduction in ("sum", "mean"):
        r_loss, r_grad = fastloss.binary_cross_entropy_with_logits(
            x, t, **opts, reduction=reduction, backend=backend)
        assert np.isfinite(r_loss) and np.all(np.isfinite(r_grad))
        assert_allclose(r_loss, ref.binary_cross_entropy_with_logits(
            x, t, **opts, reduction=reduction, dtype=LD), **tol)


@pytest.mark.parametrize("logit", [-120.0, -1e3, -80.0])
def test_bce_pos_weight_with_very_negative_logit(backend, dtype, logit):
    """exp(120) overflows float32: the loss pw t (|x| + log1p(exp(-|x|))) must not go
    through it."""
    x = np.array([logit, logit, logit, 3.0], dtype)
    t = np.array([1.0, 0.5, 0.0, 1.0], dtype)
    for pw in ([3.0], [0.5], [3.0, 2.0, 1.5, 0.7]):
        obj = fastloss.BCEWithLogits(pos_weight=np.array(pw), reduction="none", backend=backend)
        loss, grad, hess = all_three(obj, x, t)
        for a in (loss, grad, hess):
            assert np.all(np.isfinite(a)), a
        tol = tolerance(dtype)
        assert_allclose(loss, ref.binary_cross_entropy_with_logits(
            x, t, pos_weight=np.array(pw), reduction="none", dtype=LD).astype(np.float64), **tol)
        g, h = bce_derivatives(x, t, np.array(pw))
        assert_allclose(grad, g.astype(np.float64), **tol)
        # exp(-120) is below float32's least subnormal: 0 is its correct rounding there
        assert_allclose(hess, h.astype(np.float64), rtol=tol["rtol"],
                        atol=np.finfo(dtype).smallest_subnormal)


def test_bce_hessian_is_exact_in_the_tails(backend, dtype):
    """s(x) s(-x) = e / (1 + e)^2 with e = exp(-|x|): a tiny positive number, not 0 and not
    1 - p rounded; relative 1e-12 (float64) / 1e-5 (float32), for targets 0, 1 and soft."""
    if dtype == np.float64:
        xs, rtol = [30.0, -30.0, 45.0, -45.0, 100.0, -100.0, 700.0, -700.0], 1e-12
    else:
        xs, rtol = [15.0, -15.0, 17.0, -17.0, 40.0, -40.0, 80.0, -80.0], 1e-5
    x = np.repeat(np.array(xs, dtype), 3)
    t = np.tile(np.array([0.0, 1.0, 0.3], dtype), len(xs))
    _, hess = fastloss.BCEWithLogits(reduction="none", backend=backend).grad_hess(x, t)
    e = np.exp(-np.abs(x.astype(LD)))
    expected = (e / (1 + e) ** 2).astype(np.float64)
    assert np.all(expected > np.finfo(dtype).tiny)  # every one is a normal number
    assert np.all(hess > 0), hess
    assert_allclose(hess, expected, rtol=rtol, atol=0)


# --------------------------------------------------------------------------- focal stability
@functools.lru_cache(maxsize=None)
def focal_mpmath(x, t, alpha, gamma):
    """(loss, gradient, Hessian) of one focal element at 60 digits.

    L = a ce F, F = q^gamma, q = 1 - p_t = t s(-x) + (1 - t) s(x):
    L' = a (ce' F + ce F'), L'' = a (ce'' F + 2 ce' F' + ce F''), with
    ce' = (1 - t) s(x) - t s(-x), ce'' = s(x) s(-x), q' = (1 - 2t) s(x) s(-x),
    q'' = q' (s(-x) - s(x)), F' = gamma u F, F'' = F (gamma (q''/q - u^2) + gamma^2 u^2),
    u = q'/q; every term without cancellation (s(x) - t is written as ce')."""
    with mpmath.workdps(60):
        return _focal_mpmath(mpmath, x, t, alpha, gamma)


def _focal_mpmath(mp, x, t, alpha, gamma):
    x, t, g = mp.mpf(x), mp.mpf(t), mp.mpf(gamma)
    s, s_neg = 1 / (1 + mp.exp(-x)), 1 / (1 + mp.exp(x))
    ce = t * mp.log1p(mp.exp(-x)) + (1 - t) * mp.log1p(mp.exp(x))
    ce1 = (1 - t) * s - t * s_neg
    ce2 = s * s_neg
    q = t * s_neg + (1 - t) * s
    q1 = (1 - 2 * t) * s * s_neg
    q2 = q1 * (s_neg - s)
    f = q**g if gamma != 0 else mp.mpf(1)
    u = q1 / q
    f1 = g * u * f
    f2 = f * (g * (q2 / q - u * u) + g * g * u * u)
    a = alpha * t + (1 - alpha) * (1 - t) if alpha >= 0 else mp.mpf(1)
    return (float(a * ce * f), float(a * (ce1 * f + ce * f1)),
            float(a * (ce2 * f + 2 * ce1 * f1 + ce * f2)))


def test_focal_mpmath_reference_is_its_own_derivative():
    """The closed-form derivatives of the mpmath reference against mpmath's own numerical
    differentiation (the reference of the tests below must not share a derivation error)."""
    for x, t, gamma in [(-30.0, 0.0, 3.5), (5.0, 0.25, 0.3), (-8.0, 0.75, 2.0),
                        (100.0, 1.0, 0.5), (1.0, 1.0, 0.0), (0.5, 0.6, 1.0)]:
        a = 0.25 * t + 0.75 * (1 - t)

        def loss(z, t=mpmath.mpf(t), gamma=gamma, a=a):
            q = t / (1 + mpmath.exp(z)) + (1 - t) / (1 + mpmath.exp(-z))
            ce = t * mpmath.log1p(mpmath.exp(-z)) + (1 - t) * mpmath.log1p(mpmath.exp(z))
            return a * ce * q**gamma

        with mpmath.workdps(60):
            numeric = [float(mpmath.diff(loss, mpmath.mpf(x), n)) for n in range(3)]
        assert_allclose(focal_mpmath(x, t, 0.25, gamma), numeric, rtol=1e-13)


FOCAL_TAIL_LOGITS = {
    np.float64: [-100.0, -60.0, -36.0, -30.0, -20.0, -8.0, -1.0, 0.0, 1.0, 8.0, 20.0, 30.0,
                 36.0, 60.0, 100.0],
    np.float32: [-20.0, -15.0, -12.0, -10.0, -8.0, -1.0, 0.0, 1.0, 8.0, 10.0, 12.0, 15.0, 20.0],
}


# hard, soft, and soft within 2^-20 of a hard target (1 - p_t = (c e + 1 - c) / (1 + e) with
# 1 - c = 2^-20: no cancellation may turn 1 - c into a rounding error)
FOCAL_TAIL_TARGETS = [0.0, 1.0, 0.25, 0.75, 2.0**-20, 1 - 2.0**-20]


@pytest.mark.parametrize("alpha", [0.25, -1.0], ids=["a0.25", "noalpha"])
@pytest.mark.parametrize("target", FOCAL_TAIL_TARGETS,
                         ids=["0", "1", "0.25", "0.75", "2^-20", "1-2^-20"])
@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
def test_focal_tails_against_mpmath(backend, dtype, gamma, target, alpha):
    """Loss, gradient and Hessian finite and accurate out to +-100 (float64) / +-20 (float32)
    for every gamma (0 < gamma < 1 included), hard and soft targets, against 60-digit mpmath.

    The bound is 8 eps (1 + gamma |x|): q^gamma = exp(gamma log q) with log q ~ -|x| carries
    an absolute error of ~ eps gamma |x| in its exponent in any working-precision evaluation;
    nothing else may cost more than a few ulps. (Values below the smallest normal number are
    held to an absolute ulp of the subnormals.)"""
    xs = np.array(FOCAL_TAIL_LOGITS[dtype], dtype)
    t = np.full(xs.shape, target, dtype)
    obj = fastloss.SigmoidFocal(alpha=alpha, gamma=gamma, reduction="none", backend=backend)
    loss, grad, hess = all_three(obj, xs, t)
    expected = np.array([focal_mpmath(float(v), target, alpha, gamma) for v in xs])
    eps = np.finfo(dtype).eps
    rtol = 8 * eps * (1 + gamma * np.abs(xs.astype(np.float64)))
    atol = 4 * np.finfo(dtype).smallest_subnormal
    for k, (got, what) in enumerate([(loss, "loss"), (grad, "gradient"), (hess, "Hessian")]):
        assert np.all(np.isfinite(got)), (what, got)
        err = np.abs(got.astype(np.float64) - expected[:, k])
        bad = err > rtol * np.abs(expected[:, k]) + atol
        assert not bad.any(), (
            f"{what}: x={xs[bad]}, got={got[bad]}, expected={expected[bad, k]}, "
            f"relative error={err[bad] / np.abs(expected[bad, k])}, allowed={rtol[bad]}")


@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
def test_focal_extreme_logits_are_finite(backend, dtype, gamma):
    big = 1e4 if dtype == np.float32 else 1e30
    xs = [big, -big, 1e3, -1e3, 0.5 * big, -0.5 * big]
    ts = [0.0, 1.0, 0.25, 0.75, 0.5]
    x = np.array([[v] * len(ts) for v in xs], dtype)
    t = np.array([ts] * len(xs), dtype)
    for alpha in (0.25, -1.0):
        obj = fastloss.SigmoidFocal(alpha=alpha, gamma=gamma, reduction="none", backend=backend)
        loss, grad, hess = all_three(obj, x, t)
        for a in (loss, grad, hess):
            assert np.all(np.isfinite(a)), a
        expected = np.array([[focal_mpmath(float(v), float(u), alpha, gamma)
                              for v, u in zip(row_x, row_t)] for row_x, row_t in zip(x, t)])
        tol = tolerance(dtype)
        assert_allclose(loss, expected[..., 0], **tol)
        assert_allclose(grad, expected[..., 1], **tol)
        assert_allclose(hess, expected[..., 2], **tol)
        for reduction in ("sum", "mean"):
            r_loss, r_grad = fastloss.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma,
                                                         reduction=reduction, backend=backend)
            assert np.isfinite(r_loss) and np.all(np.isfinite(r_grad))


# --------------------------------------------------------------------------- non-finite inputs
# (id, loss, options, whether the gradient of a NaN element is NaN: PyTorch's L1 gradient
# there is sign(nan) = 0, and the library follows PyTorch for L1 and smooth L1 with beta = 0)
NAN_VARIANTS = [
    ("bce", "bce", {}, True), ("bce-pw", "bce", {"pos_weight": np.array([2.0])}, True),
    ("focal", "focal", {}, True), ("focal-g0.5", "focal", {"gamma": 0.5, "alpha": -1.0}, True),
    ("huber", "huber", {}, True), ("smooth_l1", "smooth_l1", {}, True),
    ("smooth_l1-b0", "smooth_l1", {"beta": 0.0}, False), ("mse", "mse", {}, True),
    ("l1", "l1", {}, False), ("pinball", "pinball", {"quantile": 0.3}, True),
]


@pytest.mark.parametrize("where", ["input", "target"])
@pytest.mark.parametrize("vid, name, opts, grad_is_nan", NAN_VARIANTS,
                         ids=[v[0] for v in NAN_VARIANTS])
def test_nan_propagates_to_its_element_only(backend, dtype, rng, vid, name, opts, grad_is_nan,
                                            where):
    """NaN in -> NaN loss for that element, NaN gradient (as PyTorch: 0 for L1, whose
    torch gradient is sign(nan) = 0); every other element untouched."""
    cls = LOSSES[name][0]
    if name == "pinball":
        x, t = make_pinball(rng, (8,), dtype)
    else:
        x, t = make_data(name, rng, (2, 4), dtype)
    bad = (1,) if name == "pinball" else (1, 2)
    x_nan, t_nan = x.copy(), t.copy()
    (x_nan if where == "input" else t_nan)[bad] = np.nan
    obj = cls(**opts, reduction="none", backend=backend)
    loss, grad = obj.loss_grad(x_nan, t_nan)
    clean_loss, clean_grad = obj.loss_grad(x, t)
    others = np.ones(x.shape, bool)
    others[bad] = False
    assert np.isnan(loss[bad])
    assert_array_equal(loss[others], clean_loss[others])
    assert_array_equal(grad[others], clean_grad[others])
    if grad_is_nan:
        assert np.isnan(grad[bad]), grad[bad]
    else:
        assert grad[bad] == 0
    if name in ("bce", "focal"):
        assert np.isnan(obj.grad_hess(x_nan, t_nan)[1][bad])
    mean_obj = cls(**opts, reduction="mean", backend=backend)
    m_loss, m_grad = mean_obj.loss_grad(x_nan, t_nan)
    assert np.isnan(m_loss)
    assert_array_equal(m_grad[others], mean_obj.loss_grad(x, t)[1][others])


# --------------------------------------------------------------------------- bad options
def _data_for(name, dtype=np.float64, shape=(6, 4)):
    rng = np.random.default_rng(7)
    if name == "pinball":
        return make_pinball(rng, shape[:1], dtype)
    return make_data(name, rng, shape, dtype)


BAD_SCALAR_OPTIONS = [
    ("huber", "delta", [0.0, -1.0, -1e-12, float("nan"), float("-inf")]),
    ("smooth_l1", "beta", [-0.5, -1e-12, float("nan"), float("-inf")]),
    ("focal", "gamma", [-0.5, -1e-12, float("nan"), float("-inf")]),
    ("pinball", "quantile", [0.0, 1.0, 1.5, -0.1, float("nan"),
                             np.array([0.1, 1.0]), np.array([0.0, 0.5]), np.array([-0.1, 0.5])]),
]
GOOD_SCALAR_OPTIONS = [
    ("huber", "delta", [1e-9, 1e9]),
    ("smooth_l1", "beta", [0.0, 1e-9, 1e9]),
    ("focal", "gamma", [0.0, 1e-9, 10.0]),
    ("pinball", "quantile", [1e-6, 1 - 1e-6]),
]


@pytest.mark.parametrize("name, option, values", BAD_SCALAR_OPTIONS,
                         ids=[f"{n}-{o}" for n, o, _ in BAD_SCALAR_OPTIONS])
def test_option_out_of_range_is_a_value_error(backend, name, option, values):
    cls, func, _, _ = LOSSES[name]
    for dtype in (np.float32, np.float64):
        x, t = _data_for(name, dtype)
        if name == "pinball":
            x = np.stack([x, x], axis=1)  # (N, 2): also valid for the 2-quantile values
        for bad in values:
            out = np.full(x.shape, 7.0, dtype)
            with pytest.raises(ValueError, match=option):
                cls(**{option: bad}, backend=backend).loss_grad(x, t, out=out)
            with pytest.raises(ValueError, match=option):
                func(x, t, **{option: bad}, out=out, backend=backend)
            assert np.all(out == 7.0)


@pytest.mark.parametrize("name, option, values", GOOD_SCALAR_OPTIONS,
                         ids=[f"{n}-{o}" for n, o, _ in GOOD_SCALAR_OPTIONS])
def test_option_at_the_boundary_is_accepted(backend, name, option, values):
    cls = LOSSES[name][0]
    x, t = _data_for(name)
    for good in values:
        loss, grad, hess = all_three(cls(**{option: good}, backend=backend), x, t)
        assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))


@pytest.mark.parametrize("n_quantiles, n_columns", [(2, 3), (4, 3), (3, None), (2, 1)],
                         ids=["2-for-3", "4-for-3", "3-for-N", "2-for-N1"])
def test_pinball_quantile_vector_must_match_the_columns(backend, n_quantiles, n_columns):
    rng = np.random.default_rng(3)
    shape = (5,) if n_columns is None else (5, n_columns)
    x, t = make_pinball(rng, shape, np.float64)
    q = np.linspace(0.1, 0.9, n_quantiles)
    out = np.full(shape, 7.0)
    with pytest.raises(ValueError, match="quantile"):
        fastloss.Pinball(quantile=q, backend=backend).loss_grad(x, t, out=out)
    with pytest.raises(ValueError, match="quantile"):
        fastloss.pinball_loss(x, t, quantile=q, backend=backend)
    with pytest.raises(ValueError, match="quantile"):
        fastloss.Pinball(quantile=q, backend=backend).grad_hess(x, t)
    assert np.all(out == 7.0)


def test_pinball_quantile_of_two_dimensions_is_a_value_error(backend):
    x, t = make_pinball(np.random.default_rng(3), (5, 2), np.float64)
    with pytest.raises(ValueError, match="quantile"):
        fastloss.pinball_loss(x, t, quantile=np.array([[0.1, 0.9]]), backend=backend)


@pytest.mark.parametrize("option, shape", [
    ("weight", (5,)), ("weight", (6,)), ("weight", (4, 4)), ("weight", (7, 1)),
    ("weight", (2, 6, 4)), ("pos_weight", (5,)), ("pos_weight", (6,)), ("pos_weight", (3, 4)),
    ("pos_weight", (6, 4, 1)),
])
def test_bce_weight_that_does_not_broadcast(backend, option, shape):
    """Input (6, 4): weight / pos_weight of a shape that does not broadcast to it is a
    ValueError naming the option; nothing is written to out=."""
    x, t = _data_for("bce")
    w = np.ones(shape)
    out = np.full(x.shape, 7.0)
    pattern = rf"^{option}"
    with pytest.raises(ValueError, match=pattern):
        fastloss.BCEWithLogits(**{option: w}, backend=backend).loss_grad(x, t, out=out)
    with pytest.raises(ValueError, match=pattern):
        fastloss.binary_cross_entropy_with_logits(x, t, **{option: w}, backend=backend)
    with pytest.raises(ValueError, match=pattern):
        fastloss.BCEWithLogits(**{option: w}, backend=backend).grad_hess(x, t)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("option, shape", [
    ("weight", (4,)), ("weight", (6, 1)), ("weight", (1, 4)), ("weight", ()),
    ("pos_weight", (4,)), ("pos_weight", (1,)), ("pos_weight", (6, 4)),
])
def test_bce_weight_that_broadcasts(backend, option, shape):
    x, t = _data_for("bce")
    w = np.random.default_rng(5).uniform(0.5, 2.0, shape)
    loss, grad = fastloss.binary_cross_entropy_with_logits(x, t, **{option: w}, backend=backend)
    full = np.ascontiguousarray(np.broadcast_to(w, x.shape))
    loss_full, grad_full = fastloss.binary_cross_entropy_with_logits(
        x, t, **{option: full}, backend=backend)
    assert_array_equal(loss, loss_full)
    assert_array_equal(grad, grad_full)

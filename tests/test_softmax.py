"""Cross-entropy and softmax focal loss: values, gradients, Hessians, identities, edge cases.

Expected values come from three independent sources:
- ``reference.py``: the formulas in plain NumPy float64 / longdouble, loops over samples;
- PyTorch float64 autograd (gradient, and the Hessian diagonal by double backward);
- central finite differences (``numdiff.py``) of the reference loss.
Every test runs on both backends (``backend=``) and, unless it is about one
precision, on float32 and float64 inputs.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

import fastloss
import numdiff
import reference as ref
from reference import REDUCTIONS, tolerance

LD = np.longdouble
SHAPES = [(5,), (16, 5), (3, 4, 5)]  # one sample (0-d batch), (N, C), (A, B, C)
SHAPE_IDS = ["C", "NC", "ABC"]
GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.5]
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 1.5, 0.25])


# --------------------------------------------------------------------------- helpers
def tight(dtype):
    """For two computations by the library of the same quantity (a few ulps)."""
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps)


def make_logits(rng, shape, dtype, scale=2.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def make_targets(rng, shape, dtype, kind, ignore):
    """Targets for logits of ``shape`` and the ignore_index that goes with them.

    kind "hard": int labels; ignore "none": nothing ignored; "default": every
    third sample (from the second) is -100; "in_range": ignore_index=2, a valid
    class, and every fourth sample has label 2.
    kind "soft": probabilities of the input's shape (ignore_index must not apply).
    """
    n_classes, batch = shape[-1], shape[:-1]
    ignore_index = 2 if ignore == "in_range" else -100
    if kind == "soft":
        t = rng.dirichlet(np.ones(n_classes), size=int(np.prod(batch, dtype=int)))
        return t.reshape(shape).astype(dtype), ignore_index
    if ignore == "in_range":
        y = rng.choice([c for c in range(n_classes) if c != 2], size=batch)
    else:
        y = rng.integers(0, n_classes, size=batch)
    y = np.array(y, dtype=np.int64)
    if ignore == "default":
        y.reshape(-1)[1::3] = -100
    elif ignore == "in_range":
        y.reshape(-1)[1::4] = 2
    return y, ignore_index


def make_sample_weight(rng, batch, dtype):
    return rng.uniform(0.2, 2.0, size=batch).astype(dtype)


def check_loss_type(loss, reduction, batch, dtype):
    if reduction == "none":
        assert isinstance(loss, np.ndarray)
        assert loss.shape == batch
        assert loss.dtype == dtype
    else:
        assert isinstance(loss, np.floating)
        assert loss.dtype == dtype


def _torch_layout(a):
    """(..., C) -> torch's (N, C, d1, ...): move the class axis to position 1."""
    return a if a.ndim <= 1 else torch.movedim(a, -1, 1)


def _mean_denominator(t, shape, weight, ignore_index, sample_weight):
    """D of INTERFACE.md: sum of sample_weight * weight[target] over the samples that count."""
    sw = np.ones(shape[:-1]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if np.shape(t) == shape:  # probability targets: sum of sample weights
        return sw.sum()
    w = np.ones(shape[-1]) if weight is None else np.asarray(weight, np.float64)
    y = np.asarray(t)
    keep = y != ignore_index
    return (sw[keep] * w[y[keep]]).sum()


def _torch_results(per_sample, reduction, xt, sample_weight, denominator, hess):
    """Apply sample_weight and the reduction, then autograd (and double backward)."""
    if sample_weight is not None:
        per_sample = per_sample * torch.tensor(np.asarray(sample_weight, np.float64))
    if reduction == "none":
        loss = per_sample
    elif reduction == "sum":
        loss = per_sample.sum()
    else:
        loss = per_sample.sum() / denominator
    (grad,) = torch.autograd.grad(loss.sum(), xt, create_graph=hess)
    h = None
    if hess:
        h = torch.zeros_like(xt)
        for j in range(xt.shape[-1]):
            (gj,) = torch.autograd.grad(grad[..., j].sum(), xt, retain_graph=True)
            h[..., j] = gj[..., j]
        h = h.detach().numpy()
    return loss.detach().numpy(), grad.detach().numpy(), h


def torch_cross_entropy(x, t, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                        reduction="mean", sample_weight=None, hess=False):
    """torch.nn.functional.cross_entropy in float64 on the class-last layout."""
    x = np.asarray(x, np.float64)
    xt = torch.tensor(x, requires_grad=True)
    soft = np.shape(t) == x.shape
    if soft:
        target = _torch_layout(torch.tensor(np.asarray(t, np.float64)))
        # ignore_index does not apply to probabilities (torch refuses a non-default one).
        ignore_index = -100
    else:
        target = torch.tensor(np.asarray(t, np.int64))
    w = None if weight is None else torch.tensor(np.asarray(weight, np.float64))
    if sample_weight is None:
        # torch's own reduction, untouched.
        loss = F.cross_entropy(_torch_layout(xt), target, weight=w, ignore_index=ignore_index,
                               label_smoothing=label_smoothing, reduction=reduction)
        return _torch_results(loss, "none", xt, None, None, hess)
    per_sample = F.cross_entropy(_torch_layout(xt), target, weight=w, ignore_index=ignore_index,
                                 label_smoothing=label_smoothing, reduction="none")
    denominator = _mean_denominator(t, x.shape, weight, ignore_index, sample_weight)
    return _torch_results(per_sample, reduction, xt, sample_weight, denominator, hess)


def torch_softmax_focal(x, y, *, gamma, weight=None, ignore_index=-100, reduction="mean",
                        sample_weight=None, hess=False):
    """-w[y] (1 - p_y)^gamma log p_y written with torch ops, autograd for the derivatives."""
    x = np.asarray(x, np.float64)
    xt = torch.tensor(x, requires_grad=True)
    y = torch.tensor(np.asarray(y, np.int64))
    keep = y != ignore_index
    yc = torch.where(keep, y, torch.zeros_like(y))
    logp = F.log_softmax(xt, dim=-1)
    logp_y = logp.gather(-1, yc.unsqueeze(-1)).squeeze(-1)
    one_minus_p = -torch.expm1(logp_y)
    if gamma == 0:
        factor = torch.ones_like(logp_y)
    else:  # u**gamma with the derivative's 0 * inf at u == 0 (p_y == 1 exactly) masked out
        positive = one_minus_p > 0
        safe = torch.where(positive, one_minus_p, torch.ones_like(one_minus_p))
        factor = torch.where(positive, safe**gamma, torch.zeros_like(one_minus_p))
    w = torch.ones(x.shape[-1], dtype=torch.float64) if weight is None else torch.tensor(
        np.asarray(weight, np.float64))
    per_sample = torch.where(keep, -w[yc] * factor * logp_y, torch.zeros_like(logp_y))
    denominator = _mean_denominator(np.asarray(y), x.shape, weight, ignore_index, sample_weight)
    return _torch_results(per_sample, reduction, xt, sample_weight, denominator, hess)


def rowwise_close(actual, expected, rtol):
    """|actual - expected| <= rtol * max |expected| of the same row, row by row:
    a relative check that still means something where a row's values are tiny."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert np.all(np.isfinite(actual)), actual
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    err = np.abs(actual - expected)
    bad = err > rtol * scale
    assert not bad.any(), (
        f"rows {np.nonzero(bad.any(axis=-1))[0]}: max relative-to-row error "
        f"{(err / np.where(scale > 0, scale, 1)).max():.3g} > {rtol}\nactual={actual}\nexpected={expected}"
    )


CE_TARGETS = [("hard", "none"), ("hard", "default"), ("hard", "in_range"),
              ("soft", "none"), ("soft", "in_range")]
CE_TARGET_IDS = ["labels", "labels-ignored", "labels-ignore-in-range", "probs", "probs-ignore-index"]


# --------------------------------------------------------------------------- cross-entropy values
@pytest.mark.parametrize("sample_weighted", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15], ids=["", "smooth"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weight"])
@pytest.mark.parametrize("kind, ignore", CE_TARGETS, ids=CE_TARGET_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_against_reference_and_torch(backend, dtype, rng, shape, kind, ignore,
                                                   weighted, label_smoothing, reduction,
                                                   sample_weighted):
    x = make_logits(rng, shape, dtype)
    t, ignore_index = make_targets(rng, shape, dtype, kind, ignore)
    weight = CLASS_WEIGHT if weighted else None
    sw = make_sample_weight(rng, shape[:-1], dtype) if sample_weighted else None
    opts = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                reduction=reduction)

    loss, grad = fastloss.cross_entropy(x, t, **opts, sample_weight=sw, backend=backend)

    check_loss_type(loss, reduction, shape[:-1], dtype)
    assert grad.shape == shape and grad.dtype == dtype
    tol = tolerance(dtype)
    expected = ref.cross_entropy(x, t, **opts, sample_weight=sw)
    assert_allclose(loss, expected, **tol)
    t_loss, t_grad, _ = torch_cross_entropy(x, t, **opts, sample_weight=sw)
    assert_allclose(loss, t_loss, **tol)
    assert_allclose(grad, t_grad, **tol)


@pytest.mark.parametrize("sample_weighted", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15], ids=["", "smooth"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weight"])
@pytest.mark.parametrize("kind, ignore", CE_TARGETS, ids=CE_TARGET_IDS)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=SHAPE_IDS[1:])
def test_cross_entropy_hessian_against_torch(backend, dtype, rng, shape, kind, ignore, weighted,
                                             label_smoothing, reduction, sample_weighted):
    x = make_logits(rng, shape, dtype)
    t, ignore_index = make_targets(rng, shape, dtype, kind, ignore)
    weight = CLASS_WEIGHT if weighted else None
    sw = make_sample_weight(rng, shape[:-1], dtype) if sample_weighted else None
    opts = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                reduction=reduction)

    grad, hess = fastloss.CrossEntropy(**opts, backend=backend).grad_hess(x, t, sample_weight=sw)

    assert grad.shape == hess.shape == shape
    assert grad.dtype == hess.dtype == dtype
    _, t_grad, t_hess = torch_cross_entropy(x, t, **opts, sample_weight=sw, hess=True)
    tol = tolerance(dtype)
    assert_allclose(grad, t_grad, **tol)
    assert_allclose(hess, t_hess, **tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind, ignore", CE_TARGETS, ids=CE_TARGET_IDS)
def test_cross_entropy_derivatives_against_finite_differences(backend, rng, kind, ignore,
                                                              reduction):
    """Gradient vs differences of the longdouble reference; Hessian diagonal vs
    differences of the library's own gradient and second differences of the reference."""
    shape = (6, 5)
    x = make_logits(rng, shape, np.float64)
    t, ignore_index = make_targets(rng, shape, np.float64, kind, ignore)
    sw = make_sample_weight(rng, shape[:-1], np.float64)
    opts = dict(weight=CLASS_WEIGHT, ignore_index=ignore_index, label_smoothing=0.1)
    ce = fastloss.CrossEntropy(**opts, reduction=reduction, backend=backend)
    loss, grad = ce.loss_grad(x, t, sample_weight=sw)
    grad2, hess = ce.grad_hess(x, t, sample_weight=sw)

    def ref_loss(z):
        return ref.cross_entropy(z, t, **opts, reduction=reduction, sample_weight=sw, dtype=LD)

    if reduction == "none":
        g_fd = numdiff.gradient_rowwise(ref_loss, x.astype(LD))
        h_fd = numdiff.hessian_diagonal_rowwise(ref_loss, x.astype(LD), h=2e-3)
    else:
        g_fd = numdiff.gradient(ref_loss, x.astype(LD))
        h_fd = numdiff.hessian_diagonal(ref_loss, x.astype(LD), h=2e-3)
    assert_allclose(grad, g_fd.astype(np.float64), rtol=1e-9, atol=1e-12)
    assert_allclose(hess, h_fd.astype(np.float64), rtol=1e-7, atol=1e-10)
    h_from_grad = numdiff.hessian_diagonal_from_gradient(
        lambda z: ce.loss_grad(z, t, sample_weight=sw)[1], x)
    assert_allclose(hess, h_from_grad, rtol=1e-8, atol=1e-11)
    assert_allclose(grad2, grad, **tight(np.float64))


def test_cross_entropy_hessian_closed_form(backend, dtype, rng):
    """Hard labels, class weights, no smoothing: H_nj = w[y_n] p_nj (1 - p_nj) / D."""
    x = make_logits(rng, (20, 5), dtype)
    y = rng.integers(0, 5, 20)
    grad, hess = fastloss.CrossEntropy(weight=CLASS_WEIGHT, backend=backend).grad_hess(x, y)
    x64 = x.astype(np.float64)
    p = np.exp(x64 - x64.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    wy = CLASS_WEIGHT[y][:, None]
    d = CLASS_WEIGHT[y].sum()
    tol = tolerance(dtype)
    assert_allclose(hess, wy * p * (1 - p) / d, **tol)
    assert_allclose(grad, wy * (p - np.eye(5)[y]) / d, **tol)


# --------------------------------------------------------------------------- softmax focal
FOCAL_VARIANTS = ["plain", "weighted-ignored-sw"]


def _focal_case(rng, shape, dtype, variant):
    x = make_logits(rng, shape, dtype)
    if variant == "plain":
        y, _ = make_targets(rng, shape, dtype, "hard", "none")
        return x, y, dict(weight=None, ignore_index=-100), None
    y, ignore_index = make_targets(rng, shape, dtype, "hard", "default")
    sw = make_sample_weight(rng, shape[:-1], dtype)
    return x, y, dict(weight=CLASS_WEIGHT, ignore_index=ignore_index), sw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", FOCAL_VARIANTS)
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_softmax_focal_against_reference_and_torch(backend, dtype, rng, shape, gamma, variant,
                                                   reduction):
    x, y, opts, sw = _focal_case(rng, shape, dtype, variant)
    loss, grad = fastloss.softmax_focal_loss(x, y, gamma=gamma, **opts, reduction=reduction,
                                             sample_weight=sw, backend=backend)
    check_loss_type(loss, reduction, shape[:-1], dtype)
    assert grad.shape == shape and grad.dtype == dtype
    tol = tolerance(dtype)
    expected = ref.softmax_focal_loss(x, y, gamma, **opts, reduction=reduction, sample_weight=sw)
    assert_allclose(loss, expected, **tol)
    t_loss, t_grad, _ = torch_softmax_focal(x, y, gamma=gamma, **opts, reduction=reduction,
                                            sample_weight=sw)
    assert_allclose(loss, t_loss, **tol)
    assert_allclose(grad, t_grad, **tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", FOCAL_VARIANTS)
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=SHAPE_IDS[1:])
def test_softmax_focal_hessian_against_torch(backend, dtype, rng, shape, gamma, variant,
                                             reduction):
    x, y, opts, sw = _focal_case(rng, shape, dtype, variant)
    grad, hess = fastloss.SoftmaxFocal(gamma=gamma, **opts, reduction=reduction,
                                       backend=backend).grad_hess(x, y, sample_weight=sw)
    assert grad.shape == hess.shape == shape and hess.dtype == dtype
    _, t_grad, t_hess = torch_softmax_focal(x, y, gamma=gamma, **opts, reduction=reduction,
                                            sample_weight=sw, hess=True)
    tol = tolerance(dtype)
    assert_allclose(grad, t_grad, **tol)
    assert_allclose(hess, t_hess, **tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", FOCAL_VARIANTS)
def test_softmax_focal_gamma_zero_is_cross_entropy(backend, dtype, rng, variant, reduction):
    x, y, opts, sw = _focal_case(rng, (3, 4, 5), dtype, variant)
    focal = fastloss.SoftmaxFocal(gamma=0.0, **opts, reduction=reduction, backend=backend)
    ce = fastloss.CrossEntropy(**opts, reduction=reduction, backend=backend)
    f_loss, f_grad = focal.loss_grad(x, y, sample_weight=sw)
    c_loss, c_grad = ce.loss_grad(x, y, sample_weight=sw)
    f_hess = focal.grad_hess(x, y, sample_weight=sw)[1]
    c_hess = ce.grad_hess(x, y, sample_weight=sw)[1]
    tol = tolerance(dtype)
    assert_allclose(f_loss, c_loss, **tol)
    assert_allclose(f_grad, c_grad, **tol)
    assert_allclose(f_hess, c_hess, **tol)


def _margin_rows(rng, margins, n_classes=4):
    """One row per margin: the labelled class beats every other logit by ``margin``,
    so 1 - p_y ~ (C-1) exp(-margin); plus three rows of random moderate logits."""
    rows, labels = [], []
    for _ in range(3):
        rows.append(2 * rng.standard_normal(n_classes))
        labels.append(int(rng.integers(n_classes)))
    for margin in margins:
        row = 0.5 * rng.standard_normal(n_classes)
        k = int(rng.integers(n_classes))
        row[k] = np.max(np.delete(row, k)) + margin
        rows.append(row)
        labels.append(k)
    return np.array(rows), np.array(labels)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_derivatives_against_finite_differences(backend, rng, gamma):
    """Gradient and Hessian diagonal, per row, relative to the row's largest entry,
    including rows with p_y -> 1 (1 - p_y from ~1e-1 down to ~3e-13), where
    (1 - p_y)^(gamma - 1) is singular for gamma < 1 unless 1 - p_y is computed accurately."""
    x, y = _margin_rows(rng, [0.0, 2.0, 6.0, 12.0, 20.0, 30.0])
    weight = np.array([0.5, 2.0, 1.0, 1.5])
    focal = fastloss.SoftmaxFocal(gamma=gamma, weight=weight, reduction="none", backend=backend)
    loss, grad = focal.loss_grad(x, y)
    grad2, hess = focal.grad_hess(x, y)

    def ref_rows(z):
        return ref.softmax_focal_loss(z, y, gamma, weight=weight, reduction="none", dtype=LD)

    expected_loss = ref_rows(x.astype(LD)).astype(np.float64)
    assert_allclose(loss, expected_loss, rtol=1e-9, atol=0)
    rowwise_close(grad, numdiff.gradient_rowwise(ref_rows, x.astype(LD)), rtol=1e-7)
    rowwise_close(hess, numdiff.hessian_diagonal_rowwise(ref_rows, x.astype(LD), h=2e-3),
                  rtol=1e-6)
    rowwise_close(hess, numdiff.hessian_diagonal_from_gradient(
        lambda z: focal.loss_grad(z, y)[1], x), rtol=1e-6)
    assert_allclose(grad2, grad, **tight(np.float64))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_mean_gradient_against_finite_differences(backend, rng, gamma):
    x, y = _margin_rows(rng, [3.0, 9.0])
    y[1] = -100  # ignored
    sw = rng.uniform(0.5, 2.0, y.shape)
    focal = fastloss.SoftmaxFocal(gamma=gamma, reduction="mean", backend=backend)
    loss, grad = focal.loss_grad(x, y, sample_weight=sw)

    def ref_mean(z):
        return ref.softmax_focal_loss(z, y, gamma, sample_weight=sw, dtype=LD)

    assert_allclose(loss, float(ref_mean(x.astype(LD))), rtol=1e-12)
    assert_allclose(grad, numdiff.gradient(ref_mean, x.astype(LD)).astype(np.float64),
                    rtol=1e-8, atol=1e-12)
    assert np.all(grad[1] == 0)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_certain_rows_are_finite(backend, dtype, gamma):
    """p_y == 1 to working precision (margins far beyond any rounding): loss, gradient
    and Hessian are finite and ~0, for gamma < 1 too (no 0 * inf)."""
    big = 1e4 if dtype == np.float32 else 1e30
    margins = [40.0, 200.0, 1e3, big]
    x = np.zeros((len(margins), 3), dtype)
    x[:, 1] = margins
    y = np.ones(len(margins), dtype=np.int64)
    focal = fastloss.SoftmaxFocal(gamma=gamma, reduction="none", backend=backend)
    loss, grad = focal.loss_grad(x, y)
    grad2, hess = focal.grad_hess(x, y)
    for a in (loss, grad, grad2, hess):
        assert np.all(np.isfinite(a)), a
    expected = ref.softmax_focal_loss(x, y, gamma, reduction="none", dtype=LD)
    assert_allclose(loss, expected.astype(np.float64), rtol=1e-5, atol=1e-30)
    assert np.abs(grad).max() < 1e-15 and np.abs(hess).max() < 1e-15


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_two_class_cross_entropy_is_binary_cross_entropy(backend, dtype, rng, kind):
    """CE over logits (a, b) = BCE on the logit difference z = b - a; d/db = sigmoid(z) - y,
    d/da = -(sigmoid(z) - y), both Hessian entries sigmoid(z) (1 - sigmoid(z))."""
    x = make_logits(rng, (40, 2), dtype, scale=4.0)
    if kind == "labels":
        y = rng.integers(0, 2, 40)
        t, y01 = y, y.astype(np.float64)
    else:
        y01 = rng.uniform(0, 1, 40).astype(dtype).astype(np.float64)
        t = np.stack([1 - y01, y01], axis=1).astype(dtype)
    ce = fastloss.CrossEntropy(reduction="none", backend=backend)
    loss, grad = ce.loss_grad(x, t)
    _, hess = ce.grad_hess(x, t)
    z = x[:, 1].astype(np.float64) - x[:, 0].astype(np.float64)
    sig = np.exp(-ref.binary_cross_entropy_on_margin(z, 1.0))  # sigmoid(z) = exp(-softplus(-z))
    tol = tolerance(dtype)
    assert_allclose(loss, ref.binary_cross_entropy_on_margin(z, y01), **tol)
    assert_allclose(grad[:, 1], sig - y01, **tol)
    assert_allclose(grad[:, 0], -(sig - y01), **tol)
    assert_allclose(hess[:, 0], sig * (1 - sig), **tol)
    assert_allclose(hess[:, 1], sig * (1 - sig), **tol)


def _all_methods(loss_obj, x, t, sw=None):
    loss, grad = loss_obj.loss_grad(x, t, sample_weight=sw)
    _, hess = loss_obj.grad_hess(x, t, sample_weight=sw)
    return loss, grad, hess


# name -> (class, function, options, target kind): the option sets the identity tests run on.
LOSSES = {
    "ce-labels": (fastloss.CrossEntropy, fastloss.cross_entropy,
                  dict(weight=CLASS_WEIGHT, label_smoothing=0.1), "hard"),
    "ce-probs": (fastloss.CrossEntropy, fastloss.cross_entropy,
                 dict(weight=CLASS_WEIGHT, label_smoothing=0.1), "soft"),
    "focal-0.5": (fastloss.SoftmaxFocal, fastloss.softmax_focal_loss,
                  dict(gamma=0.5, weight=CLASS_WEIGHT), "hard"),
    "focal-2": (fastloss.SoftmaxFocal, fastloss.softmax_focal_loss, dict(gamma=2.0), "hard"),
}


def make_loss(name, **kw):
    cls, _, opts, _ = LOSSES[name]
    return cls(**opts, **kw)


def target_kind(name):
    return LOSSES[name][3]


def _quantized_logits(rng, shape, dtype):
    """Logits on a 1/64 grid in (-8, 8): adding a power of two (or 1e7 in float64)
    is exact, so shifted inputs describe exactly the same softmax."""
    return np.clip(np.round(64 * 2 * rng.standard_normal(shape)) / 64, -7.875, 7.875).astype(dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_shift_invariance(backend, dtype, rng, name, reduction):
    kind = target_kind(name)
    shape = (12, 5)
    x = _quantized_logits(rng, shape, dtype)
    t, _ = make_targets(rng, shape, dtype, kind, "none")
    shift = rng.choice([-16.0, -2.0, 0.5, 4.0, 16.0], size=(12, 1)).astype(dtype)
    loss_obj = make_loss(name, reduction=reduction, backend=backend)
    base = _all_methods(loss_obj, x, t)
    shifted = _all_methods(loss_obj, x + shift, t)
    tol = tolerance(dtype)
    for a, b in zip(shifted, base):
        assert_allclose(a, b, **tol)


@pytest.mark.parametrize("name", list(LOSSES))
def test_shift_by_1e7_float64(backend, rng, name):
    kind = target_kind(name)
    shape = (12, 5)
    x = _quantized_logits(rng, shape, np.float64)
    t, _ = make_targets(rng, shape, np.float64, kind, "none")
    loss_obj = make_loss(name, reduction="none", backend=backend)
    base = _all_methods(loss_obj, x, t)
    shifted = _all_methods(loss_obj, x + 1e7, t)
    # API.md: the absolute bound scales with the inputs' magnitude.
    for a, b in zip(shifted, base):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14 * 1e7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_sample_weight_of_ones_is_none(backend, dtype, rng, name, reduction):
    kind = target_kind(name)
    shape = (3, 4, 5)
    x = make_logits(rng, shape, dtype)
    t, _ = make_targets(rng, shape, dtype, kind, "default")
    loss_obj = make_loss(name, reduction=reduction, backend=backend)
    with_none = _all_methods(loss_obj, x, t)
    with_ones = _all_methods(loss_obj, x, t, np.ones(shape[:-1], dtype))
    for a, b in zip(with_ones, with_none):
        assert_allclose(a, b, **tight(dtype))


@pytest.mark.parametrize("name", list(LOSSES))
def test_sample_weight_multiplies(backend, dtype, rng, name):
    """Under "none", losses, gradients and Hessians are multiplied by sample_weight
    (negative and zero weights included); "sum" is the sum of those."""
    kind = target_kind(name)
    shape = (3, 4, 5)
    x = make_logits(rng, shape, dtype)
    t, _ = make_targets(rng, shape, dtype, kind, "default")
    sw = rng.uniform(-1.0, 2.0, shape[:-1]).astype(dtype)
    sw[0, 0] = 0.0
    plain = _all_methods(make_loss(name, reduction="none", backend=backend), x, t)
    weighted = _all_methods(make_loss(name, reduction="none", backend=backend), x, t, sw)
    tol = tolerance(dtype)
    assert_allclose(weighted[0], sw * plain[0], **tol)
    assert_allclose(weighted[1], sw[..., None] * plain[1], **tol)
    assert_allclose(weighted[2], sw[..., None] * plain[2], **tol)
    total, grad_sum = make_loss(name, reduction="sum", backend=backend).loss_grad(x, t, sample_weight=sw)
    assert_allclose(total, np.sum(sw.astype(np.float64) * plain[0]), **tol)
    assert_allclose(grad_sum, weighted[1], **tol)


@pytest.mark.parametrize("name", list(LOSSES))
def test_sample_weights_summing_to_zero_give_zero_mean(backend, dtype, rng, name):
    kind = target_kind(name)
    shape = (4, 5)
    x = make_logits(rng, shape, dtype)
    t, _ = make_targets(rng, shape, dtype, kind, "none")
    if kind == "hard":
        t = np.array([0, 0, 2, 2])  # weight[0] = 0.5 for both CE and focal's weights
    sw = np.array([1.0, -1.0, 0.0, 0.0], dtype)
    loss, grad = make_loss(name, reduction="mean", backend=backend).loss_grad(x, t, sample_weight=sw)
    assert loss == 0.0 and loss.dtype == dtype
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_methods_and_forms_agree(backend, dtype, rng, name, reduction):
    """loss() == loss_grad()[0]; grad_hess()[0] == loss_grad()[1]; __call__ is loss_grad;
    the function form equals the class form."""
    kind = target_kind(name)
    shape = (3, 4, 5)
    x = make_logits(rng, shape, dtype)
    t, _ = make_targets(rng, shape, dtype, kind, "default")
    sw = make_sample_weight(rng, shape[:-1], dtype)
    obj = make_loss(name, reduction=reduction, backend=backend)
    loss, grad = obj.loss_grad(x, t, sample_weight=sw)
    tol = tight(dtype)
    only = obj.loss(x, t, sample_weight=sw)
    assert type(only) is type(loss)
    assert_allclose(only, loss, **tol)
    g2, _ = obj.grad_hess(x, t, sample_weight=sw)
    assert_allclose(g2, grad, **tol)
    c_loss, c_grad = obj(x, t, sample_weight=sw)
    assert_array_equal(c_loss, loss)
    assert_array_equal(c_grad, grad)

    _, func, opts, _ = LOSSES[name]
    f_loss, f_grad = func(x, t, **opts, reduction=reduction, sample_weight=sw, backend=backend)
    assert_array_equal(f_loss, loss)
    assert_array_equal(f_grad, grad)


# --------------------------------------------------------------------------- numerical stability
def _extreme_logits(dtype):
    """Rows at the edge of the promise: |logits| up to 1e4 (float32) / 1e30 (float64)."""
    big = dtype(1e4) if dtype == np.float32 else dtype(1e30)
    rows = [
        [big, -big, 0.5 * big, -0.25 * big, 0.0],
        [big] * 5,  # all equal: p = 1/C
        [-big] * 5,
        [big, big, -big, -big, -big],  # a tie at the top: p = (1/2, 1/2, 0, 0, 0)
        [-big, -big, -big, -big, big],
        [-big, 0.0, 1.0, -1.0, 2.0],
    ]
    if dtype == np.float32:  # moderate differences at a large magnitude
        rows.append([big + 0.5, big, big + 1.0, big - 1.5, big + 2.0])
    return np.array(rows, dtype=dtype)


@pytest.mark.parametrize("case", ["ce-labels", "ce-labels-smooth-weight", "ce-probs", "focal-0.5", "focal-2"])
def test_extreme_logits_finite_and_accurate(backend, dtype, case):
    x = _extreme_logits(dtype)
    n = x.shape[0]
    y = np.array([0, 1, 2, 3, 0, 4, 1][:n])  # on the max, on ties, on -big
    if case == "ce-probs":
        t = np.tile(np.array([0.1, 0.2, 0.3, 0.25, 0.15], dtype), (n, 1))
        obj = fastloss.CrossEntropy(reduction="none", backend=backend)
        expected = ref.cross_entropy(x, t, reduction="none", dtype=LD)
    elif case.startswith("ce"):
        t = y
        opts = dict(weight=CLASS_WEIGHT, label_smoothing=0.2) if "smooth" in case else {}
        obj = fastloss.CrossEntropy(**opts, reduction="none", backend=backend)
        expected = ref.cross_entropy(x, t, **opts, reduction="none", dtype=LD)
    else:
        t = y
        gamma = float(case.split("-")[1])
        obj = fastloss.SoftmaxFocal(gamma=gamma, reduction="none", backend=backend)
        expected = ref.softmax_focal_loss(x, t, gamma, reduction="none", dtype=LD)
    loss, grad = obj.loss_grad(x, t)
    grad2, hess = obj.grad_hess(x, t)
    for a in (loss, grad, grad2, hess):
        assert np.all(np.isfinite(a)), a
    tol = tolerance(dtype)
    assert_allclose(loss, expected.astype(np.float64), **tol)
    # Gradient and Hessian against torch's float64 autograd (softmax of such rows is exact
    # enough in float64: the differences between logits are what matters).
    if case.startswith("ce"):
        kw = dict(weight=CLASS_WEIGHT, label_smoothing=0.2) if "smooth" in case else {}
        _, t_grad, t_hess = torch_cross_entropy(x, t, **kw, reduction="none", hess=True)
    else:
        _, t_grad, t_hess = torch_softmax_focal(x, t, gamma=gamma, reduction="none", hess=True)
    assert_allclose(grad, t_grad, **tol)
    assert_allclose(hess, t_hess, **tol)


def test_huge_equal_logits_give_log_c(backend, dtype):
    big = 1e4 if dtype == np.float32 else 1e30
    for sign in (1, -1):
        x = np.full((6, 7), sign * big, dtype)
        y = np.arange(6)
        loss, grad = fastloss.cross_entropy(x, y, backend=backend)
        tol = tolerance(dtype)
        assert_allclose(loss, np.log(7.0), **tol)
        assert_allclose(grad, (1 / 7 - np.eye(7)[y]) / 6, **tol)
        f_loss, _ = fastloss.softmax_focal_loss(x, y, gamma=2.0, backend=backend)
        assert_allclose(f_loss, (6 / 7) ** 2 * np.log(7.0), **tol)


@pytest.mark.parametrize("name", ["ce-labels", "focal-0.5", "focal-2"])
def test_all_ignored_batch(backend, dtype, rng, name):
    x = make_logits(rng, (4, 3, 5), dtype)
    y = np.full((4, 3), -100)
    for reduction in ("mean", "sum"):
        obj = make_loss(name, reduction=reduction, backend=backend)
        loss, grad = obj.loss_grad(x, y)
        _, hess = obj.grad_hess(x, y)
        assert loss == 0.0 and loss.dtype == dtype
        assert_array_equal(grad, np.zeros_like(x))
        assert_array_equal(hess, np.zeros_like(x))
        assert obj.loss(x, y) == 0.0
    loss, grad = make_loss(name, reduction="none", backend=backend).loss_grad(x, y)
    assert_array_equal(loss, np.zeros((4, 3), dtype))
    assert_array_equal(grad, np.zeros_like(x))


def test_zero_class_weights_give_zero_mean(backend, dtype, rng):
    x = make_logits(rng, (6, 5), dtype)
    y = np.array([1, 1, 3, 3, 1, 3])
    w = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    for func in (fastloss.cross_entropy, fastloss.softmax_focal_loss):
        loss, grad = func(x, y, weight=w, backend=backend)
        assert loss == 0.0
        assert_array_equal(grad, np.zeros_like(x))


@pytest.mark.parametrize("shape", [(0, 5), (3, 0, 5)], ids=["0xC", "3x0xC"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_empty_batch(backend, dtype, shape, name):
    kind = target_kind(name)
    x = np.zeros(shape, dtype)
    t = np.zeros(shape, dtype) if kind == "soft" else np.zeros(shape[:-1], np.int64)
    for reduction in ("mean", "sum"):
        obj = make_loss(name, reduction=reduction, backend=backend)
        loss, grad = obj.loss_grad(x, t)
        _, hess = obj.grad_hess(x, t)
        assert loss == 0.0 and loss.dtype == dtype and isinstance(loss, np.floating)
        assert grad.shape == shape and grad.dtype == dtype
        assert hess.shape == shape
    loss, grad = make_loss(name, reduction="none", backend=backend).loss_grad(x, t)
    assert loss.shape == shape[:-1] and loss.dtype == dtype
    assert grad.shape == shape


def test_single_class(backend, dtype, rng):
    """C == 1: p = 1, every loss and derivative is 0 (label smoothing included, up to
    the rounding of (1 - eps) + eps)."""
    x = make_logits(rng, (5, 1), dtype)
    y = np.zeros(5, dtype=np.int64)
    tol = tolerance(dtype)
    for obj in (fastloss.CrossEntropy(label_smoothing=0.3, backend=backend),
                fastloss.CrossEntropy(label_smoothing=0.3, backend=backend, reduction="none"),
                fastloss.SoftmaxFocal(gamma=0.5, backend=backend)):
        loss, grad = obj.loss_grad(x, y)
        _, hess = obj.grad_hess(x, y)
        assert_allclose(loss, 0.0, atol=tol["atol"])
        assert_allclose(grad, np.zeros_like(x), atol=tol["atol"])
        assert_allclose(hess, np.zeros_like(x), atol=tol["atol"])


@pytest.mark.parametrize("name", list(LOSSES))
def test_nan_propagates_to_its_sample_only(backend, dtype, rng, name):
    kind = target_kind(name)
    x = make_logits(rng, (6, 5), dtype)
    t, _ = make_targets(rng, (6, 5), dtype, kind, "none")
    x_nan = x.copy()
    x_nan[2, 3] = np.nan
    obj = make_loss(name, reduction="none", backend=backend)
    loss, grad = obj.loss_grad(x_nan, t)
    clean_loss, clean_grad = obj.loss_grad(x, t)
    assert np.isnan(loss[2])
    assert np.isnan(grad[2]).any()
    rows = [0, 1, 3, 4, 5]
    assert_array_equal(loss[rows], clean_loss[rows])
    assert_array_equal(grad[rows], clean_grad[rows])
    assert np.isnan(make_loss(name, reduction="mean", backend=backend).loss(x_nan, t))


def test_float32_matches_float64_reference(backend, rng):
    """float32 in, float32 out, within rtol=1e-5, atol=1e-6 of the float64 reference
    computed from the same (float32) values; float64 within 1e-12 / 1e-14."""
    shape = (64, 10)
    for dtype in (np.float32, np.float64):
        x = make_logits(rng, shape, dtype)
        y = rng.integers(0, 10, 64)
        loss, grad = fastloss.cross_entropy(x, y, label_smoothing=0.05, backend=backend)
        assert loss.dtype == dtype and grad.dtype == dtype
        assert_allclose(loss, ref.cross_entropy(x, y, label_smoothing=0.05), **tolerance(dtype))
        _, t_grad, _ = torch_cross_entropy(x, y, label_smoothing=0.05)
        assert_allclose(grad, t_grad, **tolerance(dtype))
        f_loss, f_grad = fastloss.softmax_focal_loss(x, y, gamma=2.0, backend=backend)
        assert_allclose(f_loss, ref.softmax_focal_loss(x, y, 2.0), **tolerance(dtype))
        _, t_grad, _ = torch_softmax_focal(x, y, gamma=2.0)
        assert_allclose(f_grad, t_grad, **tolerance(dtype))


# --------------------------------------------------------------------------- in place, every row length
@pytest.mark.parametrize("func", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("n_classes", [2, 3, 5, 8, 17, 40, 100])
def test_in_place_gives_the_bits_of_a_fresh_gradient(backend, dtype, rng, func, n_classes):
    """out=logits computes the very bits of a fresh call, at every row length, the
    label anywhere in the row. (Numba's focal kernel once swept a row in two
    slices around the label; in place, LLVM's overlap test sent them to a scalar
    loop that summed in another order: off by an ulp from C = 5 on.)"""
    x = (3 * rng.standard_normal((64, n_classes))).astype(dtype)
    y = rng.integers(0, n_classes, 64)
    loss, grad = getattr(fastloss, func)(x, y, backend=backend)
    buf = x.copy()
    loss_in_place, grad_in_place = getattr(fastloss, func)(buf, y, out=buf, backend=backend)
    assert grad_in_place is buf
    assert_array_equal(grad_in_place, grad)
    assert loss_in_place == loss

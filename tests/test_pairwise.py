"""Pairwise losses: triplet margin, margin ranking, contrastive.

Expected values come from independent sources:
- PyTorch float64 autograd (``F.triplet_margin_loss``, ``F.margin_ranking_loss``) for the
  loss and every input's gradient, every option, reduction and ``sample_weight``;
- NumPy references written here from the formulas, one row at a time (contrastive; the
  triplet loss at extreme magnitudes, where PyTorch's float64 norm overflows);
- central finite differences (``numdiff.py``) of those references in longdouble.
Every test runs on both backends (``backend=``) and, unless it is about one precision, on
float32 and float64. The modules are imported directly so that these tests run before the
public names are exported.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

import fastloss
import numdiff
from fastloss._losses.pairwise import (
    Contrastive,
    MarginRanking,
    TripletMargin,
    contrastive_loss,
    margin_ranking_loss,
    triplet_margin_loss,
)
from reference import REDUCTIONS, tolerance

LD = np.longdouble


@pytest.fixture(autouse=True)
def _one_thread():
    """Small inputs run on one thread anyway; thread invariance has its own test."""
    with fastloss.num_threads(1):
        yield


def tight(dtype):
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps)


def reduce(per, sw, reduction):
    """API.md: "none" per sample (times sw), "sum", "mean" = sum / sum(sw) (N without sw)."""
    w = np.ones(len(per), per.dtype) if sw is None else np.asarray(sw, per.dtype)
    per = per * w
    if reduction == "none":
        return per
    total = per.sum()
    if reduction == "sum":
        return total
    d = w.sum()
    return total / d if d != 0 else total * 0


# --------------------------------------------------------------------------- references
def ref_pnorm(v, p):
    """||v||_p of one row, in v's dtype, with the max factored out (no overflow)."""
    a = np.abs(v)
    if p == 0:
        return v.dtype.type(np.count_nonzero(v))
    m = a.max() if a.size else v.dtype.type(0)
    if p == np.inf or m == 0:
        return m
    return m * np.sum((a / m) ** p) ** (1 / v.dtype.type(p))


def ref_triplet(a, p, n, margin=1.0, pnorm=2.0, eps=1e-6, swap=False, reduction="mean",
                sample_weight=None, dtype=np.float64):
    """max(0, margin + ||a - p + eps||_p - d_neg), d_neg = ||a - n + eps||_p (swap: the
    smaller of that and ||p - n + eps||_p), row by row."""
    a, p, n = (np.asarray(x, dtype) for x in (a, p, n))
    e = dtype(eps)
    per = np.empty(len(a), dtype)
    for i in range(len(a)):
        d_ap = ref_pnorm(a[i] - p[i] + e, pnorm)
        d_neg = ref_pnorm(a[i] - n[i] + e, pnorm)
        if swap:
            d_neg = min(d_neg, ref_pnorm(p[i] - n[i] + e, pnorm))
        per[i] = max(dtype(0), dtype(margin) + d_ap - d_neg)
    return reduce(per, sample_weight, reduction)


def ref_contrastive(x1, x2, y, margin=1.0, reduction="mean", sample_weight=None,
                    dtype=np.float64):
    """Hadsell et al.: 1/2 y d^2 + 1/2 (1 - y) max(0, margin - d)^2, d = ||x1 - x2||_2."""
    x1, x2 = np.asarray(x1, dtype), np.asarray(x2, dtype)
    y = np.asarray(y, dtype)
    per = np.empty(len(x1), dtype)
    for i in range(len(x1)):
        d = ref_pnorm(x1[i] - x2[i], 2)
        hinge = max(dtype(0), dtype(margin) - d)
        per[i] = y[i] * d * d / 2 + (1 - y[i]) * hinge * hinge / 2
    return reduce(per, sample_weight, reduction)


def ref_ranking(x1, x2, y, margin=0.0, reduction="mean", sample_weight=None, dtype=np.float64):
    x1, x2, y = (np.asarray(v, dtype) for v in (x1, x2, y))
    per = np.maximum(0, -y * (x1 - x2) + dtype(margin))
    return reduce(per, sample_weight, reduction)


def _t(a, grad=True):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def torch_weighted(per, sw, reduction):
    if sw is not None:
        per = per * torch.tensor(np.asarray(sw, np.float64))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / (float(np.sum(sw, dtype=np.float64)) if sw is not None else len(per))


def torch_triplet(a, p, n, opts, reduction, sw=None):
    """(loss, grads) by float64 autograd; with sw, torch's "none" times the weights."""
    ts = [_t(v) for v in (a, p, n)]
    if sw is None:
        loss = F.triplet_margin_loss(*ts, **opts, reduction=reduction)
    else:
        loss = torch_weighted(F.triplet_margin_loss(*ts, **opts, reduction="none"), sw,
                              reduction)
    loss.sum().backward()
    return loss.detach().numpy(), tuple(t.grad.numpy() for t in ts)


def torch_ranking(x1, x2, y, margin, reduction, sw=None):
    ts = [_t(v) for v in (x1, x2)]
    yt = _t(y, grad=False)
    if sw is None:
        loss = F.margin_ranking_loss(*ts, yt, margin=margin, reduction=reduction)
    else:
        loss = torch_weighted(F.margin_ranking_loss(*ts, yt, margin=margin, reduction="none"),
                              sw, reduction)
    loss.sum().backward()
    return loss.detach().numpy(), tuple(t.grad.numpy() for t in ts)


def check_loss_type(loss, reduction, n, dtype):
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == (n,) and loss.dtype == dtype
    else:
        assert isinstance(loss, np.floating) and loss.dtype == dtype, type(loss)


def check_grads(grads, shape, dtype, count):
    assert isinstance(grads, tuple) and len(grads) == count
    for g in grads:
        assert isinstance(g, np.ndarray) and g.shape == shape and g.dtype == dtype


# --------------------------------------------------------------------------- data
def triplets(rng, n=9, d=5, dtype=np.float64):
    """Anchor, positive, negative; a few rows with an inactive hinge, most active."""
    a = rng.standard_normal((n, d))
    p = a + 0.6 * rng.standard_normal((n, d))
    q = a + 0.9 * rng.standard_normal((n, d))
    q[::4] += 4.0  # far negatives: inactive rows
    return tuple(v.astype(dtype) for v in (a, p, q))


def weights(rng, n, dtype):
    return rng.uniform(0.2, 2.0, n).astype(dtype)


TRIPLET_VARIANTS = [
    ("default", {}),
    ("margin2", {"margin": 2.0}),
    ("swap", {"swap": True, "margin": 1.5}),
    ("p1", {"p": 1.0, "margin": 2.0}),
    ("p3-eps", {"p": 3.0, "eps": 1e-3}),
    ("p0.5", {"p": 0.5, "margin": 3.0}),
    ("pinf-swap", {"p": float("inf"), "swap": True}),
    ("eps0", {"eps": 0.0}),
]
TRIPLET_IDS = [v[0] for v in TRIPLET_VARIANTS]


# --------------------------------------------------------------------------- triplet
@pytest.mark.parametrize("with_sw", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("vid, opts", TRIPLET_VARIANTS, ids=TRIPLET_IDS)
def test_triplet_against_torch(backend, dtype, rng, vid, opts, reduction, with_sw):
    """Loss and the three gradients against PyTorch float64 autograd; loss against the NumPy
    reference; loss() and the function agree with loss_grad()."""
    a, p, q = triplets(rng, dtype=dtype)
    sw = weights(rng, len(a), dtype) if with_sw else None
    obj = TripletMargin(**opts, reduction=reduction, backend=backend)
    loss, grads = obj.loss_grad(a, p, q, sample_weight=sw)
    check_loss_type(loss, reduction, len(a), dtype)
    check_grads(grads, a.shape, dtype, 3)
    tol = tolerance(dtype)
    t_loss, t_grads = torch_triplet(a, p, q, opts, reduction, sw)
    assert_allclose(loss, t_loss, **tol)
    for g, tg in zip(grads, t_grads):
        assert_allclose(g, tg, **tol)
    ref_opts = dict(opts)
    if "p" in ref_opts:
        ref_opts["pnorm"] = ref_opts.pop("p")
    assert_allclose(loss, ref_triplet(a, p, q, **ref_opts, reduction=reduction,
                                      sample_weight=sw), **tol)
    only = obj.loss(a, p, q, sample_weight=sw)
    assert type(only) is type(loss)
    assert_allclose(only, loss, **tight(dtype))
    f_loss, f_grads = triplet_margin_loss(a, p, q, **opts, reduction=reduction,
                                          sample_weight=sw, backend=backend)
    assert_array_equal(f_loss, loss)
    for g, fg in zip(grads, f_grads):
        assert_array_equal(fg, g)
    c_loss, c_grads = obj(a, p, q, sample_weight=sw)
    assert_array_equal(c_loss, loss)


@pytest.mark.parametrize("vid, opts", TRIPLET_VARIANTS, ids=TRIPLET_IDS)
def test_triplet_gradient_against_finite_differences(backend, rng, vid, opts):
    """Every input's gradient against 4th-order central differences of the longdouble
    reference (rows kept away from the hinge and from v_j = 0)."""
    a, p, q = triplets(rng, n=5, d=4)
    sw = weights(rng, 5, np.float64)
    ref_opts = dict(opts)
    if "p" in ref_opts:
        ref_opts["pnorm"] = ref_opts.pop("p")
    _, grads = TripletMargin(**opts, reduction="sum", backend=backend).loss_grad(
        a, p, q, sample_weight=sw)
    inputs = [a.astype(LD), p.astype(LD), q.astype(LD)]
    for k in range(3):
        def f(x, k=k):
            args = list(inputs)
            args[k] = x
            return ref_triplet(*args, **ref_opts, reduction="sum", sample_weight=sw, dtype=LD)
        expected = numdiff.gradient(f, inputs[k], h=1e-4)
        assert_allclose(grads[k], expected.astype(np.float64), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("eps", [1e-6, 0.0])
def test_triplet_anchor_equal_to_positive(backend, dtype, rng, swap, eps):
    """anchor == positive: a finite gradient (eps makes d > 0; with eps = 0 the norm's
    gradient at 0 is 0, as PyTorch's), equal to PyTorch's, also on the swap tie."""
    a = rng.standard_normal((6, 5)).astype(dtype)
    q = (a + rng.standard_normal((6, 5))).astype(dtype)
    opts = {"swap": swap, "eps": eps, "margin": 5.0}
    loss, grads = triplet_margin_loss(a, a.copy(), q, **opts, reduction="sum", backend=backend)
    assert np.isfinite(loss)
    for g in grads:
        assert np.all(np.isfinite(g))
    t_loss, t_grads = torch_triplet(a, a, q, opts, "sum")
    assert_allclose(loss, t_loss, **tolerance(dtype))
    for g, tg in zip(grads, t_grads):
        assert_allclose(g, tg, **tolerance(dtype))


def test_triplet_swap_tie_shares_the_gradient(backend):
    """d(a, n) == d(p, n) with swap: each distance gets half the gradient (torch.min)."""
    a = np.array([[0.0, 0.0]])
    p = np.array([[2.0, 0.0]])
    q = np.array([[1.0, 3.0]])
    loss, (ga, gp, gq) = triplet_margin_loss(a, p, q, swap=True, eps=0.0, margin=5.0,
                                             reduction="sum", backend=backend)
    u_ap = (a - p) / 2.0
    u_an = (a - q) / np.sqrt(10.0)
    u_pn = (p - q) / np.sqrt(10.0)
    assert_allclose(loss, 5.0 + 2.0 - np.sqrt(10.0), rtol=1e-15)
    assert_allclose(ga, u_ap - 0.5 * u_an, rtol=1e-15, atol=1e-16)
    assert_allclose(gp, -u_ap - 0.5 * u_pn, rtol=1e-15, atol=1e-16)
    assert_allclose(gq, 0.5 * u_an + 0.5 * u_pn, rtol=1e-15, atol=1e-16)


def test_triplet_hinge_at_exactly_zero_passes_the_gradient(backend):
    """margin + d_ap - d_an == 0: PyTorch's clamp_min passes the gradient there; so do we."""
    a, p, q = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]])
    loss, (ga, gp, gq) = triplet_margin_loss(a, p, q, margin=5.0, eps=0.0, backend=backend)
    t_loss, (ta, tp, tq) = torch_triplet(a, p, q, {"margin": 5.0, "eps": 0.0}, "mean")
    assert loss == 0.0 == t_loss
    assert_allclose(gp, [[0.6, 0.8]], rtol=1e-15)
    for g, tg in ((ga, ta), (gp, tp), (gq, tq)):
        assert_allclose(g, tg, rtol=1e-15, atol=1e-16)


def test_triplet_p_zero_counts_and_has_no_gradient(backend, dtype):
    a = np.array([[1.0, 2.0, 3.0]], dtype)
    p = np.array([[1.0, 0.0, 3.0]], dtype)
    q = np.array([[0.0, 0.0, 0.0]], dtype)
    loss, grads = triplet_margin_loss(a, p, q, p=0.0, eps=0.0, margin=3.0, backend=backend)
    assert loss == 1.0  # 3 + 1 nonzero - 3 nonzero
    for g in grads:
        assert_array_equal(g, 0)


@pytest.mark.parametrize("pnorm", [2.0, 1.0, 3.0, float("inf")])
def test_triplet_extreme_magnitudes(backend, dtype, rng, pnorm):
    """Distances right where they are representable: float32 beyond 1e19 (squares overflow
    float32, not the double sums), float64 around 1e200 and 1e-200 (sums of squares overflow
    or vanish; the rows are rescaled). Against the scaled NumPy reference in longdouble."""
    scales = [1e19, 1e-19, 1e30] if dtype == np.float32 else [1e200, 1e-200, 1e150]
    for scale in scales:
        a, p, q = (v * dtype(scale) for v in triplets(rng, n=4, d=6, dtype=dtype))
        margin = float(scale)
        loss, grads = triplet_margin_loss(a, p, q, p=pnorm, eps=0.0, margin=margin,
                                          reduction="none", backend=backend)
        expected = ref_triplet(a, p, q, margin=margin, pnorm=pnorm, eps=0.0, reduction="none",
                               dtype=LD)
        assert np.all(np.isfinite(loss))
        assert_allclose(loss / scale, (expected / LD(scale)).astype(np.float64),
                        rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
        for g in grads:
            assert np.all(np.isfinite(g)) and np.max(np.abs(g)) <= 2 + 1e-6  # |u_ap - u_an| <= 2


def test_triplet_nan_propagates_to_its_row_only(backend, dtype, rng):
    a, p, q = triplets(rng, n=4, dtype=dtype)
    a[1, 2] = np.nan
    loss, grads = triplet_margin_loss(a, p, q, margin=10.0, reduction="none", backend=backend)
    assert np.isnan(loss[1]) and np.all(np.isfinite(loss[[0, 2, 3]]))
    for g in grads:
        assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2, 3]]))


def test_triplet_empty_feature_axis(backend):
    """D = 0: every distance is 0, the loss is the margin, the gradients are empty."""
    z = np.zeros((3, 0))
    loss, grads = triplet_margin_loss(z, z, z, margin=0.5, reduction="none", backend=backend)
    assert_array_equal(loss, [0.5, 0.5, 0.5])
    check_grads(grads, (3, 0), np.float64, 3)


# --------------------------------------------------------------------------- margin ranking
@pytest.mark.parametrize("with_sw", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.3])
def test_margin_ranking_against_torch(backend, dtype, rng, margin, reduction, with_sw):
    n = 17
    x1 = rng.standard_normal(n).astype(dtype)
    x2 = rng.standard_normal(n).astype(dtype)
    x2[::5] = x1[::5]  # ties: the hinge is exactly `margin` there
    y = rng.choice([-1, 1], n)
    sw = weights(rng, n, dtype) if with_sw else None
    obj = MarginRanking(margin=margin, reduction=reduction, backend=backend)
    loss, grads = obj.loss_grad(x1, x2, y, sample_weight=sw)
    check_loss_type(loss, reduction, n, dtype)
    check_grads(grads, (n,), dtype, 2)
    tol = tolerance(dtype)
    t_loss, t_grads = torch_ranking(x1, x2, y, margin, reduction, sw)
    assert_allclose(loss, t_loss, **tol)
    for g, tg in zip(grads, t_grads):
        assert_allclose(g, tg, **tol)
    assert_allclose(loss, ref_ranking(x1, x2, y, margin, reduction, sw), **tol)
    assert_allclose(obj.loss(x1, x2, y, sample_weight=sw), loss, **tight(dtype))
    f_loss, f_grads = margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction,
                                          sample_weight=sw, backend=backend)
    assert_array_equal(f_loss, loss)
    for g, fg in zip(grads, f_grads):
        assert_array_equal(fg, g)


def test_margin_ranking_float_and_bool_like_targets(backend):
    x1, x2 = np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0])
    a = margin_ranking_loss(x1, x2, np.array([1, -1, 1]), backend=backend)
    b = margin_ranking_loss(x1, x2, np.array([1.0, -1.0, 1.0], np.float32), backend=backend)
    assert_array_equal(a[0], b[0])
    for u, v in zip(a[1], b[1]):
        assert_array_equal(u, v)


# --------------------------------------------------------------------------- contrastive
def contrastive_data(rng, n=12, d=4, dtype=np.float64):
    """Pairs at distances on both sides of margin 1, soft and hard labels, one d = 0 pair."""
    x1 = rng.standard_normal((n, d))
    x2 = x1 + rng.uniform(0.1, 0.8, (n, 1)) * rng.standard_normal((n, d))
    x2[1::3] = x1[1::3] + 2.0  # d = 4: the hinge is inactive
    x2[2] = x1[2]  # d = 0
    y = (rng.random(n) > 0.5).astype(np.float64)
    y[::5] = 0.3  # soft
    y[2] = 0.0
    return x1.astype(dtype), x2.astype(dtype), y


@pytest.mark.parametrize("with_sw", [False, True], ids=["", "sw"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 2.5, 0.0])
def test_contrastive_against_reference(backend, dtype, rng, margin, reduction, with_sw):
    """Loss against the NumPy reference; gradients against central differences of it
    (longdouble); g_x2 = -g_x1 exactly."""
    x1, x2, y = contrastive_data(rng, dtype=dtype)
    sw = weights(rng, len(y), dtype) if with_sw else None
    obj = Contrastive(margin=margin, reduction=reduction, backend=backend)
    loss, (g1, g2) = obj.loss_grad(x1, x2, y, sample_weight=sw)
    check_loss_type(loss, reduction, len(y), dtype)
    check_grads((g1, g2), x1.shape, dtype, 2)
    tol = tolerance(dtype)
    assert_allclose(loss, ref_contrastive(x1, x2, y, margin, reduction, sw), **tol)
    assert_array_equal(g2, -g1)
    assert_allclose(obj.loss(x1, x2, y, sample_weight=sw), loss, **tight(dtype))
    X1, X2 = x1.astype(LD), x2.astype(LD)
    red = "sum" if reduction == "none" else reduction
    for k, g in enumerate((g1, g2)):
        def f(x, k=k):
            args = [X1, X2]
            args[k] = x
            return ref_contrastive(*args, y, margin, red, sw, dtype=LD)
        expected = numdiff.gradient(f, (X1, X2)[k], h=1e-4).astype(np.float64)
        assert_allclose(g, expected, **({"rtol": 1e-7, "atol": 1e-9} if dtype == np.float64
                                        else tol))
    f_loss, f_grads = contrastive_loss(x1, x2, y, margin=margin, reduction=reduction,
                                       sample_weight=sw, backend=backend)
    assert_array_equal(f_loss, loss)
    assert_array_equal(f_grads[0], g1)


def test_contrastive_at_zero_distance(backend, dtype):
    """d = 0: loss 1/2 (1 - y) m^2 and a zero gradient (the second term's is 0 there)."""
    x = np.array([[1.0, -2.0], [0.5, 0.5]], dtype)
    loss, (g1, g2) = contrastive_loss(x, x.copy(), np.array([0.0, 1.0]), margin=2.0,
                                      reduction="none", backend=backend)
    assert_array_equal(loss, np.array([2.0, 0.0], dtype))
    assert_array_equal(g1, 0)
    assert_array_equal(g2, 0)


def test_contrastive_similar_pairs_are_half_the_squared_error(backend, dtype, rng):
    """y = 1: the loss is 1/2 ||x1 - x2||^2, i.e. half of mse_loss(reduction="sum")."""
    x1, x2 = (rng.standard_normal((8, 5)).astype(dtype) for _ in range(2))
    loss, (g1, _) = contrastive_loss(x1, x2, np.ones(8), reduction="sum", backend=backend)
    mse, g_mse = fastloss.mse_loss(x1, x2, reduction="sum", backend=backend)
    assert_allclose(loss, mse / 2, **tolerance(dtype))
    assert_allclose(g1, g_mse / 2, **tolerance(dtype))


def test_contrastive_extreme_magnitudes(backend):
    """float64 pairs whose sum of squares overflows (or vanishes) but whose loss does not."""
    x1 = np.array([[1e153, 1e153], [3e-200, 0.0]])
    x2 = np.zeros((2, 2))
    loss, (g1, _) = contrastive_loss(x1, x2, np.array([1.0, 0.0]), margin=1e-199,
                                     reduction="none", backend=backend)
    assert_allclose(loss[0], 1e306, rtol=1e-14)
    assert_allclose(loss[1], 0.5 * (1e-199 - 3e-200) ** 2, rtol=1e-12)
    assert_allclose(g1[0], x1[0], rtol=1e-15)
    assert np.all(np.isfinite(g1))


# --------------------------------------------------------------------------- shared conventions
CASES = {
    "triplet": (TripletMargin, triplet_margin_loss, 3),
    "ranking": (MarginRanking, margin_ranking_loss, 2),
    "contrastive": (Contrastive, contrastive_loss, 2),
}


def make_args(name, rng, dtype=np.float64, n=6):
    if name == "triplet":
        return triplets(rng, n=n, dtype=dtype)
    if name == "ranking":
        x1, x2 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        return x1, x2, rng.choice([-1.0, 1.0], n)
    x1, x2, y = contrastive_data(rng, n=n, dtype=dtype)
    return x1, x2, y


def run(name, args, sw=None, backend=None, reduction="mean", out=None, **opts):
    cls = CASES[name][0]
    return cls(**opts, reduction=reduction, backend=backend).loss_grad(*args, sample_weight=sw,
                                                                      out=out)


def assert_same(a, b):
    assert np.asarray(a[0]).dtype == np.asarray(b[0]).dtype
    assert_array_equal(a[0], b[0])
    for u, v in zip(a[1], b[1]):
        assert u.dtype == v.dtype
        assert_array_equal(u, v)


@pytest.mark.parametrize("name", CASES)
def test_no_grad_hess(name):
    obj = CASES[name][0]()
    assert not hasattr(obj, "grad_hess")
    with pytest.raises(AttributeError, match="grad_hess"):
        obj.grad_hess
    assert repr(obj).startswith(type(obj).__name__ + "(")


@pytest.mark.parametrize("kind", ["int64", "float16", "bool", "mixed"])
@pytest.mark.parametrize("name", CASES)
def test_dtype_rules(name, backend, rng, kind):
    """The first input decides: float32 stays float32, every other real dtype is float64;
    the others follow it."""
    args = make_args(name, rng)
    n_in = CASES[name][2]
    if kind == "mixed":  # float32 first: float32 for everything
        conv = [args[0].astype(np.float32)] + [a for a in args[1:n_in]]
        compute = np.float32
    else:
        conv = [np.round(3 * a).astype(kind) if kind != "bool" else a > 0 for a in args[:n_in]]
        compute = np.float64
    conv = tuple(conv) + tuple(args[n_in:])
    for reduction in REDUCTIONS:
        got = run(name, conv, backend=backend, reduction=reduction)
        assert np.asarray(got[0]).dtype == compute
        check_grads(got[1], np.shape(args[0]), compute, n_in)
        same = tuple(np.asarray(a, compute) for a in conv[:n_in]) + conv[n_in:]
        assert_same(got, run(name, same, backend=backend, reduction=reduction))


@pytest.mark.parametrize("name", CASES)
def test_layouts_and_read_only_inputs(name, backend, dtype, rng):
    args = make_args(name, rng, dtype)
    sw = weights(rng, len(args[0]), dtype)
    expected = run(name, args, sw, backend)

    def strided(a):
        a = np.asarray(a)
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]

    def read_only(a):
        a = np.array(a)
        a.setflags(write=False)
        return a

    for change in (strided, np.asfortranarray, read_only):
        assert_same(run(name, tuple(change(a) for a in args), change(sw), backend), expected)
    broadcast = tuple(np.broadcast_to(np.asarray(a)[:1], np.shape(a)) for a in args)
    assert_same(run(name, broadcast, None, backend),
                run(name, tuple(a.copy() for a in broadcast), None, backend))


@pytest.mark.parametrize("name", CASES)
def test_inputs_are_never_modified(name, backend, dtype, rng):
    args = make_args(name, rng, dtype)
    sw = weights(rng, len(args[0]), dtype)
    copies = [a.copy() for a in args] + [sw.copy()]
    cls, func, _ = CASES[name]
    for reduction in REDUCTIONS:
        obj = cls(reduction=reduction, backend=backend)
        obj.loss(*args, sample_weight=sw)
        obj.loss_grad(*args, sample_weight=sw)
        obj(*args, sample_weight=sw)
        func(*args, reduction=reduction, sample_weight=sw, backend=backend)
    for a, b in zip(list(args) + [sw], copies):
        assert_array_equal(a, b)


@pytest.mark.parametrize("name", CASES)
def test_out_is_filled_and_returned(name, backend, dtype, rng):
    args = make_args(name, rng, dtype)
    n_in = CASES[name][2]
    expected = run(name, args, backend=backend)
    out = tuple(np.full(np.shape(args[0]), 7.0, dtype) for _ in range(n_in))
    for form in ("class", "call", "function"):
        cls, func, _ = CASES[name]
        if form == "class":
            loss, grads = cls(backend=backend).loss_grad(*args, out=out)
        elif form == "call":
            loss, grads = cls(backend=backend)(*args, out=list(out))
        else:
            loss, grads = func(*args, out=out, backend=backend)
        assert all(g is o for g, o in zip(grads, out))
        assert_same((loss, grads), expected)


@pytest.mark.parametrize("order", ["same", "rotated"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", CASES)
def test_out_may_be_the_inputs(name, backend, dtype, rng, reduction, order):
    """out=(the inputs themselves), in their order or rotated: the gradients overwrite them
    with the values of a fresh call."""
    args = make_args(name, rng, dtype)
    n_in = CASES[name][2]
    expected = run(name, args, backend=backend, reduction=reduction)
    bufs = [a.copy() for a in args[:n_in]]
    out = bufs if order == "same" else bufs[1:] + bufs[:1]
    loss, grads = run(name, tuple(bufs) + tuple(args[n_in:]), backend=backend,
                      reduction=reduction, out=tuple(out))
    assert all(g is o for g, o in zip(grads, out))
    assert_same((loss, grads), expected)


@pytest.mark.parametrize("name", CASES)
def test_bad_out_is_a_value_error_and_left_untouched(name, backend, rng):
    args = make_args(name, rng)
    n_in = CASES[name][2]
    shape = np.shape(args[0])

    def fresh():
        return [np.full(shape, 7.0) for _ in range(n_in)]

    bad = {
        "array": np.zeros(shape),
        "short": tuple(fresh()[:-1]),
        "dtype": tuple([np.zeros(shape, np.float32)] + fresh()[1:]),
        "shape": tuple(fresh()[:-1] + [np.zeros((shape[0] + 1,) + shape[1:])]),
        "strided": tuple(fresh()[:-1] + [np.zeros(shape[:-1] + (2 * shape[-1],))[..., ::2]]),
        "same-twice": (lambda b: tuple([b[0]] * n_in))(fresh()),
    }
    big = np.zeros((2 * shape[0],) + shape[1:])
    bad["overlapping"] = tuple([big[:shape[0]], big[1:shape[0] + 1]] + fresh()[2:])
    shifted = np.zeros((shape[0] + 1,) + shape[1:])
    shifted[1:] = args[0]
    shifted_input = shifted[1:]
    bad["input-shifted"] = tuple([shifted[:-1]] + fresh()[1:])
    for which, out in bad.items():
        before = [o.copy() for o in out] if isinstance(out, tuple) else None
        call_args = (shifted_input,) + tuple(args[1:]) if which == "input-shifted" else args
        with pytest.raises(ValueError, match="out"):
            run(name, call_args, backend=backend, out=out)
        if before is not None:
            for o, b in zip(out, before):
                assert_array_equal(o, b)


@pytest.mark.parametrize("name", CASES)
def test_sample_weight_rules(name, backend, dtype, rng):
    """Ones equal None; "none" losses and every gradient scale with the weights (negative
    ones included); weights summing to 0 give 0.0 with "mean"; wrong shapes are errors."""
    args = make_args(name, rng, dtype)
    n = len(args[0])
    for reduction in REDUCTIONS:
        plain = run(name, args, None, backend, reduction)
        ones = run(name, args, np.ones(n, dtype), backend, reduction)
        assert_allclose(ones[0], plain[0], **tight(dtype))
        for u, v in zip(ones[1], plain[1]):
            assert_allclose(u, v, **tight(dtype))
    sw = np.linspace(-1.0, 2.0, n).astype(dtype)
    none_plain = run(name, args, None, backend, "none")
    none_w = run(name, args, sw, backend, "none")
    assert_allclose(none_w[0], none_plain[0] * sw, **tight(dtype))
    for u, v in zip(none_w[1], none_plain[1]):
        assert_allclose(u, v * sw.reshape((n,) + (1,) * (v.ndim - 1)), **tight(dtype))
    zero_sum = np.array([1.0, -1.0] * (n // 2), dtype)
    loss, grads = run(name, args, zero_sum, backend, "mean")
    assert loss == 0.0 and loss.dtype == dtype
    assert all(np.all(np.isfinite(g)) for g in grads)
    for wrong in (np.ones(n + 1), np.ones((n, 1)), np.ones(())):
        with pytest.raises(ValueError, match="sample_weight"):
            run(name, args, wrong, backend)


@pytest.mark.parametrize("name", CASES)
def test_empty_batch(name, backend, dtype):
    shape = (0, 3) if name != "ranking" else (0,)
    args = tuple(np.zeros(shape, dtype) for _ in range(CASES[name][2]))
    if name != "triplet":
        args += (np.zeros(0),)
    for reduction in ("mean", "sum"):
        loss, grads = run(name, args, None, backend, reduction)
        assert loss == 0.0 and loss.dtype == dtype
        check_grads(grads, shape, dtype, CASES[name][2])
    loss, _ = run(name, args, None, backend, "none")
    assert loss.shape == (0,) and loss.dtype == dtype


@pytest.mark.parametrize("name", CASES)
def test_results_do_not_depend_on_the_number_of_threads(name, backend, dtype, rng,
                                                        monkeypatch):
    monkeypatch.setattr(fastloss._backend, "MIN_WORK_PER_THREAD", 1)
    n = 20001 if name == "ranking" else 3001  # ranking: several 4096-element blocks
    args = make_args(name, rng, dtype, n=n)
    sw = weights(rng, n, dtype)
    opts = {"swap": True} if name == "triplet" else {}
    for reduction in REDUCTIONS:
        with fastloss.num_threads(1):
            one = run(name, args, sw, backend, reduction, **opts)
        with fastloss.num_threads(2):
            two = run(name, args, sw, backend, reduction, **opts)
        assert_same(one, two)


@pytest.mark.parametrize("name", CASES)
def test_backends_agree(name, dtype, rng):
    args = make_args(name, rng, dtype, n=40)
    sw = weights(rng, 40, dtype)
    variants = [{}, {"p": 3.0, "swap": True}, {"p": 1.0}] if name == "triplet" else [{}]
    for opts in variants:
        for reduction in REDUCTIONS:
            a = run(name, args, sw, "cython", reduction, **opts)
            b = run(name, args, sw, "numba", reduction, **opts)
            assert_allclose(a[0], b[0], **tolerance(dtype))
            for u, v in zip(a[1], b[1]):
                assert_allclose(u, v, **tolerance(dtype))


# --------------------------------------------------------------------------- validation
def test_validation_names_the_argument(backend, rng):
    a, p, q = triplets(rng, n=4)
    tm = TripletMargin(backend=backend)
    with pytest.raises(ValueError, match="positive"):
        tm.loss_grad(a, p[:3], q)
    with pytest.raises(ValueError, match="negative"):
        tm.loss(a, p, q[:, :2])
    with pytest.raises(ValueError, match=r"anchor: expected shape \(N, D\)"):
        tm.loss_grad(a[0], p[0], q[0])
    with pytest.raises(TypeError, match="anchor"):
        tm.loss_grad(a.astype(complex), p, q)
    with pytest.raises(TypeError, match="negative"):
        tm.loss_grad(a, p, q.astype(str))
    x1, x2 = rng.standard_normal(5), rng.standard_normal(5)
    mr = MarginRanking(backend=backend)
    for value in (0, 2, 0.5, np.nan):
        y = np.array([1.0, -1.0, 1.0, value, value])
        with pytest.raises(ValueError, match="target") as info:
            mr.loss_grad(x1, x2, y)
        assert "(3,)" in str(info.value) and "1 or -1" in str(info.value)
    with pytest.raises(ValueError, match="target"):
        mr.loss(x1, x2, np.ones(4))
    with pytest.raises(ValueError, match="x1"):
        mr.loss(x1.reshape(5, 1), x2.reshape(5, 1), np.ones(5))
    with pytest.raises(ValueError, match="x2"):
        mr.loss(x1, x2[:4], np.ones(5))
    c1, c2, y = contrastive_data(rng, n=5)
    ct = Contrastive(backend=backend)
    for value in (-1, 2, np.nan):
        bad = y.copy()
        bad[4] = value
        with pytest.raises(ValueError, match="target") as info:
            ct.loss_grad(c1, c2, bad)
        assert "(4,)" in str(info.value)
    with pytest.raises(ValueError, match="x2"):
        ct.loss_grad(c1, c2.T, y)


def test_validation_happens_before_anything_is_written(backend, rng):
    a, p, q = triplets(rng, n=4)
    out = tuple(np.full(a.shape, 7.0) for _ in range(3))
    for bad_call in (
        lambda: triplet_margin_loss(a, p, q[:3], out=out, backend=backend),
        lambda: triplet_margin_loss(a, p, q, sample_weight=np.ones(3), out=out, backend=backend),
        lambda: triplet_margin_loss(a, p, q, margin=-1.0, out=out, backend=backend),
    ):
        with pytest.raises(ValueError):
            bad_call()
        for o in out:
            assert np.all(o == 7.0)


@pytest.mark.parametrize("cls, option, bad, good", [
    (TripletMargin, "margin", [0.0, -1.0, np.inf, np.nan], [1e-9, 3.0]),
    (TripletMargin, "p", [-1.0, np.nan], [0.0, 0.5, np.inf]),
    (TripletMargin, "eps", [-1e-6, np.inf], [0.0]),
    (MarginRanking, "margin", [np.inf, np.nan], [-1.0, 0.0]),
    (Contrastive, "margin", [-0.1, np.inf, np.nan], [0.0, 2.0]),
])
def test_options_out_of_range(cls, option, bad, good, backend):
    for value in bad:
        with pytest.raises(ValueError, match=option):
            cls(**{option: value}, backend=backend)
    for value in good:
        cls(**{option: value}, backend=backend)
    with pytest.raises(TypeError, match=option):
        cls(**{option: "1"})
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="avg")
    with pytest.raises(ValueError, match="backend"):
        cls(backend="fortran")


def test_swap_must_be_a_bool():
    with pytest.raises(TypeError, match="swap"):
        TripletMargin(swap=1)
    assert TripletMargin(swap=np.bool_(True)).swap is True

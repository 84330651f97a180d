"""Helpers: class_weight, gradcheck, MultiTask.

Expected values come from independent sources:
- scikit-learn's ``compute_class_weight("balanced")`` for ``class_weight``;
- the NumPy references of ``reference.py`` and the losses' own formulas for ``MultiTask``,
  whose gradients are also checked against central finite differences (``numdiff.py``);
- for ``gradcheck``, every loss in the registry (and the pairwise losses) must pass, and
  losses broken on purpose (a scaled gradient, a wrong Hessian, a wrong loss value, a wrong
  gradient of one input of a pairwise loss) must fail, at the element that is wrong.
The modules are imported directly so that these tests run before the public names exist.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.utils.class_weight import compute_class_weight

import fastloss
import numdiff
import reference as ref
from fastloss._helpers import GradcheckResult, MultiTask, class_weight, gradcheck
from fastloss._losses import pairwise
from fastloss._registry import REGISTRY
from reference import REDUCTIONS


@pytest.fixture(autouse=True)
def _one_thread():
    with fastloss.num_threads(1):
        yield


# --------------------------------------------------------------------------- class_weight
@pytest.mark.parametrize("n_classes", [1, 2, 3, 7])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "sw"])
def test_class_weight_matches_sklearn(rng, n_classes, weighted):
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 40)])
    rng.shuffle(y)
    sw = rng.uniform(0.1, 3.0, y.size) if weighted else None
    expected = compute_class_weight("balanced", classes=np.arange(n_classes), y=y,
                                    sample_weight=sw)
    got = class_weight(y, n_classes, sample_weight=sw)
    assert got.dtype == np.float64 and got.shape == (n_classes,)
    assert_allclose(got, expected, rtol=1e-14)
    assert_allclose(class_weight(y, sample_weight=sw), expected, rtol=1e-14)  # max(y) + 1
    assert_allclose(class_weight(y.astype(np.float32), n_classes, sample_weight=sw), expected,
                    rtol=1e-14)
    assert_allclose(class_weight(y.astype(np.uint8), n_classes, sample_weight=sw), expected,
                    rtol=1e-14)
    # balanced: every class carries the same total weight
    w = np.ones(y.size) if sw is None else sw
    per_class = np.bincount(y, weights=w * got[y], minlength=n_classes)
    assert_allclose(per_class, w.sum() / n_classes, rtol=1e-12)


def test_class_weight_feeds_cross_entropy(rng):
    y = rng.integers(0, 4, 50)
    y[:4] = np.arange(4)
    x = rng.standard_normal((50, 4))
    w = class_weight(y)
    loss, _ = fastloss.cross_entropy(x, y, weight=w)
    assert_allclose(loss, ref.cross_entropy(x, y, weight=w), rtol=1e-12)


def test_class_weight_errors():
    with pytest.raises(ValueError, match="class 1 of") as info:
        class_weight(np.array([0, 2, 2, 0]))
    assert "does not occur" in str(info.value)
    with pytest.raises(ValueError, match="class 3"):
        class_weight(np.array([0, 1, 2]), n_classes=4)
    with pytest.raises(ValueError, match="class 1") as info:
        class_weight(np.array([0, 1, 1]), sample_weight=np.array([1.0, 0.0, 0.0]))
    assert "sum" in str(info.value)
    with pytest.raises(ValueError, match=r"y: label 3 at index \(2,\)"):
        class_weight(np.array([0, 1, 3]), n_classes=3)
    with pytest.raises(ValueError, match=r"y: label -1 at index \(1,\)"):
        class_weight(np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="y: class labels must be integers"):
        class_weight(np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match="y: class labels must be integers"):
        class_weight(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="y: is empty"):
        class_weight(np.array([], dtype=int))
    with pytest.raises(ValueError, match="y: expected a 1-D"):
        class_weight(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="n_classes"):
        class_weight(np.array([0]), n_classes=0)
    with pytest.raises(TypeError, match="n_classes"):
        class_weight(np.array([0]), n_classes=2.0)
    with pytest.raises(TypeError, match="y"):
        class_weight(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="sample_weight"):
        class_weight(np.array([0, 1]), sample_weight=np.ones(3))


# --------------------------------------------------------------------------- gradcheck
SPECS = REGISTRY
GC_CASES = [(spec, opts, shape) for spec in SPECS.values() for opts in spec.options or ({},)
            for shape in (spec.shapes[:1] if any(isinstance(v, np.ndarray) for v in opts.values())
                          else spec.shapes)]


def _gc_id(case):
    spec, opts, shape = case
    parts = [f"{k}={'array' if isinstance(v, np.ndarray) else v}" for k, v in opts.items()]
    return "-".join([spec.name, *parts, "x".join(map(str, shape))])


def spec_args(spec, rng, shape, dtype=np.float64):
    """make_data's (input, target): a tuple target is several positional arguments."""
    x, t = spec.make_data(rng, shape, dtype)
    return (x, *t) if isinstance(t, tuple) else (x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", GC_CASES, ids=[_gc_id(c) for c in GC_CASES])
def test_gradcheck_passes_on_every_loss(case, backend, rng, reduction):
    """Every registered loss (and every pairwise loss), every option set, every reduction:
    loss_grad (and grad_hess where the loss has one) agree with finite differences."""
    spec, opts, shape = case
    args = spec_args(spec, rng, shape)
    obj = spec.cls(**opts, reduction=reduction, backend=backend)
    result = gradcheck(obj, *args)
    assert result, str(result)
    assert isinstance(result, GradcheckResult)
    n_inputs = 3 if spec.name == "triplet_margin_loss" else (
        2 if spec.family == "pairwise" else 1)
    assert result.n_checked["grad"] == n_inputs * args[0].size
    assert ("hess" in result.n_checked) == spec.has_hess
    assert result.max_abs_error < 1e-6


def test_gradcheck_on_float32_data_perturbs_in_float64(backend, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    result = gradcheck(fastloss.CrossEntropy(backend=backend), x, y)
    assert result and result.max_abs_error < 1e-9


def test_gradcheck_with_sample_weight_and_function_form(backend, rng):
    x, t = rng.standard_normal(8), rng.standard_normal(8)
    sw = rng.uniform(0.5, 2.0, 8)
    assert gradcheck(fastloss.Huber(backend=backend), x, t, sample_weight=sw)
    assert gradcheck(fastloss.huber_loss, x, t, sample_weight=sw)
    a, p, q = (rng.standard_normal((4, 3)) for _ in range(3))
    assert gradcheck(pairwise.triplet_margin_loss, a, p, q)


def test_gradcheck_accepts_subgradients_at_kinks(backend):
    """L1 at equality (gradient 0), pinball at equality (1 - q), the triplet and ranking
    hinges exactly at 0, Huber exactly at delta: valid one-sided values pass."""
    x = np.array([0.0, 1.0, -2.0, 0.5])
    assert gradcheck(fastloss.L1(backend=backend), x, np.array([0.0, 3.0, -2.0, 0.0]))
    r = gradcheck(fastloss.Pinball(quantile=0.3, backend=backend), x, x.copy())
    assert r and r.n_kinks == 8 and r.n_checked["hess"] == 4  # every gradient and Hessian element
    assert gradcheck(fastloss.Huber(delta=1.0, backend=backend), x, x + 1.0)
    assert gradcheck(pairwise.MarginRanking(backend=backend), x, x.copy(), np.ones(4))
    a, p, q = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]])
    assert gradcheck(pairwise.TripletMargin(margin=5.0, eps=0.0, backend=backend), a, p, q)


class _Scaled:
    """Wraps a loss and multiplies one gradient element by ``factor`` (a planted bug)."""

    def __init__(self, inner, which=0, index=(0,), factor=1.001, hess_factor=1.0,
                 loss_offset=0.0):
        self.inner, self.which, self.index = inner, which, index
        self.factor, self.hess_factor, self.loss_offset = factor, hess_factor, loss_offset
        if hasattr(inner, "grad_hess"):
            self.grad_hess = self._grad_hess

    def loss(self, *args, sample_weight=None):
        return self.inner.loss(*args, sample_weight=sample_weight)

    def loss_grad(self, *args, sample_weight=None, out=None):
        loss, g = self.inner.loss_grad(*args, sample_weight=sample_weight)
        gs = list(g) if isinstance(g, tuple) else [g]
        gs[self.which][self.index] *= self.factor
        return loss + self.loss_offset, tuple(gs) if isinstance(g, tuple) else gs[0]

    def _grad_hess(self, *args, sample_weight=None):
        g, h = self.inner.grad_hess(*args, sample_weight=sample_weight)
        h[self.index] *= self.hess_factor
        return g, h


def test_gradcheck_finds_a_wrong_gradient_element(backend, rng):
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    bad = _Scaled(fastloss.CrossEntropy(backend=backend), index=(2, 1), factor=1.0001)
    result = gradcheck(bad, x, y)
    assert not result
    assert result.where.quantity == "grad" and result.where.index == (2, 1)
    assert result.worst_abs.index == (2, 1)
    assert 5e-5 < result.max_rel_error < 2e-4
    text = str(result)
    assert "FAILED" in text and "(2, 1)" in text and "max abs error" in text
    assert "GradcheckResult(passed=False" in repr(result)
    with pytest.raises(AssertionError, match=r"index \(2, 1\)"):
        assert result, str(result)


def test_gradcheck_finds_a_wrong_hessian_and_a_wrong_loss(backend, rng):
    x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    bce = fastloss.BCEWithLogits(backend=backend)
    result = gradcheck(_Scaled(bce, index=(1, 2), factor=1.0, hess_factor=1.01), x, t)
    assert not result and result.where.quantity == "hess" and result.where.index == (1, 2)
    assert [m.quantity for m in result.failures] == ["hess"]
    result = gradcheck(_Scaled(bce, factor=1.0, loss_offset=1e-3), x, t)
    assert not result and result.failures[0].quantity == "loss"
    assert gradcheck(_Scaled(bce, factor=1.0), x, t)  # the wrapper itself is innocent


@pytest.mark.parametrize("which", [0, 1, 2])
def test_gradcheck_finds_a_wrong_pairwise_gradient(backend, rng, which):
    a, p, q = (rng.standard_normal((4, 3)) for _ in range(3))
    bad = _Scaled(pairwise.TripletMargin(margin=5.0, backend=backend), which=which,
                  index=(3, 0), factor=0.999)
    result = gradcheck(bad, a, p, q)
    assert not result
    assert (result.where.input, result.where.index) == (which, (3, 0))
    assert len(result.failures) == 1


def test_gradcheck_on_a_users_own_loss():
    """Any object with loss / loss_grad: a log-cosh loss written by hand."""

    class LogCosh:
        def __init__(self, wrong=False):
            self.wrong = wrong

        def loss(self, x, t, *, sample_weight=None):
            return np.sum(np.log(np.cosh(x - t)))

        def loss_grad(self, x, t, *, sample_weight=None, out=None):
            g = np.tanh(x - t) * (1.01 if self.wrong else 1.0)
            return self.loss(x, t), g

    class SubclassedHuber(fastloss.Huber):
        """A subclass of a built-in loss that doubles it."""

        def loss(self, x, t, *, sample_weight=None):
            return 2 * super().loss(x, t, sample_weight=sample_weight)

        def loss_grad(self, x, t, *, sample_weight=None, out=None):
            loss, g = super().loss_grad(x, t, sample_weight=sample_weight, out=out)
            return 2 * loss, 2 * g

    x, t = np.linspace(-2, 2, 7), np.zeros(7)
    assert gradcheck(LogCosh(), x, t)
    assert not gradcheck(LogCosh(wrong=True), x, t)
    result = gradcheck(SubclassedHuber(), x, t + 0.3)
    assert not result  # its grad_hess was not doubled: gradcheck notices
    assert {m.quantity for m in result.failures} == {"grad (grad_hess)", "hess"}
    assert gradcheck(SubclassedHuber(), x, t + 0.3, hess=False)


def test_gradcheck_samples_large_inputs(rng):
    x, t = rng.standard_normal((60, 50)), rng.standard_normal((60, 50))
    result = gradcheck(fastloss.MSE(), x, t, max_elements=40, hess=False)
    assert result and result.n_checked["grad"] == 40


def test_gradcheck_validates_its_options(rng):
    x, t = rng.standard_normal(3), rng.standard_normal(3)
    for name, value in (("rtol", -1.0), ("atol", np.nan), ("step", 0.0), ("max_elements", 0)):
        with pytest.raises(ValueError, match=name):
            gradcheck(fastloss.MSE(), x, t, **{name: value})
    with pytest.raises(TypeError, match="loss"):
        gradcheck(42, x, t)
    with pytest.raises(TypeError, match="inputs"):
        gradcheck(fastloss.MSE())


# --------------------------------------------------------------------------- MultiTask
def three_heads(rng, backend=None, dtype=np.float64):
    """CE (mean), Huber (sum) and triplet (mean) heads with their inputs and targets."""
    heads = [fastloss.CrossEntropy(label_smoothing=0.1, backend=backend),
             fastloss.Huber(reduction="sum", backend=backend),
             pairwise.TripletMargin(margin=2.0, backend=backend)]
    x = rng.standard_normal((6, 4)).astype(dtype)
    y = rng.integers(0, 4, 6)
    r, rt = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    a, p, q = (rng.standard_normal((3, 2)).astype(dtype) for _ in range(3))
    return heads, [x, r, (a, p, q)], [y, rt, None]


def numpy_head_losses(inputs, targets):
    """The three heads' losses from the NumPy references (float64)."""
    (x, r, (a, p, q)), (y, rt, _) = inputs, targets
    ce = ref.cross_entropy(x, y, label_smoothing=0.1)
    huber = ref.huber_loss(r, rt, reduction="sum")
    d_ap = np.linalg.norm(a - p + 1e-6, axis=1)
    d_an = np.linalg.norm(a - q + 1e-6, axis=1)
    triplet = np.mean(np.maximum(0, 2.0 + d_ap - d_an))
    return np.array([ce, huber, triplet])


def test_multitask_fixed_weights(backend, rng):
    heads, inputs, targets = three_heads(rng, backend)
    w = np.array([0.5, 2.0, -1.5])
    mt = MultiTask(heads, weights=w)
    loss, grads = mt.loss_grad(inputs, targets)
    assert isinstance(loss, np.float64)
    assert_allclose(loss, w @ numpy_head_losses(inputs, targets), rtol=1e-12)
    assert_allclose(mt.loss(inputs, targets), loss, rtol=1e-15)
    assert_allclose(mt(inputs, targets)[0], loss, rtol=1e-15)
    assert len(grads) == 3 and isinstance(grads[2], tuple) and len(grads[2]) == 3
    for k, head in enumerate(heads):
        _, g = head.loss_grad(*(inputs[k] if isinstance(inputs[k], tuple) else (inputs[k],)),
                              *(() if targets[k] is None else (targets[k],)))
        for u, v in zip(g if isinstance(g, tuple) else (g,),
                        grads[k] if isinstance(grads[k], tuple) else (grads[k],)):
            assert_allclose(v, w[k] * u, rtol=1e-15)
    # the gradient of the total w.r.t. an input, by central differences of the references
    x = inputs[0].astype(np.longdouble)

    def total(xp):
        return float(w @ numpy_head_losses([xp.astype(np.float64)] + inputs[1:], targets))

    assert_allclose(grads[0], numdiff.gradient(total, x.astype(np.float64), h=1e-3),
                    rtol=1e-7, atol=1e-9)
    assert_allclose(MultiTask(heads).loss(inputs, targets),
                    numpy_head_losses(inputs, targets).sum(), rtol=1e-12)


def test_multitask_learned_weights(backend, rng):
    """sum_k exp(-s_k) L_k + s_k; grads scaled by exp(-s_k); d/ds_k = 1 - exp(-s_k) L_k,
    checked against central differences in s."""
    heads, inputs, targets = three_heads(rng, backend)
    mt = MultiTask(heads, learn_weights=True)
    s = np.array([0.3, -0.7, 1.2])
    loss, grads, grad_s = mt.loss_grad(inputs, targets, s)
    losses = numpy_head_losses(inputs, targets)
    assert_allclose(loss, np.sum(np.exp(-s) * losses + s), rtol=1e-12)
    assert_allclose(grad_s, 1 - np.exp(-s) * losses, rtol=1e-12)
    assert_allclose(grad_s, numdiff.gradient(lambda v: mt.loss(inputs, targets, v), s, h=1e-3),
                    rtol=1e-8)
    _, g_ce = heads[0].loss_grad(inputs[0], targets[0])
    assert_allclose(grads[0], np.exp(-s[0]) * g_ce, rtol=1e-15)
    _, g_trip = heads[2].loss_grad(*inputs[2])
    for u, v in zip(grads[2], g_trip):
        assert_allclose(u, np.exp(-s[2]) * v, rtol=1e-15)
    assert_allclose(mt.loss(inputs, targets, s), loss, rtol=1e-15)
    # s = 0 is the plain sum
    assert_allclose(mt.loss(inputs, targets, np.zeros(3)), losses.sum(), rtol=1e-12)


def test_multitask_respects_each_heads_reduction_and_sample_weights(rng):
    x, t = rng.standard_normal(6), rng.standard_normal(6)
    sw = rng.uniform(0.5, 2.0, 6)
    mt = MultiTask([fastloss.MSE(reduction="mean"), fastloss.MSE(reduction="sum")])
    loss, (g_mean, g_sum) = mt.loss_grad([x, x], [t, t], sample_weights=[None, sw])
    assert_allclose(loss, ref.mse_loss(x, t) + ref.mse_loss(x, t, "sum", sample_weight=sw),
                    rtol=1e-12)
    assert_allclose(g_mean, 2 * (x - t) / 6, rtol=1e-14)
    assert_allclose(g_sum, 2 * (x - t) * sw, rtol=1e-14)


def test_multitask_dtype(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    r = rng.standard_normal(4)
    one = MultiTask([fastloss.CrossEntropy(), fastloss.CrossEntropy()]).loss([x, x], [y, y])
    assert isinstance(one, np.float32)
    mixed = MultiTask([fastloss.CrossEntropy(), fastloss.MSE()]).loss([x, r], [y, r])
    assert isinstance(mixed, np.float64)


def test_multitask_errors(rng):
    x, t = rng.standard_normal(3), rng.standard_normal(3)
    with pytest.raises(ValueError, match=r"losses\[1\]: reduction='none'"):
        MultiTask([fastloss.MSE(), fastloss.MSE(reduction="none")])
    with pytest.raises(ValueError, match="losses"):
        MultiTask([])
    with pytest.raises(TypeError, match=r"losses\[0\]"):
        MultiTask([np.mean])
    with pytest.raises(ValueError, match="weights"):
        MultiTask([fastloss.MSE()], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        MultiTask([fastloss.MSE()], weights=[np.inf])
    with pytest.raises(ValueError, match="weights"):
        MultiTask([fastloss.MSE()], weights=[1.0], learn_weights=True)
    with pytest.raises(TypeError, match="learn_weights"):
        MultiTask([fastloss.MSE()], learn_weights="yes")
    mt = MultiTask([fastloss.MSE(), fastloss.L1()])
    with pytest.raises(ValueError, match="inputs"):
        mt.loss_grad([x], [t, t])
    with pytest.raises(ValueError, match="targets"):
        mt.loss_grad([x, x], t)
    with pytest.raises(ValueError, match="log_vars"):
        mt.loss_grad([x, x], [t, t], [0.0, 0.0])
    with pytest.raises(ValueError, match="sample_weights"):
        mt.loss_grad([x, x], [t, t], sample_weights=[None])
    learned = MultiTask([fastloss.MSE(), fastloss.L1()], learn_weights=True)
    for bad in (None, [0.0], [0.0, np.nan]):
        with pytest.raises(ValueError, match="log_vars"):
            learned.loss_grad([x, x], [t, t], bad)

    class Vector:
        def loss(self, x, t, sample_weight=None):
            return x - t

        def loss_grad(self, x, t, sample_weight=None):
            return x - t, np.ones_like(x)

    with pytest.raises(ValueError, match=r"losses\[0\].*scalar"):
        MultiTask([Vector()]).loss_grad([x], [t])
    assert "MultiTask" in repr(mt)

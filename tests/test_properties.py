"""Property-based tests across the registry (hypothesis).

Every test draws a registry row, one of its option sets, a shape that fits the
loss's family, a dtype, a magnitude, a backend and a reduction, builds the data
with the row's ``make_data`` from a drawn seed and checks one property:

1. ``loss`` is ``loss_grad[0]`` bitwise, and the function form is the class;
2. ``sample_weight`` of ones is ``None`` (bitwise: the engine multiplies by
   the weight and divides by their sum, both exact for ones);
3. permuting the batch permutes the per-sample losses and the gradient rows
   (bitwise: every row is computed on its own);
4. softmax / CTC: shifting the logits of a row / frame by a constant changes
   loss and gradient only by rounding (scaled with the shift and magnitude);
5. gradient and Hessian diagonal against central finite differences, in
   float64 (``fastloss.gradcheck``, which accepts subgradients at kinks);
6. the two backends agree to the API's tolerances;
7. finite inputs give finite outputs (except CTC's impossible alignments).

CI-reproducible: ``derandomize=True, database=None``. ``FASTLOSS_PROPERTY_EXAMPLES``
scales the number of examples per test (default below). Run with ``-s`` to see
how many examples each test ran.
"""
import collections
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import fastloss
from fastloss._registry import REGISTRY

N_EXAMPLES = int(os.environ.get("FASTLOSS_PROPERTY_EXAMPLES", "150"))
PROPS = settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = collections.Counter()  # test name -> examples run

BACKENDS = tuple(fastloss.BACKENDS)
REDUCTIONS = ("mean", "sum", "none")
FLOAT32_LIMIT = 1e4  # API: finite results for logits up to +-1e4 in float32
FLOAT64_LIMIT = 1e30  # ... and +-1e30 in float64

# Options beyond the registry rows, per loss: combinations a user would write.
EXTRA_OPTIONS = {
    "cross_entropy": ({"label_smoothing": 0.3, "ignore_index": 2,
                       "weight": np.array([0.5, 2.0, 1.0, 1.5, 0.25])},),
    "softmax_focal_loss": ({"gamma": 3.0, "weight": np.array([0.5, 2.0, 1.0, 1.5, 0.25])},),
    "pinball_loss": ({"quantile": np.array([0.1, 0.5, 0.9])},),
    "sigmoid_focal_loss": ({"alpha": 0.75, "gamma": 0.5},),
}


def count(name):
    EXAMPLES[name] += 1


# --------------------------------------------------------------------------- cases
class Case:
    """One drawn example: the loss, its options, data and how to call it."""

    def __init__(self, name, opts, shape, dtype, scale, backend, reduction, seed):
        self.name, self.opts, self.shape = name, opts, shape
        self.dtype, self.scale, self.backend, self.reduction = dtype, scale, backend, reduction
        self.seed = seed
        self.spec = REGISTRY[name]
        self.family = self.spec.family
        rng = np.random.default_rng(seed)
        x, target = self.spec.make_data(rng, shape, dtype)
        self.x, self.target = self._scaled(x, target)
        self.rng = rng

    def __repr__(self):
        return (f"Case({self.name!r}, opts={self.opts!r}, shape={self.shape}, "
                f"dtype={np.dtype(self.dtype).name}, scale={self.scale:g}, "
                f"backend={self.backend!r}, reduction={self.reduction!r}, seed={self.seed})")

    def _limit(self, a):
        lim = FLOAT32_LIMIT if np.dtype(self.dtype) == np.float32 else FLOAT64_LIMIT
        return np.clip(a, -lim, lim).astype(a.dtype)

    def _scaled(self, x, target):
        s = self.scale
        xs = self._limit(x * x.dtype.type(s) if x.dtype.kind == "f" else x * s)
        if self.name in ("huber_loss", "smooth_l1_loss", "mse_loss", "l1_loss", "pinball_loss"):
            target = self._limit(np.asarray(target) * s)
        elif self.name in ("triplet_margin_loss", "contrastive_loss"):
            target = (self._limit(target[0] * target[0].dtype.type(s)),) + tuple(target[1:])
            if self.name == "triplet_margin_loss":
                target = (target[0], self._limit(target[1] * target[1].dtype.type(s)))
        elif self.name == "margin_ranking_loss":
            target = (self._limit(target[0] * target[0].dtype.type(s)), target[1])
        return xs, target

    # -- calling ---------------------------------------------------------------
    @property
    def args(self):
        return self.target if isinstance(self.target, tuple) else (self.target,)

    def obj(self, reduction=None, backend=None, **extra):
        return self.spec.cls(**self.opts, **extra, reduction=reduction or self.reduction,
                             backend=backend or self.backend)

    def func(self, x, args, **kw):
        return self.spec.func(x, *args, **self.opts, reduction=self.reduction,
                              backend=self.backend, **kw)

    @property
    def n_batch(self):
        """Length of the batch axis that permutations and (N,) weights act on."""
        if self.family == "ctc":
            return self.shape[1]
        if self.family == "softmax":
            return self.shape[0] if len(self.shape) > 1 else 0
        return self.shape[0]

    @property
    def weight_shape(self):
        if self.family == "softmax":
            return self.shape[:-1]
        return (self.n_batch,)

    def ctc_feasible(self):
        """Whether every sequence has an alignment (else its loss is inf)."""
        targets, in_len, tgt_len = self.target
        ok = []
        for n in range(targets.shape[0]):
            lab = targets[n, :tgt_len[n]]
            repeats = int(np.sum(lab[1:] == lab[:-1])) if lab.size > 1 else 0
            ok.append(in_len[n] >= tgt_len[n] + repeats)
        return np.array(ok)


def _shape(draw, spec, opts):
    fam, name = spec.family, spec.name
    if fam == "softmax":
        n_classes = 5 if "weight" in opts else draw(st.integers(1, 6))
        if "ignore_index" in opts and opts["ignore_index"] >= n_classes:
            n_classes = opts["ignore_index"] + 1
        lead = draw(st.lists(st.integers(1, 5), min_size=0, max_size=2))
        return tuple(lead) + (n_classes,)
    if name == "pinball_loss":
        n = draw(st.integers(1, 8))
        q = np.asarray(opts.get("quantile", 0.5))
        if q.ndim == 1:
            return (n, q.size)
        return draw(st.sampled_from([(n,), (n, draw(st.integers(1, 3)))]))
    if fam == "elementwise":
        return tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    if fam == "ctc":
        return (draw(st.integers(1, 10)), draw(st.integers(1, 4)), draw(st.integers(2, 6)))
    n = draw(st.integers(1, 7))
    if name == "margin_ranking_loss":
        return (n,)
    return (n, draw(st.integers(1, 5)))


@st.composite
def cases(draw, families=None, dtypes=(np.float32, np.float64), log_scale=(-3.0, 3.0),
          reductions=REDUCTIONS, hess_only=False):
    names = [n for n, s in REGISTRY.items()
             if (families is None or s.family in families) and (s.has_hess or not hess_only)]
    name = draw(st.sampled_from(names))
    spec = REGISTRY[name]
    option_sets = list(spec.options or ({},)) + list(EXTRA_OPTIONS.get(name, ()))
    opts = option_sets[draw(st.integers(0, len(option_sets) - 1))]
    shape = _shape(draw, spec, opts)
    dtype = draw(st.sampled_from(dtypes))
    lo, hi = log_scale
    if np.dtype(dtype) == np.float32:
        hi = min(hi, 4.0)
    scale = 10.0 ** draw(st.floats(lo, hi, allow_nan=False))
    backend = draw(st.sampled_from(BACKENDS))
    reduction = draw(st.sampled_from(reductions))
    seed = draw(st.integers(0, 2**32 - 1))
    case = Case(name, opts, shape, dtype, scale, backend, reduction, seed)
    note(repr(case))
    return case


# --------------------------------------------------------------------------- helpers
def _tuple(g):
    return tuple(g) if isinstance(g, (tuple, list)) else (g,)


def assert_same(a, b, what):
    """Bitwise equal: dtype, shape and every bit (so -0.0 != 0.0, NaN == NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    if a.tobytes() != b.tobytes():
        differs = np.asarray(a != b) | (np.signbit(a) != np.signbit(b))
        diff = np.flatnonzero(differs.reshape(-1))
        k = int(diff[0]) if diff.size else 0
        raise AssertionError(f"{what}: not bitwise equal, first at flat index {k}: "
                             f"{a.reshape(-1)[k]!r} vs {b.reshape(-1)[k]!r} "
                             f"({diff.size} of {a.size} elements differ)")


def _permute(case, perm):
    """The case's input and target with the batch permuted."""
    if case.family == "ctc":
        targets, in_len, tgt_len = case.target
        return case.x[:, perm], (targets[perm], in_len[perm], tgt_len[perm])
    x = case.x[perm]
    if isinstance(case.target, tuple):
        return x, tuple(np.asarray(t)[perm] for t in case.target)
    return x, np.asarray(case.target)[perm]


# --------------------------------------------------------------------------- 1
@PROPS
@given(case=cases(log_scale=(-3.0, 6.0)))
def test_loss_equals_loss_grad_and_function(case):
    """``loss`` == ``loss_grad[0]`` == ``__call__[0]`` == the function's, bitwise; grads too."""
    count("loss_equals_loss_grad_and_function")
    obj = case.obj()
    value = obj.loss(case.x, *case.args)
    value2, grad = obj.loss_grad(case.x, *case.args)
    value3, grad3 = obj(case.x, *case.args)
    value4, grad4 = case.func(case.x, case.args)
    assert_same(value, value2, "loss vs loss_grad[0]")
    assert_same(value, value3, "loss vs __call__[0]")
    assert_same(value, value4, "loss vs function form")
    for k, (g, g3, g4) in enumerate(zip(_tuple(grad), _tuple(grad3), _tuple(grad4))):
        assert_same(g, g3, f"grad[{k}] vs __call__")
        assert_same(g, g4, f"grad[{k}] vs function form")
    if case.reduction == "none":
        assert np.shape(value) == (case.x.shape if case.family == "elementwise"
                                   else case.weight_shape if case.family != "softmax"
                                   else case.x.shape[:-1])
    else:
        assert isinstance(value, np.floating) and value.dtype == case.x.dtype
    if case.spec.has_hess:
        g_h, hess = obj.grad_hess(case.x, *case.args)
        assert_same(g_h, grad, "grad_hess[0] vs loss_grad[1]")
        assert hess.shape == case.x.shape and hess.dtype == case.x.dtype


# --------------------------------------------------------------------------- 2
@PROPS
@given(case=cases(log_scale=(-3.0, 6.0)), rows=st.booleans())
def test_sample_weight_of_ones_is_none(case, rows):
    """``sample_weight`` of ones gives bitwise the result of ``None`` (loss, grad, hess)."""
    count("sample_weight_of_ones_is_none")
    if case.family == "elementwise" and not rows:
        ones = np.ones(case.x.shape)  # the input's shape
    else:
        ones = np.ones(case.weight_shape)  # (N,) / the batch shape
    obj = case.obj()
    l0, g0 = obj.loss_grad(case.x, *case.args)
    l1, g1 = obj.loss_grad(case.x, *case.args, sample_weight=ones)
    assert_same(l1, l0, "loss")
    for k, (a, b) in enumerate(zip(_tuple(g1), _tuple(g0))):
        assert_same(a, b, f"grad[{k}]")
    assert_same(obj.loss(case.x, *case.args, sample_weight=ones), l0, "loss (forward only)")
    if case.spec.has_hess:
        h0 = obj.grad_hess(case.x, *case.args)[1]
        h1 = obj.grad_hess(case.x, *case.args, sample_weight=ones)[1]
        assert_same(h1, h0, "hess")


# --------------------------------------------------------------------------- 3
@PROPS
@given(case=cases(log_scale=(-3.0, 6.0)), weighted=st.booleans(), data=st.data())
def test_permuting_the_batch_permutes_losses_and_gradients(case, weighted, data):
    """Per-sample losses ("none") and gradient / Hessian rows follow a batch
    permutation exactly (sample weights permuted along)."""
    assume(case.n_batch > 1)
    count("permuting_the_batch")
    perm = np.array(data.draw(st.permutations(range(case.n_batch)), label="perm"))
    xp, tp = _permute(case, perm)
    args_p = tp if isinstance(tp, tuple) else (tp,)
    kw0, kw1 = {}, {}
    if weighted:
        sw = case.rng.uniform(0.5, 2.0, size=case.weight_shape)
        kw0, kw1 = {"sample_weight": sw}, {"sample_weight": sw[perm]}
    none = case.obj(reduction="none")
    l0, l1 = none.loss(case.x, *case.args, **kw0), none.loss(xp, *args_p, **kw1)
    assert_same(l1, l0[perm], "per-sample losses")
    obj = case.obj()
    g0, g1 = obj.loss_grad(case.x, *case.args, **kw0)[1], obj.loss_grad(xp, *args_p, **kw1)[1]
    axis = 1 if case.family == "ctc" else 0
    if weighted and case.reduction == "mean":
        # "mean" divides by sum(sample_weight), a float sum whose last bit depends
        # on the order of the weights: the rows then agree to that rounding
        # (scale = 1 / sum within n eps, then one rounding to the compute dtype).
        eps = float(np.finfo(case.x.dtype).eps)
        rtol = (2 * case.n_batch + 4) * eps

        def same(a, b, what):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=what)
    else:
        same = assert_same
    for k, (a, b) in enumerate(zip(_tuple(g1), _tuple(g0))):
        same(a, np.take(b, perm, axis=axis), f"grad[{k}] rows")
    if case.spec.has_hess:
        h0 = obj.grad_hess(case.x, *case.args, **kw0)[1]
        h1 = obj.grad_hess(xp, *args_p, **kw1)[1]
        same(h1, np.take(h0, perm, axis=axis), "hess rows")


# --------------------------------------------------------------------------- 4
@PROPS
@given(case=cases(families=("softmax", "ctc"), log_scale=(-3.0, 6.0)),
       log_shift=st.floats(-3.0, 6.0), data=st.data())
def test_shifting_logits_changes_nothing(case, log_shift, data):
    """Adding a constant to every logit of a row (softmax) / frame (CTC) changes the
    per-sample losses and the gradient only by rounding."""
    assume(not case.opts.get("log_probs", False))  # log-probabilities are not shift-free
    count("shifting_logits")
    dt = case.x.dtype
    lim = FLOAT32_LIMIT if dt == np.float32 else FLOAT64_LIMIT
    shift_scale = min(10.0 ** log_shift, lim / 4)
    lead = case.x.shape[:-1]
    seed = data.draw(st.integers(0, 2**32 - 1), label="shift seed")
    c = np.random.default_rng(seed).uniform(-1, 1, size=lead + (1,)) * shift_scale
    xs = (case.x + c.astype(dt)).astype(dt)
    eps = float(np.finfo(dt).eps)
    mag = float(np.max(np.abs(case.x), initial=0.0)) + float(np.max(np.abs(xs), initial=0.0))
    n_classes = case.x.shape[-1]
    frames = case.x.shape[0] if case.family == "ctc" else 1
    wmax = float(np.max(case.opts.get("weight", np.ones(1))))
    # a perturbation of the logits by ~eps * mag (the rounding of x + c and of
    # x - max inside) moves each per-sample loss by at most ~|grad|_1 * eps * mag
    tol = 16 * eps * mag * wmax * (n_classes + 2) * frames
    none = case.obj(reduction="none")
    l0 = np.asarray(none.loss(case.x, *case.args), np.float64)
    l1 = np.asarray(none.loss(xs, *case.args), np.float64)
    np.testing.assert_allclose(l1, l0, rtol=8 * eps, atol=tol, err_msg="per-sample losses")
    total = case.obj(reduction="sum")
    g0 = np.asarray(total.loss_grad(case.x, *case.args)[1], np.float64)
    g1 = np.asarray(total.loss_grad(xs, *case.args)[1], np.float64)
    np.testing.assert_allclose(g1, g0, rtol=8 * eps, atol=tol, err_msg="gradient")
    if case.spec.has_hess:
        h0 = np.asarray(total.grad_hess(case.x, *case.args)[1], np.float64)
        h1 = np.asarray(total.grad_hess(xs, *case.args)[1], np.float64)
        np.testing.assert_allclose(h1, h0, rtol=8 * eps, atol=tol, err_msg="hessian")


# --------------------------------------------------------------------------- 5
@settings(PROPS, max_examples=max(1, N_EXAMPLES * 2 // 3))
@given(case=cases(dtypes=(np.float64,), log_scale=(-3.0, 3.0)), weighted=st.booleans())
def test_gradient_and_hessian_match_finite_differences(case, weighted):
    """float64 gradient (and Hessian diagonal where ``has_hess``) vs central differences."""
    sw = None
    if case.family == "ctc":
        assume(case.opts.get("zero_infinity", False) or case.ctc_feasible().all())
    count("finite_differences")
    if weighted:
        sw = case.rng.uniform(0.5, 2.0, size=case.weight_shape)
    obj = case.obj()
    # h = step * max(1, |x|): keep h ~ 1e-3 of the data's own scale, so the
    # stencil resolves the curvature of softmax/log-sum-exp at large logits
    step = 1e-3 / max(1.0, case.scale)
    result = fastloss.gradcheck(obj, case.x, *case.args, sample_weight=sw, step=step,
                                max_elements=60, hess=case.spec.has_hess)
    assert result, str(result)


# --------------------------------------------------------------------------- 6
@PROPS
@given(case=cases(), weighted=st.booleans())
def test_backends_agree(case, weighted):
    """Cython and Numba agree to the API tolerances (atol scaled with the magnitude)."""
    count("backends_agree")
    f32 = case.x.dtype == np.float32
    if case.family == "ctc" and f32:
        rtol, atol = 1e-4, 1e-5
    else:
        rtol, atol = (1e-5, 1e-6) if f32 else (1e-12, 1e-14)
    atol *= max(1.0, case.scale)
    sw = case.rng.uniform(0.5, 2.0, size=case.weight_shape) if weighted else None
    results = {}
    for b in BACKENDS:
        obj = case.obj(backend=b)
        value, grad = obj.loss_grad(case.x, *case.args, sample_weight=sw)
        hess = (obj.grad_hess(case.x, *case.args, sample_weight=sw)[1]
                if case.spec.has_hess else None)
        results[b] = (value, _tuple(grad), hess)
    (la, ga, ha), (lb, gb, hb) = (results[b] for b in BACKENDS[:2])
    # the loss is a sum: its absolute error scales with the sum of magnitudes
    np.testing.assert_allclose(lb, la, rtol=rtol, atol=atol * max(1.0, case.scale) * case.x.size,
                               err_msg="loss")
    for k, (a, b) in enumerate(zip(ga, gb)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"grad[{k}]")
    if ha is not None:
        np.testing.assert_allclose(hb, ha, rtol=rtol, atol=atol, err_msg="hess")


# --------------------------------------------------------------------------- 7
@PROPS
@given(case=cases(log_scale=(-3.0, 30.0)), weighted=st.booleans())
def test_finite_inputs_give_finite_outputs(case, weighted):
    """Up to +-1e4 (float32) / +-1e30 (float64): loss, grad, hess are finite, except
    CTC's inf for an impossible alignment (whose gradient is 0)."""
    count("finite_outputs")
    for a in (case.x, *[t for t in case.args if np.asarray(t).dtype.kind == "f"]):
        assert np.all(np.isfinite(a))
    sw = case.rng.uniform(0.5, 2.0, size=case.weight_shape) if weighted else None
    obj = case.obj()
    value, grad = obj.loss_grad(case.x, *case.args, sample_weight=sw)
    if case.family == "ctc":
        feasible = case.ctc_feasible()
        none = case.obj(reduction="none").loss(case.x, *case.args, sample_weight=sw)
        assert np.all(np.isfinite(none[feasible])), none
        if case.opts.get("zero_infinity", False):
            assert np.all(none[~feasible] == 0)
        else:
            assert np.all(np.isposinf(none[~feasible])), none
        if case.opts.get("zero_infinity", False) or feasible.all():
            assert np.all(np.isfinite(value)), value
        assert np.all(grad[:, ~feasible] == 0)
    else:
        assert np.all(np.isfinite(value)), value
    for k, g in enumerate(_tuple(grad)):
        assert np.all(np.isfinite(g)), f"grad[{k}] not finite: {g}"
    if case.spec.has_hess:
        hess = obj.grad_hess(case.x, *case.args, sample_weight=sw)[1]
        assert np.all(np.isfinite(hess)), f"hess not finite: {hess}"


# --------------------------------------------------------------------------- count
def test_zz_examples_run():
    """Prints how many hypothesis examples each property ran (pytest -s)."""
    total = sum(EXAMPLES.values())
    lines = [f"  {name}: {n}" for name, n in sorted(EXAMPLES.items())]
    print(f"\nhypothesis examples run: {total}\n" + "\n".join(lines))

"""Special values for every registry loss: NaN and +-inf in each input position,
zero-stride broadcast inputs, 0-d inputs, float32 denormals, N*C > 2**31.

Expectations (API.md "Non-finite inputs propagate"; "as the math says"):

- NaN in one element of any real-valued position (input, a float target,
  ``sample_weight``, a weight option) makes the loss of the sample(s) it enters
  NaN with ``reduction="none"``, with a NaN gradient there (the documented
  exception: L1's gradient at a NaN difference is 0, as PyTorch), and leaves
  every other sample's loss and gradient bitwise as they were; ``"mean"`` and
  ``"sum"`` are NaN. No crash, no exception. (NaN in an integer-valued position,
  class labels, CTC targets and lengths, margin ranking's +-1 target,
  contrastive's [0, 1] target, is a validation error: see test_bad_input.py.)
- +-inf in one logit / prediction: the result is the limit of the loss and
  gradient as that element goes to +-inf, wherever the limit exists. The
  oracle is the same call with +-1e300 (float64) in its place, where every
  kernel is finite: a loss or gradient that is huge there (> 1e200) must be
  +-inf of the same sign, anything else must be equal (to rounding). Where the
  limit does not exist (inf - inf: MSE of +inf against a +inf target), NaN.
- zero-stride broadcast arrays in every position give bitwise the results of
  their contiguous copies; 0-d inputs are accepted by the elementwise losses
  (0-d loss and gradient) and are a ValueError naming the input elsewhere.
- float32 denormal inputs give finite results equal to the float64 result on
  the same values (rounded to float32).
- N*C > 2**31 (slow, deselected by default with the ``slow`` marker).
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastloss
from fastloss._registry import REGISTRY

from test_bad_input import ARG_NAMES, valid_call

ELEMENTWISE = [n for n, s in REGISTRY.items() if s.family == "elementwise"]
K = 1  # the sample that gets the special value


def _run(name, args, opts=None, sw=None, backend=None, reduction="none"):
    obj = REGISTRY[name].cls(**(opts or {}), reduction=reduction, backend=backend)
    loss, grad = obj.loss_grad(*args, sample_weight=sw)
    return loss, (grad if isinstance(grad, tuple) else (grad,))


def _differentiable(name):
    """Indices of the positional args that get a gradient."""
    family = REGISTRY[name].family
    if family == "pairwise":
        return list(range(len(ARG_NAMES[name]) - (name != "triplet_margin_loss")))
    return [0]


# --------------------------------------------------------------------------- NaN positions
def _nan_positions(name):
    """(id, where, index, samples) -- where: an arg index, "sample_weight" or an option.

    ``index`` is the element set to NaN, ``samples`` a boolean function of the
    batch (reduction="none") index telling which losses it enters.
    """
    spec = REGISTRY[name]
    state = valid_call(name)
    rows = lambda *ks: (lambda i: i[0] in ks)  # noqa: E731
    out = []
    if spec.family == "softmax":
        out += [("input", 0, (K, 1), rows(K)), ("sample_weight", "sample_weight", (K,), rows(K))]
        # class weight of label y[2] = 1, which only sample 2 has
        out += [("weight", "weight", (1,), rows(2))]
        if name == "cross_entropy":
            out += [("probability-target", "probs", (K, 2), rows(K))]
    elif spec.family == "elementwise":
        idx = (K,) if name == "pinball_loss" else (K, 2)
        same = lambda i: tuple(i) == idx  # noqa: E731
        out += [("input", 0, idx, same), ("target", 1, idx, same),
                ("sample_weight", "sample_weight", idx, same)]
        if name == "binary_cross_entropy_with_logits":
            out += [("weight", "weight", idx, same),
                    ("pos_weight", "pos_weight", (2,), lambda i: i[-1] == 2)]
    elif spec.family == "ctc":
        # frame 0 of sequence K, and a frame past sequence K's input length (never read)
        out += [("input-frame", 0, (0, K, 2), rows(K)),
                ("input-past-length", 0, (state["args"][2][K], K, 2), lambda i: False),
                ("sample_weight", "sample_weight", (K,), rows(K))]
    else:
        for i in _differentiable(name):
            idx = (K,) if state["args"][0].ndim == 1 else (K, 1)
            out.append((ARG_NAMES[name][i], i, idx, rows(K)))
        out.append(("sample_weight", "sample_weight", (K,), rows(K)))
    return out


def _base_for(name, where):
    """The valid call, float64, with the options that the position needs."""
    state = valid_call(name)
    args, opts, sw = state["args"], {}, state["sw"]
    if where == "weight" and name in ("cross_entropy", "softmax_focal_loss"):
        opts["weight"] = np.array([0.5, 2.0, 1.5])
    if where == "weight" and name == "binary_cross_entropy_with_logits":
        opts["weight"] = np.linspace(0.5, 2.0, args[0].size).reshape(args[0].shape)
    if where == "pos_weight":
        opts["pos_weight"] = np.array([1.0, 2.0, 3.0])
    if where == "probs":
        args[1] = np.random.default_rng(3).dirichlet(np.ones(3), size=args[0].shape[0])
    return args, opts, sw


NAN_CASES = [(name, *pos) for name in REGISTRY for pos in _nan_positions(name)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, what, where, index, enters", NAN_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in NAN_CASES])
def test_nan_propagates_to_its_sample_only(name, what, where, index, enters, backend, dtype):
    args, opts, sw = _base_for(name, where)
    args = [a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a for a in args]
    base_loss, base_grads = _run(name, args, opts, sw, backend)
    args2, opts2, sw2 = list(args), dict(opts), sw
    if where == "sample_weight":
        sw2 = sw.copy()
        sw2[index] = np.nan
    elif where in ("weight", "pos_weight"):
        opts2[where] = opts[where].copy()
        opts2[where][index] = np.nan
    else:
        i = 1 if where == "probs" else where
        args2[i] = args[i].copy()
        args2[i][index] = np.nan
    loss, grads = _run(name, args2, opts2, sw2, backend)
    hit = np.array([enters(i) for i in np.ndindex(loss.shape)], bool).reshape(loss.shape)
    assert np.isnan(loss[hit]).all(), f"NaN did not propagate to the loss: {loss}"
    assert np.array_equal(loss[~hit], base_loss[~hit]), "other samples' losses changed"
    for g, g0 in zip(grads, base_grads):
        # the gradient rows of the other samples are untouched
        if name == "ctc_loss":  # (T, N, C): the batch is axis 1
            mask = np.broadcast_to(hit[None, :, None], g.shape)
        else:
            mask = np.broadcast_to(hit.reshape(hit.shape + (1,) * (g.ndim - hit.ndim)), g.shape)
        assert np.array_equal(g[~mask], g0[~mask]), "other samples' gradients changed"
    # the NaN'd element's own gradient (L1: 0 at a NaN difference, as PyTorch)
    if isinstance(where, int) and where in _differentiable(name) and what != "input-past-length":
        value = grads[_differentiable(name).index(where)][index]
        if name == "l1_loss":
            assert value == 0
        else:
            assert np.isnan(value), f"gradient at the NaN element is {value}"
    for reduction in ("mean", "sum"):
        total, _ = _run(name, args2, opts2, sw2, backend, reduction=reduction)
        if hit.any():
            assert np.isnan(total), f"{reduction}: {total}"
        else:
            assert total == _run(name, args, opts, sw, backend, reduction=reduction)[0]


# --------------------------------------------------------------------------- +-inf
def _inf_cases(name):
    """(id, arg index, element, sign): one logit / prediction set to sign * inf."""
    spec = REGISTRY[name]
    if spec.family == "softmax":  # valid labels [0, 2, 1, 2]: row 1's label is 2
        return [("+inf-at-label", 0, (1, 2), 1), ("-inf-at-label", 0, (1, 2), -1),
                ("+inf-other-class", 0, (1, 0), 1), ("-inf-other-class", 0, (1, 0), -1)]
    if spec.family == "elementwise":
        idx = (K,) if name == "pinball_loss" else (K, 2)
        return [(f"{s}inf-{what}", i, idx, sign)
                for what, i in (("input", 0), ("target", 1)) if not (
                    i == 1 and name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss"))
                for s, sign in (("+", 1), ("-", -1))]
    if name == "margin_ranking_loss":
        return [(f"{s}inf-{a}", i, (k,), sign) for i, a in ((0, "x1"), (1, "x2"))
                for s, sign in (("+", 1), ("-", -1)) for k in (0, 1)]  # targets +1, -1
    if spec.family == "ctc":
        # a class that sequence K's target (3, 1) does not hold, in a read frame
        return [("-inf-unused-class", 0, (0, K, 2), -1), ("-inf-blank", 0, (0, K, 0), -1)]
    return []  # triplet / contrastive: explicit cases below


INF_CASES = [(name, *c) for name in REGISTRY for c in _inf_cases(name)]


def _limit_matches(value, oracle, what):
    value, oracle = np.asarray(value, np.float64), np.asarray(oracle, np.float64)
    huge = np.abs(oracle) > 1e200
    assert np.array_equal(value[huge], np.sign(oracle[huge]) * np.inf), (
        f"{what}: {value[huge]} where the limit is infinite ({oracle[huge]})")
    assert_allclose(value[~huge], oracle[~huge], rtol=1e-12, atol=1e-300,
                    err_msg=f"{what}: not the limit")


#: Where an infinite logit leaves the formula undefined (inf - inf in the softmax
#: shift, 0 * inf in BCE's and focal's terms), the sample may come out NaN instead of
#: the limit: API.md's "non-finite inputs propagate", as PyTorch does. The other
#: samples must still be exact, and where the result is not NaN it must be the limit.
PROPAGATES = {
    ("cross_entropy", "+inf-at-label"), ("cross_entropy", "+inf-other-class"),
    ("softmax_focal_loss", "+inf-at-label"), ("softmax_focal_loss", "-inf-at-label"),
    ("softmax_focal_loss", "+inf-other-class"),
    ("binary_cross_entropy_with_logits", "+inf-input"),
    ("binary_cross_entropy_with_logits", "-inf-input"),
    ("sigmoid_focal_loss", "+inf-input"), ("sigmoid_focal_loss", "-inf-input"),
}


def _outside_sample(value, sample):
    """value with the affected sample's entries (its row along axis 0) removed."""
    value = np.asarray(value)
    return np.delete(value, sample, axis=0) if value.ndim else value


@pytest.mark.parametrize("name, what, arg, index, sign", INF_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in INF_CASES])
def test_inf_gives_the_limit(name, what, arg, index, sign, backend):
    state = valid_call(name)
    args = list(state["args"])
    if name == "binary_cross_entropy_with_logits" or name == "sigmoid_focal_loss":
        args[1] = args[1].copy()
        args[1][K] = [0.0, 1.0, 0.5]  # hard targets that agree and disagree, and a soft one
        index = None
    with np.errstate(all="ignore"):
        results = {}
        for value in (np.inf, 1e300):
            a = [x.copy() for x in args]
            if index is None:
                a[arg][K] = sign * value
            else:
                a[arg][index] = sign * value
            results[value] = _run(name, a, sw=state["sw"], backend=backend)
    (loss, grads), (loss0, grads0) = results[np.inf], results[1e300]
    if (name, what) in PROPAGATES:
        sample = K if index is None else index[0]
        for v, v0, label in ((loss, loss0, "loss"), *((g, g0, "gradient")
                                                    for g, g0 in zip(grads, grads0))):
            _limit_matches(_outside_sample(v, sample), _outside_sample(v0, sample), label)
            mine, limit = np.asarray(v)[sample], np.asarray(v0)[sample]
            ok = ~np.isnan(mine)
            _limit_matches(mine[ok], limit[ok], label + " (the sample itself)")
        return
    _limit_matches(loss, loss0, "loss")
    for g, g0 in zip(grads, grads0):
        _limit_matches(g, g0, "gradient")


@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "smooth_l1_loss", "l1_loss", "pinball_loss"])
def test_inf_minus_inf_is_nan(name, backend):
    """+inf prediction against a +inf target: the difference is undefined, NaN, no crash."""
    x, t = np.array([0.5, np.inf]), np.array([0.0, np.inf])
    with np.errstate(all="ignore"):
        loss, (g,) = _run(name, [x, t], backend=backend)
    assert np.isnan(loss[1]) and np.isfinite(loss[0])


def test_triplet_inf(backend):
    """An infinitely far positive: loss +inf; an infinitely far negative: hinge 0, gradient 0."""
    a, p, n = np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 2.0)
    p[0, 0] = np.inf
    n[1, 0] = np.inf
    with np.errstate(all="ignore"):
        loss, grads = _run("triplet_margin_loss", [a, p, n], backend=backend)
    assert loss[0] == np.inf
    assert loss[1] == 0 and all(np.array_equal(g[1], [0.0, 0.0]) for g in grads)


def test_contrastive_inf(backend):
    """d = inf: a similar pair's loss is +inf, a dissimilar pair's is 0 (max(0, m - inf)^2)."""
    x1, x2 = np.zeros((2, 2)), np.array([[np.inf, 0.0], [np.inf, 0.0]])
    with np.errstate(all="ignore"):
        loss, _ = _run("contrastive_loss", [x1, x2, np.array([1.0, 0.0])], backend=backend)
    assert loss[0] == np.inf
    assert loss[1] == 0.0


def test_ctc_minus_inf_everywhere_but_blank_is_impossible(backend):
    """A frame that can only emit blank (log p = -inf elsewhere) makes a long target impossible:
    the documented inf and a zero gradient (zero_infinity: 0)."""
    state = valid_call("ctc_loss")
    x, targets, il, tl = state["args"]
    x = x.copy()
    x[: il[0], 0, 1:] = -np.inf  # sequence 0 may only emit blank: its target (1, 2) is impossible
    with np.errstate(all="ignore"):
        loss, (g,) = _run("ctc_loss", [x, targets, il, tl], backend=backend)
    assert loss[0] == np.inf and np.isfinite(loss[1])
    assert np.array_equal(g[:, 0], np.zeros_like(g[:, 0]))
    with np.errstate(all="ignore"):
        loss, _ = _run("ctc_loss", [x, targets, il, tl], {"zero_infinity": True}, backend=backend)
    assert loss[0] == 0


# --------------------------------------------------------------------------- zero strides
@pytest.mark.parametrize("name", list(REGISTRY))
def test_zero_stride_inputs_in_every_position(name, backend):
    state = valid_call(name)
    args = state["args"]
    bargs = [np.broadcast_to(a[:1], a.shape) if a.ndim and a.shape[0] > 1 else a for a in args]
    if name == "ctc_loss":  # keep lengths and targets consistent: broadcast the logits over time
        bargs = [np.broadcast_to(args[0][:1], args[0].shape), *args[1:]]
    sw = state["sw"]
    bsw = np.broadcast_to(sw.reshape(-1)[:1].reshape((1,) * sw.ndim), sw.shape)
    assert any(0 in a.strides for a in bargs if a.ndim)
    loss, grads = _run(name, bargs, sw=bsw, backend=backend)
    loss0, grads0 = _run(name, [np.array(a) for a in bargs], sw=np.array(bsw), backend=backend)
    assert np.array_equal(loss, loss0)
    for g, g0 in zip(grads, grads0):
        assert np.array_equal(g, g0) and g.flags.c_contiguous and g.flags.writeable


# --------------------------------------------------------------------------- 0-d inputs
@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if n != "pinball_loss"])
def test_zero_dimensional_elementwise(name, backend):
    """A 0-d prediction and target: one element; "none" gives a 0-d loss, grad is 0-d."""
    x, t = np.float64(0.3), np.float64(0.75)
    obj = REGISTRY[name].cls(reduction="none", backend=backend)
    loss, grad = obj.loss_grad(x, t)
    ref_loss, ref_grad = obj.loss_grad(np.array([x]), np.array([t]))
    assert np.shape(loss) == () and np.shape(grad) == ()
    assert loss == ref_loss[0] and grad == ref_grad[0]
    mean, grad = REGISTRY[name].cls(backend=backend).loss_grad(x, t, sample_weight=np.float64(2.0))
    assert mean == ref_loss[0] and np.shape(grad) == ()


ZERO_D_ERRORS = [(n, arg) for n in REGISTRY if n not in ELEMENTWISE or n == "pinball_loss"
                 for arg in [ARG_NAMES[n][0]]]


@pytest.mark.parametrize("name, arg", ZERO_D_ERRORS, ids=[c[0] for c in ZERO_D_ERRORS])
def test_zero_dimensional_input_is_a_value_error_elsewhere(name, arg, backend):
    args = list(valid_call(name)["args"])
    args[0] = np.float64(0.5)
    with pytest.raises(ValueError, match=rf"^{arg}: .*(got|shape) \(\)"):
        REGISTRY[name].cls(backend=backend).loss_grad(*args)


# --------------------------------------------------------------------------- denormals
@pytest.mark.parametrize("name", list(REGISTRY))
def test_float32_denormals_match_float64(name, backend):
    """Every float input scaled into float32's subnormal range (~1e-39): finite results,
    equal to the float64 computation on the same float32 values (rounded to float32)."""
    state = valid_call(name)
    args = list(state["args"])
    scale = np.float32(1e-39)
    floats = [i for i, a in enumerate(args)
              if a.dtype.kind == "f" and not (i == len(args) - 1 and REGISTRY[name].family == "pairwise"
                                              and name != "triplet_margin_loss")]
    for i in floats if REGISTRY[name].family != "elementwise" or name != "binary_cross_entropy_with_logits" \
            and name != "sigmoid_focal_loss" else [0]:
        args[i] = (args[i] * scale).astype(np.float32)
        assert (np.abs(args[i][args[i] != 0]) < np.finfo(np.float32).tiny).all()
    args32 = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in args]
    args64 = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in args32]
    # triplet: eps=0, else eps=1e-6 swamps the denormal differences and the gradient is a
    # cancellation of two O(1) terms (rounding noise, not a denormal result)
    opts = {"eps": 0.0} if name == "triplet_margin_loss" else {}
    for reduction in ("none", "sum"):
        loss32, g32 = _run(name, args32, opts, backend=backend, reduction=reduction)
        loss64, g64 = _run(name, args64, opts, backend=backend, reduction=reduction)
        assert np.asarray(loss32).dtype == np.float32
        assert np.isfinite(loss32).all() and all(np.isfinite(g).all() for g in g32)
        tiny = np.finfo(np.float32).smallest_subnormal
        assert_allclose(loss32, np.asarray(loss64).astype(np.float32), rtol=2e-6, atol=2 * tiny)
        for g, g0 in zip(g32, g64):
            assert_allclose(g, g0.astype(np.float32), rtol=2e-6, atol=2 * tiny)


# --------------------------------------------------------------------------- N*C > 2**31
@pytest.mark.slow
def test_cross_entropy_beyond_int32_elements():
    """float32 CE with N*C = 2**31 + 2**20 elements (8.6 GB, gradient in place with out=x):
    the rows past element 2**31 are computed like a small call on the same rows."""
    n_classes = 1024
    n = (2**31 + 2**20) // n_classes
    x = np.zeros((n, n_classes), np.float32)
    y = np.zeros(n, np.int64)
    rng = np.random.default_rng(0)
    probe = np.r_[0, 2**31 // n_classes - 1, 2**31 // n_classes, n - 2, n - 1]
    x[probe] = rng.standard_normal((len(probe), n_classes), dtype=np.float32)
    y[probe] = rng.integers(0, n_classes, len(probe))
    y[-1] = n_classes - 1  # the very last element
    ref_loss, ref_grad = fastloss.cross_entropy(x[probe], y[probe], reduction="none")
    loss, grad = fastloss.cross_entropy(x, y, reduction="none", out=x)
    assert grad is x
    assert_allclose(loss[probe], ref_loss, rtol=1e-6)
    assert_allclose(grad[probe], ref_grad, rtol=1e-6, atol=1e-9)
    others = np.setdiff1d(np.arange(n), probe)
    assert_allclose(loss[others], np.log(np.float32(n_classes)), rtol=1e-6)
    assert grad[-3, 0] == np.float32(1 / n_classes) - 1 and grad[-3, 1] == np.float32(1 / n_classes)

"""Properties every loss shares, driven by ``fastloss._registry.REGISTRY``.

Each registry row x each of its option sets x backend x dtype: dtype rules,
memory layouts, inputs never modified, ``out=``, reductions, thread
invariance, backend parity and validation. A new row is covered as soon as it
is registered, provided its family is in ``BATCH_SHAPE`` (how its batch shape
follows from the input's shape); the values themselves are checked against
the references in the per-family test files.
"""
import inspect
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastloss
from fastloss._registry import REGISTRY
from reference import REDUCTIONS, tolerance

# family -> batch shape (the shape of reduction="none" and of sample_weight) from the input's shape
BATCH_SHAPE = {
    "softmax": lambda shape: shape[:-1],
    "elementwise": lambda shape: shape,
}

SPECS = [spec for spec in REGISTRY.values() if spec.family in BATCH_SHAPE]
CASES = [(spec, opts) for spec in SPECS for opts in (spec.options or ({},))]


def _case_id(case):
    spec, opts = case
    parts = [f"{k}={'array' if isinstance(v, np.ndarray) else v}" for k, v in opts.items()]
    return "-".join([spec.name, *parts]) if parts else spec.name


CASE_IDS = [_case_id(c) for c in CASES]
SOFTMAX_CASES = [c for c in CASES if c[0].family == "softmax"]
SOFTMAX_IDS = [_case_id(c) for c in SOFTMAX_CASES]


def _fold(lead, rank):
    """``lead`` on ``rank`` axes: its first rank - 1 axes, then the product of the rest
    (padded with ones when ``lead`` is shorter)."""
    lead = tuple(lead) + (1,) * max(0, rank - len(lead))
    if rank == 0:
        return ()
    return (*lead[:rank - 1], int(np.prod(lead[rank - 1:])))


def input_shape(spec, opts, lead=(3, 4)):
    """An input shape with the batch shape ``lead`` (or as close as the loss allows).

    softmax: ``(*lead, C)``, C following a class-weight option's length (5 otherwise);
    elementwise: ``lead`` laid out on the rank of the first of ``spec.shapes`` (the
    input shapes the loss accepts), its last axis following a per-column option of
    length Q > 1 if there is one (then on the first accepted rank >= 2). Pinball
    (``shapes=((7,), (6, 1))``): (N,) with a scalar quantile, (N, Q) with Q quantiles.
    """
    if spec.family == "softmax":
        weight = opts.get("weight")
        n_classes = 5 if weight is None else len(weight)
        return (*lead, n_classes)
    columns = [np.size(v) for v in opts.values() if np.ndim(v) == 1 and np.size(v) > 1]
    if columns:  # the per-column option replaces the last axis of lead
        rank = next(len(s) for s in spec.shapes if len(s) >= 2)
        rows = tuple(lead[:-1]) if len(lead) >= 2 else tuple(lead)
        return (*_fold(rows, rank - 1), columns[0])
    return _fold(lead, len(spec.shapes[0]))


def make(spec, opts, rng, dtype, lead=(3, 4)):
    shape = input_shape(spec, opts, lead)
    x, t = spec.make_data(rng, shape, dtype)
    sw = rng.uniform(0.2, 2.0, BATCH_SHAPE[spec.family](shape))
    return x, t, sw


def run_all(spec, opts, x, t, sw=None, backend=None, reduction="mean"):
    """(loss, grad, hess) from a fresh object (hess None where the loss has none)."""
    obj = spec.cls(**opts, reduction=reduction, backend=backend)
    loss, grad = obj.loss_grad(x, t, sample_weight=sw)
    hess = obj.grad_hess(x, t, sample_weight=sw)[1] if spec.has_hess else None
    return loss, grad, hess


def assert_same_results(a, b):
    for u, v in zip(a, b):
        if u is None or v is None:
            assert u is None and v is None
            continue
        assert np.asarray(u).dtype == np.asarray(v).dtype
        assert_array_equal(u, v)


# --------------------------------------------------------------------------- dtypes
def _convert(x, kind):
    if kind == "bool":
        return x > 0
    if kind in ("int64", "int32", "uint8"):
        return np.clip(np.round(3 * x), 0 if kind == "uint8" else -100, 100).astype(kind)
    return x.astype(kind)


@pytest.mark.parametrize("kind", ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_dtype_rules(case, backend, rng, kind):
    """float32 computes and returns float32; every other real dtype float64; the values
    are those of the same numbers given as the compute dtype."""
    spec, opts = case
    x, t, sw = make(spec, opts, rng, np.float64)
    xk = _convert(x, kind)
    compute = np.float32 if kind == "float32" else np.float64
    batch = BATCH_SHAPE[spec.family](x.shape)
    for reduction in REDUCTIONS:
        got = run_all(spec, opts, xk, t, sw, backend, reduction)
        loss, grad, hess = got
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.shape == batch
        else:
            assert isinstance(loss, np.floating), type(loss)
        assert loss.dtype == compute
        assert grad.shape == x.shape and grad.dtype == compute
        if hess is not None:
            assert hess.shape == x.shape and hess.dtype == compute
        expected = run_all(spec, opts, xk.astype(compute), t, sw, backend, reduction)
        assert_same_results(got, expected)


@pytest.mark.parametrize("kind", ["complex", "object", "string"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_unsupported_input_dtype_is_a_type_error(case, backend, rng, kind):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    bad = {"complex": x.astype(np.complex128), "object": x.astype(object),
           "string": x.astype(str)}[kind]
    with pytest.raises(TypeError, match="input"):
        spec.cls(**opts, backend=backend).loss_grad(bad, t)
    with pytest.raises(TypeError, match="input"):
        spec.func(bad, t, **opts, backend=backend)
    with pytest.raises(TypeError, match="input"):
        spec.cls(**opts, backend=backend).loss(bad, t)


# --------------------------------------------------------------------------- layouts
def _non_contiguous(a):
    """The same values in a strided view (every other element of a larger array)."""
    a = np.asarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else np.zeros(2, a.dtype)
    view = big[..., ::2] if a.ndim else big[0]
    view[...] = a
    assert a.ndim == 0 or not view.flags.c_contiguous
    return view


def _fortran(a):
    return np.asfortranarray(a)


def _read_only(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("layout", ["strided", "fortran", "read-only"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_layouts_give_the_same_results(case, backend, dtype, rng, layout):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    change = {"strided": _non_contiguous, "fortran": _fortran, "read-only": _read_only}[layout]
    for reduction in REDUCTIONS:
        expected = run_all(spec, opts, x, t, sw, backend, reduction)
        assert_same_results(run_all(spec, opts, change(x), t, sw, backend, reduction), expected)
        assert_same_results(run_all(spec, opts, x, change(t), sw, backend, reduction), expected)
        assert_same_results(run_all(spec, opts, x, t, change(sw), backend, reduction), expected)
        assert_same_results(
            run_all(spec, opts, change(x), change(t), change(sw), backend, reduction), expected)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_broadcast_inputs(case, backend, dtype, rng):
    """Zero-stride (np.broadcast_to, read-only) inputs equal their materialised copies."""
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)

    def first_row_everywhere(a):
        return np.broadcast_to(np.asarray(a)[:1], np.shape(a))

    xb, tb, swb = first_row_everywhere(x), first_row_everywhere(t), first_row_everywhere(sw)
    assert xb.strides[0] == 0
    for reduction in REDUCTIONS:
        got = run_all(spec, opts, xb, tb, swb, backend, reduction)
        expected = run_all(spec, opts, xb.copy(), tb.copy(), swb.copy(), backend, reduction)
        assert_same_results(got, expected)
    if x.ndim >= 2:  # a zero stride along the last axis too
        col = np.broadcast_to(x[..., :1], x.shape)
        assert_same_results(run_all(spec, opts, col, t, sw, backend),
                            run_all(spec, opts, col.copy(), t, sw, backend))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inputs_are_never_modified(case, backend, dtype, rng):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    originals = [np.copy(a) for a in (x, t, sw)]
    opt_arrays = {k: np.copy(v) for k, v in opts.items() if isinstance(v, np.ndarray)}
    for reduction in REDUCTIONS:
        obj = spec.cls(**opts, reduction=reduction, backend=backend)
        obj.loss(x, t, sample_weight=sw)
        obj.loss_grad(x, t, sample_weight=sw)
        obj(x, t, sample_weight=sw)
        if spec.has_hess:
            obj.grad_hess(x, t, sample_weight=sw)
        spec.func(x, t, **opts, reduction=reduction, sample_weight=sw, backend=backend)
    for a, b in zip((x, t, sw), originals):
        assert_array_equal(a, b)
        assert a.dtype == b.dtype
    for k, v in opt_arrays.items():
        assert_array_equal(opts[k], v)


# --------------------------------------------------------------------------- out=
@pytest.mark.parametrize("form", ["class", "call", "function"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_out_is_filled_and_returned(case, backend, dtype, rng, form):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    expected_loss, expected_grad, _ = run_all(spec, opts, x, t, sw, backend)
    out = np.full(x.shape, 7.0, dtype)
    obj = spec.cls(**opts, backend=backend)
    if form == "class":
        loss, grad = obj.loss_grad(x, t, sample_weight=sw, out=out)
    elif form == "call":
        loss, grad = obj(x, t, sample_weight=sw, out=out)
    else:
        loss, grad = spec.func(x, t, **opts, sample_weight=sw, out=out, backend=backend)
    assert grad is out
    assert np.shares_memory(grad, out)
    assert_array_equal(out, expected_grad)
    assert_array_equal(loss, expected_loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_out_may_be_the_input(case, backend, dtype, rng, reduction):
    """out=input: the gradient overwrites the logits, same values as a fresh call."""
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    expected_loss, expected_grad, _ = run_all(spec, opts, x, t, sw, backend, reduction)
    buf = x.copy()
    loss, grad = spec.cls(**opts, reduction=reduction, backend=backend).loss_grad(
        buf, t, sample_weight=sw, out=buf)
    assert grad is buf
    assert_array_equal(grad, expected_grad)
    assert_array_equal(loss, expected_loss)
    buf = x.copy()
    loss, grad = spec.func(buf, t, **opts, reduction=reduction, sample_weight=sw, out=buf,
                           backend=backend)
    assert grad is buf
    assert_array_equal(grad, expected_grad)
    assert_array_equal(loss, expected_loss)


def _bad_outs(shape, dtype):
    other = np.float64 if dtype == np.float32 else np.float32
    read_only = np.zeros(shape, dtype)
    read_only.setflags(write=False)
    return {
        "shape-more-rows": np.zeros((shape[0] + 1,) + shape[1:], dtype),
        # the right size in another shape ((N,) -> (N, 1))
        "shape-flat": np.zeros((int(np.prod(shape)),) if len(shape) > 1 else shape + (1,), dtype),
        "dtype": np.zeros(shape, other),
        "dtype-int": np.zeros(shape, np.int64),
        "strided": np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2],
        # F order; a 1-D array is contiguous either way, so a reversed view there
        "fortran": (np.asfortranarray(np.zeros(shape, dtype)) if len(shape) > 1
                    else np.zeros(shape, dtype)[::-1]),
        "read-only": read_only,
        "list": np.zeros(shape, dtype).tolist(),
    }


@pytest.mark.parametrize("which", list(_bad_outs((2, 3), np.float32)))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_out_is_a_value_error_and_left_untouched(case, backend, dtype, rng, which):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    out = _bad_outs(x.shape, dtype)[which]
    if isinstance(out, np.ndarray):
        if out.flags.writeable:
            out[...] = 7
        before = out.copy()
    with pytest.raises(ValueError, match="out"):
        spec.cls(**opts, backend=backend).loss_grad(x, t, sample_weight=sw, out=out)
    with pytest.raises(ValueError, match="out"):
        spec.func(x, t, **opts, sample_weight=sw, out=out, backend=backend)
    if isinstance(out, np.ndarray):
        assert_array_equal(out, before)


# --------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reductions(case, backend, dtype, rng):
    """"none" is the batch-shaped per-sample loss; "sum" its sum; "mean" the sum divided
    by the sum of the effective weights (checked on hard labels against their definition);
    gradients follow the same reduction."""
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    none_loss, none_grad, _ = run_all(spec, opts, x, t, sw, backend, "none")
    sum_loss, sum_grad, _ = run_all(spec, opts, x, t, sw, backend, "sum")
    mean_loss, mean_grad, _ = run_all(spec, opts, x, t, sw, backend, "mean")
    tol = tolerance(dtype)
    assert none_loss.shape == BATCH_SHAPE[spec.family](x.shape)
    assert_allclose(sum_loss, np.sum(none_loss, dtype=np.float64), **tol)
    assert_allclose(sum_grad, none_grad, **tol)
    if spec.family == "softmax" and np.shape(t) == x.shape[:-1]:
        w = opts.get("weight")
        w = np.ones(x.shape[-1]) if w is None else np.asarray(w, np.float64)
        keep = np.asarray(t) != opts.get("ignore_index", -100)
        d = np.sum(sw[keep] * w[np.asarray(t)[keep]])
        assert_allclose(mean_loss, sum_loss / d, **tol)
        assert_allclose(mean_grad, sum_grad / d, **tol)


@pytest.mark.parametrize("bad", ["avg", "MEAN", "", None, 1])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_unknown_reduction(case, backend, rng, bad):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    with pytest.raises(ValueError, match="reduction"):
        spec.cls(**opts, reduction=bad, backend=backend).loss_grad(x, t)
    with pytest.raises(ValueError, match="reduction"):
        spec.func(x, t, **opts, reduction=bad, backend=backend)


# --------------------------------------------------------------------------- engine invariants
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_results_do_not_depend_on_the_number_of_threads(case, backend, dtype, rng,
                                                        monkeypatch):
    spec, opts = case
    # Small inputs run on one thread whatever is asked; make two really run.
    monkeypatch.setattr(fastloss._backend, "MIN_WORK_PER_THREAD", 1)
    x, t, sw = make(spec, opts, rng, dtype, lead=(64, 129))  # 8256 rows: several chunks per thread
    for reduction in REDUCTIONS:
        with fastloss.num_threads(1):
            one = run_all(spec, opts, x, t, sw, backend, reduction)
            one_plain = run_all(spec, opts, x, t, None, backend, reduction)
        with fastloss.num_threads(2):
            two = run_all(spec, opts, x, t, sw, backend, reduction)
            two_plain = run_all(spec, opts, x, t, None, backend, reduction)
        assert_same_results(one, two)
        assert_same_results(one_plain, two_plain)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backends_agree(case, dtype, rng):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    tol = tolerance(dtype)
    for reduction in REDUCTIONS:
        for weights in (None, sw):
            a = run_all(spec, opts, x, t, weights, "cython", reduction)
            b = run_all(spec, opts, x, t, weights, "numba", reduction)
            for u, v in zip(a, b):
                if u is None:
                    continue
                assert np.asarray(u).dtype == np.asarray(v).dtype
                assert_allclose(u, v, **tol)
            assert_allclose(spec.cls(**opts, reduction=reduction, backend="cython").loss(x, t),
                            spec.cls(**opts, reduction=reduction, backend="numba").loss(x, t),
                            **tol)


# --------------------------------------------------------------------------- validation
def _bad_label_cases(spec, opts, n_classes):
    ignore_index = opts.get("ignore_index", -100)
    cases = [n_classes, n_classes + 7, 2**40, np.iinfo(np.int64).max, np.iinfo(np.int64).min]
    cases += [v for v in (-1, -2, -101) if v != ignore_index]
    return cases


def _sentinel_out(shape, dtype):
    out = np.full(shape, 7.0, dtype)
    return out, out.copy()


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=SOFTMAX_IDS)
def test_bad_labels(case, backend, dtype, rng):
    """A label outside [0, C) other than ignore_index: ValueError naming "target", the first
    bad position (as a tuple) and its value; nothing is written to out=."""
    spec, opts = case
    x, t, sw = make(spec, opts, rng, dtype)
    n_classes = x.shape[-1]
    t = np.array(t, dtype=np.int64)
    for value in _bad_label_cases(spec, opts, n_classes):
        bad = t.copy()
        bad[2, 1] = value
        bad[2, 3] = value  # a later bad position: the message must name the first one
        out, before = _sentinel_out(x.shape, dtype)
        with pytest.raises(ValueError, match="target") as info:
            spec.cls(**opts, backend=backend).loss_grad(x, bad, sample_weight=sw, out=out)
        message = str(info.value)
        assert re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d.])", message), message
        assert "(2, 1)" in message, message
        assert_array_equal(out, before)
        with pytest.raises(ValueError, match="target"):
            spec.func(x, bad, **opts, sample_weight=sw, out=out, backend=backend)
        assert_array_equal(out, before)
        with pytest.raises(ValueError, match="target"):
            spec.cls(**opts, backend=backend).loss(x, bad)
        if spec.has_hess:
            with pytest.raises(ValueError, match="target"):
                spec.cls(**opts, backend=backend).grad_hess(x, bad)


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=SOFTMAX_IDS)
def test_bad_label_position_in_one_dimensional_batch(case, backend, rng):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64, lead=(6,))
    t = np.array(t, dtype=np.int64)
    t[3] = x.shape[-1]
    with pytest.raises(ValueError, match="target") as info:
        spec.func(x, t, **opts, backend=backend)
    assert "(3,)" in str(info.value), str(info.value)


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=SOFTMAX_IDS)
def test_bad_unsigned_labels(case, backend, rng):
    """Labels beyond int64 (uint64): still a clean ValueError with the exact value, no
    conversion warning on the way."""
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    for value in (np.iinfo(np.uint64).max, 2**63, x.shape[-1]):
        bad = np.array(t, dtype=np.uint64)
        bad[1, 2] = value
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="target") as info:
                spec.func(x, bad, **opts, backend=backend)
        assert str(value) in str(info.value) and "(1, 2)" in str(info.value), str(info.value)


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=SOFTMAX_IDS)
def test_negative_ignore_index_is_not_a_bad_label(case, backend, rng):
    spec, opts = case
    opts = {**opts, "ignore_index": -1}
    x, t, _ = make(spec, opts, rng, np.float64)
    t = np.array(t, dtype=np.int64)
    t[0] = -1
    loss, grad = spec.func(x, t, **opts, reduction="none", backend=backend)
    assert np.all(loss[0] == 0) and np.all(grad[0] == 0)
    assert np.all(np.isfinite(loss))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_target_shape_mismatch(case, backend, rng):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    out, before = _sentinel_out(x.shape, np.float64)
    for bad in (np.asarray(t)[:-1], np.asarray(t)[..., None][..., [0, 0]].reshape(-1)):
        with pytest.raises(ValueError, match="target"):
            spec.cls(**opts, backend=backend).loss_grad(x, bad, out=out)
        with pytest.raises(ValueError, match="target"):
            spec.func(x, bad, **opts, backend=backend)
    assert_array_equal(out, before)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sample_weight_of_wrong_shape(case, backend, rng):
    spec, opts = case
    x, t, sw = make(spec, opts, rng, np.float64)
    batch = sw.shape
    n = batch[0]
    wrong = [np.ones((n + 1,) + batch[1:]), np.ones(batch + (1,)), np.ones((1,) + batch),
             np.ones(())]
    if len(batch) >= 2:
        wrong += [np.ones(batch[::-1]), np.ones(int(np.prod(batch)))]
        if spec.family != "elementwise":  # elementwise losses also take (N,)
            wrong.append(np.ones(n))
    for bad in wrong:
        out, before = _sentinel_out(x.shape, np.float64)
        with pytest.raises(ValueError, match="sample_weight"):
            spec.cls(**opts, backend=backend).loss_grad(x, t, sample_weight=bad, out=out)
        with pytest.raises(ValueError, match="sample_weight"):
            spec.func(x, t, **opts, sample_weight=bad, backend=backend)
        assert_array_equal(out, before)


def _takes_class_weight(spec):
    return spec.family == "softmax" and "weight" in inspect.signature(spec.cls).parameters


@pytest.mark.parametrize("case", [c for c in SOFTMAX_CASES if _takes_class_weight(c[0])],
                         ids=[i for c, i in zip(SOFTMAX_CASES, SOFTMAX_IDS) if _takes_class_weight(c[0])])
def test_class_weight_of_wrong_length(case, backend, rng):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    n_classes = x.shape[-1]
    for bad in (np.ones(n_classes - 1), np.ones(n_classes + 1), np.ones((1, n_classes))):
        opts_bad = {**opts, "weight": bad}
        with pytest.raises(ValueError, match="weight"):
            spec.cls(**opts_bad, backend=backend).loss_grad(x, t)
        with pytest.raises(ValueError, match="weight"):
            spec.func(x, t, **opts_bad, backend=backend)


# name -> (option, invalid values, valid boundary values)
INVALID_OPTIONS = {
    "cross_entropy": [("label_smoothing", [-0.1, 1.5, float("nan")], [0.0, 1.0])],
    "softmax_focal_loss": [("gamma", [-0.5, -1e-9, float("nan")], [0.0])],
}
OPTION_CASES = [(REGISTRY[name], option, bad, good)
                for name, rows in INVALID_OPTIONS.items() if name in REGISTRY
                for option, bad, good in rows]


@pytest.mark.parametrize("spec, option, bad_values, good_values", OPTION_CASES,
                         ids=[f"{s.name}-{o}" for s, o, _, _ in OPTION_CASES])
def test_option_out_of_range(spec, option, bad_values, good_values, backend, rng):
    x, t, _ = make(spec, {}, rng, np.float64)
    for bad in bad_values:
        with pytest.raises(ValueError, match=option):
            spec.cls(**{option: bad}, backend=backend).loss_grad(x, t)
        with pytest.raises(ValueError, match=option):
            spec.func(x, t, **{option: bad}, backend=backend)
    for good in good_values:
        loss, grad = spec.func(x, t, **{option: good}, backend=backend)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_unknown_backend_option(case, rng):
    spec, opts = case
    x, t, _ = make(spec, opts, rng, np.float64)
    with pytest.raises(ValueError, match="backend"):
        spec.cls(**opts, backend="fortran").loss_grad(x, t)
    with pytest.raises(ValueError, match="backend"):
        spec.func(x, t, **opts, backend="fortran")

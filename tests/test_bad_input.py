"""The bad-input catalogue: every malformed input for every registry loss.

One table, ``CATALOGUE``, generated from ``fastloss._registry.REGISTRY``: each
row is a :class:`Case` -- a loss, a description, a function that turns a valid
call (positional arrays, options, ``sample_weight``, ``out=``) into the bad
one, the documented exception type and a regex the message must match (the
argument's name and, where the culprit is a value or a position, that value
and position). Every loss gets the cases that apply to its family: label
cases for the softmax losses and CTC, length cases for CTC, the +-1 target for
margin ranking, and so on.

For every case and both backends, ``test_catalogue`` checks

- the exception type and message, through the class (``loss_grad`` and
  ``loss``, where ``out=`` is not involved) and through the function;
- that every array passed in (inputs, targets, lengths, weights, options) is
  unchanged afterwards (bitwise, NaN included), and
- that ``out=`` (pre-filled with a sentinel) is unchanged: nothing is written
  after a validation error.

``N_CASES`` is the size of the catalogue. The API's other edge of validation,
an empty batch (valid: a mean of 0.0 and a zero gradient) and C = 0 (a
``ValueError`` for the class-axis losses), is tested at the end.
"""
import copy
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from fastloss._registry import REGISTRY

INT64_MAX = np.iinfo(np.int64).max

# --------------------------------------------------------------------------- valid calls
# Per family: the names of the positional arrays, in order (the first is the input).
ARG_NAMES = {
    "cross_entropy": ("input", "target"),
    "softmax_focal_loss": ("input", "target"),
    "ctc_loss": ("input", "targets", "input_lengths", "target_lengths"),
    "triplet_margin_loss": ("anchor", "positive", "negative"),
    "margin_ranking_loss": ("x1", "x2", "target"),
    "contrastive_loss": ("x1", "x2", "target"),
}
for _name, _spec in REGISTRY.items():
    if _spec.family == "elementwise":
        ARG_NAMES[_name] = ("input", "target")

N = 4  # batch size of every valid call
C = 3  # classes (softmax), columns (elementwise)
T, S, C_CTC = 6, 2, 4  # CTC: frames, padded target length, classes


def _n_grads(name):
    """How many gradients loss_grad returns (the pairwise losses: one per input)."""
    if REGISTRY[name].family == "pairwise":
        return len(ARG_NAMES[name]) - (name != "triplet_margin_loss")
    return 1


def valid_call(name):
    """A valid call of loss ``name``: dict(args=[...], opts={}, sw=..., out=...), float64."""
    rng = np.random.default_rng(7)
    family = REGISTRY[name].family
    if family == "softmax":
        args = [rng.standard_normal((N, C)), np.array([0, 2, 1, 2])]
        sw = rng.uniform(0.5, 2.0, N)
    elif name == "pinball_loss":
        args = [rng.standard_normal(N), rng.standard_normal(N)]
        sw = rng.uniform(0.5, 2.0, N)
    elif family == "elementwise":
        x = rng.standard_normal((N, C))
        t = rng.random((N, C)) if "cross_entropy" in name or "focal" in name else rng.standard_normal((N, C))
        args = [x, t]
        sw = rng.uniform(0.5, 2.0, (N, C))
    elif family == "ctc":
        x = rng.standard_normal((T, 2, C_CTC))
        args = [x, np.array([[1, 2], [3, 1]]), np.array([T, T - 1]), np.array([2, 1])]
        sw = np.array([1.0, 0.5])
    elif name == "triplet_margin_loss":
        a = rng.standard_normal((N, C))
        args = [a, a + 0.5 * rng.standard_normal((N, C)), a + rng.standard_normal((N, C))]
        sw = rng.uniform(0.5, 2.0, N)
    elif name == "margin_ranking_loss":
        args = [rng.standard_normal(N), rng.standard_normal(N), np.array([1.0, -1.0, 1.0, -1.0])]
        sw = rng.uniform(0.5, 2.0, N)
    elif name == "contrastive_loss":
        x1 = rng.standard_normal((N, C))
        args = [x1, x1 + rng.standard_normal((N, C)), np.array([1.0, 0.0, 0.5, 1.0])]
        sw = rng.uniform(0.5, 2.0, N)
    else:  # pragma: no cover - a new family must be added here
        raise AssertionError(f"no valid call for {name}")
    return dict(args=args, opts={}, sw=sw, out=_fresh_out(name, args[0]))


SENTINEL = 7.25


def _fresh_out(name, x, dtype=None):
    dtype = x.dtype if dtype is None else dtype
    bufs = [np.full(x.shape, SENTINEL, dtype) for _ in range(_n_grads(name))]
    return bufs[0] if _n_grads(name) == 1 else tuple(bufs)


def call(name, state, backend, *, form="loss_grad"):
    spec = REGISTRY[name]
    args, opts, sw, out = state["args"], state["opts"], state["sw"], state["out"]
    if form == "function":
        return spec.func(*args, **opts, sample_weight=sw, out=out, backend=backend)
    obj = spec.cls(**opts, backend=backend)
    if form == "loss":
        return obj.loss(*args, sample_weight=sw)
    return obj.loss_grad(*args, sample_weight=sw, out=out)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_the_valid_calls_are_valid(name, backend):
    """The base of every case: without the mutation, the call succeeds."""
    state = valid_call(name)
    loss, grad = call(name, state, backend)
    assert np.isfinite(loss)
    grads = grad if isinstance(grad, tuple) else (grad,)
    outs = state["out"] if isinstance(state["out"], tuple) else (state["out"],)
    assert all(g is o for g, o in zip(grads, outs))


# --------------------------------------------------------------------------- the catalogue
@dataclass
class Case:
    loss: str
    what: str
    mutate: Callable  # mutate(state) -> None, in place on a deep copy of valid_call(loss)
    exc: type
    match: str  # re.search'd in the message
    involves_out: bool = False

    @property
    def id(self):
        return f"{self.loss}-{self.what}"


def _set_arg(i, value):
    def mutate(state):
        state["args"][i] = value(state["args"][i]) if callable(value) else value
    return mutate


def _set_opt(**opts):
    def mutate(state):
        state["opts"].update(opts)
    return mutate


def _set_sw(value):
    def mutate(state):
        state["sw"] = value(state["sw"]) if callable(value) else value
    return mutate


def _set_out(value):
    def mutate(state):
        state["out"] = value(state["out"])
    return mutate


def _with(a, index, value, dtype=None):
    a = np.array(a, dtype=dtype)
    a[index] = value
    return a


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _strided(a):
    big = np.full(a.shape[:-1] + (2 * a.shape[-1],), SENTINEL, a.dtype)
    return big[..., ::2]


def _bad_dtypes(a):
    """Complex, object and string versions of an array (same shape)."""
    return {
        "complex": a.astype(np.complex128),
        "object": a.astype(object),
        "string": a.astype(str),
    }


def _one_more_row(a):
    return np.concatenate([a, a[:1]], axis=0)


def _common_cases(name):
    """Cases every loss has: shapes, dtypes, sample_weight, reduction, out=."""
    names = ARG_NAMES[name]
    state = valid_call(name)
    cases = []
    add = lambda what, mutate, exc, match, **kw: cases.append(  # noqa: E731
        Case(name, what, mutate, exc, match, **kw))

    # complex / object / string dtypes in every array position: TypeError naming it
    for i, arg in enumerate(names):
        for kind, bad in _bad_dtypes(state["args"][i]).items():
            add(f"{arg}-{kind}-dtype", _set_arg(i, bad), TypeError,
                rf"^{re.escape(arg)}: {kind} dtype is not supported")
    for kind, bad in _bad_dtypes(state["sw"]).items():
        add(f"sample_weight-{kind}-dtype", _set_sw(bad), TypeError,
            rf"^sample_weight: {kind} dtype is not supported")

    # wrong batch size of every secondary array (one more row)
    for i, arg in enumerate(names[1:], start=1):
        add(f"{arg}-batch-size", _set_arg(i, _one_more_row), ValueError,
            rf"^{re.escape(arg)}: .*(shape|rows).*\b{state['args'][i].shape[0] + 1}\b")
    add("sample_weight-batch-size", _set_sw(_one_more_row), ValueError,
        rf"^sample_weight: expected shape .*got \({state['sw'].shape[0] + 1},")
    add("sample_weight-extra-axis", _set_sw(lambda w: w[..., None]), ValueError,
        r"^sample_weight: expected shape")

    # unknown reduction
    for bad in ("avg", "MEAN", None):
        add(f"reduction={bad!r}", _set_opt(reduction=bad), ValueError,
            rf"^reduction: must be one of .*got {re.escape(repr(bad))}")

    # out= of the wrong shape, dtype or layout, or read-only; sentinel-filled
    def each_out(fn):
        if _n_grads(name) == 1:
            return _set_out(fn)
        return _set_out(lambda out: tuple(fn(o) if i == 1 else o for i, o in enumerate(out)))

    where = "out" if _n_grads(name) == 1 else r"out\[1\]"
    x = state["args"][0]
    outs = {
        "out-more-rows": lambda o: np.full((o.shape[0] + 1,) + o.shape[1:], SENTINEL),
        "out-flat": lambda o: np.full((o.size,) if o.ndim > 1 else o.shape + (1,), SENTINEL),
        "out-float32": lambda o: o.astype(np.float32),
        "out-int64": lambda o: np.zeros(o.shape, np.int64),
        "out-read-only": _read_only,
    }
    if x.ndim > 1:
        outs["out-strided"] = _strided
        outs["out-fortran"] = np.asfortranarray
    else:
        outs["out-reversed"] = lambda o: o[::-1]
    for what, fn in outs.items():
        add(what, each_out(fn), ValueError,
            rf"^{where}: must be a C-contiguous writeable float64 array of shape "
            rf"{re.escape(str(x.shape))}", involves_out=True)
    add("out-list", each_out(lambda o: o.tolist()), ValueError, rf"^{where}: .*got list",
        involves_out=True)
    if _n_grads(name) > 1:
        k = _n_grads(name)
        add("out-not-a-tuple", _set_out(lambda out: out[0]), ValueError,
            rf"^out: must be a tuple of {k} arrays", involves_out=True)
        add("out-too-short", _set_out(lambda out: out[:-1]), ValueError,
            rf"^out: must be a tuple of {k} arrays .*got {k - 1} arrays", involves_out=True)
        add("out-same-array-twice", _set_out(lambda out: (out[0],) * k), ValueError,
            r"^out: out\[0\] and out\[1\] overlap", involves_out=True)
    return cases


def _label_cases(name, i_target, arg, n_classes, ignore_text):
    """Integer labels: out of range, -1, huge, int64 max, fractional, NaN. Position (2,)."""
    base = valid_call(name)["args"][i_target]
    pos = (2,) if base.ndim == 1 else (1, 0)  # CTC: padded targets (N, S), a used label
    pos_text = re.escape(str(pos))
    cases = []
    for what, value in [("label=C", n_classes), ("label=-1", -1), ("label=huge", 10**12),
                        ("label=int64-max", INT64_MAX), ("label=int64-min", np.iinfo(np.int64).min)]:
        cases.append(Case(name, what, _set_arg(i_target, _with(base, pos, value, np.int64)),
                          ValueError,
                          rf"^{arg}: label {value} at index {pos_text} is outside "
                          rf"\[0, {n_classes}\){ignore_text}"))
    cases.append(Case(name, "label=uint64-max",
                      _set_arg(i_target, _with(base, pos, np.iinfo(np.uint64).max, np.uint64)),
                      ValueError, rf"^{arg}: label {np.iinfo(np.uint64).max} at index {pos_text}"))
    cases.append(Case(name, "label=float-out-of-range",
                      _set_arg(i_target, _with(base, pos, float(n_classes), np.float64)),
                      ValueError, rf"^{arg}: label {float(n_classes)} at index {pos_text}"))
    cases.append(Case(name, "label=1e300", _set_arg(i_target, _with(base, pos, 1e300, np.float64)),
                      ValueError, rf"^{arg}: label 1e\+300 at index {pos_text}"))
    for what, value, text in [("label=1.5", 1.5, r"1\.5"), ("label=nan", np.nan, "nan"),
                              ("label=inf", np.inf, "inf")]:
        cases.append(Case(name, what, _set_arg(i_target, _with(base, pos, value, np.float64)),
                          ValueError,
                          rf"^{arg}: class labels must be integers, got {text} at index {pos_text}"))
    return cases


def _softmax_cases(name):
    cases = _label_cases(name, 1, "target", C, r" and is not ignore_index=-100")
    add = lambda *a, **kw: cases.append(Case(name, *a, **kw))  # noqa: E731
    # -1 is a bad label unless it is ignore_index; with ignore_index=-1, -2 still is
    add("label=-2-ignore_index=-1",
        lambda s: (s["opts"].update(ignore_index=-1), s["args"].__setitem__(1, np.array([0, 1, -2, -1]))),
        ValueError, r"^target: label -2 at index \(2,\) is outside \[0, 3\) and is not ignore_index=-1")
    add("target-2d-wrong-shape", _set_arg(1, np.zeros((N, 2), np.int64)), ValueError,
        r"^target: expected shape \(4,\)")
    add("C=0", _set_arg(0, np.zeros((N, 0))), ValueError,
        r"^input: logits need a class axis of length >= 1, got shape \(4, 0\)")
    add("weight-too-short", _set_opt(weight=np.ones(C - 1)), ValueError,
        r"^weight: expected shape \(3,\), got \(2,\)")
    add("weight-too-long", _set_opt(weight=np.ones(C + 1)), ValueError,
        r"^weight: expected shape \(3,\), got \(4,\)")
    add("weight-2d", _set_opt(weight=np.ones((1, C))), ValueError, r"^weight: must be 1-D")
    add("weight-complex", _set_opt(weight=np.ones(C, complex)), TypeError,
        r"^weight: complex dtype")
    add("ignore_index=1.5", _set_opt(ignore_index=1.5), TypeError,
        r"^ignore_index: must be an integer, got 1\.5")
    if name == "cross_entropy":
        for v in (-0.1, 1.5, float("nan")):
            add(f"label_smoothing={v}", _set_opt(label_smoothing=v), ValueError,
                rf"^label_smoothing: must be in \[0\.0, 1\.0\], got {v}")
        add("label_smoothing='0.1'", _set_opt(label_smoothing="0.1"), TypeError,
            r"^label_smoothing: must be a real number")
        # probability targets of the input's shape, but complex
        add("probability-target-complex", _set_arg(1, np.full((N, C), 1 / C, complex)), TypeError,
            r"^target: complex dtype")
    else:
        for v in (-0.5, -1e-12, float("nan")):
            add(f"gamma={v}", _set_opt(gamma=v), ValueError,
                rf"^gamma: must be in \[0\.0, inf\], got {v}")
    return cases


def _elementwise_cases(name):
    cases = []
    add = lambda *a, **kw: cases.append(Case(name, *a, **kw))  # noqa: E731
    if name == "pinball_loss":
        add("input-3d", _set_arg(0, np.zeros((N, 2, 2))), ValueError,
            r"^input: expected shape \(N,\) or \(N, Q\), got \(4, 2, 2\)")
        for v in (0.0, 1.0, -0.1, 1.5, float("nan")):
            add(f"quantile={v}", _set_opt(quantile=v), ValueError,
                rf"^quantile: every quantile must be in \(0, 1\), got {v}")
        add("quantile-one-of-two-bad", _set_opt(quantile=[0.5, 1.0]), ValueError,
            r"^quantile: every quantile must be in \(0, 1\), got \[0\.5, 1\.0\]")
        add("quantile-empty", _set_opt(quantile=[]), ValueError, r"^quantile: every quantile")
        add("quantile-2d", _set_opt(quantile=[[0.5]]), ValueError,
            r"^quantile: must be a scalar or 1-D")
        add("quantile-Q-mismatch",
            lambda s: (s["opts"].update(quantile=[0.1, 0.5, 0.9]),
                       s["args"].__setitem__(0, np.zeros((N, 2))),
                       s.__setitem__("out", np.full((N, 2), SENTINEL)),
                       s.__setitem__("sw", None)),
            ValueError, r"^quantile: 3 quantiles need an input of shape \(N, 3\), got \(4, 2\)")
        add("quantile-complex", _set_opt(quantile=0.5 + 0j), TypeError, r"^quantile: complex")
        add("target-of-input-shape-2d",
            lambda s: (s["args"].__setitem__(0, np.zeros((N, 2))),
                       s["args"].__setitem__(1, np.zeros((N, 2))),
                       s.__setitem__("out", np.full((N, 2), SENTINEL)), s.__setitem__("sw", None)),
            ValueError, r"^target: expected shape \(4,\), got \(4, 2\)")
        return cases
    add("target-transposed", _set_arg(1, lambda t: t.T.copy()), ValueError,
        r"^target: expected shape \(4, 3\), got \(3, 4\)")
    add("target-1d", _set_arg(1, lambda t: t[:, 0].copy()), ValueError,
        r"^target: expected shape \(4, 3\), got \(4,\)")
    add("sample_weight-columns-only", _set_sw(np.ones(C)), ValueError,
        r"^sample_weight: expected shape \(4, 3\) or \(4,\), got \(3,\)")
    if name == "binary_cross_entropy_with_logits":
        add("weight-not-broadcastable", _set_opt(weight=np.ones(2)), ValueError,
            r"^weight: shape \(2,\) does not broadcast to the input's shape \(4, 3\)")
        add("pos_weight-not-broadcastable", _set_opt(pos_weight=np.ones(C + 1)), ValueError,
            r"^pos_weight: shape \(4,\) does not broadcast to the input's shape \(4, 3\)")
        add("weight-complex", _set_opt(weight=np.ones(C, complex)), TypeError, r"^weight: complex")
        add("pos_weight-string", _set_opt(pos_weight=np.array(["1"] * C)), TypeError,
            r"^pos_weight: string")
    elif name == "sigmoid_focal_loss":
        for v in (-0.5, float("nan")):
            add(f"gamma={v}", _set_opt(gamma=v), ValueError,
                rf"^gamma: must be in \[0\.0, inf\], got {v}")
        for v in (1.5, float("nan")):
            add(f"alpha={v}", _set_opt(alpha=v), ValueError,
                rf"^alpha: must be in \[-inf, 1\.0\], got {v}")
    elif name == "huber_loss":
        for v in (0.0, -1.0, float("nan")):
            add(f"delta={v}", _set_opt(delta=v), ValueError,
                rf"^delta: must be in \(0\.0, inf\], got {v}")
        add("delta=True", _set_opt(delta=True), TypeError, r"^delta: must be a real number")
    elif name == "smooth_l1_loss":
        for v in (-1e-9, -1.0, float("nan")):
            add(f"beta={v}", _set_opt(beta=v), ValueError,
                rf"^beta: must be in \[0\.0, inf\], got {v}")
    return cases


def _ctc_cases(name):
    cases = _label_cases(name, 1, "targets", C_CTC, "")
    add = lambda *a, **kw: cases.append(Case(name, *a, **kw))  # noqa: E731
    add("label=blank", _set_arg(1, np.array([[1, 2], [0, 1]])), ValueError,
        r"^targets: label at index \(1, 0\) is the blank \(0\)")
    add("label=blank=2", lambda s: (s["opts"].update(blank=2)), ValueError,
        r"^targets: label at index \(0, 1\) is the blank \(2\)")
    add("label=blank-concatenated",
        lambda s: s["args"].__setitem__(1, np.array([1, 2, 0])), ValueError,
        r"^targets: label at index \(2,\) is the blank \(0\)")
    add("label=C-concatenated", _set_arg(1, np.array([1, 2, C_CTC])), ValueError,
        rf"^targets: label {C_CTC} at index \(2,\) is outside \[0, {C_CTC}\)")
    add("concatenated-wrong-total", _set_arg(1, np.array([1, 2, 3, 1])), ValueError,
        r"^targets: concatenated targets hold 4 labels, but target_lengths sum to 3")
    add("targets-3d", _set_arg(1, np.ones((2, 2, 1), np.int64)), ValueError,
        r"^targets: must be 2-D \(N, S\) padded or 1-D concatenated, got shape \(2, 2, 1\)")
    add("input-2d", _set_arg(0, np.zeros((T, C_CTC))), ValueError,
        r"^input: CTC needs a 3-D input \(T, N, C\), got shape \(6, 4\)")
    add("input-2d-batch_first",
        lambda s: (s["opts"].update(batch_first=True), s["args"].__setitem__(0, np.zeros((T, C_CTC)))),
        ValueError, r"^input: CTC needs a 3-D input \(N, T, C\), got shape \(6, 4\)")
    add("C=0", _set_arg(0, np.zeros((T, 2, 0))), ValueError, r"^blank: must be in \[0, 0\)")
    add("blank=-1", _set_opt(blank=-1), ValueError, r"^blank: must be >= 0, got -1")
    add("blank=C", _set_opt(blank=C_CTC), ValueError,
        rf"^blank: must be in \[0, {C_CTC}\) \(the class axis\), got {C_CTC}")
    add("blank=1.0", _set_opt(blank=1.0), TypeError, r"^blank: must be an integer, got 1\.0")
    # lengths: negative, too large, fractional, huge, at position (1,)
    for arg, i, high in (("input_lengths", 2, T), ("target_lengths", 3, S)):
        for what, value, dtype, text in [
            ("-1", -1, np.int64, "-1"),
            ("too-large", high + 1, np.int64, str(high + 1)),
            ("int64-max", INT64_MAX, np.int64, str(INT64_MAX)),
            ("int64-min", np.iinfo(np.int64).min, np.int64, str(np.iinfo(np.int64).min)),
            ("uint64-max", np.iinfo(np.uint64).max, np.uint64, str(np.iinfo(np.uint64).max)),
            ("float-1e300", 1e300, np.float64, r"1e\+300"),
        ]:
            add(f"{arg}={what}", _set_arg(i, lambda a, v=value, d=dtype: _with(a, 1, v, d)),
                ValueError, rf"^{arg}: length {text} at index \(1,\) must be in \[0, {high}\]")
        for what, value, text in [("1.5", 1.5, r"1\.5"), ("nan", np.nan, "nan")]:
            add(f"{arg}={what}", _set_arg(i, lambda a, v=value: _with(a, 1, v, np.float64)),
                ValueError, rf"^{arg}: lengths must be integers, got {text} at index \(1,\)")
        add(f"{arg}-2d", _set_arg(i, lambda a: a[:, None]), ValueError,
            rf"^{arg}: expected shape \(2,\) \(one length per sequence\), got \(2, 1\)")
    add("target_lengths=-1-concatenated",
        lambda s: (s["args"].__setitem__(1, np.array([1, 2, 3])),
                   s["args"].__setitem__(3, np.array([4, -1]))),
        ValueError, r"^target_lengths: length -1 at index \(1,\) must be >= 0")
    return cases


def _overlap_negative(state):
    """out[1] and the negative share memory, one row apart."""
    buf = np.full((N + 1, C), SENTINEL)
    buf[1:] = state["args"][2]
    state["args"][2] = buf[1:]
    state["out"] = (state["out"][0], buf[:N], state["out"][2])


def _overlap_target(state):
    """The target is the first N elements of out[1] (holding valid targets): contiguous
    and of the compute dtype, so validation does not copy it."""
    buf = np.full((N, C), SENTINEL)
    buf.reshape(-1)[:N] = state["args"][2]
    state["args"][2] = buf.reshape(-1)[:N]
    state["out"] = (state["out"][0], buf)


def _pairwise_cases(name):
    cases = []
    add = lambda *a, **kw: cases.append(Case(name, *a, **kw))  # noqa: E731
    names = ARG_NAMES[name]
    first = names[0]
    if name == "margin_ranking_loss":
        add(f"{first}-2d", _set_arg(0, np.zeros((N, 2))), ValueError,
            rf"^{first}: expected shape \(N,\), got \(4, 2\)")
        add("x2-2d", _set_arg(1, np.zeros((N, 1))), ValueError,
            r"^x2: expected shape \(4,\) \(the x1's\), got \(4, 1\)")
        for what, value in [("0", 0.0), ("2", 2.0), ("0.5", 0.5), ("nan", np.nan), ("-inf", -np.inf)]:
            add(f"target={what}", _set_arg(2, lambda t, v=value: _with(t, 2, v)), ValueError,
                rf"^target: must be 1 or -1, got {re.escape(repr(float(value)))} at index \(2,\)")
        add("target=int-0", _set_arg(2, np.array([1, -1, 0, 1])), ValueError,
            r"^target: must be 1 or -1, got 0 at index \(2,\)")
        for v in (float("nan"), float("inf")):
            add(f"margin={v}", _set_opt(margin=v), ValueError, rf"^margin: must be")
        return cases
    add(f"{first}-1d", _set_arg(0, np.zeros(N)), ValueError,
        rf"^{first}: expected shape \(N, D\), got \(4,\)")
    add(f"{names[1]}-wrong-D", _set_arg(1, np.zeros((N, C + 1))), ValueError,
        rf"^{names[1]}: expected shape \(4, 3\) \(the {first}'s\), got \(4, 4\)")
    if name == "triplet_margin_loss":
        add("negative-wrong-D", _set_arg(2, np.zeros((N, 1))), ValueError,
            r"^negative: expected shape \(4, 3\) \(the anchor's\), got \(4, 1\)")
        for v in (0.0, -1.0, float("nan")):
            add(f"margin={v}", _set_opt(margin=v), ValueError,
                rf"^margin: must be in \(0\.0, inf\], got {v}")
        add("margin=inf", _set_opt(margin=float("inf")), ValueError, r"^margin: must be finite")
        add("p=-1", _set_opt(p=-1.0), ValueError, r"^p: must be in \[0\.0, inf\], got -1\.0")
        add("eps=-1e-6", _set_opt(eps=-1e-6), ValueError, r"^eps: must be in \[0\.0, inf\], got -1e-06")
        add("swap='yes'", _set_opt(swap="yes"), TypeError, r"^swap: must be True or False")
        add("out-overlaps-another-input", _overlap_negative, ValueError,
            r"^out\[1\]: overlaps negative without being it", involves_out=True)
    else:  # contrastive
        for what, value in [("-0.1", -0.1), ("1.5", 1.5), ("nan", np.nan)]:
            add(f"target={what}", _set_arg(2, lambda t, v=value: _with(t, 2, v)), ValueError,
                rf"^target: must be in \[0, 1\] .*got {re.escape(repr(float(value)))} at index \(2,\)")
        for v in (-1.0, float("nan"), float("inf")):
            add(f"margin={v}", _set_opt(margin=v), ValueError, r"^margin: must be")
        add("out-overlaps-target", _overlap_target, ValueError,
            r"^out\[1\]: overlaps target", involves_out=True)
    return cases


FAMILY_CASES = {
    "softmax": _softmax_cases,
    "elementwise": _elementwise_cases,
    "ctc": _ctc_cases,
    "pairwise": _pairwise_cases,
}

CATALOGUE = [case for name, spec in REGISTRY.items()
             for case in _common_cases(name) + FAMILY_CASES[spec.family](name)]
N_CASES = len(CATALOGUE)
print(f"fastloss bad-input catalogue: {N_CASES} cases over {len(REGISTRY)} losses")


def test_catalogue_covers_every_loss():
    per_loss = {name: sum(c.loss == name for c in CATALOGUE) for name in REGISTRY}
    assert all(n >= 20 for n in per_loss.values()), per_loss
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids)), "case ids must be unique"


# --------------------------------------------------------------------------- the check
def _snapshot(obj):
    return copy.deepcopy(obj)


def _same(a, b):
    """Bitwise-equal arrays (NaN equal to NaN), recursively through tuples, lists, dicts."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and not isinstance(a, np.ndarray):
        return type(a) is type(b) and len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":  # bitwise: NaN payloads and signed zeros included
            return a.tobytes() == b.tobytes()
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return a == b


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(case, backend):
    state = valid_call(case.loss)
    case.mutate(state)
    before = _snapshot(state)
    forms = ["loss_grad", "function"] + ([] if case.involves_out else ["loss"])
    for form in forms:
        with pytest.raises(case.exc) as info:
            call(case.loss, state, backend, form=form)
        message = str(info.value)
        assert re.search(case.match, message), (
            f"{form}: message {message!r} does not match {case.match!r}")
        # nothing written, nothing modified: inputs, options, weights, out= (sentinel)
        assert _same(state["args"], before["args"]), f"{form}: an input was modified"
        assert _same(state["opts"], before["opts"]), f"{form}: an option was modified"
        assert _same(state["sw"], before["sw"]), f"{form}: sample_weight was modified"
        assert _same(state["out"], before["out"]), f"{form}: out= was written"


# --------------------------------------------------------------------------- empty batches, C = 0
def _empty_call(name):
    """A valid call with an empty batch (N = 0), float64."""
    family = REGISTRY[name].family
    if family == "softmax":
        return [np.zeros((0, C)), np.zeros(0, np.int64)], np.zeros(0)
    if name == "pinball_loss":
        return [np.zeros(0), np.zeros(0)], np.zeros(0)
    if family == "elementwise":
        return [np.zeros((0, C)), np.zeros((0, C))], np.zeros((0, C))
    if family == "ctc":
        return ([np.zeros((T, 0, C_CTC)), np.zeros((0, S), np.int64), np.zeros(0, np.int64),
                 np.zeros(0, np.int64)], np.zeros(0))
    if name == "margin_ranking_loss":
        return [np.zeros(0), np.zeros(0), np.zeros(0)], np.zeros(0)
    if name == "triplet_margin_loss":
        return [np.zeros((0, C))] * 3, np.zeros(0)
    return [np.zeros((0, C)), np.zeros((0, C)), np.zeros(0)], np.zeros(0)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(REGISTRY))
def test_empty_batch_is_valid(name, backend, reduction, weighted):
    """API.md: a mean over an empty set is 0.0 with a zero (here: empty) gradient, never NaN."""
    args, sw = _empty_call(name)
    obj = REGISTRY[name].cls(reduction=reduction, backend=backend)
    loss, grad = obj.loss_grad(*args, sample_weight=sw if weighted else None)
    grads = grad if isinstance(grad, tuple) else (grad,)
    assert len(grads) == _n_grads(name)
    for g in grads:
        assert g.shape == args[0].shape and g.dtype == np.float64
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.size == 0
    else:
        assert isinstance(loss, np.float64) and loss == 0.0


@pytest.mark.parametrize("name", [n for n, s in REGISTRY.items() if s.family == "softmax"])
def test_class_axis_of_length_zero_is_a_value_error_also_for_an_empty_batch(name, backend):
    x = np.zeros((0, 0))
    with pytest.raises(ValueError, match=r"^input: logits need a class axis"):
        REGISTRY[name].cls(backend=backend).loss_grad(x, np.zeros(0, np.int64))

"""Helpers on top of the losses: ``class_weight``, ``gradcheck`` and ``MultiTask``.

They only use the losses' public methods (``loss``, ``loss_grad``,
``grad_hess``), so they work for every built-in loss and for any object
with the same methods.
"""
from dataclasses import dataclass, field

import numpy as np

from . import _validation as V

__all__ = ["GradcheckResult", "MultiTask", "class_weight", "gradcheck"]


# --------------------------------------------------------------------------- class_weight
def class_weight(y, n_classes=None, *, sample_weight=None):
    """Balanced class weights ``n_samples / (n_classes * count(c))``, one per class.

    Equal to scikit-learn's ``compute_class_weight("balanced",
    classes=np.arange(n_classes), y=y)`` (and with ``sample_weight``, its
    weighted counts: ``sum(sample_weight) / (n_classes * weighted count(c))``),
    ready to pass as ``weight=`` to :class:`CrossEntropy` or :class:`SoftmaxFocal`.

    y: integer class labels in ``[0, n_classes)``, 1-D (floats holding
    integers are accepted); ``n_classes`` defaults to ``max(y) + 1``.
    Returns a float64 array of shape ``(n_classes,)``.

    A class that does not occur in ``y`` (or whose sample weights sum to 0)
    would get an infinite weight: that is a ``ValueError`` naming the class,
    as in scikit-learn. So are an empty ``y``, a label outside
    ``[0, n_classes)`` (with its position) and a non-integer label.

    >>> import numpy as np, fastloss
    >>> fastloss.class_weight(np.array([0, 1, 1, 2]))
    array([1.33333333, 0.66666667, 1.33333333])
    """
    y = V._real_array(y, "y")
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array of class labels, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y: is empty; balanced weights need at least one label")
    if n_classes is None:
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            V.labels(y, y.shape, 1, name="y")  # raises: names the first non-finite label
        n_classes = max(int(y.max()) + 1, 1)
    else:
        n_classes = V.integer(n_classes, "n_classes")
        if n_classes < 1:
            raise ValueError(f"n_classes: must be >= 1, got {n_classes}")
    labels = V.labels(y, y.shape, n_classes, name="y")
    sw = V.sample_weight(sample_weight, y.shape, np.dtype(np.float64))
    counts = np.bincount(labels, weights=sw, minlength=n_classes).astype(np.float64)
    empty = counts == 0
    if empty.any():
        c = int(np.argmax(empty))
        why = "does not occur in y" if sw is None or not np.any(labels == c) else (
            "has sample weights summing to 0")
        raise ValueError(
            f"y: class {c} of [0, {n_classes}) {why}: its balanced weight would be infinite"
        )
    return counts.sum() / (n_classes * counts)


# --------------------------------------------------------------------------- gradcheck
@dataclass(frozen=True)
class Mismatch:
    """One checked element: where it is and how far the two values are apart."""

    quantity: str  # "loss", "grad", "grad (grad_hess)" or "hess"
    input: int  # which of the differentiable inputs (0 for the loss value)
    index: tuple  # the element's index in that input
    analytic: float  # what the loss object returned
    numeric: float  # the finite-difference estimate (or the other method's value)
    abs_error: float
    rel_error: float
    kink: bool = False  # checked one-sided: the central stencil straddles a kink

    def __str__(self):
        where = "" if self.quantity == "loss" else f" at input {self.input} index {self.index}"
        kink = " (at a kink: checked against the one-sided differences)" if self.kink else ""
        return (f"{self.quantity}{where}: analytic {self.analytic:.10g}, numeric "
                f"{self.numeric:.10g}, abs error {self.abs_error:.3g}, rel error "
                f"{self.rel_error:.3g}{kink}")


@dataclass
class GradcheckResult:
    """What :func:`gradcheck` found; truthy when every checked element passed.

    ``max_abs_error`` / ``max_rel_error`` are the worst over every checked
    element (the relative error only over elements larger than ``atol``);
    ``worst_abs`` / ``worst_rel`` say where they are, ``where`` is the element
    closest to failing (or the worst failure), ``failures`` every element that
    failed (worst first). ``print(result)`` gives all of it in words.
    """

    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst_abs: Mismatch = None
    worst_rel: Mismatch = None
    where: Mismatch = None
    failures: list = field(default_factory=list)
    n_checked: dict = field(default_factory=dict)  # quantity -> elements checked
    n_kinks: int = 0
    rtol: float = 0.0
    atol: float = 0.0
    loss_name: str = ""

    def __bool__(self):
        return self.passed

    def __str__(self):
        checked = ", ".join(f"{n} {q}" for q, n in self.n_checked.items())
        lines = [
            f"gradcheck of {self.loss_name}: {'passed' if self.passed else 'FAILED'} "
            f"(rtol={self.rtol:g}, atol={self.atol:g}; checked {checked})",
            f"  max abs error {self.max_abs_error:.3g}"
            + (f" ({self.worst_abs})" if self.worst_abs else ""),
            f"  max rel error {self.max_rel_error:.3g}"
            + (f" ({self.worst_rel})" if self.worst_rel else ""),
        ]
        if self.n_kinks:
            lines.append(f"  {self.n_kinks} element(s) at a kink, checked one-sided")
        if self.failures:
            lines.append(f"  {len(self.failures)} element(s) failed, worst first:")
            lines += [f"    {m}" for m in self.failures[:10]]
            if len(self.failures) > 10:
                lines.append(f"    ... and {len(self.failures) - 10} more")
        return "\n".join(lines)

    def __repr__(self):
        where = "" if self.where is None else (
            f", where=({self.where.quantity!r}, input={self.where.input}, "
            f"index={self.where.index})")
        return (f"GradcheckResult(passed={self.passed}, max_abs_error={self.max_abs_error:.3g}, "
                f"max_rel_error={self.max_rel_error:.3g}{where}, "
                f"failures={len(self.failures)})")


class _Checker:
    """Collects the checked elements of one gradcheck run."""

    def __init__(self, rtol, atol):
        self.rtol, self.atol = rtol, atol
        self.items = []  # (ratio to the tolerance, Mismatch)
        self.n_checked = {}
        self.n_kinks = 0

    def add(self, quantity, i, index, analytic, numeric, tol, kink=False, error=None):
        analytic, numeric = float(analytic), float(numeric)
        err = abs(analytic - numeric) if error is None else error
        if not np.isfinite(analytic) or not np.isfinite(numeric):
            err = np.inf if analytic != numeric else 0.0
        big = max(abs(analytic), abs(numeric))
        rel = err / big if big > 0 else (0.0 if err == 0 else np.inf)
        m = Mismatch(quantity, i, tuple(int(k) for k in index), analytic, numeric, err, rel, kink)
        ratio = err / tol if tol > 0 else (0.0 if err == 0 else np.inf)
        self.items.append((ratio, m))
        self.n_checked[quantity] = self.n_checked.get(quantity, 0) + 1
        self.n_kinks += kink

    def result(self, name):
        if not self.items:
            return GradcheckResult(True, 0.0, 0.0, n_checked=self.n_checked, rtol=self.rtol,
                                   atol=self.atol, loss_name=name)
        worst_abs = max(self.items, key=lambda t: t[1].abs_error)[1]
        sized = [t for t in self.items if max(abs(t[1].analytic), abs(t[1].numeric)) > self.atol]
        worst_rel = max(sized, key=lambda t: t[1].rel_error)[1] if sized else None
        ranked = sorted(self.items, key=lambda t: -t[0])
        failures = [m for ratio, m in ranked if not ratio <= 1]
        return GradcheckResult(
            passed=not failures,
            max_abs_error=worst_abs.abs_error,
            max_rel_error=worst_rel.rel_error if worst_rel else 0.0,
            worst_abs=worst_abs,
            worst_rel=worst_rel,
            where=ranked[0][1],
            failures=failures,
            n_checked=self.n_checked,
            n_kinks=self.n_kinks,
            rtol=self.rtol,
            atol=self.atol,
            loss_name=name,
        )


#: 4th-order central difference of f' from f(x + k h), k = -2, -1, 1, 2: / (12 h)
_CENTRAL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))
#: a gap between the two one-sided differences above this share of their size is a kink
_KINK = 1e-5
#: second differences from the two sides differing by this share: a jump of the curvature
_CURVATURE = 0.1
#: the one-sided (2nd-order) differences are trusted to this relative error at a kink
_ONE_SIDED_RTOL = 1e-4


def _as_grads(g):
    return tuple(g) if isinstance(g, (tuple, list)) else (g,)


def _element_indices(shape, max_elements, rng):
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= max_elements else np.sort(
        rng.choice(size, max_elements, replace=False))
    return [np.unravel_index(k, shape) if shape else () for k in flat]


def gradcheck(loss, *inputs, sample_weight=None, step=1e-3, rtol=1e-5, atol=1e-7, hess=True,
              max_elements=1000, seed=0):
    r"""Check a loss's analytic derivatives against central finite differences.

    ``loss`` is a loss object (any built-in loss, or anything with the same
    ``loss`` / ``loss_grad`` methods, ``grad_hess`` optional) or a function
    returning ``(loss, grad)`` like ``fastloss.cross_entropy``. ``inputs``
    are its positional arguments; the first ``len(grad)`` of them (one for a
    loss whose gradient is an array, two or three for a pairwise loss) are
    differentiated, the rest (targets, lengths) are passed through.

    The differentiated inputs are copied to float64 and perturbed one element
    at a time by ``h = step * max(1, |x|)``; the derivative of the summed
    loss is estimated by the 4th-order central difference
    ``(f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / (12 h)`` of ``loss.loss``,
    and compared with ``loss_grad``'s gradient: an element passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|``. Where that fails and
    the loss is not smooth within 2h of the element (the one-sided slopes
    from the left and the right disagree, or the one-sided curvatures do, as
    for Huber at ``delta``), the analytic value must instead lie between the
    one-sided differences, to a relative 1e-4 (their own accuracy): any
    subgradient passes, e.g. L1's 0 at equality. With
    ``grad_hess`` (and ``hess=True``) its gradient must equal ``loss_grad``'s
    and its Hessian diagonal is checked the same way against central
    differences of the gradient. ``loss`` and ``loss_grad``'s loss value must
    agree too. At most ``max_elements`` elements per input are checked
    (chosen at random with ``seed`` beyond that).

    Returns a :class:`GradcheckResult`: truthy when everything passed, with
    the worst absolute and relative errors and where they are;
    ``print(result)`` explains, ``assert result, result`` shows it on failure.

    >>> import numpy as np, fastloss
    >>> x = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    >>> r = fastloss.gradcheck(fastloss.CrossEntropy(label_smoothing=0.1), x, np.array([0, 2]))
    >>> bool(r), r.max_abs_error < 1e-9
    (True, True)
    """
    rtol = V.scalar(rtol, "rtol", low=0.0)
    atol = V.scalar(atol, "atol", low=0.0)
    step = V.scalar(step, "step", low=0.0, low_open=True)
    max_elements = V.integer(max_elements, "max_elements")
    if max_elements < 1:
        raise ValueError(f"max_elements: must be >= 1, got {max_elements}")
    if hasattr(loss, "loss_grad") and hasattr(loss, "loss"):
        loss_grad, forward = loss.loss_grad, loss.loss
        name = repr(loss)
    elif callable(loss):
        loss_grad = loss
        forward = lambda *a, **k: loss(*a, **k)[0]  # noqa: E731
        name = getattr(loss, "__name__", repr(loss))
    else:
        raise TypeError(f"loss: needs loss and loss_grad methods (or to be a function "
                        f"returning (loss, grad)), got {type(loss).__name__}")
    if not inputs:
        raise TypeError("inputs: pass the loss's positional arguments (input, target, ...)")
    kw = {} if sample_weight is None else {"sample_weight": sample_weight}

    # which inputs are differentiated: as many as loss_grad returns gradients
    first = loss_grad(*inputs, **kw)
    n_diff = len(_as_grads(first[1]))
    if n_diff > len(inputs):
        raise ValueError(f"inputs: loss_grad returned {n_diff} gradients for {len(inputs)} inputs")
    xs = []
    for i in range(n_diff):
        a = V._real_array(inputs[i], f"inputs[{i}]")
        xs.append(np.array(a, dtype=np.float64))  # a float64 copy: perturbed in place below
    rest = tuple(inputs[n_diff:])

    def f(*arrays):
        value = forward(*arrays, *rest, **kw)
        return float(np.sum(np.asarray(value, dtype=np.float64)))

    l0, g0 = loss_grad(*xs, *rest, **kw)
    grads = [np.asarray(g, dtype=np.float64) for g in _as_grads(g0)]
    for i, (g, x) in enumerate(zip(grads, xs)):
        if g.shape != x.shape:
            raise ValueError(f"loss: loss_grad returned a gradient of shape {g.shape} for "
                             f"inputs[{i}] of shape {x.shape}")
    check = _Checker(rtol, atol)
    f0 = f(*xs)
    total = float(np.sum(np.asarray(l0, dtype=np.float64)))
    check.add("loss", 0, (), total, f0, atol + rtol * abs(f0))

    rng = np.random.default_rng(seed)
    for i, (x, g) in enumerate(zip(xs, grads)):
        for idx in _element_indices(x.shape, max_elements, rng):
            x0 = x[idx]
            h = step * max(1.0, abs(x0))
            vals = {}
            for k in (-2, -1, 1, 2):
                x[idx] = x0 + k * h
                vals[k] = f(*xs)
            x[idx] = x0
            central = sum(c * vals[k] for k, c in _CENTRAL) / (12 * h)
            _compare(check, "grad", i, idx, g[idx], central, vals, f0, h)

    if hess and hasattr(loss, "grad_hess") and n_diff == 1:
        x = xs[0]
        g_h, h_an = loss.grad_hess(x, *rest, **kw)
        g_h, h_an = np.asarray(g_h, np.float64), np.asarray(h_an, np.float64)
        for idx in _element_indices(x.shape, max_elements, np.random.default_rng(seed)):
            check.add("grad (grad_hess)", 0, idx, g_h[idx], grads[0][idx],
                      atol + rtol * abs(grads[0][idx]))
            x0 = x[idx]
            h = step * max(1.0, abs(x0))
            vals = {}
            for k in (-2, -1, 1, 2):
                x[idx] = x0 + k * h
                vals[k] = float(np.asarray(loss_grad(x, *rest, **kw)[1], np.float64)[idx])
            x[idx] = x0
            central = sum(c * vals[k] for k, c in _CENTRAL) / (12 * h)
            _compare(check, "hess", 0, idx, h_an[idx], central, vals, grads[0][idx], h)
    return check.result(name)


def _compare(check, quantity, i, idx, analytic, central, vals, v0, h):
    """Analytic against the central difference; at a kink, against the one-sided ones.

    Non-smooth within the stencil: the one-sided slopes from the left and the right
    disagree (a kink), or the values extrapolated to x from each side do (a jump, e.g.
    L1's gradient at 0 in a Hessian check), or the curvatures do (Huber at delta). Then
    the analytic value must lie between the one-sided slopes, with and without x itself
    (any subgradient passes), to a relative 1e-4 (their own accuracy).
    """
    tol = check.atol + check.rtol * abs(central)
    if abs(analytic - central) <= tol:
        check.add(quantity, i, idx, analytic, central, tol)
        return
    right = (-3 * v0 + 4 * vals[1] - vals[2]) / (2 * h)  # 2nd order, from [x, x + 2h]
    left = (3 * v0 - 4 * vals[-1] + vals[-2]) / (2 * h)  # from [x - 2h, x]
    right_open = (vals[2] - vals[1]) / h  # from (x, x + 2h]: x itself may be on the jump
    left_open = (vals[-1] - vals[-2]) / h
    slopes = (left, right, left_open, right_open)
    scale = max(abs(s) for s in slopes)
    jump = abs((2 * vals[1] - vals[2]) - (2 * vals[-1] - vals[-2]))
    size = max(abs(v0), *(abs(v) for v in vals.values()))
    # second differences from each side (a jump of the curvature, e.g. Huber at delta,
    # spoils the central difference while both one-sided slopes stay right)
    curv_right = (vals[2] - 2 * vals[1] + v0) / (h * h)
    curv_left = (vals[-2] - 2 * vals[-1] + v0) / (h * h)
    noise = 1e3 * np.finfo(np.float64).eps * size / (h * h)
    if (abs(right - left) > _KINK * scale + check.atol
            or jump > _KINK * size + check.atol * h
            or abs(curv_right - curv_left) > _CURVATURE * max(abs(curv_right), abs(curv_left))
            + noise):
        lo, hi = min(slopes), max(slopes)
        ktol = check.atol + max(check.rtol, _ONE_SIDED_RTOL) * scale
        outside = max(lo - analytic, analytic - hi, 0.0)
        nearest = min(max(analytic, lo), hi)
        check.add(quantity, i, idx, analytic, nearest, ktol, kink=True, error=outside)
        return
    check.add(quantity, i, idx, analytic, central, tol)


# --------------------------------------------------------------------------- MultiTask
def _as_args(a):
    """A head's input or target as positional arguments: a tuple is several, None none."""
    if a is None:
        return ()
    return tuple(a) if isinstance(a, tuple) else (a,)


def _scaled(g, w):
    """w * g for a gradient array (in place when it is a writeable float array) or a tuple."""
    if isinstance(g, (tuple, list)):
        return type(g)(_scaled(a, w) for a in g)
    if w == 1.0:
        return g
    if isinstance(g, np.ndarray) and g.dtype.kind == "f" and g.flags.writeable:
        g *= g.dtype.type(w)
        return g
    g = np.asarray(g)
    return g * (g.dtype.type(w) if g.dtype.kind == "f" else w)


class MultiTask:
    r"""A weighted sum of several losses over several heads.

    .. math::
        L = \sum_k w_k L_k \qquad\text{or, with ``learn_weights=True``,}\qquad
        L = \sum_k e^{-s_k} L_k + s_k

    the second being the homoscedastic-uncertainty weighting of Kendall, Gal
    & Cipolla (2018) with learnt log-variances :math:`s_k`, whose gradient
    :math:`\partial L / \partial s_k = 1 - e^{-s_k} L_k` is returned too.

    losses: fastloss loss objects (any family, each with its own options and
    reduction) or anything with ``loss`` / ``loss_grad`` methods. Each head's
    reduction is respected: ``"mean"`` and ``"sum"`` heads give a scalar that
    is weighed; a head with ``reduction="none"`` is a ``ValueError`` (a
    vector of per-sample losses has no single weight), and so is a custom
    head that returns a non-scalar loss. weights: one finite weight per head
    (default 1), not combined with ``learn_weights=True`` (``ValueError``).

    ``loss_grad(inputs, targets[, log_vars], *, sample_weights=None)`` takes
    one input and one target per head: a tuple is unpacked into several
    positional arguments (``(anchor, positive, negative)`` for a triplet head),
    ``None`` as a target passes nothing (a triplet head has no target).
    ``sample_weights`` is ``None`` or one entry per head (``None`` allowed).
    It returns ``(loss, grads)``, ``grads`` a list with each head's gradient
    (an array, or a tuple for a pairwise head) times its weight, and with
    ``learn_weights=True`` ``(loss, grads, grad_log_vars)``. The heads'
    gradient arrays are scaled in place (they are fresh arrays of the head).
    The total is summed in float64 and returned in the heads' common dtype
    (float32 when every head computed in float32). ``loss(...)`` gives the
    total alone, from the heads' forward passes.

    >>> import numpy as np, fastloss
    >>> mt = fastloss.MultiTask([fastloss.CrossEntropy(), fastloss.MSE()], weights=[1.0, 0.5])
    >>> x, y = np.array([[2.0, 0.0]]), np.array([0])
    >>> loss, (g_ce, g_mse) = mt.loss_grad([x, np.array([1.0, 3.0])], [y, np.array([1.0, 1.0])])
    >>> round(float(loss), 6)
    1.126928

    Reference: A. Kendall, Y. Gal, R. Cipolla, "Multi-task learning using
    uncertainty to weigh losses for scene geometry and semantics", CVPR 2018.
    """

    def __init__(self, losses, weights=None, learn_weights=False):
        if isinstance(losses, (str, bytes)) or not hasattr(losses, "__iter__"):
            raise TypeError("losses: must be a sequence of loss objects, "
                            f"got {type(losses).__name__}")
        self.losses = list(losses)
        if not self.losses:
            raise ValueError("losses: need at least one loss")
        for k, head in enumerate(self.losses):
            if not (hasattr(head, "loss_grad") and hasattr(head, "loss")):
                raise TypeError(f"losses[{k}]: needs loss and loss_grad methods, "
                                f"got {type(head).__name__}")
            if getattr(head, "reduction", None) == "none":
                raise ValueError(f"losses[{k}]: reduction='none' gives one loss per sample, "
                                 "not a number to weigh; use 'mean' or 'sum'")
        if not isinstance(learn_weights, (bool, np.bool_)):
            raise TypeError(f"learn_weights: must be True or False, got {learn_weights!r}")
        self.learn_weights = bool(learn_weights)
        n = len(self.losses)
        if weights is None:
            self.weights = np.ones(n)
        else:
            if self.learn_weights:
                raise ValueError("weights: fixed weights and learn_weights=True exclude each "
                                 "other; the learnt weights are exp(-log_vars)")
            w = V._real_array(weights, "weights").astype(np.float64)
            if w.shape != (n,):
                raise ValueError(f"weights: expected shape ({n},) (one per loss), got {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"weights: must be finite, got {w.tolist()}")
            self.weights = w

    def __repr__(self):
        extra = "learn_weights=True" if self.learn_weights else f"weights={self.weights.tolist()}"
        return f"MultiTask({self.losses!r}, {extra})"

    def _check(self, inputs, targets, log_vars, sample_weights):
        n = len(self.losses)
        for name, seq in (("inputs", inputs), ("targets", targets)):
            if not isinstance(seq, (list, tuple)) or len(seq) != n:
                got = f"{len(seq)}" if isinstance(seq, (list, tuple)) else type(seq).__name__
                raise ValueError(f"{name}: expected a list of {n} (one per loss), got {got}")
        if sample_weights is None:
            sample_weights = [None] * n
        elif not isinstance(sample_weights, (list, tuple)) or len(sample_weights) != n:
            raise ValueError(f"sample_weights: expected None or a list of {n} (one per loss)")
        if self.learn_weights:
            if log_vars is None:
                raise ValueError("log_vars: required with learn_weights=True (one per loss)")
            s = V._real_array(log_vars, "log_vars").astype(np.float64)
            if s.shape != (n,):
                raise ValueError(f"log_vars: expected shape ({n},) (one per loss), got {s.shape}")
            if not np.all(np.isfinite(s)):
                raise ValueError(f"log_vars: must be finite, got {s.tolist()}")
            w = np.exp(-s)
        else:
            if log_vars is not None:
                raise ValueError("log_vars: only with learn_weights=True")
            s, w = None, self.weights
        return sample_weights, s, w

    def _head_loss(self, k, value):
        if np.ndim(value) != 0:
            raise ValueError(f"losses[{k}]: returned a loss of shape {np.shape(value)}; "
                             "MultiTask needs a scalar (reduction 'mean' or 'sum')")
        return value

    def _total(self, values, s, w):
        total = sum(float(wk) * float(v) for wk, v in zip(w, values))
        if s is not None:
            total += float(s.sum())
        kinds = [np.asarray(v).dtype for v in values]
        dtype = np.result_type(*kinds) if all(d.kind == "f" for d in kinds) else np.dtype("f8")
        return dtype.type(total)

    def loss(self, inputs, targets, log_vars=None, *, sample_weights=None):
        """The weighted total only, from each head's forward pass."""
        sws, s, w = self._check(inputs, targets, log_vars, sample_weights)
        values = []
        for k, (head, x, t, sw) in enumerate(zip(self.losses, inputs, targets, sws)):
            kw = {} if sw is None else {"sample_weight": sw}
            values.append(self._head_loss(k, head.loss(*_as_args(x), *_as_args(t), **kw)))
        return self._total(values, s, w)

    def loss_grad(self, inputs, targets, log_vars=None, *, sample_weights=None):
        """``(loss, grads)``, or ``(loss, grads, grad_log_vars)`` with ``learn_weights=True``."""
        sws, s, w = self._check(inputs, targets, log_vars, sample_weights)
        values, grads = [], []
        for k, (head, x, t, sw) in enumerate(zip(self.losses, inputs, targets, sws)):
            kw = {} if sw is None else {"sample_weight": sw}
            value, g = head.loss_grad(*_as_args(x), *_as_args(t), **kw)
            values.append(self._head_loss(k, value))
            grads.append(_scaled(g, float(w[k])))
        total = self._total(values, s, w)
        if not self.learn_weights:
            return total, grads
        grad_s = 1.0 - w * np.array([float(v) for v in values])
        return total, grads, grad_s

    __call__ = loss_grad

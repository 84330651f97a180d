"""fastloss losses as custom objectives and metrics for LightGBM and XGBoost.

``lightgbm_objective(loss)`` and ``xgboost_objective(loss)`` turn any
fastloss loss with a per-element Hessian (``BCEWithLogits``, ``SigmoidFocal``,
``CrossEntropy``, ``SoftmaxFocal``, ``MSE``, ``Huber``, ``SmoothL1``, ``L1``,
``Pinball``) into a custom objective that returns ``(grad, hess)`` from one
fused ``grad_hess`` call; ``lightgbm_metric(loss)`` and ``xgboost_metric(loss)``
report the loss on evaluation sets. Each returned object works with both APIs
of its library, told apart by the type of the second argument:

- ``LGBMClassifier(objective=obj)`` / ``LGBMRegressor``: ``obj(y_true, y_pred, weight)``;
  ``lightgbm.train({"objective": obj, ...})``: ``obj(preds, train_set)`` with a
  ``lightgbm.Dataset``. Both return ``(grad, hess)``.
- ``XGBClassifier(objective=obj)`` / ``XGBRegressor``: ``obj(y_true, y_pred[,
  sample_weight=w])``; ``xgboost.train(params, dtrain, obj=obj)``:
  ``obj(predt, dtrain)`` with an ``xgboost.DMatrix``. Both return ``(grad, hess)``.
- LightGBM metrics: ``fit(..., eval_metric=m)`` calls ``m(y_true, y_pred, weight)``,
  ``lightgbm.train(..., feval=m)`` calls ``m(preds, eval_set)``; both get
  ``(name, value, False)`` (lower is better).
- XGBoost metrics: ``XGBClassifier(eval_metric=m)`` calls ``m(y_true, y_pred[,
  sample_weight=w])`` and gets the value (named ``m.__name__``);
  ``xgboost.train(..., custom_metric=m)`` calls ``m(predt, dtrain)`` and gets
  ``(name, value)``.

Neither library is imported here: a ``Dataset`` / ``DMatrix`` is recognised
through ``sys.modules``, so ``import fastloss.gbdt`` is free and the objects
also work on plain arrays (``obj(y, raw_scores)``).

Conventions
-----------
* Raw scores (margins, logits) come in; multiclass scores are ``(n, K)``, as
  LightGBM >= 4 and XGBoost >= 2.1 pass and expect them, and gradient and
  Hessian are returned in the same shape. Labels: class ids (floats holding
  integers are fine) for the softmax losses; targets in [0, 1] for BCE and
  sigmoid focal; regression targets otherwise. A label vector with as many
  elements as the scores (XGBoost's multi-target labels, which it flattens) is
  reshaped to the scores' shape.
* Per-row derivatives: the objective runs a copy of the loss with
  ``reduction="sum"``, whatever the loss's own reduction, so row ``i`` gets the
  derivatives of its own loss, not divided by ``n``. (A ``"mean"`` would divide
  gradient and Hessian alike: the Newton step ``-G/H`` would not change, but
  ``min_child_weight`` / ``min_sum_hessian_in_leaf`` and ``lambda`` would act on
  a Hessian ``n`` times smaller.)
* Sample weights go to the loss as ``sample_weight``: gradient and Hessian are
  multiplied by them, as in the libraries' built-in objectives (a Hessian
  floor is multiplied too). Weights should be non-negative.
* The libraries start custom objectives from a raw score of 0, not from the
  best constant (LightGBM: ``init_score`` in ``Dataset`` / ``fit``; XGBoost:
  ``base_margin``). ``xgboost.train(params, dtrain, obj=obj)`` keeps the link
  and ``base_score`` of ``params["objective"]``, by default
  ``reg:squarederror`` whose ``base_score=0.5`` is a raw score of 0.5: pass
  ``base_score=0`` (or ``objective="binary:logistic"``, whose 0.5 is a margin
  of 0). ``XGBClassifier(objective=obj)`` trains with the link of
  ``binary:logistic`` / ``multi:softprob``, so its ``predict_proba`` is right
  for the sigmoid and softmax losses; ``LGBMClassifier(objective=obj)``
  returns raw scores from ``predict`` and ``predict_proba`` (with a warning):
  :meth:`Objective.transform` maps them to probabilities.

The Hessian (``hessian=``)
--------------------------
- ``"exact"``: the loss's own Hessian diagonal, as ``loss.grad_hess`` returns it.
- ``"lightgbm"`` (softmax losses only): the exact diagonal times ``K/(K-1)``,
  LightGBM's ``multiclass`` (Friedman's factor): ``K/(K-1) p(1-p)`` for cross-entropy.
- ``"xgboost"`` (softmax losses only): the exact diagonal times 2, XGBoost's
  ``multi:softprob``: ``2 p(1-p)`` for cross-entropy. (XGBoost also clamps it at
  1e-16, which only rows of weight 0 or with a probability within 1e-16 of 0
  or 1 reach.)
- ``"floor"``: the exact diagonal raised to at least the loss's floor constant
  (see :data:`FLOORS`), per unit of sample weight: ``max(h, c w)``.
- a float ``c > 0``: the same with the floor ``c``.

The default (``hessian=None``) is chosen per loss so that boosting converges:

* ``BCEWithLogits``, ``MSE``: ``"exact"``. ``p(1-p)`` (and ``2``) is positive
  everywhere; for BCE it is what LightGBM's ``binary`` and XGBoost's
  ``binary:logistic`` use, so the objective reproduces them.
* ``CrossEntropy``: the library's own convention, ``"lightgbm"`` /
  ``"xgboost"``: the objective then reproduces ``multiclass`` /
  ``multi:softprob``. The diagonal ignores the coupling of the K scores of a
  row, which all move at once; the factor damps that step.
* ``SigmoidFocal``, ``SoftmaxFocal``: ``"floor"`` at
  ``FLOORS["focal"] = 0.01``. The focal loss is not convex in the logit: its
  exact Hessian is negative for confidently wrong rows (|logit| above about 3
  for ``gamma=2``), and a leaf whose Hessian sums to a small or negative value
  takes a huge or backwards Newton step. The floor keeps every row's
  curvature at 0.01 or more, far below the exact one near the decision
  boundary (0.1 to 0.5 for ``gamma=2``), so a leaf of confidently wrong rows
  alone moves by at most about ``alpha / 0.01`` times the learning rate.
* ``L1``, ``Pinball``: ``"floor"`` at 1: their exact Hessian is 0, and a
  constant Hessian of 1 per row is what LightGBM's ``l1`` / ``quantile`` and
  XGBoost's ``reg:absoluteerror`` / ``reg:quantileerror`` use before they refit
  the leaves (a custom objective cannot refit them). Each round then moves a
  leaf by the weighted mean of ``-grad`` (at most ``max(q, 1-q)``) times the
  learning rate, in the target's units: scale the targets to about unit size,
  start from a good ``init_score`` / ``base_margin``, or pass a smaller float.
* ``Huber``: ``"floor"`` at 1 (its curvature inside ``delta``): a Hessian of 1
  everywhere, LightGBM's ``huber`` objective. ``SmoothL1``: ``"floor"`` at its
  inside curvature ``1/beta`` (1 for ``beta=0``, which is L1).
"""
import copy
import numbers
import sys
import types

import numpy as np

# the public classes only: an adapter sits on top of the public API
from . import (
    L1,
    MSE,
    BCEWithLogits,
    CrossEntropy,
    Huber,
    Pinball,
    SigmoidFocal,
    SmoothL1,
    SoftmaxFocal,
)

__all__ = [
    "FLOORS",
    "Metric",
    "Objective",
    "lightgbm_metric",
    "lightgbm_objective",
    "xgboost_metric",
    "xgboost_objective",
]

LIBRARIES = ("lightgbm", "xgboost")
HESSIANS = ("exact", "lightgbm", "xgboost", "floor")

#: The floor of ``hessian="floor"``: the least Hessian per row (per unit of
#: sample weight). Focal: far below the exact curvature near the decision
#: boundary (0.1-0.5 for gamma=2), and positive where a confidently wrong row's
#: curvature is negative; classification: the same, for BCE and cross-entropy
#: asked for a floor; absolute and quantile errors: 1, the libraries' own
#: Hessian for them. Read-only.
FLOORS = types.MappingProxyType({"focal": 0.01, "classification": 0.01, "absolute": 1.0})

_SOFTMAX = (CrossEntropy, SoftmaxFocal)
_SIGMOID = (BCEWithLogits, SigmoidFocal)

#: fastloss function names: what the metrics are called
_NAMES = {
    CrossEntropy: "cross_entropy",
    SoftmaxFocal: "softmax_focal_loss",
    BCEWithLogits: "binary_cross_entropy_with_logits",
    SigmoidFocal: "sigmoid_focal_loss",
    Huber: "huber_loss",
    SmoothL1: "smooth_l1_loss",
    MSE: "mse_loss",
    L1: "l1_loss",
    Pinball: "pinball_loss",
}


def _floor_constant(loss):
    """The constant of ``hessian="floor"`` for ``loss``, or None where there is none."""
    if isinstance(loss, (SigmoidFocal, SoftmaxFocal)):
        return FLOORS["focal"]
    if isinstance(loss, (BCEWithLogits, CrossEntropy)):
        return FLOORS["classification"]
    if isinstance(loss, (L1, Pinball)):
        return FLOORS["absolute"]
    if isinstance(loss, Huber):
        return 1.0  # its curvature inside delta
    if isinstance(loss, SmoothL1):
        return 1.0 / loss.beta if loss.beta > 0 else FLOORS["absolute"]
    if isinstance(loss, MSE):
        return 2.0  # its curvature everywhere: the floor changes nothing
    return None


def _default_hessian(loss, library):
    if isinstance(loss, CrossEntropy):
        return library
    if isinstance(loss, (SigmoidFocal, SoftmaxFocal, L1, Pinball, Huber, SmoothL1)):
        return "floor"
    return "exact"


def _loss_name(loss):
    for cls, name in _NAMES.items():
        if type(loss) is cls:
            return name
    return type(loss).__name__


def _with_reduction(loss, reduction):
    """A copy of ``loss`` with another reduction (the user's object is left alone)."""
    if getattr(loss, "reduction", reduction) == reduction:
        return loss
    other = copy.copy(loss)
    other.reduction = reduction
    return other


def _library_data(obj):
    """``"lightgbm"`` for a ``lightgbm.Dataset``, ``"xgboost"`` for an
    ``xgboost.DMatrix``, None for anything else (arrays). Neither library is
    imported: an object of theirs means it already is."""
    for library, cls in (("lightgbm", "Dataset"), ("xgboost", "DMatrix")):
        module = sys.modules.get(library)
        if module is not None and isinstance(obj, getattr(module, cls, ())):
            return library
    return None


def _from_data(data, library):
    """Labels and weights (None when there are none) of a Dataset / DMatrix."""
    labels = data.get_label()
    weight = data.get_weight()
    if weight is not None and np.size(weight) == 0:  # XGBoost: an empty array
        weight = None
    if labels is None:
        raise ValueError(f"{library} data set has no label: the loss needs targets")
    return labels, weight


class _Adapter:
    """What objectives and metrics share: the loss, inputs in the loss's layout."""

    def __init__(self, loss, library):
        if not (hasattr(loss, "loss") and hasattr(loss, "grad_hess")):
            raise TypeError(
                f"loss: needs a fastloss loss with a per-element Hessian (loss and grad_hess "
                f"methods), got {type(loss).__name__}"
            )
        if library not in LIBRARIES:
            raise ValueError(f"library: must be one of {LIBRARIES}, got {library!r}")
        self.loss = loss
        self.library = library
        self._softmax = isinstance(loss, _SOFTMAX)

    def _unpack(self, first, second, sample_weight):
        """``(raw, labels, weight, native)`` from either calling convention."""
        native = _library_data(second)
        if native is None:  # scikit-learn APIs: (y_true, y_pred[, weight])
            return second, first, sample_weight, False
        if sample_weight is not None:
            raise TypeError("sample_weight: the weights come from the data set; pass none")
        labels, weight = _from_data(second, native)
        return first, labels, weight, True

    def _inputs(self, raw, labels, weight):
        raw = np.asarray(raw)
        labels = np.asarray(labels)
        if self._softmax and (raw.ndim != 2 or raw.shape[1] < 2):
            raise ValueError(
                f"raw scores: {type(self.loss).__name__} needs (n, K) raw scores, K >= 2, got "
                f"shape {raw.shape}; train with num_class=K (LightGBM's objective and XGBoost's "
                "num_class parameter)"
            )
        if (labels.shape != raw.shape and labels.size == raw.size and raw.ndim == 2
                and not isinstance(self.loss, Pinball)):  # pinball's target is (N,)
            labels = labels.reshape(raw.shape)  # multi-target labels, flattened by XGBoost
        if weight is not None:
            weight = np.asarray(weight)
            if weight.size == 0:
                weight = None
        return raw, labels, weight


class Objective(_Adapter):
    """A custom objective: ``(grad, hess)`` of a fastloss loss, per row.

    Made by :func:`lightgbm_objective` and :func:`xgboost_objective`; see the
    module's docstring for the conventions. ``hessian`` holds the resolved
    choice (``"exact"``, ``"lightgbm"``, ``"xgboost"`` or ``"floor"``) and
    ``floor`` its constant (None without a floor).
    """

    def __init__(self, loss, *, hessian=None, library="lightgbm"):
        super().__init__(loss, library)
        if hessian is None:
            hessian = _default_hessian(loss, library)
        floor = None
        if isinstance(hessian, numbers.Real) and not isinstance(hessian, (bool, np.bool_)):
            floor = float(hessian)
            if not (floor > 0 and np.isfinite(floor)):
                raise ValueError(
                    f"hessian: a floor must be a positive finite number, got {hessian!r}")
            hessian = "floor"
        elif hessian not in HESSIANS:
            raise ValueError(
                f"hessian: must be one of {HESSIANS} or a positive float (a floor), got {hessian!r}"
            )
        elif hessian == "floor":
            floor = _floor_constant(loss)
            if floor is None:
                raise ValueError(
                    f"hessian: {type(loss).__name__} has no default floor; pass the floor as a "
                    "positive float, hessian=c"
                )
        if hessian in LIBRARIES and not self._softmax:
            raise ValueError(
                f"hessian: {hessian!r} is a convention of softmax losses (CrossEntropy, "
                f"SoftmaxFocal); for {type(loss).__name__} use 'exact', 'floor' or a float"
            )
        self.hessian = hessian
        self.floor = floor
        self._sum = _with_reduction(loss, "sum")

    def __repr__(self):
        floor = "" if self.floor is None else f", floor={self.floor!r}"
        return (f"{type(self).__name__}({self.loss!r}, hessian={self.hessian!r}{floor}, "
                f"library={self.library!r})")

    def __call__(self, y_true, y_pred, sample_weight=None):
        """``(grad, hess)``: ``(y_true, y_pred[, sample_weight])`` from the scikit-learn
        APIs, or ``(raw_scores, data_set)`` from ``lightgbm.train`` / ``xgboost.train``."""
        raw, labels, weight, _ = self._unpack(y_true, y_pred, sample_weight)
        return self.grad_hess(raw, labels, sample_weight=weight)

    def grad_hess(self, raw, labels, *, sample_weight=None):
        """Gradient and Hessian (``hessian=`` applied) of the summed loss w.r.t. ``raw``.

        One fused ``grad_hess`` of the loss, then the Hessian convention in
        place: a factor for ``"lightgbm"`` / ``"xgboost"``, a floor (times the
        sample weight) for ``"floor"``.
        """
        raw, labels, weight = self._inputs(raw, labels, sample_weight)
        grad, hess = self._sum.grad_hess(raw, labels, sample_weight=weight)
        if self.hessian == "lightgbm":
            k = raw.shape[-1]
            hess *= k / (k - 1.0)
        elif self.hessian == "xgboost":
            hess *= 2.0
        elif self.hessian == "floor":
            if weight is None:
                np.maximum(hess, self.floor, out=hess)
            else:
                w = weight.astype(hess.dtype, copy=False)
                w = w.reshape(w.shape + (1,) * (hess.ndim - w.ndim))
                np.maximum(hess, self.floor * w, out=hess)
        return grad, hess

    def transform(self, raw):
        """Raw scores to predictions: ``sigmoid`` for BCE and sigmoid focal,
        ``softmax`` over the last axis for the softmax losses, the raw scores
        themselves for the regression losses. For the ``predict`` /
        ``predict_proba`` of ``LGBMClassifier(objective=obj)``, which returns raw
        scores."""
        raw = np.asarray(raw, dtype=np.result_type(np.asarray(raw).dtype, np.float32))
        if isinstance(self.loss, _SIGMOID):
            # sigmoid from exp(-|x|): no overflow for any x
            e = np.exp(-np.abs(raw))
            return np.where(raw >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        if self._softmax:
            z = np.exp(raw - raw.max(axis=-1, keepdims=True))
            return z / z.sum(axis=-1, keepdims=True)
        return raw


class Metric(_Adapter):
    """An evaluation metric: the loss on an evaluation set, from raw scores.

    Made by :func:`lightgbm_metric` and :func:`xgboost_metric`. The value is
    the loss with its own reduction (``"none"`` counts as ``"mean"``): by
    default the mean, weighted by the sample weights. Lower is better.
    """

    def __init__(self, loss, *, name=None, library="lightgbm"):
        super().__init__(loss, library)
        self.name = _loss_name(loss) if name is None else str(name)
        self.__name__ = self.name  # XGBoost's scikit-learn API names a metric by __name__
        self._reduced = _with_reduction(loss, "mean") if getattr(
            loss, "reduction", None) == "none" else loss

    def __repr__(self):
        return f"{type(self).__name__}({self.loss!r}, name={self.name!r}, library={self.library!r})"

    def __call__(self, y_true, y_pred, sample_weight=None):
        """LightGBM: ``(name, value, False)``; XGBoost: ``(name, value)`` from
        ``xgboost.train``, ``value`` from its scikit-learn API."""
        raw, labels, weight, native = self._unpack(y_true, y_pred, sample_weight)
        value = self.value(raw, labels, sample_weight=weight)
        if self.library == "lightgbm":
            return self.name, value, False
        return (self.name, value) if native else value

    def value(self, raw, labels, *, sample_weight=None):
        """The loss of the raw scores, as a Python float."""
        raw, labels, weight = self._inputs(raw, labels, sample_weight)
        return float(self._reduced.loss(raw, labels, sample_weight=weight))


def lightgbm_objective(loss, *, hessian=None):
    """A LightGBM custom objective from a fastloss loss: ``(grad, hess)`` per row.

    Works as ``LGBMClassifier(objective=obj)`` / ``LGBMRegressor(objective=obj)``
    (called ``obj(y_true, y_pred, weight)``) and as
    ``lightgbm.train({"objective": obj, ...})`` (called ``obj(preds, train_set)``).
    Multiclass: pass ``num_class`` (``LGBMClassifier`` does it); scores, gradient
    and Hessian are ``(n, K)``.

    hessian: ``"exact"``, ``"lightgbm"`` (softmax: ``K/(K-1)`` times the exact
    diagonal), ``"xgboost"`` (softmax: times 2), ``"floor"`` or a positive float
    (the exact Hessian raised to at least that, per unit of sample weight).
    Default: ``"lightgbm"`` for ``CrossEntropy`` (reproduces ``multiclass``),
    ``"exact"`` for ``BCEWithLogits`` (reproduces ``binary``) and ``MSE``, a
    floor for the focal losses (0.01: their exact Hessian is negative for
    confidently wrong rows), for ``L1`` / ``Pinball`` (1, LightGBM's own) and for
    ``Huber`` / ``SmoothL1`` (their inside curvature). See the module docstring.

    The user's loss is not modified; its reduction is ignored (a ``"sum"``
    copy gives per-row derivatives). Custom objectives start from a raw score
    of 0; ``LGBMClassifier.predict_proba`` returns raw scores: use
    ``obj.transform``.

    >>> import numpy as np, fastloss
    >>> from fastloss import gbdt
    >>> obj = gbdt.lightgbm_objective(fastloss.BCEWithLogits())
    >>> grad, hess = obj(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    >>> grad, hess
    (array([-0.5,  0.5]), array([0.25, 0.25]))
    """
    return Objective(loss, hessian=hessian, library="lightgbm")


def xgboost_objective(loss, *, hessian=None):
    """An XGBoost custom objective from a fastloss loss: ``(grad, hess)`` per row.

    Works as ``XGBClassifier(objective=obj)`` / ``XGBRegressor(objective=obj)``
    (called ``obj(y_true, y_pred[, sample_weight=w])``) and as
    ``xgboost.train(params, dtrain, obj=obj)`` (called ``obj(predt, dtrain)``).
    Multiclass: ``num_class`` in ``params`` (``XGBClassifier`` sets it); scores,
    gradient and Hessian are ``(n, K)``. XGBoost passes float32 scores, so the
    loss computes in float32.

    hessian: as :func:`lightgbm_objective`; the default for ``CrossEntropy`` is
    ``"xgboost"`` (``2 p(1-p)``, reproduces ``multi:softprob``).

    ``xgboost.train`` starts from ``base_score`` through ``params["objective"]``'s
    link: by default ``reg:squarederror``, a raw score of 0.5; pass
    ``base_score=0`` or ``objective="binary:logistic"`` (a margin of 0).
    """
    return Objective(loss, hessian=hessian, library="xgboost")


def lightgbm_metric(loss, *, name=None):
    """A LightGBM evaluation metric: ``(name, value, is_higher_better=False)``.

    ``LGBMModel.fit(..., eval_metric=m)`` calls ``m(y_true, y_pred, weight)``;
    ``lightgbm.train(..., feval=m)`` calls ``m(preds, eval_set)``. The value is
    the loss's mean over the set, weighted by its sample weights, computed
    from raw scores: what LightGBM passes when the objective is custom (with
    a built-in objective it passes transformed predictions). Set
    ``metric="None"`` to drop LightGBM's own metric, which a custom objective
    leaves meaningless. ``name`` defaults to the fastloss function's name.
    """
    return Metric(loss, name=name, library="lightgbm")


def xgboost_metric(loss, *, name=None):
    """An XGBoost evaluation metric of a fastloss loss, on raw scores.

    ``XGBModel(eval_metric=m)`` calls ``m(y_true, y_pred[, sample_weight=w])``
    and gets the value (named by ``m.__name__``); ``xgboost.train(...,
    custom_metric=m)`` calls ``m(predt, dtrain)`` and gets ``(name, value)``.
    XGBoost passes raw scores when the objective is custom (it passes
    transformed predictions with a built-in one). The value is the weighted
    mean loss; lower is better (``disable_default_eval_metric=1`` drops
    XGBoost's own metric).
    """
    return Metric(loss, name=name, library="xgboost")

"""scikit-learn estimators: linear models fitted on fastloss's fused losses.

:class:`LinearClassifier` and :class:`LinearRegressor` fit ``X @ coef_.T +
intercept_`` by ``scipy.optimize.minimize(method="L-BFGS-B")``. Each
evaluation of the objective (one per L-BFGS-B iteration, more when its line
search backtracks) is one matrix product for the logits, one fused
fastloss ``loss_grad`` call (reduction ``"sum"``, the per-sample weights passed
as ``sample_weight``, the gradient written over the logits with ``out=``) and
one matrix product for the gradient w.r.t. the coefficients. The optimiser
works in float64 whatever the dtype of ``X``.

This module needs scikit-learn and SciPy; ``import fastloss`` does not import
it. It only uses fastloss's public API.
"""
import numbers
import warnings

import numpy as np
from scipy import optimize
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import fastloss

__all__ = ["LinearClassifier", "LinearRegressor"]

CLASSIFIER_LOSSES = ("cross_entropy", "softmax_focal", "bce", "sigmoid_focal")
REGRESSOR_LOSSES = ("mse", "huber", "l1", "pinball")


# --------------------------------------------------------------------------- shared
def _real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A real scalar parameter in a range, or a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: must be a real number, got {value!r}")
    value = float(value)
    ok = not np.isnan(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name}: must be in {rng}, got {value!r}")
    return value


def _common_params(est, losses):
    if est.loss not in losses:
        raise ValueError(f"loss: must be one of {', '.join(map(repr, losses))}, got {est.loss!r}")
    alpha = _real(est.alpha, "alpha", low=0.0)
    if not isinstance(est.fit_intercept, (bool, np.bool_)):
        raise ValueError(f"fit_intercept: must be True or False, got {est.fit_intercept!r}")
    if (isinstance(est.max_iter, (bool, np.bool_)) or not isinstance(est.max_iter, numbers.Integral)
            or est.max_iter < 1):
        raise ValueError(f"max_iter: must be an integer >= 1, got {est.max_iter!r}")
    tol = _real(est.tol, "tol", low=0.0)
    return alpha, tol


def _sample_weight(sample_weight, X):
    """Validated float64 weights of shape (n_samples,), ones when absent.

    Always an array, so that ``sample_weight=None`` and ones run the very same
    arithmetic.
    """
    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def _minimize(fun, theta0, max_iter, tol, name):
    """L-BFGS-B with scikit-learn LogisticRegression's settings; warns if max_iter is hit."""
    res = optimize.minimize(
        fun, theta0, method="L-BFGS-B", jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                 "ftol": 64 * np.finfo(np.float64).eps},
    )
    if res.status == 1:  # the iteration limit; a stalled line search (status 2) is the
        # usual ending at float precision or at a kink of l1 / pinball, not a failure
        warnings.warn(
            f"{name}: L-BFGS-B stopped after max_iter={max_iter} iterations before the "
            f"projected gradient fell below tol={tol:g}; increase max_iter or scale the data.",
            ConvergenceWarning, stacklevel=3,
        )
    return res.x, int(res.nit)


def _check_X_predict(est, X):
    check_is_fitted(est)
    return validate_data(est, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32],
                         reset=False)


# --------------------------------------------------------------------------- classifier
class LinearClassifier(ClassifierMixin, BaseEstimator):
    r"""Linear classifier fitted with a fastloss loss by L-BFGS-B.

    The model is :math:`z = W x + b`. With ``coef_`` :math:`W` and
    ``intercept_`` :math:`b`, ``fit`` minimises

    .. math::
        \sum_i s_i\, c_{y_i}\, \ell(z_i, y_i) \;+\; \frac{\alpha}{2}\, \lVert W \rVert_F^2

    over :math:`W` and :math:`b` (the intercept is not penalised), where
    :math:`s` is ``sample_weight`` (ones when absent), :math:`c` the class
    weights (``class_weight``) and :math:`\ell` the loss of one sample. With
    ``loss="cross_entropy"`` this is exactly scikit-learn's
    ``LogisticRegression(C=1/alpha)`` (L2 penalty, the default ``l1_ratio=0``),
    which minimises :math:`C \sum_i s_i c_{y_i} \ell_i + \tfrac12 \lVert W
    \rVert_F^2`: dividing that by :math:`C` gives the objective above, so the
    two have the same minimiser, binary and multinomial, with or without
    weights (``alpha=0`` is ``C=inf``, no penalty). The optimiser runs on the
    objective divided by :math:`\sum_i s_i c_{y_i}`, as scikit-learn's lbfgs
    does, so ``tol`` bounds the same projected gradient as there.

    Logits. Binary problems (two classes) use **one** logit per sample,
    :math:`z > 0` meaning ``classes_[1]``, and ``coef_`` has shape
    ``(1, n_features)`` as in scikit-learn; a two-column softmax would be
    over-parametrised. For every loss the binary problem is the two-class
    case of the multiclass one with the first class's logit fixed at 0:

    ================  ==============================  ==================================
    ``loss``          2 classes (one logit)           K > 2 classes (K logits)
    ================  ==============================  ==================================
    cross_entropy     ``BCEWithLogits``               ``CrossEntropy`` (softmax)
    softmax_focal     ``SigmoidFocal(alpha=-1)``      ``SoftmaxFocal`` (softmax)
    bce               ``BCEWithLogits``               ``BCEWithLogits`` one-vs-rest
    sigmoid_focal     ``SigmoidFocal``                ``SigmoidFocal`` one-vs-rest
    ================  ==============================  ==================================

    (two-class softmax cross-entropy on logits ``[0, z]`` is BCE on ``z``, and
    two-class softmax focal is sigmoid focal without ``alpha``, exactly).
    ``bce`` and ``sigmoid_focal`` with more than two classes fit K one-vs-rest
    logits on one-hot targets in one joint problem; since both the loss and
    the penalty are sums over the K columns, that is K independent binary
    problems, i.e. ``OneVsRestClassifier(LogisticRegression(C=1/alpha))`` for
    ``bce``. Their ``predict_proba`` divides the K sigmoids by their sum, as
    ``OneVsRestClassifier`` does.

    Parameters
    ----------
    loss : {"cross_entropy", "softmax_focal", "bce", "sigmoid_focal"}, default="cross_entropy"
    alpha : float >= 0, default=1.0
        L2 strength; ``1 / C`` of ``LogisticRegression``.
    fit_intercept : bool, default=True
    class_weight : None, "balanced" or dict, default=None
        Per-class factors :math:`c` of the sample weights (the
        ``LogisticRegression`` convention: a class weight multiplies the
        sample weight of each sample of the class, whatever the loss).
        ``"balanced"`` is :func:`fastloss.class_weight` of the encoded labels
        with ``sample_weight``, i.e. ``sum(s) / (n_classes * sum(s[y == k]))``
        (scikit-learn's ``compute_class_weight("balanced", ...,
        sample_weight=s)``); a dict maps labels (any label type of ``y``) to
        weights, 1 for the labels it omits.
    gamma : float >= 0, default=2.0
        Focusing parameter of ``softmax_focal`` and ``sigmoid_focal``
        (ignored by the other losses); ``gamma=0`` gives cross-entropy / BCE.
    focal_alpha : float in [0, 1] or None, default=0.25
        ``alpha`` of :class:`fastloss.SigmoidFocal` for ``sigmoid_focal``
        (the weight of the positive side of each logit; ``None`` or a
        negative value disables it; ignored by the other losses). It cannot
        be called ``alpha``, which is the L2 strength.
    label_smoothing : float in [0, 1], default=0.0
        For ``cross_entropy`` (softmax targets ``(1-eps) onehot + eps/K``;
        the binary one-logit case uses the target ``(1-eps) y + eps/2``, the
        same loss), ``bce`` and ``sigmoid_focal`` (each logit's target
        ``(1-eps) t + eps/2``). ``softmax_focal`` has none: a non-zero value
        is a ``ValueError``.
    max_iter : int, default=1000
        L-BFGS-B iterations; reaching it is a ``ConvergenceWarning``.
    tol : float, default=1e-4
        ``gtol`` of L-BFGS-B on the normalised objective (as scikit-learn).
    backend : {"cython", "numba"} or None, default=None
        fastloss backend of the loss (None: the current default).

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    coef_ : ndarray (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray (1,) or (n_classes,); zeros when ``fit_intercept=False``
    n_iter_ : int, L-BFGS-B iterations
    n_features_in_, feature_names_in_ : as every scikit-learn estimator

    The multinomial problem starts from zero and its gradient sums to zero
    over the classes, so, as in scikit-learn, the fitted coefficients and
    intercepts sum to zero over the classes (the unpenalised intercepts are
    otherwise defined only up to a constant).
    """

    def __init__(self, loss="cross_entropy", *, alpha=1.0, fit_intercept=True,
                 class_weight=None, gamma=2.0, focal_alpha=0.25, label_smoothing=0.0,
                 max_iter=1000, tol=1e-4, backend=None):
        self.loss = loss
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.gamma = gamma
        self.focal_alpha = focal_alpha
        self.label_smoothing = label_smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- fit -------------------------------------------------------------------
    def _loss_params(self):
        gamma = _real(self.gamma, "gamma", low=0.0)
        eps = _real(self.label_smoothing, "label_smoothing", low=0.0, high=1.0)
        focal_alpha = -1.0 if self.focal_alpha is None else _real(
            self.focal_alpha, "focal_alpha", high=1.0)
        if self.loss == "softmax_focal" and eps != 0:
            raise ValueError("label_smoothing: loss='softmax_focal' has no label smoothing; "
                             f"got {self.label_smoothing!r}")
        return gamma, eps, focal_alpha

    def _loss_object(self, n_classes, gamma, eps, focal_alpha):
        """The fastloss loss, its kind of target ("labels", "binary" or "onehot"), smoothing."""
        kw = dict(reduction="sum", backend=self.backend)
        binary = n_classes == 2
        if self.loss == "cross_entropy":
            if binary:
                return fastloss.BCEWithLogits(**kw), "binary", eps
            return fastloss.CrossEntropy(label_smoothing=eps, **kw), "labels", 0.0
        if self.loss == "softmax_focal":
            if binary:
                return fastloss.SigmoidFocal(alpha=-1.0, gamma=gamma, **kw), "binary", 0.0
            return fastloss.SoftmaxFocal(gamma=gamma, **kw), "labels", 0.0
        kind = "binary" if binary else "onehot"
        if self.loss == "bce":
            return fastloss.BCEWithLogits(**kw), kind, eps
        return fastloss.SigmoidFocal(alpha=focal_alpha, gamma=gamma, **kw), kind, eps

    def _class_weights(self, y, encoded, sw):
        n_classes = self.classes_.size
        if self.class_weight is None:
            return np.ones(n_classes)
        if isinstance(self.class_weight, str):
            if self.class_weight != "balanced":
                raise ValueError("class_weight: must be None, 'balanced' or a dict, got "
                                 f"{self.class_weight!r}")
            return fastloss.class_weight(encoded, n_classes, sample_weight=sw)
        if not isinstance(self.class_weight, dict):
            raise ValueError("class_weight: must be None, 'balanced' or a dict, got "
                             f"{self.class_weight!r}")
        return compute_class_weight(self.class_weight, classes=self.classes_, y=y)

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features; dense or CSR/CSC) and labels ``y``."""
        alpha, tol = _common_params(self, CLASSIFIER_LOSSES)
        loss_params = self._loss_params()
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], dtype=np.float64)
        check_classification_targets(y)
        le = LabelEncoder()
        encoded = le.fit_transform(y)
        self.classes_ = le.classes_
        n_classes = self.classes_.size
        if n_classes < 2:
            raise ValueError("LinearClassifier needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {self.classes_[0]!r}")
        loss, kind, eps = self._loss_object(n_classes, *loss_params)
        sw = _sample_weight(sample_weight, X)
        sw = sw * self._class_weights(y, encoded, sw)[encoded]
        per_class = np.bincount(encoded, weights=sw, minlength=n_classes)
        if np.count_nonzero(per_class > 0) < 2:
            raise ValueError("LinearClassifier needs samples of at least 2 classes with positive "
                             f"weight; only class {self.classes_[np.argmax(per_class)]!r} has any")

        if kind == "labels":
            target = encoded.astype(np.intp)
        elif kind == "binary":
            target = encoded.astype(np.float64) * (1.0 - eps) + eps / 2
        else:
            target = np.full((encoded.size, n_classes), eps / 2)
            target[np.arange(encoded.size), encoded] = 1.0 - eps / 2
        n_out = 1 if n_classes == 2 else n_classes
        self._softmax = kind == "labels"  # else sigmoids: one logit, or one-vs-rest
        theta, self.n_iter_ = _fit_linear(X, target, sw, loss, n_out, 0.5 * alpha,
                                          self.fit_intercept, 0.0, self.max_iter, tol,
                                          type(self).__name__)
        n_features = X.shape[1]
        self.coef_ = theta[: n_out * n_features].reshape(n_out, n_features).copy()
        self.intercept_ = (theta[n_out * n_features:].copy() if self.fit_intercept
                           else np.zeros(n_out))
        return self

    # -- predict ---------------------------------------------------------------
    def decision_function(self, X):
        """Logits: (n_samples,) for two classes (> 0 means ``classes_[1]``), else (n_samples, K)."""
        X = _check_X_predict(self, X)
        z = np.asarray(X @ self.coef_.T) + self.intercept_
        return z[:, 0] if self.classes_.size == 2 else z

    def predict(self, X):
        z = self.decision_function(X)
        idx = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); rows sum to 1.

        Softmax for the softmax losses; ``[1 - p, p]`` with ``p = sigmoid(z)``
        for two classes; the sigmoids divided by their sum for one-vs-rest.
        """
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.stack([expit(-z), expit(z)], axis=1)
        if self._softmax:
            return softmax(z, axis=1)
        p = expit(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed without underflow where possible."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.stack([log_expit(-z), log_expit(z)], axis=1)
        if self._softmax:
            return log_softmax(z, axis=1)
        lp = log_expit(z)
        return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)


# --------------------------------------------------------------------------- regressor
class LinearRegressor(RegressorMixin, BaseEstimator):
    r"""Linear regressor fitted with a fastloss loss by L-BFGS-B.

    With ``coef_`` :math:`w` and ``intercept_`` :math:`b`, ``fit`` minimises

    .. math::
        \sum_i s_i\, \ell(x_i \cdot w + b,\; y_i) \;+\; \alpha\, \lVert w \rVert_2^2

    (the intercept is not penalised; :math:`s` is ``sample_weight``, ones
    when absent) with :math:`\ell` the fastloss loss of one element:

    - ``"mse"``: :math:`(\hat y - y)^2` (:class:`fastloss.MSE`). The objective
      is then exactly scikit-learn's ``Ridge(alpha)``,
      :math:`\sum_i s_i (y_i - x_i w - b)^2 + \alpha \lVert w \rVert^2`, with
      the same ``alpha``;
    - ``"huber"``: :class:`fastloss.Huber` with ``delta``
      (:math:`\tfrac12 d^2` inside, PyTorch's definition);
    - ``"l1"``: :math:`|\hat y - y|`;
    - ``"pinball"``: :class:`fastloss.Pinball` with ``quantile``; with
      ``alpha=0`` this is unpenalised linear quantile regression, the
      problem of ``QuantileRegressor(alpha=0)`` (whose own penalty is L1).

    The penalty is ``alpha * ||w||^2`` (Ridge's convention) here, and
    ``alpha/2 * ||W||^2`` (LogisticRegression's ``1/(2C)``) in
    :class:`LinearClassifier`, so that each ``alpha`` is the scikit-learn
    parameter of its reference model.

    ``l1`` and ``pinball`` are not differentiable where a residual is 0;
    L-BFGS-B uses the subgradient fastloss returns there and stops when its
    line search cannot make progress, near (not exactly at) the optimum of
    those piecewise-linear objectives. The optimiser works on the objective
    divided by :math:`\sum_i s_i` and starts the intercept at the weighted
    mean of ``y`` (``mse``, ``huber``) or its weighted ``quantile`` (``l1``:
    the median; ``pinball``).

    Parameters
    ----------
    loss : {"mse", "huber", "l1", "pinball"}, default="mse"
    alpha : float >= 0, default=1.0
    fit_intercept : bool, default=True
    delta : float > 0, default=1.0
        Huber's threshold (``huber`` only).
    quantile : float in (0, 1), default=0.5
        The quantile of ``pinball`` (``pinball`` only).
    max_iter : int, default=1000
    tol : float, default=1e-4
        ``gtol`` of L-BFGS-B on the normalised objective.
    backend : {"cython", "numba"} or None, default=None

    Attributes
    ----------
    coef_ : ndarray (n_features,)
    intercept_ : float
    n_iter_ : int
    n_features_in_, feature_names_in_

    ``y`` is one target per sample (1-D); ``score`` is :math:`R^2`.
    """

    def __init__(self, loss="mse", *, alpha=1.0, fit_intercept=True, delta=1.0, quantile=0.5,
                 max_iter=1000, tol=1e-4, backend=None):
        self.loss = loss
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.delta = delta
        self.quantile = quantile
        self.max_iter = max_iter
        self.tol = tol
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # A quantile other than the median is not fitted for R^2 (the score
        # scikit-learn's checks ask of a regressor): it lies off the centre on purpose.
        tags.regressor_tags.poor_score = self.loss == "pinball" and self.quantile != 0.5
        return tags

    def _loss_object(self):
        kw = dict(reduction="sum", backend=self.backend)
        if self.loss == "mse":
            return fastloss.MSE(**kw)
        if self.loss == "huber":
            return fastloss.Huber(delta=_real(self.delta, "delta", low=0.0, low_open=True), **kw)
        if self.loss == "l1":
            return fastloss.L1(**kw)
        q = _real(self.quantile, "quantile", low=0.0, high=1.0, low_open=True, high_open=True)
        return fastloss.Pinball(quantile=q, **kw)

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features; dense or CSR/CSC) and targets ``y`` (n_samples,)."""
        alpha, tol = _common_params(self, REGRESSOR_LOSSES)
        loss = self._loss_object()
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], dtype=np.float64,
                             y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        sw = _sample_weight(sample_weight, X)
        b0 = 0.0
        if self.fit_intercept:
            if self.loss in ("mse", "huber"):
                b0 = float(np.average(y, weights=sw))
            else:
                b0 = _weighted_quantile(y, sw, 0.5 if self.loss == "l1" else self.quantile)
        theta, self.n_iter_ = _fit_linear(X, y, sw, loss, None, alpha, self.fit_intercept, b0,
                                          self.max_iter, tol, type(self).__name__)
        n_features = X.shape[1]
        self.coef_ = theta[:n_features].copy()
        self.intercept_ = float(theta[n_features]) if self.fit_intercept else 0.0
        return self

    def predict(self, X):
        X = _check_X_predict(self, X)
        return np.asarray(X @ self.coef_) + self.intercept_


# --------------------------------------------------------------------------- the solver
def _weighted_quantile(y, sw, q):
    """The smallest y whose cumulative weight reaches q * sum(sw) (inverted CDF).

    Integer weights give the quantile of the repeated samples exactly.
    """
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(sw[order])
    i = min(int(np.searchsorted(cum, q * cum[-1])), y.size - 1)
    return float(y[order[i]])


def _fit_linear(X, target, sw, loss, n_out, penalty, fit_intercept, b0, max_iter, tol, name):
    """Minimise ``(loss.sum(X @ W.T + b) + penalty * ||W||^2) / sum(sw)`` by L-BFGS-B.

    ``n_out=None``: one output, ``W`` of shape (n_features,) and predictions
    (n_samples,); otherwise ``W`` is (n_out, n_features) and the logits
    (n_samples, n_out), given to the loss as (n_samples,) when n_out == 1.
    ``loss`` has ``reduction="sum"``; ``sw`` are the per-sample weights.
    Returns the parameters ``[W.ravel(), b]`` and the iteration count.
    """
    n_features = X.shape[1]
    k = 1 if n_out is None else n_out
    n_coef = k * n_features
    scale = 1.0 / sw.sum()  # > 0: checked by _check_sample_weight
    squeeze = n_out is None or n_out == 1

    def objective(theta):
        W = theta[:n_coef].reshape(k, n_features)
        z = np.ascontiguousarray(X @ W.T)  # (n_samples, k), a fresh buffer
        if fit_intercept:
            z += theta[n_coef:]
        value, g = loss.loss_grad(z.reshape(-1) if squeeze else z, target, sample_weight=sw,
                                  out=z.reshape(-1) if squeeze else z)
        g = g.reshape(z.shape)  # the gradient w.r.t. the logits, written over z
        grad = np.empty_like(theta)
        grad[:n_coef] = (np.asarray(X.T @ g).T + 2.0 * penalty * W).reshape(-1)
        if fit_intercept:
            grad[n_coef:] = g.sum(axis=0)
        value = float(value) + penalty * float(W.reshape(-1) @ W.reshape(-1))
        return value * scale, grad * scale

    theta0 = np.zeros(n_coef + (k if fit_intercept else 0))
    if fit_intercept:
        theta0[n_coef:] = b0
    return _minimize(objective, theta0, max_iter, tol, name)

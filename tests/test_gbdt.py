"""fastloss.gbdt: custom objectives and metrics for LightGBM and XGBoost.

Expected values come from independent sources:
- gradients and Hessians: NumPy formulas written here from the losses' definitions
  (sigmoid, softmax, clip, sign), the libraries' Hessian conventions as their C++ sources
  write them (LightGBM ``K/(K-1) p(1-p)``, XGBoost ``2 p(1-p)``), and ``gradcheck``'s
  central finite differences for the focal losses;
- metrics: the float64 loop references of ``reference.py``;
- training: models trained with the libraries' built-in objectives (``binary``,
  ``multiclass``, ``binary:logistic``, ``multi:softprob``) from the same initial score,
  whose raw predictions the fastloss objectives must reproduce through both APIs of
  each library; and properties that a wrong objective would break (minority recall of
  the focal loss, 90 % coverage of the 0.9 quantile).
The data sets are small and the models shallow: the whole file runs in seconds.
"""
import inspect
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastloss
import reference as ref
from fastloss import gbdt
from fastloss._helpers import gradcheck

THREADS = 1  # boosting libraries and fastloss alike: CI machines are small and shared


@pytest.fixture(autouse=True)
def _one_thread():
    with fastloss.num_threads(THREADS):
        yield


@pytest.fixture(scope="module")
def lgb():
    return pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def xgb():
    return pytest.importorskip("xgboost")


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free, independent of the kernels


def _softmax(x):
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _binary_data(n=2000, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=n, n_features=8, n_informative=4, random_state=seed)
    return X, y.astype(np.float64)


def _multiclass_data(n=2000, k=4, seed=0):
    from sklearn.datasets import make_classification
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=k,
                               random_state=seed)


# --------------------------------------------------------------------------- the objective
@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_bce_objective_is_p_minus_y(rng, backend, library, weighted):
    raw = 4 * rng.standard_normal(50)
    y = (rng.random(50) < 0.3).astype(np.float64)
    w = rng.uniform(0.1, 3.0, 50) if weighted else None
    make = getattr(gbdt, f"{library}_objective")
    obj = make(fastloss.BCEWithLogits(backend=backend))
    assert obj.hessian == "exact" and obj.floor is None
    grad, hess = obj(y, raw, w)
    p, q = _sigmoid(raw), _sigmoid(-raw)   # q = 1 - p, without the cancellation
    ww = 1.0 if w is None else w
    assert grad.shape == hess.shape == raw.shape
    assert_allclose(grad, ww * (p - y), rtol=1e-12, atol=1e-15)
    assert_allclose(hess, ww * p * q, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_cross_entropy_hessian_conventions(rng, backend, weighted):
    n, k = 40, 5
    raw = 3 * rng.standard_normal((n, k))
    y = rng.integers(0, k, n).astype(np.float32)  # the libraries pass float labels
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    p = _softmax(raw)
    onehot = np.eye(k)[y.astype(int)]
    ww = np.ones((n, 1)) if w is None else w[:, None]
    grad_ref = ww * (p - onehot)
    expected = {
        "exact": ww * p * (1 - p),
        "lightgbm": ww * k / (k - 1) * p * (1 - p),   # LightGBM's multiclass
        "xgboost": ww * 2 * p * (1 - p),              # XGBoost's multi:softprob
    }
    ce = fastloss.CrossEntropy(backend=backend)
    for hessian, hess_ref in expected.items():
        grad, hess = gbdt.lightgbm_objective(ce, hessian=hessian)(y, raw, w)
        assert grad.shape == hess.shape == (n, k)
        assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-15)
        assert_allclose(hess, hess_ref, rtol=1e-12, atol=1e-300)
    # the defaults are each library's own convention
    assert gbdt.lightgbm_objective(ce).hessian == "lightgbm"
    assert gbdt.xgboost_objective(ce).hessian == "xgboost"
    assert_allclose(gbdt.xgboost_objective(ce)(y, raw, w)[1], expected["xgboost"], rtol=1e-12)


def test_regression_objectives_and_floors(rng, backend):
    n = 60
    raw = 2 * rng.standard_normal(n)
    y = 2 * rng.standard_normal(n)
    y[:3] = raw[:3]                       # exact ties: L1's gradient 0, pinball's 1 - q
    w = rng.uniform(0.1, 3.0, n)
    d = raw - y
    cases = [
        (fastloss.MSE(backend=backend), "exact", None, 2 * d, np.full(n, 2.0)),
        (fastloss.Huber(delta=0.7, backend=backend), "floor", 1.0,
         np.clip(d, -0.7, 0.7), np.ones(n)),
        (fastloss.SmoothL1(beta=0.5, backend=backend), "floor", 2.0,
         np.clip(d / 0.5, -1, 1), np.full(n, 2.0)),
        (fastloss.SmoothL1(beta=0.0, backend=backend), "floor", 1.0, np.sign(d), np.ones(n)),
        (fastloss.L1(backend=backend), "floor", 1.0, np.sign(d), np.ones(n)),
        (fastloss.Pinball(quantile=0.9, backend=backend), "floor", 1.0,
         np.where(d >= 0, 0.1, -0.9), np.ones(n)),
    ]
    for loss, hessian, floor, grad_ref, hess_ref in cases:
        obj = gbdt.xgboost_objective(loss)
        assert (obj.hessian, obj.floor) == (hessian, floor), loss
        grad, hess = obj(y, raw)
        assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-15, err_msg=repr(loss))
        assert_allclose(hess, hess_ref, rtol=1e-12, err_msg=repr(loss))
        grad, hess = obj(y, raw, sample_weight=w)       # XGBoost's keyword
        assert_allclose(grad, w * grad_ref, rtol=1e-12, atol=1e-15, err_msg=repr(loss))
        assert_allclose(hess, w * hess_ref, rtol=1e-12, err_msg=repr(loss))
    # exact: the Huber Hessian is 0 outside delta, L1's and pinball's everywhere
    huber = gbdt.lightgbm_objective(fastloss.Huber(delta=0.7), hessian="exact")
    assert_array_equal(huber(y, raw)[1], (np.abs(d) < 0.7).astype(float))
    assert not gbdt.lightgbm_objective(fastloss.L1(), hessian="exact")(y, raw)[1].any()
    # a float is a floor per unit of sample weight, over the exact Hessian
    obj = gbdt.lightgbm_objective(fastloss.Huber(delta=0.7), hessian=0.25)
    assert_allclose(obj(y, raw, w)[1], w * np.where(np.abs(d) < 0.7, 1.0, 0.25), rtol=1e-12)


def test_multi_quantile_and_multi_target_layouts(rng):
    n = 30
    raw = rng.standard_normal((n, 3))
    y = rng.standard_normal(n)
    w = rng.uniform(0.5, 2.0, n)
    obj = gbdt.xgboost_objective(fastloss.Pinball(quantile=[0.1, 0.5, 0.9]))
    grad, hess = obj(y, raw, sample_weight=w)
    q = np.array([0.1, 0.5, 0.9])
    assert_allclose(grad, w[:, None] * np.where(raw >= y[:, None], 1 - q, -q), rtol=1e-12)
    assert_allclose(hess, np.broadcast_to(w[:, None], (n, 3)), rtol=1e-12)
    # one quantile as an (n, 1) column: the target stays (n,)
    grad, _ = gbdt.xgboost_objective(fastloss.Pinball(quantile=0.9))(y, raw[:, :1])
    assert_allclose(grad[:, 0], np.where(raw[:, 0] >= y, 0.1, -0.9), rtol=1e-12)
    # multi-label BCE: XGBoost hands the (n, K) labels over flattened
    t = (rng.random((n, 3)) < 0.5).astype(np.float32)
    obj = gbdt.xgboost_objective(fastloss.BCEWithLogits())
    grad, _ = obj(t.ravel(), raw)
    assert_allclose(grad, _sigmoid(raw) - t, rtol=1e-12, atol=1e-15)


def test_sum_semantics_and_user_loss_untouched(rng, backend):
    raw = rng.standard_normal((25, 4))
    y = rng.integers(0, 4, 25)
    w = rng.uniform(0.5, 2.0, 25)
    for reduction in ("mean", "sum", "none"):
        loss = fastloss.CrossEntropy(label_smoothing=0.1, reduction=reduction, backend=backend)
        grad, hess = gbdt.lightgbm_objective(loss, hessian="exact")(y, raw, w)
        assert loss.reduction == reduction            # the user's object is not modified
        g_none, h_none = fastloss.CrossEntropy(label_smoothing=0.1, reduction="none",
                                               backend=backend).grad_hess(raw, y, sample_weight=w)
        assert_allclose(grad, g_none, rtol=1e-13)     # per row, not divided by n
        assert_allclose(hess, h_none, rtol=1e-13)


def test_float32_scores_compute_in_float32(rng):
    raw = rng.standard_normal((20, 3)).astype(np.float32)   # what XGBoost passes
    y = rng.integers(0, 3, 20).astype(np.float32)
    grad, hess = gbdt.xgboost_objective(fastloss.CrossEntropy())(y, raw)
    assert grad.dtype == hess.dtype == np.float32
    p = _softmax(raw.astype(np.float64))
    assert_allclose(hess, 2 * p * (1 - p), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("make", ["lightgbm_objective", "xgboost_objective"])
def test_objective_errors(make):
    make = getattr(gbdt, make)
    with pytest.raises(ValueError, match="'lightgbm' is a convention of softmax losses"):
        make(fastloss.BCEWithLogits(), hessian="lightgbm")
    with pytest.raises(ValueError, match="'xgboost' is a convention of softmax losses"):
        make(fastloss.MSE(), hessian="xgboost")
    with pytest.raises(ValueError, match="hessian: must be one of"):
        make(fastloss.MSE(), hessian="newton")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            make(fastloss.L1(), hessian=bad)
    with pytest.raises(ValueError, match="hessian: must be one of"):
        make(fastloss.L1(), hessian=True)
    with pytest.raises(TypeError, match="per-element Hessian"):
        make(fastloss.TripletMargin())
    with pytest.raises(TypeError, match="per-element Hessian"):
        make("cross_entropy")
    obj = make(fastloss.CrossEntropy())
    with pytest.raises(ValueError, match=r"needs \(n, K\) raw scores.*num_class"):
        obj(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"target: label 3"):
        obj(np.array([0, 1, 3]), np.zeros((3, 3)))     # fastloss's own validation
    with pytest.raises(ValueError, match="class labels must be integers"):
        obj(np.array([0, 1.5]), np.zeros((2, 3)))


def test_other_loss_objects_and_floor_without_default(rng):
    class Quartic:
        """A loss that is not a fastloss class: only loss and grad_hess."""
        reduction = "mean"

        def loss(self, x, t, sample_weight=None):
            return np.sum((x - t) ** 4)

        def grad_hess(self, x, t, sample_weight=None):
            w = 1.0 if sample_weight is None else sample_weight
            return w * 4 * (x - t) ** 3, w * 12 * (x - t) ** 2

    raw, y = rng.standard_normal(10), rng.standard_normal(10)
    user = Quartic()
    obj = gbdt.lightgbm_objective(user)
    assert obj.hessian == "exact"
    assert_allclose(obj(y, raw)[0], 4 * (raw - y) ** 3)
    assert user.reduction == "mean"
    with pytest.raises(ValueError, match="Quartic has no default floor"):
        gbdt.lightgbm_objective(user, hessian="floor")
    assert_allclose(gbdt.lightgbm_objective(user, hessian=0.5)(y, raw)[1],
                    np.maximum(12 * (raw - y) ** 2, 0.5))


def test_transform_and_repr_and_pickle(rng):
    raw = np.array([-800.0, -1.0, 0.0, 2.0, 800.0])
    obj = gbdt.lightgbm_objective(fastloss.SigmoidFocal(alpha=0.75))
    p = obj.transform(raw)
    assert np.all(np.isfinite(p))
    assert_allclose(p, _sigmoid(raw), rtol=1e-15)
    logits = rng.standard_normal((6, 3))
    assert_allclose(gbdt.xgboost_objective(fastloss.CrossEntropy()).transform(logits),
                    _softmax(logits), rtol=1e-14)
    assert_array_equal(gbdt.xgboost_objective(fastloss.MSE()).transform(raw), raw)
    assert "hessian='floor', floor=0.01" in repr(obj)
    back = pickle.loads(pickle.dumps(obj))
    assert_array_equal(back(np.ones(5), raw)[0], obj(np.ones(5), raw)[0])


def test_importing_gbdt_imports_neither_library():
    code = ("import sys, fastloss.gbdt; "
            "assert 'lightgbm' not in sys.modules and 'xgboost' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_native_calls_read_labels_and_weights(lgb, xgb, rng):
    X = rng.standard_normal((50, 3))
    y = rng.integers(0, 3, 50).astype(np.float64)
    w = rng.uniform(0.5, 2.0, 50)
    raw = rng.standard_normal((50, 3))
    for make, data, weighted in (
        (gbdt.lightgbm_objective, lgb.Dataset(X, y, weight=w).construct(), True),
        (gbdt.lightgbm_objective, lgb.Dataset(X, y).construct(), False),
        (gbdt.xgboost_objective, xgb.DMatrix(X, label=y, weight=w), True),
        (gbdt.xgboost_objective, xgb.DMatrix(X, label=y), False),   # get_weight(): empty
    ):
        obj = make(fastloss.CrossEntropy())
        expected = obj(y, raw, w if weighted else None)
        got = obj(raw, data)
        assert_allclose(got[0], expected[0], rtol=1e-6)       # labels pass through float32
        assert_allclose(got[1], expected[1], rtol=1e-6)
        with pytest.raises(TypeError, match="weights come from the data set"):
            obj(raw, data, w)
        metric = gbdt.xgboost_metric(fastloss.CrossEntropy())
        name, value = metric(raw, data)                         # xgboost.train's convention
        assert name == "cross_entropy"
        assert_allclose(value, metric(y, raw, w if weighted else None), rtol=1e-6)


# --------------------------------------------------------------------------- focal: gradcheck
class _ObjectiveAsLoss:
    """The objective seen as a loss: the summed loss, and the objective's gradient and
    Hessian, so that ``gradcheck`` differentiates the sum the objective claims to derive."""

    def __init__(self, loss, objective):
        self.sum = type(loss)(**{k: getattr(loss, k) for k in loss._options},
                              reduction="sum", backend=loss.backend)
        self.objective = objective

    def loss(self, x, t, sample_weight=None):
        return self.sum.loss(x, t, sample_weight=sample_weight)

    def loss_grad(self, x, t, sample_weight=None):
        return self.loss(x, t, sample_weight), self.objective(t, x, sample_weight)[0]

    def grad_hess(self, x, t, sample_weight=None):
        return self.objective(t, x, sample_weight)


@pytest.mark.parametrize("loss", [
    fastloss.SigmoidFocal(alpha=0.75, gamma=2.0),
    fastloss.SigmoidFocal(alpha=-1.0, gamma=0.5),
    fastloss.SoftmaxFocal(gamma=2.0),
    fastloss.SoftmaxFocal(gamma=1.5, weight=[1.0, 3.0, 0.5]),
], ids=["sigmoid-a.75", "sigmoid-g.5", "softmax", "softmax-weighted"])
def test_focal_objective_passes_gradcheck(rng, backend, loss):
    loss = type(loss)(**{k: getattr(loss, k) for k in loss._options}, backend=backend)
    if isinstance(loss, fastloss.SoftmaxFocal):
        raw = 2 * rng.standard_normal((30, 3))
        y = rng.integers(0, 3, 30)
    else:
        raw = 3 * rng.standard_normal(60)
        y = (rng.random(60) < 0.1).astype(np.float64)   # imbalanced, as in use
    w = rng.uniform(0.2, 2.0, len(y))
    exact = gbdt.lightgbm_objective(loss, hessian="exact")
    result = gradcheck(_ObjectiveAsLoss(loss, exact), raw, y, sample_weight=w)
    assert result, result
    # the default is the exact Hessian raised to the documented floor, times the weight
    default = gbdt.lightgbm_objective(loss)
    assert (default.hessian, default.floor) == ("floor", gbdt.FLOORS["focal"]) == ("floor", 0.01)
    g_exact, h_exact = exact(y, raw, w)
    g, h = default(y, raw, w)
    assert_array_equal(g, g_exact)
    ww = w if raw.ndim == 1 else w[:, None]
    assert_allclose(h, np.maximum(h_exact, 0.01 * ww), rtol=1e-15)


def test_focal_exact_hessian_is_negative_where_the_floor_matters(backend):
    # confidently wrong rows: the focal loss is concave in the logit there
    raw = np.array([-6.0, -4.0, 4.0, 6.0])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    h = gbdt.lightgbm_objective(fastloss.SigmoidFocal(backend=backend), hessian="exact")(y, raw)[1]
    assert np.all(h < 0)
    h = gbdt.lightgbm_objective(fastloss.SigmoidFocal(backend=backend))(y, raw)[1]
    assert_array_equal(h, 0.01)


# --------------------------------------------------------------------------- metrics
def test_metric_values_and_conventions(rng):
    raw = 2 * rng.standard_normal((40, 3))
    y = rng.integers(0, 3, 40).astype(np.float32)
    w = rng.uniform(0.2, 2.0, 40)
    ce = fastloss.CrossEntropy()
    expected = ref.cross_entropy(raw, y.astype(int), sample_weight=w)       # weighted mean
    m = gbdt.lightgbm_metric(ce)
    name, value, higher_better = m(y, raw, w)
    assert (name, higher_better) == ("cross_entropy", False)
    assert isinstance(value, float)
    assert_allclose(value, expected, rtol=1e-12)
    m = gbdt.xgboost_metric(ce, name="mlogloss_fl")
    assert m.__name__ == "mlogloss_fl"
    assert_allclose(m(y, raw, sample_weight=w), expected, rtol=1e-12)       # a bare value
    assert_allclose(m(y, raw), ref.cross_entropy(raw, y.astype(int)), rtol=1e-12)
    # reduction="none" reports the mean; "sum" is kept
    t = rng.random(40)
    x = rng.standard_normal(40)
    assert_allclose(gbdt.lightgbm_metric(fastloss.Huber(reduction="none"))(t, x)[1],
                    ref.huber_loss(x, t), rtol=1e-12)
    assert_allclose(gbdt.lightgbm_metric(fastloss.Huber(reduction="sum"))(t, x)[1],
                    ref.huber_loss(x, t, reduction="sum"), rtol=1e-12)
    assert gbdt.lightgbm_metric(fastloss.Pinball(quantile=0.9)).name == "pinball_loss"


# --------------------------------------------------------------------------- training: binary
LGB_PARAMS = dict(learning_rate=0.2, num_leaves=7, min_data_in_leaf=20, verbose=-1,
                  num_threads=THREADS, deterministic=True, force_row_wise=True)
XGB_PARAMS = dict(eta=0.2, max_depth=3, nthread=THREADS, tree_method="hist")
ROUNDS = 20


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_lightgbm_bce_reproduces_binary(lgb, rng, backend, weighted):
    X, y = _binary_data()
    w = rng.uniform(0.2, 2.0, len(y)) if weighted else None
    # the built-in objective starts from the same raw score as a custom one: 0
    builtin = lgb.train({**LGB_PARAMS, "objective": "binary", "boost_from_average": False},
                        lgb.Dataset(X, y, weight=w), ROUNDS)
    expected = builtin.predict(X, raw_score=True)
    obj = gbdt.lightgbm_objective(fastloss.BCEWithLogits(backend=backend))
    native = lgb.train({**LGB_PARAMS, "objective": obj}, lgb.Dataset(X, y, weight=w), ROUNDS)
    assert_allclose(native.predict(X, raw_score=True), expected, rtol=1e-12, atol=1e-12)
    clf = lgb.LGBMClassifier(objective=obj, n_estimators=ROUNDS, **_sklearn_lgb())
    clf.fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Cannot compute class probabilities": raw scores
        raw = clf.predict_proba(X)
    assert raw.shape == (len(y),)         # a custom objective gives raw scores, not (n, 2)
    assert_allclose(raw, expected, rtol=1e-12, atol=1e-12)
    assert_allclose(clf.predict(X, raw_score=True), expected, rtol=1e-12, atol=1e-12)
    # obj.transform gives what the built-in classifier's predict_proba gives
    assert_allclose(obj.transform(raw), builtin.predict(X), rtol=1e-12)
    assert np.abs(expected).max() > 2     # the models did learn something


def _lgb_eval_set(lgb, X, y):
    """A validation set for LightGBM's fit: eval_X / eval_y since 4.7 (eval_set is deprecated)."""
    if "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters:
        return dict(eval_X=(X,), eval_y=(y,))
    return dict(eval_set=[(X, y)])


def _sklearn_lgb():
    return dict(learning_rate=0.2, num_leaves=7, min_child_samples=20, verbose=-1,
                n_jobs=THREADS, deterministic=True, force_row_wise=True)


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_xgboost_bce_reproduces_binary_logistic(xgb, rng, weighted):
    X, y = _binary_data()
    w = rng.uniform(0.2, 2.0, len(y)) if weighted else None
    # binary:logistic's base_score 0.5 is a margin of 0, where custom objectives start
    builtin = xgb.train({**XGB_PARAMS, "objective": "binary:logistic", "base_score": 0.5},
                        xgb.DMatrix(X, label=y, weight=w), ROUNDS)
    expected = builtin.predict(xgb.DMatrix(X), output_margin=True)
    obj = gbdt.xgboost_objective(fastloss.BCEWithLogits())
    native = xgb.train({**XGB_PARAMS, "base_score": 0.0}, xgb.DMatrix(X, label=y, weight=w),
                       ROUNDS, obj=obj)
    # XGBoost computes its gradients in float32: one ulp of float32 apart
    assert_allclose(native.predict(xgb.DMatrix(X), output_margin=True), expected,
                    rtol=1e-6, atol=1e-6)
    clf = xgb.XGBClassifier(objective=obj, n_estimators=ROUNDS, learning_rate=0.2, max_depth=3,
                            n_jobs=THREADS, tree_method="hist")
    clf.fit(X, y, sample_weight=w)
    assert_allclose(clf.predict(X, output_margin=True), expected, rtol=1e-6, atol=1e-6)
    # XGBClassifier keeps binary:logistic's link: predict_proba is right for BCE
    p = builtin.predict(xgb.DMatrix(X))
    assert_allclose(clf.predict_proba(X), np.column_stack([1 - p, p]), rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 2


# --------------------------------------------------------------------------- training: multiclass
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_lightgbm_cross_entropy_reproduces_multiclass(lgb, rng, weighted):
    X, y = _multiclass_data()
    w = rng.uniform(0.2, 2.0, len(y)) if weighted else None
    params = {**LGB_PARAMS, "num_class": 4, "boost_from_average": False}
    builtin = lgb.train({**params, "objective": "multiclass"}, lgb.Dataset(X, y, weight=w), ROUNDS)
    expected = builtin.predict(X, raw_score=True)
    ce = fastloss.CrossEntropy()
    obj = gbdt.lightgbm_objective(ce)                       # hessian="lightgbm"
    native = lgb.train({**params, "objective": obj}, lgb.Dataset(X, y, weight=w), ROUNDS)
    got = native.predict(X, raw_score=True)
    assert got.shape == (len(y), 4)
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    clf = lgb.LGBMClassifier(objective=obj, n_estimators=ROUNDS, **_sklearn_lgb())
    clf.fit(X, y, sample_weight=w)
    assert_allclose(clf.predict(X, raw_score=True), expected, rtol=1e-12, atol=1e-12)
    assert_allclose(obj.transform(got), builtin.predict(X), rtol=1e-10)
    # another convention trains another model: the comparison can fail
    other = lgb.train({**params, "objective": gbdt.lightgbm_objective(ce, hessian="xgboost")},
                      lgb.Dataset(X, y, weight=w), ROUNDS)
    assert np.abs(other.predict(X, raw_score=True) - expected).max() > 0.1


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_xgboost_cross_entropy_reproduces_softprob(xgb, rng, weighted):
    X, y = _multiclass_data()
    w = rng.uniform(0.2, 2.0, len(y)) if weighted else None
    params = {**XGB_PARAMS, "num_class": 4, "base_score": 0.0}
    builtin = xgb.train({**params, "objective": "multi:softprob"},
                        xgb.DMatrix(X, label=y, weight=w), ROUNDS)
    expected = builtin.predict(xgb.DMatrix(X), output_margin=True)
    ce = fastloss.CrossEntropy()
    obj = gbdt.xgboost_objective(ce)                        # hessian="xgboost"
    native = xgb.train(params, xgb.DMatrix(X, label=y, weight=w), ROUNDS, obj=obj)
    got = native.predict(xgb.DMatrix(X), output_margin=True)
    assert got.shape == (len(y), 4)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    clf = xgb.XGBClassifier(objective=obj, n_estimators=ROUNDS, learning_rate=0.2, max_depth=3,
                            n_jobs=THREADS, tree_method="hist", base_score=0.0)
    clf.fit(X, y, sample_weight=w)
    assert_allclose(clf.predict(X, output_margin=True), expected, rtol=1e-6, atol=1e-6)
    # XGBClassifier keeps multi:softprob's link: predict_proba is the softmax of the margins
    assert_allclose(clf.predict_proba(X), builtin.predict(xgb.DMatrix(X)), rtol=1e-5, atol=1e-6)
    other = xgb.train(params, xgb.DMatrix(X, label=y, weight=w), ROUNDS,
                      obj=gbdt.xgboost_objective(ce, hessian="lightgbm"))
    assert np.abs(other.predict(xgb.DMatrix(X), output_margin=True) - expected).max() > 0.1


# --------------------------------------------------------------------------- training: focal
def _imbalanced(rng, n):
    """1 % positives, shifted by 2 and 1 standard deviations in two of four features:
    the classes overlap, so a calibrated model rarely reaches p = 0.5 on a positive."""
    y = (rng.random(n) < 0.01).astype(np.float64)
    X = rng.standard_normal((n, 4))
    X[:, 0] += 2.0 * y
    X[:, 1] += 1.0 * y
    return X, y


def _recall(y, p, threshold=0.5):
    return float(np.sum((p > threshold) & (y == 1)) / np.sum(y == 1))


def test_sigmoid_focal_improves_minority_recall(lgb, xgb, rng):
    X, y = _imbalanced(rng, 20000)
    Xv, yv = _imbalanced(rng, 20000)
    assert 150 < y.sum() < 260 and 150 < yv.sum() < 260
    bce, focal = fastloss.BCEWithLogits(), fastloss.SigmoidFocal(alpha=0.75, gamma=2.0)
    metric = gbdt.lightgbm_metric(focal)
    recalls = {}
    for name, loss in (("bce", bce), ("focal", focal)):
        obj = gbdt.lightgbm_objective(loss)
        history = {}
        booster = lgb.train(
            {"objective": obj, "learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 50,
             "metric": "None", "verbose": -1, "num_threads": THREADS},
            lgb.Dataset(X, y), 100, valid_sets=[lgb.Dataset(Xv, yv)], valid_names=["valid"],
            feval=metric, callbacks=[lgb.record_evaluation(history)])
        raw = booster.predict(Xv, raw_score=True)
        assert np.all(np.isfinite(raw))
        curve = history["valid"]["sigmoid_focal_loss"]
        start = focal.loss(np.zeros_like(yv), yv)                 # custom objectives start at 0
        assert len(curve) == 100 and curve[-1] < 0.5 * start and curve[-1] < curve[0]
        assert_allclose(curve[-1], focal.loss(raw, yv), rtol=1e-10)
        recalls["lgb", name] = _recall(yv, obj.transform(raw))

        obj = gbdt.xgboost_objective(loss)
        booster = xgb.train({"eta": 0.1, "max_depth": 3, "nthread": THREADS, "base_score": 0.0},
                            xgb.DMatrix(X, label=y), 100, obj=obj)
        raw = booster.predict(xgb.DMatrix(Xv), output_margin=True)
        assert np.all(np.isfinite(raw))
        recalls["xgb", name] = _recall(yv, obj.transform(raw))
    # BCE is calibrated (recall about 0.16 here); focal with alpha=0.75 reaches about 0.29
    for lib in ("lgb", "xgb"):
        assert recalls[lib, "focal"] > recalls[lib, "bce"] + 0.07, recalls
        assert recalls[lib, "bce"] > 0.05, recalls


# --------------------------------------------------------------------------- training: quantile
def _heteroscedastic(rng, n):
    X = rng.uniform(-2, 2, (n, 3))
    y = 3 + X[:, 0] + (0.3 + 0.5 * np.abs(X[:, 1])) * rng.standard_normal(n)
    return X, y


def test_pinball_q90_covers_90_percent(lgb, xgb, rng):
    X, y = _heteroscedastic(rng, 6000)
    Xv, yv = _heteroscedastic(rng, 6000)
    pinball = fastloss.Pinball(quantile=0.9)
    # the scikit-learn APIs, from a raw score of 0 (the targets' 0.9 quantile is about 4.5)
    reg = lgb.LGBMRegressor(objective=gbdt.lightgbm_objective(pinball), n_estimators=200,
                            learning_rate=0.1, num_leaves=7, min_child_samples=50, verbose=-1,
                            n_jobs=THREADS)
    reg.fit(X, y, **_lgb_eval_set(lgb, Xv, yv), eval_metric=gbdt.lightgbm_metric(pinball))
    pred_lgb = reg.predict(Xv)
    xreg = xgb.XGBRegressor(objective=gbdt.xgboost_objective(pinball), n_estimators=200,
                            learning_rate=0.1, max_depth=3, n_jobs=THREADS, base_score=0.0,
                            eval_metric=gbdt.xgboost_metric(pinball))
    xreg.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    pred_xgb = xreg.predict(Xv)
    wide = np.abs(Xv[:, 1]) > 1.0
    for name, pred in (("lgb", pred_lgb), ("xgb", pred_xgb)):
        coverage = float(np.mean(yv <= pred))
        assert abs(coverage - 0.9) < 0.03, (name, coverage)
        # conditional: where the noise is wide as where it is narrow
        assert abs(np.mean(yv[wide] <= pred[wide]) - 0.9) < 0.05, name
        assert abs(np.mean(yv[~wide] <= pred[~wide]) - 0.9) < 0.05, name
        # and better than the best constant
        constant = np.full_like(yv, np.quantile(y, 0.9))
        assert pinball.loss(pred, yv) < 0.8 * pinball.loss(constant, yv)
    # the recorded metrics are the loss of the final predictions
    assert_allclose(reg.evals_result_["valid_0"]["pinball_loss"][-1], pinball.loss(pred_lgb, yv),
                    rtol=1e-7)
    assert_allclose(xreg.evals_result()["validation_0"]["pinball_loss"][-1],
                    pinball.loss(pred_xgb.astype(np.float64), yv), rtol=1e-5)


# --------------------------------------------------------------------------- metrics in training
def test_metrics_record_the_loss_on_weighted_validation_sets(lgb, xgb, rng):
    X, y = _multiclass_data(2000, 3)
    X, y, Xv, yv = X[:1500], y[:1500], X[1500:], y[1500:]
    wv = rng.uniform(0.2, 2.0, len(yv))
    ce = fastloss.CrossEntropy()
    # LightGBM's scikit-learn API: eval_metric gets (y_true, y_pred, weight)
    clf = lgb.LGBMClassifier(objective=gbdt.lightgbm_objective(ce), n_estimators=10,
                             metric="None", **_sklearn_lgb())
    clf.fit(X, y, **_lgb_eval_set(lgb, Xv, yv), eval_sample_weight=[wv],
            eval_metric=gbdt.lightgbm_metric(ce, name="ce"))
    recorded = clf.evals_result_["valid_0"]["ce"]
    assert len(recorded) == 10 and recorded[-1] < recorded[0]
    expected = ref.cross_entropy(clf.predict(Xv, raw_score=True), yv, sample_weight=wv)
    assert_allclose(recorded[-1], expected, rtol=1e-7)   # LightGBM's running scores
    # XGBoost's native API: custom_metric gets (predt, dtrain) and returns (name, value)
    history = {}
    dv = xgb.DMatrix(Xv, label=yv, weight=wv)
    booster = xgb.train({**XGB_PARAMS, "num_class": 3, "base_score": 0.0,
                         "disable_default_eval_metric": 1},
                        xgb.DMatrix(X, label=y), 10, obj=gbdt.xgboost_objective(ce),
                        evals=[(dv, "valid")], custom_metric=gbdt.xgboost_metric(ce),
                        evals_result=history, verbose_eval=False)
    recorded = history["valid"]["cross_entropy"]
    assert list(history["valid"]) == ["cross_entropy"] and recorded[-1] < recorded[0]
    margins = booster.predict(dv, output_margin=True).astype(np.float64)
    assert_allclose(recorded[-1], ref.cross_entropy(margins, yv, sample_weight=wv), rtol=1e-5)

"""Gradient boosting objectives (``fastloss.gbdt``): one boosting round's objective call.

What the libraries hand a custom objective each round, and what it returns:
``(grad, hess)`` of the raw scores. Two cases, each in the layout of each library:
LightGBM passes float64 raw scores (multiclass: an ``(n, K)`` Fortran-ordered
view of its score buffer) and float32 labels; XGBoost passes float32 scores
(``(n, K)``, C-ordered) and float32 labels.

- ``binary 1M``: BCE with logits, 1M rows (LightGBM ``binary`` / XGBoost ``binary:logistic``);
- ``multiclass 200k x 10``: softmax cross-entropy, 200k rows x 10 classes, with the
  library's Hessian convention (``K/(K-1) p(1-p)`` / ``2 p(1-p)``);
- ``focal 1M``: sigmoid focal loss (``alpha=0.25, gamma=2``), 1M rows, exact Hessian:
  the reason people write custom objectives. The NumPy version is the chain rule
  through ``p_t``; it returns NaN for logits beyond about +-37 (float64), which the
  benchmark data (standard normal times 2) never reaches.

``TimeObjective`` times the fastloss objective per backend and thread count;
``TimeNumpyObjective`` times the same objective written in NumPy the way users
write custom objectives today (the LightGBM / XGBoost examples: ``1 / (1 + exp(-x))``,
a max-shifted softmax, fancy indexing for the labels). The libraries themselves are
not needed. ``track_max_abs_error`` compares gradient and Hessian with a float64
NumPy computation.
"""
import functools

import numpy as np

import fastloss
from fastloss import gbdt

from .common import BACKENDS, THREADS, timer

CASES = ["binary 1M", "multiclass 200k x 10", "focal 1M"]
LIBRARIES = ["lightgbm", "xgboost"]
SHAPES = {"binary 1M": (1_000_000,), "multiclass 200k x 10": (200_000, 10),
          "focal 1M": (1_000_000,)}
ALPHA, GAMMA = 0.25, 2.0


@functools.lru_cache(maxsize=2)
def objective_data(case, library, seed=0):
    """Raw scores and labels as ``library`` passes them to a custom objective, read-only."""
    shape = SHAPES[case]
    rng = np.random.default_rng(seed)
    dtype = np.float64 if library == "lightgbm" else np.float32
    raw = 2 * rng.standard_normal(shape)
    if len(shape) == 2 and library == "lightgbm":
        # LightGBM keeps one score column per class and reshapes with order="F"
        raw = np.asfortranarray(raw)
    raw = raw.astype(dtype, order="K")
    if len(shape) == 1:
        y = (rng.random(shape[0]) < 0.3).astype(np.float32)
    else:
        y = rng.integers(0, shape[1], shape[0]).astype(np.float32)
    raw.flags.writeable = False
    y.flags.writeable = False
    return raw, y


def make_objective(case, library, backend):
    make = getattr(gbdt, f"{library}_objective")
    if case.startswith("binary"):
        return make(fastloss.BCEWithLogits(backend=backend))
    if case.startswith("focal"):
        # the exact Hessian, as the NumPy version computes it (the default floors it)
        return make(fastloss.SigmoidFocal(alpha=ALPHA, gamma=GAMMA, backend=backend),
                    hessian="exact")
    return make(fastloss.CrossEntropy(backend=backend))


# ---- NumPy objectives, as users write them -----------------------------------
def numpy_binary_objective(y_true, y_pred):
    p = 1.0 / (1.0 + np.exp(-y_pred))
    return p - y_true, p * (1.0 - p)


def numpy_softmax_objective(factor):
    def objective(y_true, y_pred):
        n = y_pred.shape[0]
        p = np.exp(y_pred - y_pred.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = p.copy()
        grad[np.arange(n), y_true.astype(int)] -= 1.0
        hess = factor * p * (1.0 - p)
        return grad, hess
    return objective


def numpy_focal_objective(alpha, gamma):
    """-a_t (1-p_t)^g log p_t: gradient and Hessian by the chain rule through p_t."""
    def objective(y_true, y_pred):
        p = 1.0 / (1.0 + np.exp(-y_pred))
        s = 2.0 * y_true - 1.0                       # dp_t/dp: +1 for positives, -1 otherwise
        pt = np.where(y_true == 1, p, 1.0 - p)
        at = np.where(y_true == 1, alpha, 1.0 - alpha)
        log_pt = np.log(pt)
        dl = at * (gamma * (1.0 - pt) ** (gamma - 1) * log_pt - (1.0 - pt) ** gamma / pt)
        d2l = at * (-gamma * (gamma - 1) * (1.0 - pt) ** (gamma - 2) * log_pt
                    + 2.0 * gamma * (1.0 - pt) ** (gamma - 1) / pt + (1.0 - pt) ** gamma / pt ** 2)
        du = s * p * (1.0 - p)                       # dp_t/dx
        d2u = du * (1.0 - 2.0 * p)                   # d2p_t/dx2
        return dl * du, d2l * du * du + dl * d2u
    return objective


def numpy_objective(case, library):
    if case.startswith("binary"):
        return numpy_binary_objective
    if case.startswith("focal"):
        return numpy_focal_objective(ALPHA, GAMMA)
    k = SHAPES[case][1]
    return numpy_softmax_objective(k / (k - 1.0) if library == "lightgbm" else 2.0)


def reference(case, library, raw, y):
    """float64 gradient and Hessian, from a stable formulation."""
    x = np.asarray(raw, dtype=np.float64)
    if case.startswith("focal"):
        return numpy_focal_objective(ALPHA, GAMMA)(np.asarray(y, np.float64), x)
    if case.startswith("binary"):
        p = 0.5 * (1.0 + np.tanh(0.5 * x))
        q = 0.5 * (1.0 - np.tanh(0.5 * x))
        return p - y, p * q
    k = x.shape[1]
    e = np.exp(x - x.max(axis=1, keepdims=True))
    total = e.sum(axis=1, keepdims=True)
    p = e / total
    rest = (total - e) / total   # 1 - p_c from the other classes: no cancellation
    grad = p.copy()
    grad[np.arange(len(y)), y.astype(int)] -= 1.0
    factor = k / (k - 1.0) if library == "lightgbm" else 2.0
    return grad, factor * p * rest


class TimeObjective:
    """The fastloss objective: ``obj(y_true, raw)`` -> ``(grad, hess)``."""

    params = [CASES, LIBRARIES, BACKENDS, THREADS]
    param_names = ["case", "library", "backend", "threads"]
    timer = timer
    timeout = 300

    def setup(self, case, library, backend, threads):
        fastloss.set_num_threads(threads)
        self.obj = make_objective(case, library, backend)
        self.raw, self.y = objective_data(case, library)
        self.obj(self.y[:1], self.raw[:1])   # Numba compiles or loads its cache
        self.obj(self.y, self.raw)           # thread pools start, pages are faulted in

    def time_objective(self, *params):
        self.obj(self.y, self.raw)

    def peakmem_objective(self, *params):
        self.obj(self.y, self.raw)

    def track_max_abs_error(self, case, library, backend, threads):
        rows = 4096
        got = self.obj(self.y[:rows], self.raw[:rows])
        want = reference(case, library, self.raw[:rows], self.y[:rows])
        return float(max(np.max(np.abs(np.asarray(g, np.float64) - r)) for g, r in zip(got, want)))

    track_max_abs_error.unit = "abs error"


class TimeNumpyObjective:
    """The same objective in plain NumPy (one thread: NumPy's ufuncs do not thread)."""

    params = [CASES, LIBRARIES]
    param_names = ["case", "library"]
    timer = timer
    timeout = 300

    def setup(self, case, library):
        self.obj = numpy_objective(case, library)
        self.raw, self.y = objective_data(case, library)
        self.obj(self.y, self.raw)

    def time_objective(self, *params):
        self.obj(self.y, self.raw)

    def peakmem_objective(self, *params):
        self.obj(self.y, self.raw)

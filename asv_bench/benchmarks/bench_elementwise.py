"""Elementwise losses: BCE with logits, sigmoid focal, Huber, MSE, L1, pinball.

(Smooth L1 runs Huber's kernel, scaled: its timings are Huber's.)

One class per loss; params over size, dtype, backend and threads. Data is
built (and Numba warmed) in ``setup``; every ``time_*`` body is one call.
``track_max_abs_error`` compares the per-element losses and gradient on a
slice with a float64 NumPy formula.
"""
import functools

import numpy as np

import fastloss

from .common import BACKENDS, DTYPES, THREADS, filled_like, grid, timer

# 64K elements: the per-call cost (validation, allocation, thread start-up) shows;
# 4M: the kernels' throughput (`python -m fastloss bench` adds 8M for the regression losses)
SIZES = grid([1 << 16, 1 << 22])
ERROR_ELEMENTS = 4096


@functools.lru_cache(maxsize=2)
def elementwise_data(size, dtype, seed=0):
    """Predictions (standard normal times 2) and targets in [0, 1), read-only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size, dtype=np.dtype(dtype))
    x *= 2
    t = rng.random(size, dtype=np.dtype(dtype))
    x.flags.writeable = False
    t.flags.writeable = False
    return x, t


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return np.exp(-_softplus(-z))


class _Elementwise:
    loss_class = None  # name of the fastloss class
    options = {}

    params = [SIZES, DTYPES, BACKENDS, THREADS]
    param_names = ["size", "dtype", "backend", "threads"]
    timer = timer
    timeout = 300

    @staticmethod
    def reference(x, t):  # pragma: no cover - per class
        raise NotImplementedError

    def setup(self, size, dtype, backend, threads):
        fastloss.set_num_threads(threads)
        cls = getattr(fastloss, self.loss_class)
        self.loss = cls(**self.options, backend=backend)
        self.none = cls(**self.options, reduction="none", backend=backend)
        self.x, self.t = elementwise_data(size, dtype)
        self.work = filled_like(self.x)
        self.loss.loss_grad(self.x[:1], self.t[:1])  # Numba compiles or loads its cache
        self.loss.loss_grad(self.x, self.t, out=self.work)
        self.loss.loss_grad(self.x, self.t)

    def time_loss_grad(self, *params):
        self.loss.loss_grad(self.x, self.t)

    def time_loss_grad_out(self, *params):
        self.loss.loss_grad(self.x, self.t, out=self.work)

    def time_loss(self, *params):
        self.loss.loss(self.x, self.t)

    def time_grad_hess(self, *params):
        self.loss.grad_hess(self.x, self.t)

    def peakmem_loss_grad_out(self, *params):
        self.loss.loss_grad(self.x, self.t, out=self.work)

    def track_max_abs_error(self, *params):
        """Largest |error| of per-element losses and the gradient against float64 NumPy."""
        x, t = self.x[:ERROR_ELEMENTS], self.t[:ERROR_ELEMENTS]
        loss, grad = self.none.loss_grad(x, t)
        ref_loss, ref_grad = self.reference(x.astype(np.float64), t.astype(np.float64))
        return float(max(np.max(np.abs(loss - ref_loss)), np.max(np.abs(grad - ref_grad))))

    track_max_abs_error.unit = "abs error"


class BCEWithLogits(_Elementwise):
    loss_class = "BCEWithLogits"

    @staticmethod
    def reference(x, t):
        return t * _softplus(-x) + (1 - t) * _softplus(x), _sigmoid(x) - t


class SigmoidFocal(_Elementwise):
    loss_class = "SigmoidFocal"
    options = {"alpha": 0.25, "gamma": 2.0}

    @staticmethod
    def reference(x, t, alpha=0.25, gamma=2.0):
        p = _sigmoid(x)
        ce = t * _softplus(-x) + (1 - t) * _softplus(x)
        q = t * (1 - p) + (1 - t) * p
        a = alpha * t + (1 - alpha) * (1 - t)
        dq = (1 - 2 * t) * p * (1 - p)
        return a * ce * q**gamma, a * ((p - t) * q**gamma + ce * gamma * q ** (gamma - 1) * dq)


class Huber(_Elementwise):
    loss_class = "Huber"

    @staticmethod
    def reference(x, t):
        d = x - t
        inside = np.abs(d) < 1.0
        return np.where(inside, 0.5 * d * d, np.abs(d) - 0.5), np.clip(d, -1.0, 1.0)


class SmoothL1(_Elementwise):
    loss_class = "SmoothL1"
    options = {"beta": 0.5}

    @staticmethod
    def reference(x, t):
        d = x - t
        inside = np.abs(d) < 0.5
        return (np.where(inside, d * d, np.abs(d) - 0.25),
                np.where(inside, d / 0.5, np.sign(d)))


class MSE(_Elementwise):
    loss_class = "MSE"

    @staticmethod
    def reference(x, t):
        return (x - t) ** 2, 2 * (x - t)


class L1(_Elementwise):
    loss_class = "L1"

    @staticmethod
    def reference(x, t):
        return np.abs(x - t), np.sign(x - t)


class Pinball(_Elementwise):
    loss_class = "Pinball"
    options = {"quantile": 0.9}

    @staticmethod
    def reference(x, t, q=0.9):
        d = t - x
        return np.maximum(q * d, (q - 1) * d), np.where(x < t, -q, 1 - q)

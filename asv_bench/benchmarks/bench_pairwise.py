"""Pairwise losses: triplet margin, contrastive, margin ranking.

One class per loss; params over size, dtype, backend and threads. Data is
built (and Numba warmed) in ``setup``; every ``time_*`` body is one call.
``time_loss_grad_out`` writes the gradients into preallocated buffers,
``time_loss_grad_inplace`` into the inputs themselves (``out=`` the inputs).
``track_max_abs_error`` compares per-sample losses and every gradient on a
slice with a float64 NumPy formula.
"""
import functools

import numpy as np

import fastloss

from .common import BACKENDS, DTYPES, THREADS, filled_like, reset_peak_rss, timer

ERROR_ROWS = 256


def _cls(name):
    """The public class, or (before it is exported) the one in fastloss._losses.pairwise."""
    cls = getattr(fastloss, name, None)
    if cls is None:
        from fastloss._losses import pairwise
        cls = getattr(pairwise, name)
    return cls


@functools.lru_cache(maxsize=2)
def embeddings(shape, dtype, seed=0):
    """Anchor, positive (anchor + noise), negative (anchor + a little more noise: about a
    third of the triplets have an active hinge) of ``shape``, similarity labels in {0, 1}
    and ranking targets in {-1, 1} of ``shape[:1]``; read-only."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape, dtype=np.dtype(dtype))
    p = a + rng.standard_normal(shape, dtype=np.dtype(dtype))
    n = a + np.asarray(1.1, dtype) * rng.standard_normal(shape, dtype=np.dtype(dtype))
    y = (rng.random(shape[0]) < 0.5).astype(dtype)
    s = np.where(rng.random(shape[0]) < 0.5, -1.0, 1.0).astype(dtype)
    for v in (a, p, n, y, s):
        v.flags.writeable = False
    return a, p, n, y, s


def _norm(v):
    return np.sqrt(np.sum(v * v, axis=-1, keepdims=True))


def ref_triplet(a, p, n, margin=1.0, eps=1e-6, swap=False):
    """Per-sample loss and the gradients of their sum (p = 2; ties of the swap ignored)."""
    v1, v2, v3 = a - p + eps, a - n + eps, p - n + eps
    d1, d2, d3 = _norm(v1), _norm(v2), _norm(v3)
    swapped = (d3 < d2) if swap else np.zeros_like(d2, dtype=bool)
    z = margin + d1 - np.where(swapped, d3, d2)
    active = (z >= 0).astype(np.float64)
    u1 = v1 / d1 * active
    u2 = v2 / d2 * active * ~swapped
    u3 = v3 / d3 * active * swapped
    return np.maximum(z[:, 0], 0), (u1 - u2, -u1 - u3, u2 + u3)


def ref_contrastive(x1, x2, y, margin=1.0):
    v = x1 - x2
    d = _norm(v)[:, 0]
    h = np.maximum(margin - d, 0)
    c = y - (1 - y) * h / d
    return 0.5 * y * d * d + 0.5 * (1 - y) * h * h, (c[:, None] * v, -c[:, None] * v)


def ref_ranking(x1, x2, y, margin=0.0):
    z = margin - y * (x1 - x2)
    g = np.where(z >= 0, -y, 0.0)
    return np.maximum(z, 0), (g, -g)


class _Pairwise:
    loss_class = None
    options = {}
    n_grads = 2
    params = [[(65536, 128)], DTYPES, BACKENDS, THREADS]
    param_names = ["shape", "dtype", "backend", "threads"]
    timer = timer
    timeout = 300

    #: the loss's inputs, in order: letters of embeddings()' (a, p, n, y, s) (per class)
    arguments = ()

    @staticmethod
    def reference(*args):  # pragma: no cover - per class
        raise NotImplementedError

    def setup(self, shape, dtype, backend, threads):
        fastloss.set_num_threads(threads)
        cls = _cls(self.loss_class)
        self.loss = cls(**self.options, backend=backend)
        self.none = cls(**self.options, reduction="none", backend=backend)
        data = dict(zip("apnys", embeddings(shape, dtype)))
        self.inputs = tuple(data[k] for k in self.arguments)
        k = self.n_grads
        self.out = tuple(filled_like(x) for x in self.inputs[:k])
        self.work = tuple(filled_like(x) for x in self.inputs[:k])  # overwritten in place
        self.rest = self.inputs[k:]
        self.loss.loss_grad(*(x[:1] for x in self.inputs))  # Numba compiles or loads its cache
        self.loss.loss_grad(*self.inputs)
        self.loss.loss_grad(*self.inputs, out=self.out)
        self.loss.loss(*self.inputs)
        reset_peak_rss()

    def time_loss_grad(self, *params):
        self.loss.loss_grad(*self.inputs)

    def time_loss_grad_out(self, *params):
        self.loss.loss_grad(*self.inputs, out=self.out)

    def time_loss_grad_inplace(self, *params):
        # the values change from call to call; the work per call does not
        self.loss.loss_grad(*self.work, *self.rest, out=self.work)

    def time_loss(self, *params):
        self.loss.loss(*self.inputs)

    def peakmem_loss_grad_out(self, *params):
        self.loss.loss_grad(*self.inputs, out=self.out)

    def track_max_abs_error(self, *params):
        """Largest |error| of the per-sample losses and every gradient against float64 NumPy."""
        part = tuple(x[:ERROR_ROWS] for x in self.inputs)
        loss, grads = self.none.loss_grad(*part)
        ref_loss, ref_grads = self.reference(*(x.astype(np.float64) for x in part))
        errors = [np.max(np.abs(loss - ref_loss))]
        errors += [np.max(np.abs(g - r)) for g, r in zip(grads, ref_grads)]
        return float(max(errors))

    track_max_abs_error.unit = "abs error"


class TripletMargin(_Pairwise):
    loss_class = "TripletMargin"
    n_grads = 3
    arguments = "apn"

    reference = staticmethod(ref_triplet)


class TripletMarginSwap(TripletMargin):
    options = {"swap": True}
    reference = staticmethod(functools.partial(ref_triplet, swap=True))


class Contrastive(_Pairwise):
    loss_class = "Contrastive"
    arguments = "any"

    reference = staticmethod(ref_contrastive)


class MarginRanking(_Pairwise):
    loss_class = "MarginRanking"
    params = [[(1 << 22,)], DTYPES, BACKENDS, THREADS]
    arguments = "ans"

    reference = staticmethod(ref_ranking)

"""Softmax-family losses: cross-entropy and softmax focal loss.

One class per loss; params over (N, C), dtype, backend and threads. Data is
built (and Numba warmed) in ``setup``; every ``time_*`` body is one call.
``peakmem_loss_grad_inplace`` and ``track_inplace_extra_memory`` check that
``out=logits`` allocates nothing of the logits' size.
"""
import numpy as np

import fastloss

from .common import (
    BACKENDS,
    DTYPES,
    ERROR_ROWS,
    SHAPES,
    THREADS,
    filled_like,
    max_abs_error,
    peak_rss_increase,
    ref_cross_entropy,
    ref_softmax_focal,
    reset_peak_rss,
    softmax_data,
    timer,
    warm,
)


class _Softmax:
    loss_class = None       # name of the fastloss class
    options = {}
    reference = None        # float64 NumPy reference: (x, y, **options) -> (loss, grad) per sample

    params = [SHAPES, DTYPES, BACKENDS, THREADS]
    param_names = ["shape", "dtype", "backend", "threads"]
    timer = timer
    timeout = 300

    def setup(self, shape, dtype, backend, threads):
        fastloss.set_num_threads(threads)
        cls = getattr(fastloss, self.loss_class)
        self.loss = cls(**self.options, backend=backend)
        self.none = cls(**self.options, reduction="none", backend=backend)
        self.x, self.y = softmax_data(shape, dtype)
        # One writeable, filled buffer: the out= of time_loss_grad_out and the
        # logits overwritten by the in-place benchmarks.
        self.work = filled_like(self.x)
        # Warm every path the benchmarks take: a 1-row call (Numba compiles or
        # loads its cache), then the real input, for both backends: the first
        # large allocation of a process pays for fresh pages from the OS (on
        # VMs up to 2 ns per byte), which --quick's single sample would show.
        warm(self.loss.loss_grad, self.x, self.y)
        warm(self.loss.loss_grad, self.x, self.y, out=self.work)
        warm(self.loss.loss, self.x, self.y)
        self.none.loss_grad(self.x[:ERROR_ROWS], self.y[:ERROR_ROWS])
        reset_peak_rss()   # peakmem_*: setup's data counts, its warm-up temporaries do not

    def time_loss_grad(self, *params):
        self.loss.loss_grad(self.x, self.y)

    def time_loss_grad_out(self, *params):
        self.loss.loss_grad(self.x, self.y, out=self.work)

    def time_loss(self, *params):
        self.loss.loss(self.x, self.y)

    def peakmem_loss_grad(self, *params):
        # the baseline of the in-place one: one more logits-sized array (the gradient)
        self.loss.loss_grad(self.x, self.y)

    def peakmem_loss_grad_inplace(self, *params):
        w = self.work
        self.loss.loss_grad(w, self.y, out=w)

    def track_inplace_extra_memory(self, *params):
        """Peak memory added by ``loss_grad(x, y, out=x)``, as a fraction of the logits' size (≈ 0)."""
        w = self.work
        return peak_rss_increase(lambda: self.loss.loss_grad(w, self.y, out=w)) / w.nbytes

    track_inplace_extra_memory.unit = "x logits size"

    def track_max_abs_error(self, *params):
        """Largest |error| of the per-sample losses and the gradient against float64 NumPy."""
        x, y = self.x[:ERROR_ROWS], self.y[:ERROR_ROWS]
        got = self.none.loss_grad(x, y)
        return max_abs_error(got, type(self).reference(x, y, **self.options))

    track_max_abs_error.unit = "abs error"


class CrossEntropy(_Softmax):
    loss_class = "CrossEntropy"
    reference = staticmethod(ref_cross_entropy)


class SoftmaxFocal(_Softmax):
    loss_class = "SoftmaxFocal"
    options = {"gamma": 2.0}
    reference = staticmethod(ref_softmax_focal)

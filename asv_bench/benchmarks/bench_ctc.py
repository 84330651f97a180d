"""CTC loss on raw logits (log-softmax fused), forward + backward.

Params over (T, N, C, S) (the two cases of ``python -m fastloss bench``),
dtype, backend and threads. Data is built (and Numba warmed) in ``setup``;
every ``time_*`` body is one call. ``peakmem_*`` shows the recursion's
workspace (alpha/beta, about T x (2S + 1) per sequence) on top of the data;
``track_max_abs_error`` compares the per-sequence losses and the gradient of
a few sequences with a float64 NumPy forward-backward.
"""
import numpy as np

import fastloss

from .common import (
    BACKENDS,
    CTC_SHAPES,
    DTYPES,
    THREADS,
    ctc_data,
    filled_like,
    max_abs_error,
    ref_ctc,
    reset_peak_rss,
    timer,
)

ERROR_SEQS = 2     # sequences checked against the float64 reference


class CTC:
    params = [CTC_SHAPES, DTYPES, BACKENDS, THREADS]
    param_names = ["T_N_C_S", "dtype", "backend", "threads"]
    timer = timer
    timeout = 300

    def setup(self, shape, dtype, backend, threads):
        fastloss.set_num_threads(threads)
        self.loss = fastloss.CTC(reduction="mean", backend=backend)
        self.none = fastloss.CTC(reduction="none", backend=backend)
        self.args = ctc_data(shape, dtype)
        x = self.args[0]
        self.work = filled_like(x)      # out= of time_loss_grad_out, pages touched
        # Numba compiles or loads its cache on a tiny problem of the same
        # dtypes, then every path runs once at full size (thread pools start,
        # the allocator gets its pages).
        _, _, c, _ = shape
        tiny = (np.zeros((4, 1, c), dtype=x.dtype), np.ones((1, 2), dtype=np.int64),
                np.array([4], dtype=np.int64), np.array([2], dtype=np.int64))
        self.loss.loss_grad(*tiny)
        self.loss.loss_grad(*self.args)
        self.loss.loss_grad(*self.args, out=self.work)
        self.loss.loss(*self.args)
        reset_peak_rss()   # peakmem_*: setup's data counts, its warm-up temporaries do not

    def time_loss_grad(self, *params):
        self.loss.loss_grad(*self.args)

    def time_loss_grad_out(self, *params):
        self.loss.loss_grad(*self.args, out=self.work)

    def time_loss(self, *params):
        self.loss.loss(*self.args)

    def peakmem_loss_grad(self, *params):
        self.loss.loss_grad(*self.args)

    def peakmem_loss_grad_out(self, *params):
        self.loss.loss_grad(*self.args, out=self.work)

    def track_max_abs_error(self, *params):
        """Largest |error| of the per-sequence losses and the gradient of their
        sum against a float64 NumPy forward-backward, on the first sequences."""
        x, targets, input_lengths, target_lengths = self.args
        k = ERROR_SEQS
        args = (np.ascontiguousarray(x[:, :k]), targets[:k], input_lengths[:k], target_lengths[:k])
        got = self.none.loss_grad(*args)
        return max_abs_error(got, ref_ctc(*args))

    track_max_abs_error.unit = "abs error"

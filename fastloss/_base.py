"""The Loss base class, written once: reduction, sample_weight, out= and dispatch.

A loss family subclasses ``Loss`` and provides two things: ``_prepare``, which
validates and normalises the inputs into a ``Batch`` (no computation), and
``_kernel``, which calls the family's kernel. Everything else (buffers, the
denominator of ``"mean"``, the final reduction, thread count and backend)
lives here, so every loss behaves the same way.
"""
from dataclasses import dataclass, field

import numpy as np

from . import _backend, _validation


@dataclass
class Batch:
    """Validated inputs, flattened to the kernels' layout."""

    x: np.ndarray  # C-contiguous, compute dtype, kernel layout (e.g. (N, C))
    input_shape: tuple  # the user's input shape: grad and hess take it
    batch_shape: tuple  # the shape of reduction="none"
    n_rows: int  # rows of per-row losses the kernel writes
    denominator: float  # what "mean" divides by (sum of effective weights)
    extra: dict = field(default_factory=dict)  # family-specific, validated arrays


def _absent(x):
    """An absent gradient or Hessian: x's leading shape, no elements per row.

    Kernels index its rows like a real buffer and see zero columns.
    """
    return np.empty(x.shape[:-1] + (0,), dtype=x.dtype)


class Loss:
    """Base class of every loss: ``loss``, ``loss_grad``, ``grad_hess``, ``__call__``."""

    _family = None  # kernel module: fastloss._cython._<family> / fastloss._numba._<family>
    _options = ()  # names of the options shown by repr

    def __init__(self, *, reduction="mean", backend=None):
        self.reduction = _validation.reduction(reduction)
        self.backend = None if backend is None else _backend._check_backend(backend)

    def __repr__(self):
        opts = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*self._options, "reduction"))
        return f"{type(self).__name__}({opts})"

    def loss(self, input, target, *, sample_weight=None):
        """The loss only (forward only)."""
        return self._run(input, target, sample_weight, grad=False, hess=False)[0]

    def loss_grad(self, input, target, *, sample_weight=None, out=None):
        """``(loss, grad)`` in one fused pass; ``grad`` is written into ``out`` if given."""
        loss, grad, _ = self._run(input, target, sample_weight, grad=True, hess=False, out=out)
        return loss, grad

    def grad_hess(self, input, target, *, sample_weight=None):
        """``(grad, hess)``: the gradient and the diagonal of the Hessian w.r.t. ``input``."""
        _, grad, hess = self._run(input, target, sample_weight, grad=True, hess=True)
        return grad, hess

    def __call__(self, input, target, *, sample_weight=None, out=None):
        return self.loss_grad(input, target, sample_weight=sample_weight, out=out)

    # -- the shared flow -------------------------------------------------------
    def _run(self, input, target, sample_weight, *, grad, hess=False, out=None):
        batch = self._prepare(input, target, sample_weight)
        x = batch.x
        # Every check (out= included) happens before the kernel writes anything.
        g = self._grad_buffers(out, batch) if grad else None
        h = np.empty(batch.input_shape, dtype=x.dtype) if hess else None
        denominator = batch.denominator if self.reduction == "mean" else 1.0
        scale = 1.0 / denominator if denominator != 0 else 0.0
        rows = np.empty(batch.n_rows, dtype=np.float64)
        kernels = _backend.kernels(self._family, self.backend)
        self._kernel(
            kernels,
            batch,
            scale,
            self._kernel_grads(g, batch),
            _absent(x) if h is None else h.reshape(x.shape),
            rows,
            _backend.threads_for(self._work(batch)),
        )
        return self._reduce(rows, batch, denominator), g, h

    # -- what a loss with several inputs overrides (see _losses/pairwise.py) ---------
    def _grad_buffers(self, out, batch):
        """The gradient buffer: ``out`` checked, or a fresh array."""
        return _validation.out_buffer(out, batch.input_shape, batch.x.dtype)

    def _kernel_grads(self, g, batch):
        """What the kernel writes the gradient into (no columns when none is asked)."""
        return _absent(batch.x) if g is None else g.reshape(batch.x.shape)

    def _work(self, batch):
        """Elements the kernel touches, which decides how many threads pay off."""
        return batch.x.size

    def _reduce(self, rows, batch, denominator):
        dtype = batch.x.dtype.type
        if self.reduction == "none":
            return rows.astype(dtype).reshape(batch.batch_shape)
        # np.sum is pairwise and runs in a fixed order: the result does not
        # depend on the number of threads that filled ``rows``.
        total = rows.sum()
        if self.reduction == "mean":
            total = total / denominator if denominator != 0 else 0.0
        return dtype(total)

    def _prepare(self, input, target, sample_weight):  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernel(self, kernels, batch, scale, grad, hess, rows, n_threads):  # pragma: no cover
        raise NotImplementedError


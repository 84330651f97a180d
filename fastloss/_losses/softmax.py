"""Softmax losses: cross-entropy and softmax focal loss.

The class axis is the last one; every leading axis is a batch axis. The
kernels see logits as a C-contiguous ``(N, C)`` array, one row per sample.
"""
import numpy as np

from .. import _validation as V
from .._base import Batch, Loss


def _no(dtype):
    """An empty array: how the kernels are told an optional array is absent."""
    return np.empty(0, dtype=dtype)


class _Softmax(Loss):
    """Shared by the softmax losses: logits, labels, class and sample weights."""

    _family = "softmax"

    def __init__(self, *, weight=None, ignore_index=-100, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.weight = None if weight is None else V.as_float(weight, np.float64, "weight")
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"weight: must be 1-D (one weight per class), got shape {self.weight.shape}")
        self.ignore_index = V.integer(ignore_index, "ignore_index")

    def _logits(self, input):
        x = V.as_input(input)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"input: logits need a class axis of length >= 1, got shape {x.shape}")
        return x

    def _weights(self, x, sample_weight):
        n_classes, batch_shape = x.shape[-1], x.shape[:-1]
        w = V.class_weight(self.weight, n_classes, x.dtype)
        sw = V.sample_weight(sample_weight, batch_shape, x.dtype)
        return w, sw

    def _hard_batch(self, x, target, sample_weight):
        n_classes, batch_shape = x.shape[-1], x.shape[:-1]
        y = V.labels(target, batch_shape, n_classes, self.ignore_index).reshape(-1)
        w, sw = self._weights(x, sample_weight)
        # "mean" divides by the effective weights of the samples that count.
        valid = y != self.ignore_index
        eff = np.ones(y.shape) if w is None else w[np.where(valid, y, 0)].astype(np.float64)
        if sw is not None:
            eff = eff * sw.reshape(-1)
        denominator = float(eff[valid].sum())
        return Batch(
            x=x.reshape(-1, n_classes),
            input_shape=x.shape,
            batch_shape=batch_shape,
            n_rows=y.size,
            denominator=denominator,
            extra=dict(
                y=y,
                w=_no(x.dtype) if w is None else w,
                sw=_no(x.dtype) if sw is None else sw.reshape(-1),
            ),
        )


class CrossEntropy(_Softmax):
    r"""Softmax cross-entropy from logits, computed through log-sum-exp.

    For a sample with logits :math:`x` (C classes), label :math:`y`, class
    weights :math:`w` and label smoothing :math:`\varepsilon`:

    .. math::
        \ell = (1-\varepsilon)\, w_y (\mathrm{lse}(x) - x_y)
               + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}(x) - x_c)

    With probability targets :math:`t` (the input's shape) the loss is
    :math:`\sum_c w_c t'_c (\mathrm{lse}(x) - x_c)`, :math:`t' = (1-\varepsilon) t + \varepsilon / C`.
    The gradient is :math:`p\,\sum_c q_c - q` and the Hessian diagonal
    :math:`p (1 - p) \sum_c q_c`, with :math:`p = \mathrm{softmax}(x)` and
    :math:`q` the weighted (smoothed) target.

    Shape: input ``(..., C)``; target ``(...)`` integer labels or ``(..., C)``
    probabilities; ``sample_weight`` ``(...)``; loss ``(...)`` for
    ``reduction="none"``, else a scalar. Matches ``torch.nn.functional.cross_entropy``
    (class axis last); ``"mean"`` divides by the sum of ``sample_weight *
    weight[target]`` over the samples that are not ignored (probability
    targets: by the sum of ``sample_weight``); an empty mean is 0.0.

    >>> import numpy as np, fastloss
    >>> loss, grad = fastloss.CrossEntropy()(np.array([[2.0, 0.0, -1.0]]), np.array([0]))
    >>> round(float(loss), 6)
    0.169846
    """

    _options = ("weight", "ignore_index", "label_smoothing")

    def __init__(self, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                 reduction="mean", backend=None):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction,
                         backend=backend)
        self.label_smoothing = V.scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)

    def _prepare(self, input, target, sample_weight):
        x = self._logits(input)
        target = np.asarray(target)
        if target.ndim != x.ndim or target.shape != x.shape:
            return self._hard_batch(x, target, sample_weight)
        # Probability targets: the input's shape.
        t = V.as_float(target, x.dtype, "target")
        w, sw = self._weights(x, sample_weight)
        n_classes, batch_shape = x.shape[-1], x.shape[:-1]
        n = t.size // n_classes
        return Batch(
            x=x.reshape(-1, n_classes),
            input_shape=x.shape,
            batch_shape=batch_shape,
            n_rows=n,
            denominator=float(n if sw is None else sw.sum(dtype=np.float64)),
            extra=dict(
                t=t.reshape(-1, n_classes),
                w=_no(x.dtype) if w is None else w,
                sw=_no(x.dtype) if sw is None else sw.reshape(-1),
            ),
        )

    def _kernel(self, kernels, batch, scale, grad, hess, rows, n_threads):
        e = batch.extra
        if "t" in e:
            kernels.ce_soft(batch.x, e["t"], e["w"], e["sw"], self.label_smoothing,
                            scale, grad, hess, rows, n_threads)
        else:
            kernels.ce_hard(batch.x, e["y"], e["w"], e["sw"], self.label_smoothing,
                            self.ignore_index, scale, grad, hess, rows, n_threads)


class SoftmaxFocal(_Softmax):
    r"""Softmax focal loss (Lin et al., 2017) from logits.

    .. math:: \ell = -w_y (1 - p_y)^\gamma \log p_y, \qquad p = \mathrm{softmax}(x)

    computed in log space: :math:`1 - p_y` comes from the sum of the other
    classes' exponentials (never from ``1 - p``), so the loss, gradient and
    exact Hessian diagonal stay finite and accurate when :math:`p_y \to 1`,
    for every :math:`\gamma \ge 0` (also :math:`0 < \gamma < 1`). ``gamma=0``
    is cross-entropy. ``"mean"`` divides by the sum of ``sample_weight *
    weight[target]`` over the samples that are not ignored.

    Shape: input ``(..., C)``; target ``(...)`` integer labels.
    """

    _options = ("gamma", "weight", "ignore_index")

    def __init__(self, *, gamma=2.0, weight=None, ignore_index=-100, reduction="mean",
                 backend=None):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction,
                         backend=backend)
        self.gamma = V.scalar(gamma, "gamma", low=0.0)

    def _prepare(self, input, target, sample_weight):
        return self._hard_batch(self._logits(input), target, sample_weight)

    def _kernel(self, kernels, batch, scale, grad, hess, rows, n_threads):
        e = batch.extra
        kernels.focal(batch.x, e["y"], e["w"], e["sw"], self.gamma, self.ignore_index,
                      scale, grad, hess, rows, n_threads)


def cross_entropy(input, target, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean", sample_weight=None, out=None, backend=None):
    """``(loss, grad)`` of softmax cross-entropy; see :class:`CrossEntropy`."""
    return CrossEntropy(weight=weight, ignore_index=ignore_index,
                        label_smoothing=label_smoothing, reduction=reduction,
                        backend=backend).loss_grad(input, target,
                                                   sample_weight=sample_weight, out=out)


def softmax_focal_loss(input, target, *, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", sample_weight=None, out=None, backend=None):
    """``(loss, grad)`` of the softmax focal loss; see :class:`SoftmaxFocal`."""
    return SoftmaxFocal(gamma=gamma, weight=weight, ignore_index=ignore_index,
                        reduction=reduction, backend=backend).loss_grad(
        input, target, sample_weight=sample_weight, out=out)

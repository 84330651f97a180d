"""Elementwise losses: BCE with logits, sigmoid focal, Huber, smooth L1, MSE, L1, pinball.

Every element is its own sample: the input may have any shape, the target
has the input's shape (pinball: ``(N,)`` for an ``(N, Q)`` input), and
``reduction="none"`` returns the input's shape. The kernels see flat,
C-contiguous arrays; every optional per-element operand (sample weight,
BCE's ``weight``, ``pos_weight``, quantiles) is broadcast to the input's
shape here, so one kernel loop serves every broadcasting rule.
"""
import numpy as np

from .. import _validation as V
from .._base import Batch, Loss

#: Elements per block: the kernels reduce each block to one partial sum, and
#: the partials are added in a fixed order, whatever the number of threads.
BLOCK = 2048


def _broadcast(a, shape, name, dtype, what="the input's shape"):
    """``a`` broadcast to ``shape`` as a flat C-contiguous array."""
    a = V.as_float(a, dtype, name)
    try:
        return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)
    except ValueError:
        raise ValueError(f"{name}: shape {a.shape} does not broadcast to {what} {shape}") from None


class _Elementwise(Loss):
    """Shared by the elementwise losses: flat layout, weights, blocks."""

    _family = "elementwise"
    _kind = None  # the kernel's name for the loss: an attribute of the kernel module

    def _target(self, x, target):
        return V.as_float(target, x.dtype, "target", shape=x.shape).reshape(-1)

    def _aux(self, x):
        """The per-element operand of the point function (pos_weight, quantile)."""
        return np.ones(1, dtype=x.dtype)

    def _params(self):
        """The two scalar parameters of the point function."""
        return 0.0, 0.0

    def _multiplier(self, x):
        """A per-element factor that is not a sample weight (BCE's ``weight``)."""
        return None

    def _sample_weight(self, x, sample_weight):
        """``sample_weight`` of the input's shape, or ``(N,)`` for every element of row n."""
        if sample_weight is None:
            return None
        sw = V._real_array(sample_weight, "sample_weight")
        if x.ndim >= 1 and sw.shape == x.shape[:1]:
            sw = sw.reshape(sw.shape + (1,) * (x.ndim - 1))
        elif sw.shape != x.shape:
            rows = f" or {x.shape[:1]}" if x.ndim > 1 else ""
            raise ValueError(
                f"sample_weight: expected shape {x.shape}{rows}, got {sw.shape}"
            )
        return _broadcast(sw, x.shape, "sample_weight", x.dtype)

    def _prepare(self, input, target, sample_weight):
        x = V.as_input(input)
        t = self._target(x, target)
        aux = self._aux(x)
        sw = self._sample_weight(x, sample_weight)
        m = self._multiplier(x)
        if sw is not None:
            m = sw if m is None else m * sw
        n = x.size
        return Batch(
            x=x.reshape(-1),
            input_shape=x.shape,
            batch_shape=x.shape,
            n_rows=n if self.reduction == "none" else -(-n // BLOCK),
            denominator=float(n if sw is None else sw.sum(dtype=np.float64)),
            extra=dict(t=t, aux=aux, m=np.empty(0, x.dtype) if m is None else m),
        )

    def _kernel(self, kernels, batch, scale, grad, hess, rows, n_threads):
        e = batch.extra
        p1, p2 = self._params()
        inputs = (batch.x, e["t"], e["aux"], e["m"])
        # The kernels write the outputs as they read the inputs, and stay vector
        # code only where the two cannot overlap: an output that shares memory
        # with an input (out=input) is computed into a fresh array, then copied.
        outs = [np.empty_like(a) if a.size and any(np.may_share_memory(a, i) for i in inputs)
                else a for a in (grad, hess)]
        kernels.elementwise(getattr(kernels, self._kind), *inputs, p1, p2, scale, BLOCK,
                            self.reduction == "none", *outs, rows, n_threads)
        for out, a in zip((grad, hess), outs):
            if a is not out:
                out[...] = a


class BCEWithLogits(_Elementwise):
    r"""Binary cross-entropy from logits, in the softplus form.

    .. math::
        \ell = w\,[\,p_w\, t\, \mathrm{softplus}(-x) + (1 - t)\, \mathrm{softplus}(x)\,]

    gradient :math:`w[(1-t)\sigma(x) - p_w t \sigma(-x)]`, Hessian
    :math:`w(1 - t + p_w t)\,\sigma(x)\sigma(-x)`; :math:`\sigma(\pm x)` and
    the softplus terms come from one :math:`e^{-|x|}`, so nothing overflows
    and the Hessian keeps its tiny positive values in the tails.

    Shape: input any shape; target the input's shape, in [0, 1] (soft
    targets allowed); ``weight`` broadcastable to the input; ``pos_weight``
    broadcastable along the last axis (one per label for a multi-label
    ``(N, C)`` input). Matches ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """

    _kind = "BCE"
    _options = ("weight", "pos_weight")

    def __init__(self, *, weight=None, pos_weight=None, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.weight = None if weight is None else V.as_float(weight, np.float64, "weight")
        self.pos_weight = (
            None if pos_weight is None else V.as_float(pos_weight, np.float64, "pos_weight")
        )

    def _aux(self, x):
        if self.pos_weight is None:
            return super()._aux(x)
        return _broadcast(self.pos_weight, x.shape, "pos_weight", x.dtype)

    def _multiplier(self, x):
        if self.weight is None:
            return None
        return _broadcast(self.weight, x.shape, "weight", x.dtype)


class SigmoidFocal(_Elementwise):
    r"""Sigmoid focal loss (Lin et al., 2017), torchvision's definition, in log space.

    .. math::
        \ell = \alpha_t\, \mathrm{BCE}(x, t)\, (1 - p_t)^\gamma,\quad
        p_t = p t + (1-p)(1-t),\ \alpha_t = \alpha t + (1-\alpha)(1-t)

    (:math:`\alpha < 0` drops :math:`\alpha_t`). :math:`1 - p_t = t\sigma(-x)
    + (1-t)\sigma(x)` is formed from :math:`e^{-|x|}` and raised to
    :math:`\gamma` through its logarithm, and the gradient and exact Hessian
    use the bounded ratio :math:`\sigma(x)\sigma(-x)/(1-p_t)`, so they stay
    finite and accurate for every :math:`\gamma \ge 0` (also :math:`0 < \gamma < 1`)
    at any logit. ``gamma=0, alpha<0`` is BCE exactly.

    Shape: input any shape; target the input's shape, in [0, 1].
    """

    _options = ("alpha", "gamma")

    @property
    def _kind(self):
        # gamma = 0 without alpha is BCE: run BCE's point function, so that
        # the identity holds bit for bit, not only to the last ulp.
        return "BCE" if self.gamma == 0 and self.alpha < 0 else "SIGMOID_FOCAL"

    def __init__(self, *, alpha=0.25, gamma=2.0, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.alpha = V.scalar(alpha, "alpha", high=1.0)
        self.gamma = V.scalar(gamma, "gamma", low=0.0)

    def _params(self):
        return self.alpha, self.gamma


class Huber(_Elementwise):
    r"""Huber loss: :math:`\tfrac12 d^2` for :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`, with :math:`d = x - t`.

    Gradient :math:`\mathrm{clip}(d, -\delta, \delta)`; Hessian 1 inside, 0
    outside. Matches ``torch.nn.functional.huber_loss``.
    """

    _kind = "HUBER"
    _options = ("delta",)

    def __init__(self, *, delta=1.0, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.delta = V.scalar(delta, "delta", low=0.0, low_open=True)

    def _params(self):
        return self.delta, 1.0


class SmoothL1(_Elementwise):
    r"""Smooth L1 loss: :math:`\tfrac12 d^2/\beta` for :math:`|d| < \beta`, else
    :math:`|d| - \tfrac12\beta`; that is Huber(delta=beta) / beta, and L1 for
    ``beta=0``. Matches ``torch.nn.functional.smooth_l1_loss``.
    """

    _options = ("beta",)

    def __init__(self, *, beta=1.0, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.beta = V.scalar(beta, "beta", low=0.0)
        self._kind = "HUBER" if self.beta > 0 else "L1"

    def _params(self):
        return (self.beta, 1.0 / self.beta) if self.beta > 0 else (0.0, 0.0)


class MSE(_Elementwise):
    r"""Squared error :math:`(x - t)^2`; gradient :math:`2(x - t)`, Hessian 2.
    Matches ``torch.nn.functional.mse_loss``."""

    _kind = "MSE"


class L1(_Elementwise):
    r"""Absolute error :math:`|x - t|`; gradient :math:`\mathrm{sign}(x - t)`
    (0 at equality, as PyTorch), Hessian 0. Matches ``torch.nn.functional.l1_loss``."""

    _kind = "L1"


class Pinball(_Elementwise):
    r"""Pinball (quantile) loss :math:`\max(q (t - x), (q - 1)(t - x))`.

    Gradient :math:`-q` where :math:`x < t`, :math:`1 - q` where :math:`x \ge t`;
    Hessian 0. Shape: input ``(N,)`` with a scalar ``quantile``, or ``(N, Q)``
    with ``quantile`` of shape ``(Q,)`` (or a scalar); target ``(N,)``.
    ``"mean"`` averages over all N·Q elements, as scikit-learn's
    ``mean_pinball_loss`` does for each quantile.
    """

    _kind = "PINBALL"
    _options = ("quantile",)

    def __init__(self, *, quantile=0.5, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        q = np.asarray(V._real_array(quantile, "quantile"), dtype=np.float64)
        if q.ndim > 1:
            raise ValueError(f"quantile: must be a scalar or 1-D, got shape {q.shape}")
        if q.size == 0 or not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantile: every quantile must be in (0, 1), got {quantile!r}")
        # one quantile, given as a scalar or as [q], is a scalar: the kernels broadcast it
        self.quantile = float(q.reshape(-1)[0]) if q.size == 1 else q

    def _target(self, x, target):
        if x.ndim not in (1, 2):
            raise ValueError(f"input: expected shape (N,) or (N, Q), got {x.shape}")
        t = V.as_float(target, x.dtype, "target", shape=x.shape[:1])
        return _broadcast(t.reshape(-1, *([1] * (x.ndim - 1))), x.shape, "target", x.dtype)

    def _aux(self, x):
        q = np.asarray(self.quantile)
        if q.ndim == 0:
            return q.astype(x.dtype).reshape(1)
        if x.ndim != 2 or q.shape != x.shape[1:]:
            raise ValueError(
                f"quantile: {q.size} quantiles need an input of shape (N, {q.size}), got {x.shape}"
            )
        return _broadcast(q, x.shape, "quantile", x.dtype)


def _function(cls, doc_name):
    def fn(input, target, *, reduction="mean", sample_weight=None, out=None, backend=None,
           **options):
        return cls(reduction=reduction, backend=backend, **options).loss_grad(
            input, target, sample_weight=sample_weight, out=out)

    fn.__name__ = fn.__qualname__ = doc_name
    fn.__doc__ = f"``(loss, grad)`` of :class:`{cls.__name__}`; options as its constructor's."
    return fn


binary_cross_entropy_with_logits = _function(BCEWithLogits, "binary_cross_entropy_with_logits")
sigmoid_focal_loss = _function(SigmoidFocal, "sigmoid_focal_loss")
huber_loss = _function(Huber, "huber_loss")
smooth_l1_loss = _function(SmoothL1, "smooth_l1_loss")
mse_loss = _function(MSE, "mse_loss")
l1_loss = _function(L1, "l1_loss")
pinball_loss = _function(Pinball, "pinball_loss")

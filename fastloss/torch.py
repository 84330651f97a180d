"""PyTorch adapter: fastloss losses as differentiable functions and ``nn.Module`` s.

Every loss exists as a function named like PyTorch's (``cross_entropy``,
``binary_cross_entropy_with_logits``, ``huber_loss``, ``smooth_l1_loss``,
``mse_loss``, ``l1_loss``, ``ctc_loss``, ``triplet_margin_loss``,
``margin_ranking_loss``) plus fastloss's own (``softmax_focal_loss``,
``sigmoid_focal_loss``, ``pinball_loss``, ``contrastive_loss``), and as a
module (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, ``HuberLoss``,
``SmoothL1Loss``, ``MSELoss``, ``L1Loss``, ``CTCLoss``, ``TripletMarginLoss``,
``MarginRankingLoss``, ``SoftmaxFocalLoss``, ``SigmoidFocalLoss``,
``PinballLoss``, ``ContrastiveLoss``).

How it works: the forward takes NumPy views of the (CPU, float32/float64)
tensors -- no copy -- and calls the fused ``loss_grad`` once, which returns
the loss and its gradient; the gradient is kept as a tensor sharing memory
with NumPy's array, and the backward returns ``grad_output * saved_grad``.
When no differentiable input requires grad (or grad mode is off), only the
forward-only ``loss`` runs and no graph is recorded.

Differences from PyTorch's own losses:

- options after the inputs are keyword-only (PyTorch's deprecated
  ``size_average``/``reduce`` do not exist), except ``weight`` of
  ``cross_entropy``/``binary_cross_entropy_with_logits`` and ``blank``,
  ``reduction``, ``zero_infinity`` of ``ctc_loss`` / ``CTCLoss``;
- the class axis of ``cross_entropy`` and ``softmax_focal_loss`` is the
  **last** axis: for a 2-D ``(N, C)`` input this is PyTorch's layout, for
  ``(N, d1, ..., C)`` inputs it is not (PyTorch wants ``(N, C, d1, ...)``;
  pass ``x.movedim(1, -1)``);
- a mean over an empty set (every target ignored, an empty batch) is 0 with a
  zero gradient, where PyTorch gives NaN;
- every function takes an extra ``sample_weight=`` (the batch shape) and
  ``backend=``;
- only the first inputs are differentiable: gradients flow to ``input``
  (all of the pairwise losses' inputs), and to ``target`` only for
  ``mse_loss``, ``l1_loss``, ``huber_loss`` and ``smooth_l1_loss``; a
  ``target``, ``weight`` or ``sample_weight`` of another loss that requires
  grad is a ``ValueError`` (pass ``.detach()``), never silently ignored;
- double backward is not supported (the backward is ``once_differentiable``);
- ``sigmoid_focal_loss`` defaults to ``reduction="mean"`` (torchvision's
  defaults to ``"none"``);
- ``ctc_loss(log_probs, ...)`` takes log-probabilities like PyTorch's; its
  gradient is the true derivative of the loss w.r.t. them (PyTorch's differs
  by ``exp(log_probs)``, and both agree after the chain rule through
  ``log_softmax``). With ``from_logits=True`` it takes raw logits and fuses
  the log-softmax in: ``ctc_loss(x, ..., from_logits=True)`` equals
  ``torch.nn.functional.ctc_loss(x.log_softmax(-1), ...)`` and is faster.

Errors: a tensor not on the CPU is a ``ValueError``; a differentiable input
that is not float32/float64, or tensors of another layout (sparse), is a
``TypeError``; both name the argument.
"""
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ._losses import ctc as _ctc
from ._losses import elementwise as _el
from ._losses import pairwise as _pw
from ._losses import softmax as _sm

__all__ = [
    "cross_entropy", "softmax_focal_loss", "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss", "huber_loss", "smooth_l1_loss", "mse_loss", "l1_loss",
    "pinball_loss", "ctc_loss", "triplet_margin_loss", "margin_ranking_loss",
    "contrastive_loss",
    "CrossEntropyLoss", "SoftmaxFocalLoss", "BCEWithLogitsLoss", "SigmoidFocalLoss",
    "HuberLoss", "SmoothL1Loss", "MSELoss", "L1Loss", "PinballLoss", "CTCLoss",
    "TripletMarginLoss", "MarginRankingLoss", "ContrastiveLoss",
]

_FLOATS = (torch.float32, torch.float64)


# -- tensors <-> NumPy -------------------------------------------------------------
def _check_cpu(t, name):
    if t.device.type != "cpu":
        raise ValueError(
            f"{name}: fastloss.torch takes CPU tensors only, got a tensor on {t.device}; "
            "move it with .cpu() (or use PyTorch's own loss on this device)"
        )
    if t.layout != torch.strided:
        raise TypeError(f"{name}: fastloss.torch takes dense (strided) tensors, got {t.layout}")


def _input_numpy(t, name):
    """A differentiable input: a NumPy view of the tensor's memory (no copy)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    _check_cpu(t, name)
    if t.dtype not in _FLOATS:
        raise TypeError(
            f"{name}: fastloss.torch takes float32 or float64 tensors, got {t.dtype}"
        )
    return t.detach().resolve_conj().resolve_neg().numpy()


def _aux_numpy(a, name):
    """A non-differentiable operand (target, lengths, weights): NumPy, no copy where possible."""
    if a is None or not isinstance(a, torch.Tensor):
        return a
    _check_cpu(a, name)
    if a.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            f"{name}: requires grad, but fastloss.torch does not differentiate w.r.t. "
            f"{name}; pass {name}.detach()"
        )
    if a.dtype == torch.bfloat16:
        raise TypeError(f"{name}: bfloat16 is not supported; convert it with .float()")
    return a.detach().resolve_conj().resolve_neg().numpy()


# -- the one autograd Function ---------------------------------------------------------
class _FusedLoss(torch.autograd.Function):
    """Forward: ``run()`` -> (loss, grads); backward: ``grad_output * grad``.

    ``run`` is a closure over the NumPy views; ``tensors`` are the
    differentiable tensors, in the order of the gradients ``run`` returns
    (a last tensor beyond them is a regression target, whose gradient is ``-grads[0]``).
    """

    @staticmethod
    def forward(ctx, run, shape_of_none, *tensors):
        loss, grads = run()
        # from_numpy shares memory with the gradient fastloss just wrote.
        ctx.grads = tuple(torch.from_numpy(g) for g in grads)
        ctx.shape_of_none = shape_of_none
        return torch.from_numpy(np.asarray(loss))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        if ctx.shape_of_none is not None:
            # reduction="none": the saved gradient is that of the sum of the
            # per-sample losses; each sample's part is scaled by its grad_output.
            grad_output = grad_output.reshape(ctx.shape_of_none)
        out = []
        for i, need in enumerate(ctx.needs_input_grad[2:]):
            if not need:
                out.append(None)
            elif i < len(ctx.grads):
                out.append(grad_output * ctx.grads[i])
            else:  # a regression target: d/dt f(x - t) = -d/dx
                out.append(-(grad_output * ctx.grads[0]))
        return (None, None, *out)


def _apply(obj, tensors, names, extra, sample_weight, *, target_diff=None,
           none_shape=None):
    """Run loss ``obj`` on differentiable ``tensors`` and non-differentiable ``extra``.

    ``target_diff``: a target tensor that may be differentiated (-grad of the input).
    ``none_shape(loss_shape, input_ndim)``: where the per-sample loss sits in the
    input's axes, for ``reduction="none"``.
    """
    arrays = [_input_numpy(t, n) for t, n in zip(tensors, names)]
    dtype = tensors[0].dtype
    for t, n in zip(tensors[1:], names[1:]):
        if t.dtype != dtype:
            raise TypeError(f"{n}: expected {dtype} (the {names[0]}'s dtype), got {t.dtype}")
    sw = _aux_numpy(sample_weight, "sample_weight")
    diff = list(tensors)
    if target_diff is not None:
        extra = [_input_numpy(target_diff, "target"), *extra[1:]]
        if target_diff.requires_grad and torch.is_grad_enabled():
            if target_diff.dtype != dtype:
                raise TypeError(f"target: expected {dtype} (the input's dtype) when it "
                                f"requires grad, got {target_diff.dtype}")
            diff.append(target_diff)
    need = torch.is_grad_enabled() and any(t.requires_grad for t in diff)
    if not need:
        loss = obj.loss(*arrays, *extra, sample_weight=sw)
        return torch.from_numpy(np.asarray(loss))

    def run():
        loss, grad = obj.loss_grad(*arrays, *extra, sample_weight=sw)
        return loss, (grad if isinstance(grad, tuple) else (grad,))

    shape = None
    if obj.reduction == "none":
        x = arrays[0]
        shape = none_shape(x) if none_shape is not None else None
    return _FusedLoss.apply(run, shape, *diff)


def _batch_then_ones(n_batch_axes):
    def shape(x):
        k = n_batch_axes(x)
        return x.shape[:k] + (1,) * (x.ndim - k)
    return shape


_SOFTMAX_NONE = _batch_then_ones(lambda x: x.ndim - 1)  # (...,) of (..., C)
_ELEMENTWISE_NONE = _batch_then_ones(lambda x: x.ndim)  # the input's shape
_PAIRWISE_NONE = _batch_then_ones(lambda x: 1)  # (N,) of (N, D) or (N,)


# -- functions ---------------------------------------------------------------------------
def _softmax_target(target):
    return _aux_numpy(target, "target")


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, sample_weight=None, backend=None):
    """Cross-entropy of logits ``(..., C)`` (class axis last), like ``F.cross_entropy``.

    ``target``: integer labels ``(...)`` or probabilities ``(..., C)``.
    """
    obj = _sm.CrossEntropy(weight=_aux_numpy(weight, "weight"), ignore_index=ignore_index,
                           label_smoothing=label_smoothing, reduction=reduction,
                           backend=backend)
    return _apply(obj, (input,), ("input",), (_softmax_target(target),), sample_weight,
                  none_shape=_SOFTMAX_NONE)


def softmax_focal_loss(input, target, *, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", sample_weight=None, backend=None):
    """Softmax focal loss ``-w[y] (1-p_y)^gamma log p_y`` of logits ``(..., C)``."""
    obj = _sm.SoftmaxFocal(gamma=gamma, weight=_aux_numpy(weight, "weight"),
                           ignore_index=ignore_index, reduction=reduction, backend=backend)
    return _apply(obj, (input,), ("input",), (_softmax_target(target),), sample_weight,
                  none_shape=_SOFTMAX_NONE)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean",
                                     pos_weight=None, sample_weight=None, backend=None):
    """Like ``F.binary_cross_entropy_with_logits``."""
    obj = _el.BCEWithLogits(weight=_aux_numpy(weight, "weight"),
                            pos_weight=_aux_numpy(pos_weight, "pos_weight"),
                            reduction=reduction, backend=backend)
    return _apply(obj, (input,), ("input",), (_aux_numpy(target, "target"),), sample_weight,
                  none_shape=_ELEMENTWISE_NONE)


def sigmoid_focal_loss(input, target, *, alpha=0.25, gamma=2.0, reduction="mean",
                       sample_weight=None, backend=None):
    """torchvision's ``sigmoid_focal_loss`` (default ``reduction="mean"`` here)."""
    obj = _el.SigmoidFocal(alpha=alpha, gamma=gamma, reduction=reduction, backend=backend)
    return _apply(obj, (input,), ("input",), (_aux_numpy(target, "target"),), sample_weight,
                  none_shape=_ELEMENTWISE_NONE)


def _regression(obj, input, target, sample_weight):
    """Losses of ``input - target``: the target is differentiable too."""
    if isinstance(target, torch.Tensor) and target.requires_grad:
        if isinstance(input, torch.Tensor) and input.shape != target.shape:
            raise ValueError(f"target: expected shape {tuple(input.shape)} (the input's), "
                             f"got {tuple(target.shape)}")
        return _apply(obj, (input,), ("input",), (None,), sample_weight, target_diff=target,
                      none_shape=_ELEMENTWISE_NONE)
    return _apply(obj, (input,), ("input",), (_aux_numpy(target, "target"),), sample_weight,
                  none_shape=_ELEMENTWISE_NONE)


def huber_loss(input, target, *, reduction="mean", delta=1.0, sample_weight=None,
               backend=None):
    """Like ``F.huber_loss``; differentiable w.r.t. input and target."""
    obj = _el.Huber(delta=delta, reduction=reduction, backend=backend)
    return _regression(obj, input, target, sample_weight)


def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0, sample_weight=None,
                   backend=None):
    """Like ``F.smooth_l1_loss``; differentiable w.r.t. input and target."""
    obj = _el.SmoothL1(beta=beta, reduction=reduction, backend=backend)
    return _regression(obj, input, target, sample_weight)


def mse_loss(input, target, *, reduction="mean", sample_weight=None, backend=None):
    """Like ``F.mse_loss`` (no broadcasting); differentiable w.r.t. input and target."""
    obj = _el.MSE(reduction=reduction, backend=backend)
    return _regression(obj, input, target, sample_weight)


def l1_loss(input, target, *, reduction="mean", sample_weight=None, backend=None):
    """Like ``F.l1_loss`` (gradient 0 at 0); differentiable w.r.t. input and target."""
    obj = _el.L1(reduction=reduction, backend=backend)
    return _regression(obj, input, target, sample_weight)


def pinball_loss(input, target, *, quantile=0.5, reduction="mean", sample_weight=None,
                 backend=None):
    """Pinball (quantile) loss of ``(N,)`` or ``(N, Q)`` predictions and an ``(N,)`` target."""
    obj = _el.Pinball(quantile=_aux_numpy(quantile, "quantile"), reduction=reduction,
                      backend=backend)
    return _apply(obj, (input,), ("input",), (_aux_numpy(target, "target"),), sample_weight,
                  none_shape=_ELEMENTWISE_NONE)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, *, from_logits=False, batch_first=False, sample_weight=None,
             backend=None):
    """Like ``F.ctc_loss``: ``log_probs`` ``(T, N, C)`` (``batch_first``: ``(N, T, C)``).

    With ``from_logits=True`` the first argument is raw logits and the
    log-softmax is fused in (equal to ``F.ctc_loss(x.log_softmax(-1), ...)``).
    """
    obj = _ctc.CTC(blank=blank, reduction=reduction, zero_infinity=zero_infinity,
                   log_probs=not from_logits, batch_first=batch_first, backend=backend)
    extra = (_aux_numpy(targets, "targets"), _aux_numpy(input_lengths, "input_lengths"),
             _aux_numpy(target_lengths, "target_lengths"))
    name = "logits" if from_logits else "log_probs"
    axis = 0 if batch_first else 1

    def none_shape(x):
        shape = [1, 1, 1]
        shape[axis] = x.shape[axis]
        return tuple(shape)

    return _apply(obj, (log_probs,), (name,), extra, sample_weight, none_shape=none_shape)


def triplet_margin_loss(anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-6,
                        swap=False, reduction="mean", sample_weight=None, backend=None):
    """Like ``F.triplet_margin_loss`` for ``(N, D)`` inputs; all three are differentiable."""
    obj = _pw.TripletMargin(margin=margin, p=p, eps=eps, swap=swap, reduction=reduction,
                            backend=backend)
    return _apply(obj, (anchor, positive, negative), ("anchor", "positive", "negative"), (),
                  sample_weight, none_shape=_PAIRWISE_NONE)


def margin_ranking_loss(input1, input2, target, *, margin=0.0, reduction="mean",
                        sample_weight=None, backend=None):
    """Like ``F.margin_ranking_loss`` for ``(N,)`` inputs and a ±1 target."""
    obj = _pw.MarginRanking(margin=margin, reduction=reduction, backend=backend)
    return _apply(obj, (input1, input2), ("input1", "input2"),
                  (_aux_numpy(target, "target"),), sample_weight, none_shape=_PAIRWISE_NONE)


def contrastive_loss(x1, x2, target, *, margin=1.0, reduction="mean", sample_weight=None,
                     backend=None):
    """Contrastive loss (Hadsell et al.) of ``(N, D)`` pairs; target 1 similar, 0 dissimilar."""
    obj = _pw.Contrastive(margin=margin, reduction=reduction, backend=backend)
    return _apply(obj, (x1, x2), ("x1", "x2"), (_aux_numpy(target, "target"),),
                  sample_weight, none_shape=_PAIRWISE_NONE)


# -- modules ---------------------------------------------------------------------------
class _LossModule(torch.nn.Module):
    """Holds the options; ``forward(*inputs, sample_weight=None)`` calls the function."""

    _function = None

    def __init__(self, **options):
        super().__init__()
        self.options = options

    def forward(self, *args, sample_weight=None):
        return type(self)._function(*args, **self.options, sample_weight=sample_weight)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


def _module(name, function, doc, positional=()):
    def __init__(self, *args, **options):
        if len(args) > len(positional):
            raise TypeError(f"{name}() takes at most {len(positional)} positional "
                            f"arguments ({', '.join(positional) or 'none'})")
        options.update(zip(positional, args))
        _LossModule.__init__(self, **options)

    cls = type(name, (_LossModule,), {
        "__init__": __init__, "_function": staticmethod(function), "__doc__": doc,
        "__module__": __name__,
    })
    return cls


CrossEntropyLoss = _module("CrossEntropyLoss", cross_entropy,
                           "Module form of :func:`cross_entropy` (class axis last).", ("weight",))
SoftmaxFocalLoss = _module("SoftmaxFocalLoss", softmax_focal_loss,
                           "Module form of :func:`softmax_focal_loss`.")
BCEWithLogitsLoss = _module("BCEWithLogitsLoss", binary_cross_entropy_with_logits,
                            "Module form of :func:`binary_cross_entropy_with_logits`.",
                            ("weight",))
SigmoidFocalLoss = _module("SigmoidFocalLoss", sigmoid_focal_loss,
                           "Module form of :func:`sigmoid_focal_loss`.")
HuberLoss = _module("HuberLoss", huber_loss, "Module form of :func:`huber_loss`.",
                    ("reduction", "delta"))
SmoothL1Loss = _module("SmoothL1Loss", smooth_l1_loss, "Module form of :func:`smooth_l1_loss`.")
MSELoss = _module("MSELoss", mse_loss, "Module form of :func:`mse_loss`.")
L1Loss = _module("L1Loss", l1_loss, "Module form of :func:`l1_loss`.")
PinballLoss = _module("PinballLoss", pinball_loss, "Module form of :func:`pinball_loss`.")
CTCLoss = _module("CTCLoss", ctc_loss, "Module form of :func:`ctc_loss`.",
                  ("blank", "reduction", "zero_infinity"))
TripletMarginLoss = _module("TripletMarginLoss", triplet_margin_loss,
                            "Module form of :func:`triplet_margin_loss`.",
                            ("margin", "p", "eps", "swap"))
MarginRankingLoss = _module("MarginRankingLoss", margin_ranking_loss,
                            "Module form of :func:`margin_ranking_loss`.", ("margin",))
ContrastiveLoss = _module("ContrastiveLoss", contrastive_loss,
                          "Module form of :func:`contrastive_loss`.", ("margin",))

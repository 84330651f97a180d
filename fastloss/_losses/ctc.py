"""Connectionist temporal classification (CTC), log-softmax fused in.

The kernels see the input as a C-contiguous ``(T, N, C)`` or ``(N, T, C)``
array (``batch_first``), the targets as one concatenated int32 array with
offsets, and the lengths as int64: everything range-checked here, so that no
label or length can make a kernel read or write outside its arrays.
"""
import numpy as np

from .. import _validation as V
from .._base import Batch, Loss


class CTC(Loss):
    r"""CTC loss (Graves et al., 2006) of raw logits, log-softmax fused in.

    .. math::
        \ell_i = -\log \sum_{\pi \in \mathcal{B}^{-1}(l_i)} \prod_t p_t(\pi_t),
        \qquad p_t = \mathrm{softmax}(x_t)

    summed over the alignments :math:`\pi` of target :math:`l_i` (labels
    with blanks in between and repeats). The gradient w.r.t. the logits is
    :math:`p_t(c) - \gamma_t(c)`, with :math:`\gamma_t(c)` the posterior
    probability that frame :math:`t` emits :math:`c` (forward-backward).
    With ``log_probs=True`` the input is taken as log-probabilities as
    given, and the gradient is the true derivative w.r.t. them,
    :math:`-\gamma_t(c)` (PyTorch's differs from it; both agree after the
    chain rule through log_softmax).

    The forward-backward recursions run in log space (float64 variables;
    float32 inputs take exp and log of the small differences in float32), so
    every representable loss stays finite, also for logits of 1e30.
    Impossible alignments give ``inf`` and a zero gradient
    (``zero_infinity=True``: loss 0). Frames past a sequence's input length
    are never read and get a zero gradient.

    Shape: input ``(T, N, C)`` (``batch_first=True``: ``(N, T, C)``);
    targets ``(N, S)`` padded or 1-D concatenated, labels in ``[0, C)`` and
    not ``blank``; ``input_lengths``, ``target_lengths`` and
    ``sample_weight`` ``(N,)``. ``"mean"`` is
    :math:`\sum_i w_i \ell_i / \max(L_i, 1) / \sum_i w_i`, PyTorch's mean
    when ``sample_weight`` is None; ``"none"`` gives :math:`w_i \ell_i`.
    Workspace: about ``8 T (2 S + 3)`` bytes per thread for the longest sequence.
    """

    _family = "ctc"
    _options = ("blank", "zero_infinity", "log_probs", "batch_first")

    def __init__(self, *, blank=0, reduction="mean", zero_infinity=False, log_probs=False,
                 batch_first=False, backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.blank = V.integer(blank, "blank")
        if self.blank < 0:
            raise ValueError(f"blank: must be >= 0, got {self.blank}")
        self.zero_infinity = bool(zero_infinity)
        self.log_probs = bool(log_probs)
        self.batch_first = bool(batch_first)

    def loss(self, input, targets, input_lengths, target_lengths, *, sample_weight=None):
        """The loss only (forward only)."""
        lengths = (targets, input_lengths, target_lengths)
        return self._run(input, lengths, sample_weight, grad=False, hess=False)[0]

    def loss_grad(self, input, targets, input_lengths, target_lengths, *, sample_weight=None,
                  out=None):
        """``(loss, grad)`` in one pass; ``grad`` is written into ``out`` if given."""
        lengths = (targets, input_lengths, target_lengths)
        loss, grad, _ = self._run(input, lengths, sample_weight, grad=True, hess=False, out=out)
        return loss, grad

    def __call__(self, input, targets, input_lengths, target_lengths, *, sample_weight=None,
                 out=None):
        return self.loss_grad(input, targets, input_lengths, target_lengths,
                              sample_weight=sample_weight, out=out)

    @property
    def grad_hess(self):
        # No Hessian for CTC: hasattr(ctc, "grad_hess") is False.
        raise AttributeError("CTC has no grad_hess (its Hessian is not diagonal)")

    # -- the engine's hooks -----------------------------------------------------
    def _prepare(self, input, lengths, sample_weight):
        targets, input_lengths, target_lengths = lengths
        x = V.as_input(input)
        if x.ndim != 3:
            axes = "(N, T, C)" if self.batch_first else "(T, N, C)"
            raise ValueError(f"input: CTC needs a 3-D input {axes}, got shape {x.shape}")
        n_frames, n, n_classes = x.shape[1], x.shape[0], x.shape[2]
        if not self.batch_first:
            n_frames, n = n, n_frames
        if not 0 <= self.blank < n_classes:
            raise ValueError(f"blank: must be in [0, {n_classes}) (the class axis), got {self.blank}")
        in_len = V.lengths(input_lengths, "input_lengths", n, high=n_frames)
        labels, offsets = self._targets(targets, target_lengths, n, n_classes)
        tgt_len = np.diff(offsets)
        sw = V.sample_weight(sample_weight, (n,), np.float64)
        w = np.ones(n) if sw is None else sw
        # Per-sequence multiplier of the loss and gradient; "mean" also
        # divides by the sum of the weights (the engine's denominator).
        m = w / np.maximum(tgt_len, 1) if self.reduction == "mean" else w
        return Batch(
            x=x,
            input_shape=x.shape,
            batch_shape=(n,),
            n_rows=n,
            denominator=float(w.sum()),
            extra=dict(labels=labels, offsets=offsets, in_len=in_len,
                       m=np.ascontiguousarray(m, dtype=np.float64),
                       longest=(int(in_len.max(initial=0)), int(tgt_len.max(initial=0)))),
        )

    def _targets(self, targets, target_lengths, n, n_classes):
        """Concatenated int32 labels and int64 offsets; only the used labels are checked."""
        tg = V._real_array(targets, "targets")
        if tg.ndim == 2:
            if tg.shape[0] != n:
                raise ValueError(f"targets: padded targets need {n} rows (the batch), got shape {tg.shape}")
            tl = V.lengths(target_lengths, "target_lengths", n, high=tg.shape[1])
            used = np.arange(tg.shape[1]) < tl[:, None]
            where = np.argwhere(used)
            values = tg[used]
        elif tg.ndim == 1:
            tl = V.lengths(target_lengths, "target_lengths", n)
            if tl.sum() != tg.size:
                raise ValueError(f"targets: concatenated targets hold {tg.size} labels, "
                                 f"but target_lengths sum to {int(tl.sum())}")
            where, values = None, tg
        else:
            raise ValueError(f"targets: must be 2-D (N, S) padded or 1-D concatenated, got shape {tg.shape}")
        labels = V.labels(values, values.shape, n_classes, name="targets", where=where)
        if (labels == self.blank).any():
            pos = V._first(labels == self.blank)
            pos = pos if where is None else tuple(int(i) for i in where[pos])
            raise ValueError(f"targets: label at index {pos} is the blank ({self.blank})")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(tl, out=offsets[1:])
        return labels.astype(np.int32), offsets

    def _kernel(self, kernels, batch, scale, grad, hess, rows, n_threads):
        e = batch.extra
        # Sequences are the unit of parallel work; the workspace holds one
        # sequence's forward variables per thread.
        n_threads = max(1, min(n_threads, len(e["in_len"])))
        ws = np.empty((n_threads, max(kernels.workspace(*e["longest"]), 1)), dtype=np.float64)
        kernels.ctc(batch.x, self.batch_first, e["labels"], e["offsets"], e["in_len"],
                    self.blank, self.log_probs, self.zero_infinity, e["m"], scale, grad,
                    rows, ws, n_threads)

    def _reduce(self, rows, batch, denominator):
        m = batch.extra["m"]
        # A weight of 0 drops its sequence, an impossible one too (no 0 * inf).
        rows = np.where(m == 0, 0.0, rows * m)
        return super()._reduce(rows, batch, denominator)


def ctc_loss(input, targets, input_lengths, target_lengths, *, blank=0, reduction="mean",
             zero_infinity=False, log_probs=False, batch_first=False, sample_weight=None,
             out=None, backend=None):
    """``(loss, grad)`` of the CTC loss; see :class:`CTC`."""
    return CTC(blank=blank, reduction=reduction, zero_infinity=zero_infinity,
               log_probs=log_probs, batch_first=batch_first, backend=backend).loss_grad(
        input, targets, input_lengths, target_lengths, sample_weight=sample_weight, out=out)

"""Pairwise losses: triplet margin, margin ranking and contrastive.

These losses take several inputs of the same shape, one row per sample, and
return one gradient per input: ``.loss(x1, x2[, x3], [target], *,
sample_weight=None)``, ``.loss_grad(..., out=None)`` → ``(loss, (g1, g2[, g3]))``
with ``out`` a tuple of arrays (one per input, possibly the inputs
themselves), ``__call__`` = ``loss_grad``. They have no ``grad_hess``
(``hasattr(loss, "grad_hess")`` is False): their Hessians are not diagonal.

The first input decides the compute dtype; the others, the target and the
sample weights follow it. The kernels see C-contiguous ``(N, D)`` rows
(``(N,)`` for margin ranking); everything else (validation, the ``"mean"``
denominator, the reduction, threads and backend) is the shared engine of
``fastloss._base.Loss``.
"""
import numpy as np

from .. import _validation as V
from .._base import Batch, Loss

#: Margin ranking's elements per block: the kernels reduce each block to one partial sum
#: (unless reduction="none"), and the partials are added in a fixed order, whatever the
#: number of threads.
BLOCK = 4096


def _option(value, name, *, low=None, low_open=False):
    """A finite real option, >= low (or > low)."""
    value = V.scalar(value, name, low=low, low_open=low_open)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    return value


def _no(dtype):
    """An empty array: how the kernels are told an optional array is absent."""
    return np.empty(0, dtype=dtype)


def _describe(a):
    if not isinstance(a, np.ndarray):
        return type(a).__name__
    return f"{a.dtype} array of shape {a.shape}"


class _Pairwise(Loss):
    """Shared by the pairwise losses: several inputs, one gradient each.

    It runs ``Loss``'s flow (``_prepare`` → buffers → kernel → ``_reduce``)
    with the gradient buffer generalised to a tuple: ``_grad_buffers`` and
    ``_kernel_grads`` are the two places that differ from a one-input loss.
    """

    _family = "pairwise"
    _input_names = ()  # the differentiable inputs in order; the first decides the dtype
    _ndim = 2  # inputs are (N, D); margin ranking's are (N,)

    @property
    def grad_hess(self):
        # a property that raises AttributeError: hasattr(loss, "grad_hess") is False
        raise AttributeError(
            f"{type(self).__name__} has no grad_hess: the Hessian of a pairwise loss "
            "is not diagonal"
        )

    # -- validation -------------------------------------------------------------
    def _inputs(self, inputs):
        """The inputs as C-contiguous arrays of the first one's compute dtype and shape."""
        first, *rest = self._input_names
        x = V.as_input(inputs[0], first)
        if x.ndim != self._ndim:
            want = "(N, D)" if self._ndim == 2 else "(N,)"
            raise ValueError(f"{first}: expected shape {want}, got {x.shape}")
        arrays = [x]
        for a, name in zip(inputs[1:], rest):
            a = V._real_array(a, name)
            if a.shape != x.shape:
                raise ValueError(f"{name}: expected shape {x.shape} (the {first}'s), got {a.shape}")
            arrays.append(np.ascontiguousarray(a, dtype=x.dtype))
        return arrays

    def _target(self, target, x):  # pragma: no cover - losses with a target override it
        return None

    def _prepare(self, inputs, target, sample_weight):
        arrays = self._inputs(inputs)
        x = arrays[0]
        n = x.shape[0]
        t = self._target(target, x)
        sw = V.sample_weight(sample_weight, (n,), x.dtype)
        return Batch(
            x=x,
            input_shape=x.shape,
            batch_shape=(n,),
            n_rows=n,
            denominator=float(n if sw is None else sw.sum(dtype=np.float64)),
            extra=dict(inputs=arrays, t=t, sw=_no(x.dtype) if sw is None else sw),
        )

    def _labels(self, target, x, ok, rule):
        """A target of shape (N,) whose values all satisfy ``ok``; ``rule`` says which."""
        t = V._real_array(target, "target")
        if t.shape != x.shape[:1]:
            raise ValueError(f"target: expected shape {x.shape[:1]}, got {t.shape}")
        bad = ~ok(t)
        if bad.any():
            pos = V._first(bad)
            raise ValueError(f"target: must be {rule}, got {t[pos].item()!r} at index {pos}")
        return np.ascontiguousarray(t, dtype=x.dtype)

    # -- the two places where several gradients differ from one ------------------
    def _grad_buffers(self, out, batch):
        """One gradient buffer per input: fresh, or ``out`` checked (tuple, shapes, overlaps)."""
        x, names = batch.x, self._input_names
        if out is None:
            return tuple(np.empty(x.shape, dtype=x.dtype) for _ in names)
        grads = ", ".join(f"g_{n}" for n in names)
        if not isinstance(out, (tuple, list)) or len(out) != len(names):
            got = f"{len(out)} arrays" if isinstance(out, (tuple, list)) else _describe(out)
            raise ValueError(f"out: must be a tuple of {len(names)} arrays ({grads}), got {got}")
        bufs = tuple(V.out_buffer(o, x.shape, x.dtype, name=f"out[{i}]") for i, o in enumerate(out))
        for i, b in enumerate(bufs):
            for j in range(i):
                if np.may_share_memory(b, bufs[j]):
                    raise ValueError(f"out: out[{j}] and out[{i}] overlap; each gradient "
                                     "needs its own array")
            # An input's own memory is fine (the kernels read every input at j before
            # writing at j); any other overlap with what the kernel reads is not.
            for a, name in zip(batch.extra["inputs"], names):
                if np.may_share_memory(b, a) and b.ctypes.data != a.ctypes.data:
                    raise ValueError(f"out[{i}]: overlaps {name} without being it")
            for a, name in ((batch.extra["t"], "target"), (batch.extra["sw"], "sample_weight")):
                if a is not None and np.may_share_memory(b, a):
                    raise ValueError(f"out[{i}]: overlaps {name}")
        return bufs

    def _kernel_grads(self, grads, batch):
        """What the kernel writes into: the buffers, or empty rows when no gradient is asked."""
        x = batch.x
        if grads is None:
            # No element at all (a 1-D input's "rows" would otherwise be N elements
            # the kernel fills for nothing, every gradient the same buffer).
            shape = x.shape[:1] + (0,) * (x.ndim - 1) if x.ndim > 1 else (0,)
            absent = np.empty(shape, dtype=x.dtype)
            return (absent,) * len(self._input_names)
        return grads

    def _work(self, batch):
        return batch.x.size * len(self._input_names)


class TripletMargin(_Pairwise):
    r"""Triplet margin loss (Schroff et al., 2015; Balntas et al., 2016), PyTorch's definition.

    .. math::
        \ell_i = \max(0,\ m + d(a_i, p_i) - d(a_i, n_i)),\qquad
        d(x, y) = \lVert x - y + \varepsilon \rVert_p

    (:math:`\varepsilon` is added to every component inside the norm, as
    ``torch.pairwise_distance`` does). With ``swap=True`` the negative
    distance is :math:`\min(d(a, n), d(p, n))` (the distance swap of Balntas
    et al.); on an exact tie the gradient is shared half and half, as
    ``torch.min``'s. The gradient passes where the hinge is exactly 0
    (PyTorch's ``clamp_min``). ``p`` may be any value in [0, inf]: 2 and 1
    have fast paths, inf is the max norm (its gradient shared among the
    components that reach the maximum, as PyTorch), 0 counts non-zero
    components (gradient 0). The gradient of a norm at v = 0 is 0, so
    ``anchor == positive`` gives a finite gradient also with ``eps=0``.
    Distances are computed in double (float32 components, double sums);
    float64 rows whose sum of squares would overflow or underflow are
    rescaled, so distances up to the float64 range are exact.

    Shape: anchor, positive, negative ``(N, D)``; ``sample_weight`` ``(N,)``;
    loss ``(N,)`` for ``reduction="none"``, else a scalar. ``loss_grad``
    returns ``(loss, (g_anchor, g_positive, g_negative))``. Matches
    ``torch.nn.functional.triplet_margin_loss``; ``"mean"`` divides by the sum
    of ``sample_weight`` (N without it).

    >>> import numpy as np, fastloss
    >>> a = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> p = np.array([[0.0, 1.0], [1.0, 2.0]])
    >>> n = np.array([[0.5, 0.0], [4.0, 5.0]])
    >>> loss, (ga, gp, gn) = fastloss.TripletMargin(eps=0.0)(a, p, n)
    >>> float(loss)
    0.75
    >>> ga
    array([[ 0.5, -0.5],
           [ 0. ,  0. ]])

    References: F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet", CVPR 2015;
    V. Balntas et al., "Learning local feature descriptors with triplets and
    shallow convolutional neural networks", BMVC 2016.
    """

    _input_names = ("anchor", "positive", "negative")
    _options = ("margin", "p", "eps", "swap")

    def __init__(self, *, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean",
                 backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.margin = _option(margin, "margin", low=0.0, low_open=True)  # PyTorch: > 0
        self.p = V.scalar(p, "p", low=0.0)  # [0, inf]
        self.eps = _option(eps, "eps", low=0.0)
        if not isinstance(swap, (bool, np.bool_)):
            raise TypeError(f"swap: must be True or False, got {swap!r}")
        self.swap = bool(swap)

    def _norm_kind(self, kernels):
        return {0.0: kernels.P_ZERO, 1.0: kernels.P_ONE, 2.0: kernels.P_TWO,
                np.inf: kernels.P_INF}.get(self.p, kernels.P_GENERAL)

    def loss(self, anchor, positive, negative, *, sample_weight=None):
        """The loss only (forward only)."""
        return self._run((anchor, positive, negative), None, sample_weight, grad=False)[0]

    def loss_grad(self, anchor, positive, negative, *, sample_weight=None, out=None):
        """``(loss, (g_anchor, g_positive, g_negative))``; gradients into ``out`` if given."""
        loss, grads, _ = self._run((anchor, positive, negative), None, sample_weight,
                                   grad=True, out=out)
        return loss, grads

    def __call__(self, anchor, positive, negative, *, sample_weight=None, out=None):
        return self.loss_grad(anchor, positive, negative, sample_weight=sample_weight, out=out)

    def _kernel(self, kernels, batch, scale, grads, hess, rows, n_threads):
        a, pos, neg = batch.extra["inputs"]
        ga, gp, gn = grads
        kernels.triplet(a, pos, neg, batch.extra["sw"], self.margin, self._norm_kind(kernels),
                        self.p, self.eps, self.swap, 1.0, scale, ga, gp, gn, rows, n_threads)


class _PairWithTarget(_Pairwise):
    """Two inputs x1, x2 and a per-row target: margin ranking, contrastive."""

    _input_names = ("x1", "x2")

    def loss(self, x1, x2, target, *, sample_weight=None):
        """The loss only (forward only)."""
        return self._run((x1, x2), target, sample_weight, grad=False)[0]

    def loss_grad(self, x1, x2, target, *, sample_weight=None, out=None):
        """``(loss, (g_x1, g_x2))``; gradients into ``out`` if given."""
        loss, grads, _ = self._run((x1, x2), target, sample_weight, grad=True, out=out)
        return loss, grads

    def __call__(self, x1, x2, target, *, sample_weight=None, out=None):
        return self.loss_grad(x1, x2, target, sample_weight=sample_weight, out=out)


class MarginRanking(_PairWithTarget):
    r"""Margin ranking loss, PyTorch's definition.

    .. math:: \ell_i = \max(0,\ -y_i (x_{1,i} - x_{2,i}) + m),\qquad y_i \in \{1, -1\}

    :math:`y = 1` asks for :math:`x_1` to rank above :math:`x_2` by at least
    the margin. Gradient :math:`\mp y` where the hinge is active, passing at
    exactly 0 as PyTorch's ``clamp_min``. A target other than 1 or -1 is a
    ``ValueError`` naming its first position.

    Shape: x1, x2, target ``(N,)``; ``sample_weight`` ``(N,)``. ``loss_grad``
    returns ``(loss, (g_x1, g_x2))``. Matches
    ``torch.nn.functional.margin_ranking_loss``.

    >>> import numpy as np, fastloss
    >>> fastloss.MarginRanking(margin=0.5, reduction="none")(
    ...     np.array([1.0, 0.2]), np.array([0.0, 0.0]), np.array([1, -1]))
    (array([0. , 0.7]), (array([0., 1.]), array([ 0., -1.])))
    """

    _ndim = 1
    _options = ("margin",)

    def __init__(self, *, margin=0.0, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.margin = _option(margin, "margin")

    def _target(self, target, x):
        return self._labels(target, x, lambda t: (t == 1) | (t == -1), "1 or -1")

    def _prepare(self, inputs, target, sample_weight):
        batch = super()._prepare(inputs, target, sample_weight)
        if self.reduction != "none":  # one partial sum per block, added in a fixed order
            batch.n_rows = -(-batch.n_rows // BLOCK)
        return batch

    def _kernel(self, kernels, batch, scale, grads, hess, rows, n_threads):
        x1, x2 = batch.extra["inputs"]
        kernels.ranking(x1, x2, batch.extra["t"], batch.extra["sw"], self.margin, scale, BLOCK,
                        self.reduction == "none", grads[0], grads[1], rows, n_threads)


class Contrastive(_PairWithTarget):
    r"""Contrastive loss (Hadsell, Chopra & LeCun, 2006).

    .. math::
        \ell_i = \tfrac12\, y_i\, d_i^2 + \tfrac12 (1 - y_i) \max(0,\ m - d_i)^2,
        \qquad d_i = \lVert x_{1,i} - x_{2,i} \rVert_2

    with :math:`y = 1` for a similar pair and :math:`y = 0` for a dissimilar
    one (any value in [0, 1] is accepted and mixes the two terms; anything
    else is a ``ValueError``). Gradient :math:`g_{x_1} = -g_{x_2} = c\,(x_1 - x_2)`,
    :math:`c = y - (1 - y)(m - d)/d` where :math:`d < m`, else :math:`c = y`;
    the second term's gradient is 0 at :math:`d = 0`. :math:`d^2` is the sum
    of squares itself; float64 rows are rescaled where that sum would
    overflow or underflow.

    Shape: x1, x2 ``(N, D)``; target and ``sample_weight`` ``(N,)``.
    ``loss_grad`` returns ``(loss, (g_x1, g_x2))``.

    >>> import numpy as np, fastloss
    >>> x1 = np.array([[0.0, 0.0], [0.0, 0.0]])
    >>> x2 = np.array([[3.0, 4.0], [0.3, 0.4]])
    >>> fastloss.Contrastive(margin=1.0, reduction="none").loss(x1, x2, np.array([1, 0]))
    array([12.5  ,  0.125])

    Reference: R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality reduction by
    learning an invariant mapping", CVPR 2006.
    """

    _options = ("margin",)

    def __init__(self, *, margin=1.0, reduction="mean", backend=None):
        super().__init__(reduction=reduction, backend=backend)
        self.margin = _option(margin, "margin", low=0.0)

    def _target(self, target, x):
        return self._labels(target, x, lambda t: (t >= 0) & (t <= 1),
                            "in [0, 1] (1 similar, 0 dissimilar)")

    def _kernel(self, kernels, batch, scale, grads, hess, rows, n_threads):
        x1, x2 = batch.extra["inputs"]
        kernels.contrastive(x1, x2, batch.extra["t"], batch.extra["sw"], self.margin, scale,
                            grads[0], grads[1], rows, n_threads)


# -- functions -------------------------------------------------------------------
def triplet_margin_loss(anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-6,
                        swap=False, reduction="mean", sample_weight=None, out=None,
                        backend=None):
    """``(loss, (g_anchor, g_positive, g_negative))`` of :class:`TripletMargin`."""
    return TripletMargin(margin=margin, p=p, eps=eps, swap=swap, reduction=reduction,
                         backend=backend).loss_grad(anchor, positive, negative,
                                                    sample_weight=sample_weight, out=out)


def margin_ranking_loss(x1, x2, target, *, margin=0.0, reduction="mean", sample_weight=None,
                        out=None, backend=None):
    """``(loss, (g_x1, g_x2))`` of :class:`MarginRanking`."""
    return MarginRanking(margin=margin, reduction=reduction, backend=backend).loss_grad(
        x1, x2, target, sample_weight=sample_weight, out=out)


def contrastive_loss(x1, x2, target, *, margin=1.0, reduction="mean", sample_weight=None,
                     out=None, backend=None):
    """``(loss, (g_x1, g_x2))`` of :class:`Contrastive`."""
    return Contrastive(margin=margin, reduction=reduction, backend=backend).loss_grad(
        x1, x2, target, sample_weight=sample_weight, out=out)

"""JAX adapter: fastloss losses as differentiable JAX functions (CPU).

Every function here mirrors the fastloss function of the same name but takes
and returns JAX arrays and is differentiable with ``jax.grad``,
``jax.value_and_grad`` and ``jax.vjp``, and usable under ``jax.jit`` and
``jax.vmap``::

    import jax, fastloss.jax as flj
    loss, g = jax.value_and_grad(flj.cross_entropy)(logits, labels)
    g = jax.jit(jax.grad(lambda x: flj.cross_entropy(x, labels, label_smoothing=0.1)))(logits)

How it works: each loss is a ``jax.custom_vjp`` function. Its forward rule
makes ONE ``jax.pure_callback`` into the fused fastloss ``loss_grad`` (loss
and gradient in one pass over the data) and saves the gradient; its backward
rule returns ``cotangent * saved_grad`` (for ``reduction="none"`` the
per-sample cotangent is broadcast over the sample's elements). Without
differentiation only ``loss`` runs. Called eagerly on concrete arrays (no
``jit``/``grad``), a function calls fastloss directly, so validation errors
are fastloss's own ``ValueError``; inside traced code they surface as
``jax.errors.JaxRuntimeError`` carrying the same message.

Conventions:

- Differentiable inputs must be float32 or float64 (float64 needs
  ``jax.config.update("jax_enable_x64", True)``); any other dtype (float16,
  bfloat16, integers, complex) is a ``TypeError`` at trace time. float32 in
  gives a float32 loss; float64 gives float64.
- Class axis last, options, reductions and ``sample_weight`` exactly as in
  fastloss (``"mean"``, ``"sum"``: a scalar; ``"none"``: the batch shape).
- Options (``weight``, ``pos_weight``, ``quantile``, ``delta`` ...) are static:
  Python or NumPy values (or concrete JAX arrays), not traced values: under
  ``jax.jit`` close over them or name them in ``static_argnames``.
- Gradients flow to the inputs fastloss differentiates (logits / predictions;
  every embedding of the pairwise losses) and, for the regression losses
  (``huber_loss``, ``smooth_l1_loss``, ``mse_loss``, ``l1_loss``,
  ``pinball_loss``), to a float ``target`` as well (``-`` the input's
  gradient, summed to the target's shape). Labels, probability targets of
  the classification losses, lengths and ``sample_weight`` are constants:
  their cotangent is zero (as under ``jax.lax.stop_gradient``).
- ``jax.vmap`` runs the callback once per batch element
  (``vmap_method="sequential"``): correct for any reduction, not fast.
"""
import jax
import jax.numpy as jnp
import numpy as np

import fastloss as _fl
from fastloss._base import Loss as _Loss

__all__ = [
    "from_loss",
    "cross_entropy",
    "softmax_focal_loss",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "huber_loss",
    "smooth_l1_loss",
    "mse_loss",
    "l1_loss",
    "pinball_loss",
    "ctc_loss",
    "triplet_margin_loss",
    "margin_ranking_loss",
    "contrastive_loss",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Losses of (input - target): d/d target = -d/d input.
_DIFFERENCE_LOSSES = (_fl.Huber, _fl.SmoothL1, _fl.MSE, _fl.L1, _fl.Pinball)
_VMAP = "sequential"


def _n_inputs(obj):
    """How many leading positional arguments fastloss differentiates."""
    if isinstance(obj, _fl.TripletMargin):
        return 3
    if isinstance(obj, (_fl.MarginRanking, _fl.Contrastive)):
        return 2
    return 1


def _input_names(obj):
    return getattr(obj, "_input_names", ()) or ("input",)


def _batch_shape(obj, x_shape):
    """Shape of the loss with ``reduction="none"``."""
    if isinstance(obj, (_fl.CrossEntropy, _fl.SoftmaxFocal)):
        return x_shape[:-1]
    if isinstance(obj, _fl.CTC):
        return (x_shape[0] if obj.batch_first else x_shape[1],) if len(x_shape) == 3 else ()
    if isinstance(obj, (_fl.TripletMargin, _fl.MarginRanking, _fl.Contrastive)):
        return x_shape[:1]
    return x_shape  # elementwise


def _expand_cotangent(obj, ct, grad_ndim):
    """The per-sample cotangent of ``reduction="none"``, broadcastable to a gradient."""
    if isinstance(obj, _fl.CTC) and not obj.batch_first:
        return ct.reshape((1, -1, 1))  # (N,) over (T, N, C)
    return ct.reshape(ct.shape + (1,) * (grad_ndim - ct.ndim))


def _sum_to_shape(g, shape, rows):
    """Reduce a gradient of the input's shape to a target's ``shape``.

    ``rows``: the target is one value per row (pinball's ``(N,)`` target of an
    ``(N, Q)`` input); otherwise it broadcast NumPy-style (right-aligned).
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    if rows:
        return g.reshape(shape + (-1,)).sum(axis=-1)
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _is_tracer(a):
    return isinstance(a, jax.core.Tracer)


def _check_input_dtypes(obj, inputs):
    for a, name in zip(inputs, _input_names(obj)):
        dt = np.dtype(a.dtype)
        if dt not in _FLOATS:
            raise TypeError(
                f"{name}: fastloss.jax takes float32 or float64 inputs, got {dt} "
                "(cast it with .astype(jnp.float32); float64 needs "
                "jax.config.update('jax_enable_x64', True))"
            )


def _fused(obj, n_args, has_sw, target_info):
    """The custom_vjp function of loss object ``obj`` over ``n_args`` positional arrays.

    ``target_info``: ``(shape, dtype)`` of a target that gets ``-`` the input's
    gradient (the regression losses), else None.
    """
    n_in = _n_inputs(obj)
    none = obj.reduction == "none"

    def split(args):
        arrays = args[:n_args]
        sw = args[n_args] if has_sw else None
        return arrays, sw

    def loss_struct(args):
        x = args[0]
        shape = _batch_shape(obj, x.shape) if none else ()
        return jax.ShapeDtypeStruct(shape, x.dtype)

    def primal(*args):
        struct = loss_struct(args)

        def cb(*np_args):
            arrays, sw = split(np_args)
            loss = obj.loss(*arrays, sample_weight=sw)
            return np.asarray(loss, dtype=struct.dtype)

        return jax.pure_callback(cb, struct, *args, vmap_method=_VMAP)

    f = jax.custom_vjp(primal)

    def fwd(*args):
        struct = loss_struct(args)
        grad_structs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args[:n_in])

        def cb(*np_args):
            arrays, sw = split(np_args)
            loss, grads = obj.loss_grad(*arrays, sample_weight=sw)
            if n_in == 1:
                grads = (grads,)
            grads = tuple(np.asarray(g, dtype=s.dtype) for g, s in zip(grads, grad_structs))
            return np.asarray(loss, dtype=struct.dtype), grads

        loss, grads = jax.pure_callback(cb, (struct, grad_structs), *args, vmap_method=_VMAP)
        return loss, grads

    def bwd(grads, ct):
        if none:
            cts = tuple(_expand_cotangent(obj, ct, g.ndim).astype(g.dtype) * g for g in grads)
        else:
            cts = tuple(ct.astype(g.dtype) * g for g in grads)
        rest = [None] * (n_args - n_in + has_sw)
        if target_info is not None:
            shape, dt = target_info
            rows = isinstance(obj, _fl.Pinball) and len(shape) == 1 and grads[0].ndim == 2
            rest[0] = (-_sum_to_shape(cts[0], shape, rows)).astype(dt)
        return cts + tuple(rest)

    f.defvjp(fwd, bwd)
    return f


def _call(obj, arrays, sample_weight):
    n_in = _n_inputs(obj)
    traced = any(_is_tracer(a) for a in arrays) or _is_tracer(sample_weight)
    arrays = [jnp.asarray(a) for a in arrays]
    _check_input_dtypes(obj, arrays[:n_in])
    if not traced:
        # Eager, nothing to differentiate: plain fastloss, its errors as they are.
        np_arrays = [np.asarray(a) for a in arrays]
        sw = None if sample_weight is None else np.asarray(sample_weight)
        loss = obj.loss(*np_arrays, sample_weight=sw)
        return jnp.asarray(np.asarray(loss, dtype=arrays[0].dtype))
    args = list(arrays)
    if sample_weight is not None:
        args.append(jnp.asarray(sample_weight))
    target_info = None
    if isinstance(obj, _DIFFERENCE_LOSSES) and np.dtype(arrays[1].dtype) in _FLOATS:
        target_info = (tuple(arrays[1].shape), np.dtype(arrays[1].dtype))
    return _fused(obj, len(arrays), sample_weight is not None, target_info)(*args)


def from_loss(loss):
    """A JAX-differentiable function ``f(input, *targets, sample_weight=None)`` of a
    fastloss loss object (``fastloss.CrossEntropy(label_smoothing=0.1)``, ...).

    ``f`` returns the loss only; ``jax.grad(f)`` uses the fused gradient.
    """
    if not isinstance(loss, _Loss):
        raise TypeError(f"from_loss: expected a fastloss loss object, got {type(loss).__name__}")

    def f(*arrays, sample_weight=None):
        return _call(loss, arrays, sample_weight)

    f.__name__ = type(loss).__name__
    f.__doc__ = f"JAX-differentiable {loss!r} (loss only; gradients via jax.grad)."
    return f


def _make(cls, name, params, n_arrays):
    """A function ``name(*arrays, **options, sample_weight=None, backend=None)``."""

    def f(*arrays, sample_weight=None, backend=None, **options):
        if len(arrays) != n_arrays:
            raise TypeError(f"{name}() takes {n_arrays} positional arrays ({params}), "
                            f"got {len(arrays)}")
        return _call(cls(**options, backend=backend), arrays, sample_weight)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (
        f"JAX-differentiable ``fastloss.{name}({params}, **options, sample_weight=None)``:\n"
        f"returns the loss only (``jax.grad`` gives the fused gradient). Options as\n"
        f"``fastloss.{cls.__name__}``: see its documentation."
    )
    return f


cross_entropy = _make(_fl.CrossEntropy, "cross_entropy", "input, target", 2)
softmax_focal_loss = _make(_fl.SoftmaxFocal, "softmax_focal_loss", "input, target", 2)
binary_cross_entropy_with_logits = _make(
    _fl.BCEWithLogits, "binary_cross_entropy_with_logits", "input, target", 2)
sigmoid_focal_loss = _make(_fl.SigmoidFocal, "sigmoid_focal_loss", "input, target", 2)
huber_loss = _make(_fl.Huber, "huber_loss", "input, target", 2)
smooth_l1_loss = _make(_fl.SmoothL1, "smooth_l1_loss", "input, target", 2)
mse_loss = _make(_fl.MSE, "mse_loss", "input, target", 2)
l1_loss = _make(_fl.L1, "l1_loss", "input, target", 2)
pinball_loss = _make(_fl.Pinball, "pinball_loss", "input, target", 2)
ctc_loss = _make(_fl.CTC, "ctc_loss", "input, targets, input_lengths, target_lengths", 4)
triplet_margin_loss = _make(_fl.TripletMargin, "triplet_margin_loss",
                            "anchor, positive, negative", 3)
margin_ranking_loss = _make(_fl.MarginRanking, "margin_ranking_loss", "x1, x2, target", 3)
contrastive_loss = _make(_fl.Contrastive, "contrastive_loss", "x1, x2, target", 3)

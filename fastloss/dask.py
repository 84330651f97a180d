"""Losses over Dask arrays chunked along the batch: ``fastloss.dask``.

``loss_grad(loss, input, target, **kwargs)`` evaluates a fastloss loss on a
``dask.array`` chunk by chunk and returns ``(loss, grad)``, both **lazy**:

- ``loss`` is a 0-d dask array for ``reduction="mean"``/``"sum"`` and a dask
  array of the batch shape, chunked like the batch, for ``"none"``;
- ``grad`` is a dask array with the input's shape, dtype and chunks (for the
  pairwise losses: a tuple of them, one per differentiable input).

Call ``dask.compute(loss, grad)`` (or ``da.store``) to get both in one pass
over the data; computing them one after the other runs the kernels twice.
``loss(...)`` gives the loss only, without any gradient buffer.

Exactness: every chunk runs the loss's own kernel with the *global* scale of
``"mean"`` (1 / the sum of the effective weights over the whole array), and
the per-chunk partial sums are kept in float64 and added with ``math.fsum``.
So the loss and the gradient are the numbers of one NumPy call on the whole
array, to float rounding: the summation order differs, nothing else.
The denominator of ``"mean"`` (sample weights, CE / softmax focal class
weights and ``ignore_index``, CTC's per-sequence weights) is computed by the
loss's own ``_prepare`` on each chunk's targets and weights, with a
zero-stride stand-in for the input, so these tasks never load the input and
the gradient tasks never wait while holding unscaled gradients.

Chunking: the batch axis (axis 0; CTC ``(T, N, C)``: axis 1) may be chunked
freely, unevenly too; every other axis is rechunked to a single chunk.
Per-sample arrays (targets, ``sample_weight``, CTC lengths, the other inputs
of a pairwise loss) may be NumPy or Dask arrays with ``N`` rows; they are
rechunked to the input's batch chunks.

This module uses the engine's private hooks (``Loss._prepare``, ``_kernel``,
``_reduce``, ``_grad_buffers``, ``_kernel_grads``, ``_work``, ``_family``;
``fastloss._backend.kernels``/``threads_for``; ``fastloss._base._absent``)
so that it runs exactly the kernels and formulas of ``Loss._run`` and
duplicates none of them; only the scale and the final reduction differ.
"""
import dataclasses
import math
import numbers

import dask
import dask.array as da
import numpy as np

from . import _backend
from ._base import Loss, _absent
from ._losses.ctc import CTC
from ._losses.pairwise import _Pairwise
from ._registry import REGISTRY

__all__ = ["loss", "loss_grad"]


# -- what the tasks run (module level: picklable for dask.distributed) ---------------
def _pack(loss, arrays):
    """The positional arrays ``(input, *target)`` as ``Loss._prepare`` takes them."""
    if isinstance(loss, _Pairwise):
        k = len(loss._input_names)
        return tuple(arrays[:k]), (arrays[k] if len(arrays) > k else None)
    if isinstance(loss, CTC):
        return arrays[0], tuple(arrays[1:])
    return arrays[0], arrays[1]


def _n_inputs(loss):
    return len(loss._input_names) if isinstance(loss, _Pairwise) else 1


def _chunk_denominator(loss, shape, dtype, *arrays_and_sw):
    """The chunk's share of ``"mean"``'s denominator, from targets and weights only."""
    *rest, sw = arrays_and_sw
    # Only the targets and weights decide it: every input is a zero-stride stand-in.
    stand_in = np.broadcast_to(np.zeros((), dtype=dtype), shape)
    k = _n_inputs(loss)
    first, second = _pack(loss, [stand_in] * k + list(rest[k - 1:]))
    return float(loss._prepare(first, second, sw).denominator)


def _denominator_total(parts):
    return math.fsum(parts)


def _chunk_run(loss, denominator, want_grad, n_threads, *arrays_and_sw):
    """``Loss._run`` on one chunk with the global scale; sums kept in float64.

    Returns ``(partial, grad)``: ``partial`` is a float64 partial sum (mean /
    sum) or the per-sample losses (none); ``grad`` None when not asked.
    """
    *arrays, sw = arrays_and_sw
    first, second = _pack(loss, arrays)

    def run():
        batch = loss._prepare(first, second, sw)
        x = batch.x
        g = loss._grad_buffers(None, batch) if want_grad else None
        scale = 1.0
        if loss.reduction == "mean":
            scale = 1.0 / denominator if denominator != 0 else 0.0
        rows = np.empty(batch.n_rows, dtype=np.float64)
        kernels = _backend.kernels(loss._family, loss.backend)
        loss._kernel(kernels, batch, scale, loss._kernel_grads(g, batch), _absent(x), rows,
                     _backend.threads_for(loss._work(batch)))
        if loss.reduction == "none":
            return loss._reduce(rows, batch, 1.0), g
        # The unscaled partial sum, in float64 (a float64 stand-in for x picks
        # _reduce's dtype; CTC's _reduce applies its per-sequence weights).
        f64 = dataclasses.replace(batch, x=np.empty(0, dtype=np.float64))
        return float(loss._reduce(rows, f64, 1.0)), g

    if n_threads is None:
        return run()
    with _backend.num_threads(n_threads):
        return run()


def _total(parts, denominator, reduction, dtype):
    total = math.fsum(parts)
    if reduction == "mean":
        total = total / denominator if denominator != 0 else 0.0
    return np.asarray(total, dtype=dtype)


# -- building the graph ----------------------------------------------------------------
def _as_loss(loss, options):
    """A ``Loss`` instance from an instance, a class, a function or a registry name."""
    if isinstance(loss, Loss):
        if options:
            raise TypeError(
                f"options {sorted(options)} go to the loss's constructor; pass a loss "
                "instance with them set, or a function / name with them as keywords"
            )
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss(**options)
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    spec = REGISTRY.get(name)
    if spec is None or (not isinstance(loss, str) and loss is not spec.func):
        raise TypeError(f"loss: expected a fastloss loss (instance, class, function or name), "
                        f"got {loss!r}")
    return spec.cls(**options)


def _batch_axis(loss, x):
    if isinstance(loss, CTC) and not loss.batch_first:
        if x.ndim != 3:
            raise ValueError(f"input: CTC needs a 3-D input (T, N, C), got shape {x.shape}")
        return 1
    if x.ndim == 0:
        raise ValueError("input: a 0-d input has no batch axis to chunk")
    return 0


def _batch_shape(loss, x_shape, axis):
    family = loss._family
    if family == "softmax":
        return x_shape[:-1]
    if family == "elementwise":
        return x_shape
    if family in ("pairwise", "ctc"):
        return (x_shape[axis],)
    raise TypeError(f"loss: unsupported loss family {family!r}")  # pragma: no cover


def _per_sample(a, name, n, batch_chunks):
    """``a`` as a dask array of ``n`` rows with the input's batch chunks."""
    if not isinstance(a, da.Array):
        a = np.asarray(a)
    if a.ndim == 0 or a.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (the input's batch axis), got shape {a.shape}")
    chunks = (batch_chunks,) + tuple((s,) for s in a.shape[1:])
    if isinstance(a, da.Array):
        return a.rechunk(chunks)
    return da.from_array(a, chunks=chunks)


def _graph(loss, input, target, sample_weight, options, want_grad, num_threads):
    loss = _as_loss(loss, options)
    if num_threads is not None:
        if not isinstance(num_threads, numbers.Integral) or num_threads < 1:
            raise ValueError(f"num_threads: must be a positive integer, got {num_threads!r}")
        num_threads = int(num_threads)
    x = input if isinstance(input, da.Array) else da.asarray(np.asarray(input))
    if x.dtype.kind not in "biuf":
        raise TypeError(f"input: {x.dtype} dtype is not supported, pass real numbers")
    dtype = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
    axis = _batch_axis(loss, x)
    x = x.rechunk({ax: (x.shape[ax],) for ax in range(x.ndim) if ax != axis})
    n, batch_chunks = x.shape[axis], x.chunks[axis]

    # The rest of (input, *target), registry style: a tuple target spreads.
    others = list(target) if isinstance(target, tuple) else [target]
    if isinstance(loss, CTC):
        if len(others) != 3:
            raise ValueError("target: CTC takes (targets, input_lengths, target_lengths)")
        if np.ndim(others[0]) != 2:
            raise ValueError("targets: fastloss.dask needs padded (N, S) CTC targets; "
                             "1-D concatenated targets cannot be split along the batch")
    names = (list(loss._input_names[1:]) + ["target"] if isinstance(loss, _Pairwise)
             else ["targets", "input_lengths", "target_lengths"] if isinstance(loss, CTC)
             else ["target"])
    others = [o if o is None else _per_sample(o, nm, n, batch_chunks)
              for o, nm in zip(others, names)] + [None] * (len(others) - len(names))
    sw = None if sample_weight is None else _per_sample(sample_weight, "sample_weight", n,
                                                        batch_chunks)

    def blocks(a):
        if a is None:
            return [None] * len(batch_chunks)
        b = a.to_delayed()
        return list(np.moveaxis(b, axis if a is x else 0, 0).reshape(len(batch_chunks), -1)[:, 0])

    xb, ob, sb = blocks(x), [blocks(o) for o in others], blocks(sw)
    block_shapes = [tuple(c if ax == axis else x.shape[ax] for ax in range(x.ndim))
                    for c in batch_chunks]

    denominator = 1.0
    if loss.reduction == "mean":
        parts = [dask.delayed(_chunk_denominator, pure=True)(
                    loss, shape, x.dtype,
                    # a pairwise loss's other inputs are stood in for: not loaded
                    *[None if j < _n_inputs(loss) - 1 else o[i] for j, o in enumerate(ob)],
                    sb[i])
                 for i, shape in enumerate(block_shapes)]
        denominator = dask.delayed(_denominator_total, pure=True)(parts)

    runs = [dask.delayed(_chunk_run, pure=True, nout=2)(
                loss, denominator, want_grad, num_threads, xb[i], *[o[i] for o in ob], sb[i])
            for i in range(len(batch_chunks))]

    if loss.reduction == "none":
        bshape = _batch_shape(loss, x.shape, axis)
        pieces = [da.from_delayed(r[0], shape=(c,) + tuple(bshape[1:]), dtype=dtype)
                  for r, c in zip(runs, batch_chunks)]
        value = da.concatenate(pieces, axis=0)
    else:
        total = dask.delayed(_total, pure=True)([r[0] for r in runs], denominator,
                                                loss.reduction, dtype)
        value = da.from_delayed(total, shape=(), dtype=dtype)
    if not want_grad:
        return value, None

    def gather(pick):
        pieces = [da.from_delayed(pick(r[1]), shape=s, dtype=dtype)
                  for r, s in zip(runs, block_shapes)]
        return da.concatenate(pieces, axis=axis)

    if isinstance(loss, _Pairwise):
        grad = tuple(gather(lambda g, j=j: g[j]) for j in range(len(loss._input_names)))
    else:
        grad = gather(lambda g: g)
    return value, grad


# -- the public functions ----------------------------------------------------------------
def loss_grad(loss, input, target, *, sample_weight=None, num_threads=None, **options):
    """``(loss, grad)`` of a fastloss loss over a dask array chunked along the batch.

    Parameters
    ----------
    loss : Loss instance, Loss class, fastloss function or registry name
        e.g. ``fastloss.CrossEntropy(weight=w)``, or ``fastloss.cross_entropy`` /
        ``"cross_entropy"`` with the options as keywords (``reduction=...``).
    input : dask array (or array-like)
        Chunked along the batch axis (axis 0; CTC ``(T, N, C)``: axis 1).
    target : array or tuple of arrays
        As the registry passes it: CE/elementwise a target array; CTC
        ``(targets (N, S) padded, input_lengths, target_lengths)``; triplet
        ``(positive, negative)``; margin ranking / contrastive ``(x2, target)``.
    sample_weight : optional, NumPy or dask, ``N`` rows.
    num_threads : optional, fastloss threads per chunk task (default: the
        worker's ``fastloss.get_num_threads()``).

    Returns
    -------
    (loss, grad), both lazy: ``loss`` a 0-d dask array (``"none"``: a dask
    array of the batch shape); ``grad`` a dask array with the input's chunks
    (pairwise: a tuple). Evaluate them together with ``dask.compute(loss, grad)``.
    """
    return _graph(loss, input, target, sample_weight, options, True, num_threads)


def loss(loss, input, target, *, sample_weight=None, num_threads=None, **options):
    """The loss only (no gradient is computed or stored), lazy; see :func:`loss_grad`."""
    return _graph(loss, input, target, sample_weight, options, False, num_threads)[0]

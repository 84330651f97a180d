"""``python -m fastloss bench``: fastloss against its peers, forward + backward.

How it measures
---------------
* Every case (a loss at one size and dtype) builds its data once, then a list
  of *contenders*: fastloss with each backend, fastloss writing into a
  preallocated ``out=`` buffer, and every installed peer (PyTorch CPU
  autograd, JAX/optax ``jit(value_and_grad)``, scikit-learn's ``_loss``).
  Each contender is called once untimed (warm-up: Numba loads or compiles its
  kernels, JAX traces and compiles, caches fill), then the timed rounds are
  *interleaved*: every round calls every contender once, in an order
  shuffled anew each round (seeded), so drift of a shared, noisy machine hits
  all of them alike and no contender always follows the same one: a
  library's worker threads may still spin when its call returns (on a
  2-core machine, the call right after JAX's ran up to 2.5x slower; a fixed
  rotation put fastloss's first variant there in every round). The table
  reports medians (and minima) in milliseconds.
* Thread counts are fair for everyone: each thread count runs in its own
  worker process (``python -m fastloss bench --_worker ...``, JSON on
  stdout) which pins itself to ``n`` cores with ``os.sched_setaffinity``
  *before* importing any peer, exports ``OMP_NUM_THREADS`` & co., sets
  ``torch.set_num_threads(n)``, ``fastloss.set_num_threads(n)``, passes
  ``n_threads=n`` to scikit-learn and restricts XLA with ``XLA_FLAGS`` at
  one thread.
* ratio = peer median / fastloss median; > 1 means fastloss is faster.

Adding a loss
-------------
One entry in :data:`BENCHES`: the loss name -> a list of :class:`Case`, each
with a ``build(size, dtype, threads)`` that returns a :class:`Built` holding
the data, a factory of fastloss callables and a factory per peer. Each
family shares one helper: :func:`softmax_case`, :func:`elementwise_case`,
:func:`ctc_case` (``size = (T, N, C, S)``, see ``Case.dims``),
:func:`pairwise_case` (``(N, D)``; ``out=`` a tuple of buffers).
"""
import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import numpy as np

RATIO_NOTE = "ratio = peer median / fastloss median; > 1 means fastloss is faster"

PEERS = ("torch", "jax", "sklearn")
PEER_TITLES = {"torch": "PyTorch CPU (autograd)", "jax": "JAX/optax jit(value_and_grad)",
               "sklearn": "scikit-learn _loss"}
# What a peer needs importable, and the distribution names whose versions are shown.
PEER_MODULES = {"torch": ("torch",), "jax": ("jax", "optax"), "sklearn": ("sklearn",)}
PEER_DISTS = {"torch": ("torch",), "jax": ("jax", "jaxlib", "optax"), "sklearn": ("scikit-learn",)}

DEFAULT_REPEAT, QUICK_REPEAT = 20, 5
DEFAULT_MAX_TIME, QUICK_MAX_TIME = 60.0, 6.0   # seconds of timed rounds per case
MIN_ROUNDS = 3


class Skip(Exception):
    """A peer cannot run this case (not installed, unsupported option...)."""


# --------------------------------------------------------------------------
# The table of benchmarks
# --------------------------------------------------------------------------
@dataclass
class Built:
    """What a case builds inside the worker.

    ``fastloss(backend, out)`` returns a zero-argument callable running one
    forward + backward with that backend, into a preallocated buffer when
    ``out`` is true; ``peers[name](threads)`` returns the peer's callable or
    raises :class:`Skip` / ``ImportError``. Every callable returns the loss
    (any scalar-like) so the values can be cross-checked after warm-up.
    """
    data: dict
    fastloss: Callable[[str, bool], Callable]
    peers: Dict[str, Callable[[int], Callable]]


@dataclass(frozen=True)
class Case:
    size: Tuple[int, ...]            # full run
    quick: Tuple[int, ...]           # --quick
    build: Callable                  # build(size, dtype) -> Built
    dtype: str = "float32"
    note: str = ""
    dims: str = ""                   # e.g. "TxNxCxS": --size must then give exactly these


def _fastloss_factory(func_name, options, data, make_out):
    def factory(backend, out):
        import fastloss
        func = getattr(fastloss, func_name)
        args = data["args"]
        if out:
            buf = make_out()

            def call():
                return func(*args, **options, out=buf, backend=backend)[0]
        else:
            def call():
                return func(*args, **options, backend=backend)[0]
        return call
    return factory


def _softmax_data(size, dtype, seed=0):
    n, c = size
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c), dtype=np.dtype(dtype)) if np.dtype(dtype) in (
        np.dtype("float32"), np.dtype("float64")) else rng.standard_normal((n, c)).astype(dtype)
    x *= 2
    y = rng.integers(0, c, n, dtype=np.int64)
    return x, y


# ---- peers of the softmax family -----------------------------------------
def _torch(threads):
    import torch
    torch.set_num_threads(threads)
    return torch


def _torch_leaf(torch, x):
    t = torch.from_numpy(x)          # shares memory; autograd never writes to it
    t.requires_grad_(True)
    return t


def _torch_cross_entropy(data, options):
    def factory(threads):
        torch = _torch(threads)
        import torch.nn.functional as F
        x = _torch_leaf(torch, data["x"])
        y = torch.from_numpy(data["y"])

        def call():
            x.grad = None            # what optimizer.zero_grad() does
            loss = F.cross_entropy(x, y, **options)
            loss.backward()
            return loss.detach()
        return call
    return factory


def _torch_softmax_focal(data, options):
    gamma = options.get("gamma", 2.0)

    def factory(threads):
        torch = _torch(threads)
        x = _torch_leaf(torch, data["x"])
        y = torch.from_numpy(data["y"])

        def call():
            x.grad = None
            logp = torch.log_softmax(x, dim=-1)
            logp_y = logp.gather(-1, y[:, None])[:, 0]
            loss = -((1 - logp_y.exp()) ** gamma * logp_y).mean()
            loss.backward()
            return loss.detach()
        return call
    return factory


def _jax_value_and_grad(fn, data):
    import jax
    import jax.numpy as jnp
    if data["x"].dtype == np.float64:
        jax.config.update("jax_enable_x64", True)   # JAX computes in float32 otherwise
    x = jnp.asarray(data["x"])
    if x.dtype != data["x"].dtype:
        raise Skip(f"JAX turned {data['x'].dtype} into {x.dtype}")
    y = data["y"]
    y = jnp.asarray(y.astype(np.int32) if y.dtype.kind in "iu" else y)
    f = jax.jit(jax.value_and_grad(fn))

    def call():
        value, grad = f(x, y)
        grad.block_until_ready()
        return value
    return call


def _jax_cross_entropy(data, options):
    if options:
        raise Skip(f"options {options} not benchmarked for optax")

    def factory(threads):
        import optax
        losses = getattr(optax, "losses", optax)
        ce = losses.softmax_cross_entropy_with_integer_labels
        return _jax_value_and_grad(lambda x, y: ce(x, y).mean(), data)
    return factory


def _jax_softmax_focal(data, options):
    gamma = options.get("gamma", 2.0)

    def factory(threads):
        import jax
        import jax.numpy as jnp

        def focal(x, y):
            logp = jax.nn.log_softmax(x, axis=-1)
            logp_y = jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
            return -((1 - jnp.exp(logp_y)) ** gamma * logp_y).mean()
        return _jax_value_and_grad(focal, data)
    return factory


def _sklearn_cross_entropy(data, options):
    if options:
        raise Skip(f"options {options} not supported by HalfMultinomialLoss")

    def factory(threads):
        from sklearn._loss.loss import HalfMultinomialLoss
        x = data["x"]
        loss = HalfMultinomialLoss(n_classes=x.shape[-1])
        y_true = data["y"].astype(x.dtype)   # scikit-learn's y_true is float
        # Per-sample losses and the gradient of their sum, allocated per call
        # like every other contender's gradient; the mean over N rows is cheap.

        def call():
            loss_out, _ = loss.loss_gradient(y_true, x, n_threads=threads)
            return loss_out.mean()
        return call
    return factory


def softmax_case(func_name, options=None, **peers):
    """A ``build(size, dtype)`` for a loss over logits (N, C) and int labels (N,)."""
    options = dict(options or {})

    def build(size, dtype):
        x, y = _softmax_data(size, dtype)
        data = {"x": x, "y": y, "args": (x, y)}
        made = _make_peers(peers, data, options)
        return Built(data, _fastloss_factory(func_name, options, data, lambda: np.empty_like(x)), made)
    build.func_name = func_name
    return build


def _skipped(reason):
    def factory(threads):
        raise Skip(reason)
    return factory


def _make_peers(peers, data, options):
    """name -> factory for every peer; one that cannot run this case skips with its reason."""
    made = {}
    for name, make in peers.items():
        try:
            made[name] = make(data, options)
        except Skip as exc:
            made[name] = _skipped(str(exc))
    return made


_CE = softmax_case("cross_entropy", torch=_torch_cross_entropy, jax=_jax_cross_entropy,
                   sklearn=_sklearn_cross_entropy)
_FOCAL = softmax_case("softmax_focal_loss", {"gamma": 2.0}, torch=_torch_softmax_focal,
                      jax=_jax_softmax_focal)

# ---- the elementwise family: one formula per peer ---------------------------
def _elementwise_data(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (2 * rng.standard_normal(size)).astype(dtype)
    t = rng.random(size).astype(dtype)
    return x, t


def elementwise_case(func_name, options=None, torch=None, jax=None, sklearn=None):
    """A ``build(size, dtype)`` for a loss over (input, target) of the same shape.

    ``torch(F, x, t)`` and ``jax(jnp, optax, x, t)`` return the mean loss;
    ``sklearn()`` returns a ``sklearn._loss`` object (y_true, raw_prediction).
    """
    options = dict(options or {})

    def build(size, dtype):
        x, t = _elementwise_data(size, dtype)
        data = {"x": x, "y": t, "args": (x, t)}
        made = {}
        if torch is not None:
            def torch_factory(threads, data=data):
                tch = _torch(threads)
                import torch.nn.functional as F
                xt = _torch_leaf(tch, data["x"])
                tt = tch.from_numpy(data["y"])

                def call():
                    xt.grad = None
                    loss = torch(F, xt, tt)
                    loss.backward()
                    return loss.detach()
                return call
            made["torch"] = torch_factory
        if jax is not None:
            def jax_factory(threads, data=data):
                import jax.numpy as jnp
                import optax
                return _jax_value_and_grad(lambda a, b: jax(jnp, optax, a, b), data)
            made["jax"] = jax_factory
        if sklearn is not None:
            def sklearn_factory(threads, data=data):
                loss = sklearn()

                def call():
                    out, _ = loss.loss_gradient(data["y"], data["x"], n_threads=threads)
                    return out.mean()
                return call
            made["sklearn"] = sklearn_factory
        return Built(data, _fastloss_factory(func_name, options, data,
                                             lambda: np.empty_like(x)), made)
    build.func_name = func_name
    return build


def _torch_focal(F, x, t, alpha=0.25, gamma=2.0):
    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    return ((alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _pinball(lib, x, t, q=0.9):
    d = t - x
    return lib.maximum(q * d, (q - 1) * d).mean()


def _sk(name, **kwargs):
    def make():
        from sklearn._loss import loss
        return getattr(loss, name)(**kwargs)
    return make


_BCE = elementwise_case(
    "binary_cross_entropy_with_logits",
    torch=lambda F, x, t: F.binary_cross_entropy_with_logits(x, t),
    jax=lambda jnp, optax, x, t: optax.sigmoid_binary_cross_entropy(x, t).mean(),
    sklearn=_sk("HalfBinomialLoss"))
_SIGMOID_FOCAL = elementwise_case(
    "sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}, torch=_torch_focal,
    jax=lambda jnp, optax, x, t: optax.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0).mean())
_HUBER = elementwise_case(
    "huber_loss", torch=lambda F, x, t: F.huber_loss(x, t),
    jax=lambda jnp, optax, x, t: optax.huber_loss(x, t, delta=1.0).mean())
_MSE = elementwise_case(
    "mse_loss", torch=lambda F, x, t: F.mse_loss(x, t),
    jax=lambda jnp, optax, x, t: ((x - t) ** 2).mean())
_L1 = elementwise_case(
    "l1_loss", torch=lambda F, x, t: F.l1_loss(x, t),
    jax=lambda jnp, optax, x, t: jnp.abs(x - t).mean())
_PINBALL = elementwise_case(
    "pinball_loss", {"quantile": 0.9}, torch=lambda F, x, t: _pinball(F.torch, x, t),
    jax=lambda jnp, optax, x, t: _pinball(jnp, x, t),
    sklearn=_sk("PinballLoss", quantile=0.9))

# ---- the CTC family: logits (T, N, C), padded targets (N, S), lengths -------
def _ctc_data(size, dtype, seed=0):
    """Logits ``(T, N, C)`` (standard normal), targets ``(N, S)`` with labels in
    ``[1, C)`` (blank 0; every entry is a valid label, those past the target
    length are padding), input lengths all ``T``, target lengths uniform in
    ``[S // 2, S]``."""
    t, n, c, s = size
    if c < 2 or s < 1:
        raise ValueError(f"ctc_loss: size TxNxCxS needs C >= 2 and S >= 1, got {size}")
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) in (np.dtype("float32"), np.dtype("float64")):
        x = rng.standard_normal((t, n, c), dtype=np.dtype(dtype))   # the asv suite's data
    else:
        x = rng.standard_normal((t, n, c)).astype(dtype)
    targets = rng.integers(1, c, (n, s), dtype=np.int64)
    input_lengths = np.full(n, t, dtype=np.int64)
    target_lengths = rng.integers(s // 2, s + 1, n, dtype=np.int64)
    return x, targets, input_lengths, target_lengths


def _fastloss_ctc_factory(data, options):
    def factory(backend, out):
        import fastloss
        ctc = fastloss.CTC(**options, backend=backend)
        args = data["args"]
        if out:
            x = data["x"]     # out= has the compute dtype: float32 stays, the rest is float64
            buf = np.empty(x.shape, np.float32 if x.dtype == np.float32 else np.float64)

            def call():
                return ctc.loss_grad(*args, out=buf)[0]
        else:
            def call():
                return ctc.loss_grad(*args)[0]
        return call
    return factory


def _only_mean(options, peer):
    """The CTC peers are benchmarked with PyTorch's "mean" and no other option."""
    if options.get("reduction", "mean") != "mean" or set(options) - {"reduction"}:
        raise Skip(f"options {options} not benchmarked for {peer}")


def _torch_ctc(data, options):
    _only_mean(options, "torch")

    def factory(threads):
        torch = _torch(threads)
        import torch.nn.functional as F
        x = _torch_leaf(torch, data["x"])            # raw logits (T, N, C)
        targets = torch.from_numpy(data["targets"])
        input_lengths = torch.from_numpy(data["input_lengths"])
        target_lengths = torch.from_numpy(data["target_lengths"])

        def call():
            x.grad = None
            loss = F.ctc_loss(F.log_softmax(x, -1), targets, input_lengths, target_lengths,
                              blank=0, reduction="mean")
            loss.backward()                          # through log_softmax to the logits
            return loss.detach()
        return call
    return factory


def _jax_ctc(data, options):
    _only_mean(options, "optax")

    def factory(threads):
        import jax
        import jax.numpy as jnp
        import optax
        x = data["x"]
        if x.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        t, n, _ = x.shape
        s = data["targets"].shape[1]
        # optax is batch-first: it gets its own layout, transposed once here, untimed
        xb = jnp.asarray(np.ascontiguousarray(x.transpose(1, 0, 2)))
        if xb.dtype != x.dtype:
            raise Skip(f"JAX turned {x.dtype} into {xb.dtype}")
        logit_pad = jnp.asarray((np.arange(t)[None, :] >= data["input_lengths"][:, None]).astype(x.dtype))
        labels = jnp.asarray(data["targets"].astype(np.int32))
        label_pad = jnp.asarray((np.arange(s)[None, :] >= data["target_lengths"][:, None]).astype(x.dtype))
        lengths = jnp.asarray(np.maximum(data["target_lengths"], 1).astype(x.dtype))

        def loss(logits):
            # optax applies log_softmax itself; torch's "mean": per-sequence loss / target length, averaged
            per_seq = optax.ctc_loss(logits, logit_pad, labels, label_pad, blank_id=0)
            return (per_seq / lengths).mean()
        f = jax.jit(jax.value_and_grad(loss))

        def call():
            value, grad = f(xb)
            grad.block_until_ready()
            return value
        return call
    return factory


def ctc_case(func_name="ctc_loss", options=None, **peers):
    """A ``build(size, dtype)`` for CTC: ``size = (T, N, C, S)``; fastloss runs
    ``CTC(**options, backend=b).loss_grad(logits, targets, input_lengths,
    target_lengths[, out=g])``, raw logits with the log-softmax fused."""
    options = {"reduction": "mean", **(options or {})}

    def build(size, dtype):
        x, targets, input_lengths, target_lengths = _ctc_data(size, dtype)
        data = {"x": x, "targets": targets, "input_lengths": input_lengths,
                "target_lengths": target_lengths, "args": (x, targets, input_lengths, target_lengths)}
        made = _make_peers(peers, data, options)
        return Built(data, _fastloss_ctc_factory(data, options), made)
    build.func_name = func_name
    return build


_CTC = ctc_case(torch=_torch_ctc, jax=_jax_ctc)

# ---- the pairwise family: several inputs, a tuple of gradients -----------------
def _pairwise_data(func_name, size, dtype, seed=0):
    """The positional arguments of a pairwise loss and how many get a gradient:
    (N, D) embeddings (an anchor, a positive and a negative near it: about half of
    the triplets have an active hinge) or, for margin ranking, (N,) scores; targets
    in {0, 1} (contrastive) or {-1, 1} (margin ranking)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if func_name == "margin_ranking_loss":
        (n,) = size
        x1 = rng.standard_normal(n).astype(dt)
        x2 = rng.standard_normal(n).astype(dt)
        return (x1, x2, np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dt)), 2
    a = rng.standard_normal(size).astype(dt)
    p = (a + rng.standard_normal(size)).astype(dt)
    if func_name == "triplet_margin_loss":
        return (a, p, (a + rng.standard_normal(size)).astype(dt)), 3
    return (a, p, (rng.random(size[0]) < 0.5).astype(dt)), 2


def _torch_pairwise(data, options):
    name, margin = data["func_name"], options.get("margin")

    def loss_of(F, *xs):
        if name == "triplet_margin_loss":
            return F.triplet_margin_loss(*xs, **options)
        if name == "margin_ranking_loss":
            return F.margin_ranking_loss(*xs, **options)
        x1, x2, y = xs           # contrastive: torch has none; written with torch ops
        d = (x1 - x2).norm(dim=-1)
        m = 1.0 if margin is None else margin
        return (0.5 * y * d * d + 0.5 * (1 - y) * (m - d).clamp_min(0) ** 2).mean()

    def factory(threads):
        torch = _torch(threads)
        import torch.nn.functional as F
        args, k = data["args"], data["n_grads"]
        leaves = [_torch_leaf(torch, x) for x in args[:k]]
        rest = [torch.from_numpy(x) for x in args[k:]]

        def call():
            for t in leaves:
                t.grad = None    # what optimizer.zero_grad() does
            loss = loss_of(F, *leaves, *rest)
            loss.backward()
            return loss.detach()
        return call
    return factory


def _jax_pairwise(data, options):
    name, margin = data["func_name"], options.get("margin")
    if options.get("swap") or options.get("p", 2.0) != 2.0:
        raise Skip(f"options {options} not benchmarked for optax")

    def factory(threads):
        import jax
        import jax.numpy as jnp
        import optax
        args, k = data["args"], data["n_grads"]
        if args[0].dtype == np.float64:
            jax.config.update("jax_enable_x64", True)   # JAX computes in float32 otherwise
        xs = [jnp.asarray(x) for x in args]
        if xs[0].dtype != args[0].dtype:
            raise Skip(f"JAX turned {args[0].dtype} into {xs[0].dtype}")

        def loss_of(*v):
            if name == "triplet_margin_loss":
                losses = getattr(optax, "losses", optax)
                return losses.triplet_margin_loss(*v, margin=1.0 if margin is None else margin).mean()
            x1, x2, y = v
            if name == "margin_ranking_loss":
                return jnp.maximum(0.0, -y * (x1 - x2) + (margin or 0.0)).mean()
            d = jnp.sqrt(jnp.sum((x1 - x2) ** 2, axis=-1))
            m = 1.0 if margin is None else margin
            return (0.5 * y * d * d + 0.5 * (1 - y) * jnp.maximum(m - d, 0.0) ** 2).mean()

        f = jax.jit(jax.value_and_grad(loss_of, argnums=tuple(range(k))))

        def call():
            value, grads = f(*xs)
            for g in grads:
                g.block_until_ready()
            return value
        return call
    return factory


def pairwise_case(func_name, options=None, **peers):
    """A ``build(size, dtype)`` for a pairwise loss: ``size`` is (N, D), or (N,) for
    margin ranking; fastloss's ``out=`` is a tuple of gradient buffers."""
    options = dict(options or {})

    def build(size, dtype):
        args, k = _pairwise_data(func_name, size, dtype)
        data = {"func_name": func_name, "args": args, "n_grads": k}
        made = _make_peers(peers, data, options)
        return Built(data, _fastloss_factory(func_name, options, data,
                                             lambda: tuple(np.empty_like(x) for x in args[:k])),
                     made)
    build.func_name = func_name
    return build


_TRIPLET = pairwise_case("triplet_margin_loss", torch=_torch_pairwise, jax=_jax_pairwise)
_CONTRASTIVE = pairwise_case("contrastive_loss", torch=_torch_pairwise, jax=_jax_pairwise)
_RANKING = pairwise_case("margin_ranking_loss", {"margin": 0.1}, torch=_torch_pairwise,
                         jax=_jax_pairwise)

#: loss name -> cases. Later losses add one entry each.
BENCHES = {
    "cross_entropy": [
        Case((8192, 1000), (8192, 1000), _CE),
        Case((2048, 32000), (512, 32000), _CE, note="LLM-sized vocabulary"),
    ],
    "softmax_focal_loss": [
        Case((8192, 1000), (8192, 1000), _FOCAL),
    ],
    "binary_cross_entropy_with_logits": [Case((1 << 22,), (1 << 20,), _BCE, note="4M")],
    "sigmoid_focal_loss": [Case((1 << 22,), (1 << 20,), _SIGMOID_FOCAL, note="4M")],
    "huber_loss": [Case((1 << 23,), (1 << 21,), _HUBER, note="8M")],
    "mse_loss": [Case((1 << 23,), (1 << 21,), _MSE, note="8M")],
    "l1_loss": [Case((1 << 23,), (1 << 21,), _L1, note="8M")],
    "pinball_loss": [Case((1 << 23,), (1 << 21,), _PINBALL, note="8M")],
    "ctc_loss": [
        Case((200, 32, 40, 50), (100, 8, 20, 20), _CTC, dims="TxNxCxS",
             note="T x N x C x S, log-softmax fused"),
        Case((1000, 8, 60, 200), (250, 4, 30, 50), _CTC, dims="TxNxCxS",
             note="T x N x C x S, log-softmax fused"),
    ],
    "triplet_margin_loss": [Case((65536, 128), (65536, 128), _TRIPLET, dims="NxD",
                                 note="N x D embeddings")],
    "contrastive_loss": [Case((65536, 128), (16384, 128), _CONTRASTIVE, dims="NxD",
                              note="N x D embeddings")],
    "margin_ranking_loss": [Case((1 << 22,), (1 << 20,), _RANKING, note="4M")],
}


# --------------------------------------------------------------------------
# Worker: one thread count, one process
# --------------------------------------------------------------------------
def _pin(cpus):
    """Restrict this process to ``cpus`` before any peer creates a thread pool."""
    n = len(cpus)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            # XLA's own pool follows the affinity mask; this also keeps Eigen single-threaded
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
        return True
    return False


def _scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


def _selected_cases(args):
    """[(loss, size, dtype, case)] chosen by --loss / --size / --dtype / --quick."""
    names = args.loss.split(",") if args.loss else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"fastloss bench: --loss: unknown loss {unknown}; choose from {sorted(BENCHES)}")
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.size.split(",")] if args.size else None
    except ValueError:
        raise SystemExit(f"fastloss bench: --size: expected sizes like 8192x1000[,2048x32000], got {args.size!r}")
    dtypes = args.dtype.split(",") if args.dtype else None
    out = []
    for name in names:
        cases = BENCHES[name]
        if sizes:
            dims = cases[0].dims
            bad = [s for s in sizes if dims and len(s) != len(dims.split("x"))]
            if bad:
                raise SystemExit(f"fastloss bench: --size: {name} takes sizes {dims}, e.g. "
                                 f"{'x'.join(map(str, cases[0].size))}; got {'x'.join(map(str, bad[0]))}")
            cases = [Case(s, s, cases[0].build, cases[0].dtype, dims=dims) for s in sizes]
        for case in cases:
            for dtype in dtypes or [case.dtype]:
                out.append((name, case.quick if args.quick else case.size, dtype, case))
    return out


def _case_label(loss, size, dtype):
    return f"{loss} {'x'.join(map(str, size))} {dtype}"


def worker(args):
    cpus = [int(c) for c in args._cpus.split(",")] if args._cpus else None
    threads = int(args.threads)
    pinned = _pin(cpus) if cpus else False
    real_stdout, sys.stdout = sys.stdout, sys.stderr   # stray prints must not corrupt the JSON
    import fastloss
    fastloss.set_num_threads(threads)
    backends = args.backend.split(",") if args.backend else list(fastloss.BACKENDS)
    peers = [] if args.peers == "none" else (args.peers.split(",") if args.peers else list(PEERS))
    repeat = args.repeat or (QUICK_REPEAT if args.quick else DEFAULT_REPEAT)
    max_time = args.max_time or (QUICK_MAX_TIME if args.quick else DEFAULT_MAX_TIME)
    result = {"threads": threads, "cpus": cpus, "pinned": pinned, "cases": [], "versions": {}}

    for loss, size, dtype, case in _selected_cases(args):
        label = _case_label(loss, size, dtype)
        rec = {"loss": loss, "size": list(size), "dtype": dtype, "label": label, "times": {},
               "warmup": {}, "values": {}, "kind": {}, "skipped": {}, "errors": {}}
        result["cases"].append(rec)
        if not hasattr(fastloss, case.build.func_name):
            rec["errors"]["fastloss"] = f"fastloss.{case.build.func_name} does not exist"
            continue
        t0 = time.perf_counter()
        built = case.build(size, dtype)
        rec["setup_s"] = time.perf_counter() - t0

        contenders = []
        for backend in backends:
            for out in (False, True):
                name = f"fastloss {backend}" + (" out=" if out else "")
                contenders.append((name, "fastloss", lambda b=backend, o=out: built.fastloss(b, o)))
        for peer in peers:
            if peer in built.peers:
                contenders.append((peer, "peer", lambda p=peer: built.peers[p](threads)))

        ready = []
        rec["order"] = [name for name, _, _ in contenders]
        for name, kind, make in contenders:
            try:
                fn = make()
                t = time.perf_counter()
                value = fn()                       # warm-up: compile, trace, fill caches
                rec["warmup"][name] = time.perf_counter() - t
                rec["values"][name] = _scalar(value)
            except (ImportError, Skip) as exc:
                if kind == "fastloss":
                    rec["errors"][name] = f"{type(exc).__name__}: {exc}"
                else:
                    rec["skipped"][name] = f"{type(exc).__name__}: {exc}"
                continue
            except Exception as exc:  # noqa: BLE001 - reported, never hidden
                key = "errors" if kind == "fastloss" else "skipped"
                rec[key][name] = f"failed: {type(exc).__name__}: {exc}"
                continue
            rec["kind"][name] = kind
            rec["times"][name] = []
            ready.append((name, fn))

        gc.collect()
        gc.disable()
        shuffle = np.random.default_rng(0)
        start = time.perf_counter()
        try:
            for r in range(repeat):
                for i in shuffle.permutation(len(ready)):
                    name, fn = ready[i]
                    t = time.perf_counter()
                    fn()
                    rec["times"][name].append(time.perf_counter() - t)
                if r + 1 >= MIN_ROUNDS and time.perf_counter() - start > max_time:
                    break
        finally:
            gc.enable()
        rec["rounds"] = len(rec["times"][ready[0][0]]) if ready else 0
        print(f"  [threads={threads}] {label}: {rec['rounds']} rounds of {len(ready)} contenders "
              f"in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        del built, ready, contenders
        gc.collect()

    for peer in peers:
        for mod in PEER_MODULES[peer]:
            if mod in sys.modules:
                result["versions"][mod] = getattr(sys.modules[mod], "__version__", "?")
    result["versions"]["fastloss"] = fastloss.__version__
    sys.stdout = real_stdout
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------
# Parent: one worker per thread count, then the tables
# --------------------------------------------------------------------------
def _available_cpus():
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _dist_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _peer_notes(peers):
    """(installed peers, one-line notes for those that are not)."""
    ok, notes = [], []
    hints = {"torch": 'pip install "torch==2.13.0"', "jax": "pip install jax optax",
             "sklearn": "pip install scikit-learn"}
    for peer in peers:
        missing = [m for m in PEER_MODULES[peer] if importlib.util.find_spec(m) is None]
        if missing:
            notes.append(f"note: {PEER_TITLES[peer]} skipped: {', '.join(missing)} not installed "
                         f"({hints[peer]})")
        else:
            ok.append(peer)
    return ok, notes


def _forward_args(args):
    out = []
    for opt in ("loss", "size", "backend", "repeat", "dtype", "max_time"):
        value = getattr(args, opt)
        if value:
            out += ["--" + opt.replace("_", "-"), str(value)]
    if args.quick:
        out.append("--quick")
    return out


def _run_worker(n, cpus, args, peers):
    cmd = [sys.executable, "-m", "fastloss", "bench", "--_worker", "--threads", str(n),
           "--_cpus", ",".join(map(str, cpus)), "--peers", ",".join(peers) or "none"] + _forward_args(args)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(n)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for {n} thread(s) failed with exit code {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"benchmark worker for {n} thread(s) printed no result")
    return json.loads(lines[-1])


def _fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _fmt_ratio(r):
    return f"{r:.2f}" if r < 100 else f"{r:.0f}"


def _table(rows, header, right=()):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _report(results, file=sys.stdout):
    """Print the medians and the ratios per thread count; returns problems found."""
    problems, notes = [], []

    def p(*a):
        print(*a, file=file)

    for res in results:
        n = res["threads"]
        p()
        p(f"== {n} thread{'s' if n > 1 else ''}" + ("" if res.get("pinned") else " (not pinned)") + " ==")
        rows = []
        for rec in res["cases"]:
            first = True
            for name in rec.get("order", []) + [k for k in rec["errors"] if k not in rec.get("order", [])]:
                label = rec["label"] if first else ""
                if name in rec["times"]:
                    ts = rec["times"][name]
                    rows.append([label, name, _fmt_ms(statistics.median(ts)), _fmt_ms(min(ts)),
                                 f"{rec['warmup'][name]:.3f}"])
                elif name in rec["errors"]:
                    rows.append([label, name, "ERROR", "", ""])
                    problems.append(f"{rec['label']}, {n} thread(s): {name}: {rec['errors'][name]}")
                else:
                    continue
                first = False
            for name, why in rec["skipped"].items():
                if "not installed" not in why and "No module named" not in why:
                    notes.append(f"note: {rec['label']}: {name} skipped: {why}")
        p(_table(rows, ["case", "contender", "median ms", "min ms", "warm-up s"], right=(2, 3, 4)))

        ratio_rows, fl_names = [], []
        for rec in res["cases"]:
            for name, kind in rec["kind"].items():
                if kind == "fastloss" and name not in fl_names:
                    fl_names.append(name)
        for rec in res["cases"]:
            med = {k: statistics.median(v) for k, v in rec["times"].items()}
            first = True
            for peer, kind in rec["kind"].items():
                if kind != "peer":
                    continue
                row = [rec["label"] if first else "", peer]
                for fl in fl_names:
                    row.append(_fmt_ratio(med[peer] / med[fl]) if fl in med and med[fl] > 0 else "-")
                ratio_rows.append(row)
                first = False
            # values agree?
            vals = rec["values"]
            ref = next((vals[k] for k in rec["kind"] if rec["kind"][k] == "fastloss"), None)
            if ref is not None:
                # peers compute low-precision inputs in their own dtype; fastloss in float32/64
                tol = 1e-3 if rec["dtype"] in ("float32", "float16", "bfloat16") else 1e-8
                for name, v in vals.items():
                    if not abs(v - ref) <= tol * max(abs(ref), 1e-12):
                        notes.append(f"WARNING: {rec['label']}: {name} loss {v:.9g} differs from "
                                     f"fastloss {ref:.9g} (rel. tol. {tol:g})")
        if ratio_rows:
            p()
            p(RATIO_NOTE)
            head = ["case", "peer"] + [f.replace("fastloss ", "vs ") for f in fl_names]
            p(_table(ratio_rows, head, right=tuple(range(2, len(head)))))
    for note in dict.fromkeys(notes):
        p(note)
    return problems


def _plot(results, path, file=sys.stdout):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        print(f"note: --plot {path}: matplotlib is not installed (pip install matplotlib); no chart drawn",
              file=file)
        return
    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.8), squeeze=False)
    for ax, res in zip(axes[0], results):
        labels, bars, against = [], {}, set()
        for rec in res["cases"]:
            med = {k: statistics.median(v) for k, v in rec["times"].items()}
            fl = next((k for k, kind in rec["kind"].items() if kind == "fastloss"), None)
            if fl is None:
                continue
            against.add(fl)
            labels.append(rec["label"].replace(" ", "\n", 1))
            for peer, kind in rec["kind"].items():
                if kind == "peer":
                    bars.setdefault(peer, {})[len(labels) - 1] = med[peer] / med[fl]
        width = 0.8 / max(len(bars), 1)
        for i, (peer, vals) in enumerate(bars.items()):
            xs = [j + (i - (len(bars) - 1) / 2) * width for j in vals]
            rects = ax.bar(xs, list(vals.values()), width, label=PEER_TITLES.get(peer, peer))
            ax.bar_label(rects, fmt="%.1f", fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("peer median / fastloss median")
        ax.set_title(f"{res['threads']} thread{'s' if res['threads'] > 1 else ''}: peer median / {' or '.join(sorted(against))} median\n"
                     "> 1 means fastloss is faster", fontsize=10)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=max(len(handles), 1), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}", file=file)


def _parser():
    ap = argparse.ArgumentParser(
        prog="python -m fastloss bench",
        description="Time forward + backward of every fastloss loss against the installed peers "
                    "(PyTorch CPU, JAX/optax, scikit-learn), interleaved, one process per thread count. "
                    + RATIO_NOTE + ".")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds (about a minute)")
    ap.add_argument("--threads", help="comma-separated thread counts (default: 1 and every core)")
    ap.add_argument("--loss", help=f"comma-separated losses (default: all of {', '.join(BENCHES)})")
    ap.add_argument("--size", help="comma-separated sizes replacing the defaults, e.g. 8192x1000")
    ap.add_argument("--dtype", help="comma-separated dtypes (default: float32)")
    ap.add_argument("--backend", help="comma-separated fastloss backends (default: all)")
    ap.add_argument("--peers", help=f"comma-separated peers (default: {','.join(PEERS)})")
    ap.add_argument("--repeat", type=int, help=f"timed rounds per case (default {DEFAULT_REPEAT}, "
                                               f"--quick {QUICK_REPEAT})")
    ap.add_argument("--max-time", type=float, help="stop a case's rounds after this many seconds "
                                                   f"(at least {MIN_ROUNDS} rounds; default {DEFAULT_MAX_TIME:g}, "
                                                   f"--quick {QUICK_MAX_TIME:g})")
    ap.add_argument("--plot", metavar="FILE.png", help="bar chart of the ratios (needs matplotlib)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw timings as JSON")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_cpus", help=argparse.SUPPRESS)
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    if args._worker:
        return worker(args)
    if args.list:
        for loss, size, dtype, case in _selected_cases(args):
            print(_case_label(loss, size, dtype) + (f"  ({case.note})" if case.note else ""))
        return 0

    import fastloss
    cpus = _available_cpus()
    if args.threads:
        counts = [int(t) for t in args.threads.split(",")]
    else:
        counts = sorted({1, len(cpus)})
    peers = args.peers.split(",") if args.peers else list(PEERS)
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise SystemExit(f"fastloss bench: --peers: unknown {bad}; choose from {list(PEERS)}")
    selected = _selected_cases(args)      # validates --loss / --size early

    installed, notes = _peer_notes(peers)
    versions = [f"fastloss {fastloss.__version__}", f"numpy {np.__version__}"]
    for peer in installed:
        versions += [f"{d} {_dist_version(d)}" for d in PEER_DISTS[peer] if _dist_version(d)]
    print("fastloss bench: forward + backward, median of interleaved rounds"
          + (" (--quick)" if args.quick else ""))
    print("  " + ", ".join(versions))
    print(f"  {len(cpus)} usable core(s); thread counts {counts}; {len(selected)} case(s); "
          "each thread count runs in its own pinned process")
    for note in notes:
        print(note)
    try:
        load = os.getloadavg()[0]
        if load > 0.5:
            print(f"note: load average {load:.1f} before starting: other processes share these cores; "
                  "timings will be noisy, multi-threaded ones most")
    except (AttributeError, OSError):
        pass
    sys.stdout.flush()

    results = []
    t0 = time.perf_counter()
    for n in counts:
        use = cpus[:n] if n <= len(cpus) else cpus
        if n > len(cpus):
            print(f"note: {n} threads on {len(cpus)} core(s): oversubscribed", flush=True)
        print(f"running {n} thread(s) on CPU(s) {','.join(map(str, use))} ...", file=sys.stderr, flush=True)
        try:
            results.append(_run_worker(n, use, args, installed))
        except RuntimeError as exc:
            print(f"ERROR: {exc} (its output is above)", file=sys.stderr)
            return 1
    problems = _report(results)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"timings written to {args.json}")
    if args.plot:
        _plot(results, args.plot)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0

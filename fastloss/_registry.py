"""One row per loss: what the tests and the benchmarks loop over.

Adding a loss is one row here, its class and function in ``_losses/``, its
kernels in both backends, its reference in ``tests/reference.py``.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._losses import ctc, elementwise, pairwise, softmax


@dataclass(frozen=True)
class LossSpec:
    name: str  # the function's name
    cls: type
    func: Callable
    family: str  # "softmax" | "elementwise" | "ctc" | "pairwise"
    make_data: Callable  # make_data(rng, shape, dtype) -> (input, target)
    has_hess: bool = True
    options: tuple = ()  # option sets worth testing
    shapes: tuple = ((7, 5), (2, 3, 4), (5,))  # input shapes the loss accepts, for tests


def _class_labels(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    return x, y


def _probabilities(rng, shape, dtype):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    return x, rng.random(shape)


def _regression(rng, shape, dtype):
    x = (2 * rng.standard_normal(shape)).astype(dtype)
    return x, 2 * rng.standard_normal(shape)


def _quantile(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    return x, rng.standard_normal(shape[:1])


def _sequences(rng, shape, dtype):
    """Logits (T, N, C) and (targets (N, S) padded, input_lengths, target_lengths)."""
    n_frames, n, n_classes = shape
    x = rng.standard_normal(shape).astype(dtype)
    s = max(1, n_frames // 3)
    targets = rng.integers(1, n_classes, size=(n, s))  # blank = 0
    input_lengths = rng.integers(n_frames // 2 + 1, n_frames + 1, size=n)
    target_lengths = rng.integers(0, s + 1, size=n)
    return x, (targets, input_lengths, target_lengths)


def _triplets(rng, shape, dtype):
    """Anchor (N, D) and (positive, negative) near it: loss(anchor, *target)."""
    a = rng.standard_normal(shape).astype(dtype)
    p = (a + 0.5 * rng.standard_normal(shape)).astype(dtype)
    n = (a + rng.standard_normal(shape)).astype(dtype)
    return a, (p, n)


def _pairs(rng, shape, dtype):
    """x1 (N, D) and (x2, similarity in [0, 1]): loss(x1, *target)."""
    x1 = rng.standard_normal(shape).astype(dtype)
    x2 = (x1 + rng.standard_normal(shape)).astype(dtype)
    return x1, (x2, rng.random(shape[:1]))


def _rankings(rng, shape, dtype):
    """x1 (N,) and (x2, target +-1): loss(x1, *target)."""
    x1 = rng.standard_normal(shape).astype(dtype)
    return x1, (rng.standard_normal(shape).astype(dtype), rng.choice([-1.0, 1.0], shape))


REGISTRY = {
    spec.name: spec
    for spec in [
        LossSpec(
            "cross_entropy", softmax.CrossEntropy, softmax.cross_entropy, "softmax",
            _class_labels,
            options=({}, {"label_smoothing": 0.1}, {"ignore_index": 1},
                     {"weight": np.array([0.5, 2.0, 1.0, 1.5, 0.25])}),
        ),
        LossSpec(
            "softmax_focal_loss", softmax.SoftmaxFocal, softmax.softmax_focal_loss, "softmax",
            _class_labels,
            options=({}, {"gamma": 0.5}, {"gamma": 0.0, "ignore_index": 1}),
        ),
        LossSpec(
            "binary_cross_entropy_with_logits", elementwise.BCEWithLogits,
            elementwise.binary_cross_entropy_with_logits, "elementwise", _probabilities,
            options=({}, {"pos_weight": np.array([3.0])}, {"weight": np.array([0.5])}),
        ),
        LossSpec(
            "sigmoid_focal_loss", elementwise.SigmoidFocal, elementwise.sigmoid_focal_loss,
            "elementwise", _probabilities,
            options=({}, {"alpha": -1.0, "gamma": 0.5}, {"gamma": 0.0}),
        ),
        LossSpec(
            "huber_loss", elementwise.Huber, elementwise.huber_loss, "elementwise", _regression,
            options=({}, {"delta": 0.5}),
        ),
        LossSpec(
            "smooth_l1_loss", elementwise.SmoothL1, elementwise.smooth_l1_loss, "elementwise",
            _regression, options=({}, {"beta": 0.5}, {"beta": 0.0}),
        ),
        LossSpec("mse_loss", elementwise.MSE, elementwise.mse_loss, "elementwise", _regression),
        LossSpec("l1_loss", elementwise.L1, elementwise.l1_loss, "elementwise", _regression),
        LossSpec(
            "pinball_loss", elementwise.Pinball, elementwise.pinball_loss, "elementwise",
            _quantile, options=({}, {"quantile": 0.9}), shapes=((7,), (6, 1)),
        ),
        # Several inputs: the target is a tuple, loss(input, *target).
        LossSpec(
            "ctc_loss", ctc.CTC, ctc.ctc_loss, "ctc", _sequences, has_hess=False,
            options=({}, {"zero_infinity": True}, {"log_probs": True}),
            shapes=((12, 3, 5), (7, 2, 4)),
        ),
        LossSpec(
            "triplet_margin_loss", pairwise.TripletMargin, pairwise.triplet_margin_loss,
            "pairwise", _triplets, has_hess=False,
            options=({}, {"swap": True, "margin": 2.0}, {"p": 1.0}, {"p": 3.0, "eps": 0.0}),
            shapes=((7, 5),),
        ),
        LossSpec(
            "margin_ranking_loss", pairwise.MarginRanking, pairwise.margin_ranking_loss,
            "pairwise", _rankings, has_hess=False, options=({}, {"margin": 0.5}),
            shapes=((7,),),
        ),
        LossSpec(
            "contrastive_loss", pairwise.Contrastive, pairwise.contrastive_loss, "pairwise",
            _pairs, has_hess=False, options=({}, {"margin": 3.0}), shapes=((7, 5),),
        ),
    ]
}

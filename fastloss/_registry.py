"""One row per loss: what the tests and the benchmarks loop over.

Adding a loss is one row here, its class and function in ``_losses/``, its
kernels in both backends, its reference in ``tests/reference.py``.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._losses import softmax


@dataclass(frozen=True)
class LossSpec:
    name: str  # the function's name
    cls: type
    func: Callable
    family: str  # "softmax" | "elementwise" | "ctc" | "pairwise"
    make_data: Callable  # make_data(rng, shape, dtype) -> (input, target)
    has_hess: bool = True
    options: tuple = ()  # option sets worth testing


def _class_labels(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    return x, y


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
    ]
}

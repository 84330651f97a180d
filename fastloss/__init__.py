"""fastloss: fused, numerically stable losses with gradients and Hessians.

Every loss is a class (``CrossEntropy``) with ``loss``, ``loss_grad`` and
``grad_hess``, and a function (``cross_entropy``) returning ``(loss, grad)``.
Kernels run in Cython (default) or Numba; see ``set_backend`` and
``set_num_threads``.
"""
from ._backend import (
    BACKENDS,
    get_backend,
    get_num_threads,
    num_threads,
    set_backend,
    set_num_threads,
    use_backend,
)
from ._losses.ctc import CTC, ctc_loss
from ._losses.elementwise import (
    L1,
    MSE,
    BCEWithLogits,
    Huber,
    Pinball,
    SigmoidFocal,
    SmoothL1,
    binary_cross_entropy_with_logits,
    huber_loss,
    l1_loss,
    mse_loss,
    pinball_loss,
    sigmoid_focal_loss,
    smooth_l1_loss,
)
from ._losses.softmax import CrossEntropy, SoftmaxFocal, cross_entropy, softmax_focal_loss
from ._version import __version__

__all__ = [
    "BACKENDS",
    "BCEWithLogits",
    "CTC",
    "CrossEntropy",
    "Huber",
    "L1",
    "MSE",
    "Pinball",
    "SigmoidFocal",
    "SmoothL1",
    "SoftmaxFocal",
    "__version__",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "ctc_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "pinball_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "get_backend",
    "get_num_threads",
    "num_threads",
    "set_backend",
    "set_num_threads",
    "softmax_focal_loss",
    "use_backend",
]

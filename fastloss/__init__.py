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
from ._losses.softmax import CrossEntropy, SoftmaxFocal, cross_entropy, softmax_focal_loss
from ._version import __version__

__all__ = [
    "BACKENDS",
    "CrossEntropy",
    "SoftmaxFocal",
    "__version__",
    "cross_entropy",
    "get_backend",
    "get_num_threads",
    "num_threads",
    "set_backend",
    "set_num_threads",
    "softmax_focal_loss",
    "use_backend",
]

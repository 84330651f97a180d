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
from ._helpers import GradcheckResult, MultiTask, class_weight, gradcheck
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
from ._losses.pairwise import (
    Contrastive,
    MarginRanking,
    TripletMargin,
    contrastive_loss,
    margin_ranking_loss,
    triplet_margin_loss,
)
from ._losses.softmax import CrossEntropy, SoftmaxFocal, cross_entropy, softmax_focal_loss
from ._version import __version__

__all__ = [
    "__version__",
    "BACKENDS",
    "BCEWithLogits",
    "binary_cross_entropy_with_logits",
    "class_weight",
    "Contrastive",
    "contrastive_loss",
    "cross_entropy",
    "CrossEntropy",
    "CTC",
    "ctc_loss",
    "get_backend",
    "get_num_threads",
    "gradcheck",
    "GradcheckResult",
    "Huber",
    "huber_loss",
    "L1",
    "l1_loss",
    "margin_ranking_loss",
    "MarginRanking",
    "MSE",
    "mse_loss",
    "MultiTask",
    "num_threads",
    "Pinball",
    "pinball_loss",
    "set_backend",
    "set_num_threads",
    "sigmoid_focal_loss",
    "SigmoidFocal",
    "smooth_l1_loss",
    "SmoothL1",
    "softmax_focal_loss",
    "SoftmaxFocal",
    "triplet_margin_loss",
    "TripletMargin",
    "use_backend",
]

"""Slow, obvious NumPy references for the losses, written from the formulas.

Loss values only: gradients are checked against central finite differences
of these functions (``numdiff.py``) and against PyTorch autograd.

Every function takes ``dtype`` (float64 by default; ``np.longdouble`` gives
the finite differences a few more digits) and computes in it with loops over
the batch, so nothing here shares code or tricks with the kernels under test.
The layout conventions are the library's: the class axis is the last one,
``target`` holds int labels of the batch shape or probabilities of the
input's shape (decided by shape, as in the library).
"""
import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def log_softmax_row(row):
    """log_softmax of one 1-D row, in the row's dtype.

    log p_c = (x_c - m) - log1p(sum_{c != k} exp(x_c - m)) with k the argmax
    and m = x_k: the largest term is the exact 1 of log1p, so log p of the
    winning class keeps full relative precision even when it is ~ -1e-30,
    and equal huge logits give exactly -log(C).
    """
    k = int(np.argmax(row))
    m = row[k]
    s = row.dtype.type(0)
    for c in range(row.shape[0]):
        if c != k:
            s += np.exp(row[c] - m)
    return (row - m) - np.log1p(s)


def log_softmax(x, dtype=np.float64):
    """log_softmax over the last axis, row by row."""
    x = np.asarray(x, dtype=dtype)
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        out[idx] = log_softmax_row(x[idx])
    return out


def _prepare(x, weight, sample_weight, dtype):
    x = np.asarray(x, dtype=dtype)
    if x.ndim < 1:
        raise ValueError("input must have a class axis")
    n_classes = x.shape[-1]
    batch = x.shape[:-1]
    w = np.ones(n_classes, dtype) if weight is None else np.asarray(weight, dtype)
    if w.shape != (n_classes,):
        raise ValueError("weight must have shape (C,)")
    if sample_weight is None:
        sw = np.ones(batch, dtype)
    else:
        sw = np.asarray(sample_weight, dtype)
        if sw.shape != batch:
            raise ValueError("sample_weight must have the batch shape")
    return x, n_classes, batch, w, sw


def _reduce(losses, denominator, reduction, dtype):
    if reduction == "none":
        return losses
    total = dtype(0)
    for idx in np.ndindex(*losses.shape):
        total += losses[idx]
    if reduction == "sum":
        return total
    if reduction == "mean":
        # A mean over an empty set (or weights summing to 0) is 0.0.
        return dtype(0) if denominator == 0 else total / denominator
    raise ValueError(f"unknown reduction {reduction!r}")


def cross_entropy(x, y, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean", sample_weight=None, dtype=np.float64):
    """PyTorch ``cross_entropy`` with the class axis last, plus sample_weight.

    Hard labels (``y.shape == x.shape[:-1]``), eps = label_smoothing:
        l_n = sw_n * [(1 - eps) * w[y_n] * (-log p_{n,y_n})
                      + eps / C * sum_c w_c * (-log p_{n,c})]
        ignored samples: l_n = 0;  "mean" divides by D = sum_{n not ignored} sw_n * w[y_n].
    Probability targets (``y.shape == x.shape``), t' = (1 - eps) t + eps / C:
        l_n = sw_n * -sum_c w_c t'_{n,c} log p_{n,c};  "mean" divides by sum_n sw_n
        (N without sample_weight); ignore_index does not apply.
    """
    dtype = np.dtype(dtype).type
    x, n_classes, batch, w, sw = _prepare(x, weight, sample_weight, dtype)
    eps = dtype(label_smoothing)
    y = np.asarray(y)
    losses = np.zeros(batch, dtype)
    denominator = dtype(0)
    if y.shape == x.shape:  # probability targets
        t = np.asarray(y, dtype)
        for idx in np.ndindex(*batch):
            logp = log_softmax_row(x[idx])
            tt = (1 - eps) * t[idx] + eps / n_classes
            acc = dtype(0)
            for c in range(n_classes):
                acc -= w[c] * tt[c] * logp[c]
            losses[idx] = sw[idx] * acc
            denominator += sw[idx]
    elif y.shape == batch:  # class labels
        for idx in np.ndindex(*batch):
            label = int(y[idx])
            if label == ignore_index:
                continue
            if not 0 <= label < n_classes:
                raise ValueError(f"label {label} out of range")
            logp = log_softmax_row(x[idx])
            smooth = dtype(0)
            for c in range(n_classes):
                smooth -= w[c] * logp[c]
            losses[idx] = sw[idx] * ((1 - eps) * w[label] * -logp[label]
                                     + eps / n_classes * smooth)
            denominator += sw[idx] * w[label]
    else:
        raise ValueError("target shape matches neither the batch nor the input")
    return _reduce(losses, denominator, reduction, dtype)


def softmax_focal_loss(x, y, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", sample_weight=None, dtype=np.float64):
    """Softmax focal loss (Lin et al. 2017, multi-class form).

        l_n = -sw_n * w[y_n] * (1 - p_{n,y_n})^gamma * log p_{n,y_n}
        ignored samples: l_n = 0;  "mean" divides by D = sum_{n not ignored} sw_n * w[y_n].
    1 - p_y is computed as -expm1(log p_y), exact even when p_y rounds to 1.
    gamma = 0 is plain cross-entropy (0 ** 0 == 1).
    """
    dtype = np.dtype(dtype).type
    x, n_classes, batch, w, sw = _prepare(x, weight, sample_weight, dtype)
    gamma = dtype(gamma)
    y = np.asarray(y)
    if y.shape != batch:
        raise ValueError("target must have the batch shape")
    losses = np.zeros(batch, dtype)
    denominator = dtype(0)
    for idx in np.ndindex(*batch):
        label = int(y[idx])
        if label == ignore_index:
            continue
        if not 0 <= label < n_classes:
            raise ValueError(f"label {label} out of range")
        logp_y = log_softmax_row(x[idx])[label]
        one_minus_p = -np.expm1(logp_y)
        factor = dtype(1) if gamma == 0 else one_minus_p ** gamma
        losses[idx] = -sw[idx] * w[label] * factor * logp_y
        denominator += sw[idx] * w[label]
    return _reduce(losses, denominator, reduction, dtype)


def binary_cross_entropy_on_margin(z, y, dtype=np.float64):
    """Per-sample binary cross-entropy with logits, softplus form.

    BCE(z, y) = y * softplus(-z) + (1 - y) * softplus(z),
    softplus(z) = max(z, 0) + log1p(exp(-|z|)).
    """
    z = np.asarray(z, dtype)
    y = np.asarray(y, dtype)

    def softplus(v):
        return np.maximum(v, 0) + np.log1p(np.exp(-np.abs(v)))

    return y * softplus(-z) + (1 - y) * softplus(z)


def tolerance(dtype):
    """API.md's agreement bounds for moderate inputs, by compute dtype."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- elementwise losses
# Every element is its own sample: "none" has the input's shape, "sum"/"mean" run over every
# element. sample_weight has the input's shape, or (N,) and then weighs every element of row n;
# "mean" divides by the sum of the weights expanded to every element (the number of elements
# without sample_weight). BCE's weight / pos_weight and focal's alpha never enter that
# denominator (PyTorch's rules).
def _elementwise_weights(shape, sample_weight, dtype):
    if sample_weight is None:
        return np.ones(shape, dtype)
    sw = np.asarray(sample_weight, dtype)
    if sw.shape == shape:
        return sw
    if len(shape) >= 1 and sw.shape == shape[:1]:
        return np.broadcast_to(sw.reshape(sw.shape + (1,) * (len(shape) - 1)), shape)
    raise ValueError("sample_weight must have the input's shape or (N,)")


def _elementwise(point, x, t, reduction, sample_weight, dtype, extra=()):
    """Apply ``point(x_i, t_i, *extra_i)`` to every element, weigh, reduce."""
    dtype = np.dtype(dtype).type
    x = np.asarray(x, dtype)
    t = np.asarray(t, dtype)
    if t.shape != x.shape:
        raise ValueError("target must have the input's shape")
    extra = [np.broadcast_to(np.asarray(e, dtype), x.shape) for e in extra]
    sw = _elementwise_weights(x.shape, sample_weight, dtype)
    losses = np.zeros(x.shape, dtype)
    denominator = dtype(0)
    for idx in np.ndindex(*x.shape):
        losses[idx] = sw[idx] * point(x[idx], t[idx], *(e[idx] for e in extra))
        denominator += sw[idx]
    return _reduce(losses, denominator, reduction, dtype)


def softplus(v):
    """log(1 + exp(v)) of one scalar, in the scalar's dtype: max(v, 0) + log1p(exp(-|v|))."""
    return max(v, 0 * v) + np.log1p(np.exp(-abs(v)))


def sigmoid(v):
    """1 / (1 + exp(-v)) of one scalar as exp(-softplus(-v)): no overflow, exact tails."""
    return np.exp(-softplus(-v))


def binary_cross_entropy_with_logits(x, t, weight=None, pos_weight=None, reduction="mean",
                                     sample_weight=None, dtype=np.float64):
    """PyTorch ``binary_cross_entropy_with_logits``, plus sample_weight.

        l_i = sw_i * w_i * [pw_i * t_i * softplus(-x_i) + (1 - t_i) * softplus(x_i)]
    with ``weight`` (w) and ``pos_weight`` (pw) broadcast to the input's shape (numpy rules:
    pos_weight of shape (C,) runs along the last axis); "mean" divides by the sum of sw.
    """
    shape = np.shape(x)
    w = np.ones(shape) if weight is None else weight
    pw = np.ones(shape) if pos_weight is None else pos_weight

    def point(xi, ti, wi, pwi):
        return wi * (pwi * ti * softplus(-xi) + (1 - ti) * softplus(xi))

    return _elementwise(point, x, t, reduction, sample_weight, dtype, extra=(w, pw))


def sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="mean", sample_weight=None,
                       dtype=np.float64):
    """torchvision ``sigmoid_focal_loss`` (its "mean" is loss.mean()), plus sample_weight.

        p = sigmoid(x), p_t = p t + (1 - p)(1 - t), ce = BCE(x, t),
        l_i = sw_i * alpha_t * ce * (1 - p_t)^gamma,  alpha_t = alpha t + (1 - alpha)(1 - t)
    (alpha_t = 1 when alpha < 0). 1 - p_t is computed as t sigmoid(-x) + (1 - t) sigmoid(x),
    which is the same number without the cancellation of 1 - p_t; gamma = 0 gives factor 1.
    """
    def point(xi, ti):
        one_minus_pt = ti * sigmoid(-xi) + (1 - ti) * sigmoid(xi)
        ce = ti * softplus(-xi) + (1 - ti) * softplus(xi)
        factor = 1 if gamma == 0 else one_minus_pt ** xi.dtype.type(gamma)
        a = alpha * ti + (1 - alpha) * (1 - ti) if alpha >= 0 else 1
        return a * ce * factor

    return _elementwise(point, x, t, reduction, sample_weight, dtype)


def huber_loss(x, t, delta=1.0, reduction="mean", sample_weight=None, dtype=np.float64):
    """PyTorch ``huber_loss``: d = x - t, 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)."""
    def point(xi, ti):
        d = xi - ti
        return 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)

    return _elementwise(point, x, t, reduction, sample_weight, dtype)


def smooth_l1_loss(x, t, beta=1.0, reduction="mean", sample_weight=None, dtype=np.float64):
    """PyTorch ``smooth_l1_loss``: 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta;
    |d| if beta == 0."""
    def point(xi, ti):
        d = abs(xi - ti)
        if beta == 0:
            return d
        return 0.5 * d * d / beta if d < beta else d - 0.5 * beta

    return _elementwise(point, x, t, reduction, sample_weight, dtype)


def mse_loss(x, t, reduction="mean", sample_weight=None, dtype=np.float64):
    """PyTorch ``mse_loss``: (x - t)^2."""
    return _elementwise(lambda xi, ti: (xi - ti) ** 2, x, t, reduction, sample_weight, dtype)


def l1_loss(x, t, reduction="mean", sample_weight=None, dtype=np.float64):
    """PyTorch ``l1_loss``: |x - t|."""
    return _elementwise(lambda xi, ti: abs(xi - ti), x, t, reduction, sample_weight, dtype)


def pinball_loss(x, t, quantile=0.5, reduction="mean", sample_weight=None, dtype=np.float64):
    """Pinball loss max(q (t - x), (q - 1)(t - x)), as scikit-learn's ``mean_pinball_loss``.

    x: (N,) with a scalar quantile, or (N, Q) with quantile scalar or (Q,); t: (N,), the
    target of every column of row n. "none" has the input's shape; "mean" runs over all N Q
    elements (with (N,) sample weights: the mean over quantiles of sklearn's weighted means).
    """
    x = np.asarray(x, dtype)
    t = np.asarray(t, dtype)
    if x.ndim not in (1, 2) or t.shape != x.shape[:1]:
        raise ValueError("pinball: input (N,) or (N, Q), target (N,)")
    q = np.asarray(quantile, dtype)
    if q.ndim == 1 and q.shape != x.shape[1:]:
        raise ValueError("pinball: (Q,) quantiles need an (N, Q) input")
    t_full = np.broadcast_to(t.reshape(t.shape + (1,) * (x.ndim - 1)), x.shape)

    def point(xi, ti, qi):
        d = ti - xi
        return max(qi * d, (qi - 1) * d)

    return _elementwise(point, x, t_full, reduction, sample_weight, dtype, extra=(q,))

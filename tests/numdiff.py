"""Central finite differences for gradient and Hessian-diagonal checks.

The 4th-order stencils (as in scikit-learn's ``sklearn/_loss/tests/test_loss.py``):

    f'(x)  ~ (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / (12 h)              error O(h^4)
    f''(x) ~ (-f(x-2h) + 16 f(x-h) - 30 f(x) + 16 f(x+h) - f(x+2h)) / (12 h^2)  error O(h^4)

The arithmetic runs in the dtype of ``x`` as given (pass float64 or
np.longdouble arrays; nothing is converted here), so the caller decides how
many digits the differences keep. ``h`` is an absolute step.

Two flavours:
- element by element (``gradient``, ``hessian_diagonal``): ``f`` is any
  scalar function of the whole array; 4 (or 5) calls per element, so keep
  the arrays small;
- row-wise (``*_rowwise``): for functions whose row n depends only on row n
  of ``x`` (per-sample losses, a gradient): column j of every row is
  perturbed at once, 4 calls per class.
"""
import numpy as np

_D1 = ((-2, 1), (-1, -8), (1, 8), (2, -1))  # (offset in h, coefficient), / (12 h)
_D2 = ((-2, -1), (-1, 16), (0, -30), (1, 16), (2, -1))  # / (12 h^2)


def _step(x, h):
    return np.asarray(h, dtype=x.dtype)


def derivative(f, x, h=1e-3):
    """Elementwise derivative: f maps an array to an array of the same shape
    whose element i depends only on x[i]; returns d f_i / d x_i."""
    x = np.asarray(x)
    h = _step(x, h)
    acc = np.zeros(x.shape, dtype=x.dtype)
    for k, coef in _D1:
        acc = acc + coef * np.asarray(f(x + k * h), dtype=x.dtype)
    return acc / (12 * h)


def gradient(f, x, h=1e-3):
    """Gradient of a scalar function ``f`` of the whole array, element by element."""
    x = np.asarray(x)
    h = _step(x, h)
    grad = np.zeros(x.shape, dtype=x.dtype)
    for idx in np.ndindex(*x.shape):
        acc = x.dtype.type(0)
        for k, coef in _D1:
            xp = x.copy()
            xp[idx] += k * h
            acc += coef * x.dtype.type(f(xp))
        grad[idx] = acc / (12 * h)
    return grad


def hessian_diagonal(f, x, h=1e-2):
    """Diagonal of the Hessian of a scalar ``f`` from second differences of f."""
    x = np.asarray(x)
    h = _step(x, h)
    hess = np.zeros(x.shape, dtype=x.dtype)
    for idx in np.ndindex(*x.shape):
        acc = x.dtype.type(0)
        for k, coef in _D2:
            xp = x.copy()
            xp[idx] += k * h
            acc += coef * x.dtype.type(f(xp))
        hess[idx] = acc / (12 * h * h)
    return hess


def gradient_rowwise(f, x, h=1e-3):
    """d f_n / d x_{n,j} for ``f`` mapping (..., C) to per-row values (...)
    with row n depending only on x[n]: column j of every row moves at once."""
    x = np.asarray(x)
    h = _step(x, h)
    grad = np.zeros(x.shape, dtype=x.dtype)
    for j in range(x.shape[-1]):
        acc = np.zeros(x.shape[:-1], dtype=x.dtype)
        for k, coef in _D1:
            xp = x.copy()
            xp[..., j] += k * h
            acc = acc + coef * np.asarray(f(xp), dtype=x.dtype)
        grad[..., j] = acc / (12 * h)
    return grad


def hessian_diagonal_from_gradient(g, x, h=1e-3):
    """d g_{n,j} / d x_{n,j} for a gradient function ``g`` mapping (..., C) to
    (..., C) with row n depending only on x[n] (true of every per-sample loss,
    whatever the reduction, since a mean's denominator does not depend on x)."""
    x = np.asarray(x)
    h = _step(x, h)
    hess = np.zeros(x.shape, dtype=x.dtype)
    for j in range(x.shape[-1]):
        acc = np.zeros(x.shape[:-1], dtype=x.dtype)
        for k, coef in _D1:
            xp = x.copy()
            xp[..., j] += k * h
            acc = acc + coef * np.asarray(g(xp), dtype=x.dtype)[..., j]
        hess[..., j] = acc / (12 * h)
    return hess


def hessian_diagonal_rowwise(f, x, h=1e-2):
    """d^2 f_n / d x_{n,j}^2 from second differences of per-row values ``f``."""
    x = np.asarray(x)
    h = _step(x, h)
    hess = np.zeros(x.shape, dtype=x.dtype)
    for j in range(x.shape[-1]):
        acc = np.zeros(x.shape[:-1], dtype=x.dtype)
        for k, coef in _D2:
            xp = x.copy()
            xp[..., j] += k * h
            acc = acc + coef * np.asarray(f(xp), dtype=x.dtype)
        hess[..., j] = acc / (12 * h * h)
    return hess

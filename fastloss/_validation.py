"""Validation: every check a loss needs, before any computation.

Every error names the argument first ("target: ..."), then the culprit. The
kernels trust what leaves this module: labels in range, shapes consistent,
buffers C-contiguous of the compute dtype. That is what lets the Cython
kernels run without bounds checks.
"""
import numbers

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def _real_array(a, name):
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        kind = {"c": "complex", "O": "object", "U": "string", "S": "bytes"}.get(
            a.dtype.kind, str(a.dtype)
        )
        raise TypeError(f"{name}: {kind} dtype is not supported, pass real numbers")
    return a


def compute_dtype(a):
    """float32 stays float32; every other real dtype computes in float64."""
    return np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)


def as_input(a, name="input"):
    """The first input: decides the compute dtype. Returns a C-contiguous array."""
    a = _real_array(a, name)
    # (ascontiguousarray makes a 0-d array 1-d: keep the shape the user gave)
    return np.ascontiguousarray(a, dtype=compute_dtype(a)).reshape(a.shape)


def as_float(a, dtype, name, shape=None):
    """A secondary float input (target, weight) in the compute dtype."""
    a = _real_array(a, name)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype).reshape(a.shape)


def reduction(value):
    if value not in REDUCTIONS:
        raise ValueError(f"reduction: must be one of {REDUCTIONS}, got {value!r}")
    return value


def scalar(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A real scalar option inside [low, high] (open ends as asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a real number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if np.isnan(value) or too_low or too_high:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise ValueError(f"{name}: must be in {interval}, got {value}")
    return value


def integer(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {value!r}")
    return int(value)


def _first(mask):
    """The index tuple of the first True in ``mask``, as plain ints."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(mask), mask.shape))


def labels(target, batch_shape, n_classes, ignore_index=None, name="target", where=None):
    """Integer class labels of the batch shape, every one in [0, C) or ignored.

    Float labels are accepted when they hold integers. The message of a bad
    label gives its first position and value; ``where`` (one row of indices
    per label) maps a position in ``target`` to the one the user passed, for
    labels gathered from a larger array.
    """
    target = _real_array(target, name)
    if target.shape != tuple(batch_shape):
        raise ValueError(
            f"{name}: expected shape {tuple(batch_shape)} (the input's leading axes), "
            f"got {target.shape}"
        )
    ignored = "" if ignore_index is None else f" and is not ignore_index={ignore_index}"

    def position(mask):
        pos = _first(mask)
        return pos, pos if where is None else tuple(int(i) for i in where[pos])

    def bad_label(mask):
        pos, user_pos = position(mask)
        value = target[pos].item()
        return ValueError(
            f"{name}: label {value!r} at index {user_pos} is outside [0, {n_classes}){ignored}"
        )

    if target.dtype.kind == "f":
        fractional = ~np.isfinite(target) | (target != np.floor(target))
        if fractional.any():
            pos, user_pos = position(fractional)
            raise ValueError(
                f"{name}: class labels must be integers, got {target[pos].item()!r} "
                f"at index {user_pos}"
            )
        # Compare as floats, before a cast to int64 could wrap.
        out_of_range = (target < 0) | (target >= n_classes)
        if ignore_index is not None:
            out_of_range &= target != ignore_index
        if out_of_range.any():
            raise bad_label(out_of_range)
    elif target.dtype.kind == "u":
        # Compare as unsigned, before a cast to int64 could wrap.
        out_of_range = target >= n_classes
        if ignore_index is not None and ignore_index >= 0:
            out_of_range &= target != ignore_index
        if out_of_range.any():
            raise bad_label(out_of_range)
    out = np.ascontiguousarray(target, dtype=np.int64)
    bad = (out < 0) | (out >= n_classes)
    if ignore_index is not None:
        bad &= out != ignore_index
    if bad.any():
        raise bad_label(bad)
    return out


def lengths(a, name, n, high=None):
    """Sequence lengths: ``(n,)`` integers in [0, high], returned as int64."""
    a = _real_array(a, name)
    if a.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) (one length per sequence), got {a.shape}")
    if a.dtype.kind == "f":
        fractional = ~np.isfinite(a) | (a != np.floor(a))
        if fractional.any():
            pos = _first(fractional)
            raise ValueError(f"{name}: lengths must be integers, got {a[pos].item()!r} at index {pos}")
    # Compare in the given dtype, before a cast to int64 could wrap.
    bad = a < 0 if high is None else (a < 0) | (a > high)
    if bad.any():
        pos = _first(bad)
        bound = "be >= 0" if high is None else f"be in [0, {high}]"
        raise ValueError(f"{name}: length {a[pos].item()!r} at index {pos} must {bound}")
    return np.ascontiguousarray(a, dtype=np.int64)


def sample_weight(sw, batch_shape, dtype, name="sample_weight"):
    """Per-sample weights of the batch shape (None stays None)."""
    if sw is None:
        return None
    return as_float(sw, dtype, name, shape=batch_shape)


def class_weight(w, n_classes, dtype, name="weight"):
    if w is None:
        return None
    return as_float(w, dtype, name, shape=(n_classes,))


def out_buffer(out, shape, dtype, name="out"):
    """A preallocated gradient buffer: exact shape, compute dtype, C order, writeable."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not (
        isinstance(out, np.ndarray)
        and out.shape == tuple(shape)
        and out.dtype == dtype
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        got = (
            f"{type(out).__name__}"
            if not isinstance(out, np.ndarray)
            else f"{out.dtype} array of shape {out.shape}"
            + ("" if out.flags.c_contiguous else ", not C-contiguous")
            + ("" if out.flags.writeable else ", read-only")
        )
        raise ValueError(
            f"{name}: must be a C-contiguous writeable {np.dtype(dtype).name} array "
            f"of shape {tuple(shape)}, got {got}"
        )
    return out

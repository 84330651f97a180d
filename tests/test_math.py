"""exp, log and log1p point functions: accuracy in ulps and special values.

Both backends, both precisions:
- Cython: the C functions of ``fl_math.h`` through the test-only module
  ``fastloss._cython._math`` (vectorised C loops);
- Numba: ``fastloss._numba._math.fexp/flog/flog1p`` called from ``@njit``
  loops defined here, as a kernel would call them.

References are NumPy's own functions one precision up: float32 results
against ``np.exp``/``np.log``/``np.log1p`` in float64, float64 results
against the same in ``np.longdouble`` (64-bit mantissa on x86-64; mpmath
where long double is no wider than double). The reference is carried as a
float64 pair hi + lo so the error is measured to a small fraction of an ulp.

The ulp bounds below are the maxima measured over every float32 (exhaustive
run of fl_math.h) and over 1e8 random float64; the dense samples here must
stay inside them.
"""
import functools
import platform
import re

import llvmlite.binding
import numba
import numpy as np
import pytest

from fastloss._cython import _math as cmath
from fastloss._numba._jit import FASTMATH
from fastloss._numba._math import fexp, flog, flog1p, flog1p_unit

FUNCS = ("exp", "log", "log1p")
DTYPES = (np.float32, np.float64)
# max |error| in ulps, measured (see the module docstring): exp 0.9505 / 0.9502,
# log 0.8005 / 0.812, log1p 0.8005 / 0.815 (float32 / float64)
MAX_ULP = {"exp": 0.96, "log": 0.83, "log1p": 0.83}

# ------------------------------------------------------------ the backends


@numba.njit(fastmath=FASTMATH)
def _nb_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = fexp(x[i])


@numba.njit(fastmath=FASTMATH)
def _nb_log(x, out):
    for i in range(x.shape[0]):
        out[i] = flog(x[i])


@numba.njit(fastmath=FASTMATH)
def _nb_log1p(x, out):
    for i in range(x.shape[0]):
        out[i] = flog1p(x[i])


_NUMBA_LOOPS = {"exp": _nb_exp, "log": _nb_log, "log1p": _nb_log1p}


def _numba_call(name):
    def call(x):
        out = np.empty_like(x)
        _NUMBA_LOOPS[name](x, out)
        return out
    return call


IMPLS = {
    "cython": {name: getattr(cmath, name) for name in FUNCS},
    "numba": {name: _numba_call(name) for name in FUNCS},
}


@pytest.fixture(params=["cython", "numba"])
def impl(request):
    return IMPLS[request.param]


@pytest.fixture(params=FUNCS)
def name(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dt(request):
    return request.param


# ----------------------------------------------------------- the reference

_LONGDOUBLE_OK = np.finfo(np.longdouble).nmant >= 63


def ulp(h, dtype):
    """The ulp of dtype at each float64 value h: 2^(e - mantissa bits) for h
    in [2^e, 2^(e+1)), the denormal spacing below the normal range."""
    fi = np.finfo(dtype)
    with np.errstate(invalid="ignore"):
        e = np.frexp(h)[1].astype(np.int64) - 1
    e = np.where(h == 0, fi.minexp, np.maximum(e, fi.minexp))
    return np.ldexp(1.0, e - fi.nmant)


def reference(name, x):
    """The exact f(x) as hi + lo * ulp(hi): hi (float64) the reference rounded
    to float64, lo the rest in ulps of x's dtype (computed before rounding, so
    it survives near the bottom of the double range). Returns (hi, lo, x);
    x is thinned when the reference must come from mpmath."""
    if x.dtype == np.float32:
        with np.errstate(all="ignore"):
            hi = getattr(np, name)(x.astype(np.float64))
        return hi, np.zeros_like(hi), x  # float64 is 29 bits finer than float32
    if _LONGDOUBLE_OK:
        with np.errstate(all="ignore"):
            r = getattr(np, name)(x.astype(np.longdouble))
            hi = r.astype(np.float64)
            lo = np.where(np.isfinite(hi), (r - hi) / ulp(hi, x.dtype), 0).astype(np.float64)
        return hi, lo, x
    import mpmath  # long double is double here (e.g. macOS arm64): slower, fewer points

    x = x[:: max(1, x.size // 20000)]
    mpmath.mp.prec = 120
    fn = {"exp": mpmath.exp, "log": mpmath.log, "log1p": mpmath.log1p}[name]
    with np.errstate(all="ignore"):
        hi = getattr(np, name)(x)  # right for every non-finite case
    lo = np.zeros_like(x)
    for i, v in enumerate(x.tolist()):
        if np.isfinite(hi[i]) and np.isfinite(v):
            r = fn(mpmath.mpf(v))
            hi[i] = float(r)
            lo[i] = float((r - mpmath.mpf(hi[i])) / mpmath.mpf(ulp(hi[i], x.dtype)))
    return hi, lo, x


def ulp_errors(y, hi, lo, dtype):
    """|y - reference| in ulps of dtype at the reference. Where the reference
    is not finite once rounded to dtype (NaN, +-inf, overflow), y must equal
    it exactly: error 0 or inf."""
    with np.errstate(all="ignore"):
        rounded = hi.astype(dtype)
    special = ~np.isfinite(rounded)
    err = np.zeros(y.shape, dtype=np.float64)
    same = (y[special] == rounded[special]) | (np.isnan(y[special]) & np.isnan(rounded[special]))
    err[special] = np.where(same, 0.0, np.inf)
    h = hi[~special]
    with np.errstate(all="ignore"):
        d = (y[~special].astype(np.float64) - h) / ulp(h, dtype) - lo[~special]
        err[~special] = np.where(np.isnan(d), np.inf, np.abs(d))
    return err


def check_ulps(name, f, x, bound, ref=None):
    hi, lo, x = ref or reference(name, x)
    y = f(x)
    assert y.dtype == x.dtype
    err = ulp_errors(y, hi, lo, x.dtype)
    i = int(np.argmax(err))
    assert err[i] <= bound, (
        f"{name}({x[i]!r}) = {y[i]!r}, reference {hi[i]!r} {lo[i]:+.3f} ulp: {err[i]:.4f} ulp")
    return err[i]


# ------------------------------------------------------------- the samples


def _run(start, n, dtype):
    """n consecutive floats of dtype from start, moving away from zero."""
    ints = np.uint32 if dtype == np.float32 else np.uint64
    b = np.array(start, dtype=dtype).view(ints)
    return (b + np.arange(n, dtype=ints)).view(dtype)


# Consecutive floats across each function's cutoffs and reduction seams
# (each run is placed to straddle the value in its comment).
_RUNS = {
    ("exp", np.float32): [
        (-88.5, 1 << 21),      # -88.5 .. -104.5: denormal results, 0 below -103.97
        (-85.5, 1 << 19),      # exp = FLT_MIN at -87.34
        (88.0, 1 << 17),       # 88 .. 89: overflow at 88.7228
        (0.34, 1 << 18), (-0.34, 1 << 18),  # |r| = ln2/2 seam at 0.3466
        (1e-4, 1 << 18), (0.0, 1 << 16), (-0.0, 1 << 16)],
    ("exp", np.float64): [
        (-745.1332191019, 1 << 16),         # 0 below -745.1332191019412
        (-708.3964185322, 1 << 16),         # exp = DBL_MIN at -708.39641853226408
        (709.782712893, 1 << 16),           # overflow at 709.782712893384
        (0.346573590279, 1 << 16), (-0.346573590279, 1 << 16),  # ln2/2
        (1e-10, 1 << 16), (0.0, 1 << 16)],
    ("log", np.float32): [
        (0.0, 1 << 20),                     # denormals
        (1.17e-38, 1 << 18),                # FLT_MIN = 1.1754944e-38
        (0.74, 1 << 19),                    # m split at 0.75
        (0.99, 1 << 19),                    # 1
        (1.49, 1 << 18),                    # m split at 1.5
        (1e30, 1 << 16)],
    ("log", np.float64): [
        (0.0, 1 << 16), (2.2250738585072e-308, 1 << 16),  # DBL_MIN
        (0.749999999999999, 1 << 16), (0.999999999999999, 1 << 16),
        (1.499999999999999, 1 << 16)],
    ("log1p", np.float32): [
        (-0.99999, 1 << 17),                # -1, then x < -1
        (-0.2499, 1 << 19),                 # k = -1 / 0 seam at -0.25
        (0.4999, 1 << 19),                  # k = 0 / 1 seam at 0.5
        (1.999, 1 << 18),                   # k = 1 / 2 seam at 2
        (1e-3, 1 << 18), (-1e-3, 1 << 18), (0.0, 1 << 20),
        (2.0**100 * 0.99999, 1 << 16)],     # rescaling cutoff 2^100
    ("log1p", np.float64): [
        (-0.999999999999999, 1 << 16), (-0.249999999999999, 1 << 16),
        (0.499999999999999, 1 << 16), (1.999999999999999, 1 << 16),
        (1e-300, 1 << 16), (2.0**1000 * (1 - 2.0**-40), 1 << 16)],  # cutoff 2^1000
}
# Uniform samples where the function changes most (float64; float32 runs above
# and the bit-pattern sweep already cover its ranges densely).
_UNIFORM64 = {
    "exp": [(-750.0, 720.0), (-745.2, -708.3), (-1.0, 1.0), (700.0, 710.0)],
    "log": [(0.0, 4.0), (0.5, 2.0)],
    "log1p": [(-1.0, 0.0), (-0.5, 1.0), (0.0, 1e4)],
}


@functools.lru_cache(maxsize=None)
def dense(name, dtype):
    """dense_samples and their reference (hi, lo), computed once, read-only."""
    x = dense_samples(name, dtype)
    hi, lo, x = reference(name, x)
    for a in (x, hi, lo):
        a.flags.writeable = False
    return x, hi, lo


def dense_samples(name, dtype):
    """Every finite and non-finite class: a sweep over the whole bit-pattern
    space (both signs, denormals, every binade, infs and NaNs), plus the runs
    of consecutive floats above, plus (float64) uniform samples."""
    if dtype == np.float32:
        parts = [np.arange(0, 1 << 32, 2053, dtype=np.uint64).astype(np.uint32).view(np.float32)]
        parts += [_run(s, n, dtype) for s, n in _RUNS[name, dtype]]
    else:
        rng = np.random.default_rng(12345)
        parts = [rng.integers(0, 1 << 64, 1 << 20, dtype=np.uint64).view(np.float64)]
        # log-uniform over the positive range (every binade, denormals too)
        parts.append(np.ldexp(rng.uniform(0.5, 1.0, 1 << 18), rng.integers(-1074, 1025, 1 << 18)))
        parts += [rng.uniform(a, b, 1 << 17) for a, b in _UNIFORM64[name]]
        parts += [_run(s, n, dtype) for s, n in _RUNS[name, dtype]]
    return np.concatenate(parts).astype(dtype)


# ----------------------------------------------------------------- accuracy


def test_accuracy_dense(impl, name, dt):
    """Max error over the dense samples stays inside the measured bound."""
    x, hi, lo = dense(name, dt)
    check_ulps(name, impl[name], x, MAX_ULP[name], ref=(hi, lo, x))


def test_bound_is_tight(name, dt):
    """The bound is what the functions reach: the dense samples find an
    error within 25% of it (a bound far above reality would hide a loss)."""
    x, hi, lo = dense(name, dt)
    worst = ulp_errors(IMPLS["cython"][name](x), hi, lo, dt).max()
    assert 0.5 < worst <= MAX_ULP[name]
    assert worst > 0.75 * MAX_ULP[name]


def test_backends_agree_bitwise(name, dt):
    """The Cython and Numba twins are the same algorithm, operation for
    operation: identical bits (NaNs as NaN) on every dense sample."""
    x, _, _ = dense(name, dt)
    a = IMPLS["cython"][name](x)
    b = IMPLS["numba"][name](x)
    np.testing.assert_array_equal(a, b)  # NaNs compare equal here
    ints = np.uint32 if dt == np.float32 else np.uint64
    finite = ~np.isnan(a)
    assert np.array_equal(a[finite].view(ints), b[finite].view(ints))


def test_error_measure_catches_one_ulp(dt):
    """The harness itself: a result one ulp off reads as about one ulp, an
    overflow where the reference is finite as infinite."""
    x = np.array([0.3, 1.7, 5.0, -80.0], dtype=dt)
    hi, lo, x = reference("exp", x)
    y = hi.astype(dt)
    off = np.nextafter(y, np.array(np.inf, dtype=dt))
    err = ulp_errors(off, hi, lo, dt)
    assert np.all((err > 0.5) & (err < 1.5))
    assert np.isinf(ulp_errors(np.full_like(y, np.inf), hi, lo, dt)).all()


# ----------------------------------------------------------- special values


def _specials(name, dt):
    """(input, exact expected) pairs; sign of zero is not checked (the build
    uses -fno-signed-zeros)."""
    fi = np.finfo(dt)
    inf, nan = np.inf, np.nan
    tiny, huge = float(fi.smallest_subnormal), float(fi.max)
    f32 = dt == np.float32
    if name == "exp":
        return [
            (nan, nan), (inf, inf), (-inf, 0.0), (0.0, 1.0), (-0.0, 1.0),
            (huge, inf), (-huge, 0.0), (1e30, inf), (-1e30, 0.0),
            (89.0 if f32 else 710.0, inf),
            (-104.0 if f32 else -746.0, 0.0), (-200.0 if f32 else -1000.0, 0.0),
            # least denormal: exp(log(tiny)) and just above half of it
            (-103.27893 if f32 else -744.4400719213812, tiny),
            (-103.9 if f32 else -745.0, tiny),
        ]
    if name == "log":
        return [
            (nan, nan), (inf, inf), (-inf, nan), (0.0, -inf), (-0.0, -inf),
            (-1.0, nan), (-tiny, nan), (-huge, nan), (1.0, 0.0),
        ]
    return [
        (nan, nan), (inf, inf), (-inf, nan), (-1.0, -inf),
        (float(np.nextafter(dt(-1), dt(-2))), nan), (-2.0, nan), (-huge, nan),
        (0.0, 0.0), (-0.0, 0.0), (tiny, tiny), (-tiny, -tiny), (1e-30, 1e-30), (-1e-30, -1e-30),
    ]


def test_extreme_finite_inputs(impl, name, dt):
    """The least denormal, the least normal and the largest float (and their
    neighbours) are ordinary inputs: within the bound (log of a denormal
    goes through the 2^25 / 2^54 rescaling, log1p of the largest through
    the 2^-64 / 2^-512 one)."""
    fi = np.finfo(dt)
    x = np.array([fi.smallest_subnormal, 2 * fi.smallest_subnormal, fi.smallest_normal,
                  np.nextafter(fi.smallest_normal, dt(0)), fi.max, np.nextafter(fi.max, dt(0)),
                  fi.eps, 1 / fi.eps], dtype=dt)
    x = np.concatenate([x, -x])
    check_ulps(name, impl[name], x, MAX_ULP[name])


def test_special_values(impl, name, dt):
    pairs = _specials(name, dt)
    x = np.array([p[0] for p in pairs], dtype=dt)
    want = np.array([p[1] for p in pairs], dtype=dt)  # rounded to dt
    got = impl[name](x)
    assert got.dtype == dt
    for xi, g, w in zip(x, got, want):
        if np.isnan(w):
            assert np.isnan(g), f"{name}({xi!r}) = {g!r}, want NaN"
        else:
            assert g == w, f"{name}({xi!r}) = {g!r}, want {w!r}"


def _edge(dt, pred, lo, hi):
    """Adjacent floats a < b of dt in [lo, hi] with pred(a) false and pred(b)
    true, for pred monotone on [lo, hi] (bisection)."""
    a, b = dt(lo), dt(hi)
    assert not pred(a) and pred(b)
    while np.nextafter(a, b) != b:
        m = dt(a + (b - a) / dt(2))
        if m == a or m == b:
            m = np.nextafter(a, b)
        a, b = (a, m) if pred(m) else (m, b)
    return a, b


def _rounded_exp(x):
    """exp(x) rounded to x's dtype."""
    hi, _, _ = reference("exp", np.array([x]))
    with np.errstate(over="ignore"):
        return hi.astype(x.dtype)[0]


def test_exp_overflow_and_underflow_edges(impl, dt):
    """At the last float below overflow exp is finite and at the next one
    inf; at the last float whose exp rounds to 0 it is 0, at the next one
    the least denormal."""
    f = impl["exp"]
    f32 = dt == np.float32
    a, b = _edge(dt, lambda v: np.isinf(_rounded_exp(v)), 80.0, 100.0 if f32 else 800.0)
    assert np.isfinite(f(np.array([a, b]))).tolist() == [True, False]
    assert f(np.array([b]))[0] == np.inf
    lo, hi = (-110.0, -100.0) if f32 else (-750.0, -740.0)
    a, b = _edge(dt, lambda v: _rounded_exp(v) > 0, lo, hi)
    assert f(np.array([a, b])).tolist() == [0.0, np.finfo(dt).smallest_subnormal]


def test_exp_denormal_results(impl, dt):
    """Results in the denormal range are rounded once: every one lies within
    a (denormal) ulp of the reference, and they are not flushed to zero."""
    lo, hi = (-103.9, -87.4) if dt == np.float32 else (-745.0, -708.5)
    x = np.linspace(lo, hi, 100_001).astype(dt)
    y = check_ulps("exp", impl["exp"], x, MAX_ULP["exp"])
    assert y >= 0
    out = impl["exp"](x)
    assert np.all(out > 0) and np.all(out[:-1] < np.finfo(dt).smallest_normal)


def test_log1p_tiny_and_large(impl, dt):
    """log1p(x) = x to the last bit for |x| below sqrt(eps), and log1p(x)
    agrees with log(x) where 1 + x = x."""
    eps = np.finfo(dt).eps
    x = np.geomspace(np.finfo(dt).smallest_subnormal, eps / 4, 2000).astype(dt)
    x = np.concatenate([x, -x])
    np.testing.assert_array_equal(impl["log1p"](x), x)
    fi = np.finfo(dt)
    with np.errstate(over="ignore"):
        e = np.linspace(-fi.negep + 2, fi.maxexp, 2000).astype(int)
        big = np.ldexp(np.linspace(0.5, 1.0, 2000), e)
    big = np.minimum(big, fi.max).astype(dt)  # 4 / eps .. max
    check_ulps("log1p", impl["log1p"], big, MAX_ULP["log1p"])
    np.testing.assert_allclose(impl["log1p"](big), impl["log"](big), rtol=2 * eps)


# --------------------------------------------------------------- Numba use

_STUBS = {"exp": fexp, "log": flog, "log1p": flog1p}


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _nb_all_parallel(x, out):
    for i in numba.prange(x.shape[0]):
        out[0, i] = fexp(x[i])
        out[1, i] = flog(x[i])
        out[2, i] = flog1p(x[i])


@numba.njit
def _nb_plain_exp(x, out):
    # default options: no fastmath, error_model="python"
    for i in range(x.shape[0]):
        out[i] = fexp(x[i])


@numba.njit
def _nb_scalar(x):
    return fexp(x), flog(x), flog1p(x)


def test_numba_parallel_cached_kernel(dt):
    """Callable from a parallel, cached, fastmath kernel: same bits as the
    serial loops."""
    x = dense("log1p", dt)[0][::7].copy()
    out = np.empty((3, x.size), dtype=dt)
    _nb_all_parallel(x, out)
    for row, name in zip(out, FUNCS):
        np.testing.assert_array_equal(row, IMPLS["numba"][name](x))


def test_numba_float32_stays_float32():
    """float32 in, float32 out, and no float64 anywhere in the float32 loop."""
    _nb_scalar(np.float32(0.5))
    _nb_scalar(0.5)
    sig_ret = {s.args[0]: s.return_type for s in _nb_scalar.nopython_signatures}
    assert sig_ret[numba.float32] == numba.types.UniTuple(numba.float32, 3)
    assert sig_ret[numba.float64] == numba.types.UniTuple(numba.float64, 3)
    for name, loop in _NUMBA_LOOPS.items():
        x = np.linspace(0.5, 2, 64, dtype=np.float32)
        loop(x, np.empty_like(x))
        sig = next(s for s in loop.signatures if s[0].dtype == numba.float32)
        llvm = loop.inspect_llvm(sig)
        assert "fpext" not in llvm and "double" not in llvm, name


def _vector_width(llvm, fty):
    """Widest vector of llvm.fma calls on fty in the LLVM IR (0: none)."""
    widths = [int(w) for w in re.findall(r"llvm\.fma\.v(\d+)" + fty, llvm)]
    return max(widths, default=0)


_HOST_AVX2_FMA = platform.machine() in ("x86_64", "AMD64") and all(
    llvmlite.binding.get_host_cpu_features().get(f, False) for f in ("avx2", "fma"))


@pytest.mark.parametrize("loop", [_nb_exp, _nb_log, _nb_log1p, _nb_plain_exp],
                         ids=["exp", "log", "log1p", "exp-default-options"])
def test_numba_loop_vectorises(loop, dt):
    """LLVM vectorises `for i: out[i] = f(x[i])`: the fma chain runs on
    vectors (IR) and, on x86 with AVX2 + FMA, packed fma instructions on
    ymm/zmm registers appear (asm). Holds with default njit options too (no
    fastmath, python error model: the division inside is a bare fdiv)."""
    x = np.linspace(0.5, 2, 64).astype(dt)
    loop(x, np.empty_like(x))
    sig = next(s for s in loop.signatures if s[0].dtype == numba.from_dtype(np.dtype(dt)))
    fty = "f32" if dt == np.float32 else "f64"
    assert _vector_width(loop.inspect_llvm(sig), fty) >= (4 if fty == "f32" else 2)
    if _HOST_AVX2_FMA:
        asm = loop.inspect_asm(sig)
        packed = "ps" if fty == "f32" else "pd"
        assert re.search(rf"vfmadd\d+{packed}\s+%[yz]mm", asm), "no packed fma on ymm/zmm"


@pytest.mark.parametrize("name", FUNCS)
def test_numba_stubs_in_python(name):
    """Called from Python (or under NUMBA_DISABLE_JIT=1) the names fall back
    to NumPy on the scalar, dtype kept."""
    f = _STUBS[name]
    for v in (np.float32(0.75), np.float64(0.75)):
        r = f(v)
        assert type(r) is type(v) and r == getattr(np, name)(v)


def test_numba_rejects_non_float():
    @numba.njit
    def g(x):
        return fexp(x)

    with pytest.raises(numba.core.errors.TypingError):
        g(3)


# -------------------------------------------------------- Cython entry points


def test_cython_entry_points(name, dt):
    f = IMPLS["cython"][name]
    x = np.linspace(0.25, 4, 33).astype(dt)
    x.flags.writeable = False  # read-only input is fine
    out = np.empty_like(x)
    r = f(x, out=out)
    assert r is out
    np.testing.assert_array_equal(out, f(x))
    assert f(np.empty(0, dtype=dt)).shape == (0,)
    with pytest.raises(ValueError, match="out"):
        f(x, out=np.empty(5, dtype=dt))
    with pytest.raises(ValueError):  # a strided view is not C-contiguous
        f(np.linspace(1, 2, 10).astype(dt)[::2])


# ------------------------------------------------------------ log1p on [0, 1]
# flog1p_unit: log1p(e) for e = exp(-|x|) in [0, 1], the sigmoid losses' case.
# float32 is a short polynomial of its own (fl_log1p_unitf), float64 is flog1p.
# max |error| in ulps, measured on every 17th float32 of [0, 1]: 1.2992
MAX_ULP_UNIT = {np.float32: 1.31, np.float64: MAX_ULP["log1p"]}


@numba.njit(fastmath=FASTMATH)
def _nb_log1p_unit(x, out):
    for i in range(x.shape[0]):
        out[i] = flog1p_unit(x[i])


def _numba_log1p_unit(x):
    out = np.empty_like(x)
    _nb_log1p_unit(x, out)
    return out


UNIT_IMPLS = {"cython": cmath.log1p_unit, "numba": _numba_log1p_unit}


@functools.lru_cache(maxsize=None)
def unit_samples(dtype):
    """[0, 1] densely: float32 every 61st float (every binade, denormals),
    float64 uniform and log-uniform; both with runs at 0, 2^-24 / 2^-53 (where
    the polynomial's term starts to count), 1/2 (u = 0) and 1."""
    if dtype == np.float32:
        top = int(np.float32(1).view(np.uint32))
        parts = [np.arange(0, top + 1, 61, dtype=np.uint32).view(np.float32)]
    else:
        rng = np.random.default_rng(7)
        parts = [rng.uniform(0, 1, 1 << 18),
                 np.ldexp(rng.uniform(0.5, 1.0, 1 << 17), rng.integers(-1074, 1, 1 << 17))]
    eps = float(np.finfo(dtype).eps)
    ints = np.uint32 if dtype == np.float32 else np.uint64
    parts += [_run(v, 1 << 14, dtype) for v in (0.0, eps / 2, 0.5)]
    parts.append((np.array(1.0, dtype).view(ints) - np.arange(1 << 14, dtype=ints)).view(dtype))
    x = np.concatenate(parts).astype(dtype)
    hi, lo, x = reference("log1p", x)
    for a in (x, hi, lo):
        a.flags.writeable = False
    return x, hi, lo


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_log1p_unit_accuracy(backend, dt):
    x, hi, lo = unit_samples(dt)
    assert x.min() == 0 and x.max() == 1
    check_ulps("log1p", UNIT_IMPLS[backend], x, MAX_ULP_UNIT[dt], ref=(hi, lo, x))


def test_log1p_unit_bound_is_tight(dt):
    x, hi, lo = unit_samples(dt)
    worst = ulp_errors(UNIT_IMPLS["cython"](x), hi, lo, dt).max()
    assert 0.75 * MAX_ULP_UNIT[dt] < worst <= MAX_ULP_UNIT[dt]


def test_log1p_unit_backends_agree_bitwise(dt):
    x, _, _ = unit_samples(dt)
    a, b = UNIT_IMPLS["cython"](x), UNIT_IMPLS["numba"](x)
    ints = np.uint32 if dt == np.float32 else np.uint64
    assert np.array_equal(a.view(ints), b.view(ints))


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_log1p_unit_ends(backend, dt):
    """0 -> 0; e -> e to the last bit below sqrt(eps) (denormals too, where
    exp(-|x|) of a large |x| lands); NaN -> NaN; 1 -> log 2 rounded."""
    f = UNIT_IMPLS[backend]
    fi = np.finfo(dt)
    tiny = np.geomspace(fi.smallest_subnormal, fi.eps / 4, 3000).astype(dt)
    np.testing.assert_array_equal(f(tiny), tiny)
    got = f(np.array([0.0, np.nan, 1.0], dtype=dt))
    assert got[0] == 0 and np.isnan(got[1])
    assert abs(float(got[2]) - np.log(2)) <= float(np.spacing(dt(np.log(2))))

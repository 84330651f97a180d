"""The engine: backend choice, thread count, lazy Numba import, ``python -m fastloss``.

Anything about process start-up (environment variables, what ``import
fastloss`` imports, the default thread count) runs in a fresh interpreter.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE_VARS = ("FASTLOSS_BACKEND", "FASTLOSS_NUM_THREADS", "OMP_NUM_THREADS",
               "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_python(code, env_extra=None, args=None):
    """Run ``code`` (or ``python args...``) in a fresh interpreter that imports this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARS}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    cmd = [sys.executable] + (args if args is not None else ["-c", textwrap.dedent(code)])
    result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    return result


def check_python(code, env_extra=None):
    result = run_python(code, env_extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 4)), rng.integers(0, 4, 8)


# --------------------------------------------------------------------------- backends
def test_backends_tuple():
    assert fastloss.BACKENDS == ("cython", "numba")


def test_default_backend_is_cython():
    assert check_python("import fastloss; print(fastloss.get_backend())").strip() == "cython"


def test_set_and_get_backend():
    for name in fastloss.BACKENDS:
        fastloss.set_backend(name)
        assert fastloss.get_backend() == name
        x, y = _data()
        loss, grad = fastloss.cross_entropy(x, y)
        assert np.isfinite(loss) and grad.shape == x.shape


@pytest.mark.parametrize("bad", ["", "Numba ", "torch", "CYTHON2", None, 1])
def test_unknown_backend_is_a_value_error(bad):
    fastloss.set_backend("cython")
    with pytest.raises(ValueError, match="backend"):
        fastloss.set_backend(bad)
    assert fastloss.get_backend() == "cython"
    with pytest.raises(ValueError, match="backend"):
        with fastloss.use_backend(bad):
            pass  # pragma: no cover
    assert fastloss.get_backend() == "cython"


def test_use_backend_restores():
    fastloss.set_backend("cython")
    with fastloss.use_backend("numba") as name:
        assert name == "numba"
        assert fastloss.get_backend() == "numba"
        with fastloss.use_backend("cython"):
            assert fastloss.get_backend() == "cython"
        assert fastloss.get_backend() == "numba"
    assert fastloss.get_backend() == "cython"


def test_use_backend_restores_on_exception():
    fastloss.set_backend("numba")
    with pytest.raises(KeyError):
        with fastloss.use_backend("cython"):
            assert fastloss.get_backend() == "cython"
            raise KeyError("boom")
    assert fastloss.get_backend() == "numba"


@pytest.mark.parametrize("name", ["cython", "numba"])
def test_backend_environment_variable(name):
    out = check_python("import fastloss; print(fastloss.get_backend())",
                       {"FASTLOSS_BACKEND": name})
    assert out.strip() == name


def test_import_does_not_import_numba():
    out = check_python("""
        import sys
        import fastloss
        print('numba' in sys.modules, 'fastloss._numba._softmax' in sys.modules)
    """)
    assert out.split() == ["False", "False"]


def test_backend_option_overrides_the_global_choice():
    """Global "cython": a backend="numba" object loads the Numba kernels, the others do not.
    Global "numba" with Numba unimportable: backend="cython" objects still run (so the
    global choice was not consulted) while a default object fails to import Numba."""
    out = check_python("""
        import sys
        import numpy as np
        import fastloss
        x, y = np.random.default_rng(0).standard_normal((8, 4)), np.arange(8) % 4
        fastloss.set_backend("cython")
        fastloss.cross_entropy(x, y)
        fastloss.CrossEntropy().loss_grad(x, y)
        fastloss.softmax_focal_loss(x, y)
        print('numba' in sys.modules)
        fastloss.CrossEntropy(backend="numba").loss_grad(x, y)
        print('numba' in sys.modules)
    """)
    assert out.split() == ["False", "True"]
    out = check_python("""
        import sys
        sys.modules["numba"] = None  # `import numba` now raises ImportError
        import numpy as np
        import fastloss
        x, y = np.random.default_rng(0).standard_normal((8, 4)), np.arange(8) % 4
        fastloss.set_backend("numba")
        loss, grad = fastloss.CrossEntropy(backend="cython").loss_grad(x, y)
        loss2, grad2 = fastloss.cross_entropy(x, y, backend="cython")
        loss3 = fastloss.SoftmaxFocal(backend="cython").loss(x, y)
        print(np.isfinite(loss) and loss == loss2 and np.isfinite(loss3))
        try:
            fastloss.cross_entropy(x, y)
        except ImportError:
            print("global-numba-used")
    """)
    assert out.split() == ["True", "global-numba-used"]


def test_backend_option_overrides_use_backend():
    x, y = _data()
    with fastloss.use_backend("numba"):
        a = fastloss.CrossEntropy(backend="cython").loss_grad(x, y)
    b = fastloss.CrossEntropy(backend="cython").loss_grad(x, y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# --------------------------------------------------------------------------- threads
def test_default_threads_are_the_affinity():
    out = check_python("""
        import os, fastloss
        print(fastloss.get_num_threads(), len(os.sched_getaffinity(0)))
    """)
    got, expected = out.split()
    assert got == expected


def test_default_threads_follow_a_restricted_affinity():
    out = check_python("""
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import fastloss
        print(fastloss.get_num_threads())
    """)
    assert out.strip() == "1"


def test_set_and_get_num_threads():
    for n in (1, 2, 1):
        fastloss.set_num_threads(n)
        assert fastloss.get_num_threads() == n
        x, y = _data()
        for backend in fastloss.BACKENDS:
            loss, _ = fastloss.cross_entropy(x, y, backend=backend)
            assert np.isfinite(loss)
    fastloss.set_num_threads(np.int64(2))  # any integer type
    assert fastloss.get_num_threads() == 2


def test_num_threads_context_manager_restores():
    fastloss.set_num_threads(2)
    with fastloss.num_threads(1):
        assert fastloss.get_num_threads() == 1
    assert fastloss.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        with fastloss.num_threads(1):
            assert fastloss.get_num_threads() == 1
            raise RuntimeError("boom")
    assert fastloss.get_num_threads() == 2


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (-8, ValueError),
                                        (1.5, TypeError), (2.0, TypeError), ("2", TypeError),
                                        (None, TypeError)])
def test_invalid_thread_counts(bad, error):
    fastloss.set_num_threads(1)
    with pytest.raises(error):
        fastloss.set_num_threads(bad)
    with pytest.raises(error):
        with fastloss.num_threads(bad):
            pass  # pragma: no cover
    assert fastloss.get_num_threads() == 1


# --------------------------------------------------------------------------- python -m fastloss
def test_module_main_prints_the_version():
    result = run_python(None, args=["-m", "fastloss"])
    assert result.returncode == 0, result.stderr
    assert fastloss.__version__ in result.stdout
    assert isinstance(fastloss.__version__, str) and fastloss.__version__.count(".") >= 1


# --------------------------------------------------------------------------- vector width
def test_module_main_reports_the_vector_width():
    """Each compiled module says how wide its loops are; the elementwise and CTC
    kernels are never narrower than the softmax ones (setup.py widens only them)."""
    result = run_python(None, args=["-m", "fastloss"])
    assert result.returncode == 0, result.stderr
    bits = {}
    for line in result.stdout.splitlines():
        name, sep, rest = line.strip().partition(": ok, vectors up to ")
        if sep:
            bits[name] = int(rest.split()[0])
    assert set(bits) == {"_ctc", "_elementwise", "_pairwise", "_softmax"}, result.stdout
    assert set(bits.values()) <= {128, 256, 512}
    assert bits["_elementwise"] == bits["_ctc"] >= bits["_softmax"] == bits["_pairwise"]

"""Concurrency: many Python threads calling the losses at once, and the GIL.

* 8 threads call every loss of the registry, both backends, on shared
  read-only inputs: every result is bitwise identical to a serial call
  (the kernels keep no shared mutable state, and a result never depends on
  the thread count, which the threads vary on purpose).
* ``numba_threads(n)`` sets Numba's thread count for the calling thread only:
  a thread's setting survives other threads' calls.
* Whatever threading layer Numba picked (``workqueue`` is not thread-safe),
  concurrent calls neither crash nor deadlock: run in a fresh interpreter
  with each layer this machine has.
* The kernels release the GIL: another Python thread gets to count while a
  long kernel runs (no clock: a long switch interval makes the order decide),
  and does not when the kernels are swapped for ones that keep it.
"""
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading

import numba
import numpy as np
import pytest

import fastloss
from fastloss._registry import REGISTRY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_WORKERS = 8
REPEATS = 3

# Shapes large enough that threads_for() gives 2 threads to a kernel (>= 2 x 32768
# elements of work) yet a call stays around a millisecond.
SHAPES = {
    "softmax": (1024, 64),
    "elementwise": (256, 256),
    "pinball_loss": (16384, 4),
    "ctc": (40, 8, 12),
    "pairwise": (4096, 16),
    "margin_ranking_loss": (40000,),
}


def _shape(spec):
    return SHAPES.get(spec.name) or SHAPES[spec.family]


def _readonly(a):
    a = np.asarray(a)
    a.flags.writeable = False
    return a


def _inputs():
    """One shared, read-only (input, target-tuple) per loss."""
    data = {}
    for i, (name, spec) in enumerate(sorted(REGISTRY.items())):
        rng = np.random.default_rng(1000 + i)
        x, t = spec.make_data(rng, _shape(spec), np.float64)
        t = t if isinstance(t, tuple) else (t,)
        data[name] = (_readonly(x), tuple(_readonly(a) for a in t))
    return data


DATA = _inputs()


def _flat(result):
    """Every array of a result, in order (grads of pairwise losses are tuples)."""
    out = []
    for r in result if isinstance(result, tuple) else (result,):
        if isinstance(r, tuple):
            out.extend(_flat(r))
        else:
            out.append(np.asarray(r))
    return out


def _run(name, backend, method):
    spec = REGISTRY[name]
    x, t = DATA[name]
    obj = spec.cls(backend=backend)
    return _flat(getattr(obj, method)(x, *t))


def _tasks(backends):
    tasks = []
    for name, spec in sorted(REGISTRY.items()):
        for backend in backends:
            tasks.append((name, backend, "loss"))
            tasks.append((name, backend, "loss_grad"))
            if spec.has_hess:
                tasks.append((name, backend, "grad_hess"))
    return tasks


def _same(a, b):
    return (len(a) == len(b)
            and all(u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
                    for u, v in zip(a, b)))


def _check_concurrent(tasks):
    with fastloss.num_threads(1):
        expected = {task: _run(*task) for task in tasks}
    before = {name: [a.tobytes() for a in (x, *t)] for name, (x, t) in DATA.items()}

    def worker(k):
        # Each thread its own order and its own thread count (1 or 2): results
        # must not depend on either.
        order = list(tasks)
        np.random.default_rng(k).shuffle(order)
        bad = []
        with fastloss.num_threads(1 + k % 2):
            for _ in range(REPEATS):
                for task in order:
                    if not _same(_run(*task), expected[task]):
                        bad.append(task)
        return bad

    with concurrent.futures.ThreadPoolExecutor(N_WORKERS) as pool:
        results = list(pool.map(worker, range(N_WORKERS)))
    mismatches = sorted({task for bad in results for task in bad})
    assert not mismatches, f"results differ from serial calls: {mismatches}"
    after = {name: [a.tobytes() for a in (x, *t)] for name, (x, t) in DATA.items()}
    assert after == before, "an input was modified"


@pytest.mark.parametrize("backend", fastloss.BACKENDS)
def test_threads_match_serial(backend):
    """8 threads x every loss (loss, loss_grad, grad_hess) x one backend, bitwise."""
    _check_concurrent(_tasks([backend]))


def test_threads_mixed_backends():
    """Both backends at once from the same pool of threads."""
    _check_concurrent(_tasks(fastloss.BACKENDS))


def test_numba_threads_is_per_thread():
    """Numba's thread count set by a call in one thread is not another thread's."""
    x, (y,) = DATA["cross_entropy"]
    barrier = threading.Barrier(4)

    def worker(k):
        n = 1 + k % min(2, numba.config.NUMBA_NUM_THREADS)  # 1 and 2 where the pool allows
        seen = []
        with fastloss.num_threads(n):
            barrier.wait()
            for _ in range(20):
                fastloss.CrossEntropy(backend="numba").loss_grad(x, y)
                seen.append(numba.get_num_threads())
        return n, seen

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for n, seen in pool.map(worker, range(4)):
            assert seen == [n] * len(seen)


# --------------------------------------------------------------------------- layers
def _layers():
    """Numba threading layers importable here (tbb needs libtbb, omp an OpenMP runtime):
    only those are collected, so a layer this machine lacks is not a skipped test."""
    found = []
    for layer, module in (("tbb", "tbbpool"), ("omp", "omppool"), ("workqueue", "workqueue")):
        try:
            __import__(f"numba.np.ufunc.{module}")
        except Exception:  # ImportError, or OSError of a missing shared library
            continue
        found.append(layer)
    return found


@pytest.mark.parametrize("layer", ["default", *_layers()])
def test_threading_layers_concurrent(layer):
    """Concurrent Numba calls in a fresh interpreter under each threading layer.

    ``workqueue`` aborts the process ("Terminating: Nested parallel kernel
    launch detected ...") when two Python threads launch parallel kernels at
    once, unless fastloss serialises the launches.
    """
    code = textwrap.dedent("""
        import concurrent.futures, numba, numpy as np, fastloss
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1024, 64)); y = rng.integers(0, 64, 1024)
        r = rng.standard_normal((256, 256)); t = rng.standard_normal((256, 256))
        ce = fastloss.CrossEntropy(backend="numba"); mse = fastloss.MSE(backend="numba")
        ref = (ce.loss_grad(x, y), mse.loss_grad(r, t))
        def work(k):
            with fastloss.num_threads(1 + k % 2):
                for _ in range(40):
                    a = ce.loss_grad(x, y); b = mse.loss_grad(r, t)
                    assert a[0] == ref[0][0] and np.array_equal(a[1], ref[0][1])
                    assert b[0] == ref[1][0] and np.array_equal(b[1], ref[1][1])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))
        print(numba.threading_layer())
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-3000:])
    if layer != "default":
        assert result.stdout.strip() == layer


# --------------------------------------------------------------------------- the GIL
def _long_case(name, rng, k=1):
    """A float32 call of some 10-100 ms on one core (``k`` scales it down, for warm-up)."""
    if name == "cross_entropy":
        x = rng.standard_normal((20_000 // k, 200), dtype=np.float32)
        return x, (rng.integers(0, 200, 20_000 // k),)
    if name == "mse_loss":
        x = rng.standard_normal(4_000_000 // k, dtype=np.float32)
        return x, (rng.standard_normal(4_000_000 // k, dtype=np.float32),)
    if name == "ctc_loss":
        T, N, C, S = 1000 // k, 8, 64, 200 // k
        x = rng.standard_normal((T, N, C), dtype=np.float32)
        return x, (rng.integers(1, C, (N, S)), np.full(N, T), np.full(N, S))
    raise KeyError(name)


@numba.njit(nogil=False, cache=False)
def _spin(n):
    """A compiled loop that keeps the GIL (some 10 ms for n = 5e6)."""
    s = 0.0
    for i in range(n):
        s += np.sqrt(i + s * 1e-12)
    return s


CAP = 200_000


def _count_during_kernel(call, kernel_name, monkeypatch, hold=False):
    """How far a pure-Python loop counts (up to CAP) while another thread runs
    the kernel ``kernel_name`` inside ``call()``: the real one, or (``hold``) a
    stand-in that keeps the GIL.

    No clock: the switch interval is set far beyond any run, so a thread that
    holds the GIL keeps it until it blocks or releases it. The kernel module is
    wrapped so that the loop may start just as the kernel is entered and must
    stop once it returns (NumPy may release the GIL around it, in validation
    or in the reduction of the rows). Once the loop has the GIL it keeps it to
    CAP, and the kernel's thread waits: CAP if the kernel released the GIL,
    0 if it held it."""
    from fastloss import _backend
    started, state = threading.Event(), {"done": False}
    real = _backend.kernels

    class Kernels:
        def __init__(self, module):
            self._module = module

        def __getattr__(self, name):
            attr = getattr(self._module, name)
            if name != kernel_name:
                return attr

            def kernel(*args, **kwargs):
                started.set()
                try:
                    return _spin(5_000_000) if hold else attr(*args, **kwargs)
                finally:
                    state["done"] = True
            return kernel

    monkeypatch.setattr(_backend, "kernels", lambda *a, **k: Kernels(real(*a, **k)))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        thread = threading.Thread(target=call)
        thread.start()
        started.wait()
        count = 0
        while not state["done"] and count < CAP:
            count += 1
        thread.join()
    finally:
        sys.setswitchinterval(interval)
        monkeypatch.undo()
    return count


GIL_CASES = {"cross_entropy": "ce_hard", "mse_loss": "elementwise", "ctc_loss": "ctc"}


def _gil_case(name, backend):
    rng = np.random.default_rng(5)
    x, t = _long_case(name, rng)
    loss = REGISTRY[name].cls(backend=backend)
    xs, ts = _long_case(name, rng, 100)
    loss.loss_grad(xs, *ts)  # Numba compiles (holding the GIL) before the count
    _spin(10)
    return lambda: loss.loss_grad(x, *t)


@pytest.mark.parametrize("backend", fastloss.BACKENDS)
@pytest.mark.parametrize("name", sorted(GIL_CASES))
def test_kernel_releases_gil(name, backend, monkeypatch):
    with fastloss.num_threads(1):  # leave a core to the counting loop
        call = _gil_case(name, backend)
        assert _count_during_kernel(call, GIL_CASES[name], monkeypatch) == CAP


@pytest.mark.parametrize("backend", fastloss.BACKENDS)
@pytest.mark.parametrize("name", sorted(GIL_CASES))
def test_gil_harness_detects_a_held_gil(name, backend, monkeypatch):
    """The yardstick works, on the same calls: a kernel that keeps the GIL leaves
    the loop at 0."""
    with fastloss.num_threads(1):
        call = _gil_case(name, backend)
        assert _count_during_kernel(call, GIL_CASES[name], monkeypatch, hold=True) == 0


# --------------------------------------------------------------------------- buffers
@pytest.mark.parametrize("backend", fastloss.BACKENDS)
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_loss_is_bitwise_loss_grad(name, backend):
    """``loss`` equals ``loss_grad(...)[0]`` bit for bit: which buffers a call
    allocates (none for the gradient, in ``loss``) never changes the summation
    order. A Numba loop that also touches a buffer it does not need (an
    absent gradient, an empty weight) gets a runtime alias check, and its
    scalar fallback sums in another order whenever the allocator put the two
    within a block of each other: the kind of bug the threaded test found."""
    spec = REGISTRY[name]
    x, t = DATA[name]
    obj = spec.cls(backend=backend)
    loss = obj.loss(x, *t)
    assert np.asarray(loss).tobytes() == np.asarray(obj.loss_grad(x, *t)[0]).tobytes()

"""``python -m fastloss``: what this installation can do.

    python -m fastloss            version, backends, threads, CPU features
    python -m fastloss bench ...  forward + backward timings against the peers
                                  (see ``python -m fastloss bench --help``)

Nothing heavy is imported at module level: Numba is imported lazily by
:func:`info` only, and the benchmark imports its peers (PyTorch, JAX,
scikit-learn) inside worker processes that pin their CPUs first.
"""
import importlib
import os
import pkgutil
import platform
import sys

USAGE = """\
usage: python -m fastloss [info]        version, backends, threads, CPU features
       python -m fastloss bench [...]   benchmark against PyTorch, JAX/optax, scikit-learn
                                        (python -m fastloss bench --help)
"""

# SIMD flags worth reporting, in the order they are printed (Linux names).
SIMD_FLAGS = (
    "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "bmi2",
    "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma",
    "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "avx_vnni", "amx_tile", "sve", "sve2", "asimd", "neon",
)


def _cpuinfo():
    """(model name, set of flags) from /proc/cpuinfo; (None, None) elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None, None
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86 / aarch64
            flags = set(value.split())
    return model, flags


def _cython_status():
    """Lines describing the compiled extensions."""
    try:
        pkg = importlib.import_module("fastloss._cython")
    except Exception as exc:  # pragma: no cover - broken install
        return False, [f"fastloss._cython does not import: {exc!r}"], None
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__))
    if not names:
        return False, ["no compiled extension found (build with `pip install -e .`)"], None
    ok, lines, openmp = True, [], None
    for name in names:
        try:
            mod = importlib.import_module(f"fastloss._cython.{name}")
        except Exception as exc:
            ok = False
            lines.append(f"{name}: does not import: {exc!r}")
            continue
        bits = getattr(mod, "vector_bits", None)
        lines.append(f"{name}: ok" + (f", vectors up to {bits()} bits" if bits is not None else ""))
        probe = getattr(mod, "openmp_enabled", None)
        if probe is not None and openmp is None:
            try:
                openmp = bool(probe())
            except Exception:  # pragma: no cover
                openmp = None
    return ok, lines, openmp


def _numba_status():
    try:
        import numba
    except Exception as exc:
        return False, f"numba does not import: {exc!r}", None
    try:
        import llvmlite
        llvm_version = llvmlite.__version__
    except Exception:  # pragma: no cover
        llvm_version = "?"
    detail = f"numba {numba.__version__}, llvmlite {llvm_version}"
    try:
        importlib.import_module("fastloss._numba._softmax")
    except Exception as exc:
        return False, detail + f"; fastloss._numba kernels do not import: {exc!r}", numba
    try:
        layer = numba.config.THREADING_LAYER
        detail += f", threading layer {layer!r}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}"
    except Exception:  # pragma: no cover
        pass
    return True, detail, numba


def _llvm_host():
    """(cpu name, sorted enabled features) as LLVM (and so Numba) sees them."""
    try:
        import llvmlite.binding as llvm
        name = llvm.get_host_cpu_name()
        feats = llvm.get_host_cpu_features()
        enabled = sorted(k for k, v in feats.items() if v)
        return name, enabled
    except Exception:
        return None, None


def info(file=None):
    file = file or sys.stdout
    import fastloss

    def p(*args):
        print(*args, file=file)

    location = os.path.dirname(os.path.abspath(fastloss.__file__))
    p(f"fastloss {fastloss.__version__}  ({location})")
    import numpy as np
    p(f"python {platform.python_version()} ({platform.python_implementation()}), numpy {np.__version__}, "
      f"{platform.system()} {platform.machine()}")

    get_backend = getattr(fastloss, "get_backend", None)
    default = get_backend() if get_backend else "?"
    p(f"backends (default: {default!r}; choose with set_backend / use_backend / FASTLOSS_BACKEND / backend=):")
    ok, lines, openmp = _cython_status()
    omp = {True: "yes", False: "no (kernels run serially)", None: "unknown"}[openmp]
    p(f"  cython  {'ok' if ok else 'BROKEN'}; OpenMP compiled in: {omp}")
    for line in lines:
        p(f"          {line}")
    nok, ndetail, numba = _numba_status()
    p(f"  numba   {'ok' if nok else 'BROKEN'}; {ndetail}")

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = None
    try:
        threads = fastloss.get_num_threads()
    except Exception as exc:
        threads = f"? ({exc!r})"
    p(f"threads: {threads} (fastloss.get_num_threads(); CPUs usable by this process: "
      f"{affinity if affinity is not None else '?'} of {os.cpu_count()})")

    model, flags = _cpuinfo()
    if model:
        p(f"cpu: {model}")
    if flags is not None:
        present = [f for f in SIMD_FLAGS if f in flags]
        p("simd (/proc/cpuinfo): " + (" ".join(present) if present else "none of the known flags"))
    else:
        p("simd (/proc/cpuinfo): not available on this platform")
    if numba is not None:
        name, enabled = _llvm_host()
        if name:
            simd = [f for f in enabled if f.startswith(("sse", "avx", "fma", "f16c", "neon", "sve"))]
            p(f"llvm host cpu (Numba target): {name}; " + " ".join(simd))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "info":
        return info()
    if argv[0] == "bench":
        from fastloss import _bench
        return _bench.main(argv[1:])
    if argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] in ("-V", "--version"):
        import fastloss
        print(fastloss.__version__)
        return 0
    print(USAGE, end="", file=sys.stderr)
    print(f"python -m fastloss: unknown command {argv[0]!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

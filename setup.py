"""Build the Cython kernels.

One directives dict for every extension; OpenMP when the compiler has it
(probed by compiling a one-line program), a serial build when it does not.
Source builds target the host CPU (``-march=native``), as Numba does; set
``FASTLOSS_PORTABLE=1`` to build for the x86-64-v3 baseline (AVX2 + FMA)
instead, e.g. for wheels. On a CPU with AVX-512 the elementwise and CTC
loops use 512-bit vectors (``FASTLOSS_VECTOR_WIDTH=256`` keeps GCC's default).
"""
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,  # validation proves every index in range first
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "cpow": True,
    "freethreading_compatible": True,
}

# Floating-point flags: reductions vectorise (-fassociative-math) and
# multiply-adds contract into FMAs, while NaN and inf keep their IEEE meaning
# (no -ffinite-math-only, so never plain -ffast-math). GCC may round a loop's
# vector body and its scalar remainder differently (contraction), so which
# elements take which path must not depend on where NumPy put the arrays:
# no peeling or versioning for alignment. Then a result depends only on the
# data and the sizes, never on the addresses or the thread count.
FP_FLAGS = [
    "-fno-math-errno",
    "-fno-signed-zeros",
    "-fno-trapping-math",
    "-fassociative-math",
    "-ffp-contract=fast",
    "--param=vect-max-peeling-for-alignment=0",
    "--param=vect-max-version-for-alignment-checks=0",
    # A point loop reads up to four arrays and writes three, all pointers GCC
    # cannot tell apart: it vectorises behind a runtime overlap test of each
    # pair, more pairs than its default limit of 10. (Outputs never overlap
    # inputs, so the vector version is the one that runs.)
    "--param=vect-max-version-for-alias-checks=30",
    # The point functions are called from several specialised loops; GCC's
    # default budgets (per function, and 40% growth of the whole unit) would
    # stop inlining them, and a call in a loop does not vectorise.
    "--param=max-inline-insns-single=1000",
    "--param=inline-unit-growth=1000",
    "--param=large-function-growth=100000",
]


def _compiles(flags, code="int main(void){return 0;}\n"):
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        cmd = cc.split() + [src, "-o", os.path.join(tmp, "probe")] + flags
        return subprocess.run(cmd, capture_output=True).returncode == 0


def _flags():
    # Only the flags this compiler knows (the --params are GCC's).
    compile_args = ["-O3", "-fno-strict-aliasing"] + [f for f in FP_FLAGS if _compiles([f])]
    link_args = []
    if os.environ.get("FASTLOSS_BOUNDSCHECK"):
        DIRECTIVES.update(boundscheck=True, wraparound=False)
    march = "-march=x86-64-v3" if os.environ.get("FASTLOSS_PORTABLE") else "-march=native"
    if _compiles([march]):
        compile_args.append(march)
    omp = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n"
    if not os.environ.get("FASTLOSS_NO_OPENMP") and _compiles(["-fopenmp"], omp):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        print("fastloss: building without OpenMP (kernels run serially)", file=sys.stderr)
    return compile_args, link_args


# GCC tunes Intel's AVX-512 CPUs for 256-bit vectors (older ones lower their
# clock under 512-bit code). The long loops of exp, log and divisions of the
# elementwise and CTC kernels ran 1.3-1.6x faster with 512-bit ones on a
# Sapphire Rapids core. A softmax row is often short (C = 2 to 100): with 16
# lanes more of it runs in the scalar remainder, and C = 10 to 40 ran 1.8x
# slower, so the softmax and pairwise kernels keep GCC's choice. Without
# AVX-512 the flag changes nothing.
WIDE = ("_elementwise", "_ctc")


def _widen():
    width = os.environ.get("FASTLOSS_VECTOR_WIDTH") or "512"
    if width not in ("256", "512"):
        raise SystemExit(f"FASTLOSS_VECTOR_WIDTH: must be 256 or 512, got {width!r}")
    return width == "512" and _compiles(["-mprefer-vector-width=512"])


def _width_args(name, widen):
    wide = widen and name in WIDE
    # FL_PREFER_512 tells fl_vector_bits() (python -m fastloss prints it)
    return (["-mprefer-vector-width=512"] if wide else []) + [f"-DFL_PREFER_512={int(wide)}"]


compile_args, link_args = _flags()
widen = _widen()
extensions = [
    Extension(
        "fastloss._cython." + name,
        [path],
        include_dirs=[np.get_include(), "fastloss/_cython"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
        extra_compile_args=compile_args + _width_args(name, widen),
        extra_link_args=link_args,
    )
    for path in sorted(glob.glob("fastloss/_cython/*.pyx"))
    for name in [os.path.splitext(os.path.basename(path))[0]]
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, nthreads=2))

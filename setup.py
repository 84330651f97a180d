"""Build the Cython kernels.

One directives dict for every extension; OpenMP when the compiler has it
(probed by compiling a one-line program), a serial build when it does not.
Source builds target the host CPU (``-march=native``), as Numba does; set
``FASTLOSS_PORTABLE=1`` to build for the x86-64-v3 baseline (AVX2 + FMA)
instead, e.g. for wheels.
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

# Floating-point flags: reductions vectorise (-fassociative-math), while NaN
# and inf keep their IEEE meaning (no -ffinite-math-only, so never plain
# -ffast-math). No implicit contraction into FMAs and no reciprocals: GCC
# makes those choices differently in a loop's vector body and its scalar
# remainder, and which elements land in which depends on the alignment of
# the arrays, so a result would change with where NumPy put the data. The
# exp/log code (fl_math.h) writes its FMAs explicitly.
FP_FLAGS = [
    "-fno-math-errno",
    "-fno-signed-zeros",
    "-fno-trapping-math",
    "-fassociative-math",
    "-ffp-contract=off",
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
    compile_args = ["-O3", "-fno-strict-aliasing"] + FP_FLAGS
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


compile_args, link_args = _flags()
extensions = [
    Extension(
        "fastloss._cython." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[np.get_include(), "fastloss/_cython"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob.glob("fastloss/_cython/*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, nthreads=2))

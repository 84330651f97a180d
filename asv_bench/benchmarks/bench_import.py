"""Import fastloss and make one cross_entropy call, in a fresh process.

(``DATA_CODE`` is not named ``SETUP``: asv matches ``setup`` case-insensitively.)

With the Numba backend this is dominated by loading the cached kernels (the
first run of a fresh cache compiles them; asv's later repeats see a warm
cache). The Cython backend needs no warm-up.
"""
from .common import BACKENDS

DATA_CODE = """
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((256, 100), dtype=np.float32)
y = rng.integers(0, 100, 256)
"""


class ImportFirstCall:
    params = [BACKENDS]
    param_names = ["backend"]
    timeout = 300
    repeat = (3, 10, 60.0)

    def timeraw_import_and_first_call(self, backend):
        code = f"""
import fastloss
fastloss.cross_entropy(x, y, backend={backend!r})
"""
        return code, DATA_CODE

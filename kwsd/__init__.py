"""kwsd: a streaming keyword-spotting daemon for Raspberry Pi and other edge Linux devices."""

import os

# kwsd's matrix products are tiny (a stride's few MFCC frames): a second OpenBLAS thread gains
# nothing and spins between them, which cost `kwsd run --input` 45% more CPU on a 2-core machine
# (bench/RESULTS.md, "One BLAS thread"). Set before numpy loads OpenBLAS; the user's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

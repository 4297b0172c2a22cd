"""The CPU that a figure or a trained model came from.

Both depend on it. The same int8 model took 131 µs per invoke on one day's machine and 258 µs on
another's (bench/RESULTS.md, sixth session). And TensorFlow picks its training kernels by the
instruction set at run time, so the same seed trains another network on another CPU
(models/README.md, "The same seed on another machine is another network"): a training report
that names its CPU says whether another run can match it bit for bit."""

from __future__ import annotations

import platform

# the SIMD extensions that int8 invokes and TensorFlow's kernels choose between
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp")


def cpu() -> dict:
    """``{"machine": "x86_64", "model": "...", "simd": ["avx2", ...]}`` from /proc/cpuinfo
    (x86 names the CPU in "model name", ARM in "Model"); "unknown CPU" where it cannot be read."""
    name, flags = "unknown CPU", set[str]()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and name == "unknown CPU":
                    name = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"machine": platform.machine(), "model": name, "simd": [f for f in SIMD_FLAGS if f in flags]}


def cpu_description() -> str:
    """One line for a benchmark's header: the model name and its SIMD extensions."""
    c = cpu()
    return f"{c['model']} ({', '.join(c['simd']) or 'no AVX2/AVX-512/NEON flags listed'})"

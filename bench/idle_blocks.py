"""Where kwsd's idle CPU goes: the capture path alone against kwsd, by audio block size.

    .venv/bin/python bench/idle_blocks.py [--repeats 3] [--seconds 20]

On a private PulseAudio server with a silent null source (as bench/live.py), measures the CPU
share of one core (utime+stime from /proc) of (a) a bare sounddevice InputStream on device
'pulse' at 16 kHz whose callback only copies the block, and (b) ``kwsd run`` with
``audio.block_ms`` 20, 40 and 80, and (c) ``kwsd run`` at 80 ms with the silence gate turned off
(``inference.silence_gate_dbfs: null``): the null source is digital silence, so by default the gate
skips the model; (c) is what a microphone in a room above the gate's level costs.
Each after 6 s of warm-up, median of the repeats.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live import ROOT, cpu_seconds, start_pulse  # noqa: E402

BARE_CAPTURE = """
import sys, time
import numpy as np
import sounddevice as sd
buf = np.zeros(16000, np.float32)
def callback(indata, frames, when, status):
    buf[:frames] = indata[:, 0]
with sd.InputStream(device="pulse", samplerate=16000, blocksize=int(sys.argv[1]), channels=1,
                    dtype="float32", callback=callback):
    time.sleep(3600)
"""


def core_share(argv: list[str], env: dict, seconds: float) -> float:
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6.0)
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        return 100 * (cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--blocks", default="20,40,80", help="block sizes to measure, ms")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kwsd-idle-"))
    (tmp / "pulse").mkdir()
    pulse, env = start_pulse(tmp / "pulse")
    results: dict[str, list[float]] = {}
    try:
        for _ in range(args.repeats):
            for block_ms in (int(b) for b in args.blocks.split(",")):
                bare = [sys.executable, "-c", BARE_CAPTURE, str(16 * block_ms)]
                results.setdefault(f"bare capture, {block_ms} ms blocks", []).append(
                    core_share(bare, env, args.seconds)
                )
                config = tmp / f"block{block_ms}.yaml"
                config.write_text(f"audio:\n  device: pulse\n  block_ms: {block_ms}\n")
                kwsd = [sys.executable, "-m", "kwsd", "run", "--config", str(config)]
                results.setdefault(f"kwsd run, block_ms {block_ms}", []).append(core_share(kwsd, env, args.seconds))
            ungated = tmp / "ungated.yaml"
            ungated.write_text("audio:\n  device: pulse\n  block_ms: 80\ninference:\n  silence_gate_dbfs: null\n")
            kwsd = [sys.executable, "-m", "kwsd", "run", "--config", str(ungated)]
            results.setdefault("kwsd run, block_ms 80, silence gate off", []).append(
                core_share(kwsd, env, args.seconds)
            )
    finally:
        pulse.terminate()
        pulse.wait(10)
    for name, shares in results.items():
        each = ", ".join(f"{s:.2f}" for s in shares)
        print(f"{name}: median {statistics.median(shares):.2f}% of one core ({each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

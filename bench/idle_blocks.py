"""Where kwsd's idle CPU goes: the capture path alone against kwsd, by audio block size.

    .venv/bin/python bench/idle_blocks.py [--repeats 3] [--seconds 20]

On a private PulseAudio server with a silent null source (as bench/live.py), measures the CPU
share of one core (utime+stime from /proc) of (a) a bare sounddevice InputStream on device
'pulse' at 16 kHz whose callback only copies the block, and (b) ``kwsd run`` with
``audio.block_ms`` 20, 40 and 80, and (c) ``kwsd run`` at 80 ms with the silence gate turned off
(``inference.silence_gate_dbfs: null``): the null source is digital silence, so by default the gate
skips the model; (c) is what a microphone in a room above the gate's level costs.
Each after 6 s of warm-up, median of the repeats. ``--baseline DIR`` measures another checkout's
kwsd rows in turn with these: idle figures move from run to run, so compare a change within one run.
"""

from __future__ import annotations

import argparse
import os
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


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (kwsd names its worker 'kwsd-worker' in the kernel too)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def core_share(argv: list[str], env: dict, seconds: float, tree: Path = ROOT) -> tuple[float, float]:
    """CPU share of one core of ``argv`` run from the checkout ``tree`` (its kwsd package first on
    the path), and the share of its thread named kwsd-worker."""
    env = {**env, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(argv, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6.0)
        c0, t0, w0 = cpu_seconds(proc.pid), thread_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1, wall = cpu_seconds(proc.pid), thread_seconds(proc.pid), time.monotonic() - w0
        worker = t1.get("kwsd-worker", 0.0) - t0.get("kwsd-worker", 0.0)
        return 100 * (c1 - c0) / wall, 100 * worker / wall
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--blocks", default="20,40,80", help="block sizes to measure, ms")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. 'git worktree add /tmp/base HEAD~1'): its kwsd run rows are measured "
        "in turn with this checkout's, so that a change is compared within one run",
    )
    args = ap.parse_args()
    trees = {"": ROOT, **({" (baseline)": args.baseline.resolve()} if args.baseline else {})}
    tmp = Path(tempfile.mkdtemp(prefix="kwsd-idle-"))
    (tmp / "pulse").mkdir()
    pulse, env = start_pulse(tmp / "pulse")
    results: dict[str, list[tuple[float, float]]] = {}
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
                for label, tree in trees.items():
                    results.setdefault(f"kwsd run{label}, block_ms {block_ms}", []).append(
                        core_share(kwsd, env, args.seconds, tree)
                    )
            ungated = tmp / "ungated.yaml"
            ungated.write_text("audio:\n  device: pulse\n  block_ms: 80\ninference:\n  silence_gate_dbfs: null\n")
            kwsd = [sys.executable, "-m", "kwsd", "run", "--config", str(ungated)]
            for label, tree in trees.items():
                results.setdefault(f"kwsd run{label}, block_ms 80, silence gate off", []).append(
                    core_share(kwsd, env, args.seconds, tree)
                )
    finally:
        pulse.terminate()
        pulse.wait(10)
    for name, pairs in results.items():
        shares, workers = [p[0] for p in pairs], [p[1] for p in pairs]
        each = ", ".join(f"{s:.2f}" for s in shares)
        line = f"{name}: median {statistics.median(shares):.2f}% of one core ({each})"
        if any(workers):  # kwsd rows: its worker thread (features, model, smoother) on its own
            line += f"; worker thread {statistics.median(workers):.2f}% ({', '.join(f'{w:.2f}' for w in workers)})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

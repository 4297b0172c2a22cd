"""Soak test: kwsd on a long recording, twice; detections must be identical and memory flat.

    .venv/bin/python bench/soak.py --minutes 120 runs/eval/*.wav          # as fast as the CPU allows
    .venv/bin/python bench/soak.py --minutes 120 --realtime runs/eval/*.wav  # two hours per run

The recordings given are concatenated (16 kHz mono, 16-bit, written block by block) up to
``--minutes`` into ``--work``; ``kwsd run --input`` processes the file twice while this
script reads the process's resident memory (VmRSS) once a second.  Reported: detections
per run and whether both runs agree exactly, peak RSS, and RSS growth (the median of the
last tenth of the run minus the median of the second tenth, so start-up is excluded).
Targets (issue "faults and bad input"): identical detections, growth <= 5 MB, peak <= 60 MB.
Not part of CI: it takes minutes (hours with --realtime).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kwsd.wavfile import WavReader  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure, rss_mb  # noqa: E402


def build_recording(sources: list[str], minutes: float, out: Path) -> float:
    """Concatenate ``sources`` (looping over them) into a 16 kHz 16-bit WAV of ``minutes``."""
    from scipy.signal import resample_poly

    want = int(minutes * 60 * 16000)
    written = 0
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        while written < want:
            for path in sources:
                with WavReader(path) as r:
                    for block in r.blocks(1 << 16):
                        if r.rate != 16000:
                            block = resample_poly(block, 16000, r.rate).astype(np.float32)
                        block = block[: want - written]
                        w.writeframes(np.clip(np.round(block * 32768), -32768, 32767).astype("<i2").tobytes())
                        written += len(block)
                        if written >= want:
                            return written / 16000
    return written / 16000


def run_once(recording: Path, realtime: bool) -> dict:
    cmd = [sys.executable, "-m", "kwsd", "run", "--input", str(recording), "--json"] + (
        ["--realtime"] if realtime else []
    )
    samples: list[float] = []
    done = threading.Event()

    def sample(helper_pid: int):  # the command is the helper's only child
        while not done.is_set():
            try:
                child = int(Path(f"/proc/{helper_pid}/task/{helper_pid}/children").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                child = None
            value = rss_mb(child) if child else None
            if value is not None:
                samples.append(value)
            time.sleep(0.5)

    def on_start(pid):
        threading.Thread(target=sample, args=(pid,), daemon=True).start()

    figures = measure(cmd, cwd=ROOT, on_start=on_start)
    done.set()
    if figures["exit"] != 0:
        raise SystemExit(f"kwsd exited {figures['exit']}: {figures['stderr'][-2000:]}")
    detections = [json.loads(line) for line in figures["stdout"].splitlines() if line.strip()]
    tenth = len(samples) // 10
    growth = statistics.median(samples[-tenth:]) - statistics.median(samples[tenth : 2 * tenth]) if tenth else 0.0
    return {
        "seconds": figures["wall_s"],
        "detections": detections,
        "peak_rss_mb": figures["peak_rss_mb"],
        "growth_mb": growth,
        "rss_samples": len(samples),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recordings", nargs="+", help="WAV files to concatenate")
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--realtime", action="store_true", help="pace the file at real time (hours)")
    ap.add_argument("--work", default="runs/soak", help="folder for the long recording")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recording = work / f"soak_{args.minutes:g}min.wav"
    if not recording.exists():
        seconds = build_recording(args.recordings, args.minutes, recording)
        print(f"wrote {recording} ({seconds / 60:.1f} min)", flush=True)
    runs = [run_once(recording, args.realtime) for _ in range(2)]
    key = [[(d["keyword"], d["audio_ms"], d["score"], d["model"]) for d in r["detections"]] for r in runs]
    print("| run | wall s | detections | peak RSS MB | RSS growth MB |\n|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(f"| {i} | {r['seconds']:.0f} | {len(r['detections'])} | {r['peak_rss_mb']:.1f} | {r['growth_mb']:+.1f} |")
    same = key[0] == key[1]
    print(f"detections identical over both runs: {'yes' if same else 'NO'}")
    ok = same and all(r["growth_mb"] <= 5 for r in runs)
    print(
        f"targets: identical {'met' if same else 'MISSED'}; growth <= 5 MB "
        f"{'met' if all(r['growth_mb'] <= 5 for r in runs) else 'MISSED'}; peak <= 60 MB "
        f"{'met' if all(r['peak_rss_mb'] <= 60 for r in runs) else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-stride CPU cost of the streaming pipeline, and the daemon's CPU and memory on a recording.

    python bench/bench_stride.py [--model models/default.tflite] [--backend auto]

Measures, on one core with the real code paths:
- features: StreamingMfcc.push of one clip stride (the model's recommended stride, else 40 ms;
  ``--stride-ms`` to choose) -- median of 2,000
- inference: KeywordModel.scores on each new feature window (quantise, invoke, dequantise; a
  streaming model's one step) -- median of 2,000
- smoother: RecognizeCommands.process -- median of 2,000
- a quiet room: Pipeline.process of one stride of -80 dBFS noise, the silence gate shut -- median of 2,000
- the whole worker: `kwsd run --input` on 60 s of audio, CPU seconds per audio second and peak RSS
Results are printed as a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kwsd.features import MfccFrontend, StreamingMfcc  # noqa: E402
from kwsd.machine import cpu_description  # noqa: E402
from kwsd.model import KeywordModel, recommended_stride_ms  # noqa: E402
from kwsd.pipeline import Pipeline  # noqa: E402
from kwsd.recognize import RecognizeCommands  # noqa: E402
from kwsd.wavfile import read_wav, write_wav  # noqa: E402


def median_us(fn, runs=2000):
    for _ in range(50):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def consecutive_scores_us(model, stream, next_stride, runs=2000):
    """Median time of ``model.scores`` on each new window, one stride after the last (a
    streaming model steps once; the same window again would make it rebuild its state)."""
    times = []
    for i in range(runs + 50):
        next_stride()
        t0 = time.perf_counter_ns()
        model.scores(stream.window)
        if i >= 50:
            times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def stride_by_stride(audio, stride: int, consume, start: int = 0):
    """A function that gives ``consume`` the next stride of ``audio`` on each call, wrapping round."""
    pos = [start]

    def step():
        i = pos[0] % (len(audio) - stride)
        consume(audio[i : i + stride])
        pos[0] += stride

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "default.tflite"))
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--stride-ms", type=int, help="clip stride (default: the model's recommended one, else 40)")
    args = ap.parse_args()

    model = KeywordModel.load(args.model, backend=args.backend)
    stride_ms = args.stride_ms or recommended_stride_ms(model.metadata) or 40
    stride = model.frontend.sample_rate * stride_ms // 1000
    frames = stride_ms // int(model.frontend.window_stride_ms)
    audio, _ = read_wav(str(ROOT / "models" / "sample.wav"))
    stream = StreamingMfcc(MfccFrontend(model.frontend))
    stream.push(audio[:16000])
    feat_us = median_us(stride_by_stride(audio, stride, stream.push, start=16000))
    infer_us = consecutive_scores_us(model, stream, stride_by_stride(audio, stride, stream.push, start=16000))
    rc = RecognizeCommands(model.labels, 500, 0.7, 1500, 3)
    scores = model.scores(stream.window)
    t = [0]

    def smooth():
        t[0] += stride_ms
        rc.process(scores, t[0])

    smooth_us = median_us(smooth)

    # a quiet room (-80 dBFS): the silence gate is shut, the whole Pipeline.process of one stride
    quiet_pipeline = Pipeline([model], model.frontend.sample_rate, clip_stride_ms=stride_ms)
    room = np.random.default_rng(0).normal(0, 1e-4, 16000 * 10).astype(np.float32)
    quiet_pipeline.process(room[: 16000 * 2])
    quiet_us = median_us(stride_by_stride(room, stride, quiet_pipeline.process))
    assert quiet_pipeline.stats.gated > 0

    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "60s.wav"
        write_wav(str(long), np.tile(audio, 6)[: 60 * 16000], 16000)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "kwsd", "run", "--model", args.model, "--input", str(long)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rss_mb = after.ru_maxrss / 1024

    print(
        f"machine: {platform.machine()}, {cpu_description()}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"backend {model.backend}, model {Path(args.model).name} ({Path(args.model).stat().st_size} bytes)\n"
    )
    print(f"| per {stride_ms} ms stride | median µs |\n|---|---|")
    print(f"| features ({frames} new MFCC frames) | {feat_us:.1f} |")
    print(f"| inference (quantise + invoke + dequantise) | {infer_us:.1f} |")
    print(f"| smoother (RecognizeCommands) | {smooth_us:.1f} |")
    total = feat_us + infer_us + smooth_us
    print(f"| total | {total:.1f} ({total / (stride_ms * 1000):.2%} of one core in real time) |")
    print(f"| a quiet room's stride, whole pipeline (silence gate shut) | {quiet_us:.1f} |\n")
    print(
        f"`kwsd run --input` on 60 s of audio: {wall:.2f} s wall including start-up, "
        f"{cpu:.2f} CPU s ({cpu / 60:.2%} of one core per audio second, start-up included), "
        f"peak RSS {rss_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()

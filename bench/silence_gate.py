"""Does the silence gate cost detections?  The same streams with and without it, at several levels.

    .venv/bin/python bench/silence_gate.py runs/eval/kw_val.wav [more.wav ...] \
        [--model M] [--gains 0,-20,-30,-40] [--levels none,-70,-60,-50]

Each stream (with its truth file, if any) is turned down by each gain and run through the
pipeline of ``kwsd run`` with the gate off and at each level.  Printed per run: the share of
strides on which the gate skipped the model, the false-reject rate and false accepts, and
whether the detections (keyword and time) are exactly those of the run without the gate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kwsd.model import KeywordModel  # noqa: E402
from kwsd.pipeline import Pipeline  # noqa: E402
from kwsd.streams import match, read_truth, truth_path  # noqa: E402
from kwsd.wavfile import read_wav  # noqa: E402


def run(model: KeywordModel, audio: np.ndarray, rate: int, level: float | None):
    pipeline = Pipeline([model], rate, silence_gate_dbfs=level)
    found = []
    for i in range(0, len(audio), rate // 4):
        found += pipeline.process(audio[i : i + rate // 4])
    return found + pipeline.finish(), pipeline.stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wavs", nargs="+")
    ap.add_argument("--model", default=str(ROOT / "models" / "default.tflite"))
    ap.add_argument("--gains", default="0,-20,-30,-40", help="dB")
    ap.add_argument("--levels", default="none,-70,-60,-50", help="gate levels, dBFS; none = off")
    args = ap.parse_args()
    model = KeywordModel.load(args.model)
    levels = [None if x == "none" else float(x) for x in args.levels.split(",")]
    for wav in args.wavs:
        audio, rate = read_wav(wav)
        truth = read_truth(truth_path(wav)) if truth_path(wav).exists() else []
        for gain in (float(g) for g in args.gains.split(",")):
            x = audio * np.float32(10 ** (gain / 20))
            ungated = None
            for level in levels:
                found, stats = run(model, x, rate, level)
                figures = match(found, truth, model.keywords, len(x) / rate / 3600).summary()
                key = [(d.keyword, d.audio_ms) for d in found]
                ungated = key if ungated is None else ungated
                frr = figures["false_reject_rate"]
                print(
                    f"{Path(wav).name} gain {gain:+.0f} dB, gate {level if level is not None else 'off'}: "
                    f"skipped {stats.gated / max(1, stats.strides):.1%} of strides, "
                    f"FRR {'n/a' if frr is None else f'{frr:.1%}'}, false accepts {figures['false_accepts']}, "
                    f"same detections as without the gate: {key == ungated}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A ds_cnn_stream step file with untrained weights, to measure what streaming costs.

    python bench/make_step_file.py OUT.tflite      # needs the [train] extra (TensorFlow)
    python bench/bench_stride.py --model OUT.tflite

A step network's cost does not depend on its weights, so this measures it before a trained
one is good enough to ship (bench/RESULTS.md, "Eighth session"). The file carries the bundled
model's metadata (labels, frontend, recommended settings) with the ``streaming`` record that
``kwsd.train.streaming`` writes; it detects nothing useful.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kwsd.model import pack_model, unpack_model  # noqa: E402
from kwsd.train.architectures import build_model  # noqa: E402
from kwsd.train.streaming import to_streaming_tflite  # noqa: E402


def main(out: str) -> int:
    _, meta = unpack_model((ROOT / "models" / "default.tflite").read_bytes())
    meta.pop("format_version", None)
    rng = np.random.default_rng(0)
    model = build_model("ds_cnn_stream", (49, 13), len(meta["labels"]), mean=np.zeros(13), variance=np.ones(13))
    windows = rng.normal(size=(64, 49, 13)).astype(np.float32)
    flatbuffer, meta["streaming"] = to_streaming_tflite(model, windows, 4)
    Path(out).write_bytes(pack_model(flatbuffer, meta))
    print(f"wrote {out} ({Path(out).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))

"""``kwsd label``: the top three labels of short clips, like TensorFlow's label_wav.py.

A clip is run through the same pipeline as a stream (resampling, streaming MFCC,
model) and labelled by the first full window: the clip's first second, zero-padded
when shorter.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from .errors import KwsdError
from .model import KeywordModel
from .pipeline import Pipeline
from .resources import default_model
from .wavfile import read_wav


def clip_scores(model: KeywordModel, audio: np.ndarray, rate: int) -> np.ndarray:
    """The model's scores for the first window of ``audio``."""
    first: list[np.ndarray] = []

    def keep(_model, _ms, scores):
        if not first:
            first.append(scores)

    # the model's own opinion on every stride: no gate
    pipeline = Pipeline([model], rate, on_scores=keep, silence_gate_dbfs=None, score_gate=None)
    pipeline.process(audio)
    if not first:
        pipeline.finish()  # pads a short clip with silence, as TensorFlow's clips are padded
    if not first:  # a clip of a few ms: the padding ended short of the first window's last stride
        pipeline.process(np.zeros(rate * model.frontend.clip_duration_ms // 1000, np.float32))
    return first[0]


def label_clip(model: KeywordModel, audio: np.ndarray, rate: int, top: int = 3):
    """The ``top`` labels of the first window, best first."""
    scores = clip_scores(model, audio, rate)
    order = np.argsort(scores)[::-1][:top]
    return [(model.labels[i], float(scores[i])) for i in order]


def label_files(files, model_path=None, as_json=False) -> int:
    model = KeywordModel.load(model_path or default_model())
    failed = 0
    for f in files:
        try:
            audio, rate = read_wav(f, max_seconds=600)  # clips; an hour-long file is a mistake
        except KwsdError as e:
            print(f"kwsd: error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        top = label_clip(model, audio, rate)
        if as_json:
            print(
                json.dumps(
                    {
                        "file": f,
                        "label": top[0][0],
                        "score": round(top[0][1], 4),
                        "top": [[k, round(v, 4)] for k, v in top],
                    }
                ),
                flush=True,
            )
        else:
            print(f"{f}: " + ", ".join(f"{k} ({v:.2f})" for k, v in top), flush=True)
    return 1 if failed else 0

"""``kwsd label``: the top three labels of short clips, like TensorFlow's label_wav.py."""
from __future__ import annotations

import json
import sys

import numpy as np

from .audio import read_wav, resample
from .errors import KwsdError
from .features import MfccFrontend
from .model import KeywordModel
from .resources import default_model


def label_clip(model: KeywordModel, frontend: MfccFrontend, audio: np.ndarray, rate: int, top: int = 3):
    """Scores of the first clip (zero-padded when shorter), best first."""
    audio = resample(audio, rate, model.frontend.sample_rate)
    scores = model.scores(frontend.clip_features(audio))
    order = np.argsort(scores)[::-1][:top]
    return [(model.labels[i], float(scores[i])) for i in order]


def label_files(files, model_path=None, as_json=False) -> int:
    model = KeywordModel.load(model_path or default_model())
    frontend = MfccFrontend(model.frontend)
    failed = 0
    for f in files:
        try:
            audio, rate = read_wav(f)
        except KwsdError as e:
            print(f"kwsd: error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        top = label_clip(model, frontend, audio, rate)
        if as_json:
            print(json.dumps({"file": f, "label": top[0][0], "score": round(top[0][1], 4),
                              "top": [[k, round(v, 4)] for k, v in top]}), flush=True)
        else:
            print(f"{f}: " + ", ".join(f"{k} ({v:.2f})" for k, v in top), flush=True)
    return 1 if failed else 0

"""Rebuild the committed audio fixtures from the shared Speech Commands copy.

    python tests/data/make_fixtures.py ../shared/data [models/default.tflite]

Writes tests/data/speech/<word>/<speaker>_nohash_<n>.wav (a tiny dataset in the
Speech Commands layout, with a short background-noise file) and models/sample.wav
(the demo recording that `kwsd run` plays when there is no microphone).  Clips come
only from speakers that the default model's split (salt "kwsd") puts in the test
set, so demos never replay training data; within those, the loudest clips are taken,
and, when a model is given, only clips that it labels correctly: the fixtures test the
pipeline, not the model, whose accuracy is measured on the whole held-out split.
All audio: Speech Commands v0.02 (Warden 2018), CC BY 4.0.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from kwsd.label import label_clip  # noqa: E402
from kwsd.model import KeywordModel  # noqa: E402
from kwsd.recognize import SmootherSettings  # noqa: E402
from kwsd.train.dataset import which_set  # noqa: E402
from kwsd.wavfile import read_wav, write_wav  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORDS = {"yes": 3, "no": 3, "stop": 4, "go": 3, "left": 2, "_unknown_": 4}


def test_clips(words_dir: Path, word: str, model=None):
    """Test-split clips of a word, loudest first (and labelled right by ``model``, if given)."""
    files = sorted((words_dir / word).glob("*.wav"))
    files = [f for f in files if which_set(str(f), 10, 10, "kwsd") == "testing"]
    if model is not None:
        # labelled right, and confidently enough for the model's own recommended threshold
        settings = SmootherSettings.for_model(model.metadata)
        need = settings.thresholds.get(word, settings.detection_threshold) if word != "_unknown_" else 0.0
        files = [
            f for f in files for top in [label_clip(model, *read_wav(str(f)))[0]] if top[0] == word and top[1] >= need
        ]
    rms = [float(np.sqrt(np.mean(read_wav(str(f))[0] ** 2))) for f in files]
    return [f for _, f in sorted(zip(rms, files), key=lambda p: -p[0])]


def main(shared: Path, model=None) -> None:
    words_dir = shared / "speech_commands_v0.02_test"
    noise_dir = shared / "speech_commands_background_noise" / "_background_noise_"
    out = HERE / "speech"
    shutil.rmtree(out, ignore_errors=True)
    chosen = {}
    for word, count in WORDS.items():
        (out / word).mkdir(parents=True)
        picks, speakers = [], set()
        for f in test_clips(words_dir, word, model):
            speaker = f.name.split("_nohash_")[0]
            if speaker in speakers:
                continue
            speakers.add(speaker)
            picks.append(f)
            if len(picks) == count:
                break
        for f in picks:
            name = f.name.replace(".wav.wav", ".wav")
            shutil.copy(f, out / word / name)
        chosen[word] = picks
    (out / "_background_noise_").mkdir()
    noise, rate = read_wav(str(noise_dir / "doing_the_dishes.wav"))
    write_wav(str(out / "_background_noise_" / "doing_the_dishes_2s.wav"), noise[16000 * 10 : 16000 * 12], rate)

    # the demo: yes, stop, stop again 3 s later, go; over quiet kitchen noise
    sample = noise[16000 * 20 : 16000 * 30] * 0.3
    for word, at, i in (("yes", 0.5, 0), ("stop", 3.0, 0), ("stop", 6.0, 1), ("go", 8.5, 0)):
        clip, _ = read_wav(str(chosen[word][i]))
        start = int(at * 16000)
        sample[start : start + len(clip)] += clip
    write_wav(str(ROOT / "models" / "sample.wav"), sample, 16000)
    for word, picks in chosen.items():
        print(word, [p.name for p in picks])


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"),
        KeywordModel.load(sys.argv[2]) if len(sys.argv) > 2 else None,
    )

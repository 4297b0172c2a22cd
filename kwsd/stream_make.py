"""``kwsd stream make``: evaluation streams, as TensorFlow's generate_streaming_test_wav but

- keyword clips come only from one speaker partition (the same hash as training, so
  evaluation speakers are never training speakers), placed over a noise recording with
  random gaps; ``STREAM.wav`` and its truth ``STREAM.txt`` (see streams.py) are written.
  Non-keyword words (``--unknown-percentage``) are labelled with their own word.
- with ``--negative-dir`` it instead concatenates long recordings of one split (a hash of
  the file name) into a stream with no keyword at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .limits import check_ranges
from .streams import CLIP_MS, truth_path, write_truth

MAX_DURATION_S = 36_000  # ten hours: 2.3 GB of float32 audio while it is built


BACKGROUND_VOLUME = 0.1  # the keyword streams' kitchen noise at this volume: about -61 dBFS


@dataclass
class StreamSpec:
    out: str
    data_dir: str = ""
    negative_dir: str = ""
    wanted_words: str = "yes,no,up,down,left,right,on,off,stop,go"
    set: str = "testing"  # training, validation, testing or all
    split_salt: str = ""
    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    background: str = ""  # a noise recording (any format) under the whole stream
    background_volume: float = BACKGROUND_VOLUME
    duration_s: float = 600.0  # 0 with --negative-dir: every recording of the split
    word_gap_ms: int = 2000  # mean pause between clips (uniform in half to one and a half of it)
    unknown_percentage: float = 20.0
    seed: int = 1
    sample_rate: int = 16000

    def check(self) -> None:
        """ValueError naming the first flag out of range: a stream of NaN seconds or a negative
        gap would otherwise fail deep in numpy with a message that names no flag."""
        ranges = [
            ("--duration-s", self.duration_s, 0 if self.negative_dir else 1, MAX_DURATION_S),
            ("--word-gap-ms", self.word_gap_ms, 0, 60_000),
            ("--unknown-percentage", self.unknown_percentage, 0, 100),
            ("--validation-percentage", self.validation_percentage, 0, 100),
            ("--testing-percentage", self.testing_percentage, 0, 100),
            ("--background-volume", self.background_volume, 0, 10),
            ("--seed", self.seed, 0, 2**64 - 1),
        ]
        check_ranges(ranges)
        if self.background and not Path(self.background).is_file():
            raise ValueError(f"--background {self.background}: no such file")


def make_stream(spec: StreamSpec) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Build the audio and its truth; see the module docstring."""
    from .wavfile import write_wav

    spec.check()
    rng = np.random.default_rng(spec.seed)
    if spec.negative_dir:
        audio, truth = _negative_stream(spec)
    else:
        audio, truth = _keyword_stream(spec, rng)
    if spec.background:
        audio = with_background(audio, spec.background, spec.sample_rate, spec.background_volume, rng)
    np.clip(audio, -1, 1, out=audio)
    write_wav(spec.out, audio.astype(np.float32), spec.sample_rate)
    write_truth(truth_path(spec.out), truth)
    return audio, truth


def with_background(
    audio: np.ndarray, path: str, sample_rate: int, volume: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``audio`` with the recording at ``path`` under all of it (looped), from a random point
    (``rng``) or from its start; not clipped."""
    from .train.negatives import read_audio

    noise, _ = read_audio(path, sample_rate)
    start = int(rng.integers(0, max(1, len(noise) - len(audio)))) if rng is not None else 0
    return audio + np.resize(np.roll(noise, -start), len(audio)) * volume


def _keyword_stream(spec: StreamSpec, rng: np.random.Generator):
    from .recognize import SILENCE, UNKNOWN
    from .train.dataset import BadClip, read_clip, speaker_of, wav_files, which_set

    wanted = [w.strip() for w in spec.wanted_words.split(",") if w.strip()]
    keyword_clips, other_clips = [], []
    for root in (Path(d) for d in spec.data_dir.split(",") if d):
        if not root.is_dir():
            raise FileNotFoundError(f"data directory {root} does not exist")
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_background")):
            for path in wav_files(folder):
                if (
                    spec.set != "all"
                    and which_set(path, spec.validation_percentage, spec.testing_percentage, spec.split_salt)
                    != spec.set
                ):
                    continue
                if folder.name in wanted:
                    keyword_clips.append((folder.name, path))
                elif folder.name != SILENCE:
                    word = folder.name if folder.name != UNKNOWN else Path(path).name.split("_")[0]
                    other_clips.append((word, path))
    if not keyword_clips:
        raise ValueError(f"no keyword clips of the '{spec.set}' split in {spec.data_dir}")
    speakers = {speaker_of(p) for _, p in keyword_clips}
    total = int(spec.duration_s * spec.sample_rate)
    audio = np.zeros(total, np.float32)
    truth = []
    clip_len = spec.sample_rate * CLIP_MS // 1000  # Speech Commands clips are 1 s
    pos = int(rng.uniform(0.5, 1.5) * spec.word_gap_ms * spec.sample_rate / 1000)
    order_k = rng.permutation(len(keyword_clips))
    order_o = rng.permutation(len(other_clips)) if other_clips else np.zeros(0, int)
    ik = io = bad = 0
    while pos + clip_len <= total:
        use_other = len(other_clips) and rng.random() < spec.unknown_percentage / 100
        if use_other:
            label, path = other_clips[order_o[io % len(order_o)]]
            io += 1
        else:
            label, path = keyword_clips[order_k[ik % len(order_k)]]
            ik += 1
        try:
            clip = read_clip(path, spec.sample_rate)[:clip_len]
        except BadClip as e:  # skipped; but a folder of nothing but bad files must not loop forever
            bad += 1
            if bad > len(keyword_clips) + len(other_clips):
                raise ValueError(f"too many unreadable clips in {spec.data_dir} (last: {path}: {e})") from None
            continue
        audio[pos : pos + len(clip)] += clip
        truth.append((label, int(pos * 1000 // spec.sample_rate)))
        pos += clip_len + int(rng.uniform(0.5, 1.5) * spec.word_gap_ms * spec.sample_rate / 1000)
    print(
        f"{spec.out}: {len(truth)} clips ({ik} keywords of {len(speakers)} speakers, {io} other words), "
        f"{total / spec.sample_rate / 60:.1f} min",
        flush=True,
    )
    return audio, truth


def _negative_stream(spec: StreamSpec):
    from .train.negatives import audio_files, file_set, parse_dirs, read_audio

    parts, seconds = [], 0.0
    limit = spec.duration_s if spec.duration_s > 0 else math.inf
    gap = np.zeros(spec.sample_rate // 2, np.float32)
    files = 0
    for folder, _ in parse_dirs(spec.negative_dir):
        for path in audio_files(folder):
            if (
                spec.set != "all"
                and file_set(path, spec.validation_percentage, spec.testing_percentage, spec.split_salt) != spec.set
            ):
                continue
            if seconds >= limit:
                break
            audio, _ = read_audio(path, spec.sample_rate)
            parts += [audio, gap]
            seconds += (len(audio) + len(gap)) / spec.sample_rate
            files += 1
    if not parts:
        raise ValueError(f"no recordings of the '{spec.set}' split under {spec.negative_dir}")
    audio = np.concatenate(parts)
    if limit < math.inf:
        audio = audio[: int(limit * spec.sample_rate)]
    print(f"{spec.out}: {files} recordings, {len(audio) / spec.sample_rate / 60:.1f} min, no keyword", flush=True)
    return audio, []

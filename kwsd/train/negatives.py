"""Long recordings of non-keyword audio, cut into random clips for ``_unknown_``.

A model that has only heard 25 other single words does not know what to ignore:
real conversation fires it hundreds of times an hour.  ``--negative-dir`` points at
folders of recordings of any length, rate and format (WAV, FLAC, OGG through
libsndfile); they are resampled to the model's rate once, kept as int16, and every
training batch draws random windows from them as ``_unknown_``.

Recordings below the model's rate (8 kHz telephone prompts) have nothing above their
Nyquist frequency; a model could learn "band-limited means unknown", so their share is
set apart (``band_limited``) for the caller to keep small.

Files are split into training / validation / testing by a hash of their name, like
Speech Commands' speakers (``which_set``), so that ``kwsd stream make`` can build an
evaluation stream from recordings that training never used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .augment import with_band_fill
from .dataset import which_set

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")
# recordings below the model's rate are drawn this much less often than their length says
BAND_LIMITED_WEIGHT = 0.25
# pieces of speech placed alone (``--isolated-percentage``), in 10 ms frames: a frame is speech if
# it is within ISOLATED_RANGE_DB of the recording's loud frames (its 95th percentile); pauses
# shorter than ISOLATED_PAUSE_MS do not end a stretch of speech; inside one, a frame at least
# ISOLATED_DIP_DB below the loudest frame within ±150 ms and the quietest within ±50 ms is a
# boundary between syllables; pieces from boundary to boundary ISOLATED_MS long are kept
ISOLATED_RANGE_DB, ISOLATED_PAUSE_MS, ISOLATED_DIP_DB, ISOLATED_MS = 30.0, 60, 6.0, (150, 900)


def audio_files(folder: str | Path) -> list[Path]:
    """Every audio file below ``folder``, sorted (a stable order makes runs repeatable)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")  # the negatives, the rooms (--rir-dir), ...
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def read_audio(path: str | Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """Any libsndfile format as mono float32 at ``sample_rate``; also its own rate."""
    import soundfile
    from scipy.signal import resample_poly

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        g = math.gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g).astype(np.float32)
    return audio, rate


def is_band_limited(audio: np.ndarray, sample_rate: int) -> bool:
    """True if (almost) nothing lies above a quarter of the rate: audio recorded at half the
    model's rate (8 kHz telephone prompts) even after it was resampled up."""
    x = audio[: sample_rate * 30]
    if len(x) < 512:
        return False
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    cut = len(spec) * 53 // 100  # just above half the Nyquist frequency: 4.24 kHz at 16 kHz
    return float(spec[cut:].sum()) < 1e-4 * float(spec.sum())


def speech_stretches(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(start, end) samples of every piece of speech from one boundary (a pause, or a dip in
    level between syllables) to another that is as long as a spoken word; an (n, 2) int64
    array, empty if there is none.

    Why: random windows of running speech look nothing like a keyword clip (one short word
    alone in the window); a network that has heard short words alone only as keywords or as
    the 25 other Speech Commands words may take any short word for a keyword."""
    frame = sample_rate // 100
    n = len(audio) // frame
    if n < 15:
        return np.zeros((0, 2), np.int64)
    x = audio[: n * frame].astype(np.float32).reshape(n, frame)
    db = np.convolve(10 * np.log10(np.mean(x * x, axis=1) + 1e-10), np.ones(3) / 3, mode="same")
    speech = db > max(np.percentile(db, 95) - ISOLATED_RANGE_DB, db.min() + 6)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], speech.astype(np.int8), [0])))).reshape(-1, 2)
    gaps = np.flatnonzero(edges[1:, 0] - edges[:-1, 1] >= ISOLATED_PAUSE_MS // 10)
    starts = np.concatenate((edges[:1, 0], edges[gaps + 1, 0]))
    ends = np.concatenate((edges[gaps, 1], edges[-1:, 1]))
    window = np.lib.stride_tricks.sliding_window_view(np.pad(db, 15, mode="edge"), 31)
    dips = (db <= window[:, 10:21].min(axis=1)) & (window.max(axis=1) - db >= ISOLATED_DIP_DB)
    lo, hi = ISOLATED_MS[0] // 10, ISOLATED_MS[1] // 10
    pieces = []
    for a, b in zip(starts, ends):
        bounds = np.unique(np.concatenate(([a, b], a + np.flatnonzero(dips[a:b]))))
        i, j = np.triu_indices(len(bounds), 1)
        length = bounds[j] - bounds[i]
        keep = (length >= lo) & (length <= hi)
        pieces.append(np.column_stack((bounds[i][keep], bounds[j][keep])))
    return np.concatenate(pieces).astype(np.int64) * frame if pieces else np.zeros((0, 2), np.int64)


def place_alone(stretch: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``stretch`` in a window of silence, ending 0.45-0.95 of the way in (Speech Commands words
    end about 0.72 s into their clips), with 10 ms fades at both ends."""
    out = np.zeros(samples, np.float32)
    x = stretch[:samples].astype(np.float32) / 32768.0
    fade = min(len(x) // 2, samples // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    end = int(rng.uniform(0.45, 0.95) * samples)
    start = max(0, end - len(x))
    out[start : start + len(x)] = x[: samples - start]
    return out


def file_set(path: str | Path, validation_percentage: float, testing_percentage: float, salt: str = "") -> str:
    """The split of one recording, decided by its file name (see dataset.which_set)."""
    return which_set(Path(path).stem + "_nohash_", validation_percentage, testing_percentage, "neg" + salt)


@dataclass
class NegativePool:
    """Recordings (int16, model rate) and the weights by which windows are drawn from them."""

    recordings: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # per recording: folder weight x length
    band_limited: list[bool] = field(default_factory=list)
    sample_rate: int = 16000
    stretches: Optional[np.ndarray] = None  # (recording, start, end) rows: see find_stretches
    stretch_p: Optional[np.ndarray] = None  # the chance of drawing each row (sample_isolated)

    def find_stretches(self) -> int:
        """Find the word-long pieces of speech of every recording (speech_stretches) and the chance
        of drawing each: every second of the pieces alike, times its folder's weight (band-limited
        recordings less). Returns their count."""
        rows = [
            np.column_stack((np.full(len(sp), r), sp))
            for r, rec in enumerate(self.recordings)
            if len(sp := speech_stretches(rec, self.sample_rate))
        ]
        self.stretches = np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)
        per_second = np.asarray(self.weights, np.float64) / np.array([len(r) for r in self.recordings])
        p = per_second[self.stretches[:, 0]] * (self.stretches[:, 2] - self.stretches[:, 1])
        self.stretch_p = p / p.sum() if len(p) else p
        return len(self.stretches)

    def sample_isolated(self, rng: np.random.Generator, count: int, samples: int) -> np.ndarray:
        """``count`` windows each holding one piece of speech alone (place_alone), drawn as
        find_stretches weighs them."""
        if self.stretches is None:
            self.find_stretches()
        out = np.zeros((count, samples), np.float32)
        stretches, p = self.stretches, self.stretch_p
        if stretches is None or p is None or not len(stretches) or count == 0:
            return out
        for i, row in enumerate(rng.choice(len(stretches), size=count, p=p)):
            r, a, b = stretches[row]
            out[i] = place_alone(self.recordings[r][a:b], samples, rng)
        return out

    @property
    def seconds(self) -> float:
        return sum(len(r) for r in self.recordings) / self.sample_rate

    def add(self, audio: np.ndarray, name: str, weight: float, band_limited: bool = False) -> None:
        self.recordings.append(np.clip(audio * 32767, -32768, 32767).astype(np.int16))
        self.names.append(name)
        self.weights.append(weight * len(audio) * (BAND_LIMITED_WEIGHT if band_limited else 1.0))
        self.band_limited.append(band_limited)

    def sample(self, rng: np.random.Generator, count: int, samples: int) -> np.ndarray:
        """``count`` random windows of ``samples`` as float32 (short recordings are zero-padded)."""
        out = np.zeros((count, samples), np.float32)
        if not self.recordings or count == 0:
            return out
        p = np.asarray(self.weights, np.float64)
        which = rng.choice(len(self.recordings), size=count, p=p / p.sum())
        for i, r in enumerate(which):
            rec = self.recordings[r]
            if len(rec) <= samples:
                offset = int(rng.integers(0, samples - len(rec) + 1))
                out[i, offset : offset + len(rec)] = rec / 32768.0
            else:
                start = int(rng.integers(0, len(rec) - samples + 1))
                out[i] = rec[start : start + samples] / 32768.0
        return out


def parse_dirs(spec: str) -> list[tuple[str, float]]:
    """'DIR[:WEIGHT],DIR2[:WEIGHT]' -> [(dir, weight)]; ValueError on a bad weight."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        folder, _, weight = item.rpartition(":") if ":" in item else (item, "", "1")
        try:
            w = float(weight)
        except ValueError:
            raise ValueError(f"--negative-dir {item}: the weight after ':' must be a number") from None
        if not w > 0:
            raise ValueError(f"--negative-dir {item}: the weight must be above 0")
        out.append((folder, w))
    return out


def load_pool(
    spec: str,
    sample_rate: int,
    wanted_set: str = "training",
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
    salt: str = "",
    fill_narrowband: bool = False,
) -> tuple[NegativePool, list[tuple[str, str]]]:
    """Read every recording of ``wanted_set`` under the folders of ``spec``; also (file, why) of bad ones.
    ``fill_narrowband``: band-limited recordings as kwsd hears them from a narrowband source."""
    pool, bad = NegativePool(sample_rate=sample_rate), []
    for folder, weight in parse_dirs(spec):
        for path in audio_files(folder):
            if wanted_set != "all" and file_set(path, validation_percentage, testing_percentage, salt) != wanted_set:
                continue
            try:
                audio, rate = read_audio(path, sample_rate)
            except Exception as e:  # libsndfile's errors are plain RuntimeErrors
                bad.append((str(path), str(e).splitlines()[0] if str(e) else type(e).__name__))
                log.warning("skipping negative recording %s: %s", path, e)
                continue
            if len(audio) < sample_rate // 10:
                continue
            band_limited = rate < sample_rate or is_band_limited(audio, sample_rate)
            if band_limited and fill_narrowband:
                audio = with_band_fill(audio, min(rate, sample_rate // 2), sample_rate)
            pool.add(audio, str(path), weight, band_limited=band_limited)
    return pool, bad


def keyword_scores(predict, feats: np.ndarray, num_frames: int, keyword_cols: list[int], hop_frames: int = 10):
    """The first frame of every window (``hop_frames`` apart) of one recording's features and the
    window's best keyword probability by ``predict`` (features -> probabilities); empty arrays for a
    recording shorter than one window."""
    if len(feats) < num_frames:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    starts = np.arange(0, len(feats) - num_frames + 1, hop_frames)
    windows = np.lib.stride_tricks.sliding_window_view(feats, num_frames, axis=0)[starts]
    probs = predict(np.ascontiguousarray(windows.transpose(0, 2, 1)))
    return starts, probs[:, keyword_cols].max(axis=1)


def keyword_columns(labels: list[str]) -> list[int]:
    """The output columns of the labels that are reported as keywords."""
    from ..recognize import NOT_REPORTED

    return [i for i, x in enumerate(labels) if x not in NOT_REPORTED]


def mine_hard_negatives(
    predict, pool: NegativePool, frontend, labels: list[str], threshold: float, hop_frames: int = 10, limit: int = 20000
) -> tuple[NegativePool, int]:
    """Windows of the negative recordings that the current model takes for a keyword.

    Every window (``hop_frames`` apart, 200 ms by default) of every recording is scored
    by ``predict`` (features -> probabilities); windows whose best keyword probability
    exceeds ``threshold`` become a new pool, the ``limit`` highest first.  Features are
    computed over each whole recording, as the streaming daemon computes them.
    Returns (pool of the mined windows, number of windows scored).
    """
    p = frontend.params
    keyword_cols = keyword_columns(labels)
    found: list[tuple[float, int, int]] = []  # score, recording, first frame
    scored = 0
    for r, rec in enumerate(pool.recordings):
        feats = frontend.signal_features(rec / 32768.0)
        starts, best = keyword_scores(predict, feats, p.num_frames, keyword_cols, hop_frames)
        scored += len(starts)
        for i in np.flatnonzero(best > threshold):
            found.append((float(best[i]), r, int(starts[i])))
    found.sort(reverse=True)
    mined = NegativePool(sample_rate=pool.sample_rate)
    for _, r, start in found[:limit]:
        a = start * p.stride_samples
        clip = pool.recordings[r][a : a + p.clip_samples]
        mined.recordings.append(clip)
        mined.names.append(pool.names[r])
        mined.weights.append(1.0)
        mined.band_limited.append(pool.band_limited[r])
    return mined, scored

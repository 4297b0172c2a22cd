"""MFCC front end: the one implementation used for training and for serving.

Semantics follow python_speech_features.mfcc (pre-emphasis over the whole signal,
framing, power spectrum / nfft, triangular mel filterbank, log, orthonormal DCT-II,
sinusoidal lifter, log frame energy in c0), so a model trained on these features
sees exactly what the daemon computes.  Unlike ``mfcc()``, we never pad the tail:
a clip of ``n`` samples gives ``1 + (n - window) // stride`` frames.

``StreamingMfcc`` computes only the frames that new audio completes and keeps a
sliding window of the last ``num_frames`` frames for the model.  The filterbank
and DCT matrices are built once, which is what makes a stride cost tens of
microseconds instead of python_speech_features' half a millisecond per frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

WINDOWS = ("rectangular", "hamming", "hann")


@dataclass(frozen=True)
class FrontendParams:
    """Every parameter that changes the features; saved inside each model file."""

    sample_rate: int = 16000
    clip_duration_ms: int = 1000
    window_size_ms: float = 30.0
    window_stride_ms: float = 20.0
    feature_bin_count: int = 13  # numcep
    num_filters: int = 26  # nfilt
    fft_size: int = 512  # nfft
    low_freq: float = 0.0
    high_freq: float = 8000.0
    preemphasis: float = 0.97
    lifter: int = 22
    append_energy: bool = True
    window: str = "hamming"

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_size_ms / 1000))

    @property
    def stride_samples(self) -> int:
        return int(round(self.sample_rate * self.window_stride_ms / 1000))

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_duration_ms / 1000))

    @property
    def num_frames(self) -> int:
        """Frames in one clip: full windows only, never a padded tail."""
        return 1 + (self.clip_samples - self.window_samples) // self.stride_samples

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.num_frames, self.feature_bin_count)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontendParams":
        """Build from a model's metadata; raises ValueError naming the bad field."""
        known = {f.name: f for f in fields(cls)}
        missing = [name for name in known if name not in data]
        if missing:
            raise ValueError(f"frontend.{missing[0]} is missing")
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ValueError(f"frontend.{unknown[0]} is not a known parameter")
        values: dict[str, Any] = {}
        for name, f in known.items():
            value = data[name]
            want = {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ValueError(f"frontend.{name} must be {f.type}, not {repr(value)[:40]}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"frontend.{name} must be a finite number")
            values[name] = value
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent parameter.

        Each check runs only once those before it passed: the derived sizes (window_samples, ...)
        are computed from values already known to be in range, so a huge value cannot overflow."""
        checks = [
            ("sample_rate", lambda: 4000 <= self.sample_rate <= 96000, "must be 4000..96000"),
            ("window_size_ms", lambda: 0 < self.window_size_ms <= 1000, "must be 0..1000 ms"),
            ("window_stride_ms", lambda: 0 < self.window_stride_ms <= 1000, "must be 0..1000 ms"),
            ("clip_duration_ms", lambda: 100 <= self.clip_duration_ms <= 10000, "must be 100..10000"),
            ("window_size_ms", lambda: self.window_samples >= 16, "is shorter than 16 samples"),
            (
                "window_stride_ms",
                lambda: 1 <= self.stride_samples <= self.window_samples,
                "must be at least 1 sample and at most the window",
            ),
            ("clip_duration_ms", lambda: self.clip_samples >= self.window_samples, "is shorter than one window"),
            ("fft_size", lambda: self.fft_size >= self.window_samples, "is smaller than the window"),
            ("fft_size", lambda: self.fft_size <= 8192, "must be at most 8192"),
            ("num_filters", lambda: 1 <= self.num_filters <= self.fft_size // 2, "must be 1..fft_size/2"),
            ("feature_bin_count", lambda: 1 <= self.feature_bin_count <= self.num_filters, "must be 1..num_filters"),
            (
                "high_freq",
                lambda: 0 <= self.low_freq < self.high_freq <= self.sample_rate / 2,
                "must be above low_freq and at most sample_rate/2",
            ),
            ("preemphasis", lambda: 0.0 <= self.preemphasis < 1.0, "must be 0..1"),
            ("lifter", lambda: 0 <= self.lifter <= 1000, "must be 0..1000"),
            ("window", lambda: self.window in WINDOWS, f"must be one of {', '.join(WINDOWS)}"),
        ]
        for name, ok, why in checks:
            if not ok():
                raise ValueError(f"frontend.{name} {why}")


def _hz_to_mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700 * (10 ** (np.asarray(mel) / 2595.0) - 1)


def mel_filterbank(p: FrontendParams) -> np.ndarray:
    """Triangular filters on FFT bins, exactly as python_speech_features.get_filterbanks."""
    melpoints = np.linspace(_hz_to_mel(p.low_freq), _hz_to_mel(p.high_freq), p.num_filters + 2)
    bins = np.floor((p.fft_size + 1) * _mel_to_hz(melpoints) / p.sample_rate)
    fb = np.zeros((p.num_filters, p.fft_size // 2 + 1))
    for j in range(p.num_filters):
        lo, mid, hi = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(lo, mid):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(mid, hi):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return fb


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (what scipy's dct(type=2, norm='ortho') computes),
    built with numpy: importing scipy.fft (or scipy.signal) costs the daemon memory."""
    k = np.arange(n)[:, None]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


class MfccFrontend:
    """Precomputed matrices for one FrontendParams; turns frames into MFCC rows."""

    def __init__(self, params: FrontendParams):
        params.validate()
        self.params = params
        n = params.window_samples
        self.window = {
            "rectangular": np.ones(n),
            "hamming": np.hamming(n),
            "hann": np.hanning(n),
        }[params.window]
        # filterbank transposed so frames @ fb_t gives energies; DCT matrix keeps numcep columns
        self.fb_t = mel_filterbank(params).T.copy()
        self.dct_t = dct_matrix(params.num_filters)[: params.feature_bin_count].T.copy()
        k = np.arange(params.feature_bin_count)
        self.lift = (
            1 + (params.lifter / 2.0) * np.sin(np.pi * k / params.lifter)
            if params.lifter > 0
            else np.ones(params.feature_bin_count)
        )
        self._eps = np.finfo(float).eps

    def frames_to_mfcc(self, frames: np.ndarray) -> np.ndarray:
        """frames: (n, window_samples) of pre-emphasised audio -> (n, numcep) float32."""
        spec = np.fft.rfft(frames * self.window, self.params.fft_size)
        pspec = (spec.real**2 + spec.imag**2) / self.params.fft_size
        feat = pspec @ self.fb_t
        np.maximum(feat, self._eps, out=feat)  # psf replaces exact zeros with eps
        ceps = (np.log(feat) @ self.dct_t) * self.lift
        if self.params.append_energy:
            energy = pspec.sum(axis=1)
            ceps[:, 0] = np.log(np.maximum(energy, self._eps))
        return ceps.astype(np.float32)

    def clip_features(self, audio: np.ndarray) -> np.ndarray:
        """Features of a whole clip (float audio in [-1, 1]), as used for training.

        The clip is padded with zeros or cut to the model's clip length first, so the
        result always has the model's input shape.
        """
        p = self.params
        x = np.zeros(p.clip_samples)
        n = min(len(audio), p.clip_samples)
        x[:n] = audio[:n]
        return self.signal_features(x)[: p.num_frames]

    def batch_features(self, clips: np.ndarray) -> np.ndarray:
        """Features of a batch of whole clips, shape (batch, clip_samples), vectorised for training."""
        p = self.params
        x = np.asarray(clips, dtype=np.float64)
        emph = np.empty_like(x)
        emph[:, 0] = x[:, 0]
        emph[:, 1:] = x[:, 1:] - p.preemphasis * x[:, :-1]
        frames = np.lib.stride_tricks.sliding_window_view(emph, p.window_samples, axis=1)
        frames = frames[:, :: p.stride_samples][:, : p.num_frames]
        b, n, w = frames.shape
        return self.frames_to_mfcc(frames.reshape(b * n, w)).reshape(b, n, p.feature_bin_count)

    def signal_features(self, audio: np.ndarray) -> np.ndarray:
        """Features of every full window of a signal (no padded tail)."""
        p = self.params
        x = np.asarray(audio, dtype=np.float64)
        if len(x) < p.window_samples:
            return np.zeros((0, p.feature_bin_count), np.float32)
        emph = np.empty_like(x)
        emph[0] = x[0]
        emph[1:] = x[1:] - p.preemphasis * x[:-1]
        count = 1 + (len(x) - p.window_samples) // p.stride_samples
        frames = np.lib.stride_tricks.sliding_window_view(emph, p.window_samples)[:: p.stride_samples][:count]
        return self.frames_to_mfcc(frames)


class StreamingMfcc:
    """Incremental features over an endless stream, with a sliding feature window.

    ``push(samples)`` computes only the frames completed by the new samples;
    ``window`` always holds the last ``num_frames`` frames (zeros before the
    stream has filled it).  Pre-emphasis carries the previous sample across calls,
    so the frames equal those of the whole signal computed at once.

    ``defer(samples)`` takes audio without computing its frames, for stretches when nobody
    reads the window (the silence gate): the next ``push`` computes the deferred frames that
    are still in the window, at most one window's worth however long the deferral lasted.
    """

    def __init__(self, frontend: MfccFrontend):
        self.frontend = frontend
        p = frontend.params
        self._win = p.window_samples
        self._step = p.stride_samples
        # the samples from which the frames of a whole window can still be computed
        self._keep = (p.num_frames - 1) * self._step + self._win
        self._pending = np.zeros(0)  # pre-emphasised samples not yet consumed by a frame start
        self._last_sample = None
        self._offsets = np.zeros((0, self._win), np.intp)  # sample index of every frame's samples, grown on demand
        self.window = np.zeros(p.input_shape, np.float32)
        self.frames_seen = 0

    def _emphasised(self, samples: np.ndarray) -> np.ndarray:
        """``_pending`` followed by the new samples, pre-emphasised across the call boundary."""
        x = np.asarray(samples, dtype=np.float64)
        emph = np.empty_like(x)
        emph[0] = x[0] - self.frontend.params.preemphasis * self._last_sample if self._last_sample is not None else x[0]
        emph[1:] = x[1:] - self.frontend.params.preemphasis * x[:-1]
        self._last_sample = x[-1]
        return np.concatenate((self._pending, emph)) if len(self._pending) else emph

    def push(self, samples: np.ndarray) -> int:
        """Add audio; return how many new frames entered the window."""
        if len(samples) == 0:
            return 0
        buf = self._emphasised(samples)
        if len(buf) < self._win:
            self._pending = buf
            return 0
        count = 1 + (len(buf) - self._win) // self._step
        if count > len(self._offsets):
            self._offsets = np.arange(count)[:, None] * self._step + np.arange(self._win)
        # one gather: sliding_window_view's checks cost more than the copy on every stride
        new = self.frontend.frames_to_mfcc(buf[self._offsets[:count]])
        self._pending = buf[count * self._step :].copy()
        n = min(count, len(self.window))
        self.window[:-n] = self.window[n:]
        self.window[-n:] = new[-n:]
        self.frames_seen += count
        return count

    def defer(self, samples: np.ndarray) -> None:
        """Add audio whose frames nobody reads yet; ``window`` is stale until the next ``push``.

        Frames that would leave the window before then are dropped uncomputed (counted in
        ``frames_seen``); the samples of the rest wait in ``_pending``."""
        if len(samples) == 0:
            return
        buf = self._emphasised(samples)
        gone = max(0, (len(buf) - self._keep) // self._step)
        self.frames_seen += gone
        self._pending = buf[gone * self._step :]

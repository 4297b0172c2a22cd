"""Training-set augmentation.

As in TensorFlow's input_data: background noise mixed in at a random volume, a random
time shift (optionally later: a late shift, so that words also end at the window's end), and
optional SpecAugment-style masks.  For a far-field microphone also:
reverberation (measured room impulse responses and simulated rooms) and random gain.
For a narrowband microphone (8 kHz: a headset in hands-free mode): clips without their upper band.
For speakers the few hundred recorded ones do not cover: speed perturbation, which makes
each spoken clip faster or slower (tempo and pitch together, as a shorter or longer vocal
tract would; Ko et al. 2015).
And for teaching the model what a keyword is *not*: partial keywords, clips cut so that
only the start or the end of the word remains, labelled ``_unknown_``.
"""

from __future__ import annotations

import functools

import numpy as np


def simulated_rir(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random room: a direct path, then exponentially decaying noise (RT60 0.2-0.9 s).

    The statistical model of late reverberation (Polack); no geometry, but it gives the
    model the smeared, reverberant spectra of a microphone across a room.
    """
    rt60 = rng.uniform(0.2, 0.9)
    n = int(sample_rate * min(1.0, rt60 * 1.2))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    predelay = int(rng.uniform(0.002, 0.02) * sample_rate)
    tail[:predelay] = 0
    tail *= 10 ** (-rng.uniform(0, 12) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-9)  # direct-to-reverb 0..12 dB
    tail[0] = 1.0
    return tail.astype(np.float32)


class Augmenter:
    def __init__(
        self,
        background: list[np.ndarray],
        background_frequency=0.8,
        background_volume=0.1,
        time_shift_samples=1600,
        silence_volume=1.0,
        rirs=(),
        reverb_frequency=0.0,
        gain_db=(0.0, 0.0),
        sample_rate=16000,
        speed_range=(1.0, 1.0),
        late_shift_samples=0,
        narrowband_frequency=0.0,
        gate_frequency=0.0,
    ):
        self.background = [b for b in background if len(b) > 0]
        self.background_frequency = background_frequency
        self.background_volume = background_volume
        self.time_shift = time_shift_samples
        self.silence_volume = silence_volume
        self.rirs = [r for r in rirs if len(r) > 0]
        self.reverb_frequency = reverb_frequency
        self.gain_db = gain_db
        self.sample_rate = sample_rate
        self.speed_range = speed_range
        self.late_shift = late_shift_samples
        self.narrowband_frequency = narrowband_frequency
        self.gate_frequency = gate_frequency

    def noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A random stretch of a random background file (zeros if there are none)."""
        if not self.background:
            return np.zeros(n, np.float32)
        clip = self.background[rng.integers(len(self.background))]
        if len(clip) <= n:
            return np.resize(clip, n).astype(np.float32)
        start = rng.integers(len(clip) - n)
        return clip[start : start + n]

    def reverberate(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``x`` in a room: a measured response half of the time (if any), else a simulated one.
        The level is kept, so that gain stays a separate, explicit augmentation."""
        from scipy.signal import fftconvolve

        if self.rirs and rng.random() < 0.5:
            rir = self.rirs[rng.integers(len(self.rirs))]
        else:
            rir = simulated_rir(rng, self.sample_rate)
        y = fftconvolve(x, rir)[: len(x)]
        rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
        return (y * (rms_in / rms_out if rms_out > 1e-9 else 0.0)).astype(np.float32)

    def latest_shift(self, x: np.ndarray) -> int:
        """How far ``x`` may move toward the end of the window: the time shift, or with a late
        shift up to the two together while the word's end (kwsd.streams.spoken_frames) stays
        inside.  A model trained only on words near the middle of its window is surest of a
        word a few hundred ms after the word has ended, and a stream's detection waits for that;
        microWakeWord trains its words at the end of the window for the same reason."""
        if not self.late_shift:
            return self.time_shift
        from ..streams import spoken_frames

        frames = spoken_frames(x, self.sample_rate)
        room = len(x) - (frames or 0) * (self.sample_rate // 100)
        return max(self.time_shift, min(self.time_shift + self.late_shift, room))

    def __call__(self, clips: np.ndarray, is_silence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros_like(clips)
        b, n = clips.shape
        lo, hi = self.gain_db
        slow, fast = self.speed_range
        if fast > slow:
            factors = np.where(is_silence, 1.0, rng.uniform(slow, fast, b))
            clips = change_speeds(clips, factors)
        for i in range(b):
            x = clips[i]
            if (self.time_shift > 0 or self.late_shift > 0) and not is_silence[i]:
                shift = int(rng.integers(-self.time_shift, self.latest_shift(x) + 1))
                if shift > 0:
                    out[i, shift:] = x[: n - shift]
                elif shift < 0:
                    out[i, :shift] = x[-shift:]
                else:
                    out[i] = x
            else:
                out[i] = x
            if not is_silence[i]:
                if self.reverb_frequency > 0 and rng.random() < self.reverb_frequency:
                    out[i] = self.reverberate(out[i], rng)
                if hi > lo:
                    out[i] *= 10 ** (rng.uniform(lo, hi) / 20)
            if is_silence[i]:
                out[i] += self.noise(rng, n) * rng.uniform(0, self.silence_volume)
            elif rng.random() < self.background_frequency:
                out[i] += self.noise(rng, n) * rng.uniform(0, self.background_volume)
            if self.narrowband_frequency > 0 and rng.random() < self.narrowband_frequency:
                out[i] = narrowband(out[i], self.sample_rate, rng)
            if self.gate_frequency > 0 and not is_silence[i] and rng.random() < self.gate_frequency:
                out[i] = noise_gate(out[i], self.sample_rate, rng)
        np.clip(out, -1.0, 1.0, out=out)
        return out


def noise_gate(x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` as a microphone's noise gate passes it: exact zeros wherever its 10 ms level has
    stayed 20-40 dB under its loudest 10 ms for longer than a 50-300 ms hold (open at once).

    Many USB and headset microphones, and noise suppression in a sound server, leave words as
    islands in digital silence; a model that never heard such audio mostly misses them (the
    bundled model 61% of a validation stream's keywords behind a gate, against 21% without;
    models/README.md, "Behind a microphone's noise gate"). The threshold follows the clip's own level."""
    f = sample_rate // 100
    n = len(x) // f
    if n == 0:
        return x
    level = 10 * np.log10((x[: n * f].reshape(n, f).astype(np.float64) ** 2).mean(axis=1) + 1e-20)
    loud = level > level.max() - rng.uniform(20, 40)
    frames = np.arange(n)
    last_loud = np.maximum.accumulate(np.where(loud, frames, -n))
    open_ = np.repeat(frames - last_loud <= rng.uniform(50, 300) // 10, f)
    out = np.zeros_like(x)
    out[: n * f] = x[: n * f] * open_
    return out


FILL_STRIDE_MS = 80  # the default clip stride: the band fill's level is that of the loudest stride


def narrowband(x: np.ndarray, sample_rate: int, rng: np.random.Generator, band_rate: int = 8000) -> np.ndarray:
    """``x`` as kwsd hears it from a microphone at ``band_rate``: taken down to that rate and back
    up with the runtime's own resampler, nothing left above ``band_rate / 2`` but the runtime's
    quiet noise there (kwsd.audio.BandFill). A model that never heard such audio misses many
    keywords in it (models/README.md, "Narrowband audio")."""
    from ..audio import resample

    y = resample(resample(x, sample_rate, band_rate), band_rate, sample_rate)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    stride = sample_rate * FILL_STRIDE_MS // 1000
    return band_fill(band_rate, sample_rate, stride).clip(y, stride, rng)


@functools.lru_cache(maxsize=4)
def band_fill(band_rate: int, sample_rate: int, stride: int):
    """One runtime band fill per rate pair (its noise loop is built once, not per clip)."""
    from ..audio import BandFill

    return BandFill(band_rate, sample_rate, stride)


def with_band_fill(audio: np.ndarray, band_rate: int, sample_rate: int) -> np.ndarray:
    """A recording from a ``band_rate`` source (resampled to ``sample_rate``) with the quiet noise
    that kwsd adds above ``band_rate / 2`` (kwsd.audio.BandFill), stride by stride as a stream
    gets it (``--fill-narrowband-negatives``). Without it a model learns telephone prompts with
    that band empty and fires on them once kwsd fills it (the shipped first network: 1 false
    accept in 220 min of its band-limited training recordings as they are, 13 with the fill).
    Without ``--narrowband-percentage`` the fill is heard only in ``_unknown_`` clips, and a
    network learned that instead (more 8 kHz keywords missed; models/README.md, "Narrowband audio")."""
    stride = sample_rate * FILL_STRIDE_MS // 1000
    fill = band_fill(band_rate, sample_rate, stride)
    out = np.empty_like(audio)
    fill.reset()
    for at in range(0, len(audio), stride):
        out[at : at + stride] = fill(audio[at : at + stride])
    return out


def change_speed(clips: np.ndarray, factor: float) -> np.ndarray:
    """Each clip (rows of ``clips``) played ``factor`` times as fast (tempo and pitch), cut or
    padded back to its length around its middle.  Resampled by the rational factor
    ``50/round(50 * factor)`` so that a whole group of clips shares one short polyphase filter."""
    from scipy.signal import resample_poly

    down = int(round(50 * factor))
    if down == 50:
        return clips
    y = resample_poly(clips, 50, down, axis=-1).astype(np.float32)
    n = clips.shape[-1]
    if y.shape[-1] >= n:
        start = (y.shape[-1] - n) // 2
        return y[..., start : start + n]
    out = np.zeros_like(clips)
    start = (n - y.shape[-1]) // 2
    out[..., start : start + y.shape[-1]] = y
    return out


def change_speeds(clips: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``change_speed`` with one factor per clip, grouped by the rounded factor (one
    resampling call per group rather than per clip)."""
    out = clips.copy()
    downs = np.round(50 * factors).astype(int)
    for down in np.unique(downs):
        rows = np.flatnonzero(downs == down)
        out[rows] = change_speed(clips[rows], down / 50)
    return out


def partial_keywords(clips: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Keep only the start or the end (25-55%) of each clip's spoken part, in place of the word.

    The spoken part is where the 10 ms frame energy is within 30 dB of the clip's peak.
    Trained as ``_unknown_``, these teach the model to wait for the whole word, so that
    "go" is not reported for the first syllable of "going" or the end of "ago".
    """
    out = np.zeros_like(clips)
    hop = sample_rate // 100
    for i, x in enumerate(clips):
        frames = x[: len(x) // hop * hop].reshape(-1, hop)
        energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
        voiced = np.flatnonzero(energy > energy.max() - 30)
        a, b = voiced[0] * hop, (voiced[-1] + 1) * hop
        keep = int((b - a) * rng.uniform(0.25, 0.55))
        if rng.random() < 0.5:
            out[i, a : a + keep] = x[a : a + keep]
        else:
            out[i, b - keep : b] = x[b - keep : b]
    return out


def spec_augment(
    features: np.ndarray, rng: np.random.Generator, time_masks=2, time_mask_max=5, freq_masks=2, freq_mask_max=2
) -> np.ndarray:
    """Zero random time and coefficient stripes (SpecAugment, Park et al. 2019), in place.

    Masks are set to each example's mean so the int8 input range is unaffected."""
    b, frames, coeffs = features.shape
    for i in range(b):
        fill = features[i].mean()
        for _ in range(time_masks):
            w = int(rng.integers(0, time_mask_max + 1))
            t = int(rng.integers(0, max(1, frames - w)))
            features[i, t : t + w, :] = fill
        for _ in range(freq_masks):
            w = int(rng.integers(0, freq_mask_max + 1))
            f = int(rng.integers(1, max(2, coeffs - w)))  # keep c0, the frame energy
            features[i, :, f : f + w] = fill
    return features

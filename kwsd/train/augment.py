"""Training-set augmentation, as in TensorFlow's input_data: background noise mixed in
at a random volume, a random time shift, and optional SpecAugment-style masks."""
from __future__ import annotations

import numpy as np


class Augmenter:
    def __init__(self, background: list[np.ndarray], background_frequency=0.8, background_volume=0.1,
                 time_shift_samples=1600, silence_volume=1.0):
        self.background = [b for b in background if len(b) > 0]
        self.background_frequency = background_frequency
        self.background_volume = background_volume
        self.time_shift = time_shift_samples
        self.silence_volume = silence_volume

    def noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A random stretch of a random background file (zeros if there are none)."""
        if not self.background:
            return np.zeros(n, np.float32)
        clip = self.background[rng.integers(len(self.background))]
        if len(clip) <= n:
            return np.resize(clip, n).astype(np.float32)
        start = rng.integers(len(clip) - n)
        return clip[start:start + n]

    def __call__(self, clips: np.ndarray, is_silence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros_like(clips)
        b, n = clips.shape
        for i in range(b):
            x = clips[i]
            if self.time_shift > 0 and not is_silence[i]:
                shift = int(rng.integers(-self.time_shift, self.time_shift + 1))
                if shift > 0:
                    out[i, shift:] = x[:n - shift]
                elif shift < 0:
                    out[i, :shift] = x[-shift:]
                else:
                    out[i] = x
            else:
                out[i] = x
            if is_silence[i]:
                out[i] += self.noise(rng, n) * rng.uniform(0, self.silence_volume)
            elif rng.random() < self.background_frequency:
                out[i] += self.noise(rng, n) * rng.uniform(0, self.background_volume)
        np.clip(out, -1.0, 1.0, out=out)
        return out


def spec_augment(features: np.ndarray, rng: np.random.Generator, time_masks=2, time_mask_max=5,
                 freq_masks=2, freq_mask_max=2) -> np.ndarray:
    """Zero random time and coefficient stripes (SpecAugment, Park et al. 2019), in place.

    Masks are set to each example's mean so the int8 input range is unaffected."""
    b, frames, coeffs = features.shape
    for i in range(b):
        fill = features[i].mean()
        for _ in range(time_masks):
            w = int(rng.integers(0, time_mask_max + 1))
            t = int(rng.integers(0, max(1, frames - w)))
            features[i, t:t + w, :] = fill
        for _ in range(freq_masks):
            w = int(rng.integers(0, freq_mask_max + 1))
            f = int(rng.integers(1, max(2, coeffs - w)))  # keep c0, the frame energy
            features[i, :, f:f + w] = fill
    return features

"""Audio plumbing between a source and the features: a ring buffer, a streaming resampler, and
quiet noise for the band that a narrowband source (8 kHz) cannot carry.

Every source (sources.py: WAV file, stdin; microphone.py: the sound card) writes
device-rate float32 mono samples into a :class:`RingBuffer`; the engine's worker thread
reads them, resamples to the model's rate and computes features.
"""

from __future__ import annotations

import math
import threading
from fractions import Fraction

import numpy as np

# --------------------------------------------------------------------------- resampling


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole signal (polyphase, scipy.signal.resample_poly)."""
    if src_rate == dst_rate:
        return audio
    import scipy.signal  # only when needed: it costs ~50 MB of memory on import

    ratio = Fraction(dst_rate, src_rate).limit_denominator(1000)
    return scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


class BandFill:
    """Quiet noise in the band that a narrowband source cannot carry, added after resampling.

    Audio from an 8 kHz source (a Bluetooth headset in hands-free mode, a telephone line)
    resampled to the model's 16 kHz holds nothing above 4 kHz, where every training clip had
    speech or noise, and the mel bands there fall to the floor of the log: the bundled model
    missed 81% of a validation stream's keywords so. White noise in that band, ``BELOW_DB``
    under the loudest stride of the last ``MEMORY_S`` seconds (so that it follows the speaker's
    level, not full scale), makes those bands look like a quiet recording's, which the model
    knows (models/README.md, "Narrowband audio"). The noise is one seeded loop: the same
    audio gives the same features on every run.
    """

    BELOW_DB = 55.0  # chosen on the validation stream at 8 kHz, at two levels 20 dB apart
    MEMORY_S = 5.0
    LOOP_S = 4

    def __init__(self, src_rate: int, dst_rate: int, stride_samples: int):
        import scipy.signal

        sos = scipy.signal.butter(8, src_rate / 2, "highpass", fs=dst_rate, output="sos")
        settle = dst_rate // 10  # the filter's start is left out of the loop
        noise = scipy.signal.sosfilt(sos, np.random.default_rng(0).standard_normal(self.LOOP_S * dst_rate + settle))
        noise = noise[settle:]
        self._noise = (noise * (10 ** (-self.BELOW_DB / 20) / np.sqrt(np.mean(noise**2)))).astype(np.float32)
        self._powers = np.zeros(max(1, round(self.MEMORY_S * dst_rate / stride_samples)))  # mean squares, a ring
        self.reset()

    def reset(self) -> None:
        """Start as on a new stream: no level heard yet, the loop from its start."""
        self._at = 0
        self._powers[:] = 0.0
        self._newest = 0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """One stride's ``samples`` with the noise added at the level of the loudest recent stride."""
        n = len(samples)
        self._newest = (self._newest + 1) % len(self._powers)
        self._powers[self._newest] = float(np.dot(samples, samples)) / max(n, 1)
        if self._at + n > len(self._noise):
            self._at = 0
        noise = self._noise[self._at : self._at + n]
        self._at += n
        return samples + math.sqrt(self._powers.max()) * noise

    def clip(self, x: np.ndarray, stride_samples: int, rng: np.random.Generator) -> np.ndarray:
        """A whole training clip as a stream gives it once the clip's loudest stride is in the
        memory, from a random place in the loop (kwsd train --narrowband-percentage)."""
        m = len(x) // stride_samples * stride_samples
        strides = x[:m].reshape(-1, stride_samples).astype(np.float64)
        loudest = float((strides**2).mean(axis=1).max()) if m else 0.0
        at = int(rng.integers(max(1, len(self._noise) - len(x))))
        noise = np.resize(self._noise[at:], len(x))
        return (x + math.sqrt(loudest) * noise).astype(np.float32)


class StreamResampler:
    """resample_poly over an endless stream, block by block, without edge clicks.

    resample_poly needs context on both sides of a block; we keep ``pad`` input
    samples of history and hold back the last ``pad`` samples until more audio
    arrives, so the output equals resampling the whole stream at once (up to the
    last ``pad`` samples, released by ``flush``).  Latency: ``pad`` input samples
    (under 15 ms for 44.1 or 48 kHz).  Segments always start at a multiple of
    ``down`` input samples, so each maps to a whole number of output samples.
    """

    def __init__(self, src_rate: int, dst_rate: int):
        ratio = Fraction(dst_rate, src_rate).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down
        half = 10 * max(self.up, self.down) / self.up  # resample_poly's filter half-length, input samples
        self.pad = self.down * math.ceil((half + 2) / self.down)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # global input index of _buf[0], a multiple of down
        self._emitted = 0  # global input index up to which output was emitted (multiple of down)

    def process(self, block: np.ndarray) -> np.ndarray:
        if self.identity:
            return block
        self._buf = np.concatenate((self._buf, block))
        end = self._buf_start + len(self._buf)
        ready = ((end - self.pad) // self.down) * self.down
        if ready <= self._emitted:
            return np.zeros(0, np.float32)
        return self._emit(ready)

    def flush(self) -> np.ndarray:
        """Release the held-back tail at the end of a finite stream."""
        if self.identity:
            return np.zeros(0, np.float32)
        end = self._buf_start + len(self._buf)
        ready = math.ceil(end / self.down) * self.down
        if ready <= self._emitted:
            return np.zeros(0, np.float32)
        return self._emit(ready)

    def _emit(self, ready: int) -> np.ndarray:
        import scipy.signal  # loaded only when a device or file needs resampling

        y = scipy.signal.resample_poly(self._buf, self.up, self.down)
        first = (self._emitted - self._buf_start) * self.up // self.down
        last = (ready - self._buf_start) * self.up // self.down
        out = y[first:last].astype(np.float32)
        self._emitted = ready
        keep_from = max(self._buf_start, ready - self.pad)
        keep_from -= (keep_from - self._buf_start) % self.down
        self._buf = self._buf[keep_from - self._buf_start :]
        self._buf_start = keep_from
        return out


# --------------------------------------------------------------------------- ring buffer


class RingBuffer:
    """Single-producer single-consumer float32 ring.

    ``write_nowait`` is for the audio callback: a copy and two integer updates, no
    lock, no allocation; when the ring is full the block is dropped and counted.
    ``write`` is for file sources and waits for room.  Counters are plain ints,
    safe to read from other threads under the GIL.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self._written = 0
        self._read = 0
        self.dropped_samples = 0
        self.overflows = 0  # blocks dropped, plus overflows reported by the device
        self.closed = False  # set by the producer at the end of a finite stream
        self._space = threading.Event()
        self.data_ready = threading.Event()  # set by waiting producers so the worker wakes early

    def available(self) -> int:
        return self._written - self._read

    def write_nowait(self, block, count_overflow: bool = True) -> bool:
        """Copy ``block`` in, or drop it (counted as an overflow) if there is no room."""
        n = len(block)
        if n > self.capacity - (self._written - self._read):
            if count_overflow:
                self.dropped_samples += n
                self.overflows += 1
            return False
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self._written += n
        return True

    def write(self, block, stop: threading.Event | None = None) -> bool:
        """Write all of ``block``, waiting for room; False if ``stop`` was set."""
        for i in range(0, len(block), self.capacity // 2):
            part = block[i : i + self.capacity // 2]
            while not self.write_nowait(part, count_overflow=False):
                if stop is not None and stop.is_set():
                    return False
                self._space.wait(0.05)
                self._space.clear()
            self.data_ready.set()
        return True

    def read(self, n: int) -> np.ndarray:
        """Take up to ``n`` samples (a new array)."""
        n = min(n, self._written - self._read)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, np.float32)
        out[:first] = self._buf[start : start + first]
        out[first:] = self._buf[: n - first]
        self._read += n
        self._space.set()
        return out

    def close(self) -> None:
        self.closed = True
        self.data_ready.set()

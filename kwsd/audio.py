"""Audio in: WAV files, raw stdin, the microphone; a ring buffer; a streaming resampler.

Every source writes device-rate float32 mono samples into a :class:`RingBuffer`; the
engine's worker thread reads them, resamples to the model's rate and computes
features.  The microphone callback only copies into the ring: it never blocks,
never allocates, and counts an overflow instead of waiting.  File and stdin sources
wait for room instead, so a recording is processed completely, as fast as the CPU
allows (or paced to real time with ``realtime=True``).
"""
from __future__ import annotations

import logging
import math
import sys
import threading
import time
from fractions import Fraction

import numpy as np

from .errors import AudioError, NoMicrophoneError
from .wavfile import WavReader, read_wav, write_wav  # noqa: F401 (read_wav, write_wav: kwsd.audio's API)

log = logging.getLogger(__name__)

COMMON_RATES = (16000, 48000, 44100, 32000, 22050, 8000)


# --------------------------------------------------------------------------- resampling

def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample a whole signal (polyphase, scipy.signal.resample_poly)."""
    if src_rate == dst_rate:
        return audio
    import scipy.signal  # only when needed: it costs ~50 MB of memory on import

    ratio = Fraction(dst_rate, src_rate).limit_denominator(1000)
    return scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


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
        self._buf = self._buf[keep_from - self._buf_start:]
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
        self._buf[start:start + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self._written += n
        return True

    def write(self, block, stop: threading.Event | None = None) -> bool:
        """Write all of ``block``, waiting for room; False if ``stop`` was set."""
        for i in range(0, len(block), self.capacity // 2):
            part = block[i:i + self.capacity // 2]
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
        out[:first] = self._buf[start:start + first]
        out[first:] = self._buf[: n - first]
        self._read += n
        self._space.set()
        return out

    def close(self) -> None:
        self.closed = True
        self.data_ready.set()


# --------------------------------------------------------------------------- sources

class Source:
    """Base: something that fills a ring buffer at ``rate`` Hz."""

    rate: int
    finite: bool = False
    description: str = ""

    def start(self, ring: RingBuffer) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass


class ArraySource(Source):
    """A signal already in memory (a decoded WAV), written in blocks by a thread."""

    finite = True

    def __init__(self, audio: np.ndarray, rate: int, realtime: bool = False, description: str = "",
                 block_ms: int = 20):
        self.audio, self.rate, self.realtime = audio, rate, realtime
        self.description = description
        self.block = max(1, rate * block_ms // 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def start(self, ring: RingBuffer) -> None:
        self._thread = threading.Thread(target=self._run, args=(ring,), name="kwsd-source", daemon=True)
        self._thread.start()

    def _blocks(self):
        for i in range(0, len(self.audio), self.block):
            yield self.audio[i:i + self.block]

    def _run(self, ring: RingBuffer) -> None:
        t0 = time.monotonic()
        sent = 0
        try:
            for block in self._blocks():
                if self.realtime:
                    delay = t0 + sent / self.rate - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                if not ring.write(block, self._stop):
                    break
                sent += len(block)
        except Exception as e:  # surfaced by the engine
            self.error = e
        finally:
            ring.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class WavSource(ArraySource):
    """A WAV file, read block by block as it is consumed: a long recording is never held whole."""

    def __init__(self, path: str, realtime: bool = False):
        self.reader = WavReader(path)  # the header is checked here, before the engine starts
        super().__init__(np.zeros(0, np.float32), self.reader.rate, realtime,
                         description=f"file {path} ({self.reader.rate} Hz)")

    def _blocks(self):
        try:
            yield from self.reader.blocks(self.block)
        finally:
            self.reader.close()


class StdinSource(ArraySource):
    """Raw S16_LE mono at 16 kHz on stdin, e.g. ``arecord -f S16_LE -r 16000 -c 1 -t raw``."""

    def __init__(self, rate: int = 16000, realtime: bool = False, stream=None):
        super().__init__(np.zeros(0, np.float32), rate, realtime, description=f"stdin (raw S16_LE {rate} Hz mono)")
        self.stream = stream if stream is not None else sys.stdin.buffer

    def _blocks(self):
        carry = b""
        while not self._stop.is_set():
            data = self.stream.read1(self.block * 2) if hasattr(self.stream, "read1") \
                else self.stream.read(self.block * 2)
            if not data:
                break
            data = carry + data
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            if usable:
                yield np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0


def list_input_devices() -> list[dict]:
    """Input devices as sounddevice reports them: index, name, channels, default rate."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as e:
        raise AudioError(f"cannot list audio devices: {e}") from None
    return [dict(index=i, name=d["name"], channels=d["max_input_channels"],
                 default_samplerate=d["default_samplerate"], hostapi=sd.query_hostapis(d["hostapi"])["name"])
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def import_sounddevice():
    try:
        import sounddevice
    except OSError as e:  # PortAudio library missing
        raise NoMicrophoneError(f"no microphone available: PortAudio is not installed ({e}); "
                                "install libportaudio2, or use --input FILE.wav") from None
    return sounddevice


class MicrophoneSource(Source):
    """A sounddevice InputStream; the callback only copies into the ring."""

    def __init__(self, device=None, channel=None, rate=None, wanted_rate=16000, block_ms=20):
        self.sd = import_sounddevice()
        self.device_spec = device
        self.device_index, info = self._find_device(device)
        self.device_name = info["name"]
        max_ch = int(info["max_input_channels"])
        if channel is not None and channel >= max_ch:
            raise AudioError(f"audio.channel {channel} does not exist: device '{self.device_name}' "
                             f"has {max_ch} input channel(s)")
        self.channel = channel
        self.channels = channel + 1 if channel is not None else min(max_ch, 2) if max_ch > 1 else 1
        self.rate = self._pick_rate(rate, wanted_rate, info)
        self.block = max(1, self.rate * block_ms // 1000)
        self._scratch = np.zeros(self.block * 4, np.float32)
        mixing = f"channel {channel}" if channel is not None else f"mean of {self.channels} channel(s)"
        self.description = f"microphone '{self.device_name}' at {self.rate} Hz, {mixing}"
        self.stream = None

    def _find_device(self, device):
        sd = self.sd
        try:
            devices = sd.query_devices()
        except Exception as e:
            raise NoMicrophoneError(f"no microphone found ({e}); try --input FILE.wav") from None
        inputs = [(i, d) for i, d in enumerate(devices) if d["max_input_channels"] > 0]
        if not inputs:
            raise NoMicrophoneError("no microphone found (no audio input device); try --input FILE.wav")
        if device is None:
            try:
                index = sd.default.device[0]
                if index is None or index < 0:
                    index = sd.query_devices(kind="input")["index"]
            except Exception:
                index = inputs[0][0]
            for i, d in inputs:
                if i == index:
                    return i, d
            return inputs[0]
        if isinstance(device, int):
            for i, d in inputs:
                if i == device:
                    return i, d
            raise AudioError(f"audio.device {device} is not an input device; see 'kwsd devices'")
        matches = [(i, d) for i, d in inputs if device.lower() in d["name"].lower()]
        exact = [(i, d) for i, d in matches if d["name"].lower() == device.lower()]
        if exact:
            return exact[0]
        if not matches:
            raise AudioError(f"audio.device '{device}' matches no input device; see 'kwsd devices'")
        if len(matches) > 1:
            names = ", ".join(f"{i}: {d['name']}" for i, d in matches)
            raise AudioError(f"audio.device '{device}' matches several input devices ({names}); be more specific")
        return matches[0]

    def _pick_rate(self, rate, wanted, info) -> int:
        """The model's rate if the device takes it, else its default, else a common rate.

        Many USB microphones only open at 44.1 or 48 kHz; we resample in the worker.
        """
        candidates = [rate] if rate else [wanted, int(info["default_samplerate"]), *COMMON_RATES]
        for r in dict.fromkeys(candidates):
            try:
                self.sd.check_input_settings(device=self.device_index, channels=self.channels,
                                             dtype="float32", samplerate=r)
                return int(r)
            except Exception as e:
                log.debug("device %s refuses %s Hz: %s", self.device_name, r, e)
        tried = ", ".join(str(r) for r in dict.fromkeys(candidates))
        raise AudioError(f"microphone '{self.device_name}' accepts none of the sample rates {tried} Hz")

    def start(self, ring: RingBuffer) -> None:
        scratch, channel, mix = self._scratch, self.channel, self.channels > 1 and self.channel is None
        write, inv = ring.write_nowait, np.float32(1.0 / self.channels)

        def callback(indata, frames, _time, status):
            # the hot path: no locks, no logging, no allocation of our own
            if status.input_overflow:
                ring.overflows += 1
            if channel is not None:
                write(indata[:, channel])
            elif mix and frames <= len(scratch):
                out = scratch[:frames]
                np.sum(indata, axis=1, out=out)
                out *= inv
                write(out)
            else:
                write(indata[:, 0])

        try:
            self.stream = self.sd.InputStream(device=self.device_index, channels=self.channels,
                                              samplerate=self.rate, dtype="float32",
                                              blocksize=self.block, callback=callback)
            self.stream.start()
        except Exception as e:
            raise AudioError(f"cannot open microphone '{self.device_name}' at {self.rate} Hz: {e}") from None

    def stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception as e:
                log.debug("closing the microphone: %s", e)
            self.stream = None

    def alive(self) -> bool:
        """False once PortAudio has ended the stream by itself (the device or audio server is gone)."""
        return self.stream is not None and bool(self.stream.active)

    def reopen(self, ring: RingBuffer) -> None:
        """Close the stream, scan the devices again and reopen the same one at the same rate.

        PortAudio reads the device list once, when it starts; a restarted audio server or a
        replugged USB microphone is only seen after it is terminated and initialised again.
        AudioError (or NoMicrophoneError) if the device is not back yet.
        """
        self.stop()
        try:
            self.sd._terminate()
            self.sd._initialize()
        except Exception as e:
            raise AudioError(f"cannot restart PortAudio: {e}") from None
        self.device_index, info = self._find_device(self.device_spec)
        self.rate = self._pick_rate(self.rate, self.rate, info)  # the worker resamples from this rate
        self.start(ring)

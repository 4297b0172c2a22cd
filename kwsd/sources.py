"""Audio sources that are not a sound card: a WAV file, raw audio on stdin, an array.

A source fills a :class:`~kwsd.audio.RingBuffer` from its own thread. File and stdin
sources wait for room in the ring instead of dropping audio, so a recording is processed
completely, as fast as the CPU allows (or paced to real time with ``realtime=True``).
The microphone is in microphone.py.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from .audio import RingBuffer
from .wavfile import WavReader


class Source:
    """Base: something that fills a ring buffer at ``rate`` Hz."""

    rate: int
    finite: bool = False
    description: str = ""

    def start(self, ring: RingBuffer) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass


REALTIME_BLOCK_MS = 20
"""Block length when a recording is paced to real time: audio arrives as a sound card would deliver it."""
FAST_BLOCK_MS = 250
"""Block length when a recording is read as fast as the CPU allows. The detections do not depend on the
block length (the pipeline counts samples, not blocks), but every block costs a read, a decode and a
wake-up of the worker: at 20 ms these took a third of ``kwsd run --input``'s CPU (bench/RESULTS.md)."""


class ArraySource(Source):
    """A signal already in memory (a decoded WAV), written in blocks by a thread."""

    finite = True

    def __init__(
        self, audio: np.ndarray, rate: int, realtime: bool = False, description: str = "", block_ms: int | None = None
    ):
        self.audio, self.rate, self.realtime = audio, rate, realtime
        self.description = description
        if block_ms is None:
            block_ms = REALTIME_BLOCK_MS if realtime else FAST_BLOCK_MS
        self.block = max(1, rate * block_ms // 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def start(self, ring: RingBuffer) -> None:
        self._thread = threading.Thread(target=self._run, args=(ring,), name="kwsd-source", daemon=True)
        self._thread.start()

    def _blocks(self):
        for i in range(0, len(self.audio), self.block):
            yield self.audio[i : i + self.block]

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
        super().__init__(
            np.zeros(0, np.float32), self.reader.rate, realtime, description=f"file {path} ({self.reader.rate} Hz)"
        )

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
            data = (
                self.stream.read1(self.block * 2) if hasattr(self.stream, "read1") else self.stream.read(self.block * 2)
            )
            if not data:
                break
            data = carry + data
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            if usable:
                yield np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0

"""The worker thread: ring buffer -> resample -> features -> model(s) -> smoother -> sinks.

Every ``clip_stride_ms`` of audio the worker computes the new feature frames, runs
each model on the current feature window and feeds its scores to that model's
RecognizeCommands.  Models whose frontend parameters are equal share one feature
stream.  The microphone callback never waits on this thread: it only writes into
the ring, and a worker that falls behind shows up as ring overflows.
``heartbeat`` is the monotonic time of the last processed stride, for a watchdog.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .audio import RingBuffer, Source, StreamResampler
from .detection import Detection
from .features import FrontendParams, MfccFrontend, StreamingMfcc
from .model import KeywordModel
from .recognize import RecognizeCommands

log = logging.getLogger(__name__)


@dataclass
class SmootherSettings:
    average_window_ms: int = 500
    detection_threshold: float = 0.7
    suppression_ms: int = 1500
    minimum_count: int = 3
    thresholds: dict = field(default_factory=dict)


@dataclass
class Stats:
    strides: int = 0
    detections: int = 0
    overflows: int = 0
    dropped_samples: int = 0
    feature_ns: int = 0
    invoke_ns: int = 0
    invokes: int = 0


class _FrontendGroup:
    """One feature stream and the models that read it."""

    def __init__(self, params: FrontendParams, device_rate: int, stride_ms: int):
        self.params = params
        self.features = StreamingMfcc(MfccFrontend(params))
        self.resampler = StreamResampler(device_rate, params.sample_rate)
        self.stride = params.sample_rate * stride_ms // 1000
        self.pending = np.zeros(0, np.float32)
        self.samples = 0  # model-rate samples consumed since the stream started
        self.models: list[tuple[KeywordModel, RecognizeCommands]] = []


class Engine:
    def __init__(self, models: list[KeywordModel], source: Source, sinks, smoother: SmootherSettings,
                 clip_stride_ms: int = 40, ring_seconds: float = 2.0):
        self.source = source
        self.sinks = list(sinks)
        self.clip_stride_ms = clip_stride_ms
        self.ring = RingBuffer(int(source.rate * ring_seconds))
        self.groups: list[_FrontendGroup] = []
        for model in models:
            group = next((g for g in self.groups if g.params == model.frontend), None)
            if group is None:
                group = _FrontendGroup(model.frontend, source.rate, clip_stride_ms)
                self.groups.append(group)
            group.models.append((model, self._smoother(model, smoother)))
        self.enabled = True  # False mutes detections (MQTT 'set', Hermes toggleOff)
        self.stats = Stats()
        self.heartbeat = time.monotonic()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kwsd-worker", daemon=True)
        self._overflow_seen = 0
        self._overflow_burst_until = 0.0

    @staticmethod
    def _smoother(model: KeywordModel, s: SmootherSettings) -> RecognizeCommands:
        return RecognizeCommands(model.labels, s.average_window_ms, s.detection_threshold,
                                 s.suppression_ms, s.minimum_count, s.thresholds)

    def update_smoother(self, s: SmootherSettings) -> None:
        """New thresholds etc. (config reload); takes effect at the next stride."""
        for group in self.groups:
            group.models = [(m, self._smoother(m, s)) for m, _ in group.models]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.source.start(self.ring)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        self.ring.data_ready.set()

    def join(self, timeout=None) -> bool:
        """Wait for the worker; True once it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stalled(self, max_age_s: float) -> bool:
        """True if the worker has processed no stride for ``max_age_s`` (for a watchdog)."""
        return time.monotonic() - self.heartbeat > max_age_s

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        wait_s = self.clip_stride_ms / 1000
        try:
            while not self._stop.is_set():
                self._check_overflows()
                n = self.ring.available()
                if n:
                    self._feed(self.ring.read(n))
                elif self.ring.closed:
                    self._finish()
                    break
                else:
                    self.ring.data_ready.wait(wait_s)
                    self.ring.data_ready.clear()
            error = getattr(self.source, "error", None)
            if error is not None:
                raise error
        except BaseException as e:  # reported by whoever joins us
            self.error = e
            log.debug("worker failed", exc_info=True)

    def _feed(self, block: np.ndarray) -> None:
        for group in self.groups:
            x = group.resampler.process(block)
            self._run_strides(group, x)

    def _finish(self) -> None:
        """End of a finite stream: release the resampler's tail, then one clip of silence
        so that a keyword at the very end still fills enough averaging windows."""
        for group in self.groups:
            tail = group.resampler.flush()
            silence = np.zeros(group.params.clip_samples, np.float32)
            self._run_strides(group, np.concatenate((tail, silence)))

    def _run_strides(self, group: _FrontendGroup, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        pending = np.concatenate((group.pending, x)) if len(group.pending) else x
        stride = group.stride
        full = len(pending) // stride * stride
        for i in range(0, full, stride):
            t0 = time.perf_counter_ns()
            group.features.push(pending[i:i + stride])
            t1 = time.perf_counter_ns()
            group.samples += stride
            self.stats.feature_ns += t1 - t0
            if group.features.frames_seen >= group.params.num_frames:
                self._infer(group)
            self.stats.strides += 1
            self.heartbeat = time.monotonic()
        group.pending = pending[full:].copy()

    def _infer(self, group: _FrontendGroup) -> None:
        audio_ms = group.samples * 1000 // group.params.sample_rate
        for model, smoother in group.models:
            t0 = time.perf_counter_ns()
            scores = model.scores(group.features.window)
            self.stats.invoke_ns += time.perf_counter_ns() - t0
            self.stats.invokes += 1
            result = smoother.process(scores, audio_ms)
            if result.is_new_command:
                if self.enabled:
                    self._deliver(Detection(result.label, result.score, audio_ms, model.name))
                else:
                    log.debug("muted: '%s' (%.2f) at %d ms not reported", result.label, result.score, audio_ms)

    def _deliver(self, d: Detection) -> None:
        self.stats.detections += 1
        for sink in self.sinks:
            try:
                sink(d)
            except Exception as e:  # one broken sink must not stop detection or the others
                log.error("sink %s failed on a detection: %s", getattr(sink, "__name__", sink), e)

    def _check_overflows(self) -> None:
        ring = self.ring
        if ring.overflows != self._overflow_seen:
            now = time.monotonic()
            dropped = ring.dropped_samples - self.stats.dropped_samples
            if now > self._overflow_burst_until:
                log.warning("audio overflow: the worker fell behind and %d samples were dropped "
                            "(logged once per burst; total overflows %d)", dropped, ring.overflows)
            self._overflow_burst_until = now + 5.0
            self._overflow_seen = ring.overflows
            self.stats.overflows = ring.overflows
            self.stats.dropped_samples = ring.dropped_samples
            for group in self.groups:  # keep audio_ms on the wall-clock timeline across the gap
                group.samples += dropped * group.params.sample_rate // self.source.rate

    def close_sinks(self) -> None:
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:
                    log.error("closing sink %s: %s", sink, e)

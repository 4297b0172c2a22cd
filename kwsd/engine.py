"""The worker thread: ring buffer -> Pipeline (resample, features, models, smoother) -> sinks.

The microphone callback never waits on this thread: it only writes into the ring,
and a worker that falls behind shows up as ring overflows.  Everything between the
ring and the detections is the thread-free :class:`kwsd.pipeline.Pipeline`; this
module adds only the thread, muting, delivery to the sinks and overflow accounting.
``heartbeat`` is the monotonic time of the last processed stride, for a watchdog.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Optional

from .audio import RingBuffer
from .detection import Detection
from .model import KeywordModel
from .mute import MuteSwitch
from .pipeline import DEFAULT_SCORE_GATE, DEFAULT_SILENCE_GATE_DBFS, Pipeline
from .recognize import SmootherSettings
from .sources import Source

log = logging.getLogger(__name__)

# While the silence gate is shut the worker wakes once per this many strides instead of once per
# microphone block (bench/RESULTS.md: the worker's share of a quiet room's CPU). The stride that
# opens the gate is then handled up to five strides (400 ms at 80 ms) late; the worker catches up
# at once, and a detection, whose average window (800 ms for the bundled model) must first fill
# with at least three scores above a threshold of 0.5 or more (the quick rule: three results above
# 0.95, given once the network has heard most of a word), comes long after a word's start.
QUIET_WAKE_STRIDES = 6


def name_os_thread(name: str) -> None:
    """Give the calling thread its name in the kernel too, so that ``top -H`` and ``ps -L`` show
    which of kwsd's threads uses the CPU (Python 3.11 names only its own thread objects)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME
    except (OSError, AttributeError):  # not Linux
        pass


class Engine:
    def __init__(
        self,
        models: list[KeywordModel],
        source: Source,
        sinks,
        smoother: Optional[SmootherSettings] = None,
        clip_stride_ms: Optional[int] = None,
        ring_seconds: float = 2.0,
        recognize: Optional[dict] = None,
        switch: Optional[MuteSwitch] = None,
        silence_gate_dbfs: Optional[float] = DEFAULT_SILENCE_GATE_DBFS,
        score_gate: Optional[float] = DEFAULT_SCORE_GATE,
    ):
        """``smoother`` fixes the settings for every model; else each model's recommendation
        with the config's ``recognize`` values (``recognize``) on top.  ``switch``: the mute
        state shared with the sinks that change it (MQTT)."""
        self.source = source
        self.sinks = list(sinks)
        self.ring = RingBuffer(int(source.rate * ring_seconds))
        self.pipeline = Pipeline(
            models,
            source.rate,
            smoother,
            clip_stride_ms,
            recognize=recognize,
            silence_gate_dbfs=silence_gate_dbfs,
            score_gate=score_gate,
        )
        self.clip_stride_ms = self.pipeline.clip_stride_ms
        self.switch = switch if switch is not None else MuteSwitch()
        self.heartbeat = time.monotonic()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kwsd-worker", daemon=True)
        # detections go to the sinks from their own thread: a slow sink (a GPIO line, a log
        # on a full disk) never holds up inference; None in the queue ends that thread
        self._deliveries: queue.SimpleQueue = queue.SimpleQueue()
        self._delivery_thread = threading.Thread(target=self._deliver_loop, name="kwsd-sinks", daemon=True)
        self.delivering_since: float | None = None  # when the sinks started on the current detection
        self._overflow_seen = 0
        self._overflow_burst_until = 0.0

    @property
    def enabled(self) -> bool:
        """False while detections are muted (MQTT 'set', Hermes toggleOff)."""
        return self.switch.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.switch.enabled = value

    @property
    def stats(self):
        return self.pipeline.stats

    @property
    def groups(self):
        return self.pipeline.groups

    def update_smoother(self, smoother: Optional[SmootherSettings] = None, recognize: Optional[dict] = None) -> None:
        """New thresholds etc. (config reload); takes effect at the next stride."""
        self.pipeline.update_smoother(smoother, recognize)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._delivery_thread.start()
        try:
            self.source.start(self.ring)
        except BaseException:
            self._deliveries.put(None)
            raise
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        self.ring.data_ready.set()

    def join(self, timeout=None) -> bool:
        """Wait for the worker and then for the delivery of its last detections; True once both are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self._delivery_thread.ident is None:
            return True
        self._delivery_thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self._delivery_thread.is_alive()

    def stalled(self, max_age_s: float, sinks: bool = True) -> bool:
        """True if the worker has processed no stride for ``max_age_s``, or (``sinks``) a sink has been
        busy with one detection that long (for a watchdog: either way, detections are not getting out)."""
        now = time.monotonic()
        busy = self.delivering_since
        return now - self.heartbeat > max_age_s or (sinks and busy is not None and now - busy > max_age_s)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        name_os_thread(self._thread.name)
        wait_s = self.clip_stride_ms / 1000
        try:
            while not self._stop.is_set():
                self._check_overflows()
                n = self.ring.available()
                if n:
                    self._handle(self.pipeline.process(self.ring.read(n)))
                elif self.ring.closed:
                    self._handle(self.pipeline.finish())
                    break
                elif self.pipeline.quiet:
                    # nothing can be detected before a loud stride opens the gate: take quiet
                    # audio a few strides at a time
                    self._stop.wait(wait_s * QUIET_WAKE_STRIDES)
                else:
                    self.ring.data_ready.wait(wait_s)
                    self.ring.data_ready.clear()
            error = getattr(self.source, "error", None)
            if error is not None:
                raise error
        except BaseException as e:  # reported by whoever joins us
            self.error = e
            log.debug("worker failed", exc_info=True)
        finally:
            self._deliveries.put(None)  # after the last detection: the delivery thread ends

    def _handle(self, detections: list[Detection]) -> None:
        self.heartbeat = time.monotonic()
        for d in detections:
            if self.enabled:
                self.stats.detections += 1
                self._deliveries.put(d)
            else:
                log.debug("muted: '%s' (%.2f) at %d ms not reported", d.keyword, d.score, d.audio_ms)

    def _deliver_loop(self) -> None:
        name_os_thread(self._delivery_thread.name)
        while (d := self._deliveries.get()) is not None:
            self.delivering_since = time.monotonic()
            self._deliver(d)
            self.delivering_since = None

    def _deliver(self, d: Detection) -> None:
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
                log.warning(
                    "audio overflow: the worker fell behind and %d samples were dropped "
                    "(logged once per burst; total overflows %d)",
                    dropped,
                    ring.overflows,
                )
            self._overflow_burst_until = now + 5.0
            self._overflow_seen = ring.overflows
            self.stats.overflows = ring.overflows
            self.stats.dropped_samples = ring.dropped_samples
            self.pipeline.skip(dropped)  # keep audio_ms on the wall-clock timeline across the gap

    def close_sinks(self) -> int:
        """Close every sink; returns how many detections some sink could not deliver."""
        lost = 0
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    lost += close() or 0
                except Exception as e:
                    log.error("closing sink %s: %s", sink, e)
        return lost

"""The worker thread: shared frontends, a heartbeat, overflows, and sinks that fail."""

import logging
import threading
import time

import numpy as np
from conftest import DEFAULT_MODEL, compose

from kwsd.engine import Engine
from kwsd.model import KeywordModel
from kwsd.recognize import SmootherSettings
from kwsd.sources import ArraySource, Source


class CallbackLikeSource(Source):
    """Writes blocks with write_nowait, as the microphone callback does, never waiting."""

    def __init__(self, audio, rate=16000, block=320, pace_s=0.0):
        self.audio, self.rate, self.block, self.pace_s = audio, rate, block, pace_s
        self.done = threading.Event()

    def start(self, ring):
        def run():
            for i in range(0, len(self.audio), self.block):
                ring.write_nowait(self.audio[i : i + self.block])
                time.sleep(self.pace_s)
            self.done.set()

        threading.Thread(target=run, daemon=True).start()


def test_models_with_equal_frontends_share_one_feature_stream():
    a, b = KeywordModel.load(DEFAULT_MODEL), KeywordModel.load(DEFAULT_MODEL)
    b.name = "copy"
    engine = Engine([a, b], ArraySource(np.zeros(16000, np.float32), 16000), [], SmootherSettings())
    assert len(engine.groups) == 1 and len(engine.groups[0].models) == 2


def test_a_hanging_sink_holds_up_neither_inference_nor_other_detections_and_is_noticed(caplog):
    audio = compose([("stop", 0, 0.5), ("yes", 0, 3.0)], 5.0)
    release = threading.Event()
    seen = []

    def broken_sink(d):
        raise RuntimeError("disk full")

    def hanging_sink(d):
        seen.append(d.keyword)
        if len(seen) == 1:
            release.wait(10)

    engine = Engine(
        [KeywordModel.load(DEFAULT_MODEL)],
        ArraySource(audio, 16000, realtime=True),
        [broken_sink, hanging_sink],
        SmootherSettings(),
    )
    with caplog.at_level(logging.ERROR):
        engine.start()
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        strides = engine.stats.strides
        time.sleep(0.5)
        assert engine.stalled(0.3)  # a sink is stuck on one detection: a watchdog notices
        assert not engine.stalled(0.3, sinks=False)  # ... while inference goes on
        assert engine.stats.strides > strides
        release.set()
        assert engine.join(20)
    assert not engine.stalled(5)
    assert seen == ["stop", "yes"]  # the failing sink stopped nothing, the hanging one lost nothing
    assert "disk full" in caplog.text


def test_overflow_is_counted_logged_once_per_burst_and_time_keeps_up(caplog):
    audio = compose([("go", 0, 4.0)], 6.0)
    source = CallbackLikeSource(audio, pace_s=0.0005)  # ~40x real time: the ring overflows
    gate = threading.Event()
    engine = Engine([KeywordModel.load(DEFAULT_MODEL)], source, [], SmootherSettings(), ring_seconds=0.5)
    original = engine.pipeline.process

    def stalled_process(block):  # the worker stalls once for long enough to lose audio
        if not gate.is_set():
            gate.set()
            time.sleep(0.5)
        return original(block)

    engine.pipeline.process = stalled_process
    with caplog.at_level(logging.WARNING):
        engine.start()
        assert source.done.wait(20)
        deadline = time.monotonic() + 20
        while engine.ring.available() and time.monotonic() < deadline:  # the worker reads what is left
            time.sleep(0.01)
        engine.ring.close()
        assert engine.join(20)
    assert engine.stats.overflows > 1 and engine.stats.dropped_samples > 0
    assert caplog.text.count("audio overflow") == 1  # one burst, one line
    processed = engine.groups[0].samples
    assert abs(processed - len(audio) - 16000) <= 640 * 2  # audio_ms counts the dropped samples too


class EngineOnAClock:
    """What DeviceRecovery reads of an engine (heartbeat, strides, its source), on a clock the test moves."""

    def __init__(self):
        self.clock = self.heartbeat = 100.0
        self.stats = type("Stats", (), {"strides": 50})()
        self.reopened: list[float] = []
        self.source = type(
            "Microphone",
            (),
            {"description": "mic", "alive": lambda _: True, "reopen": lambda _, ring: self.reopened.append(self.clock)},
        )()
        self.ring = None

    def stalled(self, max_age_s, sinks=True):
        return self.clock - self.heartbeat > max_age_s

    def turns(self, recovery, until, audio_from=None):
        """The daemon's main loop: a check every half second; strides again from ``audio_from`` on."""
        while self.clock < until:
            self.clock += 0.5
            if audio_from is not None and self.clock >= audio_from:
                self.heartbeat = self.clock
            recovery.check(self.clock)


def test_a_stopped_process_gives_its_microphone_time_to_come_back_before_reopening_it():
    """After a 4 s SIGSTOP, audio that takes 2.5 s to flow again is not a lost device (a CI run reopened
    the microphone there); a microphone still silent once the grace is over is reopened."""
    from kwsd.recovery import DeviceRecovery

    slow = EngineOnAClock()
    recovery = DeviceRecovery(slow)
    recovery.check(slow.clock)
    slow.clock += 4.0  # stopped: no turn, no stride
    recovery.check(slow.clock)
    slow.turns(recovery, until=slow.clock + 10, audio_from=slow.clock + 2.5)
    assert slow.reopened == []

    dead = EngineOnAClock()
    recovery = DeviceRecovery(dead)
    recovery.check(dead.clock)
    dead.clock += 4.0
    recovery.check(dead.clock)
    resumed = dead.clock
    dead.turns(recovery, until=resumed + 6)
    assert len(dead.reopened) == 1 and resumed + 3 < dead.reopened[0] <= resumed + 5.5

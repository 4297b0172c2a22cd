"""``kwsd run``: load models, open the audio source, run the engine until the end or a signal."""
from __future__ import annotations

import logging
import os
import signal
import threading

from .audio import MicrophoneSource, StdinSource, WavSource
from .config import Config
from .engine import Engine, SmootherSettings
from .errors import ConfigError, ModelError, NoMicrophoneError
from .model import KeywordModel
from .resources import DEFAULT_MODEL, SAMPLE_RECORDING, bundled
from .sinks.console import JsonLines, log_detection

log = logging.getLogger("kwsd")


def load_models(paths, config: Config) -> list[KeywordModel]:
    paths = list(paths or config.models)
    if not paths:
        default = bundled(DEFAULT_MODEL)
        if default is None:
            raise ModelError(f"the bundled model {DEFAULT_MODEL} is not installed; give one with --model")
        paths = [default]
    models = [KeywordModel.load(p, config.inference.backend, config.inference.threads) for p in paths]
    names = [m.name for m in models]
    for m in models:
        if names.count(m.name) > 1:
            raise ModelError(f"two models are named '{m.name}'; detections could not be told apart")
        stride = m.frontend.window_stride_ms
        if config.inference.clip_stride_ms % stride:
            raise ConfigError(f"inference.clip_stride_ms: {config.inference.clip_stride_ms} is not a multiple "
                              f"of model {m.path}'s window stride ({stride:g} ms)")
    return models


def smoother_settings(config: Config) -> SmootherSettings:
    r = config.recognize
    return SmootherSettings(r.average_window_ms, r.detection_threshold, r.suppression_ms, r.minimum_count,
                            dict(r.thresholds))


def open_source(config: Config, input_path, realtime: bool, wanted_rate: int):
    """The audio source; with no microphone and no systemd, the bundled sample instead."""
    if input_path == "-":
        return StdinSource(16000, realtime)
    if input_path:
        return WavSource(input_path, realtime)
    a = config.audio
    try:
        return MicrophoneSource(a.device, a.channel, a.sample_rate, wanted_rate, a.block_ms)
    except NoMicrophoneError as e:
        sample = bundled(SAMPLE_RECORDING)
        if os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET") or sample is None:
            raise  # a service must fail visibly so systemd can restart it
        log.warning("%s; meanwhile, here is the bundled sample recording %s", e, sample)
        return WavSource(str(sample), realtime)


def run(config: Config, model_paths=None, input_path=None, realtime=False, json_output=False) -> int:
    models = load_models(model_paths, config)
    source = open_source(config, input_path, realtime, models[0].frontend.sample_rate)
    sinks = [log_detection] + ([JsonLines()] if json_output else [])
    engine = Engine(models, source, sinks, smoother_settings(config), config.inference.clip_stride_ms,
                    config.audio.ring_seconds)
    if config.mqtt is not None:
        from .sinks.mqtt import MqttSink
        keywords = list(dict.fromkeys(k for m in models for k in m.keywords))
        mqtt = MqttSink(config.mqtt, keywords, lambda on: setattr(engine, "enabled", on), [m.name for m in models])
        mqtt.start()
        engine.sinks.append(mqtt)
    for m in models:
        log.info("model '%s': %s (%s)", m.name, ", ".join(m.keywords), m.backend)
    log.info("listening to %s", source.description)

    stop = threading.Event()

    def on_signal(signum, _frame):
        if not stop.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()
        engine.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        engine.start()
        while not engine.join(0.25):
            pass
    finally:
        engine.stop()
        engine.join(5)
        engine.close_sinks()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if engine.error is not None:
        raise engine.error
    s = engine.stats
    log.info("done: %d detection(s); %d stride(s); %d overflow(s)", s.detections, s.strides, s.overflows)
    return 0

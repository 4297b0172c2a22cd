"""``kwsd run``: load models, open the audio source, run the engine until the end or a signal.

The main thread supervises: it tells systemd when audio flows (READY=1), pets the
watchdog only while the worker makes progress, publishes STATUS, reloads the config
on SIGHUP (thresholds, MQTT and hooks change; the audio device stays open), and on
SIGTERM says STOPPING=1 and lets every sink deliver what it holds before exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from .cascade_model import CascadeKeywordModel
from .config import Config, check_keywords, load_config
from .engine import Engine
from .errors import EXIT_UNDELIVERED, ConfigError, KwsdError, ModelError, NoMicrophoneError
from .microphone import MicrophoneSource
from .model import KeywordModel
from .mute import MuteSwitch
from .pipeline import DEFAULT_CLIP_STRIDE_MS, choose_clip_stride
from .recognize import SmootherSettings, reported_keywords
from .recovery import DeviceRecovery
from .resources import SAMPLE_RECORDING, bundled, default_model
from .service import Notifier
from .sinks.console import JsonLines, log_detection
from .sources import StdinSource, WavSource

# The main thread's turn: short until the first stride (READY within 0.2 s of it), then longer, as a
# quiet room's idle CPU is every thread's wake-ups (bench/RESULTS.md); SIGTERM still acts at once
FIRST_TURN_S, TURN_S = 0.2, 0.5

log = logging.getLogger("kwsd")


def load_models(paths, config: Config) -> list[KeywordModel]:
    paths = list(paths or config.models) or [default_model()]
    i = config.inference
    models = [KeywordModel.load(p, i.backend, i.threads, i.second_stage) for p in paths]
    names = [m.name for m in models]
    clip_stride = choose_clip_stride(models, i.clip_stride_ms)
    for m in models:
        if names.count(m.name) > 1:
            raise ModelError(f"two models are named '{m.name}'; detections could not be told apart")
        stride = m.frontend.window_stride_ms
        if clip_stride % stride:
            raise ConfigError(
                f"inference.clip_stride_ms: {clip_stride} is not a multiple "
                f"of model {m.path}'s window stride ({stride:g} ms)"
            )
    return models


def open_source(
    config: Config, input_path, realtime: bool, wanted_rate: int, clip_stride_ms: int = DEFAULT_CLIP_STRIDE_MS
):
    """The audio source; with no microphone and no systemd, the bundled sample instead.

    The microphone delivers blocks of ``audio.block_ms``; by default one clip stride (see
    MicrophoneSource), so that the audio path wakes once per stride instead of every 20 ms."""
    if input_path == "-":
        return StdinSource(16000, realtime)
    if input_path:
        return WavSource(input_path, realtime)
    a = config.audio
    try:
        return MicrophoneSource(a.device, a.channel, a.sample_rate, wanted_rate, a.block_ms, clip_stride_ms)
    except NoMicrophoneError as e:
        sample = bundled(SAMPLE_RECORDING)
        if os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET") or sample is None:
            raise  # a service must fail visibly so systemd can restart it
        log.warning("%s; meanwhile, here is the bundled sample recording %s", e, sample)
        return WavSource(str(sample), realtime)


class Daemon:
    def __init__(
        self,
        config: Config,
        config_path=None,
        model_paths=None,
        input_path=None,
        realtime=False,
        json_output=False,
        reload_requested: threading.Event | None = None,
    ):
        self.config, self.config_path = config, config_path
        self.json_output = json_output
        self.models = load_models(model_paths, config)
        self.keywords = list(dict.fromkeys(k for m in self.models for k in m.keywords))
        check_keywords(config, self.keywords)
        clip_stride_ms = choose_clip_stride(self.models, config.inference.clip_stride_ms)
        source = open_source(config, input_path, realtime, self.models[0].frontend.sample_rate, clip_stride_ms)
        self.switch = MuteSwitch()  # the mute state: set by MQTT, read by the engine and the sinks
        sinks = self.build_sinks(config)
        self.engine = Engine(
            self.models,
            source,
            sinks,
            None,
            config.inference.clip_stride_ms,
            config.audio.ring_seconds,
            recognize=config.recognize.overrides(),
            switch=self.switch,
            silence_gate_dbfs=config.inference.silence_gate_dbfs,
            score_gate=config.inference.score_gate,
        )
        self.notifier = Notifier()
        self._stop = threading.Event()
        self.lost = 0  # detections that sinks replaced by a reload could not deliver
        # a SIGHUP that came while starting (see cli.EARLY_RELOAD) is a reload once running
        self._reload = reload_requested if reload_requested is not None else threading.Event()

    def build_sinks(self, config: Config) -> list:
        """Every destination of a detection, as the config asks; started and ready to use."""
        self.parts = {key: self._build_part(key, config) for key in ("gpio", "commands", "mqtt")}
        return self._sink_list()

    def _sink_list(self) -> list:
        fixed = [log_detection] + ([JsonLines()] if self.json_output else [])
        return fixed + [p for p in self.parts.values() if p is not None]

    @staticmethod
    def _site(config: Config) -> str:
        return config.mqtt.site if config.mqtt else ""  # empty = the hostname

    @classmethod
    def _section(cls, config: Config, key: str):
        return {
            "gpio": config.hooks.gpio,
            "commands": (config.hooks.commands, config.hooks.max_concurrent, cls._site(config)),
            "mqtt": (config.mqtt, config.recognize.keywords),  # discovery announces the keywords reported
        }[key]

    def _build_part(self, key: str, config: Config):
        reported = reported_keywords(self.models, config.recognize.overrides())  # discovery announces them
        if key == "gpio" and config.hooks.gpio:
            from .sinks.gpio import GpioHooks

            part: Any = GpioHooks(config.hooks.gpio)
        elif key == "commands" and config.hooks.commands:
            from .sinks.hooks import CommandHooks

            part = CommandHooks(config.hooks.commands, config.hooks.max_concurrent, self._site(config))
        elif key == "mqtt" and config.mqtt is not None:
            from .sinks.mqtt import MqttSink

            part = MqttSink(config.mqtt, reported, self.switch, [m.name for m in self.models])
            part.start()
        else:
            return None
        if key != "mqtt":
            for hook in getattr(part, "hooks", []):
                if hook.keyword != "*" and hook.keyword not in reported:
                    log.warning(
                        "a hook waits for '%s', never reported: no loaded model has it or recognize.keywords omits it",
                        hook.keyword,
                    )
        return part

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        engine = self.engine
        self._log_models()
        log.info("listening to %s", engine.source.description)
        handlers = {signal.SIGINT: self._on_stop, signal.SIGTERM: self._on_stop, signal.SIGHUP: self._on_hup}
        previous = {s: signal.signal(s, h) for s, h in handlers.items()}
        recovery = DeviceRecovery(engine)
        self._last_status, self._flowing, self._strides_before = 0.0, False, 0
        try:
            engine.start()
            while not engine.join(self._turn_s()):
                if not self._stop.is_set():  # once stopping, a closed stream is no lost device
                    self._supervise(recovery)
        finally:
            if self._stop.is_set():
                self.notifier.stopping()
            engine.stop()
            engine.join(5)
            lost = engine.close_sinks() + self.lost
            for s, handler in previous.items():
                signal.signal(s, handler)
        if engine.error is not None:
            raise engine.error
        self._log_done()
        if lost:
            log.error("%d detection(s) were not delivered (see above)", lost)
            return EXIT_UNDELIVERED
        return 0

    def _turn_s(self) -> float:
        """Seconds to the next turn (a SIGHUP waits for it); a watchdog is petted twice per half-period."""
        turn = TURN_S if self.engine.stats.strides else FIRST_TURN_S
        return min(turn, self.notifier.watchdog_s / 4) if self.notifier.watchdog_s else turn

    def _supervise(self, recovery: DeviceRecovery) -> None:
        """One turn of the main thread: reload, READY, device recovery, watchdog, STATUS."""
        engine = self.engine
        if self._reload.is_set():
            self._reload.clear()
            self.reload()
        if not self._flowing and engine.stats.strides > self._strides_before:
            self._flowing = True  # said once audio arrives, and again after each recovery
            log.info("audio is flowing")
        if engine.stats.strides and not self.notifier.ready_sent:
            self.notifier.ready("listening")
        was_recovering = recovery.recovering
        recovery.check()
        if recovery.recovering and self._flowing:
            self._flowing, self._strides_before = False, engine.stats.strides
        # the watchdog is petted only while strides are being processed, or while a lost
        # microphone is being reopened: a stuck worker gets the service restarted
        if self.notifier.watchdog_due() and (recovery.recovering or not engine.stalled(self.notifier.watchdog_s / 2)):
            self.notifier.watchdog()
        if self.notifier.enabled and (
            time.monotonic() - self._last_status > 5 or recovery.recovering != was_recovering
        ):
            self._last_status = time.monotonic()
            s = engine.stats
            self.notifier.status(
                recovery.status
                or f"{'listening' if engine.enabled else 'muted'}; "
                f"{s.detections} detection(s), {s.overflows} overflow(s)"
            )

    def _log_models(self) -> None:
        overrides = self.config.recognize.overrides()
        for m in self.models:
            settings = SmootherSettings.for_model(m.metadata, overrides).describe()
            log.info("model '%s': %s (%s); %s", m.name, ", ".join(m.keywords), m.backend, settings)
        for keyword in sorted(set(overrides.get("thresholds", {})) - set(self.keywords)):  # a typo, most likely
            log.warning("recognize.thresholds sets '%s', which no loaded model reports: it has no effect", keyword)

    def _log_done(self) -> None:
        s = self.engine.stats
        cascades = [m for m in self.models if isinstance(m, CascadeKeywordModel)]
        second = sum(m.second_runs for m in cascades)  # most of the inference where keywords are said
        log.info(
            "done: %d detection(s); %d stride(s), %d skipped as silence, %d model run(s) skipped after low "
            "scores; %d overflow(s); mean CPU per stride: features %.0f µs, inference %.0f µs%s",
            s.detections,
            s.strides,
            s.gated,
            s.rested,
            s.overflows,
            s.feature_ns / max(1, s.strides) / 1000,
            s.invoke_ns / max(1, s.strides) / 1000,
            f"; second stage on {second} of {s.invokes} model run(s)" if cascades else "",
        )

    def _on_stop(self, signum, _frame):
        if not self._stop.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        self._stop.set()
        self.engine.stop()

    def _on_hup(self, signum, _frame):
        self._reload.set()  # handled in the main loop, not inside the signal handler

    def reload(self) -> None:
        """Re-read the config and apply it without touching the audio source.

        An invalid file is rejected and the running configuration kept.  Thresholds change
        at once; an MQTT connection or hook set is rebuilt only if its section changed
        (the old one closed first: an MQTT client id or a GPIO line can be held only once).
        """
        self.notifier.send("RELOADING=1")
        try:
            new = load_config(self.config_path)
            check_keywords(new, self.keywords)
        except KwsdError as e:
            log.error("reload rejected, keeping the running configuration: %s", e)
            self.notifier.send("READY=1")
            return
        self.engine.update_smoother(recognize=new.recognize.overrides())
        for key in ("gpio", "commands", "mqtt"):
            if self._section(new, key) == self._section(self.config, key):
                continue
            old = self.parts.get(key)
            if old is not None:
                self.parts[key] = None
                self.engine.sinks = self._sink_list()
                self.lost += old.close() or 0  # an MQTT sink hands back what it could not deliver
            try:
                self.parts[key] = self._build_part(key, new)
            except KwsdError as e:
                log.error("reload: %s is off until the next reload: %s", key, e)
            self.engine.sinks = self._sink_list()  # one reference swap: the worker sees old or new
        for key in ("audio", "models", "inference"):
            if getattr(new, key) != getattr(self.config, key):
                log.warning("config '%s' changed: restart kwsd to apply it", key)
        logging.getLogger().setLevel(getattr(logging, new.log.level.upper()))
        self.config = new
        log.info("configuration reloaded from %s", new.source)
        self._log_models()  # the thresholds now in force
        self.notifier.send("READY=1")

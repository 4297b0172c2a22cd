"""The YAML configuration: dataclasses with defaults, and one strict loader.

Search order: ``--config PATH``, ``$KWSD_CONFIG``, ``/etc/kwsd/kwsd.yaml``, built-in
defaults.  Unknown keys, wrong types and out-of-range values raise ConfigError
naming the key path and, where known, the line (exit status 78).  Frontend
parameters are deliberately absent: they come only from the model file.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass, field

import yaml

from .errors import ConfigError
from .limits import CONFIG_MAX_BYTES, read_bounded
from .model import BACKENDS
from .pipeline import DEFAULT_SCORE_GATE, DEFAULT_SILENCE_GATE_DBFS
from .sinks.settings import CommandHook, GpioHook, MqttConfig
from .strict_yaml import build_dataclass, compose_and_construct, key_lines

SYSTEM_CONFIG = "/etc/kwsd/kwsd.yaml"
BACKEND_CHOICES = ("auto", *BACKENDS)
LEVELS = ("debug", "info", "warning", "error")


def _opt(default, **limits):
    """A field with a default and validation limits (min, max, choices)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=limits)
    return field(default=default, metadata=limits)


@dataclass
class AudioConfig:
    device: typing.Optional[typing.Union[int, str]] = _opt(None)  # index, or part of the name; null = default
    channel: typing.Optional[int] = _opt(None, min=0, max=63)  # null: one, mixed by the server (hw: the mean of two)
    sample_rate: typing.Optional[int] = _opt(None, min=4000, max=384000)  # capture rate; null = automatic
    block_ms: typing.Optional[int] = _opt(None, min=5, max=200)  # null = the clip stride
    ring_seconds: float = _opt(2.0, min=0.5, max=60.0)


@dataclass
class RecognizeConfig:
    """Smoother settings; null (unset) = the model's recommended value, else the built-in
    default (kwsd.recognize.SmootherSettings)."""

    average_window_ms: typing.Optional[int] = _opt(None, min=0, max=10000)
    detection_threshold: typing.Optional[float] = _opt(None, min=0.0, max=1.0)
    suppression_ms: typing.Optional[int] = _opt(None, min=0, max=60000)
    minimum_count: typing.Optional[int] = _opt(None, min=1, max=100)
    thresholds: typing.Dict[str, float] = _opt({}, min=0.0, max=1.0)  # per keyword
    # also report a keyword whose average over quick_window_ms exceeds this (and its own threshold)
    quick_threshold: typing.Optional[float] = _opt(None, min=0.0, max=1.0)
    quick_window_ms: typing.Optional[int] = _opt(None, min=0, max=10000)
    # the keywords to report; null = every keyword of the loaded models (kwsd.recognize)
    keywords: typing.Optional[typing.List[str]] = _opt(None, min_items=1)

    def overrides(self) -> dict:
        """The values the config sets explicitly."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


@dataclass
class InferenceConfig:
    clip_stride_ms: typing.Optional[int] = _opt(None, min=10, max=1000)  # null = the model's, else 40
    backend: str = _opt("auto", choices=BACKEND_CHOICES)
    threads: int = _opt(1, min=1, max=16)
    # skip the models while a whole clip stays below this RMS level; null = never skip
    silence_gate_dbfs: typing.Optional[float] = _opt(DEFAULT_SILENCE_GATE_DBFS, min=-120.0, max=0.0)
    # a model whose keywords all scored below this skips the next stride; null = never skip
    score_gate: typing.Optional[float] = _opt(DEFAULT_SCORE_GATE, min=0.0, max=1.0)
    # false: a model file's second stage is not loaded; its first network alone scores every stride
    second_stage: bool = _opt(True)


@dataclass
class LogConfig:
    level: str = _opt("info", choices=LEVELS)


@dataclass
class HooksConfig:
    max_concurrent: int = _opt(4, min=1, max=64)  # command hooks running at once
    commands: typing.List[CommandHook] = _opt([])
    gpio: typing.List[GpioHook] = _opt([])


@dataclass
class Config:
    models: typing.List[str] = _opt([])  # model files; empty = the bundled default model
    audio: AudioConfig = field(default_factory=AudioConfig)
    recognize: RecognizeConfig = field(default_factory=RecognizeConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mqtt: typing.Optional[MqttConfig] = _opt(None)  # null = no MQTT
    hooks: HooksConfig = field(default_factory=HooksConfig)
    source: str = field(default="built-in defaults", compare=False, metadata={"internal": True})

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d


def find_config_path(cli_path: str | None) -> str | None:
    if cli_path:
        return cli_path
    env = os.environ.get("KWSD_CONFIG")
    if env:
        return env
    if os.path.exists(SYSTEM_CONFIG):
        return SYSTEM_CONFIG
    return None


def load_config(cli_path: str | None = None) -> Config:
    path = find_config_path(cli_path)
    if path is None:
        return Config()
    try:
        text = read_bounded(path, CONFIG_MAX_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"config {path}: cannot read ({str(e)[:200]})") from None
    config = parse_config(text, path)
    config.source = path
    return config


def parse_config(text: str, name: str = "config") -> Config:
    try:
        data, node = compose_and_construct(text)
        lines = key_lines(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config {name}:{where}: invalid YAML ({problem[:200]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {name}: the top level must be a mapping of sections, not {type(data).__name__}")
    return build_dataclass(Config, data, (), lines, f"config {name}")


def recognize_from_dict(data, source: str) -> RecognizeConfig:
    """A model's recommended ``recognize`` settings, checked by the config's own rules."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: recognize: must be a mapping")
    return build_dataclass(RecognizeConfig, data, ("recognize",), {}, source)


def check_keywords(config: Config, known: list[str]) -> None:
    """ConfigError if ``recognize.keywords`` names a word no loaded model knows: a typo there
    would leave the daemon deaf to the word the user wanted, without a sound."""
    unknown = [k for k in config.recognize.keywords or [] if k not in known]
    if unknown:
        raise ConfigError(
            f"config {config.source}: recognize.keywords: {', '.join(map(repr, unknown))} "
            f"{'is' if len(unknown) == 1 else 'are'} not a keyword of the loaded model(s) ({', '.join(known)})"
        )


def dump_config(config: Config) -> str:
    return f"# effective configuration (from {config.source})\n" + yaml.safe_dump(config.to_dict(), sort_keys=False)

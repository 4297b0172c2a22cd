"""The YAML configuration: dataclasses with defaults, and one strict loader.

Search order: ``--config PATH``, ``$KWSD_CONFIG``, ``/etc/kwsd/kwsd.yaml``, built-in
defaults.  Unknown keys, wrong types and out-of-range values raise ConfigError
naming the key path and, where known, the line (exit status 78).  Frontend
parameters are deliberately absent: they come only from the model file.
"""
from __future__ import annotations

import math
import os
import re
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass

import yaml

from .errors import ConfigError
from .limits import CONFIG_MAX_BYTES, read_bounded, shorten
from .sinks.gpio import GpioHook
from .sinks.hooks import CommandHook
from .sinks.mqtt import MqttConfig

SYSTEM_CONFIG = "/etc/kwsd/kwsd.yaml"
BACKEND_CHOICES = ("auto", "ai_edge_litert", "tflite_runtime", "tensorflow")
LEVELS = ("debug", "info", "warning", "error")


def _opt(default, **limits):
    """A field with a default and validation limits (min, max, choices)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=limits)
    return field(default=default, metadata=limits)


@dataclass
class AudioConfig:
    device: typing.Optional[typing.Union[int, str]] = _opt(None)  # index, or part of the name; null = default
    channel: typing.Optional[int] = _opt(None, min=0, max=63)  # null = mean of the channels
    sample_rate: typing.Optional[int] = _opt(None, min=4000, max=384000)  # capture rate; null = automatic
    block_ms: int = _opt(20, min=5, max=200)
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

    def overrides(self) -> dict:
        """The values the config sets explicitly."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


@dataclass
class InferenceConfig:
    clip_stride_ms: int = _opt(40, min=10, max=1000)
    backend: str = _opt("auto", choices=BACKEND_CHOICES)
    threads: int = _opt(1, min=1, max=16)


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


# ------------------------------------------------------------------------- loading

MAX_DEPTH = 16  # the deepest kwsd config is four levels
MAX_STRING = 4096  # PATH_MAX; no value of a kwsd config is longer


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, and refusing what a config never needs.

    Under YAML 1.1 rules ``yes``, ``no``, ``on`` and ``off`` -- four of the default
    model's keywords -- would silently become booleans in ``thresholds: {yes: 0.9}``.
    Aliases are refused (a "billion laughs" document expands a few hundred bytes into
    gigabytes, a recursive one never ends), nesting is limited (PyYAML's composer
    recurses), and a key given twice in one mapping is an error instead of the last
    one silently winning.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not supported in kwsd files",
                                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise yaml.composer.ComposerError(None, None, f"the key {shorten(key.value)} is given twice",
                                                      key.start_mark)
                seen.add(key.value)
        return node


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


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


def load_yaml(text: str):
    """yaml.safe_load with the rules of _Loader (YAML 1.2 booleans, no aliases, bounded depth)."""
    return _compose_and_construct(text)[0]


def _compose_and_construct(text: str):
    """(data, root node) from one pass of the parser; a SafeLoader: no arbitrary objects."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def parse_config(text: str, name: str = "config") -> Config:
    try:
        data, node = _compose_and_construct(text)
        lines = _key_lines(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config {name}:{where}: invalid YAML ({problem[:200]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {name}: the top level must be a mapping of sections, not {type(data).__name__}")
    return _build(Config, data, (), lines, f"config {name}")


def recognize_from_dict(data, source: str) -> RecognizeConfig:
    """A model's recommended ``recognize`` settings, checked by the config's own rules."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: recognize: must be a mapping")
    return _build(RecognizeConfig, data, ("recognize",), {}, source)


def _key_lines(node, path=(), out=None) -> dict:
    """Map each key path to the 1-based line where it appears."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            p = path + (str(key.value),)
            out[p] = key.start_mark.line + 1
            _key_lines(value, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            p = path + (str(i),)
            out[p] = item.start_mark.line + 1
            _key_lines(item, p, out)
    return out


def _printable(key: str) -> str:
    """A key as it can stand in a one-line message: control characters escaped, long keys cut."""
    key = key if key.isprintable() else repr(key)
    return key if len(key) <= 60 else key[:50] + "..."


def _fail(name, path, lines, message):
    key = ".".join(_printable(p) for p in path)
    line = lines.get(tuple(path))
    where = f": line {line}" if line else ""
    raise ConfigError(f"{name}{where}: {key}: {message}")


def _build(cls, data, path, lines, name):
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in known:
            hint = f"; known keys: {', '.join(known)}"
            _fail(name, path + (str(key),), lines, f"unknown key{hint}")
    for f in known.values():
        if f.default is MISSING and f.default_factory is MISSING and f.name not in data:
            _fail(name, path, lines, f"the required key '{f.name}' is missing")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        f = known[key]
        values[key] = _convert(hints[key], value, path + (key,), lines, name, f.metadata)
    return cls(**values)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin in (list, typing.List):
        return "a list"
    if origin in (dict, typing.Dict):
        return "a mapping"
    if is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(tp, value, path, lines, name, limits):
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, lines, name, limits)
            except ConfigError:
                if len([a for a in args if a is not type(None)]) == 1:
                    raise
        _fail(name, path, lines, f"must be {_type_name(tp)}, not {shorten(value)}")
    if is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(name, path, lines, f"must be a mapping, not {shorten(value)}")
        return _build(tp, value, path, lines, name)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            _fail(name, path, lines, f"must be a list, not {shorten(value)}")
        (item_tp,) = typing.get_args(tp)
        if "min_items" in limits and len(value) < limits["min_items"]:
            _fail(name, path, lines, f"needs at least {limits['min_items']} item(s)")
        return [_convert(item_tp, v, path + (str(i),), lines, name, {}) for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            _fail(name, path, lines, f"must be a mapping, not {shorten(value)}")
        _, val_tp = typing.get_args(tp)
        return {str(k): _convert(val_tp, v, path + (str(k),), lines, name, limits) for k, v in value.items()}
    ok = (isinstance(value, tp) and not (tp is int and isinstance(value, bool))) or \
        (tp is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        _fail(name, path, lines, f"must be {_type_name(tp)}, not {shorten(value)}")
    if tp is float:
        value = float(value)
        if not math.isfinite(value):
            _fail(name, path, lines, f"must be a finite number, not {value}")
    if tp is str and len(value) > MAX_STRING:
        _fail(name, path, lines, f"is longer than {MAX_STRING} characters")
    if "check" in limits:
        problem = limits["check"](value)
        if problem:
            _fail(name, path, lines, problem)
    if "min" in limits and value < limits["min"]:
        _fail(name, path, lines, f"{value} is below the minimum {limits['min']}")
    if "max" in limits and value > limits["max"]:
        _fail(name, path, lines, f"{value} is above the maximum {limits['max']}")
    if "choices" in limits and value not in limits["choices"]:
        _fail(name, path, lines, f"{shorten(value)} is not one of {', '.join(limits['choices'])}")
    return value


def dump_config(config: Config) -> str:
    return f"# effective configuration (from {config.source})\n" + yaml.safe_dump(config.to_dict(), sort_keys=False)

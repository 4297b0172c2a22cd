"""Strict YAML into typed dataclasses, for the config file and the training config.

The loader refuses what a config never needs (aliases, deep nesting, duplicate keys, YAML 1.1
booleans); the builder fills a dataclass from the loaded mapping, checking every key, type
and limit declared in the fields' metadata (``min``, ``max``, ``choices``, ``check``,
``min_items``, ``internal``), and raises ConfigError with the file, line and key path.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import MISSING, fields, is_dataclass

import yaml

from .errors import ConfigError
from .limits import shorten

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
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not supported in kwsd files", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise yaml.composer.ComposerError(
                        None, None, f"the key {shorten(key.value)} is given twice", key.start_mark
                    )
                seen.add(key.value)
        return node


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str):
    """yaml.safe_load with the rules of _Loader (YAML 1.2 booleans, no aliases, bounded depth)."""
    return compose_and_construct(text)[0]


def compose_and_construct(text: str):
    """(data, root node) from one pass of the parser; a SafeLoader: no arbitrary objects."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def key_lines(node, path=(), out=None) -> dict:
    """Map each key path to the 1-based line where it appears."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            p = path + (str(key.value),)
            out[p] = key.start_mark.line + 1
            key_lines(value, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            p = path + (str(i),)
            out[p] = item.start_mark.line + 1
            key_lines(item, p, out)
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


def build_dataclass(cls, data, path, lines, name):
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
        return build_dataclass(tp, value, path, lines, name)
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
    ok = (isinstance(value, tp) and not (tp is int and isinstance(value, bool))) or (
        tp is float and isinstance(value, int) and not isinstance(value, bool)
    )
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

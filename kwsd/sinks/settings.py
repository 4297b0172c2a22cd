"""The configuration of each sink: plain dataclasses, read by config.py from the YAML file
and by the sinks themselves. They live apart from the sinks so that loading a config never
imports paho, gpiod or subprocess handling (config depends on this module, not on the sinks).
Field metadata (min, max, choices, check) is enforced by the config loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ..limits import host_problem, topic_level_problem, topic_prefix_problem


@dataclass
class CommandHook:
    keyword: str  # a keyword, or "*" for every keyword
    argv: List[str] = field(metadata={"min_items": 1})  # the program and its arguments; no shell
    timeout_s: float = field(default=10.0, metadata={"min": 0.1, "max": 3600.0})


@dataclass
class GpioHook:
    keyword: str  # a keyword, or "*"
    line: int = field(metadata={"min": 0, "max": 4095})  # line offset on the chip (BCM number on a Pi)
    chip: str = "/dev/gpiochip0"
    mode: str = field(default="pulse", metadata={"choices": ("pulse", "toggle")})
    pulse_ms: int = field(default=500, metadata={"min": 1, "max": 600000})
    active_low: bool = False


@dataclass
class TlsConfig:
    ca: Optional[str] = None  # CA bundle; null = the system's
    cert: Optional[str] = None  # client certificate, for brokers that require one
    key: Optional[str] = None


@dataclass
class HomeAssistantConfig:
    enabled: bool = False
    discovery_prefix: str = field(default="homeassistant", metadata={"check": topic_prefix_problem})


@dataclass
class MqttConfig:
    host: str = field(default="localhost", metadata={"check": host_problem})
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    client_id: str = ""  # empty = kwsd-<site>
    username: Optional[str] = None
    password_file: Optional[str] = None  # the password is read from this file, never from the config
    tls: Optional[TlsConfig] = None
    keepalive: int = field(default=60, metadata={"min": 5, "max": 3600})
    qos: int = field(default=1, metadata={"min": 0, "max": 2})
    topic_prefix: str = field(default="kwsd", metadata={"check": topic_prefix_problem})
    site: str = field(default="", metadata={"check": lambda v: v and topic_level_problem(v)})  # empty = hostname
    queue_size: int = field(default=1000, metadata={"min": 1, "max": 1000000})
    flush_timeout_s: float = field(default=10.0, metadata={"min": 0.0, "max": 600.0})
    hermes: bool = False  # Rhasspy Hermes hotword topics
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)

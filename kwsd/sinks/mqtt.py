"""MQTT: detections to ``<prefix>/<site>/detection``, a retained ``status`` with Last Will,
mute/resume on ``<prefix>/<site>/set``; optional Rhasspy Hermes and Home Assistant discovery.

The worker thread only appends to a bounded queue; paho's network thread does the I/O.
While the broker is unreachable, detections wait in that queue (oldest dropped and
counted when it is full) and paho reconnects with backoff.  A message handed to paho
with QoS >= 1 is kept by paho until the broker acknowledges it, across reconnections.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..detection import Detection
from ..limits import host_problem, topic_level_problem, topic_prefix_problem
from ..mute import MuteSwitch

log = logging.getLogger(__name__)

MAX_CONTROL_PAYLOAD = 4096  # a `set` or Hermes toggle message is a few dozen bytes


def _guarded(callback):
    """A paho callback that logs its failures instead of raising them into paho's network
    thread: an exception there ends the thread, and with it muting and every later delivery."""
    def wrapper(*args):
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT: error in %s (ignored)", callback.__name__)
    wrapper.__name__ = callback.__name__
    return wrapper


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


class MqttSink:
    """A detection sink that also obeys mute/resume commands from the broker."""

    def __init__(self, config: MqttConfig, keywords: list[str], switch: MuteSwitch, model_names: Sequence[str] = ()):
        import paho.mqtt.client as mqtt

        self.config = config
        self.site = config.site or socket.gethostname()
        self.keywords = list(keywords)
        self.model_names = list(model_names)
        self.switch = switch  # the mute state; read, never copied (see kwsd.mute)
        base = f"{config.topic_prefix}/{self.site}"
        self.topic_detection, self.topic_status, self.topic_set = f"{base}/detection", f"{base}/status", f"{base}/set"
        self.topic_state = f"{base}/state"
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self.dropped = 0  # dropped because the queue was full or paho refused them
        self.connected = False
        self._last: Any = None  # MQTTMessageInfo of the last message handed to paho
        self._last_message = None  # and that message
        self.dropped_detections = 0

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id or f"kwsd-{self.site}")
        client.will_set(self.topic_status, "offline", qos=1, retain=True)
        if config.username:
            client.username_pw_set(config.username, self._read_password())
        if config.tls is not None:
            client.tls_set(ca_certs=config.tls.ca, certfile=config.tls.cert, keyfile=config.tls.key)
        client.reconnect_delay_set(1, 30)
        client.suppress_exceptions = True  # paho's own guard, besides ours (_guarded)
        client.on_connect = _guarded(self._on_connect)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_message = _guarded(self._on_message)
        client.on_connect_fail = _guarded(self._on_connect_fail)
        self._fail_logged = False
        self.client = client

    def _read_password(self):
        if not self.config.password_file:
            return None
        from ..errors import ConfigError
        try:
            with open(self.config.password_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ConfigError(f"mqtt.password_file: cannot read {self.config.password_file} "
                              f"({e.strerror or e})") from None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()

    def close(self) -> int:
        """Publish 'offline', deliver what is queued (bounded by flush_timeout_s), disconnect.

        Returns how many detections were never delivered (dropped while running, or still
        queued at the deadline); each of those is logged with its content.
        """
        self._enqueue(self.topic_status, "offline", 1, True)
        deadline = time.monotonic() + self.config.flush_timeout_s
        while time.monotonic() < deadline:
            self._drain()
            with self._lock:
                done = not self._queue and (self._last is None or self._last.is_published())
            if done:
                break
            time.sleep(0.05)
        with self._lock:
            left = list(self._queue)
            if self._last is not None and not self._last.is_published():
                left.append(self._last_message)
        for topic, payload, _, _ in left:
            if topic != self.topic_status:
                log.error("MQTT: undelivered at shutdown: %s %s", topic, payload)
        if left:
            log.error("MQTT: %d message(s) could not be delivered to %s:%d before shutdown",
                      len(left), self.config.host, self.config.port)
        self.client.disconnect()
        self.client.loop_stop()
        lost = [m for m in left if m[0] == self.topic_detection]
        return len(lost) + self.dropped_detections
    # ------------------------------------------------------------------ detections
    def __call__(self, d: Detection) -> None:
        payload = {**d.to_dict(), "site": self.site}
        self._enqueue(self.topic_detection, json.dumps(payload), self.config.qos, False)
        if self.config.hermes:
            hermes = {"modelId": d.model, "modelVersion": "", "modelType": "personal",
                      "currentSensitivity": payload["score"], "siteId": self.site, "sessionId": None,
                      "sendAudioCaptured": None, "lang": None, "customEntities": None}
            self._enqueue(f"hermes/hotword/{d.keyword}/detected", json.dumps(hermes), self.config.qos, False)
        self._drain()

    def _enqueue(self, topic, payload, qos, retain) -> None:
        with self._lock:
            if len(self._queue) >= self.config.queue_size:
                self._drop(self._queue.popleft(), f"the queue is full ({self.config.queue_size})")
            self._queue.append((topic, payload, qos, retain))

    def _drop(self, message, why: str) -> None:
        """Count and log a message that will never be delivered (under self._lock)."""
        topic, payload = message[0], message[1]
        self.dropped += 1
        if topic == self.topic_detection:
            self.dropped_detections += 1
        log.error("MQTT: dropped (%s): %s %s", why, topic, payload)

    def _drain(self) -> None:
        """Hand queued messages to paho while connected; paho keeps QoS>=1 ones until acknowledged.

        A message paho refuses outright (a topic it cannot publish to) is logged and dropped,
        so that it can never hold up the ones behind it.
        """
        with self._lock:
            while self.connected and self._queue:
                message = self._queue[0]
                topic, payload, qos, retain = message
                try:
                    info = self.client.publish(topic, payload, qos=qos, retain=retain)
                except (ValueError, TypeError) as e:
                    self._queue.popleft()
                    self._drop(message, f"refused by the MQTT client: {e}")
                    continue
                if info.rc != 0 and qos == 0:
                    break  # not connected after all; keep it for the next connection
                self._queue.popleft()
                self._last, self._last_message = info, message

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("MQTT: broker %s:%d refused the connection: %s", self.config.host, self.config.port,
                      reason_code)
            return
        self._fail_logged = False
        log.info("MQTT: connected to %s:%d as site '%s'", self.config.host, self.config.port, self.site)
        client.subscribe(self.topic_set, qos=1)
        if self.config.hermes:
            client.subscribe("hermes/hotword/toggleOn", qos=1)
            client.subscribe("hermes/hotword/toggleOff", qos=1)
        with self._lock:
            self.connected = True
            self._queue.appendleft((self.topic_state, json.dumps({"enabled": self.switch.enabled}), 1, True))
            self._queue.appendleft((self.topic_status, "online", 1, True))
            if self.config.homeassistant.enabled:
                topic, payload = self.discovery()
                self._queue.appendleft((topic, json.dumps(payload), 1, True))
        self._drain()

    def _on_connect_fail(self, client, userdata):
        if not self._fail_logged:  # once per outage; paho keeps retrying with backoff
            self._fail_logged = True
            log.warning("MQTT: cannot connect to %s:%d%s; retrying, detections are queued", self.config.host,
                        self.config.port, " (TLS)" if self.config.tls is not None else "")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._lock:
            self.connected = False
        if reason_code != 0:
            log.warning("MQTT: lost the broker (%s); detections are queued until it is back", reason_code)

    def _on_message(self, client, userdata, message):
        if len(message.payload) > MAX_CONTROL_PAYLOAD:
            log.warning("MQTT: ignored a message of %d bytes on %s (at most %d)", len(message.payload),
                        message.topic, MAX_CONTROL_PAYLOAD)
            return
        try:
            if message.topic == self.topic_set:
                data = json.loads(message.payload)
                if not isinstance(data, dict) or not isinstance(data.get("enabled"), bool):
                    raise ValueError('expected {"enabled": true|false}')
                self._apply(data["enabled"])
            elif message.topic.startswith("hermes/hotword/toggle"):
                data = json.loads(message.payload or b"{}")
                if isinstance(data, dict) and data.get("siteId", self.site) == self.site:
                    self._apply(message.topic.endswith("toggleOn"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            log.warning("MQTT: ignored a malformed message on %s: %s", message.topic, str(e)[:100] or type(e).__name__)

    def _apply(self, enabled: bool) -> None:
        self.switch.set(enabled, "MQTT")
        self._enqueue(self.topic_state, json.dumps({"enabled": enabled}), 1, True)
        self._drain()

    def discovery(self) -> tuple[str, dict]:
        """Home Assistant MQTT discovery: one event entity per site, event types = keywords."""
        uid = f"kwsd_{self.site}".replace("-", "_").replace(".", "_")
        topic = f"{self.config.homeassistant.discovery_prefix}/event/{uid}/config"
        payload = {
            "name": "Keyword", "unique_id": uid, "object_id": uid,
            "state_topic": self.topic_detection, "event_types": self.keywords,
            "value_template": '{"event_type": "{{ value_json.keyword }}", "score": {{ value_json.score }}, '
                              '"model": "{{ value_json.model }}"}',
            "availability_topic": self.topic_status, "payload_available": "online",
            "payload_not_available": "offline",
            "device": {"identifiers": [uid], "name": f"kwsd {self.site}", "manufacturer": "kwsd",
                       "model": ", ".join(self.model_names) or "kwsd"},
        }
        return topic, payload

"""MQTT transport: detections to ``<prefix>/<site>/detection``, a retained ``status`` with
Last Will, mute/resume on ``<prefix>/<site>/set``; optional Rhasspy Hermes and Home Assistant
discovery. The messages themselves are built and parsed in mqtt_messages.py.

The worker thread only appends to a bounded queue; paho's network thread does the I/O.
While the broker is unreachable, detections wait in that queue (oldest dropped and
counted when it is full) and paho reconnects with backoff.  A message handed to paho
with QoS >= 1 is kept by paho until the broker acknowledges it, across reconnections.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from typing import Any, Sequence

from ..detection import Detection
from ..mute import MuteSwitch
from . import mqtt_messages as messages
from .settings import MqttConfig

log = logging.getLogger(__name__)


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


class MqttSink:
    """A detection sink that also obeys mute/resume commands from the broker."""

    def __init__(self, config: MqttConfig, keywords: list[str], switch: MuteSwitch, model_names: Sequence[str] = ()):
        import paho.mqtt.client as mqtt

        self.config = config
        self.site = config.site or socket.gethostname()
        self.keywords = list(keywords)
        self.model_names = list(model_names)
        self.switch = switch  # the mute state; read, never copied (see kwsd.mute)
        self.topics = messages.Topics.for_site(config.topic_prefix, self.site)
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self.dropped = 0  # dropped because the queue was full or paho refused them
        self.connected = False
        self._last: Any = None  # MQTTMessageInfo of the last message handed to paho
        self._last_message = None  # and that message
        self.dropped_detections = 0

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id or f"kwsd-{self.site}")
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
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
            raise ConfigError(
                f"mqtt.password_file: cannot read {self.config.password_file} ({e.strerror or e})"
            ) from None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()

    def close(self) -> int:
        """Publish 'offline', deliver what is queued (bounded by flush_timeout_s), disconnect.

        Returns how many detections were never delivered (dropped while running, or still
        queued at the deadline); each of those is logged with its content.
        """
        self._enqueue(self.topics.status, "offline", 1, True)
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
            if topic != self.topics.status:
                log.error("MQTT: undelivered at shutdown: %s %s", topic, payload)
        if left:
            log.error(
                "MQTT: %d message(s) could not be delivered to %s:%d before shutdown",
                len(left),
                self.config.host,
                self.config.port,
            )
        self.client.disconnect()
        self.client.loop_stop()
        lost = [m for m in left if m[0] == self.topics.detection]
        return len(lost) + self.dropped_detections

    # ------------------------------------------------------------------ detections
    def __call__(self, d: Detection) -> None:
        self._enqueue(self.topics.detection, messages.detection_payload(d, self.site), self.config.qos, False)
        if self.config.hermes:
            self._enqueue(*messages.hermes_detected(d, self.site), self.config.qos, False)
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
        if topic == self.topics.detection:
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
            log.error("MQTT: broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason_code)
            return
        self._fail_logged = False
        log.info("MQTT: connected to %s:%d as site '%s'", self.config.host, self.config.port, self.site)
        client.subscribe(self.topics.set, qos=1)
        if self.config.hermes:
            client.subscribe(messages.HERMES_TOGGLE_ON, qos=1)
            client.subscribe(messages.HERMES_TOGGLE_OFF, qos=1)
        with self._lock:
            self.connected = True
            self._queue.appendleft((self.topics.state, messages.state_payload(self.switch.enabled), 1, True))
            self._queue.appendleft((self.topics.status, "online", 1, True))
            if self.config.homeassistant.enabled:
                topic, payload = messages.discovery(
                    self.topics, self.site, self.keywords, self.model_names, self.config.homeassistant.discovery_prefix
                )
                self._queue.appendleft((topic, payload, 1, True))
        self._drain()

    def _on_connect_fail(self, client, userdata):
        if not self._fail_logged:  # once per outage; paho keeps retrying with backoff
            self._fail_logged = True
            log.warning(
                "MQTT: cannot connect to %s:%d%s; retrying, detections are queued",
                self.config.host,
                self.config.port,
                " (TLS)" if self.config.tls is not None else "",
            )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._lock:
            self.connected = False
        if reason_code != 0:
            log.warning("MQTT: lost the broker (%s); detections are queued until it is back", reason_code)

    def _on_message(self, client, userdata, message):
        if len(message.payload) > messages.MAX_CONTROL_PAYLOAD:
            log.warning(
                "MQTT: ignored a message of %d bytes on %s (at most %d)",
                len(message.payload),
                message.topic,
                messages.MAX_CONTROL_PAYLOAD,
            )
            return
        try:
            enabled = messages.parse_control(message.topic, message.payload, self.topics, self.site)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            log.warning("MQTT: ignored a malformed message on %s: %s", message.topic, str(e)[:100] or type(e).__name__)
            return
        if enabled is not None:
            self._apply(enabled)

    def _apply(self, enabled: bool) -> None:
        self.switch.set(enabled, "MQTT")
        self._enqueue(self.topics.state, messages.state_payload(enabled), 1, True)
        self._drain()

"""What kwsd publishes and accepts over MQTT (docs/contracts.md), as plain functions:
topic names, the detection and Rhasspy Hermes payloads, Home Assistant discovery, and the
parsing of control messages. ``MqttSink`` (mqtt.py) only queues and moves these messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from ..detection import Detection

MAX_CONTROL_PAYLOAD = 4096  # a `set` or Hermes toggle message is a few dozen bytes
HERMES_TOGGLE_ON = "hermes/hotword/toggleOn"
HERMES_TOGGLE_OFF = "hermes/hotword/toggleOff"


@dataclass(frozen=True)
class Topics:
    """kwsd's own topics for one site: ``<prefix>/<site>/...``."""

    detection: str
    status: str
    set: str
    state: str

    @classmethod
    def for_site(cls, prefix: str, site: str) -> "Topics":
        base = f"{prefix}/{site}"
        return cls(f"{base}/detection", f"{base}/status", f"{base}/set", f"{base}/state")


def detection_payload(d: Detection, site: str) -> str:
    return json.dumps({**d.to_dict(), "site": site})


def state_payload(enabled: bool) -> str:
    return json.dumps({"enabled": enabled})


def hermes_detected(d: Detection, site: str) -> tuple[str, str]:
    """Rhasspy Hermes ``hermes/hotword/<keyword>/detected``."""
    payload = {
        "modelId": d.model,
        "modelVersion": "",
        "modelType": "personal",
        "currentSensitivity": round(float(d.score), 4),
        "siteId": site,
        "sessionId": None,
        "sendAudioCaptured": None,
        "lang": None,
        "customEntities": None,
    }
    return f"hermes/hotword/{d.keyword}/detected", json.dumps(payload)


def discovery(
    topics: Topics, site: str, keywords: Sequence[str], model_names: Sequence[str], discovery_prefix: str
) -> tuple[str, str]:
    """Home Assistant MQTT discovery: one event entity per site, event types = keywords."""
    uid = f"kwsd_{site}".replace("-", "_").replace(".", "_")
    payload = {
        "name": "Keyword",
        "unique_id": uid,
        "object_id": uid,
        "state_topic": topics.detection,
        "event_types": list(keywords),
        "value_template": '{"event_type": "{{ value_json.keyword }}", "score": {{ value_json.score }}, '
        '"model": "{{ value_json.model }}"}',
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [uid],
            "name": f"kwsd {site}",
            "manufacturer": "kwsd",
            "model": ", ".join(model_names) or "kwsd",
        },
    }
    return f"{discovery_prefix}/event/{uid}/config", json.dumps(payload)


def parse_control(topic: str, payload: bytes, topics: Topics, site: str) -> bool | None:
    """The mute state a control message asks for: True (resume), False (mute), or None when
    the message is not for this site. Raises ValueError (or RecursionError for absurdly deep
    JSON) on a malformed payload; the caller logs it and carries on, and refuses payloads over
    MAX_CONTROL_PAYLOAD before parsing."""
    if topic == topics.set:
        data = json.loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("enabled"), bool):
            raise ValueError('expected {"enabled": true|false}')
        return data["enabled"]
    if topic in (HERMES_TOGGLE_ON, HERMES_TOGGLE_OFF):
        data = json.loads(payload or b"{}")
        if isinstance(data, dict) and data.get("siteId", site) == site:
            return topic == HERMES_TOGGLE_ON
    return None

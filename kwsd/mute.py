"""Whether detections are reported: the one owner of the mute state.

MQTT ``set`` messages and Hermes toggles change it; the engine reads it before delivering
a detection, and the MQTT sink reads it to publish ``state``.  Because sinks only read
this object and never keep a copy, a sink rebuilt by a config reload reports the state
as it is (muted stays muted).
"""

from __future__ import annotations

import logging

log = logging.getLogger("kwsd")


class MuteSwitch:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled  # a plain bool: reads and writes are atomic under the GIL

    def set(self, enabled: bool, by: str) -> None:
        if enabled != self.enabled:
            log.info("detections %s by %s", "resumed" if enabled else "muted", by)
        self.enabled = enabled

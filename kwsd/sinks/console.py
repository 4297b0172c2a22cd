"""The simplest sinks: a log line per detection, and JSON lines on stdout for --json."""

from __future__ import annotations

import logging
import sys

from ..detection import Detection

log = logging.getLogger("kwsd.detection")


def log_detection(d: Detection) -> None:
    log.info(
        "detected '%s' (score %.2f) at %.3f s [%s]",
        d.keyword,
        d.score,
        d.audio_ms / 1000,
        d.model,
        extra={"KEYWORD": d.keyword, "SCORE": f"{d.score:.4f}", "AUDIO_MS": d.audio_ms, "MODEL": d.model},
    )


class JsonLines:
    """One JSON object per detection, flushed at once so pipes see it immediately."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __call__(self, d: Detection) -> None:
        self.stream.write(d.to_json() + "\n")
        self.stream.flush()

"""The simplest sinks: a log line per detection, and JSON lines on stdout for --json."""

from __future__ import annotations

import logging
import os
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


def stdout_to_devnull(stream=None) -> None:
    """After the reader of ``stream`` (stdout) went away: point its descriptor at /dev/null, so
    that what is left in its buffer does not fail a second time when Python flushes at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, (stream or sys.stdout).fileno())
        os.close(null)
    except (OSError, ValueError):  # not a real file (a test's StringIO)
        pass


class JsonLines:
    """One JSON object per detection, flushed at once so pipes see it immediately.

    When the reader closes the pipe (``kwsd run --json | head -1``) the sink says so once and
    stops; the other sinks and the log lines go on."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.__name__ = "JSON lines on stdout"  # how the engine names a failing sink
        self.closed = False

    def __call__(self, d: Detection) -> None:
        if self.closed:
            return
        try:
            self.stream.write(d.to_json() + "\n")
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            log.warning("stdout was closed by its reader: no more JSON lines (detections are still logged)")
            stdout_to_devnull(self.stream)

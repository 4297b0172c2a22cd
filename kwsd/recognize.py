"""RecognizeCommands: turn a stream of per-window scores into keyword detections.

Ported from TensorFlow's speech_commands ``recognize_commands.py``: results are kept
for ``average_window_ms``; when at least ``minimum_count`` results spanning a quarter
of the window are present, their average is taken and the top label is reported if
its average exceeds the threshold and ``suppression_ms`` has passed since the last
report.

One deliberate difference.  TensorFlow's desktop version also demands that the label
differ from the previously reported one, so "stop" ... (3 s) ... "stop" gives one
detection; TFLite-Micro's uses OR, so a long word above threshold repeats every
``suppression_ms``.  Here a label may be reported again once its average has fallen
back below the threshold (it is "re-armed"), and never within ``suppression_ms`` of
the previous report.  ``_silence_`` and ``_unknown_`` are never reported.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .model import NOT_REPORTED


@dataclass
class Recognition:
    """What one call to ``process`` concluded."""

    label: str
    score: float
    is_new_command: bool


class RecognizeCommands:
    def __init__(self, labels, average_window_ms=1000, detection_threshold=0.2,
                 suppression_ms=1500, minimum_count=3, thresholds=None):
        self.labels = list(labels)
        self.average_window_ms = average_window_ms
        self.detection_threshold = detection_threshold
        self.suppression_ms = suppression_ms
        self.minimum_count = minimum_count
        thresholds = thresholds or {}
        self._thresholds = np.array([thresholds.get(x, detection_threshold) for x in self.labels])
        self._reportable = np.array([x not in NOT_REPORTED for x in self.labels])
        self._results: deque[tuple[int, np.ndarray]] = deque()
        self._last_report_ms = None
        self._armed = np.ones(len(self.labels), bool)

    def process(self, scores, time_ms: int) -> Recognition:
        """Add the scores of the window ending at ``time_ms``; maybe report a keyword."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} scores, got {scores.shape[0]}")
        if self._results and time_ms < self._results[-1][0]:
            raise ValueError(f"results must arrive in time order: {time_ms} ms after "
                             f"{self._results[-1][0]} ms")
        self._results.append((time_ms, scores))
        while self._results[0][0] < time_ms - self.average_window_ms:
            self._results.popleft()

        count = len(self._results)
        if count < self.minimum_count or time_ms - self._results[0][0] < self.average_window_ms / 4:
            return Recognition("_silence_", 0.0, False)

        # recomputed each time (a few dozen rows): a running sum would drift over days
        average = np.mean([r for _, r in self._results], axis=0)
        above = average > self._thresholds
        # a label that has dropped below its threshold may be reported again
        self._armed |= ~above
        top = int(np.argmax(average))
        label, score = self.labels[top], float(average[top])
        suppressed = self._last_report_ms is not None and time_ms - self._last_report_ms <= self.suppression_ms
        if above[top] and self._reportable[top] and self._armed[top] and not suppressed:
            self._armed[top] = False
            self._last_report_ms = time_ms
            return Recognition(label, score, True)
        return Recognition(label, score, False)

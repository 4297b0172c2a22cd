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
the previous report.  ``_silence_`` and ``_unknown_`` are never reported, nor, when
``keywords`` lists the words to listen for, any other keyword: a window whose top
label is a word nobody listens for reports nothing, as if it were ``_unknown_`` (each
keyword a model knows adds its own false accepts, so a user who wakes on one word
should not pay for the other nine).

One optional addition, the quick rule (``quick_threshold``, off unless set): a keyword
is also reported as soon as its average over the last ``quick_window_ms`` exceeds
``quick_threshold`` (and its own threshold, if that is higher).  The long average is
what keeps a small model quiet on short words it has not heard, and it is also most of
the delay after a word (a score must stay high for about threshold x window); a very
sure, short stretch can skip that wait.  It is a trade (models/README.md, "A quick
profile"), so it is not the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

SILENCE = "_silence_"  # the label of no speech
UNKNOWN = "_unknown_"  # the label of speech that is no keyword
NOT_REPORTED = (SILENCE, UNKNOWN)


@dataclass(frozen=True)
class SmootherSettings:
    """The smoother's parameters: the one definition of their names and defaults.

    A model may carry recommended values (``kwsd tune`` writes them into its metadata
    as ``recognize``); values set in the config override those, and a config that sets
    ``detection_threshold`` also drops the model's per-keyword thresholds (its own
    ``thresholds`` still apply), so that one global knob always does what it says.
    """

    average_window_ms: int = 500
    detection_threshold: float = 0.7
    suppression_ms: int = 1500
    minimum_count: int = 3
    thresholds: dict = field(default_factory=dict)
    quick_threshold: float | None = None  # None: no quick rule
    quick_window_ms: int = 160
    keywords: list | None = None  # the keywords reported; None = every keyword of the model

    def to_dict(self) -> dict:
        """The settings as a config's ``recognize:`` section writes them (no quick rule, every
        keyword: no keys)."""
        data = asdict(self)
        if self.quick_threshold is None:
            del data["quick_threshold"], data["quick_window_ms"]
        if self.keywords is None:
            del data["keywords"]
        return data

    def reported(self, keywords: list[str]) -> list[str]:
        """Those of a model's ``keywords`` that these settings report."""
        return [k for k in keywords if self.keywords is None or k in self.keywords]

    def describe(self) -> str:
        """One line for the log, so a user can see which thresholds are in force."""
        per = ", ".join(f"{k} {v:g}" for k, v in sorted(self.thresholds.items()))
        return (
            f"threshold {self.detection_threshold:g}"
            + (f" ({per})" if per else "")
            + f", average {self.average_window_ms} ms, minimum count {self.minimum_count}, "
            f"suppression {self.suppression_ms} ms"
            + (
                f", quick {self.quick_threshold:g} over {self.quick_window_ms} ms"
                if self.quick_threshold is not None
                else ""
            )
            + (f", listening for {', '.join(self.keywords)} only" if self.keywords is not None else "")
        )

    @classmethod
    def for_model(cls, metadata: dict | None = None, overrides: dict | None = None) -> "SmootherSettings":
        """Defaults, then the model's recommendation, then the config's explicit values."""
        names = {f.name for f in fields(cls)}
        settings = cls()
        recommended = (metadata or {}).get("recognize") or {}
        if isinstance(recommended, dict):  # null = unset, as in the config (docs/contracts.md)
            settings = replace(settings, **{k: v for k, v in recommended.items() if k in names and v is not None})
        given = {k: v for k, v in (overrides or {}).items() if k in names and v is not None}
        if "detection_threshold" in given:
            settings = replace(settings, thresholds={})
        thresholds = {**settings.thresholds, **given.pop("thresholds", {})}
        return replace(settings, **given, thresholds=thresholds)


def reported_keywords(models, overrides: dict | None = None) -> list[str]:
    """Every keyword that some model reports under its settings with ``overrides`` (the config's
    ``recognize:``) on top, in the models' order: what a listener can receive."""
    words = (k for m in models for k in SmootherSettings.for_model(m.metadata, overrides).reported(m.keywords))
    return list(dict.fromkeys(words))


@dataclass
class Recognition:
    """What one call to ``process`` concluded."""

    label: str
    score: float
    is_new_command: bool


class RecognizeCommands:
    def __init__(
        self,
        labels,
        average_window_ms=SmootherSettings.average_window_ms,
        detection_threshold=SmootherSettings.detection_threshold,
        suppression_ms=SmootherSettings.suppression_ms,
        minimum_count=SmootherSettings.minimum_count,
        thresholds=None,
        quick_threshold=None,
        quick_window_ms=SmootherSettings.quick_window_ms,
        keywords=None,
    ):
        self.labels = list(labels)
        self.average_window_ms = average_window_ms
        self.detection_threshold = detection_threshold
        self.suppression_ms = suppression_ms
        self.minimum_count = minimum_count
        thresholds = thresholds or {}
        self._thresholds = np.array([thresholds.get(x, detection_threshold) for x in self.labels])
        self._reportable = np.array(
            [x not in NOT_REPORTED and (keywords is None or x in keywords) for x in self.labels]
        )
        # the results inside the window: rows head..tail of a preallocated buffer, so that the
        # average is one numpy call on a contiguous slice (this runs every stride, and
        # `kwsd tune` replays it hundreds of times over hours of recorded scores)
        self._times = np.zeros(64, np.int64)
        self._rows = np.zeros((64, len(self.labels)))
        self._head = self._tail = 0
        self._last_report_ms = None
        self._armed = np.ones(len(self.labels), bool)
        self.quick_threshold = quick_threshold
        self.quick_window_ms = quick_window_ms
        # never below a keyword's own threshold: one set to 1.0 stays silent, and tune can raise it
        self._quick_thresholds = None if quick_threshold is None else np.maximum(quick_threshold, self._thresholds)

    @property
    def reported_at(self) -> np.ndarray:
        """Where the keywords it may report are in a score vector (for the gates that rest a model)."""
        return np.flatnonzero(self._reportable)

    @classmethod
    def from_settings(cls, labels, settings: SmootherSettings) -> "RecognizeCommands":
        return cls(labels, **settings.to_dict())

    def _append(self, time_ms: int, scores: np.ndarray) -> None:
        if self._tail == len(self._times):
            live = self._tail - self._head
            if live > len(self._times) // 2:  # grow: a long window at a short stride
                self._times = np.concatenate((self._times, np.zeros_like(self._times)))
                self._rows = np.concatenate((self._rows, np.zeros_like(self._rows)))
            self._times[:live] = self._times[self._head : self._tail]
            self._rows[:live] = self._rows[self._head : self._tail]
            self._head, self._tail = 0, live
        self._times[self._tail] = time_ms
        self._rows[self._tail] = scores
        self._tail += 1

    def process(self, scores, time_ms: int) -> Recognition:
        """Add the scores of the window ending at ``time_ms``; maybe report a keyword."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} scores, got {scores.shape[0]}")
        if self._tail > self._head and time_ms < self._times[self._tail - 1]:
            raise ValueError(f"results must arrive in time order: {time_ms} ms after {self._times[self._tail - 1]} ms")
        self._append(time_ms, scores)
        oldest = time_ms - self.average_window_ms
        while self._times[self._head] < oldest:
            self._head += 1

        count = self._tail - self._head
        if count < self.minimum_count or time_ms - self._times[self._head] < self.average_window_ms / 4:
            return Recognition(SILENCE, 0.0, False)

        # recomputed each time (a few dozen rows): a running sum would drift over days
        average = np.add.reduce(self._rows[self._head : self._tail], axis=0) / count  # = .mean(), bit for bit
        above = average > self._thresholds
        quick = self._quick_average(time_ms)
        if quick is not None:
            quick_above = quick > self._quick_thresholds
            reportable = above & self._reportable
            if not reportable[average.argmax()] and (quick_above & self._reportable)[quick.argmax()]:
                average = quick  # a sure, short stretch of a keyword: report it now, with its own average
            above |= quick_above
        # a label that has dropped below its threshold may be reported again
        self._armed |= ~above
        top = int(average.argmax())
        label, score = self.labels[top], float(average[top])
        suppressed = self._last_report_ms is not None and time_ms - self._last_report_ms <= self.suppression_ms
        if above[top] and self._reportable[top] and self._armed[top] and not suppressed:
            self._armed[top] = False
            self._last_report_ms = time_ms
            return Recognition(label, score, True)
        return Recognition(label, score, False)

    def _quick_average(self, time_ms: int):
        """The average over the last ``quick_window_ms``, or None without a quick rule."""
        if self._quick_thresholds is None:
            return None
        first = self._head + int(np.searchsorted(self._times[self._head : self._tail], time_ms - self.quick_window_ms))
        return np.add.reduce(self._rows[first : self._tail], axis=0) / (self._tail - first)

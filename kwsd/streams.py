"""Evaluation on streams: ``kwsd stream eval`` (the streams come from stream_make.py).

Clip accuracy says little about a wake-word daemon; what a user meets is a stream.
As TensorFlow's test_streaming_accuracy, but:

- the truth file beside ``STREAM.wav`` is ``STREAM.txt``, one ``label,ms`` line per clip
  (``ms`` = where the clip starts); words that are not keywords carry their own word as
  label and are *not* to be detected.
- ``eval`` runs exactly the ``kwsd run`` pipeline in-process and matches each
  detection to the truth (see :func:`match`); with no truth file the audio is taken
  to contain no keyword, so every detection is a false accept.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .confidence import proportion_interval, rate_interval
from .detection import Detection
from .pipeline import DEFAULT_SCORE_GATE, DEFAULT_SILENCE_GATE_DBFS, run_array
from .recognize import NOT_REPORTED, reported_keywords

TOLERANCE_MS = 750
# a truth clip's length, whatever a model's window: `kwsd stream make` puts in Speech Commands' 1 s clips
CLIP_MS = 1000


# ----------------------------------------------------------------------------- truth files


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(interval: tuple[float, float] | None, digits: int) -> list[float] | None:
    return None if interval is None else [round(x, digits) for x in interval]


def truth_path(wav: str | Path) -> Path:
    return Path(wav).with_suffix(".txt")


def read_truth(path: str | Path, audio_ms: float = math.inf) -> list[tuple[str, int]]:
    """``label,ms`` lines (TensorFlow's format), sorted by time; ValueError names a bad line: no
    label, no finite time, or a time before the audio or past its end (``audio_ms``), where the
    clip could only ever count as missed."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, _, ms = line.rpartition(",")
        try:
            at = float(ms)
        except ValueError:
            at = math.nan
        if not label.strip() or not math.isfinite(at):
            raise ValueError(f"{path} line {number}: expected 'label,ms', got {line!r}")
        if not 0 <= at <= audio_ms:
            raise ValueError(f"{path} line {number}: {at:g} ms is outside the audio (0 to {audio_ms:.0f} ms)")
        out.append((label.strip(), int(round(at))))
    return sorted(out, key=lambda x: x[1])


def write_truth(path: str | Path, truth: list[tuple[str, int]]) -> None:
    Path(path).write_text("".join(f"{label},{ms}\n" for label, ms in truth), encoding="utf-8")


def word_end_ms(audio, rate: int, start_ms: int) -> int:
    """Where the word of the truth clip starting at ``start_ms`` ends: the end of the clip's last
    10 ms frame within 20 dB of its loudest.  A user hears a detection's delay from there, not
    from the clip's padded end."""
    seg = audio[start_ms * rate // 1000 : (start_ms + CLIP_MS) * rate // 1000]
    frames = spoken_frames(seg, rate)
    return start_ms + frames * 10 if frames is not None else start_ms + CLIP_MS


def spoken_frames(samples, rate: int) -> int | None:
    """How many 10 ms frames of ``samples`` run up to the end of the last one within 20 dB of the
    loudest (None if there is no whole frame or no sound): where a word ends, for a detection's
    delay and for training that moves words toward the end of the window."""
    hop = rate // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    energy = (frames.astype(float) ** 2).mean(axis=1)
    if not len(energy):
        return None
    loud = np.flatnonzero(energy > energy.max() / 100)
    return int(loud[-1] + 1) if len(loud) else None


# ----------------------------------------------------------------------------- matching


@dataclass
class KeywordFigures:
    truths: int = 0
    correct: int = 0
    wrong: int = 0  # a truth of this keyword that was reported as another keyword
    false_accepts: int = 0  # reports of this keyword matching no truth of any keyword (duplicates included)

    def frr(self) -> float | None:
        return None if not self.truths else 1 - self.correct / self.truths


@dataclass
class StreamFigures:
    hours: float
    keywords: dict[str, KeywordFigures] = field(default_factory=dict)
    duplicates: int = 0
    events: list[dict] = field(default_factory=list)  # every detection with what it was

    @property
    def delays_ms(self) -> list[int]:
        """Of the correct detections whose word end is known: ms after the word's end."""
        return [e["delay_ms"] for e in self.events if "delay_ms" in e]

    def _sum(self, name: str) -> int:
        return sum(getattr(k, name) for k in self.keywords.values())

    def summary(self) -> dict:
        truths = self._sum("truths")
        fa = self._sum("false_accepts")
        delays = self.delays_ms
        return {
            "hours": round(self.hours, 4),
            "keyword_truths": truths,
            "false_reject_rate": None if not truths else round(1 - self._sum("correct") / truths, 4),
            # what the counts allow at 95% confidence (confidence.py): few events, wide intervals
            "false_reject_rate_95ci": _rounded(proportion_interval(truths - self._sum("correct"), truths), 4),
            "wrong_keyword_rate": None if not truths else round(self._sum("wrong") / truths, 4),
            "false_accepts": fa,
            "false_accepts_per_hour": round(fa / self.hours, 3) if self.hours else None,
            "false_accepts_per_hour_95ci": _rounded(rate_interval(fa, self.hours), 3),
            "duplicates": self.duplicates,
            "median_delay_ms": statistics.median(delays) if delays else None,
            "p95_delay_ms": round(float(np.percentile(delays, 95)), 1) if delays else None,
            "per_keyword": {
                k: {
                    **asdict(v),
                    "false_reject_rate": _round(v.frr(), 4),
                    "false_accepts_per_hour": round(v.false_accepts / self.hours, 3) if self.hours else None,
                }
                for k, v in sorted(self.keywords.items())
            },
        }


def match(
    detections: list[Detection],
    truth: list[tuple[str, int]],
    keywords: list[str],
    hours: float,
    tolerance_ms: int = TOLERANCE_MS,
    word_ends: dict[int, int] | None = None,
) -> StreamFigures:
    """Classify every detection once.

    A detection at ``t`` (the end of its deciding window) belongs to a truth clip starting
    at ``s`` if ``s <= t <= s + CLIP_MS + tolerance_ms``: it can only be made once the
    word has been heard, and should be made soon after.  The first detection inside a
    keyword clip's span is *correct* if its label is the clip's, else *wrong*; further
    detections there are *duplicates*; a detection inside no keyword clip's span
    (including over a non-keyword word) is a *false accept* of its label.  Duplicates count
    as false accepts too: to a user a double wake is a false one.
    ``word_ends`` (clip start -> end of its word, ms) gives correct detections their delay.
    """
    figures = StreamFigures(hours, {k: KeywordFigures() for k in keywords})
    spans = [
        (label, s, s + CLIP_MS + tolerance_ms) for label, s in truth if label not in NOT_REPORTED and label in keywords
    ]
    for label, _, _ in spans:
        figures.keywords[label].truths += 1
    used: set[int] = set()
    for d in sorted(detections, key=lambda d: d.audio_ms):
        kw = figures.keywords.setdefault(d.keyword, KeywordFigures())
        hit = next((i for i, (_, a, b) in enumerate(spans) if a <= d.audio_ms <= b and i not in used), None)
        inside = any(a <= d.audio_ms <= b for _, a, b in spans)
        event = {"keyword": d.keyword, "audio_ms": d.audio_ms, "score": round(float(d.score), 4)}
        if hit is not None:
            used.add(hit)
            truth_label = spans[hit][0]
            if truth_label == d.keyword:
                figures.keywords[truth_label].correct += 1
                event["is"] = "correct"
                if word_ends and spans[hit][1] in word_ends:
                    event["delay_ms"] = d.audio_ms - word_ends[spans[hit][1]]
            else:
                figures.keywords[truth_label].wrong += 1
                event["is"] = f"wrong (was {truth_label})"
        elif inside:
            figures.duplicates += 1
            kw.false_accepts += 1
            event["is"] = "duplicate"
        else:
            kw.false_accepts += 1
            event["is"] = "false accept"
        figures.events.append(event)
    return figures


# ----------------------------------------------------------------------------- eval


def evaluate_file(
    models,
    wav: str,
    truth_file: str | None = None,
    recognize: dict | None = None,
    clip_stride_ms: int | None = None,
    tolerance_ms: int = TOLERANCE_MS,
    on_scores=None,
    silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS,
    score_gate: float | None = DEFAULT_SCORE_GATE,
) -> StreamFigures:
    """Run one recording through the daemon's pipeline and match its detections."""
    from .wavfile import read_wav

    audio, rate = read_wav(wav)
    truth_file = truth_file if truth_file is not None else (str(truth_path(wav)) if truth_path(wav).exists() else None)
    truth = read_truth(truth_file, len(audio) / rate * 1000) if truth_file else []
    detections = run_array(
        models,
        audio,
        rate,
        clip_stride_ms=clip_stride_ms,
        recognize=recognize,
        on_scores=on_scores,
        silence_gate_dbfs=silence_gate_dbfs,
        score_gate=score_gate,
    )
    keywords = reported_keywords(models, recognize)  # one nobody listens for counts as any other word
    ends = truth_word_ends(audio, rate, truth, keywords)
    return match(detections, truth, keywords, len(audio) / rate / 3600, tolerance_ms, ends)


def truth_word_ends(audio, rate: int, truth: list[tuple[str, int]], keywords) -> dict[int, int]:
    """The word end of every keyword clip of ``truth``, by clip start."""
    return {s: word_end_ms(audio, rate, s) for label, s in truth if label in keywords}


def combine(figures: list[StreamFigures]) -> StreamFigures:
    out = StreamFigures(sum(f.hours for f in figures))
    for f in figures:
        out.duplicates += f.duplicates
        out.events += f.events
        for k, v in f.keywords.items():
            mine = out.keywords.setdefault(k, KeywordFigures())
            for name in ("truths", "correct", "wrong", "false_accepts"):
                setattr(mine, name, getattr(mine, name) + getattr(v, name))
    return out


def format_summary(summary: dict) -> str:
    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    lines = [
        f"{summary['hours'] * 60:.1f} min of audio, {summary['keyword_truths']} keywords: "
        f"false rejects {pct(summary['false_reject_rate'])}, wrong keyword {pct(summary['wrong_keyword_rate'])}, "
        f"false accepts {summary['false_accepts']} ({summary['false_accepts_per_hour']} per hour), "
        f"duplicates {summary['duplicates']}"
    ]
    frr_ci, fa_ci = summary.get("false_reject_rate_95ci"), summary.get("false_accepts_per_hour_95ci")
    if frr_ci or fa_ci:
        parts = [f"false rejects {pct(frr_ci[0])} to {pct(frr_ci[1])}"] if frr_ci else []
        parts += [f"false accepts {fa_ci[0]:.2f} to {fa_ci[1]:.2f} per hour"] if fa_ci else []
        lines.append("95% intervals (what counts this small allow): " + ", ".join(parts))
    if summary.get("median_delay_ms") is not None:
        lines.append(
            f"detected {summary['median_delay_ms']:.0f} ms after the word's end (median; 95th percentile "
            f"{summary['p95_delay_ms']:.0f} ms)"
        )
    lines.append(f"{'keyword':<10} {'truths':>6} {'correct':>7} {'wrong':>5} {'FRR':>7} {'FA':>4} {'FA/h':>7}")
    for k, v in summary["per_keyword"].items():
        lines.append(
            f"{k:<10} {v['truths']:>6} {v['correct']:>7} {v['wrong']:>5} {pct(v['false_reject_rate']):>7} "
            f"{v['false_accepts']:>4} {v['false_accepts_per_hour']:>7}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- make

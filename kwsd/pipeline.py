"""The thread-free core: audio in, detections out.

``Pipeline.process(block)`` takes samples at the source's rate and returns the
detections they complete; ``finish()`` flushes a finite stream.  Everything between
-- resampling, striding, the streaming MFCC, the models, RecognizeCommands -- lives
here and nowhere else, so that ``kwsd run`` (through the threaded Engine), ``kwsd
stream eval``, ``kwsd tune`` and the benchmarks all run exactly the same code.

Models whose frontend parameters are equal share one feature stream.  An optional silence
gate skips the models once a whole clip has stayed below a level, and puts off the features
until a loud stride opens it again (then the window's frames are computed at once): an idle
microphone in a quiet room costs little more than the level check.  A score gate skips a
model on the stride after one on which it gave every keyword little (below ``score_gate``; two
strides below a tenth of it, three below a hundredth), passing those scores on again, and those
strides' features wait for the next run: in speech without keywords about two thirds of the
invokes.  A model with a second stage (kwsd/cascade_model.py) is told of the strides the gates
skip, which count in its hold.  An optional
``on_scores(model, audio_ms, scores)`` callback sees every model output: ``kwsd tune``
records them once and replays only the smoother over its grid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .cascade_model import CascadeKeywordModel
from .detection import Detection
from .feature_stream import FrontendGroup
from .model import KeywordModel, recommended_stride_ms
from .recognize import SILENCE, RecognizeCommands, SmootherSettings


@dataclass
class Stats:
    strides: int = 0
    detections: int = 0
    overflows: int = 0
    dropped_samples: int = 0
    feature_ns: int = 0
    invoke_ns: int = 0
    invokes: int = 0
    gated: int = 0  # strides on which the silence gate skipped the models
    rested: int = 0  # model runs that the score gate skipped


ScoreCallback = Callable[[KeywordModel, int, np.ndarray], None]

DEFAULT_CLIP_STRIDE_MS = 40
# Below this RMS level (dB of full scale) for a whole clip the models are not run. Chosen by
# measurement (bench/RESULTS.md, "Silence gate"): on the validation keyword stream turned down by
# 0, 20 and 30 dB and on every evaluation stream at its own level, the detections are the same
# with and without the gate; only speech 40 dB down, which the model mostly misses anyway, loses some.
DEFAULT_SILENCE_GATE_DBFS = -60.0
# After a stride on which a model gave every keyword less than this, it skips the next stride
# and its smoother gets the same scores again. Chosen on validation streams by a rule (bench/RESULTS.md,
# "Thirty-first session"): the same misses as 0.005, no more false accepts, the median delay 8.5 ms
# later, and a fifth fewer model runs where keywords are dense.
DEFAULT_SCORE_GATE = 0.1
# A model rests one more stride for each of these fractions of the gate that its keywords' scores
# are below: two strides below 0.01, three below 0.001. Chosen on validation streams by rules
# (bench/RESULTS.md, "Thirty-second session"): the same false accepts, a miss fewer, the median delay
# 13.5 ms later, and a third fewer model runs in speech without keywords than one stride's rest.
REST_MORE_BELOW = (0.1, 0.01)


def choose_clip_stride(models: list[KeywordModel], configured: Optional[int] = None) -> int:
    """How often the models run: the config's ``inference.clip_stride_ms`` when set; else the
    stride each model's recommended smoother settings were tuned for (40 ms for a model that
    recommends none), the shortest if they differ."""
    if configured is not None:
        return configured
    wanted = [recommended_stride_ms(m.metadata) or DEFAULT_CLIP_STRIDE_MS for m in models]
    return min(wanted, default=DEFAULT_CLIP_STRIDE_MS)


class Pipeline:
    def __init__(
        self,
        models: list[KeywordModel],
        input_rate: int,
        smoother: Optional[SmootherSettings] = None,
        clip_stride_ms: Optional[int] = None,
        on_scores: Optional[ScoreCallback] = None,
        recognize: Optional[dict] = None,
        silence_gate_dbfs: Optional[float] = DEFAULT_SILENCE_GATE_DBFS,
        score_gate: Optional[float] = DEFAULT_SCORE_GATE,
    ):
        """``smoother`` fixes the settings of every model; without it each model uses its
        recommended settings with ``recognize`` (the config's explicit values) on top.
        ``silence_gate_dbfs``: skip the models while every stride of the clip window has an
        RMS level below this (dB relative to full scale); None runs them on every stride.
        ``score_gate``: a model whose keywords all scored below this skips the next stride
        (below a tenth of it the next two, below a hundredth three); None: never."""
        self.input_rate = input_rate
        # compared with the mean square of a stride: no square root per stride
        self.gate_power = None if silence_gate_dbfs is None else 10.0 ** (silence_gate_dbfs / 10.0)
        self.clip_stride_ms = clip_stride_ms = choose_clip_stride(models, clip_stride_ms)
        self.on_scores = on_scores
        self.stats = Stats()
        self._silence = {id(m): silence_scores(m) for m in models}  # what a gated stride gives
        # a model whose keywords all score below a level rests one stride for each level they are below
        self._rest_levels = () if score_gate is None else tuple(score_gate * f for f in (1.0, *REST_MORE_BELOW))
        self._keywords: dict[int, np.ndarray] = {}  # model -> where its reported keywords are (_listen)
        # model -> the low scores its next strides repeat, and how many strides it still rests
        self._resting: dict[int, tuple[np.ndarray, int]] = {}
        # a model with a second stage holds it open for some strides: it counts those the gates skip
        # too, and starts each stream closed (kwsd/cascade_model.py)
        self._cascades = {id(m): m for m in models if isinstance(m, CascadeKeywordModel)}
        for cascade in self._cascades.values():
            cascade.restart()
        self.groups: list[FrontendGroup] = []
        for model in models:
            group = next((g for g in self.groups if g.params == model.frontend), None)
            if group is None:
                group = FrontendGroup(model.frontend, input_rate, clip_stride_ms)
                self.groups.append(group)
            group.models.append((model, self._smoother(model, smoother, recognize)))
        self._listen()

    def _listen(self) -> None:
        """The gates look at the keywords the smoothers report (an index array each: no conversion
        per stride). Listening for one word, the score gate rests a model while that word scores
        low, and a second stage opens only where the first network hears that word."""
        for group in self.groups:
            for model, smoother in group.models:
                self._keywords[id(model)] = smoother.reported_at
                if id(model) in self._cascades:
                    self._cascades[id(model)].listen(smoother.reported_at)

    @staticmethod
    def _smoother(
        model: KeywordModel, settings: Optional[SmootherSettings], recognize: Optional[dict]
    ) -> RecognizeCommands:
        s = settings if settings is not None else SmootherSettings.for_model(model.metadata, recognize)
        return RecognizeCommands.from_settings(model.labels, s)

    def update_smoother(self, settings: Optional[SmootherSettings] = None, recognize: Optional[dict] = None) -> None:
        """New thresholds etc.; the next stride uses them (a fresh averaging window)."""
        for group in self.groups:
            group.models = [(m, self._smoother(m, settings, recognize)) for m, _ in group.models]
        self._listen()

    @property
    def quiet(self) -> bool:
        """True while the silence gate is shut for every model: no detection can come out of
        the audio before the next loud stride."""
        return self.gate_power is not None and all(g.loud_for == 0 for g in self.groups)

    def process(self, block: np.ndarray) -> list[Detection]:
        """Feed samples at ``input_rate``; return the detections they complete."""
        found: list[Detection] = []
        for group in self.groups:
            self._run_strides(group, group.resampler.process(block), found)
        return found

    def finish(self) -> list[Detection]:
        """End of a finite stream: release the resampler's tail, then one clip of silence
        so that a keyword at the very end still fills enough averaging windows."""
        found: list[Detection] = []
        for group in self.groups:
            tail = group.resampler.flush()
            silence = np.zeros(group.params.clip_samples, np.float32)
            self._run_strides(group, np.concatenate((tail, silence)), found)
        return found

    def skip(self, input_samples: int) -> None:
        """Audio that was lost (ring overflow): keep audio_ms on the wall-clock timeline."""
        for group in self.groups:
            group.samples += input_samples * group.params.sample_rate // self.input_rate

    def _run_strides(self, group: FrontendGroup, x: np.ndarray, found: list[Detection]) -> None:
        if len(x) == 0:
            return
        pending = np.concatenate((group.pending, x)) if len(group.pending) else x
        stride = group.stride
        full = len(pending) // stride * stride
        for i in range(0, full, stride):
            chunk = pending[i : i + stride]
            group.samples += stride
            power = float(np.dot(chunk, chunk)) / stride
            group.gate_watch.stride(power)
            loud = self._loud(group, power)
            t0 = time.perf_counter_ns()
            if group.band_fill is not None:  # after the silence gate's level: the noise never opens it
                chunk = group.band_fill(chunk)
            if loud and not all(id(m) in self._resting for m, _ in group.models):
                group.features.push(chunk)
            else:  # nobody reads the window (the gate is shut, or every model rests): its frames wait
                group.features.defer(chunk)
            self.stats.feature_ns += time.perf_counter_ns() - t0
            if group.features.frames_seen >= group.params.num_frames:  # the first window is full
                if not loud:
                    self.stats.gated += 1
                self._infer(group, found, gated=not loud)
            self.stats.strides += 1
        group.pending = pending[full:].copy()

    def _loud(self, group: FrontendGroup, power: float) -> bool:
        """Whether the clip window still holds a stride (of mean square ``power``) at or above
        the gate's level."""
        if self.gate_power is None:
            return True
        if power >= self.gate_power:
            group.loud_for = group.clip_strides
        elif group.loud_for > 0:
            group.loud_for -= 1
        return group.loud_for > 0

    def _infer(self, group: FrontendGroup, found: list[Detection], gated: bool = False) -> None:
        """Run the models on the window (or, when ``gated``, give their smoothers the scores
        of silence, so that their averages run on as if the models had heard the quiet; or,
        the strides after a model's keywords all scored below the score gate, those scores)."""
        audio_ms = group.samples * 1000 // group.params.sample_rate
        for model, smoother in group.models:
            rest = self._resting.pop(id(model), None)
            cascade = self._cascades.get(id(model))
            if gated or rest is not None:
                # a shut silence gate gives silence; a resting model its last low scores again
                scores = self._silence[id(model)] if gated or rest is None else rest[0]
                if rest is not None and rest[1] > 1 and not gated:
                    self._resting[id(model)] = (rest[0], rest[1] - 1)
                self.stats.rested += not gated
                if cascade:
                    cascade.skipped()
            else:
                t0 = time.perf_counter_ns()
                window = group.features.window
                scores = cascade.stream_scores(window) if cascade else model.scores(window)
                self.stats.invoke_ns += time.perf_counter_ns() - t0
                self.stats.invokes += 1
                keywords = self._keywords[id(model)]
                if self._rest_levels and keywords.size:
                    top = scores[keywords].max()
                    strides = sum(top < level for level in self._rest_levels)
                    if strides:
                        self._resting[id(model)] = (scores, strides)
            if self.on_scores is not None:
                self.on_scores(model, audio_ms, scores)
            result = smoother.process(scores, audio_ms)
            if result.is_new_command:
                found.append(Detection(result.label, result.score, audio_ms, model.name))


def silence_scores(model: KeywordModel) -> np.ndarray:
    """All probability on ``_silence_`` (zeros for a model without that label); read-only, as
    one array serves every gated stride."""
    scores = np.zeros(len(model.labels), np.float32)
    if SILENCE in model.labels:
        scores[model.labels.index(SILENCE)] = 1.0
    scores.setflags(write=False)
    return scores


def run_array(
    models: list[KeywordModel],
    audio: np.ndarray,
    rate: int,
    smoother: Optional[SmootherSettings] = None,
    clip_stride_ms: Optional[int] = None,
    on_scores: Optional[ScoreCallback] = None,
    recognize: Optional[dict] = None,
    block_samples: int = 16000,
    silence_gate_dbfs: Optional[float] = DEFAULT_SILENCE_GATE_DBFS,
    score_gate: Optional[float] = DEFAULT_SCORE_GATE,
) -> list[Detection]:
    """Run a whole recording through the pipeline, as ``kwsd run --input`` does; the detections."""
    pipeline = Pipeline(models, rate, smoother, clip_stride_ms, on_scores, recognize, silence_gate_dbfs, score_gate)
    found: list[Detection] = []
    for start in range(0, len(audio), block_samples):
        found += pipeline.process(audio[start : start + block_samples])
    return found + pipeline.finish()

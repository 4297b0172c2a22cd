"""Training batches: keyword clips augmented and turned into features in a background
thread, with the negatives that teach the model what to ignore (windows of long negative
recordings, partial keywords, mined hard negatives) mixed into every batch."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import numpy as np

from ..recognize import SILENCE, UNKNOWN
from .settings import TrainSettings

log = logging.getLogger(__name__)


def augmented_batch(clips, labels, silence, mix, augmenter, batch_size: int, rng: np.random.Generator):
    """One batch of augmented audio, its labels, and the indices of its clips that come from the
    keyword data set (keywords, other words, silence): those first, then the negative mix."""
    extra_audio, extra_labels = mix.draw(rng, batch_size) if mix else (None, None)
    n = batch_size - (0 if extra_audio is None else len(extra_audio))
    idx = rng.integers(0, len(clips), n)
    clips, silence, labels = clips[idx], silence[idx], labels[idx]
    if extra_audio is not None and extra_labels is not None and len(extra_audio):
        clips = np.concatenate((clips, extra_audio))
        silence = np.concatenate((silence, np.zeros(len(extra_audio), bool)))
        labels = np.concatenate((labels, extra_labels))
    return augmenter(clips, silence, rng), labels, idx


def mixed_targets(labels, classes: int, taught, teacher_rows, weight: float) -> np.ndarray:
    """One-hot rows of ``labels`` (class indices; rows of probabilities are taken as they are);
    the rows ``taught`` (a slice or mask) become (1 - weight) of the row plus ``weight`` of the
    teacher's row (``teacher_rows``, one per taught row)."""
    targets = np.eye(classes, dtype=np.float32)[labels] if labels.ndim == 1 else labels.astype(np.float32)
    targets[taught] = (1 - weight) * targets[taught] + weight * teacher_rows
    return targets


class BatchMaker:
    """Augmented feature batches, made in a background thread so that numpy's FFTs
    (which release the GIL) overlap with TensorFlow's training step."""

    def __init__(
        self,
        clips,
        labels,
        silence,
        frontend,
        augmenter,
        batch_size,
        seed,
        spec_augment,
        start_step=0,
        depth=4,
        mix=None,
        soft_targets=None,
        distill_weight=0.0,
        pool=None,
        pool_percentage=0.0,
        ensemble=None,
        ensemble_weight=0.0,
    ):
        self.clips, self.labels, self.silence = clips, labels, silence
        self.mix = mix
        self.soft_targets, self.distill_weight = soft_targets, distill_weight
        self.pool = pool  # (features, target rows) of clips augmented once, with the teacher's view of each
        self.ensemble, self.ensemble_weight = ensemble, ensemble_weight  # ensemble.EnsembleTeacher
        self.pool_rows = round(batch_size * pool_percentage / 100) if pool is not None else 0
        self.frontend, self.augmenter, self.batch_size = frontend, augmenter, batch_size
        self.seed, self.spec_augment = seed, spec_augment
        self.queue: queue.Queue = queue.Queue(depth)
        self.start_step = start_step
        self.make_seconds = 0.0  # augmentation + features, in the background thread
        self.wait_seconds = 0.0  # time the training loop waited for a batch
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def make(self, step: int):
        """Features and targets of one step: class indices, or with a teacher's soft targets
        (one row per training clip) a row of probabilities per clip: the true label mixed with
        the teacher's. With a pool, its rows end the batch (drawn as the rest of the batch is). With an
        ensemble teacher, every row is then mixed with its scores."""
        from .augment import spec_augment

        t0 = time.perf_counter()
        rng = np.random.default_rng([self.seed, step])  # depends on the step only: resumable, deterministic
        audio, labels, idx = augmented_batch(
            self.clips, self.labels, self.silence, self.mix, self.augmenter, self.batch_size - self.pool_rows, rng
        )
        feats = self.frontend.batch_features(audio)
        targets = labels
        if self.soft_targets is not None:
            # the teacher knows words, not what to ignore: the negative mix (after the data
            # set's clips) keeps its hard _unknown_ label
            classes, taught = self.soft_targets.shape[1], slice(0, len(idx))
            targets = mixed_targets(labels, classes, taught, self.soft_targets[idx], self.distill_weight)
        if self.pool_rows:
            rows = rng.integers(0, len(self.pool[0]), self.pool_rows)
            feats = np.concatenate((feats, self.pool[0][rows]))
            targets = np.concatenate((targets, self.pool[1][rows]))
        if self.spec_augment:
            spec_augment(feats, rng)
        if self.ensemble is not None:
            # it hears the very features the model is trained on, and teaches every row, negatives
            # too: the ensemble is what knows which stretches of speech its members take for a keyword
            rows = self.ensemble.probabilities(feats)
            targets = mixed_targets(targets, self.ensemble.classes, slice(None), rows, self.ensemble_weight)
        self.make_seconds += time.perf_counter() - t0
        return feats, targets

    def _run(self):
        step = self.start_step
        while not self._stop.is_set():
            try:
                item = self.make(step)
            except Exception as exc:  # handed to the training loop, which would otherwise wait forever
                item = exc
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    pass
            if isinstance(item, Exception):
                return
            step += 1

    def next(self):
        t0 = time.perf_counter()
        item = self.queue.get()
        self.wait_seconds += time.perf_counter() - t0
        if isinstance(item, Exception):
            raise RuntimeError(f"making the training batch failed: {item!r}") from item
        return item

    def close(self):
        self._stop.set()
        self.thread.join()


class NegativeMix:
    """What each batch adds to the keyword clips, all labelled ``_unknown_``: windows of
    negative recordings, partial keywords, and windows mined as hard negatives."""

    def __init__(self, s: TrainSettings, pool, keyword_clips, unknown_label: int):
        self.pool = pool
        self.hard: Any = None  # a RecordingPool of mined windows, set before each later phase
        self.keyword_clips = keyword_clips
        self.unknown = unknown_label
        self.s = s

    def counts(self, batch: int) -> tuple[int, int, int, int]:
        s = self.s
        pool = self.pool is not None and bool(self.pool.recordings)
        neg = round(batch * s.negative_percentage / 100) if pool else 0
        alone = round(batch * s.isolated_percentage / 100) if pool else 0
        part = round(batch * s.partial_percentage / 100) if len(self.keyword_clips) else 0
        hard = round(batch * s.hard_negative_percentage / 100) if self.hard is not None and self.hard.recordings else 0
        return neg, alone, part, hard

    def draw(self, rng: np.random.Generator, batch: int):
        from .augment import partial_keywords

        neg, alone, part, hard = self.counts(batch)
        samples = self.keyword_clips.shape[1]
        parts = [self.pool.sample(rng, neg, samples)] if neg else []
        if alone:
            parts.append(self.pool.sample_isolated(rng, alone, samples))
        if part:
            chosen = self.keyword_clips[rng.integers(0, len(self.keyword_clips), part)]
            parts.append(partial_keywords(chosen, rng))
        if hard:
            parts.append(self.hard.sample(rng, hard, samples))
        if not parts:
            return None, None
        audio = np.concatenate(parts)
        return audio, np.full(len(audio), self.unknown, np.int64)


def load_rirs(folder: str, sample_rate: int) -> list[np.ndarray]:
    """Room impulse responses, each scaled to a peak of 1, at the model's rate."""
    if not folder:
        return []
    from .negatives import audio_files, read_audio

    rirs, unreadable = [], 0
    for path in audio_files(folder):
        try:
            rir, _ = read_audio(path, sample_rate)
        except Exception as e:  # libsndfile's errors are plain RuntimeErrors; skipped, as negatives are
            unreadable += 1
            log.warning("skipping room impulse response %s: %s", path, e)
            continue
        peak = np.abs(rir).max()
        if peak > 0:
            rirs.append(rir[int(np.argmax(np.abs(rir))) :] / peak)  # from the direct path on
    if not rirs:
        raise FileNotFoundError(f"--rir-dir {folder}: no readable audio files ({unreadable} unreadable)")
    print(f"room impulse responses: {len(rirs)} from {folder}, {unreadable} unreadable", flush=True)
    return rirs


def make_negative_mix(s: TrainSettings, index, training) -> NegativeMix | None:
    """The negative recordings of the training split, and the keyword clips for partial words."""

    if not (s.negative_dir or s.partial_percentage):
        return None
    pool = None
    if s.negative_dir:
        from .negatives import load_pool

        t0 = time.time()
        pool, bad = load_pool(
            s.negative_dir,
            s.sample_rate,
            "training",
            s.validation_percentage,
            s.testing_percentage,
            s.split_salt,
            s.fill_narrowband_negatives,
        )
        if not pool.recordings:  # the batches' negative share would silently be keyword clips instead
            raise FileNotFoundError(
                f"--negative-dir {s.negative_dir}: no readable recording of 0.1 s or more in the training split "
                f"({len(bad)} unreadable)"
            )
        limited = sum(len(r) for r, b in zip(pool.recordings, pool.band_limited) if b) / s.sample_rate
        print(
            f"negative audio: {len(pool.recordings)} training recordings, {pool.seconds / 3600:.2f} h "
            f"({limited / 3600:.2f} h band-limited{', with the band fill' if s.fill_narrowband_negatives else ''}), "
            f"{len(bad)} unreadable; {time.time() - t0:.0f} s",
            flush=True,
        )
        if s.isolated_percentage:
            n = pool.find_stretches()
            print(f"pieces of speech to place alone (0.15-0.9 s, --isolated-percentage): {n}", flush=True)
    clips, labels, _ = training
    keyword_mask = (
        np.array([index.labels[y] not in (SILENCE, UNKNOWN) for y in labels]) if not s.binary else labels == 1
    )
    unknown = 0 if s.binary else index.labels.index(UNKNOWN)
    return NegativeMix(s, pool, clips[keyword_mask], unknown)


def predictor(model, binary: bool):
    """features -> probabilities of every label (binary mode: [not keyword, keyword]), in batches."""

    def predict(x):
        p = np.concatenate([model(x[i : i + 2048], training=False).numpy() for i in range(0, len(x), 2048)])
        return np.concatenate([1 - p, p], axis=1) if binary else p

    return predict


def scored_labels(labels: list[str]) -> list[str]:
    """The labels of ``predictor``'s columns: binary mode (one keyword) has _unknown_ first."""
    return [UNKNOWN] + labels if len(labels) == 1 else labels


def mine(model, pool, frontend, labels, threshold, veto=None):
    """Hard negatives for the next phase: see negatives.mine_hard_negatives; ``veto`` (mined pool ->
    pool) may then leave some out (teacher.veto_mined)."""
    from .negatives import mine_hard_negatives

    t0 = time.time()
    predict = predictor(model, binary=len(labels) == 1)  # binary mode: one sigmoid output for the keyword
    mined, scored = mine_hard_negatives(predict, pool, frontend, scored_labels(labels), threshold)
    print(
        f"hard negatives: {len(mined.recordings)} of {scored} negative windows score above {threshold} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
    return mined if veto is None else veto(mined)

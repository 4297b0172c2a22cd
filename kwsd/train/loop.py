"""The training loop: data and features prepared once, batches from a prefetch thread
(batches.py), tqdm progress, periodic validation with a confusion matrix, checkpoints and
resume, then the export and a report measured through the daemon's own runtime.

``run_training`` reads top to bottom: prepare, build (or resume) the model, fit, export."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..features import FrontendParams, MfccFrontend
from ..recognize import UNKNOWN
from .averaging import start_average
from .batches import BatchMaker, NegativeMix, load_rirs, make_negative_mix, mine
from .checkpoint import TrainState, resume, save_checkpoint, start_point
from .ensemble import EnsembleTeacher, ensemble_teacher
from .report import export_and_report
from .settings import TrainSettings
from .validation import NegativeCheck, negative_check, record_validation

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything the loop reads: the clips of each split and the features of the evaluation sets."""

    params: FrontendParams
    frontend: MfccFrontend
    words: list[str]
    index: Any  # dataset.DataIndex
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # split -> (clips, labels, is_silence)
    augmenter: Any  # augment.Augmenter
    mix: NegativeMix | None
    eval_features: dict[str, np.ndarray]
    train_labels: np.ndarray  # training labels as trained: word classes (if any) not yet folded into _unknown_
    soft_targets: np.ndarray | None = None  # the teacher's, one row per training clip, when distilling
    pretraining: Any = None  # pretrain.PretrainingSet, with --pretrain-clips
    pool: tuple[np.ndarray, np.ndarray] | None = None  # features and teacher targets, --teacher-pool-percentage
    negative_check: NegativeCheck | None = None  # --select-under-fa: the negative audio that chooses the checkpoint
    ensemble: EnsembleTeacher | None = None  # with --ensemble-teacher
    teacher: Any = None  # teacher.Teacher, with --teacher-dir (set by teach)

    @property
    def counts(self) -> dict[str, int]:
        return {k: len(v[0]) for k, v in self.data.items()}

    def display_labels(self, binary: bool) -> list[str]:
        return ["no", "yes"] if binary else self.index.labels


def prepare(s: TrainSettings) -> Prepared:
    """Index the dataset, load every clip, set up augmentation and the negative mix."""
    from .augment import Augmenter
    from .dataset import build_index, evaluation_features, load_set

    params = s.frontend()
    frontend = MfccFrontend(params)  # validates the parameters
    words = s.words()
    if s.binary and len(words) != 1:
        raise ValueError("--binary needs exactly one word in --wanted-words")
    index = build_index(
        s.data_dir,
        words,
        s.silence_percentage,
        s.unknown_percentage,
        s.validation_percentage,
        s.testing_percentage,
        s.sample_rate,
        s.seed,
        s.binary,
        s.split_salt,
        s.background_dir or None,
        [d for d in s.extra_training_dir.split(",") if d],
        s.unknown_word_classes,
    )
    data = {
        name: load_set(index, name, s.sample_rate, params.clip_samples)
        for name in ("training", "validation", "testing")
    }
    train_labels = data["training"][1]
    data = {k: (clips, index.coarse(labels), silence) for k, (clips, labels, silence) in data.items()}
    if index.word_classes:
        print(f"word classes (exported as {UNKNOWN}): {', '.join(index.word_classes)}", flush=True)
    counts = {k: len(v[0]) for k, v in data.items()}
    print(
        f"clips: {counts}; speakers: {index.speakers}; labels: {index.labels}; "
        f"bad files skipped: {len(index.bad_files)}",
        flush=True,
    )
    if counts["training"] == 0:
        raise ValueError("no usable training clips")
    augmenter = Augmenter(
        index.background,
        s.background_frequency,
        s.background_volume,
        int(s.time_shift_ms * s.sample_rate / 1000),
        rirs=load_rirs(s.rir_dir, s.sample_rate),
        reverb_frequency=s.reverb_percentage / 100,
        gain_db=s.gain_range(),
        sample_rate=s.sample_rate,
        speed_range=s.speed_factors(),
        late_shift_samples=int(s.late_shift_ms * s.sample_rate / 1000),
        narrowband_frequency=s.narrowband_percentage / 100,
        gate_frequency=s.gate_percentage / 100,
    )
    mix = make_negative_mix(s, index, data["training"])
    eval_features = {k: evaluation_features(s.seed, data[k], augmenter, frontend, k) for k in ("validation", "testing")}
    prep = Prepared(params, frontend, words, index, data, augmenter, mix, eval_features, train_labels)
    prep.negative_check = negative_check(s, frontend)
    return prep


def new_or_resumed_model(s: TrainSettings, prep: Prepared, ckpt_dir: Path):
    """A fresh model (input normalised with training statistics), or the checkpoint to resume."""
    import keras

    from .architectures import build_model, c0_from_loudest

    start = start_point(s.start_checkpoint, s.resume, ckpt_dir)
    if start:
        return resume(start, s, prep)
    (Path(s.out) / "best.keras").unlink(missing_ok=True)  # from an earlier run in the same folder
    clean = prep.frontend.batch_features(prep.data["training"][0][: min(1000, prep.counts["training"])])
    if s.level_invariant:
        clean = c0_from_loudest(clean)
    norm = clean.reshape(-1, prep.params.feature_bin_count)
    model = build_model(
        s.model_architecture,
        prep.params.input_shape,
        prep.index.trained_classes,
        s.binary,
        s.dropout,
        norm.mean(axis=0),
        norm.var(axis=0),
        s.level_invariant,
    )
    if s.pretrain_clips:
        from .pretrain import pretrain_body

        data = pretrain_body(model, prep, s.pretrain_clips, s.pretrain_epochs, s.seed, s.teacher_dir)
        prep.pretraining = data if s.teacher_pool_percentage else None  # 4 KB a clip: kept only for the pool
    model.compile(
        optimizer=keras.optimizers.Adam(s.schedule()[0][1]),
        loss="binary_crossentropy" if s.binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if s.pretrain_clips and not s.pretrain_only:  # the pretraining can take most of an hour: not lost to a crash
        save_checkpoint(model, TrainState(), ckpt_dir)
        print(f"pretraining saved in {ckpt_dir}: --resume goes on from here", flush=True)
    return model, TrainState()


def exported(model, prep: Prepared):
    """The model as it is exported: word classes (if trained) folded into ``_unknown_``."""
    from .architectures import fold_word_classes

    if not prep.index.word_classes:
        return model
    return fold_word_classes(model, len(prep.index.labels), prep.index.labels.index(UNKNOWN))


def start_batches(s: TrainSettings, prep: Prepared, served, step: int) -> BatchMaker:
    """The batch maker from ``step`` on; at a phase boundary with ``--mine-hard-negatives`` the
    model (``served``) first mines the negative recordings for the windows it takes for keywords
    (not at the last step: a finished run resumed to export it trains nothing more)."""
    last = s.total_steps()
    if s.mine_hard_negatives and prep.mix is not None and any(last > step >= b for b in s.phase_boundaries()):
        from .teacher import mining_veto

        labels, threshold = prep.index.labels, s.hard_negative_threshold
        prep.mix.hard = mine(served, prep.mix.pool, prep.frontend, labels, threshold, veto=mining_veto(s, prep))
    clips, _, silence = prep.data["training"]
    return BatchMaker(
        clips,
        prep.train_labels,
        silence,
        prep.frontend,
        prep.augmenter,
        s.batch_size,
        s.seed,
        s.spec_augment,
        start_step=step,
        mix=prep.mix,
        soft_targets=prep.soft_targets,
        distill_weight=s.distill_weight,
        pool=prep.pool,
        pool_percentage=s.teacher_pool_percentage,
        ensemble=prep.ensemble,
        ensemble_weight=s.ensemble_weight,
    )


def fit(s: TrainSettings, prep: Prepared, model, state: TrainState, out: Path) -> tuple[float, BatchMaker, Any]:
    """Train to the last step of the schedule; returns the seconds spent, the last batch maker
    (for its timing figures) and the running average of the weights (None without
    ``--average-weights``). Ctrl-C saves a checkpoint to resume from."""
    from tqdm import tqdm

    ckpt_dir = out / "checkpoints"
    total_steps = s.total_steps()
    boundaries = s.phase_boundaries()
    served = exported(model, prep)  # built once: it shares the layers, so it follows the training
    average = start_average(s, model, ckpt_dir)

    batches = start_batches(s, prep, served, state.step)
    t0 = time.time()
    bar = tqdm(total=total_steps, initial=state.step, unit="step", dynamic_ncols=True)
    try:
        while state.step < total_steps:
            lr = s.learning_rate_at(state.step)
            model.optimizer.learning_rate.assign(lr)
            x, y = batches.next()
            loss, acc = model.train_on_batch(x, y)[:2]
            if average is not None:
                average.update(model.get_weights())
            state.step = step = state.step + 1
            bar.set_postfix(lr=f"{lr:g}", acc=f"{float(acc):.3f}", loss=f"{float(loss):.3f}")
            bar.update(1)
            if step % s.eval_step_interval == 0 or step == total_steps:
                report = record_validation(
                    model, served, prep, state, float(acc), float(loss), out, s.binary, average, s.select_under_fa
                )
                if report:
                    bar.write(report)
            if step % s.save_step_interval == 0:
                save_checkpoint(model, state, ckpt_dir, average)
            if s.mine_hard_negatives and step in boundaries:
                batches.close()  # a new maker from this step on: batches stay a function of the step alone
                bar.clear()
                batches = start_batches(s, prep, served, step)
    except KeyboardInterrupt:
        bar.close()
        save_checkpoint(model, state, ckpt_dir, average)
        print(f"\ninterrupted at step {state.step}; continue with --resume --out {s.out}", flush=True)
        raise
    finally:
        batches.close()
        bar.close()
    save_checkpoint(model, state, ckpt_dir, average)
    return time.time() - t0, batches, average


def teach(s: TrainSettings, prep: Prepared, model, state: TrainState) -> None:
    """The speech embedding's soft targets (and pool) for the keyword data set's clips, when asked
    for; with it or the ensemble (which scores every batch row), targets are rows of probabilities."""
    from .teacher import compile_for_soft_targets

    if s.teacher_dir:
        from .teacher import soft_targets_for

        teacher, prep.soft_targets = soft_targets_for(s, prep)
        prep.teacher = teacher
        if s.teacher_pool_percentage:
            from .pretrain import pretraining_set

            # a resumed run did not pretrain: the same clips again (they are seeded)
            clips = prep.pretraining or pretraining_set(prep, s.pretrain_clips, s.seed, teacher.embedding)
            prep.pool = teacher.pool(clips, prep.index.trained_classes, s.distill_weight)
    if s.teacher_dir or prep.ensemble is not None:
        compile_for_soft_targets(model, s.learning_rate_at(state.step))


def run_training(s: TrainSettings) -> dict:
    from ..model import quiet_native_stderr

    with quiet_native_stderr():  # oneDNN's notice ignores TF_CPP_MIN_LOG_LEVEL: it is printed on import
        import keras
        import tensorflow as tf

    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(s.seed)
    tf.config.experimental.enable_op_determinism()
    prep = prepare(s)
    if s.soup:  # no training: the runs' average weights are the model
        from .soup import export_soup

        return export_soup(s, prep, out)
    prep.ensemble = ensemble_teacher(s.ensemble_teacher, prep.index.labels, prep.params)  # its errors come first
    model, state = new_or_resumed_model(s, prep, out / "checkpoints")
    if s.pretrain_only:  # the common start of --soup members
        model.save(out / "pretrained.keras")
        return {}
    teach(s, prep, model, state)
    prep.pretraining = None  # the pool has what it needed
    train_seconds, batches, average = fit(s, prep, model, state, out)
    step = state.step  # the weights exported: the last, the final average, or the best checkpoint
    if average is not None:  # the final average, as TensorFlow's and SWA's recipes export it
        model.set_weights(average.weights)
    elif (out / "best.keras").exists() and not s.export_last:  # the best (validation.better); else the last
        model, step = keras.models.load_model(out / "best.keras"), state.best_step
        print(f"exporting the best checkpoint: step {step}", flush=True)
    return export_and_report(s, prep, exported(model, prep), state, out, train_seconds, batches, step)

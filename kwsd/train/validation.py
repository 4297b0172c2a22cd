"""Validation during training: the exported classes' accuracy and confusion matrix on the
validation clips, the history (with ``--average-weights``, the averaged weights' accuracy
too), and the best checkpoint kept.

With ``--select-under-fa`` the validation split of the negative recordings is scored too, and
the best checkpoint is chosen as microWakeWord chooses it: clip accuracy alone picks networks
that label clips well yet fire in conversation (models/README.md, "Choosing the checkpoint")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .checkpoint import TrainState
from .report import confusion_text

if TYPE_CHECKING:  # loop.py imports this module; the type only annotates
    from .loop import Prepared


def validate(served, prep: Prepared, binary: bool) -> tuple[float | None, np.ndarray]:
    """Accuracy and confusion matrix of the exported classes (``served``: see ``exported``) on the
    validation clips (None with no validation set)."""
    y = prep.data["validation"][1]
    n = 2 if binary else len(prep.index.labels)
    confusion = np.zeros((n, n), np.int64)
    if len(y) == 0:  # --validation-percentage 0: keep the last weights
        return None, confusion
    probs = served.predict(prep.eval_features["validation"], batch_size=256, verbose=0)
    pred = (probs[:, 0] > 0.5).astype(int) if binary else probs.argmax(axis=1)
    np.add.at(confusion, (y, pred), 1)
    return float(np.trace(confusion) / len(y)), confusion


@dataclass
class NegativeCheck:
    """The validation split of the ``--negative-dir`` recordings, their features computed once."""

    features: list[np.ndarray]
    hours: float
    threshold: float  # a window scoring above it for a keyword is a false accept (--hard-negative-threshold)


def negative_check(s, frontend) -> NegativeCheck | None:
    """The recordings that ``--select-under-fa`` counts false accepts on; None when it is off."""
    if s.select_under_fa < 0:
        return None
    from .negatives import load_pool

    pool, _ = load_pool(
        s.negative_dir,
        s.sample_rate,
        "validation",
        s.validation_percentage,
        s.testing_percentage,
        s.split_salt,
        s.fill_narrowband_negatives,
    )
    if not pool.recordings:
        raise ValueError("--select-under-fa: the validation split of --negative-dir holds no recording")
    print(f"negative audio for choosing the checkpoint: {pool.seconds / 60:.1f} min (validation split)", flush=True)
    features = [frontend.signal_features(r / 32768.0) for r in pool.recordings]
    return NegativeCheck(features, pool.seconds / 3600, s.hard_negative_threshold)


def false_accepts_per_hour(served, check: NegativeCheck, frontend, labels: list[str]) -> float:
    """Runs of windows (200 ms apart) that score above the threshold for a keyword, each run
    counted once as the smoother's suppression would, per hour of the recordings."""
    from .batches import predictor, scored_labels
    from .negatives import keyword_columns, keyword_scores

    predict = predictor(served, binary=len(labels) == 1)
    cols = keyword_columns(scored_labels(labels))
    runs = 0
    for feats in check.features:
        above = keyword_scores(predict, feats, frontend.params.num_frames, cols)[1] > check.threshold
        runs += int(np.count_nonzero(above[1:] & ~above[:-1]) + (len(above) > 0 and above[0]))
    return runs / check.hours


def better(acc: float, fa: float | None, state: TrainState, target: float) -> bool:
    """Is this checkpoint better than the best so far?  Without a false-accept figure: higher
    clip accuracy (TensorFlow's train.py).  With one (microWakeWord's rule): under the target,
    the higher accuracy, and any checkpoint under it beats one above; above it, fewer false accepts
    (equal: the higher accuracy)."""
    if fa is None or state.best_fa is None:
        return acc > state.best_val
    if fa <= target:
        return state.best_fa > target or acc > state.best_val
    return fa < state.best_fa or (fa == state.best_fa and acc > state.best_val)


def record_validation(
    model,
    served,
    prep: Prepared,
    state: TrainState,
    acc: float,
    loss: float,
    out: Path,
    binary: bool,
    average=None,
    target: float = -1.0,
):
    """Validate ``served`` (the exported view of ``model``), add the figures to the history, keep the
    best ``model`` (see ``better``; ``target``: --select-under-fa) as OUT/best.keras; returns what to
    print. With ``average`` (a WeightAverage) its weights are validated too, for the history: it is
    the final average that is exported."""
    val_acc, confusion = validate(served, prep, binary)
    entry = {"step": state.step, "train_accuracy": acc, "loss": loss, "val_accuracy": val_acc}
    state.history.append(entry)
    if val_acc is None:
        return None
    fa = None
    if prep.negative_check is not None:
        entry["val_false_accepts_per_hour"] = fa = false_accepts_per_hour(
            served, prep.negative_check, prep.frontend, prep.index.labels
        )
    if better(val_acc, fa, state, target):
        state.best_val, state.best_fa, state.best_step = val_acc, fa, state.step
        model.save(out / "best.keras")
    n = len(prep.data["validation"][1])
    line = f"step {state.step}: validation accuracy {val_acc:.1%} (N={n})"
    if fa is not None:
        line += f", false accepts {fa:.1f} per hour of negative audio"
    if average is not None:
        with average.applied(model):
            entry["val_accuracy_average"] = averaged = validate(served, prep, binary)[0]
        line += f", averaged weights {averaged:.1%}"
    return line + "\n" + confusion_text(confusion, prep.display_labels(binary))

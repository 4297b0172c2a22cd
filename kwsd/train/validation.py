"""Validation during training: the exported classes' accuracy and confusion matrix on the
validation clips, the history, and the best checkpoint kept (with ``--average-weights``, the
averaged weights judged and kept, the trained ones' best beside)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from .checkpoint import TrainState
from .report import confusion_text


def validate(served, prep, binary: bool) -> tuple[float | None, np.ndarray]:
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


def record_validation(
    model, served, prep, state: TrainState, acc: float, loss: float, out: Path, binary: bool, average=None
):
    """Validate ``served`` (the exported view of ``model``), add the figures to the history, keep the
    best ``model`` as OUT/best.keras; returns what to print. With ``average`` (a WeightAverage) the
    averaged weights are validated and kept, and the trained weights' best goes to best_raw.keras
    beside, so that a run shows what the average bought."""
    val_acc, confusion = validate(served, prep, binary)
    entry = {"step": state.step, "train_accuracy": acc, "loss": loss, "val_accuracy": val_acc}
    state.history.append(entry)
    if val_acc is None:
        return None
    if average is not None:
        entry["val_accuracy_raw"] = val_acc
        if val_acc > state.best_val_raw:
            state.best_val_raw = val_acc
            model.save(out / "best_raw.keras")
        with average.applied(model):
            averaged, confusion = validate(served, prep, binary)
            entry["val_accuracy"] = val_acc = cast(float, averaged)  # not None: the same clips
            if val_acc > state.best_val:
                state.best_val = val_acc
                model.save(out / "best.keras")
    elif val_acc > state.best_val:
        state.best_val = val_acc
        model.save(out / "best.keras")
    n = len(prep.data["validation"][1])
    raw = "" if average is None else f", trained weights {entry['val_accuracy_raw']:.1%}"
    return f"step {state.step}: validation accuracy {val_acc:.1%} (N={n}){raw}\n" + confusion_text(
        confusion, prep.display_labels(binary)
    )

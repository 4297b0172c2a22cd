"""Validation during training: the exported classes' accuracy and confusion matrix on the
validation clips, the history (with ``--average-weights``, the averaged weights' accuracy
too), and the best checkpoint kept."""

from __future__ import annotations

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


def record_validation(
    model, served, prep: Prepared, state: TrainState, acc: float, loss: float, out: Path, binary: bool, average=None
):
    """Validate ``served`` (the exported view of ``model``), add the figures to the history, keep the
    best ``model`` as OUT/best.keras; returns what to print. With ``average`` (a WeightAverage) its
    weights are validated too, for the history: it is the final average that is exported."""
    val_acc, confusion = validate(served, prep, binary)
    entry = {"step": state.step, "train_accuracy": acc, "loss": loss, "val_accuracy": val_acc}
    state.history.append(entry)
    if val_acc is None:
        return None
    if val_acc > state.best_val:
        state.best_val = val_acc
        model.save(out / "best.keras")
    n = len(prep.data["validation"][1])
    line = f"step {state.step}: validation accuracy {val_acc:.1%} (N={n})"
    if average is not None:
        with average.applied(model):
            entry["val_accuracy_average"] = averaged = validate(served, prep, binary)[0]
        line += f", averaged weights {averaged:.1%}"
    return line + "\n" + confusion_text(confusion, prep.display_labels(binary))

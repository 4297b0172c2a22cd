"""A running average of the weights (``kwsd train --average-weights DECAY``), exported at the end.

Why: without it, kwsd exports the checkpoint with the best validation clip accuracy, and that
lands wherever a noisy figure peaks: in three of four runs of the bundled model's recipe it came before
the first hard-negative mining, from networks that fire far more often on speech than the final
weights; and runs at different seeds have differed by 15 points of missed keywords
(models/README.md). An exponential moving average of the weights, as TensorFlow's
``tf.train.ExponentialMovingAverage`` keeps and as many speech recipes export, smooths the last
thousand or so steps into one network at no cost at inference. The batch-norm statistics are
averaged with the weights, as timm's ``ModelEmaV2`` does.

The average draws no random numbers and never touches the weights being trained, so a run with
it follows the same training path as one without."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .checkpoint import start_point
from .settings import TrainSettings

FILE = "average.npz"  # in a checkpoint folder, so that --resume goes on with the same average


class WeightAverage:
    """``decay`` per step, with TensorFlow's warm-up: min(decay, (1 + n) / (10 + n)) at update n,
    so the first steps' weights do not linger."""

    def __init__(self, decay: float, weights: list[np.ndarray], updates: int = 0):
        self.decay = decay
        self.updates = updates
        self.weights = [np.array(w, copy=True) for w in weights]

    def update(self, weights: list[np.ndarray]) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for i, (avg, w) in enumerate(zip(self.weights, weights)):
            if np.issubdtype(avg.dtype, np.floating):
                avg *= d
                avg += (1 - d) * w
            else:  # a counter, not a weight: the latest value
                self.weights[i] = np.array(w, copy=True)

    @contextmanager
    def applied(self, model) -> Iterator[None]:
        """``model`` holds the averaged weights inside the block, its own again after it."""
        own = model.get_weights()
        model.set_weights(self.weights)
        try:
            yield
        finally:
            model.set_weights(own)

    def save(self, folder: Path) -> None:
        np.savez(folder / FILE, np.array(self.updates), *self.weights)

    @classmethod
    def load_or_start(cls, decay: float, model, folder: Path | None) -> WeightAverage:
        """The average saved in the checkpoint ``folder`` (resuming), else a new one from ``model``."""
        path = folder / FILE if folder is not None else None
        if path is None or not path.exists():
            return cls(decay, model.get_weights())
        with np.load(path) as saved:
            arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        return cls(decay, arrays[1:], int(arrays[0]))


def start_average(s: TrainSettings, model, ckpt_dir: Path):
    """The running average of the weights with ``--average-weights``: the one saved with the
    checkpoint a run resumes from, else a new one."""
    if not s.average_weights:
        return None
    start = Path(start_point(s.start_checkpoint, s.resume, ckpt_dir))
    return WeightAverage.load_or_start(s.average_weights, model, start if start.is_dir() else None)

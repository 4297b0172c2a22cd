"""Trained kwsd models as a teacher for a new one (``--ensemble-teacher``): ensemble distillation.

Networks of one recipe trained at different seeds differ a lot in which keywords they miss and
which stretches of speech they take for one, and the average of their scores is much better than
any of them (models/README.md, "An ensemble of trained networks as the teacher"). A model file
costs one network per stride, so the ensemble cannot run in the daemon; instead every training
target mixes the true label with the ensemble's average scores for that very batch row, after
augmentation (the teacher sees what the student sees: Hinton et al. 2015; Beyer et al. 2022).
The teachers are the int8 model files as ``kwsd run`` loads them, run by the runtime itself:
about 60 us per network and row, in the batch thread."""

from __future__ import annotations

import numpy as np

from ..features import FrontendParams


class EnsembleTeacher:
    """The average scores of several kwsd model files that share the student's labels and features."""

    def __init__(self, paths: list[str], labels: list[str], params: FrontendParams):
        from ..errors import ModelError
        from ..model import KeywordModel

        if not paths:
            raise ValueError("--ensemble-teacher: give one or more model files, comma-separated")
        self.models = []
        for path in paths:
            try:
                model = KeywordModel.load(path)
            except ModelError as e:
                raise ValueError(f"--ensemble-teacher: {e}") from None
            if "streaming" in model.metadata:
                raise ValueError(f"--ensemble-teacher {path}: a streaming model cannot score one window")
            if model.labels != labels:
                raise ValueError(f"--ensemble-teacher {path}: its labels {model.labels} are not the trained {labels}")
            if model.frontend != params:
                raise ValueError(f"--ensemble-teacher {path}: its features are not the student's ({model.frontend})")
            self.models.append(model)
        self.classes = len(labels)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(rows, frames, coefficients) -> the ensemble's average scores, each row summing to 1."""
        total = np.zeros((len(features), self.classes), np.float32)
        for model in self.models:
            for i, window in enumerate(features):
                total[i] += model.scores(window)
        return total / np.maximum(total.sum(axis=1, keepdims=True), 1e-6)


def ensemble_teacher(option: str, labels: list[str], params: FrontendParams) -> EnsembleTeacher | None:
    """The ``--ensemble-teacher`` models, loaded and checked (None without the option)."""
    if not option:
        return None
    paths = [p for p in option.split(",") if p]
    teacher = EnsembleTeacher(paths, labels, params)
    print(f"ensemble teacher: {len(paths)} models score every batch row", flush=True)
    return teacher

"""PNG plots of a training run (matplotlib, Agg: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: list[dict], path) -> None:
    """Accuracy and loss over the steps; empty axes for a run without steps (``--soup``)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if history:
        steps = [h["step"] for h in history]
        ax.plot(steps, [h["train_accuracy"] for h in history], label="training batch accuracy")
        ax.plot(
            steps,
            [np.nan if h["val_accuracy"] is None else h["val_accuracy"] for h in history],
            label="validation accuracy",
        )
        ax.plot(steps, [h["loss"] for h in history], label="training loss", alpha=0.6)
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylim(0, max(1.05, max((h["loss"] for h in history), default=1)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, labels: list[str], path) -> None:
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

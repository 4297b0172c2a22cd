"""How ``kwsd train --select-under-fa`` chooses the exported checkpoint (the training run itself:
tests/test_train.py)."""

import numpy as np

from kwsd.train.checkpoint import TrainState
from kwsd.train.validation import NegativeCheck, better, false_accepts_per_hour


def chosen(history: list[tuple[float, float | None]], target: float) -> int:
    """The index of the checkpoint that ``better`` keeps, validating ``history`` (accuracy, false
    accepts per hour) in order, as the training loop does."""
    state, best = TrainState(), -1
    for i, (acc, fa) in enumerate(history):
        if better(acc, fa, state, target):
            state.best_val, state.best_fa, best = acc, fa, i
    return best


def test_without_false_accepts_the_most_accurate_checkpoint_is_kept():
    assert chosen([(0.80, None), (0.86, None), (0.84, None)], target=-1) == 1


def test_a_checkpoint_under_the_target_beats_a_more_accurate_one_above_it():
    # before mining: accurate on clips but firing at 40 an hour; after: under the target of 5
    history = [(0.80, 90.0), (0.86, 40.0), (0.83, 4.0), (0.82, 3.0), (0.845, 5.0), (0.84, 12.0)]
    assert chosen(history, target=5.0) == 4  # the most accurate of those at or under 5 per hour


def test_with_none_under_the_target_the_fewest_false_accepts_win_and_ties_go_to_accuracy():
    history = [(0.80, 30.0), (0.86, 20.0), (0.83, 9.0), (0.85, 9.0), (0.87, 15.0)]
    assert chosen(history, target=1.0) == 3


class Scores:
    """A stand-in network: each window's probabilities are set by its first feature value."""

    def __call__(self, x, training=False):
        keyword = x[:, 0, 0]
        probs = np.stack([1 - keyword, np.zeros_like(keyword), keyword], axis=1)
        return type("Tensor", (), {"numpy": lambda self: probs})()


class Frontend:
    class params:
        num_frames = 10


def test_a_run_of_windows_above_the_threshold_is_one_false_accept():
    # windows start every 10 frames; the keyword score of window k is its first frame's value
    frames = np.zeros((100, 4), np.float32)
    frames[[10, 20, 30], 0] = 0.9  # windows 1-3: one run
    frames[50, 0] = 0.35  # window 5: above 0.3, a second run
    frames[70, 0] = 0.25  # window 7: below
    frames[90, 0] = 0.95  # window 9: the last, a third run
    check = NegativeCheck([frames, frames[:5]], hours=0.5, threshold=0.3)  # the second is shorter than a window
    labels = ["_silence_", "_unknown_", "yes"]
    assert false_accepts_per_hour(Scores(), check, Frontend(), labels) == 3 / 0.5

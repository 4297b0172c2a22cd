"""The running average of the weights behind ``kwsd train --average-weights`` (the training run
itself: tests/test_train.py)."""

import numpy as np

from kwsd.train.averaging import WeightAverage


class Weights:
    """What WeightAverage needs of a Keras model."""

    def __init__(self, *arrays):
        self.arrays = [np.array(a) for a in arrays]

    def get_weights(self):
        return [a.copy() for a in self.arrays]

    def set_weights(self, arrays):
        self.arrays = [np.array(a) for a in arrays]


def test_the_average_warms_up_follows_slowly_and_is_applied_only_inside_its_block(tmp_path):
    model = Weights([0.0, 0.0], np.int64(0))
    average = WeightAverage(0.99, model.get_weights())
    model.set_weights([[10.0, 20.0], np.int64(3)])
    average.update(model.get_weights())  # first update: decay (1 + 0) / (10 + 0) = 0.1
    np.testing.assert_allclose(average.weights[0], [9.0, 18.0])
    assert average.weights[1] == 3  # a counter is copied, not averaged
    for _ in range(1000):
        average.update([np.array([0.0, 0.0]), np.int64(4)])
    assert 0 < average.weights[0][0] < 9.0 * 0.99**900  # the old weights fade at 0.99 a step once warmed up
    with average.applied(model):
        np.testing.assert_allclose(model.arrays[0], average.weights[0])
    np.testing.assert_allclose(model.arrays[0], [10.0, 20.0])  # its own weights back
    average.save(tmp_path)
    again = WeightAverage.load_or_start(0.99, Weights([5.0, 5.0], np.int64(0)), tmp_path)
    assert again.updates == 1001 and np.array_equal(again.weights[0], average.weights[0])
    fresh = WeightAverage.load_or_start(0.99, Weights([5.0, 5.0], np.int64(0)), tmp_path / "none")
    assert fresh.updates == 0 and list(fresh.weights[0]) == [5.0, 5.0]

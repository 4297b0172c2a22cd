"""RecognizeCommands: TensorFlow's test cases, ported, plus what a user of a daemon expects."""

import numpy as np
import pytest

from kwsd.recognize import RecognizeCommands

LABELS = ["_silence_", "a", "b"]


def feed(rc, scores, start_ms, count, step_ms=100):
    """Feed the same scores ``count`` times; return the new commands as (label, time)."""
    found = []
    for i in range(count):
        t = start_ms + i * step_ms
        r = rc.process(np.array(scores, float), t)
        if r.is_new_command:
            found.append((r.label, t))
    return found


# --- ported from tensorflow/examples/speech_commands/recognize_commands_test.cc


def test_basic():
    """TensorFlow's Basic case, with what it leaves implicit: one result is not a detection."""
    rc = RecognizeCommands(LABELS)
    result = rc.process(np.array([1.0, 0.0, 0.0]), 0)
    assert result.is_new_command is False and result.label == "_silence_"


def test_find_commands():
    rc = RecognizeCommands(LABELS, 1000, 0.2)
    found = feed(rc, [0, 1, 0], 0, 10)
    assert [label for label, _ in found] == ["a"]
    found = feed(rc, [0, 0, 1], 1000, 10)
    assert [label for label, _ in found] == ["b"]


def test_bad_input_length():
    rc = RecognizeCommands(LABELS, 1000, 0.2)
    with pytest.raises(ValueError):
        rc.process(np.array([1.0, 0.0]), 0)


def test_bad_input_times():
    rc = RecognizeCommands(LABELS, 1000, 0.2)
    rc.process(np.array([1.0, 0.0, 0.0]), 100)
    with pytest.raises(ValueError):
        rc.process(np.array([1.0, 0.0, 0.0]), 0)


# --- beyond TensorFlow


def test_same_keyword_said_twice_three_seconds_apart_gives_two_detections():
    labels = ["_silence_", "_unknown_", "stop", "go"]
    rc = RecognizeCommands(labels, average_window_ms=500, detection_threshold=0.7, suppression_ms=1500)
    stop, quiet = [0, 0, 1, 0], [1, 0, 0, 0]
    found = feed(rc, stop, 0, 20, 40) + feed(rc, quiet, 800, 55, 40)
    found += feed(rc, stop, 3000, 20, 40) + feed(rc, quiet, 3800, 30, 40)
    assert [label for label, _ in found] == ["stop", "stop"]
    assert found[1][1] - found[0][1] == pytest.approx(3000, abs=250)  # averaging delays each by ~0.2 s


def test_a_long_keyword_above_threshold_is_reported_once():
    rc = RecognizeCommands(["_silence_", "stop"], 500, 0.7, suppression_ms=500)
    assert [label for label, _ in feed(rc, [0, 1], 0, 100, 40)] == ["stop"]  # 4 s of "stop" scores


def test_suppression_blocks_another_keyword_right_after_a_detection():
    rc = RecognizeCommands(["_silence_", "a", "b"], 300, 0.6, suppression_ms=1500)
    found = feed(rc, [0, 1, 0], 0, 10, 40) + feed(rc, [0, 0, 1], 400, 10, 40)  # b at 400..760 ms
    assert [label for label, _ in found] == ["a"]
    found = feed(rc, [0, 0, 0.2], 800, 30, 40) + feed(rc, [0, 0, 1], 2000, 10, 40)
    assert [label for label, _ in found] == ["b"]


def test_silence_and_unknown_are_never_reported():
    rc = RecognizeCommands(["_silence_", "_unknown_", "yes"], 500, 0.5, suppression_ms=0)
    assert feed(rc, [1, 0, 0], 0, 30, 40) == []
    assert feed(rc, [0, 1, 0], 1200, 30, 40) == []
    assert [label for label, _ in feed(rc, [0, 0, 1], 2400, 30, 40)] == ["yes"]


def test_per_keyword_threshold_overrides_the_default():
    labels = ["_silence_", "yes", "no"]
    rc = RecognizeCommands(labels, 500, 0.5, suppression_ms=0, thresholds={"yes": 0.9})
    assert feed(rc, [0.2, 0.8, 0.0], 0, 30, 40) == []  # 0.8 < 0.9 for yes
    assert [label for label, _ in feed(rc, [0.2, 0.0, 0.8], 1500, 30, 40)] == ["no"]  # 0.8 > 0.5 for no


def test_minimum_count_and_quarter_window_are_required():
    rc = RecognizeCommands(["_silence_", "a"], 1000, 0.5, minimum_count=3)
    assert not rc.process(np.array([0, 1.0]), 0).is_new_command
    assert not rc.process(np.array([0, 1.0]), 100).is_new_command
    assert not rc.process(np.array([0, 1.0]), 200).is_new_command  # 3 results but only 200 ms < 250
    assert rc.process(np.array([0, 1.0]), 300).is_new_command


def _reference(labels, scores, times, window, threshold, suppression, minimum_count, quick=None, quick_ms=160):
    """The smoother as first written (a deque and np.mean), to check the buffered one against;
    with ``quick``, the quick rule as its docstring states it."""
    from collections import deque

    results, armed, last, out = deque(), np.ones(len(labels), bool), None, []
    for s, t in zip(scores, times):
        results.append((t, np.asarray(s, np.float64)))
        while results[0][0] < t - window:
            results.popleft()
        if len(results) < minimum_count or t - results[0][0] < window / 4:
            continue
        avg = np.mean([r for _, r in results], axis=0)
        above = avg > threshold
        if quick is not None:
            recent = np.mean([r for u, r in results if u >= t - quick_ms], axis=0)
            keyword = [x not in ("_silence_", "_unknown_") for x in labels]
            quick_above = recent > np.maximum(quick, threshold)
            if not (above & keyword)[np.argmax(avg)] and (keyword & quick_above)[np.argmax(recent)]:
                avg = recent
            above = above | quick_above
        armed |= ~above
        top = int(np.argmax(avg))
        if (
            above[top]
            and labels[top] not in ("_silence_", "_unknown_")
            and armed[top]
            and not (last is not None and t - last <= suppression)
        ):
            armed[top] = False
            last = t
            out.append((labels[top], t, float(avg[top])))
    return out


@pytest.mark.parametrize(
    "window,stride,count,threshold,quick",
    # the last: the quick rule at 0.85 over a long average at 0.7 (62 detections; 57 without the rule)
    [(500, 40, 3, 0.5, None), (2000, 10, 3, 0.5, None), (1000, 20, 40, 0.5, None), (800, 80, 3, 0.7, 0.85)],
)
def test_the_buffered_window_decides_exactly_as_the_plain_definition(window, stride, count, threshold, quick):
    labels = ["_silence_", "_unknown_", "yes", "no", "stop"]
    rng = np.random.default_rng(window)
    # a label that changes every one and a half windows dominates, under random noise
    run = int(window / stride * 1.5)
    dominant = np.repeat(rng.integers(0, len(labels), 3000 // run + 1), run)[:3000]
    scores = 0.4 * rng.dirichlet(np.ones(len(labels)) * 0.2, size=3000) + 0.6 * np.eye(len(labels))[dominant]
    times = np.arange(3000) * stride
    rc = RecognizeCommands(labels, window, threshold, 700, count, quick_threshold=quick)
    got = [(r.label, t, r.score) for s, t in zip(scores, times) for r in [rc.process(s, int(t))] if r.is_new_command]
    assert got == _reference(labels, scores, times, window, threshold, 700, count, quick) and len(got) > 3


# --- the quick rule (config/quick.yaml)


def test_a_sure_short_word_is_reported_at_once_with_the_quick_rule_and_late_without():
    """Four strides of a sure "stop" after silence, at the bundled model's 80 ms stride and 800 ms
    average: the long average never reaches 0.5 (4 of at least 10 results), the quick rule reports
    it on its third stride."""
    labels = ["_silence_", "_unknown_", "stop"]

    def found(rc):
        return feed(rc, [1, 0, 0], 0, 15, 80) + feed(rc, [0, 0, 1], 1200, 4, 80) + feed(rc, [1, 0, 0], 1520, 15, 80)

    assert found(RecognizeCommands(labels, 800, 0.5, 1500, 3)) == []
    assert found(RecognizeCommands(labels, 800, 0.5, 1500, 3, quick_threshold=0.9)) == [("stop", 1200 + 2 * 80)]
    # a stretch that is not sure enough waits for the long average, as without the rule
    assert found(RecognizeCommands(labels, 800, 0.5, 1500, 3, quick_threshold=1.0)) == []


def test_a_long_word_is_reported_once_by_the_quick_rule_even_without_suppression():
    """The quick report must not be followed by a second one from the long average of the same word."""
    rc = RecognizeCommands(["_silence_", "stop"], 800, 0.5, suppression_ms=0, quick_threshold=0.9)
    found = feed(rc, [1, 0], 0, 20, 80) + feed(rc, [0, 1], 1600, 20, 80) + feed(rc, [1, 0], 3200, 20, 80)
    assert found == [("stop", 1600 + 2 * 80)]


def test_a_keyword_silenced_by_its_threshold_stays_silent_with_the_quick_rule():
    rc = RecognizeCommands(["_silence_", "stop", "go"], 800, 0.5, 0, 3, {"stop": 1.0}, quick_threshold=0.9)
    found = feed(rc, [1, 0, 0], 0, 10, 80) + feed(rc, [0, 1, 0], 800, 20, 80) + feed(rc, [0, 0, 1], 2400, 20, 80)
    assert [label for label, _ in found] == ["go"]

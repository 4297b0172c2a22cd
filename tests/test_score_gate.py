"""The score gate: on the stride after one on which the model gave every keyword little (below
``inference.score_gate``; on two strides below a tenth of it, three below a hundredth) the model is
skipped, its last scores are passed on again and those strides' features wait for the next run: the
same keywords, each at most one stride later, for fewer model runs."""

import re

from conftest import DEFAULT_MODEL, SAMPLE, compose, detections, kwsd, same_words_within_a_stride

from kwsd.model import KeywordModel
from kwsd.pipeline import DEFAULT_SCORE_GATE, Pipeline
from kwsd.wavfile import read_wav


def run(audio, score_gate):
    pipeline = Pipeline([KeywordModel.load(DEFAULT_MODEL)], 16000, score_gate=score_gate)
    features = pipeline.groups[0].features
    pushes = []  # strides whose features were computed when they came
    push = features.push
    features.push = lambda chunk: pushes.append(1) or push(chunk)
    found = []
    for i in range(0, len(audio), 4000):  # quarter-second blocks, as a recording is read
        found += pipeline.process(audio[i : i + 4000])
    found += pipeline.finish()
    stats = pipeline.stats
    # a stride that no model reads (the silence gate shut, or every model resting) computes no features
    assert len(pushes) == stats.strides - stats.gated - stats.rested
    return [(d.keyword, d.audio_ms, d.score) for d in found], stats


def test_keywords_over_kitchen_noise_come_at_most_a_stride_later_with_fewer_model_runs():
    audio, _ = read_wav(str(SAMPLE))
    plain, every = run(audio, None)
    gated, stats = run(audio, DEFAULT_SCORE_GATE)
    assert [k for k, _, _ in plain] == ["yes", "stop", "stop", "go"]
    # measured: "yes" and the first "stop" one stride later, the others at the same moments
    assert same_words_within_a_stride(gated, plain, later_only=True)
    assert every.rested == 0 and stats.invokes + stats.rested == every.invokes
    assert stats.rested > every.invokes // 4  # measured: 59 of 125 (41 with one stride's rest alone)


def test_other_words_skip_model_runs_and_wake_nothing():
    """Words that are not keywords, with pauses, over the kitchen noise: what most of a day sounds like."""
    audio = compose([("_unknown_", i % 4, 0.5 + 1.5 * i) for i in range(8)], 12.5)
    plain, every = run(audio, None)
    gated, stats = run(audio, DEFAULT_SCORE_GATE)
    assert gated == plain == []
    assert stats.invokes + stats.rested == every.invokes
    assert stats.rested > every.invokes // 4  # measured: 78 of 151 (63 with one stride's rest alone)


def test_a_room_where_nothing_is_said_runs_the_model_on_fewer_than_one_stride_in_three():
    """Scores far below the gate: a run is followed by up to three resting strides, never more."""
    audio = compose([], 12.5)
    plain, every = run(audio, None)
    gated, stats = run(audio, DEFAULT_SCORE_GATE)
    assert gated == plain == []
    assert stats.invokes + stats.rested == every.invokes
    # measured: 30 of 103 (36 resting at most two strides, 54 resting one)
    assert every.invokes / 4 <= stats.invokes <= every.invokes * 0.33


def test_kwsd_run_reports_the_skipped_runs_and_the_config_turns_the_gate_off(tmp_path):
    on = kwsd("run", "--input", SAMPLE, "--json", check=True)
    off_config = tmp_path / "kwsd.yaml"
    off_config.write_text("inference:\n  score_gate: null\n")
    off = kwsd("run", "--input", SAMPLE, "--json", "--config", off_config, check=True)
    moments = [[(d["keyword"], d["audio_ms"], d["score"]) for d in detections(p)] for p in (on, off)]
    assert same_words_within_a_stride(*moments, later_only=True) and len(moments[0]) == 4
    pattern = r"(\d+) model run\(s\) skipped after low scores"
    skipped = [int(re.search(pattern, p.stderr.decode()).group(1)) for p in (on, off)]
    assert skipped[0] > 10 and skipped[1] == 0

"""The score gate: the stride after one on which the model gave every keyword next to nothing
skips the model and passes those scores on; no detection changes because of it."""

import re

import numpy as np
from conftest import DEFAULT_MODEL, SAMPLE, compose, detections, kwsd

from kwsd.model import KeywordModel
from kwsd.pipeline import Pipeline
from kwsd.wavfile import read_wav


def run(audio, score_gate):
    pipeline = Pipeline([KeywordModel.load(DEFAULT_MODEL)], 16000, score_gate=score_gate)
    found = []
    for i in range(0, len(audio), 4000):  # quarter-second blocks, as a recording is read
        found += pipeline.process(audio[i : i + 4000])
    found += pipeline.finish()
    return [(d.keyword, d.audio_ms, d.score) for d in found], pipeline.stats


def test_keywords_over_kitchen_noise_come_at_the_same_moments_with_fewer_model_runs():
    audio, _ = read_wav(str(SAMPLE))
    plain, every = run(audio, None)
    gated, stats = run(audio, 0.005)
    assert [k for k, _, _ in plain] == ["yes", "stop", "stop", "go"]
    assert [(k, t) for k, t, _ in gated] == [(k, t) for k, t, _ in plain]  # same keywords, same moments
    # the average a detection reports may hold a repeated low score: measured 0.849 against 0.855
    assert np.allclose([s for _, _, s in gated], [s for _, _, s in plain], atol=0.02)
    assert every.rested == 0 and stats.invokes + stats.rested == every.invokes
    assert stats.rested > every.invokes // 5  # measured: 37 of 125


def test_other_words_skip_model_runs_and_wake_nothing():
    """Words that are not keywords, with pauses, over the kitchen noise: what most of a day sounds like."""
    audio = compose([("_unknown_", i % 4, 0.5 + 1.5 * i) for i in range(8)], 12.5)
    plain, every = run(audio, None)
    gated, stats = run(audio, 0.005)
    assert gated == plain == []
    assert stats.invokes + stats.rested == every.invokes and stats.rested > every.invokes // 10  # measured: 22 of 151


def test_kwsd_run_reports_the_skipped_runs_and_the_config_turns_the_gate_off(tmp_path):
    on = kwsd("run", "--input", SAMPLE, "--json", check=True)
    off_config = tmp_path / "kwsd.yaml"
    off_config.write_text("inference:\n  score_gate: null\n")
    off = kwsd("run", "--input", SAMPLE, "--json", "--config", off_config, check=True)
    moments = [[(d["keyword"], d["audio_ms"]) for d in detections(p)] for p in (on, off)]
    assert moments[0] == moments[1] and len(moments[0]) == 4
    pattern = r"(\d+) model run\(s\) skipped after low scores"
    skipped = [int(re.search(pattern, p.stderr.decode()).group(1)) for p in (on, off)]
    assert skipped[0] > 10 and skipped[1] == 0

"""A model file with a second stage (kwsd cascade): built from real model files, scored by the real
first network, run by `kwsd run`, kept by `kwsd tune`, and refused in one line when it is broken."""

import re

import numpy as np
import pytest
from conftest import DEFAULT_MODEL, ROOT, clip, detections, kwsd

from kwsd.cascade_model import FIELD, CascadeKeywordModel, pack_cascade, split_networks
from kwsd.features import MfccFrontend
from kwsd.model import KeywordModel, pack_model, unpack_model
from kwsd.tune import write_model_with_settings

SAMPLE = ROOT / "models" / "sample.wav"


class CountingNetwork:
    """A second-stage network that always says 'go' and counts how often it was asked."""

    def __init__(self, labels):
        self.calls = 0
        self.out = np.zeros(len(labels), np.float32)
        self.out[labels.index("go")] = 1.0

    def scores(self, features):
        self.calls += 1
        return self.out


def first_network(tmp_path):
    """The bundled model's first network alone, as a plain model file (the bundled one has a second stage)."""
    flatbuffer, meta = unpack_model(DEFAULT_MODEL.read_bytes())
    first, _ = split_networks(flatbuffer, meta.pop(FIELD)["network_bytes"])
    path = tmp_path / "first.tflite"
    path.write_bytes(pack_model(first, {k: v for k, v in meta.items() if k != "format_version"}))
    return path


def quiet_and_word(plain):
    """Feature windows of silence and of a real "yes", as the model's frontend computes them."""
    frontend = MfccFrontend(plain.frontend)
    return frontend.clip_features(np.zeros(16000, np.float32)), frontend.clip_features(clip("yes"))


def cascade_file(tmp_path, *seconds, gate=0.3, hold=2, with_first=False):
    files = [(str(p), p.read_bytes()) for p in [first_network(tmp_path), *seconds]]
    path = tmp_path / "cascade.tflite"
    path.write_bytes(pack_cascade(files, gate, hold, with_first))
    return path


@pytest.mark.parametrize("with_first", [False, True])
def test_the_second_stage_scores_only_from_where_the_first_network_hears_a_keyword_and_for_the_hold(
    tmp_path, with_first
):
    first = first_network(tmp_path)
    model = KeywordModel.load(cascade_file(tmp_path, first, first, hold=2, with_first=with_first))
    assert isinstance(model, CascadeKeywordModel) and len(model.second) == 2
    plain = KeywordModel.load(first)
    quiet, word = quiet_and_word(plain)
    assert plain.scores(quiet)[2:].max() < 0.3 < plain.scores(word)[plain.labels.index("yes")]  # as the test needs
    model.second = [CountingNetwork(model.labels), CountingNetwork(model.labels)]

    said = [model.stream_scores(w) for w in (quiet, quiet, word, quiet, quiet, quiet, quiet)]

    first_says = [plain.scores(w) for w in (quiet, quiet, word, quiet, quiet, quiet, quiet)]
    for i in (0, 1, 5, 6):  # before the word, and once the hold of two strides is over
        np.testing.assert_array_equal(said[i], first_says[i])
    for i in (2, 3, 4):  # the word's stride and the two after it: the average of three, or of the two
        second_says = model.second[0].out
        expected = (first_says[i] + 2 * second_says) / 3 if with_first else second_says
        np.testing.assert_allclose(said[i], expected, atol=1e-6)
    assert [n.calls for n in model.second] == [3, 3]
    # a clip on its own (kwsd label): the second stage only if the first network hears a keyword in it
    np.testing.assert_array_equal(model.scores(quiet), first_says[0])
    np.testing.assert_allclose(model.scores(word), said[2], atol=1e-6)


def test_with_a_period_of_two_the_second_stage_scores_every_other_open_stride_and_the_first_network_the_rest(
    tmp_path,
):
    first = first_network(tmp_path)
    model = KeywordModel.load(cascade_file(tmp_path, first, hold=3))
    plain = KeywordModel.load(first)
    quiet, word = quiet_and_word(plain)
    model.period = 2
    model.second = [CountingNetwork(model.labels)]
    windows = (quiet, word, quiet, quiet, quiet, quiet, word, quiet)

    said = [model.stream_scores(w) for w in windows]

    # open on strides 1-4 (the word and a hold of three) and again from 6: the second stage scores
    # the first of them and every other one after it, the first network the rest
    from_second = [i for i, s in enumerate(said) if np.array_equal(s, model.second[0].out)]
    assert from_second == [1, 3, 6] and model.second[0].calls == 3 == model.second_runs
    for i in (0, 2, 4, 5, 7):
        np.testing.assert_array_equal(said[i], plain.scores(windows[i]))


def test_kwsd_cascade_changes_the_period_of_a_file_that_has_a_second_stage_and_keeps_the_rest(tmp_path):
    out = tmp_path / "every_other.tflite"
    made = kwsd("cascade", "--out", str(out), "--period-strides", "3", DEFAULT_MODEL)
    assert made.returncode == 0, made.stderr
    assert "1 second-stage network(s) (gate 0.3, hold 1 stride(s), one in 3)" in made.stdout.decode()
    old_net, old = unpack_model(DEFAULT_MODEL.read_bytes())
    new_net, new = unpack_model(out.read_bytes())
    assert new_net == old_net and new[FIELD] == {**old[FIELD], "period_strides": 3}
    assert {k: v for k, v in new.items() if k != FIELD} == {k: v for k, v in old.items() if k != FIELD}
    ran = kwsd("run", "--json", "--input", str(SAMPLE), "--model", str(out))
    assert [d["keyword"] for d in detections(ran)] == ["yes", "stop", "stop", "go"], ran.stderr


def test_kwsd_cascade_writes_one_file_that_kwsd_run_detects_with_and_kwsd_tune_keeps(tmp_path):
    out = tmp_path / "two.tflite"
    first = first_network(tmp_path)
    made = kwsd("cascade", "--out", str(out), first, first, first)
    assert made.returncode == 0, made.stderr
    assert "2 second-stage network(s) (gate 0.3, hold 1 stride(s))" in made.stdout.decode()

    # a second stage of the first network twice: its average is the first network's scores
    ran = kwsd("run", "--json", "--input", str(SAMPLE), "--model", str(out))
    plain = kwsd("run", "--json", "--input", str(SAMPLE), "--model", first)
    assert ran.returncode == 0, ran.stderr
    heard = [d["keyword"] for d in detections(ran)]
    assert heard == [d["keyword"] for d in detections(plain)] == ["yes", "stop", "stop", "go"]
    # what the second stage costs: its share of the model runs, in kwsd run's closing line
    share = re.search(r"second stage on (\d+) of (\d+) model run\(s\)", ran.stderr.decode())
    assert share and 0 < int(share[1]) < int(share[2]), ran.stderr.decode()  # measured: 48 of 91
    assert "second stage on" not in plain.stderr.decode()

    model = KeywordModel.load(out)
    tuned = tmp_path / "tuned.tflite"
    settings = {**model.metadata["recognize"], "detection_threshold": 0.61}
    write_model_with_settings(model, settings, str(tuned), clip_stride_ms=80)
    kept = KeywordModel.load(tuned)
    assert isinstance(kept, CascadeKeywordModel) and len(kept.second) == 2 and kept.gate == 0.3
    assert kept.metadata["recognize"]["detection_threshold"] == 0.61


def broken_files(tmp_path):
    first, meta = unpack_model(first_network(tmp_path).read_bytes())
    short = dict(meta, second_stage={"gate": 0.3, "hold_strides": 12, "network_bytes": [len(first)]})
    cut = dict(meta, second_stage={"gate": 0.3, "hold_strides": 12, "network_bytes": [1000]})
    other = dict(meta, labels=[("yeah" if x == "yes" else x) for x in meta["labels"]])
    for name, data in {
        "sizes.tflite": pack_model(first, short),
        "cut.tflite": pack_model(first + first[:1000], cut),
        "gate.tflite": pack_model(first + first, dict(cut, second_stage={**cut["second_stage"], "gate": 2})),
        "flag.tflite": pack_model(first + first, dict(cut, second_stage={**cut["second_stage"], "with_first": "yes"})),
        "period.tflite": pack_model(
            first + first, dict(cut, second_stage={**cut["second_stage"], "period_strides": 0})
        ),
        "other.tflite": pack_model(first, other),
    }.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["run", "--input", str(SAMPLE), "--model", "{d}/sizes.tflite"], 1, "second_stage.network_bytes"),
        (["run", "--input", str(SAMPLE), "--model", "{d}/cut.tflite"], 1, "second-stage network 1: not a valid"),
        (["run", "--input", str(SAMPLE), "--model", "{d}/gate.tflite"], 1, "second_stage.gate"),
        (["run", "--input", str(SAMPLE), "--model", "{d}/flag.tflite"], 1, "second_stage.with_first"),
        (["run", "--input", str(SAMPLE), "--model", "{d}/period.tflite"], 1, "second_stage.period_strides"),
        (["cascade", "--out", "{d}/o.tflite", "--period-strides", "0", str(DEFAULT_MODEL)], 2, "--period-strides"),
        (["cascade", "--out", "{d}/o.tflite", "{d}/first.tflite"], 1, "needs at least one more model file"),
        (["cascade", "--out", "{d}/o.tflite", "{d}/first.tflite", "{d}/other.tflite"], 1, "'labels' differ"),
        (["cascade", "--out", "{d}/o.tflite", "{d}/first.tflite", str(ROOT / "README.md")], 1, "no kwsd metadata"),
        (["cascade", "--out", "{d}/o.tflite", str(DEFAULT_MODEL), "{d}/first.tflite"], 1, "has a second stage already"),
        (["cascade", "--out", "{d}/o.tflite", "{d}/first.tflite", str(DEFAULT_MODEL)], 1, "takes plain networks"),
        (["cascade", "--out", "{d}/o.tflite", "--gate", "1.5", "{d}/first.tflite", "{d}/first.tflite"], 2, "--gate"),
        (["cascade", "--out", "{d}/none/o.tflite", "{d}/first.tflite", "{d}/first.tflite"], 1, "cannot write"),
        # before: the first network was replaced by the cascade, and lost
        (["cascade", "--out", "{d}/first.tflite", "{d}/first.tflite", "{d}/first.tflite"], 2, "one of the networks"),
    ],
)
def test_a_broken_cascade_is_one_clear_error(tmp_path, args, status, message):
    d = broken_files(tmp_path)
    first = (d / "first.tflite").read_bytes()
    proc = kwsd(*[a.format(d=d) for a in args])
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == status and len(err) == 1 and message in err[0], proc.stderr
    assert not (d / "o.tflite").exists() and (d / "first.tflite").read_bytes() == first


@pytest.mark.integration
def test_config_lite_runs_the_bundled_models_first_network_alone(tmp_path):
    """config/lite.yaml (inference.second_stage: false): the bundled model's first network scores
    alone, exactly as its own file does with the profile's settings, and the demo is still heard."""
    first = first_network(tmp_path)
    own_file = KeywordModel.load(first)
    word = MfccFrontend(own_file.frontend).clip_features(clip("left"))
    alone = KeywordModel.load(DEFAULT_MODEL, second_stage=False)
    both = KeywordModel.load(DEFAULT_MODEL)
    assert not isinstance(alone, CascadeKeywordModel) and FIELD not in alone.metadata
    np.testing.assert_array_equal(alone.scores(word), own_file.scores(word))
    assert not np.array_equal(both.scores(word), alone.scores(word))  # the second stage does change them

    lite = ROOT / "config" / "lite.yaml"
    settings_only = tmp_path / "settings.yaml"  # the profile's recognize section, with no inference section
    settings_only.write_text("recognize:" + lite.read_text().split("recognize:", 1)[1])
    ran = kwsd("run", "--json", "--input", SAMPLE, "--config", lite, check=True)
    own = kwsd("run", "--json", "--input", SAMPLE, "--model", first, "--config", settings_only, check=True)
    said = [(d["keyword"], d["audio_ms"], d["score"]) for d in detections(ran)]
    assert said == [(d["keyword"], d["audio_ms"], d["score"]) for d in detections(own)]
    assert [w for w, _, _ in said] == ["yes", "stop", "stop", "go"]
    assert "second stage (1 network(s)) is off" in ran.stderr.decode()
    assert "second stage on" not in ran.stderr.decode()  # off: it scored nothing

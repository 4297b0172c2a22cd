"""Listening for some keywords only (``recognize.keywords``): a user who wakes on one word
gets that word's detections and false accepts, not the other nine's."""

import json
import re

import numpy as np
from conftest import DEFAULT_MODEL, SAMPLE, SAMPLE_WORDS, detections, kwsd, same_words_within_a_stride

from kwsd.config import parse_config
from kwsd.model import KeywordModel
from kwsd.recognize import RecognizeCommands
from kwsd.tune import Grid, recognize_yaml, record_scores, tune


def test_the_smoother_reports_a_listened_keyword_and_stays_quiet_on_the_others():
    labels = ["_silence_", "_unknown_", "stop", "go"]
    rc = RecognizeCommands(labels, average_window_ms=300, minimum_count=1, suppression_ms=0, keywords=["stop"])
    go = [rc.process([0, 0, 0.05, 0.95], t) for t in range(0, 1000, 100)]
    assert not any(r.is_new_command for r in go)  # "go" is heard, and nobody listens for it
    stop = [rc.process([0, 0, 0.95, 0.05], t) for t in range(2000, 3000, 100)]
    assert [r.label for r in stop if r.is_new_command] == ["stop"]


def test_kwsd_run_listening_for_stop_reports_the_samples_two_stops_alone(tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("recognize:\n  keywords: [stop]\n")
    every = detections(kwsd("run", "--input", SAMPLE, "--json", check=True))
    proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True)
    only = detections(proc)
    assert [d["keyword"] for d in every] == SAMPLE_WORDS  # yes, stop, stop, go
    # the score gate looks at the listened words alone, so it rests the model on other strides than
    # when all ten are listened for (measured on the sample: "stop" 80 ms later alone, "yes" 80 ms sooner)
    assert same_words_within_a_stride(
        [(d["keyword"], d["audio_ms"]) for d in only],
        [(d["keyword"], d["audio_ms"]) for d in every if d["keyword"] == "stop"],
    )
    assert "listening for stop only" in proc.stderr.decode()  # the log says what is listened for


def test_a_keyword_list_naming_no_known_word_or_none_exits_78_in_one_line(tmp_path):
    config = tmp_path / "kwsd.yaml"
    for text, message in [
        ("recognize:\n  keywords: [stop, stpo]\n", "recognize.keywords: 'stpo' is not a keyword of the loaded model"),
        ("recognize:\n  keywords: []\n", "recognize.keywords: needs at least 1 item"),
        ("recognize:\n  keywords: stop\n", "recognize.keywords: must be a list, not 'stop'"),
    ]:
        config.write_text(text)
        proc = kwsd("run", "--config", config, "--input", SAMPLE)
        err = proc.stderr.decode()
        assert proc.returncode == 78 and err.count("\n") == 1 and message in err, err


def test_stream_eval_counts_only_the_listened_keywords_as_ones_to_find(tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("recognize:\n  keywords: [stop, go]\n")
    fig = json.loads(kwsd("stream", "eval", SAMPLE, "--config", config, "--json", check=True).stdout)
    assert fig["keyword_truths"] == 3 and fig["false_reject_rate"] == 0  # stop, stop, go; the yes is no miss
    assert fig["false_accepts"] == 0 and set(fig["per_keyword"]) == {"stop", "go"}


def test_tune_for_one_word_gives_it_the_whole_budget_and_writes_a_section_kwsd_run_reads(tmp_path):
    model = KeywordModel.load(DEFAULT_MODEL)
    trace = record_scores(model, str(SAMPLE), 80)
    grid = Grid((500,), (3,), (1500,), (0.5, 0.9, 0.99))
    result = tune(model, [trace], 0.5, grid, keywords=["stop"])
    best = result["best"]
    assert best["settings"]["keywords"] == ["stop"] and set(best["settings"]["thresholds"]) == {"stop"}
    assert best["figures"]["keyword_truths"] == 2 and best["figures"]["false_reject_rate"] == 0
    assert set(best["figures"]["per_keyword"]) == {"stop"} and set(best["curves"]) == {"stop"}
    every = tune(model, [trace], 0.5, grid)["best"]
    assert "keywords" not in every["settings"] and every["figures"]["keyword_truths"] == 4
    config = parse_config(recognize_yaml(best["settings"], 80))
    assert config.recognize.keywords == ["stop"]  # "stop" stays a string, not a YAML 1.1 word
    assert np.isclose(config.recognize.thresholds["stop"], best["settings"]["thresholds"]["stop"])


def test_a_model_whose_settings_listen_for_a_word_it_lacks_is_refused_in_one_line(tmp_path):
    from kwsd.recognize import SmootherSettings
    from kwsd.tune import write_model_with_settings

    model = KeywordModel.load(DEFAULT_MODEL)
    for words, refused in [(["stop"], False), (["stpo"], True), (["_unknown_"], True)]:
        out = tmp_path / "m.tflite"
        write_model_with_settings(model, SmootherSettings(keywords=words).to_dict(), str(out))
        proc = kwsd("run", "--model", out, "--input", SAMPLE, "--json")
        err = proc.stderr.decode()
        if refused:
            assert proc.returncode == 1 and err.count("\n") == 1 and "recognize.keywords names a word" in err, err
        else:  # its own recommendation: the model reports stop alone
            assert proc.returncode == 0 and {d["keyword"] for d in detections(proc)} == {"stop"}, err


def test_a_hook_on_a_word_left_out_is_warned_about_and_a_models_own_list_is_what_is_reported(tmp_path):
    from kwsd.recognize import reported_keywords
    from kwsd.tune import write_model_with_settings

    config = tmp_path / "kwsd.yaml"
    config.write_text(
        "recognize:\n  keywords: [stop]\nhooks:\n  commands:\n    - keyword: 'yes'\n      argv: [/bin/true]\n"
    )
    err = kwsd("run", "--config", config, "--input", SAMPLE, check=True).stderr.decode()
    assert "a hook waits for 'yes', never reported" in err  # it would wait forever, silently
    model = KeywordModel.load(DEFAULT_MODEL)
    out = tmp_path / "stop.tflite"
    write_model_with_settings(model, {**model.metadata["recognize"], "keywords": ["stop"]}, str(out))
    stop_only = KeywordModel.load(out)
    assert reported_keywords([stop_only]) == ["stop"]  # what MQTT discovery announces for it
    assert reported_keywords([stop_only], {"keywords": ["go"]}) == ["go"]  # the config wins
    assert reported_keywords([model]) == model.keywords


def test_listening_for_one_word_runs_the_costly_second_stage_only_where_that_word_may_be(tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("recognize:\n  keywords: ['yes']\n")
    every = kwsd("run", "--input", SAMPLE, "--json", check=True)
    one = kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True)
    runs = [re.search(r"second stage on (\d+) of (\d+) model run", p.stderr.decode()) for p in (every, one)]
    assert runs[0] and runs[1] and int(runs[1].group(1)) < int(runs[0].group(1)) / 2, [r.group(0) for r in runs]
    # and the word itself is heard as before, within a stride of the same moment
    assert same_words_within_a_stride(
        [(d["keyword"], d["audio_ms"]) for d in detections(one)],
        [(d["keyword"], d["audio_ms"]) for d in detections(every) if d["keyword"] == "yes"],
    )

"""Streams: `kwsd stream make` / `kwsd stream eval`, the evaluator's counting, the smoother
replay that `kwsd tune` relies on, and tune's output as a user meets it."""

import json
import re

import numpy as np
import pytest
import yaml
from conftest import DEFAULT_MODEL, SAMPLE, SPEECH, clip, compose, detections, kwsd

from kwsd.config import parse_config
from kwsd.detection import Detection
from kwsd.model import KeywordModel
from kwsd.pipeline import run_array
from kwsd.recognize import SmootherSettings
from kwsd.streams import match, read_truth, word_end_ms
from kwsd.tune import Grid, record_scores, replay, tune
from kwsd.wavfile import read_wav

NOISE = SPEECH / "_background_noise_" / "doing_the_dishes_2s.wav"
KEYWORDS = ["yes", "no", "stop", "go"]


def d(keyword, ms):
    return Detection(keyword, 0.9, ms, "m", timestamp="")


def test_counting_on_hand_made_detections():
    truth = [("yes", 1000), ("stop", 5000), ("go", 9000), ("cat", 13000), ("no", 17000)]
    found = [
        d("yes", 1800),  # inside yes's clip span (1000 .. 1000 + 1000 + 750): correct
        d("yes", 2500),  # the same span again: a duplicate
        d("go", 5900),  # inside stop's span, another keyword: wrong
        d("go", 11000),  # 2000 ms after go's clip ended, outside the 750 ms tolerance: false accept
        d("stop", 13500),
    ]  # over a non-keyword word: false accept
    fig = match(found, truth, KEYWORDS, hours=0.5).summary()
    assert fig["keyword_truths"] == 4  # "cat" is not a keyword truth
    k = fig["per_keyword"]
    assert (k["yes"]["correct"], k["yes"]["false_accepts"]) == (1, 1)
    assert (k["stop"]["correct"], k["stop"]["wrong"], k["stop"]["false_accepts"]) == (0, 1, 1)
    assert (k["go"]["correct"], k["go"]["false_accepts"]) == (0, 1)
    assert k["no"]["false_reject_rate"] == 1.0 and k["yes"]["false_reject_rate"] == 0.0
    assert fig["duplicates"] == 1
    assert fig["false_accepts"] == 3 and fig["false_accepts_per_hour"] == 6.0
    assert fig["false_reject_rate"] == 0.75 and fig["wrong_keyword_rate"] == 0.25
    # a detection before its clip started cannot be a match
    assert match([d("yes", 900)], [("yes", 1000)], KEYWORDS, 1.0).summary()["false_accepts"] == 1


def test_the_figures_say_how_far_counts_this_small_can_be_from_the_true_rates():
    # no false accept in half an hour does not show "at most 0.5 per hour": 7.4 is as likely at 95%
    silent = match([], [], KEYWORDS, hours=0.5).summary()
    assert silent["false_accepts_per_hour"] == 0.0 and silent["false_accepts_per_hour_95ci"] == [0.0, 7.378]
    assert silent["false_reject_rate_95ci"] is None  # no keyword in it
    truth = [("yes", 1000), ("stop", 5000), ("go", 9000), ("no", 17000)]
    fig = match([d("yes", 1800), d("go", 11000), d("go", 14000)], truth, KEYWORDS, hours=0.5).summary()
    low, high = fig["false_accepts_per_hour_95ci"]  # two false accepts in half an hour
    assert 0 < low < fig["false_accepts_per_hour"] == 4.0 < high and high == pytest.approx(14.45, abs=0.01)
    low, high = fig["false_reject_rate_95ci"]  # three of four missed
    assert low == pytest.approx(0.1941, abs=1e-4) and high == 0.9937
    # a perfect score on ten keywords still allows 31% missed
    perfect = match(
        [d("yes", 1000 + 4000 * i + 800) for i in range(10)],
        [("yes", 1000 + 4000 * i) for i in range(10)],
        KEYWORDS,
        0.5,
    )
    assert perfect.summary()["false_reject_rate_95ci"] == [0.0, 0.3085]


def test_a_correct_detection_gets_its_delay_after_the_words_end_and_a_wrong_one_none():
    truth = [("yes", 1000), ("stop", 5000), ("go", 9000)]
    ends = {1000: 1550, 5000: 5600, 9000: 9400}  # where each clip's word stops sounding
    found = [d("yes", 1800), d("go", 5900), d("go", 9700)]  # correct, wrong, correct
    fig = match(found, truth, KEYWORDS, hours=0.5, word_ends=ends)
    assert fig.delays_ms == [250, 300]
    summary = fig.summary()
    assert summary["median_delay_ms"] == 275 and summary["p95_delay_ms"] == 297.5
    assert match(found, truth, KEYWORDS, hours=0.5).summary()["median_delay_ms"] is None  # no word ends known


def test_the_end_of_a_word_is_found_in_its_clip():
    audio = compose([("stop", 0, 1.0)], 3.0, noise_volume=0.0)
    x = clip("stop", 0)
    loud = np.flatnonzero(np.abs(x) > 0.1 * np.abs(x).max())
    end = word_end_ms(audio, 16000, 1000)
    # within 30 ms of where the waveform last comes within 20 dB of its peak
    assert abs(end - (1000 + loud[-1] * 1000 // 16000)) <= 30
    assert 1000 < end < 2000


def make_keyword_stream(out, seconds: int, seed: int, *options) -> None:
    """`kwsd stream make` of the committed clips over quiet kitchen noise."""
    words = ",".join(KEYWORDS)
    common = ["--data-dir", SPEECH, "--set", "all", "--wanted-words", words, "--background", NOISE]
    volume = ["--background-volume", "0.05", "--duration-s", str(seconds), "--seed", str(seed)]
    kwsd("stream", "make", *common, *volume, *options, "--out", out, check=True)


def write_composed(tmp_path, events, seconds: float) -> str:
    """A WAV of committed clips at the given times (conftest.compose), as record_scores reads it."""
    from kwsd.wavfile import write_wav

    path = tmp_path / "r.wav"
    write_wav(str(path), compose(events, seconds), 16000)
    return str(path)


def test_a_made_stream_has_its_truth_and_eval_finds_the_words(tmp_path):
    out = tmp_path / "s.wav"
    make_keyword_stream(out, 40, 3, "--unknown-percentage", "20")
    truth = read_truth(tmp_path / "s.txt")
    audio, rate = read_wav(str(out))
    assert rate == 16000 and len(audio) == 40 * 16000
    assert len(truth) >= 10 and {label for label, _ in truth} <= set(KEYWORDS) | {"left", "cat", "eight", "one"}
    assert all(b - a >= 1000 for (_, a), (_, b) in zip(truth, truth[1:]))  # clips never overlap
    proc = kwsd("stream", "eval", out, "--json", check=True)
    fig = json.loads(proc.stdout)
    known = KeywordModel.load(DEFAULT_MODEL).keywords  # "left" is one of the model's keywords too
    keyword_truths = sum(1 for label, _ in truth if label in known)
    assert fig["keyword_truths"] == keyword_truths
    # the committed clips are ones the bundled model labels right as clips (tests/data/make_fixtures.py);
    # in a stream, at other alignments and averaged over its 800 ms window, it still misses some
    # (2 of 13 here; it misses about a quarter of the held-out speakers' keywords, models/README.md)
    assert fig["false_reject_rate"] <= 0.35 and fig["wrong_keyword_rate"] <= 0.1
    assert fig["false_accepts"] <= 1
    # the same stream through `kwsd run`: every detection is counted once, as correct, wrong or false
    run = detections(kwsd("run", "--input", out, "--json", check=True))
    per = fig["per_keyword"].values()
    assert len(run) == sum(k["correct"] + k["wrong"] for k in per) + fig["false_accepts"]
    # how long after each word's end its detection came: a shorter average window answers sooner
    assert 0 < fig["median_delay_ms"] < 750
    quick = tmp_path / "quick.yaml"
    quick.write_text("recognize:\n  average_window_ms: 160\n  minimum_count: 1\n")
    text = kwsd("stream", "eval", out, "--config", quick, check=True).stdout.decode()
    delay = re.search(r"detected (-?\d+) ms after the word's end \(median; 95th percentile (-?\d+) ms\)", text)
    assert delay and int(delay.group(1)) < fig["median_delay_ms"] <= fig["p95_delay_ms"]
    interval = re.search(r"95% intervals \(.*\): false rejects ([\d.]+)% to ([\d.]+)%, false accepts", text)
    assert interval and float(interval.group(1)) < float(interval.group(2))


def test_a_negative_stream_concatenates_recordings_and_counts_every_detection_as_false(tmp_path):
    out = tmp_path / "neg.wav"
    kwsd(
        "stream",
        "make",
        "--negative-dir",
        SPEECH / "_unknown_",
        "--set",
        "all",
        "--duration-s",
        "0",
        "--out",
        out,
        check=True,
    )
    assert (tmp_path / "neg.txt").read_text() == ""
    audio, _ = read_wav(str(out))
    assert len(audio) == 4 * (16000 + 8000)  # four 1-s clips, each followed by 0.5 s of silence
    fig = json.loads(kwsd("stream", "eval", out, "--json", check=True).stdout)
    assert fig["keyword_truths"] == 0 and fig["false_reject_rate"] is None
    assert fig["false_accepts_per_hour"] == pytest.approx(fig["false_accepts"] / (len(audio) / 16000 / 3600), 0.01)


def test_stream_make_refuses_both_or_neither_source():
    assert kwsd("stream", "make", "--out", "x.wav").returncode == 2
    proc = kwsd("stream", "make", "--data-dir", SPEECH, "--negative-dir", SPEECH, "--out", "x.wav")
    assert proc.returncode == 2 and proc.stderr.decode().count("\n") == 1


@pytest.mark.parametrize(
    "line,message",
    [
        ("yes,abc", "line 2: expected 'label,ms', got 'yes,abc'"),
        (",1000", "line 2: expected 'label,ms', got ',1000'"),
        ("yes,inf", "line 2: expected 'label,ms', got 'yes,inf'"),  # before: an OverflowError traceback
        ("yes,-500", "line 2: -500 ms is outside the audio (0 to 10000 ms)"),  # before: counted as a miss
        ("yes,60000", "line 2: 60000 ms is outside the audio (0 to 10000 ms)"),  # before: counted as a miss
    ],
)
def test_a_bad_truth_line_is_one_error_naming_it_in_eval_and_tune(tmp_path, line, message):
    stream = tmp_path / "s.wav"
    stream.write_bytes(SAMPLE.read_bytes())
    stream.with_suffix(".txt").write_text(f"yes,1200\n{line}\n")
    for args in (("stream", "eval", stream), ("tune", "--stream", stream, "--out", tmp_path / "t")):
        err = kwsd(*args, timeout=60).stderr.decode()
        assert err.strip().splitlines()[-1] == f"kwsd: error: {stream.with_suffix('.txt')} {message}", err[-400:]


def test_stream_eval_refuses_a_negative_tolerance():
    """A window that closes before the clip does would count every keyword as missed."""
    proc = kwsd("stream", "eval", "--tolerance-ms", "-1", SAMPLE)
    assert proc.returncode == 2 and "argument --tolerance-ms" in proc.stderr.decode().splitlines()[-1]


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--duration-s", "nan"),
        ("--duration-s", "1e12"),
        ("--duration-s", "0"),
        ("--word-gap-ms", "-1"),
        ("--unknown-percentage", "150"),
        ("--background-volume", "inf"),
        ("--background", "/nonexistent/noise.wav"),
        ("--seed", "-1"),
    ],
)
def test_stream_make_refuses_an_absurd_flag_in_one_line_naming_it(tmp_path, flag, value):
    """Not numpy's words ("negative dimensions are not allowed"), a 56 PiB allocation, or an empty stream."""
    out = tmp_path / "s.wav"
    proc = kwsd("stream", "make", "--data-dir", SPEECH, "--out", out, flag, value, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and err.startswith(f"kwsd: error: {flag} "), err[-400:]
    assert not out.exists()


@pytest.mark.parametrize(
    "settings,stride",  # stride None: the model's own (80 ms); 8 results in 800 ms need the 40 ms stride
    [
        (SmootherSettings(), None),
        (SmootherSettings(300, 0.5, 1000, 3, {"stop": 0.95}), None),
        (SmootherSettings(800, 0.7, 2000, 8), 40),
        (SmootherSettings(800, 0.6, 1500, 3, quick_threshold=0.9, quick_window_ms=160), None),
        (SmootherSettings(keywords=["stop", "go"]), None),  # the gates look at those two alone
    ],
)
def test_replaying_recorded_scores_equals_running_the_pipeline(tmp_path, settings, stride):
    model = KeywordModel.load(DEFAULT_MODEL)
    events = [("yes", 0, 1.0), ("stop", 1, 3.5), ("go", 0, 6.0), ("no", 0, 8.0), ("stop", 2, 10.5)]
    path = write_composed(tmp_path, events, 13.0)
    trace = record_scores(model, path, stride, keywords=settings.keywords)
    replayed = [(x.keyword, x.audio_ms, round(x.score, 6)) for x in replay(trace, model, settings)]
    audio, rate = read_wav(path)  # what record_scores heard: the 16-bit file
    found = run_array([model], audio, rate, settings, clip_stride_ms=stride)
    direct = [(x.keyword, x.audio_ms, round(x.score, 6)) for x in found]
    assert replayed == direct and len(direct) >= 2


def test_scores_recorded_at_another_stride_replay_as_the_pipeline_runs_at_that_stride(tmp_path):
    """kwsd tune --clip-stride-ms 80 tunes for kwsd run with inference.clip_stride_ms 80."""
    model = KeywordModel.load(DEFAULT_MODEL)
    path = write_composed(tmp_path, [("yes", 0, 1.0), ("stop", 1, 3.5), ("go", 0, 6.0)], 8.0)
    at40, at80 = record_scores(model, path, 40), record_scores(model, path, 80)
    assert abs(len(at80.times_ms) * 2 - len(at40.times_ms)) <= 2 and set(np.diff(at80.times_ms)) == {80}
    settings = SmootherSettings(800, 0.6, 1500, 2)
    replayed = [(x.keyword, x.audio_ms) for x in replay(at80, model, settings)]
    audio, rate = read_wav(path)
    direct = [(x.keyword, x.audio_ms) for x in run_array([model], audio, rate, settings, clip_stride_ms=80)]
    assert replayed == direct and len(direct) >= 2


def test_the_stride_a_model_was_tuned_at_travels_in_it_and_the_config_overrides_it(tmp_path):
    from kwsd.errors import ModelError
    from kwsd.model import pack_model, unpack_model
    from kwsd.pipeline import Pipeline
    from kwsd.tune import write_model_with_settings

    flatbuffer, meta = unpack_model(DEFAULT_MODEL.read_bytes(), "default")
    meta.pop("inference", None)
    meta.pop("format_version", None)
    (tmp_path / "plain.tflite").write_bytes(pack_model(flatbuffer, meta))
    plain = KeywordModel.load(tmp_path / "plain.tflite")  # a model that recommends no stride
    settings = {**SmootherSettings().to_dict(), "thresholds": {}}
    write_model_with_settings(plain, settings, str(tmp_path / "s80.tflite"), clip_stride_ms=80)
    tuned = KeywordModel.load(tmp_path / "s80.tflite")
    assert Pipeline([tuned], 16000).clip_stride_ms == 80
    assert Pipeline([tuned], 16000, clip_stride_ms=40).clip_stride_ms == 40  # inference.clip_stride_ms set
    assert Pipeline([plain], 16000).clip_stride_ms == 40
    assert Pipeline([tuned, plain], 16000).clip_stride_ms == 40  # the shortest any model wants
    for bad in (30, 0, "80", True):  # 30 is no multiple of the 20 ms frames
        write_model_with_settings(plain, settings, str(tmp_path / "bad.tflite"), clip_stride_ms=bad)
        with pytest.raises(ModelError, match="inference.clip_stride_ms"):
            KeywordModel.load(tmp_path / "bad.tflite")


def test_tune_writes_settings_that_kwsd_run_accepts_and_that_travel_in_the_model(tmp_path):
    stream = tmp_path / "kw.wav"
    make_keyword_stream(stream, 30, 5)
    neg = tmp_path / "neg.wav"
    kwsd(
        "stream",
        "make",
        "--negative-dir",
        SPEECH / "_unknown_",
        "--set",
        "all",
        "--duration-s",
        "0",
        "--out",
        neg,
        check=True,
    )
    out = tmp_path / "tuned"
    proc = kwsd(
        "tune",
        "--stream",
        stream,
        "--negative",
        neg,
        "--windows",
        "300,500",
        "--minimum-counts",
        "3",
        "--suppressions",
        "1500",
        "--thresholds",
        "0.6,0.9,0.99",
        "--target-fa",
        "50",
        "--out",
        out,
        "--write-model",
        tmp_path / "tuned.tflite",
        timeout=300,
        check=True,
    )
    said = proc.stdout.decode()
    assert "false accepts per hour" in said
    # half a minute of audio cannot show 50 false accepts per hour or fewer, and tune says so
    assert re.search(r"not proof: up to [\d.]+ per hour at 95% confidence; showing 50.0 needs 0.1 h without one", said)
    text = (out / "recognize.yaml").read_text()
    config = parse_config(text)
    section = yaml.safe_load(text)["recognize"]
    assert config.recognize.average_window_ms in (300, 500) and set(section["thresholds"]) == set(
        KeywordModel.load(DEFAULT_MODEL).keywords
    )
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((out / "tune.json").read_text())
    assert len(result["grid"]) == 2
    assert result["best"]["settings"]["average_window_ms"] == section["average_window_ms"]
    (tmp_path / "kwsd.yaml").write_text(text)
    kwsd("check-config", "--config", tmp_path / "kwsd.yaml", check=True)
    run = kwsd("run", "--config", tmp_path / "kwsd.yaml", "--input", SAMPLE, "--json", check=True)
    assert all(x["keyword"] in KeywordModel.load(DEFAULT_MODEL).keywords for x in detections(run))
    tuned = KeywordModel.load(tmp_path / "tuned.tflite")
    assert tuned.metadata["recognize"]["average_window_ms"] == section["average_window_ms"]


def test_tune_keeps_to_a_delay_limit_and_says_in_one_line_when_no_setting_can(tmp_path):
    stream = tmp_path / "kw.wav"
    make_keyword_stream(stream, 30, 5)
    model = KeywordModel.load(DEFAULT_MODEL)
    trace = record_scores(model, str(stream), 80)
    grid = Grid(windows=(160, 800), minimum_counts=(1,), suppressions=(1500,), thresholds=(0.6, 0.9))
    free = tune(model, [trace], 50, grid)
    delays = {p["settings"]["average_window_ms"]: p["figures"]["median_delay_ms"] for p in free["grid"]}
    assert delays[160] < delays[800]
    limited = tune(model, [trace], 50, grid, max_delay_ms=delays[160])
    assert limited["best"]["settings"]["average_window_ms"] == 160
    assert len(limited["grid"]) == 2  # tune.json still shows every setting tried
    # an 800 ms window cannot answer within 1 ms (shorter ones sometimes do, before the word's end)
    proc = kwsd(
        "tune", "--stream", stream, "--windows", "800", "--max-delay-ms", "1", "--out", tmp_path / "t", timeout=300
    )
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode != 0 and "no setting of the grid detects within 1 ms" in lines[-1]
    assert not any(line.startswith("Traceback") for line in lines)


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--target-fa", "inf"),
        ("--target-fa", "-1"),
        ("--max-delay-ms", "nan"),
        ("--clip-stride-ms", "-80"),
        ("--clip-stride-ms", "30"),  # the model's frames are 20 ms apart
        ("--minimum-counts", "0"),  # kwsd run refuses a minimum count of 0
        ("--suppressions", "99999"),
        ("--keywords", "stop,stpo"),  # a typo would tune for nothing
    ],
)
def test_tune_refuses_a_flag_kwsd_run_could_not_use_in_one_line_before_any_work(tmp_path, flag, value):
    """Before: a traceback, a NaN error naming no flag, or a recognize.yaml that kwsd run refuses."""
    proc = kwsd("tune", "--stream", SAMPLE, "--out", tmp_path / "t", flag, value, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and err.startswith(f"kwsd: error: {flag} "), err[-400:]
    assert not (tmp_path / "t").exists()


def test_tune_tries_the_quick_rule_when_asked_and_writes_it_where_kwsd_run_reads_it(tmp_path):
    """With --quick-thresholds each grid point is also tried with the quick rule; it answers sooner
    than the same window without it, a delay limit then picks it, and kwsd run accepts the result."""
    stream = tmp_path / "kw.wav"
    make_keyword_stream(stream, 30, 5)
    model = KeywordModel.load(DEFAULT_MODEL)
    trace = record_scores(model, str(stream), 80)
    grid = Grid(windows=(800,), minimum_counts=(3,), thresholds=(0.5, 0.9), quick_thresholds=(0.9,))
    free = tune(model, [trace], 50, grid)
    delays = {p["settings"].get("quick_threshold"): p["figures"]["median_delay_ms"] for p in free["grid"]}
    assert set(delays) == {None, 0.9} and delays[0.9] < delays[None], delays
    limited = tune(model, [trace], 50, grid, max_delay_ms=delays[0.9])
    assert limited["best"]["settings"]["quick_threshold"] == 0.9
    out = tmp_path / "t"
    args = ("--windows", "800", "--minimum-counts", "3", "--thresholds", "0.5,0.9", "--quick-thresholds", "0.9")
    kwsd("tune", "--stream", stream, *args, "--max-delay-ms", str(delays[0.9]), "--out", out, timeout=300, check=True)
    section = yaml.safe_load((out / "recognize.yaml").read_text())["recognize"]
    assert section["quick_threshold"] == 0.9 and section["quick_window_ms"] == 160
    run = kwsd("run", "--config", out / "recognize.yaml", "--input", stream, "--json", check=True)
    assert detections(run) and "quick 0.9 over 160 ms" in run.stderr.decode()


def test_tune_records_the_scores_kwsd_run_would_see_under_the_configs_gates_and_stride(tmp_path):
    stream = tmp_path / "kw.wav"
    make_keyword_stream(stream, 20, 5)
    grid = ["--windows", "500", "--minimum-counts", "3", "--thresholds", "0.6", "--target-fa", "50"]
    # a silence gate at full scale, above any recording's level: kwsd run would never run the model,
    # and tune must not either (at -5 dBFS the loudest committed clip still opened it)
    deaf = tmp_path / "deaf.yaml"
    deaf.write_text("inference:\n  silence_gate_dbfs: 0\n  clip_stride_ms: 40\n")
    proc = kwsd(
        "tune", "--stream", stream, "--config", deaf, *grid, "--out", tmp_path / "deaf", timeout=300, check=True
    )
    assert re.search(r"keywords: false rejects 100\.0%", proc.stdout.decode())
    assert yaml.safe_load((tmp_path / "deaf" / "recognize.yaml").read_text())["inference"]["clip_stride_ms"] == 40
    heard = kwsd("tune", "--stream", stream, *grid, "--out", tmp_path / "plain", timeout=300, check=True)
    assert not re.search(r"keywords: false rejects 100\.0%", heard.stdout.decode())
    # a config that is not there: one line, non-zero exit
    bad = kwsd("tune", "--stream", stream, "--config", tmp_path / "nope.yaml", "--out", tmp_path / "x")
    assert bad.returncode != 0 and bad.stderr.decode().strip().count("\n") == 0 and "nope.yaml" in bad.stderr.decode()


def test_a_models_recommended_settings_apply_and_the_config_overrides_them(tmp_path):
    from kwsd.tune import write_model_with_settings

    model = KeywordModel.load(DEFAULT_MODEL)
    deaf = tmp_path / "deaf.tflite"  # recommends thresholds no score can pass
    write_model_with_settings(
        model, {**SmootherSettings().to_dict(), "thresholds": {k: 1.0 for k in model.keywords}}, str(deaf)
    )
    assert detections(kwsd("run", "--model", deaf, "--input", SAMPLE, "--json", check=True)) == []
    config = tmp_path / "kwsd.yaml"
    # a global threshold set in the config replaces the model's per-keyword ones
    config.write_text(
        "recognize:\n  detection_threshold: 0.7\n  average_window_ms: 500\n  suppression_ms: 1500\n  minimum_count: 3\n"
    )
    again = detections(kwsd("run", "--model", deaf, "--config", config, "--input", SAMPLE, "--json", check=True))
    plain = detections(kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True))
    assert [x["keyword"] for x in again] == [x["keyword"] for x in plain] and plain


def test_the_allowed_false_accepts_go_where_they_cost_the_fewest_misses():
    from kwsd.fa_budget import Option, allowed_false_accepts, share

    yes = [Option(0.5, 3, 2.0), Option(0.7, 1, 4.0), Option(0.8, 0, 10.0), Option(0.9, 0, 12.0)]
    go = [Option(0.5, 1, 1.0), Option(0.7, 0, 3.0), Option(0.9, 0, 3.0)]
    assert allowed_false_accepts(3.0, 3.29) == 9 and allowed_false_accepts(0.5, 1.28) == 0
    pick = lambda allowed: {k: o.threshold for k, o in share({"yes": yes, "go": go}, allowed).items()}  # noqa: E731
    # none allowed: the fewest misses at none, the highest threshold of equals ("go" at 0.9, not 0.7)
    assert pick(0) == {"yes": 0.8, "go": 0.9}
    # one allowed: it buys 6 fewer misses for "yes" but only 2 for "go" (an even split of one: none each)
    assert pick(1) == {"yes": 0.7, "go": 0.9}
    assert pick(2) == {"yes": 0.7, "go": 0.5}
    assert pick(4) == {"yes": 0.5, "go": 0.5}
    # not reachable: the fewest false accepts there are, then the fewest misses
    stuck = share({"yes": [Option(0.5, 3, 0.0), Option(0.9, 2, 5.0)], "go": go}, 1)
    assert (stuck["yes"].threshold, stuck["go"].threshold) == (0.9, 0.9)


def test_stream_make_on_unreadable_clips_fails_in_one_line_instead_of_looping(tmp_path):
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "a_nohash_0.wav").write_bytes(b"not a wav file at all")
    proc = kwsd("stream", "make", "--data-dir", tmp_path, "--set", "all", "--out", tmp_path / "s.wav", timeout=60)
    assert proc.returncode == 1 and "unreadable clips" in proc.stderr.decode()
    assert proc.stderr.decode().count("\n") == 1


class LoudnessModel(KeywordModel):
    """A stand-in model with a 1.48 s window that says "yes" whenever its newest frame is loud:
    the evaluator's spans, not a network, are under test here."""

    def __post_init__(self):  # no interpreter to prepare
        pass

    def scores(self, features):
        return np.array([0.0, 0.0, 1.0] if features[-1, 0] > -5.0 else [1.0, 0.0, 0.0], np.float32)


def test_a_model_with_a_longer_window_is_matched_over_the_streams_one_second_clips(tmp_path):
    """A streaming network may have a window longer than a word (context before it); a truth
    clip of a stream still spans its one second plus the tolerance. A burst inside the first
    clip's span is its detection; one 1.9 s after the second clip's start is a false accept,
    though it would fall inside a span as long as the model's window (1.48 s + 0.75 s)."""
    from kwsd.features import FrontendParams
    from kwsd.streams import evaluate_file
    from kwsd.wavfile import write_wav

    rate = 16000
    audio = np.random.default_rng(0).normal(0, 1e-3, 8 * rate).astype(np.float32)
    for start_ms in (1500, 5900):  # loud 200 ms bursts (c0 of a quiet frame here is about -8.7, of these about -1)
        t = np.arange(int(0.2 * rate)) / rate
        audio[start_ms * rate // 1000 :][: len(t)] += 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    wav = tmp_path / "stream.wav"
    write_wav(str(wav), audio, rate)
    (tmp_path / "stream.txt").write_text("yes,1000\nyes,4000\n")
    model = LoudnessModel(
        "stand-in",
        "stand-in",
        ["_silence_", "_unknown_", "yes"],
        FrontendParams(clip_duration_ms=1480),
        {},
        "none",
        None,
    )
    settings = {"average_window_ms": 80, "detection_threshold": 0.5, "minimum_count": 1, "suppression_ms": 500}
    figures = evaluate_file([model], str(wav), recognize=settings, silence_gate_dbfs=None, score_gate=None)
    events = [(e["is"], e["audio_ms"] // 100) for e in figures.events]
    assert [is_ for is_, _ in events] == ["correct", "false accept"], events
    assert 15 <= events[0][1] <= 17 and 59 <= events[1][1] <= 61  # at the bursts (in 100 ms)
    assert figures.keywords["yes"].truths == 2 and figures.keywords["yes"].correct == 1

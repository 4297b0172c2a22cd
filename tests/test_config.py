"""Configuration: strict YAML, one error line naming key and line, exit status 78."""

import json
import os
import re
from dataclasses import fields, is_dataclass

import pytest
import yaml
from conftest import ROOT, SAMPLE, SAMPLE_WORDS, compose, detections, kwsd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwsd.config import Config, parse_config
from kwsd.errors import ConfigError

YES = ROOT / "config" / "yes.yaml"
CONFIG_KEYS = [
    "models",
    "audio",
    "device",
    "channel",
    "sample_rate",
    "block_ms",
    "mqtt",
    "host",
    "port",
    "tls",
    "topic_prefix",
    "site",
    "qos",
    "recognize",
    "thresholds",
    "yes",
    "detection_threshold",
    "hooks",
    "commands",
    "gpio",
    "keyword",
    "command",
    "chip",
    "line",
    "inference",
    "backend",
    "log",
    "level",
]


def test_the_documented_config_is_exactly_the_defaults_and_mentions_every_key():
    text = (ROOT / "config" / "kwsd.yaml").read_text()
    assert parse_config(text) == Config()

    def keys(cls):
        for f in fields(cls):
            if f.metadata.get("internal"):
                continue
            yield f.name
            default = f.default_factory() if callable(f.default_factory) else f.default
            if is_dataclass(default):
                yield from keys(type(default))

    for key in keys(Config):
        # a key may be shown commented out: unset means "the model's recommendation"
        assert re.search(rf"^\s*(# )?{key}:", text, re.M), f"config/kwsd.yaml does not document {key}"


@pytest.mark.integration
@pytest.mark.parametrize(
    "text,key,line",
    [
        ("audio:\n  devcie: 1\n", "audio.devcie", 2),
        ("recognize:\n  detection_threshold: 1.5\n", "recognize.detection_threshold", 2),
        ("recognize:\n  suppression_ms: soon\n", "recognize.suppression_ms", 2),
        ("inference:\n  backend: gpu\n", "inference.backend", 2),
        ("inference:\n  silence_gate_dbfs: 3\n", "inference.silence_gate_dbfs", 2),
        ("inference:\n  score_gate: 1.5\n", "inference.score_gate", 2),
        ("inference:\n  second_stage: off\n", "inference.second_stage", 2),
        ("log:\n  level: info\nrecognize:\n  thresholds:\n    stop: 2\n", "recognize.thresholds.stop", 5),
        ("models: model.tflite\n", "models", 1),
        ("audio:\n  channel: -1\n", "audio.channel", 2),
        ("mqqt: {}\n", "mqqt", 1),
        ("mqtt:\n  port: 70000\n", "mqtt.port", 2),
        ("mqtt:\n  tls:\n    cafile: x\n", "mqtt.tls.cafile", 3),
    ],
)
def test_bad_values_name_the_key_and_line_and_exit_78(tmp_path, text, key, line):
    path = tmp_path / "kwsd.yaml"
    path.write_text(text)
    proc = kwsd("check-config", "--config", path)
    assert proc.returncode == 78
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1, err
    assert f"{path}: line {line}: {key}:" in err[0]
    assert kwsd("run", "--config", path, "--input", SAMPLE).returncode == 78


@pytest.mark.integration
def test_invalid_yaml_and_missing_file_exit_78(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("audio: [unclosed\n")
    for path in (bad, tmp_path / "missing.yaml"):
        proc = kwsd("check-config", "--config", path)
        assert proc.returncode == 78 and len(proc.stderr.decode().strip().splitlines()) == 1


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


@pytest.mark.integration
@pytest.mark.parametrize(
    "text,message",
    [
        (BOMB, "aliases (*name) are not supported"),  # "billion laughs": 9^9 items once expanded
        ("models: &a [*a]\n", "aliases (*name) are not supported"),
        ("models: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 16 levels"),
        ("recognize:\n  detection_threshold: .nan\n", "recognize.detection_threshold: must be a finite number"),
        ("recognize:\n  thresholds: {yes: .inf}\n", "recognize.thresholds.yes: must be a finite number"),
        ("mqtt:\n  host: ''\n", "mqtt.host: must not be empty"),
        ("mqtt:\n  host: " + "a" * 70 + ".lan\n", "at most 63 per dot-separated part"),
        ("mqtt:\n  topic_prefix: '#'\n", "mqtt.topic_prefix: '#' contains one of + # /"),
        ("mqtt:\n  site: a/+\n", "mqtt.site: 'a/+' contains one of + # /"),
        ("mqtt:\n  topic_prefix: home//kwsd\n", "has an empty topic level"),
        ("log: {level: info}\nlog: {level: debug}\n", "the key 'log' is given twice"),
        ("models: ['" + "x" * 500_000 + "']\n", "models.0: is longer than 4096 characters"),
        ("audio: " + "y" * 900_000 + "\n", "audio: must be a mapping, not 'yyyyy"),
        ("x" * (2 << 20), "larger than 1,048,576 bytes"),
    ],
)
def test_hostile_configs_get_one_short_line_and_exit_78(tmp_path, text, message):
    path = tmp_path / "kwsd.yaml"
    path.write_text(text)
    proc = kwsd("check-config", "--config", path, timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 78 and message in err, err[:500]
    assert err.count("\n") == 1 and len(err) < 400  # one line, not the offending value


@pytest.mark.integration
def test_a_fifo_or_device_as_config_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        proc = kwsd("check-config", "--config", path, timeout=30)
        assert proc.returncode == 78 and "not a regular file" in proc.stderr.decode()


def test_a_topic_prefix_of_several_levels_is_fine(tmp_path):
    config = parse_config("mqtt:\n  topic_prefix: home/kwsd\n  site: kitchen\n  host: broker.lan\n")
    assert (config.mqtt.topic_prefix, config.mqtt.site, config.mqtt.host) == ("home/kwsd", "kitchen", "broker.lan")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(CONFIG_KEYS) | st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_fuzzed_config_structures_give_a_config_or_a_config_error(data):
    """Any YAML document: a Config or one ConfigError, never another exception."""
    for document in ({"audio": data}, {"mqtt": data}, {"recognize": data}, {"hooks": data}, data):
        try:
            parse_config(yaml.safe_dump(document))
        except ConfigError as e:
            assert "\n" not in str(e) and len(str(e)) < 400


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@ \n\t.,?0123456789")), max_size=200))
def test_fuzzed_config_text_gives_a_config_or_a_config_error(text):
    try:
        parse_config(text)
    except ConfigError as e:
        assert "\n" not in str(e)


def test_yes_no_on_off_are_keywords_not_booleans():
    config = parse_config("recognize:\n  thresholds: {yes: 0.9, no: 0.8, on: 0.7, off: 0.6}\n")
    assert config.recognize.thresholds == {"yes": 0.9, "no": 0.8, "on": 0.7, "off": 0.6}


@pytest.mark.integration
def test_check_config_prints_the_effective_configuration(tmp_path):
    path = tmp_path / "kwsd.yaml"
    path.write_text("recognize:\n  detection_threshold: 0.85\n")
    proc = kwsd("check-config", "--config", path, check=True)
    effective = yaml.safe_load(proc.stdout)
    assert effective["recognize"]["detection_threshold"] == 0.85
    assert effective["inference"]["threads"] == 1  # defaults filled in
    assert effective["inference"]["clip_stride_ms"] is None  # null: the model's recommended stride
    assert str(path) in proc.stdout.decode().splitlines()[0]


@pytest.mark.integration
def test_search_order_prefers_the_flag_then_the_environment(tmp_path):
    env_file, flag_file = tmp_path / "env.yaml", tmp_path / "flag.yaml"
    env_file.write_text("recognize:\n  suppression_ms: 1111\n")
    flag_file.write_text("recognize:\n  suppression_ms: 2222\n")
    env = {"KWSD_CONFIG": str(env_file)}
    assert "suppression_ms: 1111" in kwsd("check-config", env=env, check=True).stdout.decode()
    out = kwsd("check-config", "--config", flag_file, env=env, check=True).stdout.decode()
    assert "suppression_ms: 2222" in out


@pytest.mark.integration
def test_clip_stride_must_fit_the_model(tmp_path):
    path = tmp_path / "kwsd.yaml"
    path.write_text("inference:\n  clip_stride_ms: 30\n")  # the model's frames are 20 ms apart
    proc = kwsd("run", "--config", path, "--input", SAMPLE)
    assert proc.returncode == 78 and "inference.clip_stride_ms" in proc.stderr.decode()


@pytest.mark.integration
def test_a_higher_per_keyword_threshold_silences_that_keyword(tmp_path):
    path = tmp_path / "kwsd.yaml"
    path.write_text("recognize:\n  thresholds:\n    stop: 1.0\n")
    proc = kwsd("run", "--config", path, "--input", SAMPLE, "--json", check=True)
    found = [line for line in proc.stdout.decode().splitlines() if line]
    assert found and not any('"stop"' in line for line in found)


@pytest.mark.integration
def test_a_threshold_for_a_keyword_no_model_reports_is_warned_about(tmp_path):
    """A typo in a keyword's name would otherwise leave the user's threshold silently unused."""
    path = tmp_path / "kwsd.yaml"
    path.write_text("recognize:\n  thresholds:\n    stp: 1.0\n    go: 0.9\n")
    proc = kwsd("run", "--config", path, "--input", SAMPLE, "--json", check=True)
    warnings = [line for line in proc.stderr.decode().splitlines() if "no loaded model reports" in line]
    assert warnings == ["kwsd: recognize.thresholds sets 'stp', which no loaded model reports: it has no effect"]
    assert any('"stop"' in line for line in proc.stdout.decode().splitlines())  # the typo silenced nothing


@pytest.mark.integration
def test_the_strict_settings_load_and_report_only_what_the_default_settings_report():
    """config/strict.yaml trades missed keywords for fewer false accepts: on the demo recording
    it may miss a keyword, but it reports nothing that the model's own settings do not."""
    strict = kwsd("run", "--config", ROOT / "config" / "strict.yaml", "--input", SAMPLE, "--json", check=True)
    default = kwsd("run", "--input", SAMPLE, "--json", check=True)
    words = [[json.loads(x)["keyword"] for x in p.stdout.decode().splitlines() if x] for p in (strict, default)]
    assert words[1] == SAMPLE_WORDS, words
    assert 3 <= len(words[0]) <= len(words[1]) and all(w in words[1] for w in words[0]), words
    assert "average 800 ms" in strict.stderr.decode()  # the file's settings are the ones in use


@pytest.mark.integration
def test_the_yes_settings_wake_on_yes_alone(wav):
    """config/yes.yaml, one wake word: over a recording of yes, no, stop, go, left and other words,
    only "yes" is reported, where a "yes" was said, under the file's own settings (the model's own
    settings report every keyword; measured: the file hears the first of the three "yes" clips, the
    model's own settings all three and twelve other keywords)."""
    words = [
        (w, i)
        for w, n in (("yes", 3), ("no", 3), ("stop", 4), ("go", 3), ("left", 2), ("_unknown_", 4))
        for i in range(n)
    ]
    events = [(w, i, 0.5 + 2.0 * k) for k, (w, i) in enumerate(words)]
    path = wav(compose(events, 2.0 * len(words) + 1.0), "words.wav")
    runs = [kwsd("run", *extra, "--input", path, "--json", check=True) for extra in (("--config", YES), ())]
    found = [detections(p) for p in runs]
    yes_said = [1000 * at for w, _, at in events if w == "yes"]
    assert found[0] and all(d["keyword"] == "yes" for d in found[0]), found[0]
    assert all(any(0 < d["audio_ms"] - t < 2000 for t in yes_said) for d in found[0]), found[0]
    assert len({d["keyword"] for d in found[1]}) >= 4  # the model's own settings hear the other words
    err = runs[0].stderr.decode()
    assert "listening for yes only" in err and "average 800 ms" in err, err


@pytest.mark.integration
def test_the_quick_settings_report_the_same_words_sooner():
    """config/quick.yaml adds the quick rule to the model's own settings: on the demo recording
    the same four words, none later, and at least half of them two strides (160 ms) or more sooner."""
    runs = [
        kwsd("run", *extra, "--input", SAMPLE, "--json", check=True)
        for extra in (("--config", ROOT / "config" / "quick.yaml"), ())
    ]
    found = [[json.loads(x) for x in p.stdout.decode().splitlines() if x] for p in runs]
    quick, own = ([(d["keyword"], d["audio_ms"]) for d in f] for f in found)
    assert [w for w, _ in own] == SAMPLE_WORDS and [w for w, _ in quick] == SAMPLE_WORDS, found
    sooner = [b - a for (_, a), (_, b) in zip(quick, own)]
    assert min(sooner) >= 0 and sum(s >= 160 for s in sooner) >= len(sooner) / 2, sooner
    assert "quick 0.95 over 160 ms" in runs[0].stderr.decode()  # the file's settings are the ones in use

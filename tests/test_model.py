"""The model file format, metadata checks, and every installed interpreter backend."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import DEFAULT_MODEL, ROOT, SAMPLE, clip, kwsd
from hypothesis import given, settings
from hypothesis import strategies as st

from kwsd.errors import ModelError
from kwsd.features import MfccFrontend
from kwsd.model import KeywordModel, available_backends, pack_model, unpack_model
from kwsd.recognize import SmootherSettings


@pytest.fixture(scope="module")
def parts():
    return unpack_model(DEFAULT_MODEL.read_bytes())


def test_default_model_carries_labels_rate_and_frontend(parts):
    model = KeywordModel.load(DEFAULT_MODEL)
    assert model.labels == [
        "_silence_",
        "_unknown_",
        "yes",
        "no",
        "up",
        "down",
        "left",
        "right",
        "on",
        "off",
        "stop",
        "go",
    ]
    assert model.keywords == model.labels[2:]
    assert model.frontend.sample_rate == 16000 and model.frontend.clip_duration_ms == 1000
    _, meta = parts
    assert meta["format_version"] == 1 and meta["frontend"]["feature_bin_count"] == 13


def test_int8_scores_are_dequantised_probabilities():
    model = KeywordModel.load(DEFAULT_MODEL)
    assert model.interpreter.get_input_details()[0]["dtype"] == np.int8
    scores = model.scores(MfccFrontend(model.frontend).clip_features(clip("yes")))
    assert scores.dtype == np.float32
    assert abs(scores.sum() - 1.0) < 0.05
    assert model.labels[int(np.argmax(scores))] == "yes"


def rewrite(tmp_path, parts, change):
    flatbuffer, meta = parts
    meta = json.loads(json.dumps(meta))
    change(meta)
    path = tmp_path / "bad.tflite"
    path.write_bytes(pack_model(flatbuffer, meta))
    return path


@pytest.mark.integration
@pytest.mark.parametrize(
    "change,field",
    [
        (lambda m: m.pop("labels"), "labels"),
        (lambda m: m["labels"].pop(), "labels"),
        (lambda m: m.pop("sample_rate"), "sample_rate"),
        (lambda m: m["frontend"].update(feature_bin_count=10), "frontend"),
        (lambda m: m["frontend"].pop("window_stride_ms"), "frontend.window_stride_ms"),
        (lambda m: m["frontend"].update(fft_size=128), "frontend.fft_size"),
        (lambda m: m.update(clip_duration_ms=500), "clip_duration_ms"),
        (lambda m: m.update(streaming={"new_frames": 4}), "streaming"),
        (
            lambda m: m.update(
                streaming={"new_frames": 4, "span": 12, "start": 36, "rebuild_steps": 10, "means": 5}
                | {"inputs": ["frames", "rows1"], "outputs": ["scores", "rows1"]}
            ),
            "streaming",
        ),
    ],
    ids=[
        "no-labels",
        "label-count",
        "no-rate",
        "coefficients",
        "no-stride",
        "fft-size",
        "clip-duration",
        "streaming-fields",
        "streaming-tensors",
    ],
)
def test_bad_metadata_is_refused_in_one_line_naming_file_and_field(tmp_path, parts, change, field):
    path = rewrite(tmp_path, parts, change)
    proc = kwsd("run", "--model", path, "--input", SAMPLE)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1, err
    assert str(path) in err[0] and field in err[0]


@pytest.mark.integration
@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m["frontend"].update(fft_size=1 << 30), "frontend.fft_size must be at most 8192"),
        (lambda m: m["frontend"].update(lifter=10**30), "frontend.lifter must be 0..1000"),
        (lambda m: m["frontend"].update(window_size_ms=float("nan")), "frontend.window_size_ms must be a finite"),
        (lambda m: m["labels"].__setitem__(2, "yes\nkwsd: error: forged"), "label 2 'yes\\nkwsd: error: forged'"),
        (lambda m: m["labels"].__setitem__(2, "#"), "label 2 '#' contains one of + # /"),
        (lambda m: m["labels"].__setitem__(2, "y" * 300_000), "label 2 is longer than 64 characters"),
        (lambda m: m.update(name="a\nb"), "field 'name' must be a short name"),
        (lambda m: m.update(recognize={"detection_threshold": "high"}), "recognize.detection_threshold: must be"),
        (lambda m: m.update(recognize={"thresholds": {"yes": 7}}), "recognize.thresholds.yes: 7.0 is above"),
        (lambda m: m["frontend"].update(window_size_ms=1e308), "frontend.window_size_ms must be 0..1000 ms"),
        (lambda m: m.update(extra={"notes": "unknown fields are kept for newer kwsd versions"}), None),
        (lambda m: m.update(recognize=dict.fromkeys(["detection_threshold", "minimum_count", "suppression_ms"])), None),
    ],
    ids=[
        "fft",
        "lifter",
        "nan",
        "newline-label",
        "wildcard-label",
        "huge-label",
        "name",
        "recognize-type",
        "recognize-range",
        "huge-window",
        "harmless-extra",
        "recognize-nulls-mean-unset",
    ],
)
def test_absurd_metadata_is_refused_in_one_short_line(tmp_path, parts, change, message):
    path = rewrite(tmp_path, parts, change)
    proc = kwsd("run", "--model", path, "--input", SAMPLE, timeout=60)
    err = proc.stderr.decode()
    if message is None:  # the model runs and hears the sample's first word
        assert proc.returncode == 0 and "detected 'yes'" in proc.stdout.decode() + err, err
        return
    assert proc.returncode == 1 and err.count("\n") == 1 and message in err and len(err) < 400, err[:400]


@pytest.mark.integration
def test_deeply_nested_metadata_and_unbounded_files_are_refused(tmp_path, parts):
    flatbuffer, _ = parts
    nested = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "nested.tflite"
    path.write_bytes(flatbuffer + nested + struct.pack("<II8s", len(nested), 1, b"KWSDMETA"))
    for bad, message in ((path, "nested too deeply"), ("/dev/zero", "not a regular file")):
        proc = kwsd("run", "--model", bad, "--input", SAMPLE, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.count("\n") == 1 and message in err, err[:400]


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
        max_leaves=12,
    ),
    st.sampled_from(
        ["labels", "frontend", "recognize", "name", "sample_rate", "fft_size", "lifter", "window_size_ms", "thresholds"]
        + ["streaming", "detection_threshold"]
    ),
)
def test_fuzzed_metadata_loads_or_gives_a_model_error(tmp_path_factory, parts, value, key):
    """Any value in any metadata field: a loaded model whose smoother settings can be built, or one
    ModelError; never another exception."""
    flatbuffer, meta = parts
    meta = json.loads(json.dumps(meta))
    for target in (meta, meta["frontend"], meta.get("recognize", {})):
        changed = json.loads(json.dumps(meta))
        (
            changed
            if target is meta
            else changed["frontend"]
            if target is meta["frontend"]
            else changed.setdefault("recognize", {})
        )[key] = value
        path = tmp_path_factory.mktemp("fuzz") / "m.tflite"
        path.write_bytes(pack_model(flatbuffer, changed))
        try:
            model = KeywordModel.load(path)
        except ModelError as e:
            assert "\n" not in str(e) and len(str(e)) < 400
            continue
        SmootherSettings.for_model(model.metadata).describe()  # what kwsd run logs for a loaded model


def test_a_plain_tflite_without_metadata_is_refused(tmp_path, parts):
    path = tmp_path / "plain.tflite"
    path.write_bytes(parts[0])
    with pytest.raises(ModelError, match="no kwsd metadata"):
        KeywordModel.load(path)


@pytest.mark.integration
def test_garbage_and_missing_files_are_refused(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 100)
    for path in (junk, tmp_path / "missing.tflite"):
        proc = kwsd("run", "--model", path, "--input", SAMPLE)
        assert proc.returncode == 1
        assert len(proc.stderr.decode().strip().splitlines()) == 1


@pytest.mark.integration
def test_a_truncated_flatbuffer_with_valid_metadata_is_refused_not_crashed_on(tmp_path, parts):
    """LiteRT refuses it; tflite-runtime 2.14 would segfault on it, so it must never be tried next."""
    from kwsd.cascade_model import FIELD, split_networks

    flatbuffer, meta = parts
    first, _ = split_networks(flatbuffer, meta[FIELD]["network_bytes"])  # the bundled model's first network
    meta = {k: v for k, v in meta.items() if k not in ("format_version", FIELD)}
    path = tmp_path / "truncated.tflite"
    path.write_bytes(pack_model(first[: len(first) // 2], meta))
    proc = kwsd("run", "--model", path, "--input", SAMPLE)
    assert proc.returncode == 1, proc.stderr.decode()  # not -11 (SIGSEGV)
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "not a valid TFLite model" in lines[0] and str(path) in lines[0]


SCORE_SCRIPT = """
import json, sys, numpy as np
from kwsd.model import KeywordModel
from kwsd.features import MfccFrontend
from kwsd.wavfile import read_wav
m = KeywordModel.load(sys.argv[1], backend=sys.argv[2])
fe = MfccFrontend(m.frontend)
out = [m.scores(fe.clip_features(read_wav(f)[0])).tolist() for f in sys.argv[3:]]
print(json.dumps({"backend": m.backend, "scores": out}))
"""


@pytest.mark.integration
def test_every_installed_backend_gives_the_same_scores():
    """Each backend in its own process: tflite_runtime breaks if TensorFlow was imported first."""
    backends = available_backends()
    assert "ai_edge_litert" in backends or "tflite_runtime" in backends
    files = [str(p) for p in sorted((ROOT / "tests" / "data" / "speech").glob("[!_]*/*.wav"))]
    results = {}
    for backend in backends:
        proc = subprocess.run(
            [sys.executable, "-c", SCORE_SCRIPT, str(DEFAULT_MODEL), backend, *files],
            capture_output=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        out = json.loads(proc.stdout)
        assert out["backend"] == backend
        results[backend] = np.array(out["scores"])
    reference = next(iter(results.values()))
    for backend, scores in results.items():
        assert (scores.argmax(axis=1) == reference.argmax(axis=1)).all(), backend  # the same decisions
        # LiteRT and TensorFlow 2.2x run the same int8 kernels: identical scores.  tflite-runtime
        # 2.14 (the last release, for armv7l) rounds some int8 layers differently: measured up to
        # 13 output steps of 1/256 on the first bundled model and 18 on the current one, never a
        # different top label.
        tolerance = 0.0 if "tflite_runtime" not in (backend, backends[0]) else 24 / 256
        np.testing.assert_allclose(scores, reference, atol=tolerance, rtol=0, err_msg=backend)

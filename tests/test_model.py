"""The model file format, metadata checks, and every installed interpreter backend."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DEFAULT_MODEL, ROOT, SAMPLE, clip, kwsd
from kwsd.errors import ModelError
from kwsd.features import MfccFrontend
from kwsd.model import KeywordModel, available_backends, pack_model, unpack_model


@pytest.fixture(scope="module")
def parts():
    return unpack_model(DEFAULT_MODEL.read_bytes())


def test_default_model_carries_labels_rate_and_frontend(parts):
    model = KeywordModel.load(DEFAULT_MODEL)
    assert model.labels == ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
                            "stop", "go"]
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


@pytest.mark.parametrize("change,field", [
    (lambda m: m.pop("labels"), "labels"),
    (lambda m: m["labels"].pop(), "labels"),
    (lambda m: m.pop("sample_rate"), "sample_rate"),
    (lambda m: m["frontend"].update(feature_bin_count=10), "frontend"),
    (lambda m: m["frontend"].pop("window_stride_ms"), "frontend.window_stride_ms"),
    (lambda m: m["frontend"].update(fft_size=128), "frontend.fft_size"),
    (lambda m: m.update(clip_duration_ms=500), "clip_duration_ms"),
], ids=["no-labels", "label-count", "no-rate", "coefficients", "no-stride", "fft-size", "clip-duration"])
def test_bad_metadata_is_refused_in_one_line_naming_file_and_field(tmp_path, parts, change, field):
    path = rewrite(tmp_path, parts, change)
    proc = kwsd("run", "--model", path, "--input", SAMPLE)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1, err
    assert str(path) in err[0] and field in err[0]


def test_a_plain_tflite_without_metadata_is_refused(tmp_path, parts):
    path = tmp_path / "plain.tflite"
    path.write_bytes(parts[0])
    with pytest.raises(ModelError, match="no kwsd metadata"):
        KeywordModel.load(path)


def test_garbage_and_missing_files_are_refused(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 100)
    for path in (junk, tmp_path / "missing.tflite"):
        proc = kwsd("run", "--model", path, "--input", SAMPLE)
        assert proc.returncode == 1
        assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_a_truncated_flatbuffer_with_valid_metadata_is_refused_not_crashed_on(tmp_path, parts):
    """LiteRT refuses it; tflite-runtime 2.14 would segfault on it, so it must never be tried next."""
    flatbuffer, meta = parts
    meta = {k: v for k, v in meta.items() if k != "format_version"}
    path = tmp_path / "truncated.tflite"
    path.write_bytes(pack_model(flatbuffer[: len(flatbuffer) // 2], meta))
    proc = kwsd("run", "--model", path, "--input", SAMPLE)
    assert proc.returncode == 1, proc.stderr.decode()  # not -11 (SIGSEGV)
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "not a valid TFLite model" in lines[0] and str(path) in lines[0]


SCORE_SCRIPT = """
import json, sys, numpy as np
from kwsd.model import KeywordModel
from kwsd.features import MfccFrontend
from kwsd.audio import read_wav
m = KeywordModel.load(sys.argv[1], backend=sys.argv[2])
fe = MfccFrontend(m.frontend)
out = [m.scores(fe.clip_features(read_wav(f)[0])).tolist() for f in sys.argv[3:]]
print(json.dumps({"backend": m.backend, "scores": out}))
"""


def test_every_installed_backend_gives_the_same_scores():
    """Each backend in its own process: tflite_runtime breaks if TensorFlow was imported first."""
    backends = available_backends()
    assert "ai_edge_litert" in backends or "tflite_runtime" in backends
    files = [str(p) for p in sorted((ROOT / "tests" / "data" / "speech").glob("[!_]*/*.wav"))]
    results = {}
    for backend in backends:
        proc = subprocess.run([sys.executable, "-c", SCORE_SCRIPT, str(DEFAULT_MODEL), backend, *files],
                              capture_output=True, timeout=120, cwd=ROOT)
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

"""Export: int8 (and float) TFLite files with kwsd metadata, evaluated by the runtime itself."""

from __future__ import annotations

import contextlib
import io
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from .. import __version__
from ..features import FrontendParams
from ..model import KeywordModel, pack_model, quiet_native_stderr


@contextlib.contextmanager
def quiet_conversion():
    """The converter prints its SavedModel signature to stdout and absl log lines straight
    to file descriptor 2; both are hidden unless debug logging is on."""
    if logging.getLogger("kwsd").isEnabledFor(logging.DEBUG):
        yield
        return
    with quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()):
        yield


def to_tflite(model, input_shape, representative: np.ndarray | None = None) -> bytes:
    """Float TFLite, or fully int8 (input and output) when calibration data is given."""
    with quiet_conversion():
        return _convert(model, representative)


def _convert(model, representative: np.ndarray | None) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:

        def samples():
            for x in representative:
                yield [x[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def metadata(name: str, labels: list[str], params: FrontendParams, architecture: str, extra: dict) -> dict:
    return {
        "name": name,
        "labels": list(labels),
        "sample_rate": params.sample_rate,
        "clip_duration_ms": params.clip_duration_ms,
        "frontend": params.to_dict(),
        "architecture": architecture,
        "kwsd_version": __version__,
        **extra,
    }


def write_model(path: Path, tflite: bytes, meta: dict) -> Path:
    path.write_bytes(pack_model(tflite, meta))
    return path


def evaluate(model: KeywordModel, features: np.ndarray, labels: np.ndarray, binary: bool):
    """Accuracy and confusion matrix of a loaded model file, through the daemon's own adapter."""
    n = 2 if binary else len(model.labels)
    confusion = np.zeros((n, n), np.int64)
    for x, y in zip(features, labels):
        scores = model.scores(x)
        pred = int(scores[0] > 0.5) if binary else int(np.argmax(scores))
        confusion[y, pred] += 1
    accuracy = float(np.trace(confusion) / max(1, confusion.sum()))
    return accuracy, confusion


def sliding_windows(features: np.ndarray, new_frames: int) -> np.ndarray:
    """Windows one stride apart over clips' features laid end to end, as a stream gives them
    (a streaming model runs one step for each; the same window again would rebuild it)."""
    frames = features.shape[1]
    seq = features.reshape(-1, features.shape[-1])
    starts = range(0, len(seq) - frames + 1, new_frames)
    return np.stack([seq[a : a + frames] for a in starts])


def median_invoke_us(model: KeywordModel, windows: np.ndarray, runs: int = 300) -> float:
    """Median time of ``model.scores`` over consecutive ``windows`` (see ``sliding_windows``)."""
    for w in windows[:20]:
        model.scores(w)
    times = []
    for i in range(runs):
        w = windows[(20 + i) % len(windows)]
        t0 = time.perf_counter_ns()
        model.scores(w)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000

"""The end of a training run: the model files (int8, and float for comparison), their
accuracy and speed measured through the daemon's own runtime, optional stream figures,
report.json and the plots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..machine import cpu
from .batches import BatchMaker
from .settings import TrainSettings, portable_settings

if TYPE_CHECKING:  # loop.py imports this module; the types only annotate
    from .checkpoint import TrainState
    from .loop import Prepared


def confusion_text(confusion: np.ndarray, labels: list[str]) -> str:
    width = max(6, max(len(x) for x in labels) + 1)
    head = " " * width + "".join(f"{x[:6]:>7}" for x in labels)
    rows = [f"{lab:<{width}}" + "".join(f"{v:>7}" for v in row) for lab, row in zip(labels, confusion)]
    return "\n".join([head, *rows])


def stream_figures(model_path, s: TrainSettings) -> dict:
    """The exported model on whole streams, through the daemon's pipeline at its default settings."""
    from ..model import KeywordModel
    from ..streams import combine, evaluate_file, format_summary

    model = KeywordModel.load(model_path)
    figures = [evaluate_file([model], w) for w in s.eval_stream.split(",") if w]
    figures += [evaluate_file([model], w, truth_file="") for w in s.eval_negative.split(",") if w]
    summary = combine(figures).summary()
    print("streams (int8, default settings):\n" + format_summary(summary), flush=True)
    return summary


SPLITS = ("validation", "testing")
STREAMING = ("ds_cnn_stream", "ds_cnn_stream_no_c0")  # exported as a step network with state
STRIDE_FRAMES = 4  # its step: 80 ms of 20 ms frames (the bundled model's clip stride)


def measure_file(path: Path, prep: Prepared, windows: np.ndarray, binary: bool) -> dict:
    """Size, interpreter, median invoke time (over consecutive ``windows``) and clip accuracy
    of one model file, loaded the way ``kwsd run`` loads it."""
    from ..model import KeywordModel
    from . import export

    km = KeywordModel.load(path)
    figures: dict = {
        "bytes": path.stat().st_size,
        "backend": km.backend,
        "median_invoke_us": round(export.median_invoke_us(km, windows), 1),
    }
    for split in SPLITS:
        labels = prep.data[split][1]
        acc, confusion = export.evaluate(km, prep.eval_features[split], labels, binary)
        figures[split] = {
            "accuracy": acc if len(labels) else None,
            "n": int(len(labels)),
            "confusion": confusion.tolist(),
        }
    return figures


def write_files(s: TrainSettings, prep: Prepared, model, calib: np.ndarray, meta: dict, out: Path) -> dict:
    """model.tflite (int8: the whole network, or its step network for a streaming
    architecture) and model_float.tflite (the whole network, for comparison)."""
    from . import export

    shape = prep.params.input_shape
    if s.model_architecture in STREAMING:  # kwsd/train/streaming.py
        from .streaming import to_streaming_tflite

        int8, streaming = to_streaming_tflite(model, calib, STRIDE_FRAMES)
        # the stride it steps by; kwsd tune may store another (each stride then takes more steps)
        stride = {"clip_stride_ms": int(STRIDE_FRAMES * prep.params.window_stride_ms)}
        meta = {**meta, "streaming": streaming, "inference": stride}
    else:
        int8 = export.to_tflite(model, shape, calib)
    whole = {k: v for k, v in meta.items() if k != "streaming"}  # the float file: the whole network
    return {
        "int8": export.write_model(out / "model.tflite", int8, meta),
        "float": export.write_model(out / "model_float.tflite", export.to_tflite(model, shape), whole),
    }


def export_and_report(
    s: TrainSettings,
    prep: Prepared,
    model,
    state: TrainState,
    out: Path,
    train_seconds: float,
    batches: BatchMaker,
    exported_step: int,
) -> dict:
    """Write model.tflite (int8; the float model too, to report its accuracy beside), then
    measure both files through the daemon's own runtime and write report.json and the plots.
    ``exported_step``: the step whose weights ``model`` holds."""
    from . import export
    from .architectures import count_macs

    rng = np.random.default_rng(s.seed)
    counts = prep.counts
    calib_idx = rng.choice(counts["training"], min(400, counts["training"]), replace=False)
    tr = prep.data["training"]
    calib = prep.frontend.batch_features(prep.augmenter(tr[0][calib_idx], tr[2][calib_idx], rng))
    name = s.name or ("binary_" + prep.words[0] if s.binary else s.model_architecture)
    extra = {
        "training": {k: v for k, v in portable_settings(s).items() if k not in ("out", "resume", "start_checkpoint")}
    }
    meta = export.metadata(name, prep.index.labels, prep.params, s.model_architecture, extra)
    files = write_files(s, prep, model, calib, meta, out)
    report = {
        "name": name,
        "architecture": s.model_architecture,
        "labels": prep.index.labels,
        "clips": counts,
        "speakers": prep.index.speakers,
        "bad_files": [(os.path.join(*Path(p).parts[-2:]), why) for p, why in prep.index.bad_files],
        "train_seconds": round(train_seconds, 1),
        "steps": state.step,
        "exported_step": exported_step,
        "feature_seconds": round(batches.make_seconds, 1),
        "feature_wait_seconds": round(batches.wait_seconds, 1),
        "params": int(model.count_params()),
        "macs": count_macs(model),
        "history": state.history,
        "settings": portable_settings(s),
        "machine": cpu(),  # the weights depend on the CPU's instruction set (kwsd/machine.py)
    }
    windows = export.sliding_windows(calib[:8], STRIDE_FRAMES)
    for kind, path in files.items():
        report[kind] = measure_file(path, prep, windows, s.binary)
        accs = {
            k: "n/a" if report[kind][k]["accuracy"] is None else f"{report[kind][k]['accuracy']:.1%}" for k in SPLITS
        }
        print(
            f"{kind}: {report[kind]['bytes']} bytes; validation {accs['validation']}, test {accs['testing']}; "
            f"invoke {report[kind]['median_invoke_us']} µs",
            flush=True,
        )
    display = prep.display_labels(s.binary)
    test_confusion = np.array(report["int8"]["testing"]["confusion"])
    print("test confusion (int8):\n" + confusion_text(test_confusion, display))
    if s.eval_stream or s.eval_negative:
        report["stream"] = stream_figures(files["int8"], s)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    from .plots import plot_confusion, plot_history

    plot_history(state.history, out / "learning_curves.png")
    plot_confusion(test_confusion, display, out / "confusion_matrix.png")
    if not s.float_model:
        os.unlink(files["float"])
    return report

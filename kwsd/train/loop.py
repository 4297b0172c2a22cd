"""The training loop: augmented batches from a prefetch thread, tqdm progress, periodic
validation with a confusion matrix, checkpoints, resume, and the final export."""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ARCHITECTURES = ("tiny_conv", "conv", "low_latency_conv", "ds_cnn", "tc_resnet8")


@dataclass
class TrainSettings:
    """Options of ``kwsd train``; names as in TensorFlow's speech_commands train.py."""

    data_dir: str = ""
    data_url: str = ""
    background_dir: str = ""
    extra_training_dir: str = ""  # comma-separated folders added to the training set only
    wanted_words: str = "yes,no,up,down,left,right,on,off,stop,go"
    silence_percentage: float = 10.0
    unknown_percentage: float = 10.0
    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    split_salt: str = ""
    background_volume: float = 0.1
    background_frequency: float = 0.8
    time_shift_ms: float = 100.0
    spec_augment: bool = False
    negative_dir: str = ""  # DIR[:WEIGHT],... long recordings of non-keyword audio
    negative_percentage: float = 0.0  # share of each batch cut from them, as _unknown_
    partial_percentage: float = 0.0  # share of each batch: keywords cut to their start or end, as _unknown_
    rir_dir: str = ""  # measured room impulse responses
    reverb_percentage: float = 0.0  # share of clips put in a room (measured or simulated)
    gain_db: str = "0,0"  # random gain range in dB, e.g. -12,6
    mine_hard_negatives: bool = False  # at each learning-rate phase after the first
    hard_negative_threshold: float = 0.3
    hard_negative_percentage: float = 10.0  # share of each batch drawn from mined windows
    eval_stream: str = ""  # WAV streams with LABELS beside (kwsd stream make) to report at the end
    eval_negative: str = ""  # WAV recordings of no keyword, for false accepts per hour at the end
    sample_rate: int = 16000
    clip_duration_ms: int = 1000
    window_size_ms: float = 30.0
    window_stride_ms: float = 20.0
    feature_bin_count: int = 13
    window: str = "hamming"
    model_architecture: str = "ds_cnn"
    binary: bool = False
    how_many_training_steps: str = "15000,3000"
    learning_rate: str = "0.001,0.0001"
    batch_size: int = 100
    dropout: float = 0.2
    eval_step_interval: int = 400
    save_step_interval: int = 100
    start_checkpoint: str = ""
    resume: bool = False
    seed: int = 59185
    name: str = ""
    out: str = ""
    float_model: bool = False

    def frontend(self):
        from ..features import FrontendParams
        return FrontendParams(sample_rate=self.sample_rate, clip_duration_ms=self.clip_duration_ms,
                              window_size_ms=self.window_size_ms, window_stride_ms=self.window_stride_ms,
                              feature_bin_count=self.feature_bin_count, high_freq=self.sample_rate / 2,
                              window=self.window)

    def gain_range(self) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in str(self.gain_db).split(","))
        except ValueError:
            raise ValueError(f"--gain-db {self.gain_db}: give two numbers, e.g. -12,6") from None
        if lo > hi:
            raise ValueError(f"--gain-db {self.gain_db}: the first number must not exceed the second")
        return lo, hi

    def check_shares(self) -> None:
        for name in ("negative_percentage", "partial_percentage", "hard_negative_percentage", "reverb_percentage"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"--{name.replace('_', '-')} must be 0..100")
        extra = self.negative_percentage + self.partial_percentage + \
            (self.hard_negative_percentage if self.mine_hard_negatives else 0)
        if extra >= 100:
            raise ValueError("--negative-percentage, --partial-percentage and --hard-negative-percentage "
                             "together must leave room for the keyword clips (< 100)")
        if self.negative_percentage and not self.negative_dir:
            raise ValueError("--negative-percentage needs --negative-dir")
        if self.mine_hard_negatives and not self.negative_dir:
            raise ValueError("--mine-hard-negatives needs --negative-dir")

    def schedule(self) -> list[tuple[int, float]]:
        steps = [int(s) for s in str(self.how_many_training_steps).split(",")]
        rates = [float(r) for r in str(self.learning_rate).split(",")]
        if len(steps) != len(rates):
            raise ValueError("--how-many-training-steps and --learning-rate need the same number of values")
        return list(zip(steps, rates))


class BatchMaker:
    """Augmented feature batches, made in a background thread so that numpy's FFTs
    (which release the GIL) overlap with TensorFlow's training step."""

    def __init__(self, clips, labels, silence, frontend, augmenter, batch_size, seed, spec_augment,
                 start_step=0, depth=4, mix=None):
        self.clips, self.labels, self.silence = clips, labels, silence
        self.mix = mix
        self.frontend, self.augmenter, self.batch_size = frontend, augmenter, batch_size
        self.seed, self.spec_augment = seed, spec_augment
        self.queue: queue.Queue = queue.Queue(depth)
        self.start_step = start_step
        self.make_seconds = 0.0  # augmentation + features, in the background thread
        self.wait_seconds = 0.0  # time the training loop waited for a batch
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def make(self, step: int):
        from .augment import spec_augment
        t0 = time.perf_counter()
        rng = np.random.default_rng([self.seed, step])  # depends on the step only: resumable, deterministic
        extra_audio, extra_labels = self.mix.draw(rng, self.batch_size) if self.mix else (None, None)
        n = self.batch_size - (0 if extra_audio is None else len(extra_audio))
        idx = rng.integers(0, len(self.clips), n)
        clips, silence, labels = self.clips[idx], self.silence[idx], self.labels[idx]
        if extra_audio is not None and len(extra_audio):
            clips = np.concatenate((clips, extra_audio))
            silence = np.concatenate((silence, np.zeros(len(extra_audio), bool)))
            labels = np.concatenate((labels, extra_labels))
        audio = self.augmenter(clips, silence, rng)
        feats = self.frontend.batch_features(audio)
        if self.spec_augment:
            spec_augment(feats, rng)
        self.make_seconds += time.perf_counter() - t0
        return feats, labels

    def _run(self):
        step = self.start_step
        while not self._stop.is_set():
            item = self.make(step)
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    pass
            step += 1

    def next(self):
        t0 = time.perf_counter()
        item = self.queue.get()
        self.wait_seconds += time.perf_counter() - t0
        return item

    def close(self):
        self._stop.set()
        self.thread.join()


class NegativeMix:
    """What each batch adds to the keyword clips, all labelled ``_unknown_``: windows of
    negative recordings, partial keywords, and windows mined as hard negatives."""

    def __init__(self, s: TrainSettings, pool, keyword_clips, unknown_label: int):
        self.pool, self.hard = pool, None
        self.keyword_clips = keyword_clips
        self.unknown = unknown_label
        self.s = s

    def counts(self, batch: int) -> tuple[int, int, int]:
        s = self.s
        neg = round(batch * s.negative_percentage / 100) if self.pool is not None and self.pool.recordings else 0
        part = round(batch * s.partial_percentage / 100) if len(self.keyword_clips) else 0
        hard = round(batch * s.hard_negative_percentage / 100) if self.hard is not None and self.hard.recordings else 0
        return neg, part, hard

    def draw(self, rng: np.random.Generator, batch: int):
        from .augment import partial_keywords
        neg, part, hard = self.counts(batch)
        samples = self.keyword_clips.shape[1]
        parts = [self.pool.sample(rng, neg, samples)] if neg else []
        if part:
            chosen = self.keyword_clips[rng.integers(0, len(self.keyword_clips), part)]
            parts.append(partial_keywords(chosen, rng))
        if hard:
            parts.append(self.hard.sample(rng, hard, samples))
        if not parts:
            return None, None
        audio = np.concatenate(parts)
        return audio, np.full(len(audio), self.unknown, np.int64)


PATH_SETTINGS = ("data_dir", "background_dir", "extra_training_dir", "out", "start_checkpoint", "negative_dir",
                 "rir_dir", "eval_stream", "eval_negative")


def portable_settings(s: TrainSettings) -> dict:
    """The settings with folders reduced to their last component: a model file and its report
    travel to other machines and should not carry the trainer's directory layout."""
    out = asdict(s)
    for key in PATH_SETTINGS:
        out[key] = ",".join(os.path.basename(os.path.normpath(p)) for p in str(out[key]).split(",") if p)
    return out


def confusion_text(confusion: np.ndarray, labels: list[str]) -> str:
    width = max(6, max(len(x) for x in labels) + 1)
    head = " " * width + "".join(f"{x[:6]:>7}" for x in labels)
    rows = [f"{lab:<{width}}" + "".join(f"{v:>7}" for v in row) for lab, row in zip(labels, confusion)]
    return "\n".join([head, *rows])


def load_rirs(folder: str, sample_rate: int) -> list[np.ndarray]:
    """Room impulse responses, each scaled to a peak of 1, at the model's rate."""
    if not folder:
        return []
    from .negatives import audio_files, read_audio
    rirs = []
    for path in audio_files(folder):
        rir, _ = read_audio(path, sample_rate)
        peak = np.abs(rir).max()
        if peak > 0:
            rirs.append(rir[int(np.argmax(np.abs(rir))):] / peak)  # from the direct path on
    if not rirs:
        raise FileNotFoundError(f"--rir-dir {folder}: no audio files")
    print(f"room impulse responses: {len(rirs)} from {folder}", flush=True)
    return rirs


def make_negative_mix(s: TrainSettings, index, training) -> NegativeMix | None:
    """The negative recordings of the training split, and the keyword clips for partial words."""
    from .dataset import SILENCE, UNKNOWN
    if not (s.negative_dir or s.partial_percentage):
        return None
    pool = None
    if s.negative_dir:
        from .negatives import load_pool
        t0 = time.time()
        pool, bad = load_pool(s.negative_dir, s.sample_rate, "training", s.validation_percentage,
                              s.testing_percentage, s.split_salt)
        limited = sum(len(r) for r, b in zip(pool.recordings, pool.band_limited) if b) / s.sample_rate
        print(f"negative audio: {len(pool.recordings)} training recordings, {pool.seconds / 3600:.2f} h "
              f"({limited / 3600:.2f} h band-limited), {len(bad)} unreadable; {time.time() - t0:.0f} s", flush=True)
    clips, labels, _ = training
    keyword_mask = np.array([index.labels[y] not in (SILENCE, UNKNOWN) for y in labels]) if not s.binary \
        else labels == 1
    unknown = 0 if s.binary else index.labels.index(UNKNOWN)
    return NegativeMix(s, pool, clips[keyword_mask], unknown)


def mine(model, pool, frontend, labels, threshold):
    """Hard negatives for the next phase: see negatives.mine_hard_negatives."""
    from .negatives import mine_hard_negatives
    t0 = time.time()

    binary = len(labels) == 1  # binary mode: one sigmoid output for the keyword

    def predict(x):
        p = np.concatenate([model(x[i:i + 2048], training=False).numpy() for i in range(0, len(x), 2048)])
        return np.concatenate([1 - p, p], axis=1) if binary else p

    names = ["_unknown_"] + labels if binary else labels
    mined, scored = mine_hard_negatives(predict, pool, frontend, names, threshold)
    print(f"hard negatives: {len(mined.recordings)} of {scored} negative windows score above {threshold} "
          f"({time.time() - t0:.0f} s)", flush=True)
    return mined


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


def run_training(s: TrainSettings) -> dict:
    from tqdm import tqdm

    from ..features import MfccFrontend
    from ..model import KeywordModel, quiet_native_stderr
    with quiet_native_stderr():  # oneDNN's notice ignores TF_CPP_MIN_LOG_LEVEL: it is printed on import
        import keras
        import tensorflow as tf
    from . import export
    from .architectures import build_model, count_macs
    from .augment import Augmenter
    from .dataset import build_index, load_set

    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    keras.utils.set_random_seed(s.seed)
    tf.config.experimental.enable_op_determinism()

    params = s.frontend()
    params.validate()
    frontend = MfccFrontend(params)
    words = [w.strip() for w in s.wanted_words.split(",") if w.strip()]
    if s.binary and len(words) != 1:
        raise ValueError("--binary needs exactly one word in --wanted-words")
    index = build_index(s.data_dir, words, s.silence_percentage, s.unknown_percentage, s.validation_percentage,
                        s.testing_percentage, s.sample_rate, s.seed, s.binary, s.split_salt,
                        s.background_dir or None, [d for d in s.extra_training_dir.split(",") if d])
    data = {name: load_set(index, name, s.sample_rate, params.clip_samples)
            for name in ("training", "validation", "testing")}
    counts = {k: len(v[0]) for k, v in data.items()}
    print(f"clips: {counts}; speakers: {index.speakers}; labels: {index.labels}; "
          f"bad files skipped: {len(index.bad_files)}", flush=True)
    if counts["training"] == 0:
        raise ValueError("no usable training clips")
    augmenter = Augmenter(index.background, s.background_frequency, s.background_volume,
                          int(s.time_shift_ms * s.sample_rate / 1000), rirs=load_rirs(s.rir_dir, s.sample_rate),
                          reverb_frequency=s.reverb_percentage / 100, gain_db=s.gain_range(),
                          sample_rate=s.sample_rate)
    mix = make_negative_mix(s, index, data["training"])
    # as in TensorFlow, evaluation clips are not augmented, but _silence_ is background noise
    # at a random volume (seeded, so every evaluation sees the same clips)
    eval_feats = {}
    for k in ("validation", "testing"):
        clips, _, silence = data[k]
        clips = clips.copy()
        rng = np.random.default_rng([s.seed, len(k)])
        for i in np.flatnonzero(silence):
            clips[i] = augmenter.noise(rng, clips.shape[1]) * rng.uniform(0, 1)
        eval_feats[k] = frontend.batch_features(clips) if len(clips) else \
            np.zeros((0, *params.input_shape), np.float32)
    clean = frontend.batch_features(data["training"][0][: min(1000, counts["training"])])
    schedule = s.schedule()
    total_steps = sum(n for n, _ in schedule)

    state = {"step": 0, "best_val": -1.0, "history": []}
    start = s.start_checkpoint or (str(ckpt_dir) if s.resume else "")
    if start:
        path = Path(start)
        model = keras.models.load_model(path / "model.keras" if path.is_dir() else path)
        state_file = (path if path.is_dir() else path.parent) / "state.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
        print(f"resuming from {start} at step {state['step']}", flush=True)
    else:
        (out / "best.keras").unlink(missing_ok=True)  # from an earlier run in the same folder
        norm = clean.reshape(-1, params.feature_bin_count)
        model = build_model(s.model_architecture, params.input_shape, len(index.labels), s.binary, s.dropout,
                            norm.mean(axis=0), norm.var(axis=0))
        model.compile(optimizer=keras.optimizers.Adam(schedule[0][1]),
                      loss="binary_crossentropy" if s.binary else "sparse_categorical_crossentropy",
                      metrics=["accuracy"])

    def lr_at(step):
        acc = 0
        for n, lr in schedule:
            acc += n
            if step < acc:
                return lr
        return schedule[-1][1]

    def validate():
        y = data["validation"][1]
        n = 2 if s.binary else len(index.labels)
        confusion = np.zeros((n, n), np.int64)
        if len(y) == 0:  # --validation-percentage 0: keep the last weights
            return None, confusion
        probs = model.predict(eval_feats["validation"], batch_size=256, verbose=0)
        pred = (probs[:, 0] > 0.5).astype(int) if s.binary else probs.argmax(axis=1)
        np.add.at(confusion, (y, pred), 1)
        return float(np.trace(confusion) / len(y)), confusion

    def save_checkpoint():
        tmp = out / "checkpoints.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save(tmp / "model.keras")
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        tmp.rename(ckpt_dir)

    display = ["no", "yes"] if s.binary else index.labels
    boundaries = list(np.cumsum([n for n, _ in schedule])[:-1])

    def start_batches(step):
        if s.mine_hard_negatives and any(step >= b for b in boundaries):
            mix.hard = mine(model, mix.pool, frontend, index.labels, s.hard_negative_threshold)
        return BatchMaker(*data["training"], frontend, augmenter, s.batch_size, s.seed, s.spec_augment,
                          start_step=step, mix=mix)

    batches = start_batches(state["step"])
    t0 = time.time()
    bar = tqdm(total=total_steps, initial=state["step"], unit="step", dynamic_ncols=True)
    try:
        while state["step"] < total_steps:
            step = state["step"]
            lr = lr_at(step)
            model.optimizer.learning_rate.assign(lr)
            x, y = batches.next()
            loss, acc = model.train_on_batch(x, y)[:2]
            state["step"] = step = step + 1
            bar.set_postfix(lr=f"{lr:g}", acc=f"{float(acc):.3f}", loss=f"{float(loss):.3f}")
            bar.update(1)
            if step % s.eval_step_interval == 0 or step == total_steps:
                val_acc, confusion = validate()
                state["history"].append({"step": step, "train_accuracy": float(acc), "loss": float(loss),
                                         "val_accuracy": val_acc})
                if val_acc is not None:
                    bar.write(f"step {step}: validation accuracy {val_acc:.1%} (N={len(data['validation'][1])})\n"
                              + confusion_text(confusion, display))
                if val_acc is not None and val_acc > state["best_val"]:
                    state["best_val"] = val_acc
                    model.save(out / "best.keras")
            if step % s.save_step_interval == 0:
                save_checkpoint()
            if s.mine_hard_negatives and step in boundaries:
                batches.close()  # a new maker from this step on: batches stay a function of the step alone
                bar.clear()
                batches = start_batches(step)
    except KeyboardInterrupt:
        bar.close()
        save_checkpoint()
        print(f"\ninterrupted at step {state['step']}; continue with --resume --out {s.out}", flush=True)
        raise
    finally:
        batches.close()
        bar.close()
    save_checkpoint()
    train_seconds = time.time() - t0
    if (out / "best.keras").exists():  # the best validation accuracy; else (no validation set) the last
        model = keras.models.load_model(out / "best.keras")

    # ---- export, then evaluate the exported files through the daemon's own runtime
    rng = np.random.default_rng(s.seed)
    calib_idx = rng.choice(counts["training"], min(400, counts["training"]), replace=False)
    tr = data["training"]
    calib = frontend.batch_features(augmenter(tr[0][calib_idx], tr[2][calib_idx], rng))
    name = s.name or ("binary_" + words[0] if s.binary else s.model_architecture)
    extra = {"training": {k: v for k, v in portable_settings(s).items()
                          if k not in ("out", "resume", "start_checkpoint")}}
    meta = export.metadata(name, index.labels, params, s.model_architecture, extra)
    # the float model is always made, to report its accuracy beside int8; kept with --float-model
    files = {"int8": export.write_model(out / "model.tflite", export.to_tflite(model, params.input_shape, calib), meta),
             "float": export.write_model(out / "model_float.tflite", export.to_tflite(model, params.input_shape), meta)}
    report = {"name": name, "architecture": s.model_architecture, "labels": index.labels,
              "clips": counts, "speakers": index.speakers,
              "bad_files": [(os.path.join(*Path(p).parts[-2:]), why) for p, why in index.bad_files],
              "train_seconds": round(train_seconds, 1), "steps": state["step"],
              "feature_seconds": round(batches.make_seconds, 1),
              "feature_wait_seconds": round(batches.wait_seconds, 1),
              "params": int(model.count_params()), "macs": count_macs(model), "history": state["history"],
              "settings": portable_settings(s)}
    for kind, path in files.items():
        km = KeywordModel.load(path)
        report[kind] = {"bytes": path.stat().st_size, "backend": km.backend,
                        "median_invoke_us": round(export.median_invoke_us(km, calib[0]), 1)}
        for set_name in ("validation", "testing"):
            acc, confusion = export.evaluate(km, eval_feats[set_name], data[set_name][1], s.binary)
            report[kind][set_name] = {"accuracy": acc if len(data[set_name][1]) else None,
                                      "n": int(len(data[set_name][1])),
                                      "confusion": confusion.tolist()}
        accs = {k: "n/a" if report[kind][k]["accuracy"] is None else f"{report[kind][k]['accuracy']:.1%}"
                for k in ("validation", "testing")}
        print(f"{kind}: {path.stat().st_size} bytes; validation {accs['validation']}, test {accs['testing']}; "
              f"invoke {report[kind]['median_invoke_us']} µs", flush=True)
    print("test confusion (int8):\n" + confusion_text(np.array(report["int8"]["testing"]["confusion"]), display))
    if s.eval_stream or s.eval_negative:
        report["stream"] = stream_figures(files["int8"], s)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    from .plots import plot_confusion, plot_history
    plot_history(state["history"], out / "learning_curves.png")
    plot_confusion(np.array(report["int8"]["testing"]["confusion"]), display, out / "confusion_matrix.png")
    if not s.float_model:
        os.unlink(files["float"])
    return report

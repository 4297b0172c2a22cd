"""Knowledge distillation: a pretrained speech embedding teaches the small model.

About 200 recordings of each keyword are too few for a 24k-parameter network to learn what
new speakers sound like (its clip accuracy stays near 82%).  Google's ``speech_embedding``
(Lin et al. 2020, arXiv:2002.01322) was trained on far more speech; a small head on its
embeddings, trained on the same clips, classifies the validation speakers much better.  It
is far too slow to run every stride on a Pi, so it only teaches: before training it scores
every clip of the training split once, and the small model learns from a mix of the true label
and the teacher's softened probabilities for that clip (Hinton et al. 2015).  Once per clip and
not once per augmented batch: scoring each batch (9 ms a clip) made every step 0.45 s slower and
a whole run two and a half times as long.  The exported model is unchanged in size and
cost; nothing of the teacher ships with it.

The embedding is read from openWakeWord's copy (``melspectrogram.tflite`` and
``embedding_model.tflite``, Apache-2.0 per openWakeWord's README, from Google's TF Hub
module); ``bench/fetch_teacher.sh`` takes them out of its wheel.  Audio is 16 kHz; each clip
is padded by 140 ms on both sides and embedded in four 760 ms windows 160 ms apart.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from ..model import quiet_native_stderr

MEL_FILE = "melspectrogram.tflite"
EMBEDDING_FILE = "embedding_model.tflite"
PAD_SAMPLES = 2240  # 140 ms each side: the windows then reach the clip's edges
WINDOW_FRAMES = 76  # mel frames (10 ms) per embedding window, fixed by the embedding model
HOP_FRAMES = 16  # between windows: four windows for a padded one-second clip
EMBEDDING_SIZE = 96
TEACHER_BATCHES = 150  # augmented batches of the keyword data set that the head learns from


def missing_files(folder: str) -> list[str]:
    """Checked by the CLI before the slow start of training."""
    return [str(Path(folder) / n) for n in (MEL_FILE, EMBEDDING_FILE) if not (Path(folder) / n).is_file()]


class SpeechEmbedding:
    """Clips (float audio in [-1, 1], 16 kHz) → (clips, windows, 96) embeddings."""

    def __init__(self, folder: str):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # where LiteRT has no wheel; training has TensorFlow anyway
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        # tensors are allocated for each batch shape (the files' own shapes do not allocate under XNNPACK)
        with quiet_native_stderr():
            self.mel, self.embedding = (self._open(Interpreter, Path(folder) / f) for f in (MEL_FILE, EMBEDDING_FILE))
        self._shapes: dict[int, tuple] = {}

    @staticmethod
    def _open(Interpreter, path: Path):
        try:
            return Interpreter(model_path=str(path), num_threads=1)
        except ValueError as e:  # LiteRT's words name neither the file nor the flag
            raise ValueError(
                f"--teacher-dir: {path} is not a TFLite model ({e}); bench/fetch_teacher.sh fetches it"
            ) from None

    def _run(self, interpreter, x: np.ndarray) -> np.ndarray:
        inp = interpreter.get_input_details()[0]
        if self._shapes.get(id(interpreter)) != x.shape:
            interpreter.resize_tensor_input(inp["index"], list(x.shape), strict=False)
            with quiet_native_stderr():  # LiteRT's "Created ... XNNPACK delegate" line, amid the progress bar
                interpreter.allocate_tensors()
            self._shapes[id(interpreter)] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        padded = np.pad(audio, ((0, 0), (PAD_SAMPLES, PAD_SAMPLES))) * 32767  # the models expect int16 scale
        spec = self._run(self.mel, padded.astype(np.float32))
        spec = spec.reshape(len(audio), -1, 32) / 10 + 2  # openWakeWord's transform, closer to Google's original
        starts = range(0, spec.shape[1] - WINDOW_FRAMES + 1, HOP_FRAMES)
        windows = np.stack([spec[:, i : i + WINDOW_FRAMES] for i in starts], axis=1)
        flat = windows.reshape(-1, WINDOW_FRAMES, 32, 1).astype(np.float32)
        return self._run(self.embedding, flat).reshape(len(audio), len(starts), EMBEDDING_SIZE)


def embedded_batches(prep, embedding: SpeechEmbedding, count: int, size: int, seeds, mix, desc: str):
    """``count`` augmented training batches of ``size`` clips (batch b drawn with the seed
    ``seeds(b)``, the negative ``mix`` or None), each with its embeddings: yields (audio, labels,
    indices of the keyword-data-set clips, embeddings). The teacher's head and the pretraining
    learn from these."""
    from tqdm import tqdm

    from .batches import augmented_batch

    clips, _, silence = prep.data["training"]
    for b in tqdm(range(count), desc=desc, unit="batch", dynamic_ncols=True, leave=False):
        rng = np.random.default_rng(seeds(b))
        audio, labels, idx = augmented_batch(clips, prep.train_labels, silence, mix, prep.augmenter, size, rng)
        yield audio, labels, idx, embedding(audio.astype(np.float32))


def build_head(windows: int, classes: int, seed: int):
    """A small classifier on the embedding windows: logits out."""
    import keras

    inp = keras.Input((windows, EMBEDDING_SIZE))
    h = keras.layers.Conv1D(128, min(3, windows), activation="relu")(inp)
    h = keras.layers.GlobalMaxPooling1D()(h)
    h = keras.layers.Dropout(0.3, seed=seed)(h)
    h = keras.layers.Dense(128, activation="relu")(h)
    h = keras.layers.Dropout(0.3, seed=seed)(h)
    model = keras.Model(inp, keras.layers.Dense(classes)(h))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class Teacher:
    """The embedding and a head trained on the training split, turned into soft targets."""

    def __init__(self, embedding: SpeechEmbedding, head, temperature: float):
        self.embedding, self.head, self.temperature = embedding, head, temperature

    def logits(self, audio: np.ndarray, batch: int = 100) -> np.ndarray:
        """In batches of 100 clips (the embedding's memory grows with the batch)."""
        chunks = [audio[i : i + batch] for i in range(0, len(audio), batch)]
        return np.concatenate([self.head_logits(self.embedding(c)) for c in chunks])

    def head_logits(self, embeddings: np.ndarray, batch: int = 1000) -> np.ndarray:
        chunks = [embeddings[i : i + batch] for i in range(0, len(embeddings), batch)]
        return np.concatenate([np.asarray(self.head(c, training=False)) for c in chunks])

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        return self.soften(self.logits(audio))

    def soften(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature)

    def pool(self, data, classes: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of the pretraining clips (pretrain.PretrainingSet), whose
        embeddings are known: the teacher's view of each augmented clip mixed into its spoken
        clips' labels, as ``soft_targets`` does for clean clips (silence and the negative mix keep
        their label). Cheap: only the head runs."""
        from .batches import mixed_targets

        spoken = self.soften(self.head_logits(data.embeddings[data.distillable]))
        targets = mixed_targets(data.labels, classes, data.distillable, spoken, weight)
        print(f"teacher: targets for {len(targets)} augmented pretraining clips ({len(spoken)} spoken)", flush=True)
        return data.features, targets

    def soft_targets(self, clips: np.ndarray, labels: np.ndarray, silence: np.ndarray) -> np.ndarray:
        """The teacher's probabilities for each clean clip (rows for the batches to look up).
        Silence rows keep their one-hot label: their clip is filled with noise only when a
        batch is made, and the teacher has no better idea of silence than the label."""
        targets = self.probabilities(clips).astype(np.float32)
        targets[silence] = np.eye(targets.shape[1], dtype=np.float32)[labels[silence]]
        return targets

    def accuracy(self, clips: np.ndarray, labels: np.ndarray, fold) -> float:
        """Clip accuracy with the head's classes folded as the exported model's are (``fold``)."""
        if not len(clips):
            return float("nan")
        return float(np.mean(fold(self.logits(clips).argmax(axis=1)) == labels))


def veto_mined(teacher: Teacher, mined, labels: list[str], clip_samples: int, veto: float):
    """The mined windows without those in which the teacher hears a keyword with probability
    ``veto`` or more (its head's own probabilities, not softened).  The negative recordings have no
    transcripts, and mining picks exactly the windows that sound like keywords: some of them are
    one, said inside a sentence, and taught as ``_unknown_`` they teach the model to ignore it."""
    from .negatives import NegativePool, keyword_columns

    if not mined.recordings:
        return mined
    clips = np.stack([np.pad(r, (0, clip_samples - len(r))) for r in mined.recordings]) / 32768.0
    p = softmax(teacher.logits(clips.astype(np.float32)))
    cols = keyword_columns(labels)
    best = p[:, cols].max(axis=1)
    heard = best >= veto
    words = np.array(labels)[np.array(cols)[p[:, cols].argmax(axis=1)]][heard]
    counts = ", ".join(f"{w} {n}" for w, n in zip(*np.unique(words, return_counts=True)))
    print(
        f"hard negatives: the teacher hears a keyword in {int(heard.sum())} of {len(heard)} (at {veto:g}"
        + (f": {counts}" if counts else "")
        + "); left out",
        flush=True,
    )
    rows = np.flatnonzero(~heard)
    return NegativePool(
        recordings=[mined.recordings[i] for i in rows],
        names=[mined.names[i] for i in rows],
        weights=[mined.weights[i] for i in rows],
        band_limited=[mined.band_limited[i] for i in rows],
        sample_rate=mined.sample_rate,
    )


def mining_veto(s, prep):
    """``--hard-negative-teacher-veto``: the function that filters each mined pool, or None."""
    if not s.hard_negative_teacher_veto or prep.teacher is None:
        return None
    return functools.partial(
        veto_mined,
        prep.teacher,
        labels=prep.index.labels,
        clip_samples=prep.params.clip_samples,
        veto=s.hard_negative_teacher_veto,
    )


def soft_targets_for(s, prep) -> tuple[Teacher, np.ndarray]:
    """The teacher and its soft targets for the training clips (one row each).  Its head is trained
    first, on augmented batches of the keyword data set (another seed than the training
    batches), and its validation accuracy printed.  Negative recordings and partial words are
    left out: with them its head lost 8-10 points of validation accuracy (keywords
    inside speech and half words, labelled _unknown_, look like keywords to the embedding)."""
    from .dataset import evaluation_clips

    embedding = SpeechEmbedding(s.teacher_dir)
    t0 = time.time()
    clips, _, silence = prep.data["training"]
    xs, ys = [], []
    batches = embedded_batches(
        prep, embedding, TEACHER_BATCHES, s.batch_size, lambda b: [s.seed, b, 1], None, "teacher embeddings"
    )
    for _, labels, _, embedded in batches:
        xs.append(embedded)
        ys.append(labels)
    x, y = np.concatenate(xs), np.concatenate(ys)
    head = build_head(x.shape[1], prep.index.trained_classes, s.seed)
    head.fit(x, y, batch_size=64, epochs=30, verbose=0)
    print(f"teacher: head trained on {len(x)} embedded clips in {time.time() - t0:.0f} s", flush=True)
    teacher = Teacher(embedding, head, s.distill_temperature)
    validation = evaluation_clips(s.seed, prep.data["validation"], prep.augmenter, "validation")
    accuracy = teacher.accuracy(validation, prep.data["validation"][1], prep.index.coarse)
    print(f"teacher: validation accuracy {accuracy:.1%}", flush=True)
    t0 = time.time()
    targets = teacher.soft_targets(clips, prep.train_labels, silence)
    print(f"teacher: soft targets for {len(targets)} training clips in {time.time() - t0:.0f} s", flush=True)
    return teacher, targets


def compile_for_soft_targets(model, learning_rate: float) -> None:
    """Targets become rows of probabilities (a resumed run was compiled so already: its optimizer state stays)."""
    import keras

    if model.loss != "categorical_crossentropy":
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"]
        )

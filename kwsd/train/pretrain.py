"""``--pretrain-clips``: the small network first learns to hear as the pretrained embedding does.

A few hundred recordings per keyword limit what the small network learns about speech (clip
accuracy grows about four points per doubling of them; models/README.md). The speech embedding
of ``--teacher-dir`` was trained on far more. Before the keyword training starts, the fresh
network's body (everything up to its last layer) is trained to predict that embedding (its
four windows of 96 numbers, standardised) from the MFCCs, on clips drawn and augmented exactly
as training batches are: keywords, other words, silence, negative recordings, partial words.
The embedding runs once per clip, here only; the exported model is the same network at the
same cost. Then the usual training starts from these weights.

Distillation (teacher.py) passes on the teacher's answers for 12 classes; this passes on what
it hears, on as many clips as one cares to embed (unlabelled audio counts as much as keywords).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

BATCH = 100
SEED_OFFSET = 7  # its batches are not the training's first ones


@dataclass
class PretrainingSet:
    """The augmented clips the body learns the embedding on, kept for ``--teacher-pool-percentage``."""

    features: np.ndarray  # (clips, frames, coefficients): MFCCs as training batches have them
    embeddings: np.ndarray  # (clips, windows, 96): the speech embedding of each clip's audio
    labels: np.ndarray  # trained class of each clip (_unknown_ for negative windows and partial words)
    distillable: np.ndarray  # bool: a spoken clip of the keyword data set (not silence, not the negative mix)


def pretraining_set(prep, clips: int, seed: int, embedding) -> PretrainingSet:
    """MFCCs and embeddings of ``clips`` augmented training-distribution clips."""
    from .teacher import embedded_batches

    _, _, silence = prep.data["training"]
    feats, embeddings, labels, distillable = [], [], [], []
    batches = embedded_batches(
        prep, embedding, -(-clips // BATCH), BATCH, lambda b: [seed + SEED_OFFSET, b], prep.mix, "pretraining set"
    )
    for audio, y, idx, embedded in batches:
        feats.append(prep.frontend.batch_features(audio))
        embeddings.append(embedded)
        labels.append(y)
        spoken = np.zeros(len(y), bool)
        spoken[: len(idx)] = ~silence[idx]  # the batch's keyword-data-set clips come first
        distillable.append(spoken)
    joined = [np.concatenate(parts)[:clips] for parts in (feats, embeddings, labels, distillable)]
    return PretrainingSet(*joined)


def pretrain_body(model, prep, clips: int, epochs: int, seed: int, teacher_dir: str) -> PretrainingSet:
    """Train ``model``'s layers below its output layer ("scores") to predict the embedding, in
    place, and print the last epoch's loss (mean squared error of standardised targets: 1.0 is no
    better than always answering the average). Returns the clips it learned on."""
    import keras
    from tqdm import tqdm

    from .teacher import SpeechEmbedding

    t0 = time.time()
    data = pretraining_set(prep, clips, seed, SpeechEmbedding(teacher_dir))
    x, y = data.features, data.embeddings.reshape(len(data.embeddings), -1).astype(np.float32)
    y = (y - y.mean(axis=0)) / (y.std(axis=0) + 1e-6)
    body = model.get_layer("scores").input
    regression = keras.Model(model.input, keras.layers.Dense(y.shape[1], name="embedding")(body))
    regression.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    loss = float("nan")
    bar = tqdm(range(epochs), desc="pretraining", unit="epoch", dynamic_ncols=True, leave=False)
    for _ in bar:
        loss = float(regression.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0).history["loss"][-1])
        bar.set_postfix(loss=f"{loss:.3f}")
    print(
        f"pretraining: the body learned the speech embedding of {len(x)} clips in {epochs} epochs, "
        f"loss {loss:.3f} (1.0: no better than the average); {time.time() - t0:.0f} s",
        flush=True,
    )
    return data

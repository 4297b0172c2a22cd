"""Training that starts from a model file (``--start-checkpoint models/default.tflite``).

A user who wants the bundled model to hear their own voice, their room or their microphone
better should not have to train one from nothing (an hour or more on a small machine, and the
data and recipe of models/README.md): going on from the shipped network with their recordings
added is what Mycroft Precise and most wake-word tools offer.  A kwsd model file holds the int8
network only, no Keras checkpoint, so this rebuilds one: the network ``--model-architecture``
names (ds_cnn or ds_cnn_m), its input normalisation and weights read back from the int8 tensors
(weight x scale, the bias x input scale x weight scale).

The converter folded each batch normalisation into the convolution before it.  To train on as
the recipe does (batch statistics in training), each batch normalisation is given back the
mean and variance that its convolution's outputs have on the training clips, and a scale and
offset that undo them: at inference it then computes exactly the folded convolution, and in
training it starts from the same function.  A file with a second stage (kwsd/cascade_model.py)
holds several networks: the first one that fits ``--model-architecture`` is taken.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cascade_model import FIELD as SECOND_STAGE
from ..cascade_model import check_second_stage, split_networks
from ..errors import ConfigError, ModelError
from ..model import check_metadata, read_model_file, unpack_model
from ..recognize import SILENCE, UNKNOWN

ARCHITECTURES = ("ds_cnn", "ds_cnn_m")  # rebuilt and checked against their files (tests/test_train.py)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def is_model_file(start: str) -> bool:
    return Path(start).suffix == ".tflite"


def check_model_file(s) -> None:
    """Before TensorFlow loads: a file that cannot start this run (settings ``s``) is a one-line error."""
    flag = f"--start-checkpoint {s.start_checkpoint}"
    if s.model_architecture not in ARCHITECTURES:
        raise ConfigError(f"{flag}: only {' and '.join(ARCHITECTURES)} networks can start from a model file")
    if s.binary or s.unknown_word_classes:
        raise ConfigError(f"{flag}: a model file has the exported classes (not --binary or --unknown-word-classes)")
    try:
        _, meta = unpack_model(read_model_file(s.start_checkpoint), s.start_checkpoint)
        its_labels, its_frontend = check_metadata(meta, s.start_checkpoint)
    except ModelError as e:  # it names the file
        raise ConfigError(f"--start-checkpoint {e}") from None
    labels = [SILENCE, UNKNOWN] + s.words()
    if its_labels != labels:
        raise ConfigError(f"{flag}: its labels {','.join(its_labels)} are not this run's {','.join(labels)}")
    if its_frontend != s.frontend():
        raise ConfigError(f"{flag}: its features (the 'frontend' of its metadata) are not this run's")
    trained = meta.get("training")
    trained = trained if isinstance(trained, dict) else {}
    if bool(trained.get("level_invariant")) != s.level_invariant:
        raise ConfigError(f"{flag}: it was trained {'without' if s.level_invariant else 'with'} --level-invariant")


def networks(path: str) -> list[bytes]:
    """Every network of a model file: the first, then its second stage's (if it has one)."""
    flatbuffer, meta = unpack_model(read_model_file(path), path)
    if SECOND_STAGE not in meta:
        return [flatbuffer]
    sizes = check_second_stage(meta, len(flatbuffer), f"model {path}")["network_bytes"]
    first, rest = split_networks(flatbuffer, sizes)
    return [first, *rest]


def read_tensors(flatbuffer: bytes) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """The float weights of every convolution and fully connected layer with a bias, in the order
    the network runs them, and the input normalisation's mean and variance."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer)
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()  # private, but the only way to the operators' order and inputs
    made = {i for op in ops for i in op["outputs"]}

    def value(i):
        q = details[i]["quantization_parameters"]
        v = it.get_tensor(i).astype(np.float64)
        shape = [1] * v.ndim
        if len(q["scales"]) > 1:
            shape[q["quantized_dimension"]] = len(q["scales"])
        return (v - np.reshape(q["zero_points"], shape)) * np.reshape(q["scales"], shape), q["scales"]

    weights, mean, scale = [], None, None
    for op in ops:
        ins = [i for i in op["inputs"] if i >= 0]
        if op["op_name"] in WEIGHT_OPS and len(ins) == 3:
            w, w_scales = value(ins[1])
            x_scale = details[ins[0]]["quantization_parameters"]["scales"][0]
            weights.append((w, it.get_tensor(ins[2]).astype(np.float64) * x_scale * w_scales))
        elif op["op_name"] == "SUB" and mean is None and ins[1] not in made:
            mean = value(ins[1])[0].reshape(-1)
        elif op["op_name"] == "MUL" and scale is None and ins[1] not in made:
            scale = value(ins[1])[0].reshape(-1)
    if mean is None or scale is None:
        raise ValueError("no input normalisation in it (not a network that kwsd train wrote)")
    return weights, mean, 1.0 / scale**2


def rebuild(path: str, s, prep):
    """A compiled Keras model with the weights of ``path``'s network that fits ``s``'s architecture."""
    import keras
    from keras import layers

    from .architectures import build_model

    weighted = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)
    n = prep.counts["training"]  # the clips are in label order: the statistics need all labels
    some = np.sort(np.random.default_rng(s.seed).choice(n, size=min(1000, n), replace=False))
    clean = prep.frontend.batch_features(prep.data["training"][0][some])
    for number, flatbuffer in enumerate(networks(path), 1):
        weights, mean, variance = read_tensors(flatbuffer)
        model = build_model(
            s.model_architecture, prep.params.input_shape, len(prep.index.labels), False, s.dropout,
            mean, variance, s.level_invariant,
        )  # fmt: skip
        trained = [x for x in model.layers if isinstance(x, weighted) and x.trainable]
        shapes = [x.kernel.shape for x in trained]
        if len(weights) != len(trained) or any(np.prod(w.shape) != np.prod(k) for (w, _), k in zip(weights, shapes)):
            continue
        for layer, (w, bias) in zip(trained, weights):
            set_layer(model, layer, w, bias, clean)
        model.compile(
            optimizer=keras.optimizers.Adam(s.schedule()[0][1]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        print(f"starting from network {number} of {path}", flush=True)
        return model
    raise ValueError(f"{path}: no network in it is a {s.model_architecture} with {len(prep.index.labels)} labels")


def set_layer(model, layer, w: np.ndarray, bias: np.ndarray, clean: np.ndarray) -> None:
    """One layer's weights from the file's (TFLite layout), and its batch normalisation's."""
    import keras
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):
        kernel = w[0][..., None]  # (1, h, w, channels) -> (h, w, channels, 1)
    elif isinstance(layer, layers.Conv2D):
        kernel = w.transpose(1, 2, 3, 0)  # (out, h, w, in) -> (h, w, in, out)
    else:
        kernel = w.T
    if layer.use_bias:
        layer.set_weights([kernel, bias])
        return
    layer.set_weights([kernel])
    norm = model.layers[model.layers.index(layer) + 1]
    assert isinstance(norm, layers.BatchNormalization), f"{layer.name} is not followed by a batch normalisation"
    z = keras.Model(model.inputs, layer.output).predict(clean, batch_size=200, verbose=0)
    mu, var = z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))
    norm.set_weights([np.sqrt(var + norm.epsilon), bias + mu, mu, var])

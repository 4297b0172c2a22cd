"""Keras models over MFCC windows (frames x coefficients).

tiny_conv, conv and low_latency_conv follow TensorFlow's speech_commands models.py;
ds_cnn is DS-CNN-S from "Hello Edge" (Zhang et al. 2017), ds_cnn_m its DS-CNN-M (172 channels
instead of 64: about six times the multiply-accumulates); tc_resnet8 is TC-ResNet8
(Choi et al. 2019), convolving over time with the coefficients as channels, at the paper's
width 1.5 (tc_resnet8) or 1 (tc_resnet8_w1: a quarter of the weights, for less over-fitting);
ds_cnn_stream is DS-CNN-S shaped to be exported as a streaming model (kwsd/train/streaming.py).
Flatten is avoided (it adds SHAPE/STRIDED_SLICE/PACK ops in TFLite): a Reshape to
a fixed size does the same job.  The last layer is softmax (or sigmoid in binary
mode) so the exported model outputs probabilities.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from .settings import ARCHITECTURES


def _flat(x):
    return layers.Reshape((math.prod(x.shape[1:]),))(x)


def _conv_bn_relu(x, filters, kernel, strides=(1, 1), depthwise=False, padding="same", dilation=(1, 1)):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides, padding, dilation_rate=dilation, use_bias=False)(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _tiny_conv(x, normed, dropout):
    x = layers.Conv2D(8, (10, 8), strides=(2, 2), padding="same", activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return _flat(x)


def _conv(x, normed, dropout):
    x = layers.Conv2D(64, (20, 8), padding="same", activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(64, (10, 4), padding="same", activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return _flat(x)


def _low_latency_conv(x, normed, dropout):
    x = layers.Conv2D(186, (x.shape[1], 8), padding="valid", activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = _flat(x)
    x = layers.Dense(128)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(128)(x)
    return layers.Dropout(dropout)(x)


def _ds_cnn(x, normed, dropout, width=64):
    x = _conv_bn_relu(x, width, (10, 4), strides=(2, 2))
    for _ in range(4):
        x = _conv_bn_relu(x, width, (3, 3), depthwise=True)
        x = _conv_bn_relu(x, width, (1, 1))
    x = layers.Dropout(dropout)(x)
    x = layers.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    return _flat(x)


def delta_c0(x):
    """Frames (T, coefficients, 1) -> (T - 1, ...): c0 replaced by its change from the frame
    before (a gain adds the same constant to every frame's c0, so the change is the same at
    any level), the other coefficients as they are."""
    c0 = layers.Cropping2D(((0, 0), (0, x.shape[2] - 1)))(x)
    later, earlier = layers.Cropping2D(((1, 0), (0, 0)))(c0), layers.Cropping2D(((0, 1), (0, 0)))(c0)
    change = layers.Subtract(name=f"delta_c0_{x.shape[1]}")([later, earlier])
    return layers.Concatenate(axis=2)([change, layers.Cropping2D(((1, 0), (1, 0)))(x)])


def _ds_cnn_stream(x, normed, dropout, c0="delta", positions=True, dilations=(1, 2, 2, 2)):
    """DS-CNN-S shaped so that it can run as a streaming model (only the new frames each
    stride, the older rows kept; kwsd/train/streaming.py): padding only across frequency,
    never across time, so every output row depends on a fixed span of frames.  c0 (the
    frame's log energy, the one coefficient a recording's level moves) as its change from the
    frame before (``delta_c0``; the window's first frame gets 0), or left out (``c0=None``):
    ``--level-invariant`` takes it from the whole window's loudest frame, which a stream of
    rows cannot do.  Without padding in time each last row sees only its own span of frames
    (DS-CNN's padded rows cover the window's edges too), so the depthwise kernels are dilated
    in time (``dilations``: each last row hears 38 of the 49 frames instead of 26) and the head
    sees each last row in its place (``positions``: averaged over frequency only, then a dense
    layer), not their mean.  Cheaper even whole: 20 rows after the first layer instead of 25."""
    if c0 == "delta":
        first = layers.Cropping2D(((0, x.shape[1] - 1), (0, 0)))(x)
        x = delta_c0(layers.Concatenate(axis=1)([first, x]))  # frame 0 twice: its change is 0
        x = layers.ZeroPadding2D(((0, 0), (1, 2)))(x)  # 13 coefficients -> 7 columns, as "same"
    else:
        x = layers.Cropping2D(((0, 0), (1, 0)))(x)  # c1..c12
        x = layers.ZeroPadding2D(((0, 0), (1, 1)))(x)
    x = _conv_bn_relu(x, 64, (10, 4), strides=(2, 2), padding="valid")
    for d in dilations:
        x = layers.ZeroPadding2D(((0, 0), (1, 1)))(x)
        x = _conv_bn_relu(x, 64, (3, 3), depthwise=True, padding="valid", dilation=(d, 1))
        x = _conv_bn_relu(x, 64, (1, 1))
    x = layers.Dropout(dropout)(x)
    x = layers.AveragePooling2D(pool_size=(1 if positions else x.shape[1], x.shape[2]))(x)
    return _flat(x)


def _tc_resnet8(x, normed, dropout, widths=(24, 36, 48, 72)):
    """TC-ResNet8-1.5 by default; ``widths`` (16, 24, 32, 48) is the paper's TC-ResNet8."""
    frames, coeffs = normed.shape[1], normed.shape[2]
    x = layers.Reshape((frames, 1, coeffs))(normed)  # time convolutions, coefficients as channels
    x = layers.Conv2D(widths[0], (3, 1), padding="same", use_bias=False)(x)
    for channels in widths[1:]:
        shortcut = _conv_bn_relu(x, channels, (1, 1), strides=(2, 1))
        y = _conv_bn_relu(x, channels, (9, 1), strides=(2, 1))
        y = layers.Conv2D(channels, (9, 1), padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.AveragePooling2D(pool_size=(x.shape[1], 1))(x)
    x = layers.Dropout(dropout)(x)
    return _flat(x)


# name -> body: (features as an image, normalised features, dropout) -> a flat vector
BUILDERS = {
    "tiny_conv": _tiny_conv,
    "conv": _conv,
    "low_latency_conv": _low_latency_conv,
    "ds_cnn": _ds_cnn,
    "ds_cnn_m": lambda x, normed, dropout: _ds_cnn(x, normed, dropout, 172),
    "ds_cnn_stream": _ds_cnn_stream,
    "ds_cnn_stream_no_c0": lambda x, normed, dropout: _ds_cnn_stream(x, normed, dropout, None, False, (1, 1, 1, 1)),
    "tc_resnet8": _tc_resnet8,
    "tc_resnet8_w1": lambda x, normed, dropout: _tc_resnet8(x, normed, dropout, (16, 24, 32, 48)),
}
assert tuple(BUILDERS) == ARCHITECTURES, "settings.ARCHITECTURES lists the builders for the CLI"


def c0_from_loudest(features: np.ndarray) -> np.ndarray:
    """What ``level_invariant`` models see: c0 of each window (..., frames, coefficients) minus
    its largest value over the window's frames.  Turning audio up or down by a gain only adds
    a constant to c0 (the log energy) and leaves the other coefficients alone, so this removes
    the recording level, and nothing else, from the features."""
    out = np.array(features, dtype=np.float32)
    out[..., 0] -= out[..., 0].max(axis=-1, keepdims=True)
    return out


def _c0_from_loudest_layers(inputs, coeffs: int):
    """``c0_from_loudest`` as fixed layers, so the exported file does it and the daemon, its
    features and the file format stay as they are: pick c0, take its maximum over the frames,
    put it back in channel 0 of an offset, subtract (a few dozen operations per invoke)."""
    pick = layers.Dense(1, use_bias=False, trainable=False, name="c0")
    loudest = layers.GlobalMaxPooling1D(keepdims=True, name="loudest_c0")(pick(inputs))
    spread = layers.Dense(coeffs, use_bias=False, trainable=False, name="c0_offset")
    offset = spread(loudest)
    first = np.zeros((coeffs, 1), np.float32)
    first[0, 0] = 1.0
    pick.set_weights([first])
    spread.set_weights([first.T.copy()])
    return layers.Subtract(name="c0_from_loudest")([inputs, offset])


def build_model(
    name: str,
    input_shape: tuple[int, int],
    label_count: int,
    binary: bool = False,
    dropout: float = 0.2,
    mean=None,
    variance=None,
    level_invariant: bool = False,
) -> keras.Model:
    """``mean``/``variance`` per coefficient (from training features, after ``c0_from_loudest``
    when ``level_invariant``) normalise the input inside the model, so MFCCs of very different
    ranges (c0 is a log energy) train evenly."""
    if name not in BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    frames, coeffs = input_shape
    inputs = keras.Input(shape=(frames, coeffs), name="features")
    x = _c0_from_loudest_layers(inputs, coeffs) if level_invariant else inputs
    normed = layers.Normalization(axis=-1, mean=mean, variance=variance)(x) if mean is not None else x
    x = BUILDERS[name](layers.Reshape((frames, coeffs, 1))(normed), normed, dropout)
    if binary:
        outputs = layers.Dense(1, activation="sigmoid", name="scores")(x)
    else:
        outputs = layers.Dense(label_count, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=name)


def fold_word_classes(model: keras.Model, outputs: int, unknown: int) -> keras.Model:
    """``model`` with its scores past the first ``outputs`` added into ``unknown``: a fixed 0/1
    matrix after the softmax, so the exported file has the usual classes and their
    probabilities still sum to one.  The layers are shared: it follows ``model``'s training."""
    n = model.output_shape[-1]
    fold = np.zeros((n, outputs), np.float32)
    fold[np.arange(outputs), np.arange(outputs)] = 1.0
    fold[outputs:, unknown] = 1.0
    dense = layers.Dense(outputs, use_bias=False, trainable=False, name="fold_word_classes")
    scores = dense(model.output)
    dense.set_weights([fold])
    return keras.Model(model.inputs, scores, name=model.name)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference (conv, depthwise and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)

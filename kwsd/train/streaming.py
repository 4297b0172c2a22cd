"""A streaming export of ``ds_cnn_stream``: each stride computes only the rows its new frames add.

The whole-window network (what training fits) recomputes every row of every layer each
stride, though a stride of 80 ms moves the window by 4 of its 49 frames.  ``ds_cnn_stream``
pads only across frequency, so each output row of a layer depends on a fixed span of rows
below it, and a stride adds the same number of new rows everywhere.  The step model here
shares the trained layers and takes the window's newest frames plus, per depthwise block,
the rows that the block's kernel needs from earlier strides (given back by the previous
step), and the means of the last block's rows of the strides before it (the average
pooling, kept as a running window).  The daemon keeps those arrays between invokes
(``kwsd.streaming_model``); after a gap (the start, the silence gate, lost audio) it
rebuilds them from the window alone in ``rebuild_steps`` invokes, which gives exactly the
whole-window result.  The file stays one int8 TFLite file; its metadata's ``streaming``
record says how to feed it.  Inputs and outputs stay float (quantised inside the model),
so that state passes from an output to an input without the caller knowing their scales.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..streaming_model import keep_means, step_frames

STATE = "rows"  # inputs rows1..rowsN: earlier rows of each depthwise block's input
MEANS = "means"  # the means of the last block's rows over the strides before this one


def _parts(model: keras.Model):
    """The trained layers in order: normalisation, the frequency paddings (first layer,
    blocks), the first convolution with its batch norm, the depthwise blocks (6 layers each),
    the pooling and the dense head; and whether c0 comes in as its change (``delta_c0``)."""
    ls = model.layers
    norm = next(x for x in ls if isinstance(x, layers.Normalization))
    pads = [x for x in ls if isinstance(x, layers.ZeroPadding2D)]
    first = next(i for i, x in enumerate(ls) if type(x) is layers.Conv2D)
    body = [x for x in ls[first:] if not isinstance(x, (layers.ZeroPadding2D, layers.Dropout))]
    pool = next(i for i, x in enumerate(body) if isinstance(x, layers.AveragePooling2D))
    conv1, blocks = body[:3], [body[i : i + 6] for i in range(3, pool, 6)]
    head = [x for x in body[pool + 1 :] if isinstance(x, layers.Dense)]
    delta = any(x.name.startswith("delta_c0") for x in ls)
    return norm, pads[:2], conv1, blocks, body[pool], head, delta


def plan(model: keras.Model, frames: int, new_frames: int) -> dict:
    """How the step model is fed: which frames of the window, how many rows are kept, how
    many steps rebuild the state from a window alone.  Only what ``ds_cnn_stream`` is: a
    first convolution strided in time, then depthwise blocks of stride 1 (dilated or not)."""
    _, _, conv1, blocks, pool, _, delta = _parts(model)
    kernel, stride = conv1[0].kernel_size[0], conv1[0].strides[0]
    if new_frames % stride:
        raise ValueError(f"a streaming step needs a multiple of {stride} new frames, not {new_frames}")
    new_rows = new_frames // stride
    rows = (frames - kernel) // stride + 1  # rows of the first layer over a whole window
    if rows % new_rows or pool.input.shape[1] % new_rows:
        raise ValueError("the streaming export handles ds_cnn_stream at a stride of 4 frames")
    span = kernel + stride * (new_rows - 1)
    last_rows = pool.input.shape[1]  # the last block's rows over a whole window
    return {
        "new_frames": new_frames,
        "span": span,
        "start": stride * (rows - new_rows),  # where the newest span begins in a window
        "rebuild_steps": rows // new_rows,
        "blocks": len(blocks),
        # kept between steps: each earlier last-block row averaged over frequency (a head that
        # sees rows in their places), or each earlier step's mean (a head that averages them)
        "means": last_rows - new_rows if pool.pool_size[0] == 1 else last_rows // new_rows - 1,
        "lead": 1 if delta else 0,  # frames before the span that the step reads (c0's change)
    }


def step_model(model: keras.Model, p: dict) -> keras.Model:
    """The step network, sharing ``model``'s trained layers (BatchNorm in inference mode)."""
    from .architectures import delta_c0

    norm, (pad_first, pad), conv1, blocks, pool, head, delta = _parts(model)
    coeffs, n = norm.input.shape[-1], p["span"] + p["lead"]
    frames = keras.Input((n, coeffs), name="frames")
    x = layers.Reshape((n, coeffs, 1))(norm(frames))
    x = pad_first(delta_c0(x) if delta else layers.Cropping2D(((0, 0), (1, 0)))(x))
    for layer in conv1:
        x = layer(x)
    new_rows, width, channels = x.shape[1], x.shape[2], x.shape[3]
    states, given_back = [], []
    for i, block in enumerate(blocks):
        depth = block[0]  # the depthwise layer: its kernel (dilated) reaches this many rows back
        reach = (depth.kernel_size[0] - 1) * depth.dilation_rate[0]
        earlier = keras.Input((reach, width, channels), name=f"{STATE}{i + 1}")
        states.append(earlier)
        rows = layers.Concatenate(axis=1)([earlier, x])
        given_back.append(layers.Cropping2D(((new_rows, 0), (0, 0)))(rows))  # the next step's earlier rows
        x = pad(rows)
        for layer in block:
            x = layer(x)
    means = keras.Input((p["means"], channels), name=MEANS)
    if pool.pool_size[0] == 1:  # the head sees every last row in its place
        step_mean = layers.Reshape((new_rows, channels))(layers.AveragePooling2D((1, width))(x))
        kept = layers.Concatenate(axis=1)([means, step_mean])
        x = layers.Reshape((kept.shape[1] * channels,))(kept)
    else:  # the head sees the mean of the last rows
        step_mean = layers.Reshape((1, channels))(layers.AveragePooling2D((new_rows, width))(x))
        x = layers.GlobalAveragePooling1D()(layers.Concatenate(axis=1)([means, step_mean]))
    for layer in head:
        x = layer(x)
    return keras.Model([frames, *states, means], [x, *given_back, step_mean], name="step")


def run_steps(step: keras.Model, p: dict, windows: np.ndarray, collect: list | None = None) -> np.ndarray:
    """Scores of whole windows (n, frames, coefficients) by rebuilding the state step by step,
    as the daemon does after a gap; ``collect`` gets every step's inputs (calibration data)."""
    n = len(windows)
    states = [np.zeros((n, *t.shape[1:]), np.float32) for t in step.inputs[1:]]
    scores = np.zeros(0)
    for j in range(p["rebuild_steps"]):
        feed = [step_frames(windows, j * p["new_frames"], p["span"], p["lead"]).astype(np.float32), *states]
        if collect is not None:
            collect.append(feed)
        out = step(feed, training=False)
        out = [np.asarray(o) for o in out]
        scores, rows, step_mean = out[0], out[1 : 1 + p["blocks"]], out[-1]
        states = [*rows, keep_means(states[-1], step_mean)]
    return scores


def to_streaming_tflite(model: keras.Model, windows: np.ndarray, new_frames: int) -> tuple[bytes, dict]:
    """The int8 step model (float inputs and outputs) and its ``streaming`` metadata record;
    ``windows``: calibration feature windows.  Checks that stepping gives the whole-window
    scores before converting."""
    import tensorflow as tf

    from .export import quiet_conversion

    p = plan(model, windows.shape[1], new_frames)
    step = step_model(model, p)
    feeds: list = []
    stepped = run_steps(step, p, windows, feeds)
    whole = np.asarray(model(windows.astype(np.float32), training=False))
    if not np.allclose(stepped, whole, atol=1e-4):
        raise AssertionError(f"step model differs from the whole network by {np.abs(stepped - whole).max():.2g}")

    names = [t.name for t in step.inputs]

    def samples():  # by name: the converted model orders its inputs its own way
        for feed in feeds:
            for i in range(0, len(feed[0]), 8):
                yield {name: x[i : i + 1] for name, x in zip(names, feed)}

    converter = tf.lite.TFLiteConverter.from_keras_model(step)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with quiet_conversion():
        flatbuffer = converter.convert()
    return flatbuffer, {**p, **tensor_names(flatbuffer, names)}


def tensor_names(flatbuffer: bytes, names: list[str]) -> dict:
    """The converted file's tensor names for each input (``names``: the step model's, in
    order) and each output (scores, the rows given back, the step's mean), read once here so
    that the daemon finds them by name rather than by the converter's ordering."""
    import tensorflow as tf

    it = tf.lite.Interpreter(model_content=flatbuffer)
    ins = [d["name"] for d in it.get_input_details()]
    outs = [d["name"] for d in it.get_output_details()]
    by_name = [next(n for n in ins if n.endswith(f"_{name}:0")) for name in names]
    by_position = [next(n for n in outs if n.endswith(f":{k}")) for k in range(len(outs))]
    return {"inputs": by_name, "outputs": by_position}

"""A streaming keyword model: each stride runs only the rows its new frames add.

A model file whose metadata has a ``streaming`` record (``kwsd.train.streaming`` writes
it) holds a *step* network: its inputs are the window's newest frames and the rows that
each layer needs from earlier strides; its outputs are the scores and those rows for the
next stride.  To the pipeline it looks like any model: ``scores(window)``.  When the
window is the previous one moved on by one stride, one step runs; otherwise (the first
window, the silence gate opening, lost audio, a clip in ``kwsd train``'s report) the
state is rebuilt from the window alone, which gives exactly what the whole network would.
"""

from __future__ import annotations

import numpy as np

from .errors import ModelError
from .model import KeywordModel


def check_streaming(meta: dict, frames: int, source: str) -> dict:
    """The ``streaming`` record, its fields checked; ModelError naming ``source`` otherwise."""
    s = meta.get("streaming")
    keys = ("new_frames", "span", "start", "rebuild_steps", "means")
    if not isinstance(s, dict) or not all(isinstance(s.get(k), int) and not isinstance(s.get(k), bool) for k in keys):
        raise ModelError(f"{source}: field 'streaming' must give {', '.join(keys)} as integers")
    if not (0 < s["new_frames"] <= s["span"] and 0 <= s["start"] and s["start"] + s["span"] <= frames):
        raise ModelError(f"{source}: field 'streaming' does not fit a window of {frames} frames")
    s = {**s, "lead": s.get("lead", 0)}  # a copy: the model's metadata stays as it was read
    lead = s["lead"]
    if isinstance(lead, bool) or not isinstance(lead, int) or not 0 <= lead <= s["start"]:
        raise ModelError(f"{source}: field 'streaming.lead' must be an integer from 0 to 'start'")
    if s["rebuild_steps"] < 1 or (s["rebuild_steps"] - 1) * s["new_frames"] != s["start"]:
        raise ModelError(f"{source}: field 'streaming.rebuild_steps' does not lead to the window's newest frames")
    for key in ("inputs", "outputs"):
        if not isinstance(s.get(key), list) or not all(isinstance(x, str) for x in s[key]) or len(s[key]) < 2:
            raise ModelError(f"{source}: field 'streaming.{key}' must list the step model's tensor names")
    return s


def step_frames(windows: np.ndarray, a: int, span: int, lead: int) -> np.ndarray:
    """The frames a step starting at frame ``a`` of a window (..., frames, coefficients) reads:
    its span, and ``lead`` frames before it (the window's first frame again at its start, as
    the whole network sees it).  ``kwsd.train.streaming`` feeds its checks the same way."""
    if a >= lead:
        return windows[..., a - lead : a + span, :]
    first = np.repeat(windows[..., :1, :], lead - a, axis=-2)
    return np.concatenate((first, windows[..., : a + span, :]), axis=-2)


def keep_means(means: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The kept last-block means (batch, rows, channels) moved on by the step's new ones."""
    return np.concatenate((means[:, new.shape[1] :], new), axis=1)


class StreamingKeywordModel(KeywordModel):
    def __post_init__(self):
        frames, coeffs = self.frontend.input_shape
        source = f"model {self.path}"
        s = self.streaming = check_streaming(self.metadata, frames, source)
        ins = {d["name"]: d for d in self.interpreter.get_input_details()}
        outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        missing = [n for n in s["inputs"] if n not in ins] + [n for n in s["outputs"] if n not in outs]
        if missing or len(s["inputs"]) != len(ins) or len(s["outputs"]) != len(outs):
            raise ModelError(f"{source}: field 'streaming' names tensors the model does not have ({missing[:3]})")
        inputs = [ins[n] for n in s["inputs"]]
        outputs = [outs[n] for n in s["outputs"]]
        if any(d["dtype"] != np.float32 for d in inputs + outputs):
            raise ModelError(f"{source}: a streaming model takes and gives float32 tensors")
        if tuple(inputs[0]["shape"][1:]) != (s["lead"] + s["span"], coeffs):
            raise ModelError(f"{source}: its frames input is {list(inputs[0]['shape'])}, not lead + span x {coeffs}")
        if int(outputs[0]["shape"][-1]) != len(self.labels):
            raise ModelError(f"{source}: field 'labels' has {len(self.labels)} names but the model has other outputs")
        # the rows given back feed the inputs after the frames; the step's mean joins the means
        self._frames_index = inputs[0]["index"]
        self._state_index = [d["index"] for d in inputs[1:]]
        self._out_index = outputs[0]["index"]
        self._given_index = [d["index"] for d in outputs[1:]]
        self._state = [np.zeros(d["shape"], np.float32) for d in inputs[1:]]
        self._window: np.ndarray | None = None  # the window the state belongs to

    def scores(self, features: np.ndarray) -> np.ndarray:
        s = self.streaming
        window = features.reshape(self.frontend.input_shape)
        step, span = s["new_frames"], s["span"]
        steps = s["rebuild_steps"]  # a gap: rebuild from this window alone
        last = self._window
        if last is not None:  # moved on by whole steps (one, at the stride the model was made for)?
            steps = next((k for k in range(1, steps) if np.array_equal(window[: -k * step], last[k * step :])), steps)
        for j in range(s["rebuild_steps"] - steps, s["rebuild_steps"]):
            scores = self._step(step_frames(window, j * step, span, s["lead"]))
        self._window = np.array(window, np.float32)
        return scores

    def _step(self, frames: np.ndarray) -> np.ndarray:
        it = self.interpreter
        it.set_tensor(self._frames_index, frames[None].astype(np.float32, copy=False))
        for index, value in zip(self._state_index, self._state):
            it.set_tensor(index, value)
        it.invoke()
        given = [it.get_tensor(i) for i in self._given_index]
        self._state = [*given[:-1], keep_means(self._state[-1], given[-1])]
        return it.get_tensor(self._out_index).reshape(-1)

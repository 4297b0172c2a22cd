"""Keyword models: the model file format and the TFLite interpreter adapter.

File format (version 1): a plain TFLite flatbuffer followed by a metadata record

    <tflite bytes> <metadata JSON, UTF-8> <u32 LE json length> <u32 LE version> b"KWSDMETA"

The record is appended rather than stored in the flatbuffer's metadata table so that
it can be written and read without a flatbuffers schema; the interpreter is always
given the flatbuffer part only.  The JSON holds ``name``, ``labels``,
``sample_rate``, ``clip_duration_ms`` and the ``frontend`` parameters
(:class:`kwsd.features.FrontendParams`); the daemon takes frontend parameters only
from here and refuses a model whose metadata is missing or does not match its tensors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ModelError
from .features import FrontendParams
from .limits import MODEL_MAX_BYTES, label_problem, read_bounded, shorten, stride_fits
from .recognize import NOT_REPORTED

log = logging.getLogger(__name__)

MAGIC = b"KWSDMETA"
FORMAT_VERSION = 1
_FOOTER = struct.Struct("<II8s")
METADATA_MAX_BYTES = 1 << 20  # the default model's record is under 2 kB
MAX_LABELS = 1000
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")


def pack_model(tflite_bytes: bytes, metadata: dict) -> bytes:
    """Append the metadata record to a TFLite flatbuffer."""
    meta = json.dumps({"format_version": FORMAT_VERSION, **metadata}, sort_keys=True).encode()
    return tflite_bytes + meta + _FOOTER.pack(len(meta), FORMAT_VERSION, MAGIC)


def unpack_model(data: bytes, source: str = "model") -> tuple[bytes, dict]:
    """Split a model file into (flatbuffer, metadata); ModelError if there is no record."""
    if len(data) < _FOOTER.size or data[-8:] != MAGIC:
        raise ModelError(f"{source}: no kwsd metadata record (was it exported by 'kwsd train'?)")
    length, version, _ = _FOOTER.unpack(data[-_FOOTER.size :])
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{source}: metadata record version {version} is not supported (this kwsd reads version {FORMAT_VERSION})"
        )
    end = len(data) - _FOOTER.size
    if length > end:
        raise ModelError(f"{source}: metadata record is truncated")
    if length > METADATA_MAX_BYTES:
        raise ModelError(f"{source}: metadata record of {length:,} bytes is larger than {METADATA_MAX_BYTES:,}")
    try:
        meta = json.loads(data[end - length : end])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{source}: metadata record is not valid JSON ({str(e)[:100]})") from None
    except RecursionError:
        raise ModelError(f"{source}: metadata record is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{source}: metadata record is not a JSON object")
    return data[: end - length], meta


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what the C++ runtime prints while building an interpreter.

    LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to
    file descriptor 2 for every interpreter, which would break the daemon's promise of
    one clear line per error.  Kept when debug logging is on.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def make_interpreter(flatbuffer: bytes, backend: str = "auto", threads: int = 1):
    """Build an interpreter from the first backend that works.

    Order: ai_edge_litert (maintained, fast int8 kernels), tflite_runtime (the only
    one on armv7l), tensorflow.lite.  Returns (interpreter, backend name).
    A backend that imports but cannot construct an interpreter (tflite_runtime with
    numpy 2, or after TensorFlow was imported) is skipped with a debug log line.  But a
    backend that *refuses the model* (a ValueError: not a valid flatbuffer) ends the
    search: tflite_runtime 2.14 segfaults on a truncated flatbuffer that LiteRT refuses
    cleanly, so a bad file must never reach the next backend.
    """
    names = BACKENDS if backend == "auto" else (backend,)
    errors = []
    for name in names:
        try:
            if name == "ai_edge_litert":
                from ai_edge_litert.interpreter import Interpreter
            elif name == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter
            elif name == "tensorflow":
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            else:
                raise ModelError(f"unknown interpreter backend {name!r}; use auto or one of {', '.join(BACKENDS)}")
            with quiet_native_stderr():
                interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
                interpreter.allocate_tensors()
            return interpreter, name
        except ModelError:
            raise
        except ValueError as e:  # the interpreter read the file and refused it
            raise ModelError(
                f"not a valid TFLite model ({name}: {str(e).splitlines()[0] if str(e) else e!r})"
            ) from None
        except Exception as e:  # ImportError, or a broken/incompatible build
            log.debug("interpreter backend %s unavailable: %s", name, e)
            errors.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise ModelError("no TFLite interpreter could load the model (" + "; ".join(errors) + ")")


def available_backends() -> list[str]:
    """Backends that can be imported in this environment (not necessarily constructed)."""
    import importlib.util

    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]  # each is its module's name


def read_model_file(path: str) -> bytes:
    """A model file's bytes; ModelError naming it if it is missing, unreadable or over MODEL_MAX_BYTES."""
    try:
        return read_bounded(path, MODEL_MAX_BYTES)
    except (OSError, ValueError) as e:  # ValueError: larger than MODEL_MAX_BYTES
        raise ModelError(f"model {path}: cannot read ({getattr(e, 'strerror', None) or e})") from None


def check_metadata(meta: dict, source: str) -> tuple[list[str], FrontendParams]:
    """The labels and frontend parameters of a model's metadata record, every field checked
    (docs/contracts.md); ModelError naming ``source`` and the field otherwise."""
    labels = meta.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelError(f"{source}: field 'labels' is missing or not a list of names")
    if len(labels) > MAX_LABELS:
        raise ModelError(f"{source}: field 'labels' has {len(labels)} names (at most {MAX_LABELS})")
    for i, label in enumerate(labels):
        problem = label_problem(label)
        if problem:  # a label becomes a log word, a JSON value and an MQTT topic level
            raise ModelError(f"{source}: label {i} {problem}")
    if len(set(labels)) != len(labels):
        raise ModelError(f"{source}: field 'labels' has duplicates")
    name = meta.get("name")
    if name is not None and (not isinstance(name, str) or label_problem(name)):
        raise ModelError(f"{source}: field 'name' must be a short name (letters, digits, '-', '_')")
    if "recognize" in meta:
        from .config import recognize_from_dict

        try:
            listened = recognize_from_dict(meta["recognize"], source).keywords
        except ConfigError as e:
            raise ModelError(str(e)) from None
        if any(k not in labels or k in NOT_REPORTED for k in listened or []):
            raise ModelError(f"{source}: recognize.keywords names a word that is not one of its keywords")
    front = meta.get("frontend")
    if not isinstance(front, dict):
        raise ModelError(f"{source}: field 'frontend' is missing")
    for key in ("sample_rate", "clip_duration_ms"):
        if key not in meta:
            raise ModelError(f"{source}: field '{key}' is missing")
        if meta[key] != front.get(key):
            raise ModelError(
                f"{source}: field '{key}' ({shorten(meta[key])}) disagrees with "
                f"frontend.{key} ({shorten(front.get(key))})"
            )
    try:
        params = FrontendParams.from_dict(front)
    except ValueError as e:
        raise ModelError(f"{source}: field {e}") from None
    if not isinstance(meta.get("inference", {}), dict):
        raise ModelError(f"{source}: field 'inference' must be a mapping")
    stride = recommended_stride_ms(meta)
    if stride is not None and not stride_fits(stride, params.window_stride_ms):
        raise ModelError(
            f"{source}: field 'inference.clip_stride_ms' must be 10..1000 ms and a multiple of the "
            f"{params.window_stride_ms:g} ms frame stride, not {shorten(stride)}"
        )
    return labels, params


def recommended_stride_ms(meta: dict):
    """The clip stride (how often the model runs) that the model's recommended smoother settings
    were tuned for, from ``inference.clip_stride_ms`` in its metadata; None if it recommends none."""
    inference = meta.get("inference")
    return inference.get("clip_stride_ms") if isinstance(inference, dict) else None


@dataclass
class KeywordModel:
    """A loaded model: metadata, frontend parameters and a ready interpreter."""

    path: str
    name: str
    labels: list[str]
    frontend: FrontendParams
    metadata: dict
    backend: str
    interpreter: Any = field(repr=False)  # tflite_runtime / ai_edge_litert Interpreter

    @classmethod
    def load(
        cls, path: str | Path, backend: str = "auto", threads: int = 1, second_stage: bool = True
    ) -> "KeywordModel":
        path = str(path)
        flatbuffer, meta = unpack_model(read_model_file(path), f"model {path}")
        if "second_stage" in meta:  # more networks after the first (kwsd/cascade_model.py)
            from .cascade_model import load_cascade

            return load_cascade(path, flatbuffer, meta, backend, threads, second_stage)
        return cls.from_flatbuffer(path, flatbuffer, meta, backend, threads)

    @classmethod
    def from_flatbuffer(cls, path: str, flatbuffer: bytes, meta: dict, backend: str, threads: int) -> "KeywordModel":
        """The model of a file's network and metadata record, both checked."""
        labels, params = check_metadata(meta, f"model {path}")
        try:
            interpreter, used = make_interpreter(flatbuffer, backend, threads)
        except ModelError as e:
            raise ModelError(f"model {path}: {e}") from None
        name = meta.get("name") or Path(path).stem
        if "streaming" in meta:  # a step network with state (kwsd/streaming_model.py checks it)
            from .streaming_model import StreamingKeywordModel

            return StreamingKeywordModel(path, str(name), labels, params, meta, used, interpreter)
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        if int(np.prod(inp["shape"])) != params.num_frames * params.feature_bin_count:
            raise ModelError(
                f"model {path}: field 'frontend' gives {params.num_frames}x"
                f"{params.feature_bin_count} features but the model input is {list(inp['shape'])}"
            )
        if int(out["shape"][-1]) != len(labels):
            raise ModelError(
                f"model {path}: field 'labels' has {len(labels)} names but the model "
                f"has {int(out['shape'][-1])} outputs"
            )
        log.debug("loaded %s (%s) with %s", path, name, used)
        return cls(path, str(name), labels, params, meta, used, interpreter)

    def __post_init__(self):
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_shape, self._in_dtype = tuple(inp["shape"]), inp["dtype"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_dtype = out["dtype"]
        self._out_scale, self._out_zero = out["quantization"]
        self._in_buf = np.zeros(self._in_shape, self._in_dtype)
        if self._in_dtype in (np.int8, np.uint8):
            info = np.iinfo(self._in_dtype)
            self._in_lo, self._in_hi = info.min, info.max

    @property
    def keywords(self) -> list[str]:
        """Labels that can be reported (not _silence_ or _unknown_)."""
        return [x for x in self.labels if x not in NOT_REPORTED]

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Run one feature window (frames x coefficients) and return float scores per label."""
        if self._in_dtype in (np.int8, np.uint8):
            q = np.round(features.reshape(self._in_shape) / self._in_scale) + self._in_zero
            np.clip(q, self._in_lo, self._in_hi, out=q)
            self._in_buf[...] = q
        else:
            self._in_buf[...] = features.reshape(self._in_shape)
        self.interpreter.set_tensor(self._in_index, self._in_buf)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._out_index).reshape(-1)
        if self._out_dtype in (np.int8, np.uint8):
            return (raw.astype(np.float32) - self._out_zero) * self._out_scale
        return raw.astype(np.float32)

"""A keyword model with a second stage: more networks that score only where the first hears something.

Several networks trained apart err in different places, and the average of their scores misses
far fewer keywords than any of them (models/README.md, "A second stage").  Running them all on
every stride would cost several networks per stride.  So a model file can carry them as a
*second stage*: the first network runs on every stride as usual; once it gives any keyword more
than ``gate``, the average of the second stage's networks (and of the first, with ``with_first``)
replaces its scores on that stride and the next ``hold_strides``; with ``period_strides`` N it scores
only the first of every N of those strides, and the first network's scores stand on the others
(half the second stage's cost at 2, for the same validation figures: models/README.md).  Only the scores the smoother
sees change, so to ``kwsd tune`` and ``kwsd label`` it is a model like any other.  The pipeline
calls ``stream_scores`` (which keeps the hold) instead of ``scores`` (one window on its own, for
clips), tells it of the strides its gates skip (``skipped()``: they count in the hold) and of a
new stream (``restart()``).

The networks ride in the one model file, after the first network's flatbuffer and before the
metadata record (kwsd/model.py); the record's ``second_stage`` gives their sizes in order:

    <first tflite> <second-stage tflite> ... <metadata JSON with second_stage> <footer>

Their labels and frontend are the first network's (the file has one metadata record).
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import ModelError
from .model import KeywordModel, make_interpreter, pack_model, unpack_model

log = logging.getLogger(__name__)
FIELD = "second_stage"
DEFAULT_GATE = 0.3  # chosen on validation audio (models/README.md): the figures of all strides, at 3-4% of them
DEFAULT_HOLD_STRIDES = 1  # 1 to 12 give the bundled model the same validation figures (models/README.md)
MAX_HOLD_STRIDES = 1000  # a sanity bound (about 80 s at the 80 ms stride), checked when packing and loading
DEFAULT_PERIOD_STRIDES = 1  # every open stride; files written before the field existed mean this
DEFAULTS = {
    "gate": DEFAULT_GATE,
    "hold_strides": DEFAULT_HOLD_STRIDES,
    "with_first": False,
    "period_strides": DEFAULT_PERIOD_STRIDES,
}


def check_second_stage(meta: dict, size: int, source: str) -> dict:
    """The ``second_stage`` record, its fields checked against the ``size`` bytes before the record."""
    s = meta.get(FIELD)
    if not isinstance(s, dict):
        raise ModelError(f"{source}: field '{FIELD}' must be an object")
    gate, hold, sizes = s.get("gate"), s.get("hold_strides"), s.get("network_bytes")
    if isinstance(gate, bool) or not isinstance(gate, (int, float)) or not 0 <= gate < 1:
        raise ModelError(f"{source}: field '{FIELD}.gate' must be a number from 0 to below 1")
    if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= MAX_HOLD_STRIDES:
        raise ModelError(f"{source}: field '{FIELD}.hold_strides' must be an integer from 0 to {MAX_HOLD_STRIDES}")
    period = s.get("period_strides", DEFAULT_PERIOD_STRIDES)
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= MAX_HOLD_STRIDES:
        raise ModelError(f"{source}: field '{FIELD}.period_strides' must be an integer from 1 to {MAX_HOLD_STRIDES}")
    if not isinstance(s.get("with_first", False), bool):
        raise ModelError(f"{source}: field '{FIELD}.with_first' must be true or false")
    if (
        not isinstance(sizes, list)
        or not sizes
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)
        or sum(sizes) >= size
    ):
        raise ModelError(f"{source}: field '{FIELD}.network_bytes' must list the sizes of the networks it carries")
    return s


def split_networks(flatbuffer: bytes, sizes: list[int]) -> tuple[bytes, list[bytes]]:
    """The first network's flatbuffer and the second stage's, in order."""
    first = len(flatbuffer) - sum(sizes)
    ends = np.cumsum([first, *sizes])
    return flatbuffer[:first], [flatbuffer[a:b] for a, b in zip(ends[:-1], ends[1:])]


def pack_cascade(
    files: list[tuple[str, bytes]],
    gate: float | None = None,
    hold_strides: int | None = None,
    with_first: bool | None = None,
    period_strides: int | None = None,
) -> bytes:
    """One model file from (name, contents) of kwsd model files: the first one's network and metadata,
    the others' networks (same labels and frontend) as its second stage; ``with_first``: the first
    network's scores join the second stage's average (they are computed anyway).  A first file that
    has a second stage already, given alone, keeps its networks and, where an option is None, its
    own value of it (so ``kwsd cascade MODEL --period-strides 2`` changes only the period)."""
    (first_name, first_file), seconds = files[0], files[1:]
    first, meta = unpack_model(first_file, f"model {first_name}")
    own = dict(DEFAULTS)
    if FIELD in meta and not seconds:
        stage = check_second_stage(meta, len(first), f"model {first_name}")
        own.update({k: stage[k] for k in DEFAULTS if k in stage})
        first, networks = split_networks(first, stage["network_bytes"])
    elif FIELD in meta or "streaming" in meta:
        raise ModelError(f"model {first_name}: has a second stage already, or is a streaming network")
    elif not seconds:
        raise ModelError("a second stage needs at least one more model file")
    else:
        networks = [_second_network(name, data, meta, first_name) for name, data in seconds]
    given = {"gate": gate, "hold_strides": hold_strides, "with_first": with_first, "period_strides": period_strides}
    stage = {k: own[k] if v is None else v for k, v in given.items()}
    meta = {**meta, FIELD: {**stage, "network_bytes": [len(n) for n in networks]}}
    return pack_model(first + b"".join(networks), meta)


def _second_network(name: str, data: bytes, meta: dict, first_name: str) -> bytes:
    """The network of a plain model file that fits the first one's labels and frontend."""
    net, other = unpack_model(data, f"model {name}")
    for key in ("labels", "frontend", "sample_rate", "clip_duration_ms"):
        if other.get(key) != meta.get(key):
            raise ModelError(f"model {name}: its '{key}' differ from those of {first_name}")
    if FIELD in other or "streaming" in other:
        raise ModelError(f"model {name}: a second stage takes plain networks, not a cascade or a streaming one")
    return net


def load_cascade(
    path: str, flatbuffer: bytes, meta: dict, backend: str, threads: int, second_stage: bool = True
) -> KeywordModel:
    """The model of a file whose record has a ``second_stage`` (kwsd.model.KeywordModel.load).

    ``second_stage=False`` (``inference.second_stage: false``): the first network alone, a plain
    model, for a board where CPU counts more than the misses the second stage saves; the file's
    recommended settings were tuned with the second stage, so give the first network's own in the
    config (``config/lite.yaml`` has the bundled model's)."""
    sizes = check_second_stage(meta, len(flatbuffer), f"model {path}")["network_bytes"]
    if "streaming" in meta:
        raise ModelError(f"model {path}: a streaming network cannot have a second stage")
    first, networks = split_networks(flatbuffer, sizes)
    if not second_stage:
        log.info("model %s: its second stage (%d network(s)) is off (inference.second_stage)", path, len(sizes))
        plain = {k: v for k, v in meta.items() if k != FIELD}
        return KeywordModel.from_flatbuffer(path, first, plain, backend, threads)
    model = CascadeKeywordModel.from_flatbuffer(path, first, meta, backend, threads)
    assert isinstance(model, CascadeKeywordModel)  # not streaming: from_flatbuffer built its own class
    model.attach(networks, model.backend)
    return model


class CascadeKeywordModel(KeywordModel):
    """The first network (this model's interpreter) and the second stage (``second``)."""

    second: list[KeywordModel]

    def attach(self, networks: list[bytes], backend: str) -> None:
        """Load the second stage's networks; each must fit the first one's input and labels."""
        s = self.metadata[FIELD]
        self.gate, self.hold, self.with_first = float(s["gate"]), int(s["hold_strides"]), s.get("with_first", False)
        self.period = int(s.get("period_strides", DEFAULT_PERIOD_STRIDES))
        self._keyword_at = np.flatnonzero([x in self.keywords for x in self.labels])
        self._stream_keyword_at = self._keyword_at  # what opens the stage in a stream: see listen
        self.second_runs = 0  # strides of streams it scored (kwsd run's closing line: what it costs)
        self.restart()
        self.second = []
        for i, net in enumerate(networks, 1):
            try:
                interpreter, used = make_interpreter(net, backend)
            except ModelError as e:
                raise ModelError(f"model {self.path}: second-stage network {i}: {e}") from None
            member = KeywordModel(self.path, self.name, self.labels, self.frontend, {}, used, interpreter)
            outputs = int(interpreter.get_output_details()[0]["shape"][-1])
            if member._in_shape != self._in_shape or outputs != len(self.labels):
                raise ModelError(f"model {self.path}: second-stage network {i} does not fit the first network")
            self.second.append(member)

    def listen(self, keyword_at: np.ndarray) -> None:
        """In streams, open the second stage only where the first network hears one of these
        (indices into the scores: the keywords the smoother reports)."""
        self._stream_keyword_at = keyword_at

    def restart(self) -> None:
        """A new stream: the second stage starts closed."""
        self._open_left = 0
        self._open_strides = 0  # strides scored since it opened: the second stage takes 1st, 1 + period, ...

    def skipped(self) -> None:
        """A stride on which the pipeline did not run the model (silence, or low scores before)."""
        self._open_left = max(0, self._open_left - 1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """One window on its own (a clip: ``kwsd label``, a teacher's batch row): the second stage
        scores it if the first network hears a keyword in it."""
        first = super().scores(features)
        return self._both(features, first) if first[self._keyword_at].max() > self.gate else first

    def stream_scores(self, features: np.ndarray) -> np.ndarray:
        """The next stride of a stream (the pipeline): the second stage also scores the ``hold``
        strides after one on which the first network heard a keyword, one in every ``period`` of them."""
        first = super().scores(features)
        if not self._open_left:
            self._open_strides = 0
        if self._stream_keyword_at.size and first[self._stream_keyword_at].max() > self.gate:
            self._open_left = self.hold + 1
        if not self._open_left:
            return first
        self._open_left -= 1
        self._open_strides += 1
        if (self._open_strides - 1) % self.period:
            return first
        self.second_runs += 1
        return self._both(features, first)

    def _both(self, features: np.ndarray, first: np.ndarray) -> np.ndarray:
        return np.mean([first] * self.with_first + [m.scores(features) for m in self.second], axis=0)

"""One feature stream: the audio of one frontend, from the source's rate to MFCC windows.

Models whose frontend parameters are equal share one of these (kwsd/pipeline.py): the resampler
to the model's rate, the stride's samples still waiting, the band fill for narrowband audio, the
watch for a microphone's noise gate, the silence gate's count of quiet strides, the streaming MFCC,
and the models (with their smoothers) that read its window.
"""

from __future__ import annotations

import logging

import numpy as np

from .audio import BandFill, StreamResampler
from .features import FrontendParams, MfccFrontend, StreamingMfcc
from .gated_input import GateWatch
from .model import KeywordModel
from .recognize import RecognizeCommands

log = logging.getLogger(__name__)
_narrow_rates_warned: set[tuple[int, int]] = set()  # (input, model) rates: warned once per process


class FrontendGroup:
    """One feature stream and the models that read it."""

    def __init__(self, params: FrontendParams, input_rate: int, stride_ms: int):
        self.params = params
        self.features = StreamingMfcc(MfccFrontend(params))
        self.resampler = StreamResampler(input_rate, params.sample_rate)
        self.stride = params.sample_rate * stride_ms // 1000
        self.band_fill = None
        if input_rate < params.sample_rate:
            # telephone audio, a Bluetooth headset's hands-free mode: resampling cannot put back
            # the band the model was trained on; quiet noise there halves the misses, no more
            self.band_fill = BandFill(input_rate, params.sample_rate, self.stride)
            if (input_rate, params.sample_rate) not in _narrow_rates_warned:
                _narrow_rates_warned.add((input_rate, params.sample_rate))
                log.warning(
                    "audio at %d Hz is below the model's %d Hz: it holds nothing above %d Hz, which the model was "
                    "trained to hear, so expect more misses (use a source at %d Hz or more)",
                    input_rate,
                    params.sample_rate,
                    input_rate // 2,
                    params.sample_rate,
                )
        self.gate_watch = GateWatch(stride_ms)  # a microphone's noise gate: warned about, once
        self.pending = np.zeros(0, np.float32)
        self.samples = 0  # model-rate samples consumed since the stream started
        # strides until the newest loud stride has left the clip window (silence gate)
        self.clip_strides = -(-params.clip_samples // self.stride) + 1
        self.loud_for = self.clip_strides
        self.models: list[tuple[KeywordModel, RecognizeCommands]] = []

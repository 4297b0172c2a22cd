"""Noticing a noise gate in the input: sound that starts, again and again, out of digital silence.

Many USB and headset microphones, and noise suppression in a sound server, pass nothing at all
while nobody speaks.  The bundled models were trained on words with a room's noise around them;
behind a gate they miss most keywords (models/README.md, "Behind a microphone's noise gate": 60%
and 80% of the test speakers' keywords behind gates at -50 and -40 dBFS, against 19% as
recorded).  Nothing in kwsd can fix that at run time (filling the gaps with noise was tried and
made the models fire on gated speech), so the user has to hear of it: a log line that says what
was seen and what to turn off, once per process.

One stride of digital silence proves nothing (a stream that starts, a source switched on, a
recording that pads its end); a gate shows itself as a sound that starts straight out of a
stretch of digital silence several times.  A real microphone's own noise stays far above the
level called silence here: with 16-bit samples even a single step of noise is about -93 dBFS.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

DIGITAL_SILENCE_DBFS = -100.0  # a stride whose RMS level is below this holds no microphone noise
SILENCE_POWER = 10.0 ** (DIGITAL_SILENCE_DBFS / 10.0)  # the same as a mean square, which the pipeline has
SHUT_MS = 160  # digital silence at least this long before a sound: a gate's hold is 50-300 ms
OPENINGS = 3  # this many sounds out of such silence: a gate, not a stream that started
_warned = False  # once per process: the user needs the hint, not a line per word


class GateWatch:
    """Counts sounds that start out of digital silence, one stride at a time; logs the hint once."""

    def __init__(self, stride_ms: int):
        self.shut_strides = -(-SHUT_MS // stride_ms)
        self.silent_for = 0  # strides of digital silence just before this one
        self.openings = 0

    def stride(self, mean_square: float) -> None:
        """Take one stride's mean square (its power relative to full scale)."""
        if mean_square < SILENCE_POWER:
            self.silent_for += 1
            return
        if self.silent_for >= self.shut_strides:
            self.openings += 1
            if self.openings >= OPENINGS:
                _warn(self.openings)
        self.silent_for = 0


def _warn(openings: int) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    log.warning(
        "audio: sound started out of digital silence %d times: a noise gate, or noise suppression, in the "
        "microphone, the sound server or the recording? The models were trained on words with a room's noise "
        "around them and miss most keywords behind a gate: turn it off (README.md, Microphones)",
        openings,
    )

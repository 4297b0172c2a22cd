"""Held-out telephone speech as an 8 kHz source, for the narrowband figures of models/README.md.

A third of the negative recordings are 8 kHz telephone prompts.  To see what a model does with
such speech arriving from an 8 kHz microphone (where kwsd resamples and fills the missing band),
this writes the band-limited recordings that training never draws from, joined with half a
second of silence between them, as 8 kHz WAVs, with the room of the other negative streams under
them when `--background FILE` is given (bench/make_eval_sets.sh passes the kitchen, mixed as
`kwsd stream make --background` mixes it; without it the gaps are digital silence, which the
default is half deaf to: models/README.md, "Negative streams with a room under them"):

    bl_val8.wav   the 'validation' and 'testing' hash splits of the training's Debian sources
                  (for choosing between models)
    bl_test8.wav  a source held out of training whole (for the test, once)

    .venv/bin/python bench/narrowband_sets.py TRAIN_DIRS HELDOUT_DIRS OUT_DIR [--background FILE]

TRAIN_DIRS and HELDOUT_DIRS are comma-separated folders, as `kwsd train --negative-dir` takes
them (bench/make_eval_sets.sh passes $DEB_NEG and asterisk-core-sounds-en-wav).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from kwsd.stream_make import BACKGROUND_VOLUME, with_background
from kwsd.train.negatives import load_pool

RATE = 16000  # the rate kwsd's negatives are read at; the files are written at half of it
SPLIT_SALT = "kwsd"  # bench/train_default.sh's --split-salt: the same hash split as training's


def write_band_limited(spec: str, sets: list[str], out: Path, background: str = "") -> None:
    """The band-limited recordings of ``sets`` under ``spec``, in the pool's order, at 8 kHz, over
    ``background`` (looped from its start) when one is named."""
    parts, minutes = [], 0.0
    for wanted in sets:
        pool, _ = load_pool(spec, RATE, wanted, 10, 10, SPLIT_SALT)
        for recording, band_limited in zip(pool.recordings, pool.band_limited):
            if band_limited:
                parts += [recording / 32768.0, np.zeros(RATE // 2)]
                minutes += len(recording) / RATE / 60
    if not parts:
        sys.exit(f"narrowband_sets: no band-limited recording in {spec}")
    audio = np.concatenate(parts)
    if background:
        audio = np.clip(with_background(audio, background, RATE, BACKGROUND_VOLUME), -1, 1)
    audio = resample_poly(audio, 1, 2).astype(np.float32)
    soundfile.write(out, audio, RATE // 2, subtype="PCM_16")
    print(f"wrote {out}: {minutes:.1f} min of band-limited speech")


def main() -> None:
    args = sys.argv[1:]
    if len(args) not in (3, 5) or (len(args) == 5 and args[3] != "--background"):
        sys.exit(__doc__)
    train_dirs, heldout_dirs, out = args[0], args[1], Path(args[2])
    background = args[4] if len(args) == 5 else ""
    out.mkdir(parents=True, exist_ok=True)
    write_band_limited(train_dirs, ["validation", "testing"], out / "bl_val8.wav", background)
    write_band_limited(heldout_dirs, ["all"], out / "bl_test8.wav", background)


if __name__ == "__main__":
    main()

"""Where the bundled files live: the default model and the sample recording.

A wheel installs them under ``<prefix>/share/kwsd/models`` (pyproject.toml data-files);
a source checkout has them in ``models/`` beside the package; a system package
puts them in /usr/share/kwsd/models.  ``$KWSD_MODEL_DIR`` comes first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODEL = "default.tflite"
SAMPLE_RECORDING = "sample.wav"


def model_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("KWSD_MODEL_DIR"):
        dirs.append(Path(os.environ["KWSD_MODEL_DIR"]))
    dirs += [
        Path(sys.prefix) / "share" / "kwsd" / "models",
        Path(__file__).resolve().parent.parent / "models",
        Path("/var/lib/kwsd/models"),
        Path("/usr/share/kwsd/models"),
    ]
    return dirs


def default_model() -> Path:
    """The bundled default model; ModelError if this installation lacks it."""
    from .errors import ModelError

    path = bundled(DEFAULT_MODEL)
    if path is None:
        raise ModelError(f"the bundled model {DEFAULT_MODEL} is not installed; give one with --model")
    return path


def bundled(name: str) -> Path | None:
    for d in model_dirs():
        if (d / name).is_file():
            return d / name
    return None

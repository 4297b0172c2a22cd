"""Checkpoints: the model and the loop's state saved after a ``--pretrain-clips`` pretraining, every
``--save-step-interval`` steps and on Ctrl-C, and read back by ``--resume`` (or
``--start-checkpoint``) to go on where it stopped."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class TrainState:
    """What a checkpoint saves beside the model (state.json), so that ``--resume`` continues."""

    step: int = 0
    best_val: float = -1.0
    best_fa: float | None = None  # the best checkpoint's false accepts per hour (--select-under-fa)
    best_step: int = 0  # the step at which the best checkpoint was saved (0: none yet)
    history: list[dict] = field(default_factory=list)


def save_checkpoint(model, state: TrainState, ckpt_dir: Path, average=None) -> None:
    """Written beside, then renamed: a crash mid-save leaves the previous checkpoint whole.
    ``average``: the running average of the weights (averaging.py), saved with them."""
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save(tmp / "model.keras")
    (tmp / "state.json").write_text(json.dumps(asdict(state)))
    if average is not None:
        average.save(tmp)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    tmp.rename(ckpt_dir)


def start_point(start_checkpoint: str, resume: bool, ckpt_dir: Path) -> str:
    """Where a run starts from: ``--start-checkpoint``, else OUT/checkpoints with ``--resume``,
    else "" (a fresh model)."""
    return start_checkpoint or (str(ckpt_dir) if resume else "")


def checkpoint_file(start: str | Path) -> Path:
    """The .keras file that ``start`` names: the file itself, or a checkpoint folder's model.keras.
    One rule for the check before TensorFlow loads (cli.check_folders) and for the load itself."""
    path = Path(start)
    return path / "model.keras" if path.is_dir() else path


def resume(start: str, s=None, prep=None):
    """The model and state saved at ``start`` (a checkpoint folder or a .keras file), or a model
    file's network rebuilt at step 0 (from_model_file.py; it needs the settings and prepared data)."""
    import keras

    from .from_model_file import is_model_file, rebuild

    if is_model_file(start):
        return rebuild(start, s, prep), TrainState()
    path = Path(start)
    file = checkpoint_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such checkpoint")
    try:
        model = keras.models.load_model(file)
    except Exception as e:  # Keras says "File not found" of a file that is there but is no checkpoint
        raise ValueError(
            f"{file}: not a checkpoint of kwsd train (a .keras file): {str(e).splitlines()[0][:200]}"
        ) from None
    state = saved_state((path if path.is_dir() else path.parent) / "state.json")
    print(f"resuming from {start} at step {state.step}", flush=True)
    return model, state


def saved_state(state_file: Path) -> TrainState:
    """The loop's state saved beside a checkpoint (a fresh one where there is none)."""
    saved = json.loads(state_file.read_text()) if state_file.exists() else {}
    known = {f.name for f in fields(TrainState)}  # a checkpoint of another kwsd version may have more
    return TrainState(**{k: v for k, v in saved.items() if k in known})

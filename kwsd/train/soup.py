"""``--soup RUN,RUN,...``: one network made of several runs, by averaging their weights.

Networks of one recipe at different seeds go wrong in different places: the average of their
scores misses far fewer keywords than any of them, but a model file runs one network per stride
(models/README.md, "An ensemble of trained networks as the teacher"). Runs that start from one
pretrained network (``--pretrain-only``, then ``--start-checkpoint PARENT/pretrained.keras`` at
other seeds) stay close enough that the element-wise average of their weights is itself a network,
at the cost of one ("model soups", Wortsman et al. 2022): it labels clips as well as they do. Runs
from different starting points do not: in a trial their average labelled 7.5% of the validation
clips right. Tried with the bundled recipe, the soup of four such runs missed more keywords in a
stream than any of them (models/README.md, "A soup"): the option is there to try it again.

The members' batch-normalization statistics do not describe the averaged network's activations;
averaged as they are, the network took far more speech for keywords in a trial (22 false accepts
against 5). So they are measured again, on training batches made as in training (REPAIR, Jordan
et al. 2022)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def member_paths(option: str) -> list[Path]:
    """The checkpoint of each ``--soup`` run folder (the weights at its last step)."""
    runs = [r for r in option.split(",") if r]
    if len(runs) < 2:
        raise ValueError("--soup: give two or more run folders, comma-separated")
    paths = [Path(r) / "checkpoints" / "model.keras" for r in runs]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"--soup: {path} not found (a run folder of kwsd train, with its checkpoints)")
    return paths


def averaged_model(paths: list[Path]):
    """The first member, its weights replaced by the element-wise mean of all members' weights."""
    import keras

    members = [keras.models.load_model(p) for p in paths]
    shapes = [w.shape for w in members[0].get_weights()]
    for path, member in zip(paths[1:], members[1:]):
        if [w.shape for w in member.get_weights()] != shapes:
            raise ValueError(f"--soup: {path} is another network than {paths[0]} (architecture or classes)")
    model = members[0]
    model.set_weights([np.mean(ws, axis=0) for ws in zip(*(m.get_weights() for m in members))])
    return model


def export_soup(s, prep, out: Path) -> dict:
    """The ``--soup`` runs' average, its batch normalization measured again, exported and reported."""
    from .checkpoint import TrainState, save_checkpoint, saved_state
    from .loop import exported, start_batches
    from .report import export_and_report

    paths = member_paths(s.soup)
    model = averaged_model(paths)
    batches = start_batches(s, prep, None, 0)
    try:
        recalibrate_batch_norm(model, batches, s.soup_batches)
    finally:
        batches.close()
    print(f"soup: the average of {len(paths)} runs' weights, batch normalization measured again", flush=True)
    state = TrainState(step=saved_state(paths[0].parent / "state.json").step)  # the members' steps, no history
    save_checkpoint(model, state, out / "checkpoints")  # the soup's weights, as a run keeps its own
    return export_and_report(s, prep, exported(model, prep), state, out, 0.0, batches, state.step)


def recalibrate_batch_norm(model, batches, count: int) -> None:
    """Batch normalization's running statistics, measured on ``count`` training batches."""
    for _ in range(count):
        features, _targets = batches.next()
        model(features, training=True)  # updates the running statistics; the weights stay as they are

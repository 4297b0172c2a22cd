"""Clip accuracy (12 classes) of model files on the bundled recipe's validation and test clips.

    MODELS=models/default.tflite,OTHER.tflite \
      KWSD=".venv/bin/python bench/clip_accuracy.py" sh bench/train_default.sh

``bench/train_default.sh`` hands this script the recipe's ``kwsd train`` arguments instead of
training, so the clips are the ones its report counts: the same speakers, the same seeded
choice of ``_silence_`` and ``_unknown_`` clips.  Each file is loaded the way ``kwsd run``
loads it and scores each clip alone (a two-stage model runs its second stage on a clip in
which its first network hears a keyword): the report of a training run measures only the
network it exported, this measures any file, cascades included.  Needs the ``[train]`` extra.
"""

import os
import sys

from kwsd.train.cli import build_parser, quiet_tensorflow, settings_from


def main(argv: list[str]) -> int:
    quiet_tensorflow()
    settings = settings_from(build_parser().parse_args(argv[1:]))  # argv[0] is "train"
    from kwsd.model import KeywordModel
    from kwsd.train.export import evaluate
    from kwsd.train.loop import prepare

    prep = prepare(settings)
    for path in os.environ["MODELS"].split(","):
        model = KeywordModel.load(path)
        if model.labels != prep.display_labels(binary=False):  # scores are compared by position
            print(f"clip_accuracy: {path}: labels {model.labels} are not the clips' {prep.display_labels(False)}")
            return 1
        figures = []
        for split in ("validation", "testing"):
            labels = prep.data[split][1]
            accuracy, _ = evaluate(model, prep.eval_features[split], labels, binary=False)
            figures.append(f"{split} {accuracy:.1%} of {len(labels)}")
        print(f"clip accuracy of {path}: {', '.join(figures)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

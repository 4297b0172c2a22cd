"""``kwsd cascade``: pack a first network and a second stage into one model file
(kwsd/cascade_model.py), or change the gate, hold or period of a file that has one."""

from __future__ import annotations

from .errors import EXIT_OK, KwsdError, UsageError


def add_cascade_parser(sub, common) -> None:
    cascade = sub.add_parser(
        "cascade",
        parents=[common],
        help="one model file from a first network and a second stage that scores only where the first hears something",
    )
    cascade.add_argument("first", metavar="FIRST.tflite", help="the network that runs on every stride")
    cascade.add_argument(
        "second",
        nargs="*",
        metavar="SECOND.tflite",
        help="networks whose scores are averaged (none: FIRST's own second stage, with the options given)",
    )
    cascade.add_argument("--out", required=True, metavar="OUT.tflite", help="the model file to write")
    cascade.add_argument(
        "--gate",
        type=float,
        default=None,
        help="the first network's keyword score that wakes the second stage (default 0.3)",
    )
    cascade.add_argument(
        "--with-first", action="store_true", help="average the first network's scores in with the second stage's"
    )
    cascade.add_argument(
        "--hold-strides", type=int, default=None, help="strides the second stage keeps scoring after that (default 1)"
    )
    cascade.add_argument(
        "--period-strides", type=int, default=None, help="score one of every N of those strides (default 1: all)"
    )


def cmd_cascade(args) -> int:
    """Pack the model files into one (kwsd/cascade_model.py), then load it as kwsd run would."""
    from pathlib import Path

    from .cascade_model import MAX_HOLD_STRIDES, CascadeKeywordModel, pack_cascade
    from .model import KeywordModel, read_model_file

    gate, hold, period = args.gate, args.hold_strides, args.period_strides
    if (
        (gate is not None and not 0 <= gate < 1)
        or (hold is not None and not 0 <= hold <= MAX_HOLD_STRIDES)
        or (period is not None and not 1 <= period <= MAX_HOLD_STRIDES)
    ):
        raise UsageError(
            f"--gate must be from 0 to below 1, --hold-strides from 0 and --period-strides from 1 to {MAX_HOLD_STRIDES}"
        )
    files = [(path, read_model_file(path)) for path in [args.first, *args.second]]
    with_first = True if args.with_first else None
    out = Path(args.out)
    if out.exists() and any(out.samefile(path) for path, _ in files):  # it would replace a network for good
        raise UsageError(f"--out {out} is one of the networks to pack; write the model to another file")
    try:
        out.write_bytes(pack_cascade(files, gate, hold, with_first, period))
    except OSError as e:
        raise KwsdError(f"cannot write {out} ({e.strerror or e})") from None
    try:
        model = KeywordModel.load(out)  # every network checked by the interpreter, as kwsd run will
    except KwsdError:
        out.unlink()
        raise
    assert isinstance(model, CascadeKeywordModel)
    first = ", with the first" if model.with_first else ""
    every = f", one in {model.period}" if model.period > 1 else ""
    print(
        f"wrote {out}: {Path(args.first).name} and {len(model.second)} second-stage network(s) (gate "
        f"{model.gate:g}, hold {model.hold} stride(s){every}{first}), with the first model's smoother settings: "
        f"tune them with kwsd tune --model {out}"
    )
    return EXIT_OK

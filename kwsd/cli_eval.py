"""The measuring commands of the CLI: ``kwsd stream make``, ``kwsd stream eval`` and
``kwsd tune`` (their parsers and what they run). They need the ``[eval]`` extra (tqdm,
matplotlib, soundfile), imported only when one of them runs."""

from __future__ import annotations

import argparse

from .errors import EXIT_OK, KwsdError, UsageError


def add_stream_parsers(sub, common) -> None:
    stream = sub.add_parser("stream", help="make evaluation streams and measure a model on them")
    stream_sub = stream.add_subparsers(dest="stream_command", metavar="make|eval")
    stream_sub.required = True
    make = stream_sub.add_parser("make", parents=[common], help="build a test stream (WAV + label,ms truth file)")
    make.add_argument("--out", required=True, metavar="STREAM.wav", help="the stream; its truth goes to STREAM.txt")
    make.add_argument("--data-dir", default="", help="Speech Commands layout folder(s), comma-separated")
    make.add_argument(
        "--negative-dir", default="", help="instead: folders of long recordings (no keywords) to concatenate"
    )
    make.add_argument("--wanted-words", default="yes,no,up,down,left,right,on,off,stop,go")
    make.add_argument(
        "--set",
        default="testing",
        choices=("training", "validation", "testing", "all"),
        help="which split to draw from (speakers, or negative file names), as in training",
    )
    make.add_argument("--split-salt", default="", help="the salt given to 'kwsd train'")
    make.add_argument("--validation-percentage", type=float, default=10.0)
    make.add_argument("--testing-percentage", type=float, default=10.0)
    make.add_argument("--background", default="", help="a noise recording under the whole stream")
    make.add_argument("--background-volume", type=float, default=0.1)
    make.add_argument(
        "--duration-s", type=float, default=600.0, help="length (with --negative-dir, 0 = every recording of the split)"
    )
    make.add_argument("--word-gap-ms", type=int, default=2000, help="mean pause between clips")
    make.add_argument(
        "--unknown-percentage",
        type=float,
        default=20.0,
        help="share of clips that are other words (never to be detected)",
    )
    make.add_argument("--seed", type=int, default=1)
    ev = stream_sub.add_parser("eval", parents=[common], help="run the pipeline over streams and score it")
    ev.add_argument(
        "wavs",
        nargs="+",
        metavar="STREAM.wav",
        help="streams; truth is read from STREAM.txt beside each (none = no keyword in it)",
    )
    ev.add_argument("--model", action="append", help="model file; repeat for several (default: bundled)")
    ev.add_argument("--config", help="YAML config whose recognize: section is used")
    ev.add_argument(
        "--tolerance-ms",
        type=_milliseconds,
        default=750,
        help="how long after a clip's end a detection still counts (default 750)",
    )
    ev.add_argument("--json", action="store_true", help="one JSON object with every figure")
    ev.add_argument("--events", action="store_true", help="also list every detection and what it was")


def add_tune_parser(sub, common) -> None:
    tune = sub.add_parser("tune", parents=[common], help="choose thresholds and smoothing from measured streams")
    tune.add_argument("--model", help="model file (default: bundled)")
    tune.add_argument(
        "--config",
        help="YAML config whose inference: settings (gates, stride, backend) and recognize.keywords kwsd run will use",
    )
    tune.add_argument("--stream", action="append", metavar="STREAM.wav", help="keyword stream with STREAM.txt")
    tune.add_argument("--negative", action="append", metavar="FILE.wav", help="recording with no keyword")
    tune.add_argument("--keywords", help="tune for these alone, e.g. stop,go (default: the config's, else all)")
    tune.add_argument("--target-fa", type=float, default=0.5, help="false accepts per hour allowed (default 0.5)")
    tune.add_argument(
        "--max-delay-ms",
        type=float,
        default=None,
        help="only settings that detect within this many ms of the word's end (median on the --stream "
        "recordings); shorter windows answer sooner and may miss more",
    )
    tune.add_argument("--out", required=True, help="folder for recognize.yaml, det.png, tune.json")
    tune.add_argument("--write-model", metavar="OUT.tflite", help="also write the model with these settings inside")
    tune.add_argument(
        "--clip-stride-ms",
        type=int,
        default=None,
        help="how often the model runs, as inference.clip_stride_ms in kwsd run (default: the config's, else "
        "the model's recommended stride, else 40); the settings are tuned for this stride and --write-model stores it",
    )
    _add_grid_options(tune)


def _add_grid_options(tune) -> None:
    """The grid that ``kwsd tune`` replays the smoother over."""
    from .tune_grid import Grid

    grid = Grid()  # the defaults live in kwsd/tune_grid.py, apart from the search (kwsd run builds this parser too)
    tune.add_argument(
        "--windows",
        type=_int_list,
        default=list(grid.windows),
        help=f"average windows, ms (default {_csv(grid.windows)})",
    )
    tune.add_argument(
        "--minimum-counts",
        type=_int_list,
        default=list(grid.minimum_counts),
        help=f"minimum counts (default {_csv(grid.minimum_counts)})",
    )
    tune.add_argument(
        "--suppressions",
        type=_int_list,
        default=list(grid.suppressions),
        help=f"suppressions, ms (default {_csv(grid.suppressions)})",
    )
    tune.add_argument(
        "--thresholds",
        type=_float_list,
        default=list(grid.thresholds),
        help=f"thresholds to sweep (default {_csv(grid.thresholds)})",
    )
    tune.add_argument(
        "--quick-thresholds",
        type=_float_list,
        default=list(grid.quick_thresholds),
        help="also try the quick rule (report a keyword whose average over --quick-window-ms exceeds one of "
        "these) besides none; it answers sooner. Keep a long --windows and check the result on other audio: "
        "short words that the tuning audio lacks may set it off",
    )
    tune.add_argument(
        "--quick-window-ms",
        type=_milliseconds,
        default=grid.quick_window_ms,
        help=f"the quick rule's window (default {grid.quick_window_ms}: three results at an 80 ms stride)",
    )


def _csv(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def _milliseconds(text: str) -> int:
    value = _int_list(text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one whole number of milliseconds")
    return value[0]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value, none negative")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = sorted(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value, each 0..1")
    return values


def _needs_eval_extra(error: ImportError) -> KwsdError:
    return KwsdError(f"this command needs the evaluation extra: pip install 'kwsd[eval]' ({error})")


def cmd_stream(args) -> int:
    try:
        return _stream(args)
    except ImportError as e:
        raise _needs_eval_extra(e) from None


def _stream(args) -> int:
    if args.stream_command == "make":
        from .stream_make import StreamSpec, make_stream

        if bool(args.data_dir) == bool(args.negative_dir):
            raise UsageError("kwsd stream make needs --data-dir (a keyword stream) or --negative-dir, not both")
        spec = StreamSpec(**{k: v for k, v in vars(args).items() if k in StreamSpec.__dataclass_fields__})
        try:
            make_stream(spec)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            raise KwsdError(str(e)) from None
        return EXIT_OK
    return _stream_eval(args)


def _stream_eval(args) -> int:
    import json

    from .config import load_config
    from .daemon import load_models
    from .streams import combine, evaluate_file, format_summary

    config = load_config(args.config)
    models = load_models(args.model, config)
    figures = []
    for wav in args.wavs:
        try:
            figures.append(
                evaluate_file(
                    models,
                    wav,
                    recognize=config.recognize.overrides(),
                    clip_stride_ms=config.inference.clip_stride_ms,
                    tolerance_ms=args.tolerance_ms,
                    silence_gate_dbfs=config.inference.silence_gate_dbfs,
                    score_gate=config.inference.score_gate,
                )
            )
        except ValueError as e:
            raise KwsdError(str(e)) from None
    total = combine(figures)
    summary = total.summary()
    if args.events:
        summary["events"] = total.events
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        if args.events:
            for event in total.events:
                print(f"{event['audio_ms'] / 1000:9.2f} s  {event['keyword']:<8} {event['score']:.2f}  {event['is']}")
        print(format_summary(summary))
    return EXIT_OK


def cmd_tune(args) -> int:
    try:
        from .tune import main as tune_main

        return tune_main(args)
    except ImportError as e:
        raise _needs_eval_extra(e) from None
    except (ValueError, FileNotFoundError) as e:
        raise KwsdError(str(e)) from None

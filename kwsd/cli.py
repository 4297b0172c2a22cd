"""The ``kwsd`` command: run, devices, check-config, label, stream, tune, cascade, train.

Exit status: 0 success, 2 usage error, 78 configuration error, 1 anything else.
Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from . import __version__
from .cli_cascade import add_cascade_parser, cmd_cascade
from .cli_eval import add_stream_parsers, add_tune_parser, cmd_stream, cmd_tune
from .errors import EXIT_FAILURE, EXIT_OK, KwsdError

log = logging.getLogger("kwsd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kwsd", description="Streaming keyword spotting (wake words).")
    parser.add_argument("--version", action="version", version=f"kwsd {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # --debug also after the command; SUPPRESS keeps `kwsd --debug run` working too
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="debug logging and tracebacks")
    _add_run_parsers(sub, common)
    add_stream_parsers(sub, common)
    add_tune_parser(sub, common)
    add_cascade_parser(sub, common)
    # its options are parsed by kwsd.train.cli, which is only imported when [train] is installed
    sub.add_parser("train", help="train a model (needs the [train] extra); see 'kwsd train --help'", add_help=False)
    return parser


def _add_run_parsers(sub, common) -> None:
    """run, devices, check-config, label: the daemon and its helpers."""
    run = sub.add_parser("run", parents=[common], help="listen (microphone, WAV file or stdin) and report keywords")
    run.add_argument("--config", help="YAML config (default: $KWSD_CONFIG, then /etc/kwsd/kwsd.yaml)")
    run.add_argument("--model", action="append", help="model file; repeat to run several (default: bundled)")
    run.add_argument(
        "--input",
        metavar="FILE.wav|-",
        help="read a WAV file, or '-' for raw S16_LE 16 kHz mono on stdin, instead of the microphone",
    )
    run.add_argument("--realtime", action="store_true", help="pace --input at real time")
    run.add_argument("--json", action="store_true", help="print one JSON object per detection on stdout")

    sub.add_parser("devices", parents=[common], help="list audio input devices")

    check = sub.add_parser(
        "check-config", parents=[common], help="validate the config and print the effective configuration"
    )
    check.add_argument("--config")

    label = sub.add_parser("label", parents=[common], help="print the top labels of short WAV clips")
    label.add_argument("--model", help="model file (default: bundled)")
    label.add_argument("--json", action="store_true", help="one JSON object per file")
    label.add_argument("files", nargs="+", metavar="FILE.wav")


def setup_logging(level: str, debug: bool) -> None:
    """Plain 'kwsd: message' lines on stderr; under systemd, journald with structured fields."""
    from .service import JournalHandler, under_journald

    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler = JournalHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if debug else getattr(logging, level.upper()),
        format="kwsd: %(message)s",
        handlers=[handler],
        force=True,
    )


# SIGHUP (reload) may arrive while models load, before the daemon's own handler exists;
# its default action would kill kwsd. Until then it is only remembered, and the daemon
# reloads once it runs.
EARLY_RELOAD = threading.Event()


def _remember_reload(_signum, _frame) -> None:
    EARLY_RELOAD.set()


def _reopen_closed_standard_fds() -> None:
    """Started with stderr closed (``2>&-``), the next file kwsd opens would become fd 2 and
    receive whatever the C++ runtimes write there; /dev/null takes that place instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)


def main(argv=None) -> int:
    _reopen_closed_standard_fds()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, _remember_reload)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # exits 2 on usage errors
    if args.command == "train":
        args.train_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging("info", args.debug)
    try:
        return COMMANDS[args.command](args)
    except KwsdError as e:
        if args.debug:
            log.exception("error")
        print(f"kwsd: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our output went away (`kwsd stream eval ... | head -1`): stop quietly,
        # as a shell tool does
        from .sinks.console import stdout_to_devnull

        stdout_to_devnull()
        return 141


# --------------------------------------------------------------------------- commands


def cmd_run(args) -> int:
    from .config import load_config
    from .daemon import Daemon

    config = load_config(args.config)
    setup_logging(config.log.level, args.debug)
    return Daemon(
        config,
        config_path=args.config,
        model_paths=args.model,
        input_path=args.input,
        realtime=args.realtime,
        json_output=args.json,
        reload_requested=EARLY_RELOAD,
    ).run()


def cmd_devices(args) -> int:
    from .microphone import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found")
        return EXIT_FAILURE
    print(f"{'index':>5}  {'rate':>7}  {'ch':>3}  name (host API)")
    for d in devices:
        print(f"{d['index']:>5}  {int(d['default_samplerate']):>7}  {d['channels']:>3}  {d['name']} ({d['hostapi']})")
    return EXIT_OK


def cmd_check_config(args) -> int:
    from .config import dump_config, load_config

    print(dump_config(load_config(args.config)), end="")
    return EXIT_OK


def cmd_label(args) -> int:
    from .label import label_files

    return label_files(args.files, args.model, args.json)


def cmd_train(args) -> int:
    try:
        from .train.cli import main as train_main
    except ImportError as e:
        raise KwsdError(f"'kwsd train' needs the training extra: pip install 'kwsd[train]' ({e})") from None
    return train_main(args.train_args, debug=args.debug)


COMMANDS = {
    "run": cmd_run,
    "devices": cmd_devices,
    "check-config": cmd_check_config,
    "label": cmd_label,
    "train": cmd_train,
    "stream": cmd_stream,
    "tune": cmd_tune,
    "cascade": cmd_cascade,
}

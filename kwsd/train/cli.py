"""``kwsd train``: options named as in TensorFlow's speech_commands train.py
(``--data-dir`` or ``--data_dir``), or the same keys in a YAML file (``--config``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path

import yaml

from ..errors import ConfigError, KwsdError
from ..limits import CONFIG_MAX_BYTES, read_bounded
from ..strict_yaml import load_yaml
from .settings import ARCHITECTURES, TrainSettings

HELP = {
    "data_dir": "dataset folder(s), comma-separated: a folder per word, optional _background_noise_/",
    "data_url": "a .tar.gz to download (into ~/.cache/kwsd) and extract, resumable",
    "background_dir": "folder of background noise WAVs (default: DATA_DIR/_background_noise_)",
    "extra_training_dir": "comma-separated folders (same layout) added to the training set only, e.g. "
    "synthetic speech from 'python -m kwsd.train.tts'",
    "wanted_words": "comma-separated keywords; other words become _unknown_",
    "split_salt": "salt for the speaker hash; needed to split a canonical test set on its own",
    "spec_augment": "add SpecAugment time/frequency masks",
    "model_architecture": "tiny_conv, conv, low_latency_conv, ds_cnn, ds_cnn_m (wider), "
    "ds_cnn_stream (exported as a streaming model), "
    "ds_cnn_stream_no_c0, tc_resnet8 or tc_resnet8_w1",
    "level_invariant": "measure c0 (the frame's log energy) from the loudest frame of each window, in a fixed "
    "layer of the model: speech turned down or up gives the same scores (the model file and its cost stay the same)",
    "binary": "one keyword, sigmoid output (the 'stop / not stop' tutorial)",
    "how_many_training_steps": "steps per learning-rate phase, e.g. 15000,3000",
    "learning_rate": "learning rate per phase, e.g. 0.001,0.0001",
    "average_weights": "keep a running average of the weights with this decay per step (e.g. 0.999: about the "
    "last thousand steps) and export the final average instead of the best checkpoint; its validation accuracy "
    "is reported beside the trained weights' (default 0: off)",
    "start_checkpoint": "a checkpoint folder or .keras file to start from, or a model file (.tflite: "
    "its network that fits --model-architecture, e.g. the bundled default's, to train further on your data)",
    "resume": "continue from OUT/checkpoints after Ctrl-C or a crash",
    "out": "output folder: model.tflite, report.json, plots, checkpoints",
    "float_model": "also keep model_float.tflite",
    "name": "model name reported in detections (default: the architecture)",
    "negative_dir": "folders of long recordings of anything but the keywords (WAV, FLAC, OGG; any rate), "
    "comma-separated, each with an optional :WEIGHT; their training split (a hash of the file "
    "name, like speakers) is cut into random clips for _unknown_",
    "negative_percentage": "share of each batch cut from --negative-dir recordings (e.g. 30)",
    "isolated_percentage": "share of each batch made of short pieces of the --negative-dir speech (0.15-0.9 s, "
    "from a pause or a dip between syllables to another, like one spoken word), each alone in its window as a "
    "keyword is in its clip, as _unknown_",
    "late_shift_ms": "spoken clips may also move up to this many ms later in the window than --time-shift-ms "
    "allows, as long as the word stays whole (e.g. 300): the model also learns words that have just ended, so "
    "that a stream's detection comes sooner after the word (default 0: off)",
    "partial_percentage": "share of each batch made of keywords cut to their start or end, as _unknown_",
    "narrowband_percentage": "share of clips heard as an 8 kHz microphone gives them (a Bluetooth headset in "
    "hands-free mode, a telephone line): taken down to 8 kHz and back up as kwsd resamples such audio, with kwsd's "
    "quiet noise above 4 kHz, so that the model also knows words without that band (default 0: off)",
    "fill_narrowband_negatives": "give --negative-dir recordings that hold nothing above 4 kHz (8 kHz telephone "
    "prompts) the quiet noise that kwsd adds to an 8 kHz source, as kwsd would hear them from such a source; without "
    "it the model may learn 'an empty upper band means no keyword'; use it with --narrowband-percentage, or the model "
    "learns 'quiet noise above 4 kHz, no keyword' instead (default: off)",
    "gate_percentage": "share of spoken clips (keywords, other words, negatives) heard through a microphone's noise "
    "gate: digital silence wherever the clip stays 20-40 dB under its loudest 10 ms for longer than a 50-300 ms hold, "
    "as many USB and headset microphones give words (default 0: off)",
    "rir_dir": "folder of measured room impulse responses for --reverb-percentage",
    "reverb_percentage": "share of clips put in a room: a measured response (--rir-dir) or a simulated one",
    "gain_db": "random gain range in dB applied to every spoken clip, e.g. -12,6",
    "unknown_word_classes": "train each other word of --data-dir as a class of its own (folded into _unknown_ "
    "in the exported model), so the model learns what each non-keyword sounds like",
    "speed_range": "random speed factor range (tempo and pitch together) applied to every spoken clip, "
    "e.g. 0.9,1.1: voices the recorded speakers do not cover",
    "mine_hard_negatives": "before each learning-rate phase after the first, run the model over the negative "
    "recordings and train on the windows it takes for a keyword",
    "hard_negative_threshold": "a negative window scoring above this for any keyword is mined (default 0.3)",
    "select_under_fa": "choose the exported checkpoint by its false accepts per hour (windows scoring above "
    "--hard-negative-threshold) on the validation split of the --negative-dir recordings: the best validation "
    "accuracy among the checkpoints at or below this rate, else the fewest false accepts (microWakeWord's rule; "
    "default: off, the best validation accuracy as in TensorFlow's train.py)",
    "hard_negative_percentage": "share of each batch drawn from the mined windows (default 10)",
    "hard_negative_teacher_veto": "with --mine-hard-negatives and --teacher-dir: a mined window in which the "
    "teacher hears a keyword with at least this probability is left out (speech without transcripts says a "
    "keyword now and then, and a real one must not be taught as _unknown_); e.g. 0.5 (default 0: off)",
    "export_last": "export the weights of the last step instead of the checkpoint with the best validation accuracy "
    "(which can come from before the hard-negative mining); the networks of the bundled model's second stage",
    "teacher_dir": "folder with a pretrained speech embedding (melspectrogram.tflite, embedding_model.tflite; "
    "sh bench/fetch_teacher.sh DIR) that teaches the model: a head on it is trained and scores each "
    "training clip once, then every target mixes the true label with its soft label (knowledge distillation)",
    "distill_weight": "with --teacher-dir: share of the teacher's soft label in each target (default 0.5)",
    "distill_temperature": "with --teacher-dir: softens the teacher's probabilities (default 2)",
    "ensemble_teacher": "kwsd model files (.tflite, e.g. the same recipe trained at other seeds), comma-separated: "
    "every training target, negatives included, mixes the label with their average scores for that augmented "
    "window (ensemble distillation; they must have the trained labels and features)",
    "ensemble_weight": "with --ensemble-teacher: share of the ensemble's scores in each target (default 0.5)",
    "pretrain_clips": "with --teacher-dir: before training, the fresh network learns to predict the speech "
    "embedding from the MFCCs of this many augmented training clips (e.g. 40000; the embedding runs once per "
    "clip, about 6 ms): what it hears, passed on (default 0: no pretraining)",
    "pretrain_epochs": "passes over the --pretrain-clips set (default 12)",
    "pretrain_only": "with --pretrain-clips: stop after the pretraining and save OUT/pretrained.keras, the common "
    "start (--start-checkpoint) of runs whose weights --soup averages",
    "soup": "run folders of kwsd train, comma-separated, that started from one network (--start-checkpoint: a "
    "--pretrain-only network or a trained run's) at other seeds or settings: instead of training, export the "
    "average of their final weights (batch normalization measured again on training batches) with these "
    "settings: one network that costs what one of them costs",
    "soup_batches": "with --soup: training batches on which batch normalization's statistics are measured again "
    "(default 500: at its momentum of 0.99, what the averaged statistics said weighs 0.7%% after them)",
    "teacher_pool_percentage": "with --pretrain-clips: share of each batch drawn from the pretraining clips, "
    "whose targets mix the label with the teacher's view of that very (augmented) audio; the other targets "
    "carry its view of the clean clip (default 0)",
    "eval_stream": "WAV streams made by 'kwsd stream make' (truth in FILE.txt beside), comma-separated: "
    "false-reject rate reported at the end",
    "eval_negative": "WAV recordings with no keyword, comma-separated: false accepts per hour reported at the end",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kwsd train", description="Train a keyword model and export it for kwsd run.")
    p.add_argument("--config", help="YAML file with the same keys as the options")
    for f in fields(TrainSettings):
        names = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        if f.type == "bool":
            p.add_argument(*names, dest=f.name, action="store_true", default=None, help=HELP.get(f.name))
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(*names, dest=f.name, type=kind, default=None, help=HELP.get(f.name), metavar=f.name.upper())
    return p


def settings_from(args) -> TrainSettings:
    values = {}
    if args.config:
        try:
            data = load_yaml(read_bounded(args.config, CONFIG_MAX_BYTES).decode("utf-8")) or {}
        except (OSError, ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"train config {args.config}: {str(e)[:200]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"train config {args.config}: must be a mapping of option names")
        known = {f.name: f for f in fields(TrainSettings)}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ConfigError(f"train config {args.config}: {key}: unknown key")
            values[name] = value
    for f in fields(TrainSettings):
        v = getattr(args, f.name)
        if v is not None:
            values[f.name] = v
    settings = TrainSettings(**values)
    if not settings.out:
        raise ConfigError("kwsd train needs --out DIR")
    if not settings.data_dir and not settings.data_url:
        raise ConfigError("kwsd train needs --data-dir or --data-url")
    if settings.model_architecture not in ARCHITECTURES:
        raise ConfigError(
            f"--model-architecture {settings.model_architecture}: unknown architecture; "
            f"choose one of {', '.join(ARCHITECTURES)}"
        )
    try:
        settings.schedule()
        settings.gain_range()
        settings.speed_factors()
        settings.check_shares()
        settings.check_ranges()
        settings.frontend().validate()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_files(settings)
    if settings.teacher_dir:
        from .teacher import missing_files

        if missing := missing_files(settings.teacher_dir):
            raise ConfigError(
                f"--teacher-dir: {', '.join(missing)} missing (sh bench/fetch_teacher.sh DIR fetches them)"
            )
    return settings


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up and converter chatter, hidden (``kwsd --debug train`` shows it)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def check_folders(settings: TrainSettings) -> None:
    """Every folder and file a flag names must be there: before, a missing --background-dir
    trained without noise, and the others failed only after TensorFlow and the clips had loaded."""
    from .checkpoint import checkpoint_file
    from .negatives import parse_dirs

    def names(spec: str) -> list[str]:
        return [p for p in spec.split(",") if p]

    wanted = [("--background-dir", [settings.background_dir] if settings.background_dir else [])]
    if not settings.data_url:  # with --data-url, --data-dir is where the download goes
        wanted.append(("--data-dir", names(settings.data_dir)))
    wanted.append(("--extra-training-dir", names(settings.extra_training_dir)))
    try:
        wanted.append(("--negative-dir", [folder for folder, _ in parse_dirs(settings.negative_dir)]))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    wanted.append(("--rir-dir", [settings.rir_dir] if settings.rir_dir else []))
    for flag, folders in wanted:
        for folder in folders:
            if not Path(folder).is_dir():
                raise ConfigError(f"{flag} {folder}: no such folder")
    for path in names(settings.ensemble_teacher):
        if not Path(path).is_file():
            raise ConfigError(f"--ensemble-teacher {path}: no such file")
    start = settings.start_checkpoint
    if start and not checkpoint_file(start).is_file():
        what = "no model.keras in that folder" if Path(start).is_dir() else "no such file"
        raise ConfigError(f"--start-checkpoint {start}: {what}")
    saved = Path(settings.out) / "checkpoints"
    if settings.resume and not start and not checkpoint_file(saved).is_file():
        when = "after its pretraining and every --save-step-interval"
        raise ConfigError(f"--resume: no checkpoint in {saved} (a run saves one {when})")


def check_files(settings: TrainSettings) -> None:
    """The --soup runs and the streams measured at the end, checked now, before TensorFlow loads:
    a typo should not cost a whole training."""
    from ..errors import AudioError
    from ..streams import truth_path
    from ..wavfile import WavReader
    from .from_model_file import check_model_file, is_model_file
    from .soup import member_paths

    check_folders(settings)
    if is_model_file(settings.start_checkpoint):
        check_model_file(settings)
    if settings.soup:
        try:
            member_paths(settings.soup)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    for flag, paths in (("--eval-stream", settings.eval_stream), ("--eval-negative", settings.eval_negative)):
        for path in filter(None, paths.split(",")):
            try:
                WavReader(path).close()
            except AudioError as e:
                raise ConfigError(f"{flag} {e}") from None
            if flag == "--eval-stream" and not truth_path(path).is_file():
                raise ConfigError(f"{flag} {path}: its truth file {truth_path(path)} is missing (kwsd stream make)")


def _stop_as_ctrl_c(signum, frame):
    """``kill``, ``timeout`` and ``systemctl stop`` send SIGTERM: the run saves a checkpoint to
    ``--resume`` from, as it does on Ctrl-C, instead of losing the steps since the last one."""
    raise KeyboardInterrupt


def main(argv=None, debug: bool = False) -> int:
    if not debug:
        quiet_tensorflow()
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    if settings.data_url:
        from .download import fetch_dataset

        try:
            settings.data_dir = fetch_dataset(settings.data_url, settings.data_dir or None)
        except (OSError, ValueError) as e:
            raise KwsdError(f"--data-url {settings.data_url}: {e}") from None
    from .loop import run_training

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
    try:
        report = run_training(settings)
    except (ValueError, FileNotFoundError) as e:
        raise KwsdError(str(e)) from None
    if settings.pretrain_only:
        print(f"wrote {settings.out}/pretrained.keras: start runs from it with --start-checkpoint", file=sys.stderr)
        return 0
    print(
        f"wrote {settings.out}/model.tflite ({report['int8']['bytes']} bytes), report.json and plots", file=sys.stderr
    )
    return 0

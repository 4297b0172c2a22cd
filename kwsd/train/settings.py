"""The options of ``kwsd train`` as one dataclass, importable without TensorFlow (the CLI
checks them before the slow import)."""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass

from ..features import FrontendParams
from ..limits import check_ranges

# the model builders in architectures.py, by name; listed here so that the CLI can check
# --model-architecture without importing Keras
ARCHITECTURES = (
    "tiny_conv",
    "conv",
    "low_latency_conv",
    "ds_cnn",
    "ds_cnn_m",
    "ds_cnn_stream",
    "ds_cnn_stream_no_c0",
    "tc_resnet8",
    "tc_resnet8_w1",
)


@dataclass
class TrainSettings:
    """Options of ``kwsd train``; names as in TensorFlow's speech_commands train.py."""

    data_dir: str = ""
    data_url: str = ""
    background_dir: str = ""
    extra_training_dir: str = ""  # comma-separated folders added to the training set only
    wanted_words: str = "yes,no,up,down,left,right,on,off,stop,go"
    silence_percentage: float = 10.0
    unknown_word_classes: bool = False  # the other words as classes of their own, folded into _unknown_ on export
    unknown_percentage: float = 10.0
    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    split_salt: str = ""
    background_volume: float = 0.1
    background_frequency: float = 0.8
    time_shift_ms: float = 100.0
    late_shift_ms: float = 0.0  # spoken clips may also move up to this much later, their word kept whole
    spec_augment: bool = False
    negative_dir: str = ""  # DIR[:WEIGHT],... long recordings of non-keyword audio
    negative_percentage: float = 0.0  # share of each batch cut from them, as _unknown_
    partial_percentage: float = 0.0  # share of each batch: keywords cut to their start or end, as _unknown_
    isolated_percentage: float = 0.0  # share of each batch: word-long pieces of negative speech, each alone
    rir_dir: str = ""  # measured room impulse responses
    reverb_percentage: float = 0.0  # share of clips put in a room (measured or simulated)
    narrowband_percentage: float = 0.0  # share of clips heard as kwsd hears an 8 kHz source
    fill_narrowband_negatives: bool = False  # negative recordings below the model's rate get kwsd's band fill
    gate_percentage: float = 0.0  # share of spoken clips heard through a microphone's noise gate
    gain_db: str = "0,0"  # random gain range in dB, e.g. -12,6
    speed_range: str = "1,1"  # random speed factor range of spoken clips, e.g. 0.9,1.1
    mine_hard_negatives: bool = False  # at each learning-rate phase after the first
    hard_negative_threshold: float = 0.3
    hard_negative_percentage: float = 10.0  # share of each batch drawn from mined windows
    hard_negative_teacher_veto: float = 0.0  # leave out mined windows the teacher hears as a keyword; 0: off
    select_under_fa: float = -1.0  # choose the checkpoint by false accepts per hour (validation.better); <0: off
    export_last: bool = False  # export the last step's weights, not the best checkpoint's
    teacher_dir: str = ""  # the pretrained speech embedding that teaches (teacher.py); empty: no teacher
    distill_weight: float = 0.5  # share of the teacher's soft label in each training target
    distill_temperature: float = 2.0  # softens the teacher's probabilities
    ensemble_teacher: str = ""  # comma-separated kwsd model files whose average scores teach (ensemble.py)
    ensemble_weight: float = 0.5  # share of the ensemble's scores in every training target
    pretrain_clips: int = 0  # clips on which the fresh network first learns the embedding (pretrain.py); 0: none
    pretrain_epochs: int = 12
    pretrain_only: bool = False  # stop after pretraining: OUT/pretrained.keras, the start of --soup members
    teacher_pool_percentage: float = 0.0  # share of each batch: pretraining clips with the teacher's targets
    eval_stream: str = ""  # WAV streams with LABELS beside (kwsd stream make) to report at the end
    eval_negative: str = ""  # WAV recordings of no keyword, for false accepts per hour at the end
    # the frontend: flag names as in TensorFlow's train.py, defaults from FrontendParams (the one source)
    sample_rate: int = FrontendParams.sample_rate
    clip_duration_ms: int = FrontendParams.clip_duration_ms
    window_size_ms: float = FrontendParams.window_size_ms
    window_stride_ms: float = FrontendParams.window_stride_ms
    feature_bin_count: int = FrontendParams.feature_bin_count
    window: str = FrontendParams.window
    model_architecture: str = "ds_cnn"
    level_invariant: bool = False  # c0 measured from each window's loudest frame, inside the model
    binary: bool = False
    how_many_training_steps: str = "15000,3000"
    learning_rate: str = "0.001,0.0001"
    batch_size: int = 100
    dropout: float = 0.2
    average_weights: float = 0.0  # decay of a running average of the weights, exported instead; 0: off
    eval_step_interval: int = 400
    save_step_interval: int = 100
    start_checkpoint: str = ""
    resume: bool = False
    soup: str = ""  # comma-separated run folders whose final weights are averaged and exported (soup.py)
    soup_batches: int = 500  # training batches that measure the soup's batch normalization again
    seed: int = 59185
    name: str = ""
    out: str = ""
    float_model: bool = False

    def words(self) -> list[str]:
        """``--wanted-words`` as a list (spaces around the commas allowed)."""
        return [w.strip() for w in self.wanted_words.split(",") if w.strip()]

    def frontend(self) -> FrontendParams:
        return FrontendParams(
            sample_rate=self.sample_rate,
            clip_duration_ms=self.clip_duration_ms,
            window_size_ms=self.window_size_ms,
            window_stride_ms=self.window_stride_ms,
            feature_bin_count=self.feature_bin_count,
            high_freq=self.sample_rate / 2,
            window=self.window,
        )

    def gain_range(self) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in str(self.gain_db).split(","))
        except ValueError:
            raise ValueError(f"--gain-db {self.gain_db}: give two numbers, e.g. -12,6") from None
        if lo > hi:
            raise ValueError(f"--gain-db {self.gain_db}: the first number must not exceed the second")
        return lo, hi

    def speed_factors(self) -> tuple[float, float]:
        try:
            slow, fast = (float(v) for v in str(self.speed_range).split(","))
        except ValueError:
            raise ValueError(f"--speed-range {self.speed_range}: give two numbers, e.g. 0.9,1.1") from None
        if not 0.5 <= slow <= fast <= 2.0:
            raise ValueError(f"--speed-range {self.speed_range}: give two factors, smaller first, within 0.5..2")
        return slow, fast

    def check_shares(self) -> None:
        shares = "negative isolated partial hard_negative reverb narrowband gate teacher_pool".split()
        for name in (f"{share}_percentage" for share in shares):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"--{name.replace('_', '-')} must be 0..100")
        extra = (
            self.negative_percentage
            + self.isolated_percentage
            + self.partial_percentage
            + (self.hard_negative_percentage if self.mine_hard_negatives else 0)
        )
        if extra >= 100:
            raise ValueError(
                "--negative-percentage, --isolated-percentage, --partial-percentage and "
                "--hard-negative-percentage together must leave room for the keyword clips (< 100)"
            )
        for name in ("negative_percentage", "isolated_percentage"):
            if getattr(self, name) and not self.negative_dir:
                raise ValueError(f"--{name.replace('_', '-')} needs --negative-dir")
        if self.unknown_word_classes and self.binary:
            raise ValueError("--unknown-word-classes needs a multi-class model (not --binary)")
        if self.teacher_dir and self.binary:
            raise ValueError("--teacher-dir needs a multi-class model (not --binary)")
        if not 0 <= self.distill_weight <= 1:
            raise ValueError("--distill-weight must be 0..1")
        if self.distill_temperature <= 0:
            raise ValueError("--distill-temperature must be above 0")
        if self.ensemble_teacher and (self.binary or self.unknown_word_classes):
            raise ValueError("--ensemble-teacher needs the exported classes (not --binary or --unknown-word-classes)")
        if not 0 < self.ensemble_weight <= 1:
            raise ValueError("--ensemble-weight must be above 0 and at most 1")
        if self.pretrain_clips < 0 or self.pretrain_epochs < 1:
            raise ValueError("--pretrain-clips must be 0 or more and --pretrain-epochs 1 or more")
        if self.pretrain_clips and not self.teacher_dir:
            raise ValueError("--pretrain-clips needs --teacher-dir (the speech embedding it learns from)")
        if self.teacher_pool_percentage and not self.pretrain_clips:
            raise ValueError("--teacher-pool-percentage needs --pretrain-clips (the clips it draws from)")
        if self.teacher_pool_percentage >= 100:
            raise ValueError("--teacher-pool-percentage must leave room for the other clips (< 100)")
        if not 0 <= self.average_weights < 1:
            raise ValueError("--average-weights must be 0 (off) or a decay below 1, e.g. 0.999")
        if self.pretrain_only and (not self.pretrain_clips or self.resume or self.start_checkpoint):
            raise ValueError(
                "--pretrain-only needs --pretrain-clips and a fresh network (no --resume or --start-checkpoint)"
            )
        if self.soup and (self.resume or self.start_checkpoint or self.pretrain_only):
            raise ValueError("--soup exports trained runs: not with --resume, --start-checkpoint or --pretrain-only")
        if self.select_under_fa >= 0 and not self.negative_dir:
            raise ValueError("--select-under-fa needs --negative-dir (its validation split is counted)")
        if self.select_under_fa >= 0 and self.average_weights:
            raise ValueError("--select-under-fa chooses a checkpoint; --average-weights exports the final average")
        if self.export_last and (self.select_under_fa >= 0 or self.average_weights):
            raise ValueError("--export-last exports the last step: not with --select-under-fa or --average-weights")
        self.check_mining()

    def check_mining(self) -> None:
        if self.mine_hard_negatives and not self.negative_dir:
            raise ValueError("--mine-hard-negatives needs --negative-dir")
        if not 0 <= self.hard_negative_teacher_veto <= 1:
            raise ValueError("--hard-negative-teacher-veto must be 0 (off) .. 1")
        if self.hard_negative_teacher_veto and not (self.mine_hard_negatives and self.teacher_dir):
            raise ValueError("--hard-negative-teacher-veto needs --mine-hard-negatives and --teacher-dir")

    def check_ranges(self) -> None:
        """ValueError naming the first number out of range: a zero batch or interval would fail
        deep in Keras with a traceback, a NaN learning rate would train and export a broken model."""
        ranges = [
            ("batch_size", 1, 100_000),
            ("eval_step_interval", 1, 10**9),
            ("save_step_interval", 1, 10**9),
            ("soup_batches", 1, 10**9),
            ("silence_percentage", 0, 100),
            ("unknown_percentage", 0, 100),
            ("validation_percentage", 0, 100),
            ("testing_percentage", 0, 100),
            ("background_volume", 0, 1),
            ("background_frequency", 0, 1),
            ("time_shift_ms", 0, self.clip_duration_ms),
            ("late_shift_ms", 0, self.clip_duration_ms),
            ("hard_negative_threshold", 0, 1),
            ("dropout", 0, 0.99),
            ("seed", 0, 2**32 - 1),
        ]
        check_ranges((f"--{name.replace('_', '-')}", getattr(self, name), low, high) for name, low, high in ranges)
        if self.validation_percentage + self.testing_percentage >= 100:
            raise ValueError("--validation-percentage and --testing-percentage must leave clips for training (< 100)")

    def schedule(self) -> list[tuple[int, float]]:
        try:
            steps = [int(s) for s in str(self.how_many_training_steps).split(",")]
            rates = [float(r) for r in str(self.learning_rate).split(",")]
        except ValueError:
            raise ValueError(
                "--how-many-training-steps takes whole numbers and --learning-rate numbers, comma-separated "
                "(e.g. 15000,3000 and 0.001,0.0001)"
            ) from None
        if len(steps) != len(rates):
            raise ValueError("--how-many-training-steps and --learning-rate need the same number of values")
        if min(steps) < 1 or not all(0 < r <= 1 for r in rates):
            raise ValueError(
                "each phase needs 1 step or more (--how-many-training-steps) and a learning rate above 0 and "
                "at most 1 (--learning-rate)"
            )
        return list(zip(steps, rates))

    def learning_rate_at(self, step: int) -> float:
        end = 0
        for n, lr in self.schedule():
            end += n
            if step < end:
                return lr
        return self.schedule()[-1][1]

    def total_steps(self) -> int:
        return sum(n for n, _ in self.schedule())

    def phase_boundaries(self) -> list[int]:
        """The steps at which a new learning-rate phase starts (and hard negatives are mined)."""
        ends = list(itertools.accumulate(n for n, _ in self.schedule()))
        return ends[:-1]


PATH_SETTINGS = (
    "data_dir",
    "background_dir",
    "extra_training_dir",
    "out",
    "start_checkpoint",
    "soup",
    "negative_dir",
    "rir_dir",
    "teacher_dir",
    "ensemble_teacher",
    "eval_stream",
    "eval_negative",
)


def portable_settings(s: TrainSettings) -> dict:
    """The settings with folders reduced to their last component: a model file and its report
    travel to other machines and should not carry the trainer's directory layout."""
    out = asdict(s)
    for key in PATH_SETTINGS:
        out[key] = ",".join(os.path.basename(os.path.normpath(p)) for p in str(out[key]).split(",") if p)
    return out

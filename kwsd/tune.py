"""``kwsd tune``: choose the smoother settings for a model from measured streams.

The model runs once over every stream (keyword streams with their truth files and
negative recordings); its scores are kept, and only RecognizeCommands is replayed
over a grid of average window, minimum count and suppression, each with a sweep of
one threshold for all keywords.  For each grid point the per-keyword thresholds are
then chosen together: of the combinations whose false accepts stay within what the
target allows (default 0.5 per hour; fa_budget.py), the one that misses the fewest
keywords, with the highest thresholds of equals; they are verified by one more replay.
The grid point with the lowest verified false-reject rate under the target wins.  Replays
use the daemon's own RecognizeCommands on the same scores the pipeline produced, so they
give exactly what ``kwsd run`` would.

Writes ``recognize.yaml`` (a config section ``kwsd run --config`` accepts), ``det.png``
(false-reject rate against false accepts per hour, one curve per keyword) and
``tune.json``; ``--write-model`` stores the settings inside a copy of the model, where
they become its recommended defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .confidence import hours_to_show
from .detection import Detection
from .fa_budget import Option, allowed_false_accepts, share
from .limits import stride_fits
from .model import KeywordModel, pack_model, unpack_model
from .pipeline import DEFAULT_SCORE_GATE, DEFAULT_SILENCE_GATE_DBFS, choose_clip_stride
from .recognize import RecognizeCommands, SmootherSettings
from .streams import TOLERANCE_MS, combine, format_summary, match, read_truth, truth_path, truth_word_ends
from .tune_grid import Grid


@dataclass
class ScoreTrace:
    """What the model said about one recording: the time of every window and its scores."""

    name: str
    times_ms: np.ndarray
    scores: np.ndarray  # (windows, labels)
    truth: list[tuple[str, int]]
    hours: float
    word_ends: dict[int, int] = field(default_factory=dict)  # keyword clip start -> its word's end, ms


def record_scores(
    model: KeywordModel,
    wav: str,
    clip_stride_ms: int | None = None,
    silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS,
    score_gate: float | None = DEFAULT_SCORE_GATE,
    keywords: list[str] | None = None,
) -> ScoreTrace:
    """Run the pipeline over ``wav`` once, keeping every score vector (with the gates that
    ``kwsd run`` will use: they decide which strides the model sees, and with ``keywords``
    they look at those alone, as ``kwsd run`` does with ``recognize.keywords``)."""
    from .pipeline import run_array
    from .wavfile import read_wav

    times, scores = [], []

    def keep(_model, audio_ms, s):
        times.append(audio_ms)
        scores.append(np.array(s, np.float32))

    audio, rate = read_wav(wav)
    run_array(
        [model],
        audio,
        rate,
        clip_stride_ms=clip_stride_ms,
        on_scores=keep,
        recognize=None if keywords is None else {"keywords": keywords},
        silence_gate_dbfs=silence_gate_dbfs,
        score_gate=score_gate,
    )
    truth = read_truth(truth_path(wav), len(audio) / rate * 1000) if truth_path(wav).exists() else []
    ends = truth_word_ends(audio, rate, truth, model.keywords)
    return ScoreTrace(wav, np.array(times), np.array(scores), truth, len(audio) / rate / 3600, ends)


def replay(trace: ScoreTrace, model: KeywordModel, settings: SmootherSettings) -> list[Detection]:
    """The detections RecognizeCommands makes from recorded scores at ``settings``."""
    rc = RecognizeCommands.from_settings(model.labels, settings)
    found = []
    for t, s in zip(trace.times_ms.tolist(), trace.scores):
        r = rc.process(s, t)
        if r.is_new_command:
            found.append(Detection(r.label, r.score, t, model.name, timestamp=""))
    return found


def measure(
    traces: list[ScoreTrace], model: KeywordModel, settings: SmootherSettings, tolerance_ms: int = TOLERANCE_MS
):
    keywords = settings.reported(model.keywords)  # a keyword nobody listens for is just another word
    return combine(
        [match(replay(t, model, settings), t.truth, keywords, t.hours, tolerance_ms, t.word_ends) for t in traces]
    )


def tune(
    model: KeywordModel,
    traces: list[ScoreTrace],
    target_fa_per_hour: float = 0.5,
    grid: Grid | None = None,
    progress=None,
    max_delay_ms: float | None = None,
    keywords: list[str] | None = None,
) -> dict:
    """Search the grid; returns the chosen settings, their figures and every curve.

    ``max_delay_ms``: leave out the grid points whose median detection comes later than this
    after the end of the word (a short average window answers sooner, at some cost in misses
    or false accepts; the cost is then in the chosen figures).  ``keywords``: tune for these
    alone (the others are never reported), so the whole false-accept budget is theirs."""
    grid = grid if grid is not None else Grid()
    hours = sum(t.hours for t in traces)
    listened = keywords  # None: every keyword (and no ``keywords`` key in the settings)
    keywords = keywords or model.keywords
    allowed = allowed_false_accepts(target_fa_per_hour, hours)
    points = []
    for window, count, suppression, quick in grid.points:
        rule = dict(quick_threshold=quick, quick_window_ms=grid.quick_window_ms, keywords=listened)
        curves: dict[str, list[tuple[float, float | None, float]]] = {k: [] for k in keywords}  # th, frr, fa/h
        options: dict[str, list[Option]] = {k: [] for k in keywords}
        for th in grid.thresholds:
            s = SmootherSettings(window, th, suppression, count, **rule)
            per = measure(traces, model, s).summary()["per_keyword"]
            for k in keywords:
                curves[k].append((th, per[k]["false_reject_rate"], per[k]["false_accepts"] / hours))
                options[k].append(Option(th, per[k]["false_accepts"], per[k]["truths"] - per[k]["correct"]))
            if progress:
                progress()
        plan = share(options, allowed)
        chosen = {k: o.threshold for k, o in plan.items()}
        figures: dict = {}
        for _ in range(len(grid.thresholds)):  # verify; raise the keywords that still fire too often
            s = SmootherSettings(
                window, round(float(np.median(list(chosen.values()))), 4), suppression, count, dict(chosen), **rule
            )
            figures = measure(traces, model, s).summary()
            fired = {k: v["false_accepts"] for k, v in figures["per_keyword"].items()}
            over = [k for k in keywords if fired[k] > plan[k].false_accepts and chosen[k] < grid.thresholds[-1]]
            if figures["false_accepts_per_hour"] <= target_fa_per_hour or not over:
                break
            for k in over:
                chosen[k] = min(th for th in grid.thresholds if th > chosen[k])
        points.append({"settings": s.to_dict(), "figures": figures, "curves": curves})
    candidates = points
    if max_delay_ms is not None:
        delays = [d for p in points if (d := p["figures"]["median_delay_ms"]) is not None]
        if not delays:
            raise ValueError("--max-delay-ms needs keyword streams (--stream) on which the model detects something")
        candidates = [p for p in points if (d := p["figures"]["median_delay_ms"]) is not None and d <= max_delay_ms]
        if not candidates:
            raise ValueError(
                f"no setting of the grid detects within {max_delay_ms:g} ms of the word's end "
                f"(the quickest: {min(delays):g} ms); try shorter --windows or smaller --minimum-counts"
            )
    meets = [p for p in candidates if p["figures"]["false_accepts_per_hour"] <= target_fa_per_hour]
    pool = meets or candidates
    best = min(pool, key=lambda p: (p["figures"]["false_reject_rate"] or 0.0, p["figures"]["false_accepts_per_hour"]))
    return {
        "target_fa_per_hour": target_fa_per_hour,
        "max_delay_ms": max_delay_ms,
        "met": bool(meets),
        "hours": round(hours, 4),
        "streams": [t.name for t in traces],
        "best": best,
        "grid": points,
    }


def recognize_yaml(settings: dict, clip_stride_ms: int) -> str:
    """The config sections that reproduce the tuning: the smoother, and the stride it was tuned at."""
    import yaml

    return yaml.safe_dump(
        {"recognize": _rounded(settings), "inference": {"clip_stride_ms": clip_stride_ms}}, sort_keys=False
    )


def _rounded(settings: dict) -> dict:
    return {**settings, "thresholds": {k: round(float(v), 4) for k, v in settings["thresholds"].items()}}


def write_model_with_settings(model: KeywordModel, settings: dict, out: str, clip_stride_ms: int | None = None) -> None:
    """A copy of the model file whose metadata recommends ``settings`` (and the stride they were
    tuned at: ``kwsd run`` uses it unless the config sets ``inference.clip_stride_ms``)."""
    flatbuffer, meta = unpack_model(Path(model.path).read_bytes(), model.path)
    meta["recognize"] = _rounded(settings)
    if clip_stride_ms is not None:
        meta["inference"] = {**meta.get("inference", {}), "clip_stride_ms": clip_stride_ms}
    meta.pop("format_version", None)
    Path(out).write_bytes(pack_model(flatbuffer, meta))


def check_args(args, grid: Grid, stride: int, frame_stride_ms: float) -> None:
    """ValueError naming the first flag out of range, before the model runs over the audio."""
    if not 0 <= args.target_fa < float("inf"):
        raise ValueError(f"--target-fa must be 0 or more false accepts per hour, not {args.target_fa}")
    # a median delay may be negative: the quick rule can answer before the word's measured end
    if args.max_delay_ms is not None and not -10_000 <= args.max_delay_ms <= 10_000:
        raise ValueError(f"--max-delay-ms must be from -10000 to 10000, not {args.max_delay_ms}")
    if not stride_fits(stride, frame_stride_ms):
        source = "--clip-stride-ms" if args.clip_stride_ms is not None else "the config's inference.clip_stride_ms"
        raise ValueError(
            f"{source} must be 10..1000 ms and a multiple of the model's {frame_stride_ms:g} ms frame "
            f"stride, not {stride}"
        )
    grid.check()


def listened_keywords(args, config, model: KeywordModel) -> list[str] | None:
    """The keywords to tune for: ``--keywords``, else the config's ``recognize.keywords``, else all
    (None); ValueError for a word the model lacks (it would be tuned for nothing)."""
    listened = args.keywords.split(",") if args.keywords else config.recognize.keywords
    unknown = [k for k in listened or [] if k not in model.keywords]
    if unknown:
        source = "--keywords" if args.keywords else f"{args.config}: recognize.keywords"
        known = ", ".join(model.keywords)
        raise ValueError(f"{source} names {', '.join(unknown)}, not a keyword of the model ({known})")
    return listened


def main(args) -> int:
    from tqdm import tqdm

    from .config import load_config
    from .det_plot import plot_det
    from .resources import default_model

    config = load_config(args.config)  # its gates and stride: the scores kwsd run will see
    i = config.inference
    model = KeywordModel.load(args.model or default_model(), i.backend, i.threads, i.second_stage)
    wavs = list(args.stream or []) + list(args.negative or [])
    if not wavs:
        raise ValueError("kwsd tune needs at least one --stream or --negative recording")
    for w in args.negative or []:
        if truth_path(w).exists() and read_truth(truth_path(w)):
            raise ValueError(f"--negative {w} has keyword truth beside it ({truth_path(w)}); give it as --stream")
    stride = choose_clip_stride(
        [model], args.clip_stride_ms if args.clip_stride_ms is not None else config.inference.clip_stride_ms
    )
    grid = Grid(
        tuple(args.windows),
        tuple(args.minimum_counts),
        tuple(args.suppressions),
        tuple(args.thresholds),
        tuple(args.quick_thresholds),
        args.quick_window_ms,
    )
    check_args(args, grid, stride, model.frontend.window_stride_ms)
    listened = listened_keywords(args, config, model)
    gates = dict(silence_gate_dbfs=config.inference.silence_gate_dbfs, score_gate=config.inference.score_gate)
    traces = []
    for w in tqdm(wavs, desc="scoring", unit="file"):
        trace = record_scores(model, w, stride, **gates, keywords=listened)
        if w in (args.negative or []):
            trace.truth = []
        traces.append(trace)
    total = len(grid.points) * len(grid.thresholds)
    with tqdm(total=total, desc="replaying", unit="setting") as bar:
        result = tune(
            model, traces, args.target_fa, grid, progress=bar.update, max_delay_ms=args.max_delay_ms, keywords=listened
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best = result["best"]
    (out / "recognize.yaml").write_text(recognize_yaml(best["settings"], stride))
    (out / "tune.json").write_text(json.dumps(result, indent=1))
    plot_det(result, out / "det.png")
    if args.write_model:
        write_model_with_settings(model, best["settings"], args.write_model, stride)
    verdict = "meets" if result["met"] else "does NOT meet"
    print(f"chosen ({verdict} the target of {args.target_fa} false accepts per hour):")
    print(format_summary(best["figures"]))
    high = best["figures"]["false_accepts_per_hour_95ci"][1]
    if result["met"] and high > args.target_fa:
        print(
            f"(on {result['hours'] * 60:.0f} min of audio that is not proof: up to {high:.2f} per hour at 95% "
            f"confidence; showing {args.target_fa} needs {hours_to_show(args.target_fa):.1f} h without one)"
        )
    print(recognize_yaml(best["settings"], stride), end="")
    print(f"wrote {out}/recognize.yaml, det.png, tune.json" + (f" and {args.write_model}" if args.write_model else ""))
    return 0

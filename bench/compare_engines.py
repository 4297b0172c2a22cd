"""kwsd side by side with pymicro-wakeword and openWakeWord on the same recording, in one run.

    .venv/bin/python bench/compare_engines.py RECORDING.wav [--peers runs/peers] [--smoke] [--kwsd-config FILE]

Each engine runs as its own process on the same 16 kHz mono 16-bit recording, as fast as
the CPU allows; CPU time and peak RSS come from the kernel (wait4, bench/measure.py).  Start-up is measured
on a one-second recording and subtracted for the "excluded" column.  The peers are
installed on first use into their own virtual environments under ``--peers`` (openWakeWord
0.5.1 needs numpy < 2 with tflite-runtime); an engine that cannot be installed (offline)
is skipped with a note.  ``--smoke`` uses 5 s of audio and skips the peers (CI).

Engines:
- kwsd at its default settings (the bundled model: ten keywords), ``kwsd run --input``; with
  ``--kwsd-config FILE`` (e.g. config/lite.yaml, or one with ``recognize.keywords: [yes]`` for one wake
  word) also ``kwsd run --config FILE --input``, a row each;
- pymicro-wakeword (microWakeWord's streaming int8 models), "okay_nabu": one wake word;
- openWakeWord 0.5.1 with its six bundled tflite models (melspectrogram + embedding + heads).
A "keyword spotted" is a detection (kwsd), a cut-off crossing with 1 s refractory
(pymicro-wakeword, as its CLI counts), or a score above 0.5 with 1.5 s refractory (openWakeWord).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure as run_measured  # noqa: E402

from kwsd.machine import cpu_description  # noqa: E402

PYMICRO_DRIVER = r"""
import sys, wave
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
mww, feats = MicroWakeWord.from_builtin(Model.OKAY_NABU), MicroWakeWordFeatures()
spotted, last, t = 0, -1e9, 0.0
with wave.open(sys.argv[1], "rb") as w:
    while True:
        chunk = w.readframes(160)
        if not chunk:
            break
        t += len(chunk) / 32000
        for f in feats.process_streaming(chunk):
            if mww.process_streaming(f) and t - last > 1.0:
                spotted, last = spotted + 1, t
print(spotted)
"""

OWW_DRIVER = r"""
import sys, wave
import numpy as np
import openwakeword
from openwakeword.model import Model
model = Model(inference_framework="tflite")
spotted, last, t = 0, {}, 0.0
with wave.open(sys.argv[1], "rb") as w:
    while True:
        chunk = w.readframes(1280)
        if len(chunk) < 2560:
            break
        t += 0.08
        for name, score in model.predict(np.frombuffer(chunk, np.int16)).items():
            if score > 0.5 and t - last.get(name, -1e9) > 1.5:
                spotted, last[name] = spotted + 1, t
print(spotted)
"""

PEERS = {
    "pymicro-wakeword": (["pymicro-wakeword"], PYMICRO_DRIVER, "1 (okay_nabu)"),
    "openWakeWord 0.5.1": (["openwakeword==0.5.1", "numpy<2", "tflite-runtime"], OWW_DRIVER, "6"),
}


def measure(cmd: list[str]) -> dict:
    """CPU seconds and peak RSS of ``cmd`` alone (see bench/measure.py); RuntimeError if it fails."""
    figures = run_measured(cmd, cwd=ROOT)
    if figures["exit"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} exited {figures['exit']}: {figures['stderr'][-1500:]}")
    return figures


def seconds_of(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def cut(path: Path, seconds: float, out: Path) -> Path:
    with wave.open(str(path), "rb") as r, wave.open(str(out), "wb") as w:
        w.setparams(r.getparams())
        w.writeframes(r.readframes(int(seconds * r.getframerate())))
    return out


def peer_python(peers_dir: Path, name: str, packages: list[str]) -> Path | None:
    """The venv python of a peer, installed on first use; None (with a note) if that fails."""
    venv = peers_dir / name.split()[0].lower()
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages], check=True, capture_output=True, timeout=900
        )
    except (subprocess.SubprocessError, OSError) as e:
        print(f"note: {name} skipped: cannot install {' '.join(packages)} ({str(e)[:200]})", file=sys.stderr)
        return None
    marker.write_text(" ".join(packages))
    return python


def listened_for(config: str | None) -> list[str]:
    """The keywords kwsd reports with this config: the bundled model's ten, or its recognize.keywords."""
    from kwsd.config import Config, load_config
    from kwsd.model import KeywordModel
    from kwsd.recognize import reported_keywords
    from kwsd.resources import default_model

    overrides = (load_config(config) if config else Config()).recognize.overrides()
    return reported_keywords([KeywordModel.load(str(default_model()))], overrides)


def engine_rows(recording: Path, short: Path, peers_dir: Path, with_peers: bool, configs=()) -> list[dict]:
    rows = []
    for config in [None, *configs]:
        kwsd = [sys.executable, "-m", "kwsd", "run", *(["--config", config] if config else []), "--json", "--input"]
        long_run, short_run = measure(kwsd + [str(recording)]), measure(kwsd + [str(short)])
        rows.append(
            {
                "engine": f"kwsd (default model{', ' + config if config else ''})",
                "keywords": str(len(listened_for(config))),
                "spotted": len([x for x in long_run["stdout"].splitlines() if x.strip()]),
                "long": long_run,
                "short": short_run,
            }
        )
    for name, (packages, driver, keywords) in PEERS.items():
        if not with_peers:
            continue
        python = peer_python(peers_dir, name, packages)
        if python is None:
            continue
        try:
            long_run = measure([str(python), "-c", driver, str(recording)])
            short_run = measure([str(python), "-c", driver, str(short)])
        except RuntimeError as e:
            print(f"note: {name} skipped: {e}", file=sys.stderr)
            continue
        rows.append(
            {
                "engine": name,
                "keywords": keywords,
                "spotted": int(long_run["stdout"].split()[-1]),
                "long": long_run,
                "short": short_run,
            }
        )
    return rows


def table(rows: list[dict], audio_s: float, short_s: float) -> str:
    kwsds = [r for r in rows if r["engine"].startswith("kwsd")]

    def per_s(r, excluded):
        if excluded:
            return (r["long"]["cpu_s"] - r["short"]["cpu_s"]) / (audio_s - short_s)
        return r["long"]["cpu_s"] / audio_s

    lines = [
        "| engine | keywords | spotted | CPU s per audio s (start-up excluded) | (included) | "
        "start-up CPU s | peak RSS MB | kwsd / engine (excluded; one figure per kwsd row) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = [per_s(k, True) / per_s(r, True) if per_s(r, True) > 0 else float("nan") for k in kwsds]
        lines.append(
            f"| {r['engine']} | {r['keywords']} | {r['spotted']} | {per_s(r, True):.4f} | "
            f"{per_s(r, False):.4f} | {r['short']['cpu_s']:.2f} | {r['long']['peak_rss_mb']:.0f} | "
            f"{'-' if r in kwsds else ' / '.join(f'{x:.2f}x' for x in ratios)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recording", nargs="?", default=str(ROOT / "models" / "sample.wav"), help="16 kHz mono 16-bit WAV")
    ap.add_argument("--peers", default=str(ROOT / "runs" / "peers"), help="folder for the peers' venvs")
    ap.add_argument("--smoke", action="store_true", help="5 s of audio, no peers: checks that the script runs")
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--kwsd-config", action="append", default=[], help="also kwsd with this config (a row each)")
    args = ap.parse_args(argv)
    recording = Path(args.recording)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            recording = cut(recording, 5.0, Path(tmp) / "smoke.wav")
        short = cut(recording, 1.0, Path(tmp) / "short.wav")
        audio_s, short_s = seconds_of(recording), seconds_of(short)
        rows = engine_rows(recording, short, Path(args.peers), not args.smoke, args.kwsd_config)
    print(
        f"recording: {args.recording} ({audio_s / 60:.1f} min); machine: {os.uname().machine}, "
        f"{os.cpu_count()} CPUs, {cpu_description()}"
    )
    print(table(rows, audio_s, short_s))
    if args.json:
        Path(args.json).write_text(json.dumps({"audio_s": audio_s, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

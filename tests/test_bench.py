"""The benchmark scripts run (seconds-long smoke runs; the real figures are in bench/RESULTS.md)."""

import re
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLE

pytestmark = pytest.mark.integration  # starts real programs: see pyproject.toml


def test_compare_engines_smoke_prints_kwsds_rows():
    proc = subprocess.run(
        [sys.executable, "bench/compare_engines.py", "--smoke", "--kwsd-config", "config/lite.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| kwsd")]
    assert [r[1].strip() for r in rows] == ["kwsd (default model)", "kwsd (default model, config/lite.yaml)"]
    for row in rows:
        cpu_per_audio_s, peak_rss_mb = float(row[5]), float(row[7])  # start-up included: 5 s is too
        assert 0 < cpu_per_audio_s < 1 and 10 < peak_rss_mb < 1000  # short to subtract it; figures, not placeholders


def test_soak_script_runs_twice_and_compares(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "bench/soak.py",
            "--minutes",
            "0.3",
            "--work",
            str(tmp_path),
            str(ROOT / "models" / "sample.wav"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "detections identical over both runs: yes" in proc.stdout, proc.stdout + proc.stderr
    assert len([line for line in proc.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]) == 2


def test_silence_gate_check_runs_the_sample_with_and_without_the_gate():
    proc = subprocess.run(
        [sys.executable, "bench/silence_gate.py", "models/sample.wav", "--gains", "0,-50", "--levels", "none,-60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    assert "gain +0 dB, gate -60.0: skipped 0.0% of strides" in lines[1] and lines[1].endswith("True")
    assert "gain -50 dB, gate -60.0" in lines[3] and "skipped 0.0%" not in lines[3]  # turned down, it closes


def test_live_bench_times_ready_idle_and_the_latency_of_the_sample_words(tmp_path):
    proc = subprocess.run(  # the sample's truth is beside it, models/sample.txt
        [sys.executable, "bench/live.py", "--stream", SAMPLE, "--minutes", "0.2", "--starts", "1", "--idle-s", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 0 < float(re.search(r"READY after start: median ([\d.]+) s", proc.stdout)[1]) < 30
    idle = re.search(r"idle on a silent PulseAudio source: ([\d.]+)% of one core, RSS (\d+) MB", proc.stdout)
    # CPU time is counted in 10 ms ticks: two idle seconds (< 1% of a core) may show none
    assert idle and 0 <= float(idle[1]) < 100 and 10 < int(idle[2]) < 1000
    # the four words of the sample, through --realtime and through the live PulseAudio path. Live, the
    # strides fall at another phase of the audio each run: the bundled model hears the sample's "yes"
    # (its score peaks at its threshold) at 14 of 16 phases 5 ms apart (models/README.md), so 3 may match
    for what, least in (("a recording, --realtime", 4), ("live, through PulseAudio", 3)):
        pattern = rf"\({re.escape(what)}\): median (-?\d+) ms.*\((\d+) detections matched of \d+; 4 keywords played\)"
        line = re.search(pattern, proc.stdout)
        assert line, proc.stdout
        assert int(line[2]) >= least and 0 < int(line[1]) < 2000
    peak = re.search(r"peak RSS over the live run \(VmHWM, start-up included\): (\d+) MB", proc.stdout)
    # another process than the idle one, with the same settings: its peak is about what that one held, or more
    assert peak and int(idle[2]) - 2 <= int(peak[1]) < 1000


def test_narrowband_sets_put_the_room_under_the_telephone_speech(tmp_path):
    """bench/narrowband_sets.py joins recordings with half a second of silence: digital silence unless a
    room is named, and the bundled model hears less of the words next to digital silence, so the
    evaluation streams take the room (models/README.md, "Negative streams with a room under them")."""
    import numpy as np
    import soundfile

    folders = ",".join(str(p) for p in sorted((ROOT / "tests/data/narrowband").iterdir()))
    noise = ROOT / "tests/data/speech/_background_noise_/doing_the_dishes_2s.wav"
    silent_frames = {}
    for name, room in (("room", ["--background", str(noise)]), ("gaps", [])):
        subprocess.run(
            [sys.executable, "bench/narrowband_sets.py", folders, folders, str(tmp_path / name), *room],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        audio, rate = soundfile.read(tmp_path / name / "bl_test8.wav", dtype="int16")
        assert rate == 8000
        frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)  # 20 ms
        silent_frames[name] = (len(audio), float(np.mean(np.all(frames == 0, axis=1))))
    assert silent_frames["room"][0] == silent_frames["gaps"][0]  # the same recordings and gaps
    assert silent_frames["room"][1] == 0 and silent_frames["gaps"][1] > 0.2

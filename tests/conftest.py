"""Shared fixtures: real recordings composed from committed clips, the kwsd CLI in a
subprocess, and real servers (PulseAudio) started and stopped by the tests."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kwsd.audio import read_wav, write_wav

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SPEECH = DATA / "speech"
DEFAULT_MODEL = ROOT / "models" / "default.tflite"
SAMPLE = ROOT / "models" / "sample.wav"


def clip(word: str, i: int = 0) -> np.ndarray:
    files = sorted((SPEECH / word).glob("*.wav"))
    return read_wav(str(files[i]))[0]


def noise() -> np.ndarray:
    return read_wav(str(SPEECH / "_background_noise_" / "doing_the_dishes_2s.wav"))[0]


def compose(events, seconds: float, noise_volume: float = 0.2, rate: int = 16000) -> np.ndarray:
    """A recording of ``seconds`` with (word, clip index, start second) events over noise."""
    n = int(seconds * rate)
    bed = np.resize(noise(), n) * noise_volume
    for word, i, at in events:
        x = clip(word, i)
        start = int(at * rate)
        bed[start:start + len(x)] += x[: n - start]
    return np.clip(bed, -0.99, 0.99).astype(np.float32)  # as a real ADC would


def kwsd(*args, input=None, env=None, timeout=120, check=False) -> subprocess.CompletedProcess:
    """Run the kwsd CLI as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "kwsd", *map(str, args)], input=input, capture_output=True,
                          env=full_env, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"kwsd {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return proc


def detections(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


@pytest.fixture
def wav(tmp_path):
    """Write float audio to a WAV in tmp_path and return the path."""
    def _write(audio, name="rec.wav", rate=16000):
        path = tmp_path / name
        write_wav(str(path), audio, rate)
        return path
    return _write


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A private PulseAudio server with a 16 kHz mono null sink; its monitor is the default source.

    Yields the environment a client needs.  Only this PID is killed afterwards."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed (scripts/test.sh installs it)")
    run_dir = tmp_path_factory.mktemp("pulse")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir), "HOME": str(run_dir),
           "PULSE_SERVER": f"unix:{run_dir}/native"}
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
         "-L", f"module-native-protocol-unix socket={run_dir}/native auth-anonymous=1",
         "-L", "module-null-sink sink_name=kwsnull rate=48000 channels=1 format=s16le",
         "-L", "module-always-sink"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("PulseAudio did not start")
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "kwsnull.monitor"], env=env, check=True)
        yield {k: env[k] for k in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER")}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Shared fixtures: real recordings composed from committed clips, the kwsd CLI in a
subprocess, and real servers (PulseAudio) started and stopped by the tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kwsd.wavfile import read_wav, write_wav

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SPEECH = DATA / "speech"
DEFAULT_MODEL = ROOT / "models" / "default.tflite"
SAMPLE = ROOT / "models" / "sample.wav"
# what the bundled model reports on the sample ("yes", "stop", "stop" 3 s later, "go" over kitchen
# noise; models/README.md): each keyword and the second its clip starts, from the truth file that
# tests/data/make_fixtures.py writes beside it
SAMPLE_TRUTH = [
    (label, int(ms) / 1000)
    for label, ms in (line.split(",") for line in SAMPLE.with_suffix(".txt").read_text().split())
]
SAMPLE_WORDS = [w for w, _ in SAMPLE_TRUTH]


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
        bed[start : start + len(x)] += x[: n - start]
    return np.clip(bed, -0.99, 0.99).astype(np.float32)  # as a real ADC would


def pipeline_features(audio: np.ndarray, rate: int, fill: bool) -> np.ndarray:
    """The MFCC frames kwsd's pipeline computes from ``audio`` at ``rate`` (the band fill on or off)."""
    from kwsd.feature_stream import FrontendGroup
    from kwsd.model import KeywordModel

    group = FrontendGroup(KeywordModel.load(DEFAULT_MODEL).frontend, rate, 80)
    if not fill:
        group.band_fill = None
    x = np.concatenate((group.resampler.process(audio), group.resampler.flush()))
    frames = []
    for i in range(0, len(x) // group.stride * group.stride, group.stride):
        stride = x[i : i + group.stride]
        group.features.push(stride if group.band_fill is None else group.band_fill(stride))
        frames.append(group.features.window[-4:].copy())
    return np.concatenate(frames)


def kwsd(*args, input=None, env=None, timeout=120, check=False) -> subprocess.CompletedProcess:
    """Run the kwsd CLI as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "kwsd", *map(str, args)],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kwsd {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return proc


def detections(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


BUNDLED_STRIDE_MS = 80  # how often the bundled model runs


def same_words_within_a_stride(a, b, later_only: bool = False) -> bool:
    """``a`` and ``b`` (tuples of keyword, audio_ms, ...) name the same keywords in order, each of ``a``
    within one stride of ``b``'s moment (with ``later_only``: never sooner). The score gate rests the
    model on some strides, so a word may be reported a stride from where it would be without it."""
    lowest = 0 if later_only else -BUNDLED_STRIDE_MS
    return [x[0] for x in a] == [y[0] for y in b] and all(
        lowest <= x[1] - y[1] <= BUNDLED_STRIDE_MS for x, y in zip(a, b)
    )


@pytest.fixture
def wav(tmp_path):
    """Write float audio to a WAV in tmp_path and return the path."""

    def _write(audio, name="rec.wav", rate=16000):
        path = tmp_path / name
        write_wav(str(path), audio, rate)
        return path

    return _write


class PulseServer:
    """A private PulseAudio server with a 48 kHz mono null sink whose monitor is the default source.

    ``env`` is what a client needs; stop() kills only this server's PID and start() brings
    it back on the same socket, as an audio server restarted by its user would be."""

    def __init__(self, run_dir):
        if shutil.which("pulseaudio") is None:
            pytest.fail("pulseaudio is not installed (scripts/test.sh installs it)")
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(run_dir),
            "HOME": str(run_dir),
            "PULSE_SERVER": f"unix:{run_dir}/native",
        }
        self.run_dir = run_dir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=no",
                "-L",
                f"module-native-protocol-unix socket={self.run_dir}/native auth-anonymous=1",
                "-L",
                "module-null-sink sink_name=kwsnull rate=48000 channels=1 format=s16le",
                "-L",
                "module-always-sink",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail("PulseAudio did not start")
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "kwsnull.monitor"], env=self.env, check=True)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def client_env(self) -> dict:
        return {k: self.env[k] for k in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER")}


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """The environment of a session-wide PulseAudio server (see PulseServer)."""
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    server.start()
    try:
        yield server.client_env
    finally:
        server.stop()


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; records what arrives, when."""

    def __init__(self, path=None, abstract=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.sock.bind("\0" + abstract)
            self.address = "@" + abstract
        else:
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.arrived = threading.Condition()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            with self.arrived:
                for line in data.splitlines():
                    self.messages.append((time.monotonic(), line))
                self.arrived.notify_all()

    def wait_for(self, prefix, timeout=30) -> bool:
        """Until a message starting with ``prefix`` has arrived."""
        with self.arrived:
            return self.arrived.wait_for(lambda: bool(self.lines(prefix)), timeout)

    def lines(self, prefix):
        return [(t, m) for t, m in self.messages if m.startswith(prefix)]

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real mosquitto on a loopback port; stop() and start() again on the same port."""

    def __init__(self, tmp_path):
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            pytest.fail("mosquitto is not installed (scripts/test.sh installs it)")
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.conf = tmp_path / "mosquitto.conf"
        # "user": as root, mosquitto would otherwise switch to its own user and not read our files
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    pytest.fail("mosquitto did not start")
                time.sleep(0.02)

    def stop(self, kill: bool = False):
        """Stop mosquitto; ``kill``: SIGKILL, so that no client is told goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A paho client that records every message it sees, reconnecting if the broker restarts."""

    def __init__(self, port, topics=("#",)):
        import threading

        import paho.mqtt.client as mqtt

        self.messages = []
        self.lock = threading.Condition()
        self.ready = threading.Event()  # set when the broker has acknowledged the subscription
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}")

        def on_connect(client, userdata, flags, rc, props):
            client.subscribe([(t, 1) for t in topics])

        def on_subscribe(client, userdata, mid, reason_codes, props):
            self.ready.set()

        def on_message(client, userdata, msg):
            with self.lock:
                self.messages.append((msg.topic, msg.payload.decode(), msg.retain))
                self.lock.notify_all()

        self.client.on_connect, self.client.on_message = on_connect, on_message
        self.client.on_subscribe = on_subscribe
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def on(self, topic):
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def wait_for(self, predicate, timeout=20):
        """Until ``predicate()`` holds, re-checked as each message arrives."""
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()

"""kwsd live: time to READY, idle cost on a microphone, and keyword-end -> MQTT latency.

    .venv/bin/python bench/live.py [--stream runs/eval/kw_test.wav] [--minutes 2] [--model FILE] [--settings FILE]
                                   [--starts 5] [--idle-s 30]

Needs pulseaudio, pactl and mosquitto (scripts/test.sh installs them); everything runs on
loopback in private instances that this script starts and stops.
- READY: a private PulseAudio server with a silent null *source* (a source with its own
  clock, as a microphone has); ``kwsd run`` on it with $NOTIFY_SOCKET pointing at a socket
  of ours: seconds from spawn to ``READY=1`` (median of 5 starts).  Then idle: CPU share of
  one core (utime+stime from /proc over 30 s of silence) and RSS.  (A null sink's monitor,
  which the tests use to play audio into kwsd, is no stand-in here: it delivers its first
  block 0.6-1.9 s after a stream opens, where the null source takes ~50 ms; parec sees the same.)
- Latency: a keyword stream (``kwsd stream make``, with its ``label,ms`` truth) with MQTT to a
  private mosquitto; for each correct detection, the time from the end of the spoken word (the
  last 10 ms frame within 1 s of the clip start whose energy is within 20 dB of the clip's
  loudest) to the message's arrival.  Twice: read by ``kwsd run --input --realtime``, and
  through the whole live path, played into a PulseAudio pipe source (``module-pipe-source``:
  each 10 ms of audio written to its FIFO when that 10 ms has passed, as a microphone delivers
  it) that ``kwsd run`` records from like any microphone.  That run's peak RSS (VmHWM, read
  just before it is stopped) is the "peak RSS live" of the speed issue's target.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kwsd.streams import word_end_ms  # noqa: E402
from kwsd.strict_yaml import load_yaml  # noqa: E402
from kwsd.wavfile import read_wav, write_wav  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import rss_mb  # noqa: E402


def start_pulse(run_dir: Path, source: str = "module-null-source source_name=kwsmic rate=16000 channels=1"):
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(run_dir),
        "HOME": str(run_dir),
        "PULSE_SERVER": f"unix:{run_dir}/native",
    }
    proc = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "-L",
            f"module-native-protocol-unix socket={run_dir}/native auth-anonymous=1",
            "-L",
            "module-null-sink sink_name=kwsnull rate=48000 channels=1 format=s16le",
            "-L",
            source,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    name = source.split("source_name=")[1].split()[0]
    subprocess.run(["pactl", "set-default-source", name], env=env, check=True)
    return proc, env


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_and_idle(tmp: Path, starts: int = 5, idle_s: float = 30.0, head: str = "") -> dict:
    pulse, env = start_pulse(tmp / "pulse")
    config = tmp / "mic.yaml"
    config.write_text(_join(head, "audio:\n  device: pulse\n"))
    ready = []
    try:
        for i in range(starts):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            path = tmp / f"notify{i}"
            sock.bind(str(path))
            sock.settimeout(30)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "kwsd", "run", "--config", str(config)],
                cwd=ROOT,
                env={**env, "NOTIFY_SOCKET": str(path)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while b"READY=1" not in sock.recv(4096):
                pass
            ready.append(time.monotonic() - t0)
            if i == starts - 1:  # the last one stays for the idle measurement
                time.sleep(5.0)
                c0, w0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(idle_s)
                idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0)
                rss = rss_mb(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            sock.close()
    finally:
        pulse.terminate()
        pulse.wait(10)
    return {"ready_s": ready, "idle_core_percent": 100 * idle, "idle_rss_mb": rss}


def word_ends_ms(audio: np.ndarray, truth: list[tuple[str, int]], rate: int = 16000) -> list[tuple[str, int, int]]:
    """(label, clip start, end of the spoken word) per truth entry, as ``kwsd stream eval`` finds it."""
    return [(label, start, word_end_ms(audio, rate, start)) for label, start in truth]


def latency(tmp: Path, stream: Path, minutes: float, head: str = "") -> dict:
    """Keyword end -> MQTT message, for a recording paced by kwsd (--realtime) and for the live path."""
    audio, rate = read_wav(str(stream))
    cut = audio[: int(minutes * 60 * rate)]
    wav = tmp / "stream.wav"
    write_wav(str(wav), cut, rate)
    truth = [
        (label, int(ms))
        for label, ms in (line.split(",") for line in Path(stream).with_suffix(".txt").read_text().split() if line)
        if int(ms) < minutes * 60000 - 1000
    ]
    ends = word_ends_ms(cut, truth, rate)
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import paho.mqtt.client as mqtt

    arrivals: list = []
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-live")
    client.on_connect = lambda c, u, f, rc, p: (c.subscribe("kwsd/bench/detection", qos=1), connected.set())
    client.on_message = lambda c, u, m: arrivals.append((time.monotonic(), json.loads(m.payload)))
    for _ in range(100):
        try:
            client.connect("127.0.0.1", port)
            break
        except OSError:
            time.sleep(0.1)
    client.loop_start()
    connected.wait(10)
    mqtt_yaml = _join(head, f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  site: bench\n")
    try:
        t0 = _run_file(tmp, wav, mqtt_yaml, minutes)
        time.sleep(1.0)
        results = {"file": _delays(list(arrivals), ends, t0)}
        arrivals.clear()
        t0, peak = _run_live(tmp, cut, rate, mqtt_yaml)
        time.sleep(1.0)
        results["live"] = {**_delays(list(arrivals), ends, t0), "peak_rss_mb": peak}
    finally:
        client.loop_stop()
        broker.terminate()
        broker.wait(10)
    return results


def _wait_for_line(proc: subprocess.Popen, text: bytes) -> None:
    line = proc.stderr.readline()
    while text not in line:
        if not line:
            raise RuntimeError(f"kwsd ended before logging {text!r}")
        line = proc.stderr.readline()


def _run_file(tmp: Path, wav: Path, mqtt_yaml: str, minutes: float) -> float:
    """``kwsd run --input --realtime``; returns the monotonic time of the recording's start."""
    config = tmp / "mqtt.yaml"
    config.write_text(mqtt_yaml)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kwsd", "run", "--config", str(config), "--input", str(wav), "--realtime"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _wait_for_line(proc, b"listening to")  # kwsd logs before the source starts; t0 is taken here
    t0 = time.monotonic()
    proc.communicate(timeout=minutes * 60 + 120)
    return t0


def _run_live(tmp: Path, audio: np.ndarray, rate: int, mqtt_yaml: str) -> tuple[float, float | None]:
    """Play ``audio`` into a PulseAudio pipe source that ``kwsd run`` records from; returns the
    monotonic time at which the first sample of ``audio`` was due (each 10 ms chunk is written when
    its last sample is due) and kwsd's peak RSS (VmHWM) over the run, in MB."""
    fifo = tmp / "mic.fifo"
    (tmp / "pulse-live").mkdir()
    pulse, env = start_pulse(
        tmp / "pulse-live", f"module-pipe-source source_name=kwspipe file={fifo} format=s16le rate={rate} channels=1"
    )
    chunk = rate // 100
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    config = tmp / "live.yaml"
    config.write_text(_join("audio:\n  device: pulse\n", mqtt_yaml))
    out = os.open(fifo, os.O_WRONLY)
    silence = np.zeros(chunk, "<i2").tobytes()
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kwsd", "run", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        flowing = threading.Event()
        threading.Thread(target=lambda: (_wait_for_line(proc, b"audio is flowing"), flowing.set()), daemon=True).start()
        t = time.monotonic()
        while not flowing.is_set():  # silence at real time until kwsd hears audio
            t += 0.01
            time.sleep(max(0.0, t - time.monotonic()))
            os.write(out, silence)
        t0 = t + 0.01
        for i in range(0, len(pcm), chunk):
            due = t0 + (i + chunk) / rate
            time.sleep(max(0.0, due - time.monotonic()))
            os.write(out, pcm[i : i + chunk].tobytes())
        for _ in range(300):  # 3 s of silence: the last detections get out
            due += 0.01
            time.sleep(max(0.0, due - time.monotonic()))
            os.write(out, silence)
        return t0, rss_mb(proc.pid, "VmHWM")
    finally:
        done = threading.Event()

        def keep_silence():  # a stalled source would hold up kwsd's shutdown in PortAudio
            while not done.wait(0.01):
                os.write(out, silence)

        writer = threading.Thread(target=keep_silence, daemon=True)
        writer.start()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
        done.set()
        writer.join()
        os.close(out)
        pulse.terminate()
        pulse.wait(10)


def _delays(arrivals: list, ends: list, t0: float) -> dict:
    delays = []
    for arrived, d in arrivals:
        match = [e for label, start, e in ends if label == d["keyword"] and start <= d["audio_ms"] <= start + 1750]
        if match:
            delays.append(1000 * (arrived - t0) - match[0])
    return {
        "matched": len(delays),
        "detections": len(arrivals),
        "keywords": len(ends),
        "median_ms": statistics.median(delays) if delays else None,
        "p95_ms": float(np.percentile(delays, 95)) if delays else None,
    }


def _join(*configs: str) -> str:
    """One config from several, section by section (``--settings`` may add to ``audio:`` too)."""
    import yaml

    merged: dict = {}
    for text in configs:
        for name, value in (load_yaml(text) or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
    return yaml.safe_dump(merged, sort_keys=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--stream",
        default=str(ROOT / "runs" / "eval" / "kw_test.wav"),
        help="a keyword stream with its .txt truth (kwsd stream make)",
    )
    ap.add_argument("--minutes", type=float, default=2.0, help="how much of the stream to play at real time")
    ap.add_argument("--model", help="a model file instead of the bundled one (to compare two in one session)")
    ap.add_argument("--settings", help="a config whose sections are added to every run's, e.g. config/quick.yaml")
    ap.add_argument("--starts", type=int, default=5, help="starts timed to READY (the median is reported)")
    ap.add_argument("--idle-s", type=float, default=30.0, help="seconds of silence over which idle CPU is measured")
    args = ap.parse_args(argv)
    head = f"models: [{json.dumps(str(Path(args.model).resolve()))}]\n" if args.model else ""
    if args.settings:
        head += Path(args.settings).read_text() + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "pulse").mkdir()
        live = ready_and_idle(tmp, args.starts, args.idle_s, head=head)
        lat = latency(tmp, Path(args.stream), args.minutes, head=head)
    print(
        f"READY after start: median {statistics.median(live['ready_s']):.2f} s "
        f"(of {', '.join(f'{s:.2f}' for s in live['ready_s'])})"
    )
    print(
        f"idle on a silent PulseAudio source: {live['idle_core_percent']:.2f}% of one core, "
        f"RSS {live['idle_rss_mb']:.0f} MB"
    )
    for kind, what in (("file", "a recording, --realtime"), ("live", "live, through PulseAudio")):
        r = lat[kind]
        if r["median_ms"] is not None:
            print(
                f"keyword end -> MQTT message ({what}): median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms "
                f"({r['matched']} detections matched of {r['detections']}; {r['keywords']} keywords played)"
            )
    if lat["live"].get("peak_rss_mb") is not None:
        print(f"peak RSS over the live run (VmHWM, start-up included): {lat['live']['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

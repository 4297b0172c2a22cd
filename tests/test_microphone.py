"""The microphone path for real: a PulseAudio server with a null sink, a recording played into
it with paplay, and `kwsd run` capturing its monitor through sounddevice/PortAudio."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
from conftest import ROOT, compose

# stop at 1 s, go at 3.5 s; the clips end by 4.5 s
EVENTS = [("stop", 1, 1.0), ("go", 0, 3.5)]


class KwsdOnMicrophone:
    """`kwsd run --json` on the PulseAudio device 'pulse', and the speech it will hear.

    A thread reads its stderr and notes when marker lines first appear (``wait_for``);
    ``play()`` plays the recording into the null sink; ``stop()`` ends kwsd with SIGINT and
    returns (exit status, stdout, stderr)."""

    MARKS = ("listening to microphone", "stopped (", "is back after")

    def __init__(self, tmp_path, env, config_text="audio:\n  device: pulse\n", seconds=5.0, extra_env=None):
        config = tmp_path / "kwsd.yaml"
        config.write_text(config_text)
        self.raw = tmp_path / "speech.raw"
        self.raw.write_bytes(np.round(compose(EVENTS, seconds, noise_volume=0.1) * 32767).astype("<i2").tobytes())
        self.env = env
        self.proc = subprocess.Popen([sys.executable, "-m", "kwsd", "run", "--config", str(config), "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                     env={**env, **(extra_env or {})})
        self.lines, self.when = [], {}
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.lines.append(line.decode())
            for mark in self.MARKS:
                if mark in self.lines[-1]:
                    self.when.setdefault(mark, time.monotonic())

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def wait_for(self, mark, timeout) -> bool:
        deadline = time.monotonic() + timeout
        while mark not in self.when and time.monotonic() < deadline:
            time.sleep(0.1)
        return mark in self.when

    def play(self):
        subprocess.run(["paplay", "--raw", "--rate=16000", "--channels=1", "--format=s16le", str(self.raw)],
                       env=self.env, check=True, timeout=30)

    def stop(self):
        self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)  # not communicate(): the reader thread alone owns stderr
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self.proc.stdout.read()  # a few JSON lines: they fit in the pipe buffer
        self._reader.join(5)
        return self.proc.returncode, out.decode(), self.err


def run_mic_session(pulse, tmp_path, config_text, seconds=6.0):
    """Start kwsd on device 'pulse', play the recording once audio flows, stop kwsd, return output."""
    kwsd = KwsdOnMicrophone(tmp_path, {**os.environ, **pulse}, config_text, seconds)
    try:
        assert kwsd.wait_for("listening to microphone", 30), kwsd.err
        time.sleep(2.0)  # the first capture callback comes 1-2 s after the stream starts
        kwsd.play()
        time.sleep(2.0)  # let the last windows be averaged
    finally:
        result = kwsd.stop()
    return result


def keywords(out):
    import json
    return [json.loads(line)["keyword"] for line in out.splitlines() if line.strip()]


def test_microphone_capture_through_pulseaudio_reports_the_keywords(pulse, tmp_path):
    rc, out, err = run_mic_session(pulse, tmp_path, "audio:\n  device: pulse\n")
    assert rc == 0, err
    assert "at 16000 Hz" in err
    assert keywords(out) == ["stop", "go"], err
    assert "0 overflow(s)" in err


def test_a_48khz_capture_is_resampled_to_the_model_rate(pulse, tmp_path):
    rc, out, err = run_mic_session(pulse, tmp_path, "audio:\n  device: pulse\n  sample_rate: 48000\n")
    assert rc == 0, err
    assert "at 48000 Hz" in err
    assert keywords(out) == ["stop", "go"], err


def test_devices_lists_inputs_with_their_default_rates(pulse):
    proc = subprocess.run([sys.executable, "-m", "kwsd", "devices"], capture_output=True, cwd=ROOT,
                          env={**os.environ, **pulse}, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [line.split() for line in proc.stdout.decode().splitlines()[1:]]
    assert any(r[3] == "pulse" and int(r[1]) > 0 for r in rows), proc.stdout.decode()


def test_a_device_name_that_matches_nothing_is_one_clear_error(pulse, tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("audio:\n  device: no-such-microphone\n")
    proc = subprocess.run([sys.executable, "-m", "kwsd", "run", "--config", str(config)], capture_output=True,
                          cwd=ROOT, env={**os.environ, **pulse}, timeout=60)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "no-such-microphone" in err[0] and "kwsd devices" in err[0]


def test_detection_resumes_by_itself_after_the_audio_server_is_killed_and_restarted(tmp_path_factory, tmp_path):
    """PulseAudio killed mid-run: kwsd says so, keeps retrying, and hears keywords again once it is back."""
    from conftest import NotifySocket, PulseServer
    server = PulseServer(tmp_path_factory.mktemp("pulse-restart"))
    server.start()
    notify = NotifySocket(tmp_path / "notify")  # as systemd's: STATUS= and the watchdog while it is away
    kwsd = KwsdOnMicrophone(tmp_path, server.env,
                            extra_env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000"})
    try:
        assert kwsd.wait_for("listening to microphone", 30), kwsd.err
        time.sleep(2.0)
        kwsd.play()
        time.sleep(1.5)
        server.stop(signal.SIGKILL)  # the audio server dies without a word
        assert kwsd.wait_for("stopped (", 20), kwsd.err
        time.sleep(2.0)  # a few failed attempts while it is away
        server.start()
        assert kwsd.wait_for("is back after", 60), kwsd.err
        time.sleep(2.0)
        kwsd.play()
        time.sleep(2.0)
    finally:
        rc, out, err = kwsd.stop()
        server.stop()
        notify.close()
    assert any("audio device lost" in m for _, m in notify.lines("STATUS=")), notify.messages
    lost, back = kwsd.when["stopped ("], kwsd.when["is back after"]
    assert any(lost < t < back for t, _ in notify.lines("WATCHDOG=1"))  # kept while it was reopening
    assert rc == 0, err
    assert keywords(out) == ["stop", "go", "stop", "go"], err  # before the restart, and after it
    assert "reopening failed (attempt 1" in err and "Traceback" not in err


def test_a_starved_kwsd_counts_the_overflow_and_goes_on_detecting(pulse, tmp_path):
    """kwsd stopped (SIGSTOP) for 4 s while the microphone runs: the lost audio is counted and logged,
    the device is not needlessly reopened, and keywords spoken afterwards are detected."""
    kwsd = KwsdOnMicrophone(tmp_path, {**os.environ, **pulse})
    try:
        assert kwsd.wait_for("listening to microphone", 30), kwsd.err
        time.sleep(2.0)
        kwsd.proc.send_signal(signal.SIGSTOP)  # as if the CPU were taken away for 4 s
        time.sleep(4.0)
        kwsd.proc.send_signal(signal.SIGCONT)
        time.sleep(2.0)
        kwsd.play()
        time.sleep(2.0)
    finally:
        rc, out, err = kwsd.stop()
    assert rc == 0, err
    assert keywords(out) == ["stop", "go"], err
    overflows = int(re.search(r"(\d+) overflow\(s\)", err.splitlines()[-1]).group(1))
    assert overflows >= 1 and "audio overflow" in err, err
    assert "reopening" not in err, err

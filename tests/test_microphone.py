"""The microphone path for real: a PulseAudio server with a null sink, a recording played into
it with paplay, and `kwsd run` capturing its monitor through sounddevice/PortAudio."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import DEFAULT_MODEL, ROOT, compose

from kwsd.model import KeywordModel, recommended_stride_ms

pytestmark = pytest.mark.integration  # starts real programs: see pyproject.toml

# stop at 1 s, go at 3.5 s; the clips end by 4.5 s
EVENTS = [("stop", 1, 1.0), ("go", 0, 3.5)]


class KwsdOnMicrophone:
    """`kwsd run --json` on the PulseAudio device 'pulse', and the speech it will hear.

    Two threads read its stderr (marker lines: ``wait_for``) and its stdout (detections:
    ``wait_detections``), so that a test waits for what kwsd says rather than for a guessed
    time; ``play()`` plays the recording into the null sink; ``stop()`` ends kwsd with SIGINT
    and returns (exit status, the keywords heard in order, stderr)."""

    MARKS = ("listening to microphone", "audio is flowing", "stopped (", "is back after", "audio overflow")

    def __init__(self, tmp_path, env, config_text="audio:\n  device: pulse\n", seconds=5.0, extra_env=None):
        config = tmp_path / "kwsd.yaml"
        config.write_text(config_text)
        self.raw = tmp_path / "speech.raw"
        self.raw.write_bytes(np.round(compose(EVENTS, seconds, noise_volume=0.1) * 32767).astype("<i2").tobytes())
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kwsd", "run", "--config", str(config), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**env, **(extra_env or {})},
        )
        self.lines, self.when, self.counts, self.detections = [], {}, {}, []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode()
            with self._changed:
                self.lines.append(line)
                for mark in self.MARKS:
                    if mark in line:
                        self.when.setdefault(mark, time.monotonic())
                        self.counts[mark] = self.counts.get(mark, 0) + 1
                self._changed.notify_all()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            with self._changed:
                self.detections.append(json.loads(raw)["keyword"])
                self._changed.notify_all()

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def wait_for(self, mark, timeout, count=1) -> bool:
        """Until ``mark`` has appeared ``count`` times on stderr."""
        return self.wait_for_any([mark], timeout, count)

    def wait_for_any(self, marks, timeout, count=1) -> bool:
        """Until one of ``marks`` has appeared ``count`` times on stderr."""
        with self._changed:
            return self._changed.wait_for(lambda: any(self.counts.get(m, 0) >= count for m in marks), timeout)

    def wait_detections(self, n, timeout=15) -> bool:
        """Until ``n`` detections in all have been printed."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.detections) >= n, timeout)

    def play(self):
        subprocess.run(
            ["paplay", "--raw", "--rate=16000", "--channels=1", "--format=s16le", str(self.raw)],
            env=self.env,
            check=True,
            timeout=30,
        )

    def stop(self):
        self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)  # not communicate(): the reader thread alone owns stderr
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(5)
        return self.proc.returncode, self.detections, self.err


def run_mic_session(pulse, tmp_path, config_text, seconds=6.0):
    """Start kwsd on device 'pulse', play the recording once audio flows, stop kwsd, return output."""
    kwsd = KwsdOnMicrophone(tmp_path, {**os.environ, **pulse}, config_text, seconds)
    try:
        assert kwsd.wait_for("audio is flowing", 30), kwsd.err  # the first callback: 1-2 s after opening
        kwsd.play()
        kwsd.wait_detections(2)  # "stop", "go"; what else comes within its time is kept too
    finally:
        result = kwsd.stop()
    return result


def test_microphone_capture_through_pulseaudio_reports_the_keywords(pulse, tmp_path):
    rc, heard, err = run_mic_session(pulse, tmp_path, "audio:\n  device: pulse\n")
    assert rc == 0, err
    stride_ms = recommended_stride_ms(KeywordModel.load(DEFAULT_MODEL).metadata)
    assert "at 16000 Hz" in err and f", {stride_ms} ms blocks" in err  # one block per clip stride
    # PulseAudio's device claims 32 channels; the server mixes the source down to the one kwsd opens
    assert "'pulse' at 16000 Hz, one channel," in err
    assert heard == ["stop", "go"], err
    assert "0 overflow(s)" in err


def test_a_48khz_capture_is_resampled_to_the_model_rate(pulse, tmp_path):
    rc, heard, err = run_mic_session(pulse, tmp_path, "audio:\n  device: pulse\n  sample_rate: 48000\n")
    assert rc == 0, err
    assert "at 48000 Hz" in err and "20 ms blocks" in err  # short blocks: the resampler holds samples back
    assert heard == ["stop", "go"], err


def test_devices_lists_inputs_with_their_default_rates(pulse):
    proc = subprocess.run(
        [sys.executable, "-m", "kwsd", "devices"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **pulse},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [line.split() for line in proc.stdout.decode().splitlines()[1:]]
    assert any(r[3] == "pulse" and int(r[1]) > 0 for r in rows), proc.stdout.decode()


def test_a_device_name_that_matches_nothing_is_one_clear_error(pulse, tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("audio:\n  device: no-such-microphone\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kwsd", "run", "--config", str(config)],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **pulse},
        timeout=60,
    )
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "no-such-microphone" in err[0] and "kwsd devices" in err[0]


def test_detection_resumes_by_itself_after_the_audio_server_is_killed_and_restarted(tmp_path_factory, tmp_path):
    """PulseAudio killed mid-run: kwsd says so, keeps retrying, and hears keywords again once it is back."""
    from conftest import NotifySocket, PulseServer

    server = PulseServer(tmp_path_factory.mktemp("pulse-restart"))
    server.start()
    notify = NotifySocket(tmp_path / "notify")  # as systemd's: STATUS= and the watchdog while it is away
    kwsd = KwsdOnMicrophone(
        tmp_path, server.env, extra_env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000"}
    )
    try:
        assert kwsd.wait_for("audio is flowing", 30), kwsd.err
        kwsd.play()
        assert kwsd.wait_detections(2), kwsd.err
        server.stop(signal.SIGKILL)  # the audio server dies without a word
        assert kwsd.wait_for("stopped (", 20), kwsd.err
        time.sleep(2.0)  # the outage itself: a few failed attempts while it is away
        server.start()
        assert kwsd.wait_for("is back after", 60), kwsd.err
        assert kwsd.wait_for("audio is flowing", 30, count=2), kwsd.err
        kwsd.play()
        kwsd.wait_detections(4)
    finally:
        rc, heard, err = kwsd.stop()
        server.stop()
        notify.close()
    assert any("audio device lost" in m for _, m in notify.lines("STATUS=")), notify.messages
    lost, back = kwsd.when["stopped ("], kwsd.when["is back after"]
    assert any(lost < t < back for t, _ in notify.lines("WATCHDOG=1"))  # kept while it was reopening
    assert rc == 0, err
    assert heard == ["stop", "go", "stop", "go"], err  # before the restart, and after it
    assert "reopening failed (attempt 1" in err and "Traceback" not in err


def test_a_starved_kwsd_counts_the_overflow_and_goes_on_detecting(pulse, tmp_path):
    """kwsd stopped (SIGSTOP) for 4 s while the microphone runs: the lost audio is counted and logged,
    the device is not needlessly reopened, and keywords spoken afterwards are detected.
    The smallest ring (0.5 s): with the default 2 s ring the test failed in 2 of 4 full runs on
    2026-11-24 (never alone): no overflow at all, probably because PulseAudio held the 4 s and
    handed them over in a burst that the ring took whole (a guess, not reproduced).
    Once in many runs (session 60) the capture stream gave no audio at all after the stop; kwsd
    then waits out its grace (5 s, as for a new stream) and its stall limit (3 s), logs the lost
    audio and reopens the device: that path is accepted, but not a reopening before the grace."""
    config = "audio:\n  device: pulse\n  ring_seconds: 0.5\n"
    kwsd = KwsdOnMicrophone(tmp_path, {**os.environ, **pulse}, config_text=config)
    try:
        assert kwsd.wait_for("audio is flowing", 30), kwsd.err
        kwsd.proc.send_signal(signal.SIGSTOP)  # as if the CPU were taken away for 4 s
        time.sleep(4.0)  # the starvation itself
        kwsd.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        # it noticed, and reads the microphone again (grace 5 s + stall 3 s + the reopening < 15 s)
        assert kwsd.wait_for_any(["audio overflow", "is back after"], 15), kwsd.err
        kwsd.play()
        kwsd.wait_detections(2)
    finally:
        rc, heard, err = kwsd.stop()
    assert rc == 0, err
    assert heard == ["stop", "go"], err
    if "stopped (" in kwsd.when:  # the stream stalled: lost audio logged, the device reopened in time
        assert "stopped (no audio for 3 s); reopening it" in err, err
        assert kwsd.when["stopped ("] - resumed >= 5.0, err  # not before the grace a stopped process gets
        return
    overflows = int(re.search(r"(\d+) overflow\(s\)", err.splitlines()[-1]).group(1))
    assert overflows >= 1 and "audio overflow" in err, err
    assert "reopening" not in err, err


SCAN = """
import sys
if sys.argv[1] == "kwsd":
    from kwsd.microphone import import_sounddevice
    import_sounddevice()
else:
    import sounddevice
print(open("/proc/self/maps").read())
"""
PLUGIN_LIBRARIES = (
    "libasound_module_pcm_a52",
    "libasound_module_pcm_jack",
    "libavcodec",
)  # libjack: PortAudio links it


def loaded_after_scan(how: str, **env) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ALSA_CONFIG_PATH", "KWSD_ALSA_PLUGINS_OFF")}
    maps = subprocess.run(
        [sys.executable, "-c", SCAN, how], capture_output=True, env={**base, **env}, cwd=ROOT, timeout=60, check=True
    ).stdout.decode()
    return [lib for lib in PLUGIN_LIBRARIES if lib in maps]


def test_the_device_scan_leaves_alsas_output_plugins_unloaded():
    """PortAudio opens every ALSA PCM to list devices; kwsd's ALSA configuration turns the output
    plugins' PCMs off, so their libraries (libavcodec, jack: 14 MB) stay out of the daemon. The
    capture through PulseAudio still works (the tests above run with it); a configuration the user
    chose (ALSA_CONFIG_PATH) is left alone."""
    assert loaded_after_scan("plain")  # this machine has the plugins (libasound2-plugins)
    assert loaded_after_scan("kwsd") == []
    assert loaded_after_scan("kwsd", ALSA_CONFIG_PATH="/usr/share/alsa/alsa.conf") == loaded_after_scan("plain")


@pytest.mark.parametrize(
    "name, hostapi, channels, opened",
    [
        ("pulse", "ALSA", 32, 1),  # the sound server mixes the source down itself
        ("default", "ALSA", 64, 1),  # PipeWire's or ALSA's plug default
        ("USB PnP Sound Device: Audio (hw:1,0)", "ALSA", 2, 2),  # hardware: kwsd averages two
        ("ReSpeaker 4 Mic Array: USB Audio (hw:2,0)", "ALSA", 6, 2),
        ("dsnoop", "ALSA", 2, 2),  # no converter: it may refuse fewer channels than the card's
        ("USB mic: Audio (hw:1,0)", "ALSA", 1, 1),
        ("system", "JACK Audio Connection Kit", 8, 2),
    ],
)
def test_channels_opened_without_audio_channel(name, hostapi, channels, opened):
    from kwsd.microphone import MicrophoneSource

    class Apis:  # stands in for sounddevice's host API table
        @staticmethod
        def query_hostapis(index):
            return {"name": hostapi}

    source = MicrophoneSource.__new__(MicrophoneSource)
    source.sd = Apis()
    assert source._channels_to_mix({"name": name, "hostapi": 0, "max_input_channels": channels}) == opened

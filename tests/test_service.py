"""systemd integration: the notify protocol against a socket the test owns, the watchdog,
journald fields, SIGHUP reload, and the unit file checked by systemd-analyze."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, SAMPLE, SAMPLE_TRUTH, NotifySocket, compose

from kwsd.wavfile import read_wav, write_wav

pytestmark = pytest.mark.integration  # starts real programs: see pyproject.toml


def start_kwsd(args, env, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "kwsd", "run", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_watchdog_status_and_stopping_are_notified(tmp_path, abstract):
    notify = NotifySocket(tmp_path / "notify", abstract=f"kwsd-test-{os.getpid()}" if abstract else None)
    proc = start_kwsd(["--input", SAMPLE, "--realtime"], {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"})
    time.sleep(6.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    notify.close()
    assert proc.returncode == 0, err.decode()
    names = [m.split("=")[0] for _, m in notify.messages]
    assert names.count("READY") == 1
    assert names.count("WATCHDOG") >= 10  # every 0.2 s for ~5 s
    assert any(m.startswith("STATUS=listening; ") for _, m in notify.messages)
    stopping = notify.lines("STOPPING=1")
    assert len(stopping) == 1
    assert not [t for t, _ in notify.lines("WATCHDOG") if t > stopping[0][0]]
    assert names.index("READY") < names.index("WATCHDOG")


def test_the_watchdog_is_not_petted_while_no_audio_flows(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    proc = start_kwsd(
        ["--input", "-"], {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}, stdin=subprocess.PIPE
    )
    tenth = np.round(compose([], 0.1) * 32767).astype("<i2").tobytes()

    def deliver(seconds: float) -> None:
        """Audio as a microphone delivers it: a tenth of a second every tenth of a second (one
        burst of 2 s would be processed in a few ms, leaving the 0.2 s watchdog check to chance)."""
        for _ in range(round(seconds * 10)):
            proc.stdin.write(tenth)
            proc.stdin.flush()
            time.sleep(0.1)

    deliver(2.0)
    starved_from = time.monotonic() + 0.5  # the last audio is consumed within a stride or two
    time.sleep(2.5)  # the "microphone" delivers nothing: a stuck pipeline
    starved_to = time.monotonic()
    deliver(1.5)
    proc.stdin.close()
    proc.wait(30)
    notify.close()
    pets = [t for t, _ in notify.lines("WATCHDOG=1")]
    assert notify.lines("READY=1")
    assert [t for t in pets if t < starved_from], "no watchdog while audio flowed"
    assert not [t for t in pets if starved_from < t < starved_to], "watchdog petted with no audio"
    assert [t for t in pets if t > starved_to], "watchdog did not resume with the audio"


def test_journald_records_carry_keyword_and_score_fields(tmp_path):
    import logging

    from kwsd.detection import Detection
    from kwsd.service import JournalHandler
    from kwsd.sinks.console import log_detection

    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(tmp_path / "journal"))
    journal.settimeout(5)
    handler = JournalHandler(address=str(tmp_path / "journal"))
    logger = logging.getLogger("kwsd.detection")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_detection(Detection("stop", 0.91234, 3880, "default"))
    finally:
        logger.removeHandler(handler)
    fields = dict(line.split("=", 1) for line in journal.recv(65536).decode().splitlines())
    assert fields["KEYWORD"] == "stop" and fields["SCORE"] == "0.9123" and fields["MODEL"] == "default"
    assert fields["PRIORITY"] == "6" and fields["SYSLOG_IDENTIFIER"] == "kwsd"
    assert "detected 'stop'" in fields["MESSAGE"]


def test_sighup_reloads_thresholds_without_reopening_audio_and_rejects_a_bad_config(tmp_path):
    audio, _ = read_wav(str(SAMPLE))
    long = tmp_path / "long.wav"
    write_wav(str(long), np.concatenate([audio, audio]), 16000)  # stop at 3, 6 and again at 13, 16 s
    config = tmp_path / "kwsd.yaml"
    config.write_text("recognize:\n  detection_threshold: 0.7\n")
    proc = start_kwsd(["--config", config, "--input", long, "--realtime", "--json"], {})
    time.sleep(9.0)
    config.write_text("recognize:\n  thresholds: {stop: 1.0}\n")  # stop can never pass 1.0
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    config.write_text("recognize:\n  detection_treshold: 0.1\n")  # a typo: rejected, old config kept
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    config.write_text("recognize:\n  keywords: [stpo]\n")  # a word the model lacks: rejected too
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 0, err
    import json

    found = [json.loads(line) for line in out.decode().splitlines()]
    before = [d["keyword"] for d in found if d["audio_ms"] < 9000]
    after = [d["keyword"] for d in found if d["audio_ms"] > 10500]
    assert "stop" in before and after and "stop" not in after, found
    assert "configuration reloaded" in err and err.count("reload rejected") == 2 and "detection_treshold" in err
    assert "'stpo' is not a keyword of the loaded model" in err
    assert "stop 1," in err.split("configuration reloaded")[1]  # the log shows the thresholds now in force
    assert err.count("listening to") == 1  # the audio source was opened once
    assert "0 overflow(s)" in err


def _catches_sighup(pid: int) -> bool:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & 1 << (signal.SIGHUP - 1))
    return False


def test_sighup_while_starting_is_a_reload_once_running_not_a_kill():
    proc = subprocess.Popen(
        [sys.executable, "-m", "kwsd", "run", "--input", str(SAMPLE), "--realtime", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not _catches_sighup(proc.pid):  # the first moment kwsd's own code runs: models not loaded yet
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.002)
    proc.send_signal(signal.SIGHUP)
    early, _, _ = select.select([proc.stderr], [], [], 0)
    assert not early, "kwsd had already logged its start-up: the signal did not come early"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "configuration reloaded" in err.decode()
    assert len(out.decode().splitlines()) == len(SAMPLE_TRUTH)  # and the whole sample was still heard


def test_unit_file_verifies_and_is_hardened(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of systemd on Debian"
    unit = (ROOT / "systemd" / "kwsd.service").read_text()
    assert "Type=notify" in unit and re.search(r"^WatchdogSec=\d+", unit, re.M)
    # verify checks that ExecStart exists: point it at this installation of kwsd
    kwsd_bin = shutil.which("kwsd", path=os.path.dirname(sys.executable))
    assert kwsd_bin, "kwsd is not installed beside this Python"
    tmp = tmp_path / "kwsd.service"
    tmp.write_text(unit.replace("/opt/kwsd/.venv/bin/kwsd", kwsd_bin))
    verify = subprocess.run([analyze, "verify", str(tmp)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", str(ROOT / "systemd" / "kwsd.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = float(re.search(r"Overall exposure level for kwsd.service: ([\d.]+)", security.stdout).group(1))
    assert exposure <= 2.0, security.stdout[-3000:]


SECCOMP_EXEC = """
import errno, os, sys
import pyseccomp as seccomp
allowed, error = sys.argv[1].split(","), sys.argv[2]
f = seccomp.SyscallFilter(seccomp.ERRNO(getattr(errno, error)) if error else seccomp.KILL_PROCESS)
for name in allowed:
    try:
        f.add_rule(seccomp.ALLOW, name)
    except (ValueError, OSError):
        pass  # a system call this architecture does not have
f.load()
os.execv(sys.executable, [sys.executable, "-m", "kwsd", *sys.argv[3:]])
"""


def syscall_group(name: str, seen=None) -> set:
    """The system calls of a systemd group (``@system-service``), nested groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True)
    calls = set()
    for line in out.stdout.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                calls |= syscall_group(item, seen)
        else:
            calls.add(item)
    return calls


def unit_syscall_filter():
    """(allowed system calls, errno name or '') exactly as the unit's SystemCallFilter= lines say.

    systemd semantics: an allow list (plus @default, always permitted), then each ``~`` line
    removes its calls; anything else gets SystemCallErrorNumber= or, unset, kills the process."""
    allowed, error = syscall_group("@default"), ""
    for line in (ROOT / "systemd" / "kwsd.service").read_text().splitlines():
        if line.startswith("SystemCallFilter="):
            value = line.split("=", 1)[1].strip()
            groups = value.lstrip("~").split()
            calls = set().union(*(syscall_group(g) if g.startswith("@") else {g} for g in groups))
            allowed = allowed - calls if value.startswith("~") else allowed | calls
        elif line.startswith("SystemCallErrorNumber="):
            error = line.split("=", 1)[1].strip()
    return allowed, error


def test_the_units_system_call_filter_applied_for_real_lets_kwsd_run(pulse, tmp_path):
    """kwsd under a real seccomp filter built from the unit's SystemCallFilter= lines: from a file,
    and from the microphone (PortAudio asks for real-time scheduling; numpy's BLAS may call mbind)."""
    allowed, error = unit_syscall_filter()
    assert "sched_setscheduler" not in allowed and "mbind" not in allowed  # the unit does deny these

    def confined(*args, timeout=60, **kw):
        return subprocess.Popen(
            [sys.executable, "-c", SECCOMP_EXEC, ",".join(sorted(allowed)), error, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kw,
        )

    proc = confined("run", "--input", str(SAMPLE), "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode} (-31 = killed by SIGSYS): {err.decode()[-2000:]}"
    assert [line for line in out.decode().splitlines() if '"keyword"' in line]

    config = tmp_path / "kwsd.yaml"
    config.write_text("audio:\n  device: pulse\n")
    raw = tmp_path / "speech.raw"
    raw.write_bytes(np.round(compose([("stop", 1, 1.0)], 3.0, noise_volume=0.1) * 32767).astype("<i2").tobytes())
    env = {**os.environ, **pulse}
    notify = NotifySocket(tmp_path / "notify")
    proc = confined("run", "--config", str(config), "--json", env={**env, "NOTIFY_SOCKET": notify.address})
    heard = threading.Event()
    stdout = []

    def read_stdout():
        for line in proc.stdout:
            stdout.append(line)
            if b'"keyword"' in line:
                heard.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        assert notify.wait_for("READY=1", 30)  # audio flows from the microphone
        subprocess.run(
            ["paplay", "--raw", "--rate=16000", "--channels=1", "--format=s16le", str(raw)],
            env=env,
            check=True,
            timeout=30,
        )
        heard.wait(10)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        proc.wait(30)
        reader.join(5)
        notify.close()
    assert proc.returncode == 0, f"exit {proc.returncode} (-31 = killed by SIGSYS): {err.decode()[-2000:]}"
    assert b'"stop"' in b"".join(stdout), err.decode()

"""Command hooks (real processes) and GPIO hooks (gpiod's v2 API through a test double)."""

import json
import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from conftest import SAMPLE, detections, kwsd
from gpiod.line import Direction, Value

from kwsd.detection import Detection
from kwsd.sinks.gpio import GpioHooks
from kwsd.sinks.hooks import CommandHooks
from kwsd.sinks.settings import CommandHook, GpioHook

pytestmark = pytest.mark.integration  # starts real programs: see pyproject.toml

RECORD = """
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("KWSD_")}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "env": env}) + "\\n")
"""


def test_hooks_run_per_keyword_with_the_detection_in_their_environment(tmp_path):
    script, out = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORD)
    config = tmp_path / "kwsd.yaml"
    config.write_text(f"""
hooks:
  max_concurrent: 16  # a file is processed faster than real time: let every hook run
  commands:
    - keyword: stop
      argv: [{sys.executable}, {script}, {out}, "two words", "$HOME;rm -rf /"]
    - keyword: "*"
      argv: [{sys.executable}, {script}, {out}, any]
    - keyword: stop
      argv: [/nonexistent/program]
    - keyword: stop
      argv: [{sys.executable}, -c, "import sys; sys.exit(3)"]
    - keyword: stop
      argv: [{sys.executable}, -c, "import time; time.sleep(60)"]
      timeout_s: 0.5
""")
    t0 = time.monotonic()
    proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True)
    assert time.monotonic() - t0 < 30  # the hanging hook was killed, not waited for
    found = detections(proc)
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    stops = [d for d in found if d["keyword"] == "stop"]
    literal = [c for c in calls if c["argv"][0] == "two words"]
    assert len(literal) == len(stops) >= 1
    assert literal[0]["argv"] == ["two words", "$HOME;rm -rf /"]  # no shell: passed as is
    assert sorted(c["env"]["KWSD_KEYWORD"] for c in calls if c["argv"] == ["any"]) == sorted(
        d["keyword"] for d in found
    )
    # hooks run concurrently, so their records may come in any order: match them as a set
    assert sorted((c["env"]["KWSD_SCORE"], c["env"]["KWSD_TIMESTAMP"]) for c in literal) == sorted(
        (f"{d['score']:.4f}", d["timestamp"]) for d in stops
    )
    env = literal[0]["env"]
    assert env["KWSD_SITE"] and env["KWSD_MODEL"] == "default"
    err = proc.stderr.decode()
    assert "/nonexistent/program could not start" in err
    assert "killed after 0.5 s" in err
    assert [line for line in err.splitlines() if "exited with status" in line][0].endswith("status 3")  # said nothing


def test_a_hanging_hook_neither_delays_detection_nor_exceeds_the_cap():
    hooks = CommandHooks(
        [CommandHook("*", [sys.executable, "-c", "import time; time.sleep(30)"], 1.0)], max_concurrent=2
    )
    t0 = time.monotonic()
    for i in range(5):
        hooks(Detection("go", 0.9, 1000 * i, "default"))
    assert time.monotonic() - t0 < 0.5  # the worker never waits on a hook
    assert hooks.skipped == 3
    hooks.close(10)
    assert hooks.failed == 2  # both killed at their timeout


class Calls(list):
    """Line changes as (time, chip, line, value); ``wait_for`` blocks until enough have come."""

    def __init__(self):
        super().__init__()
        self.changed = threading.Condition()

    def append(self, item):
        with self.changed:
            super().append(item)
            self.changed.notify_all()

    def wait_for(self, line, n, timeout=5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: sum(1 for c in self if c[2] == line) >= n, timeout)


class FakeRequest:
    def __init__(self, calls, path, config):
        self.calls, self.path, self.config = calls, path, config
        self.released = False

    def set_value(self, offset, value):
        self.calls.append((time.monotonic(), self.path, offset, value))

    def release(self):
        self.released = True


def fake_gpiod(requests, calls):
    """The slice of gpiod's v2 API kwsd uses: LineSettings and request_lines."""
    from gpiod import LineSettings

    def request_lines(path, config, consumer=None):
        if not path.startswith("/dev/gpiochip"):
            raise FileNotFoundError(2, "No such file or directory", path)
        r = FakeRequest(calls, path, config)
        requests.append((r, consumer))
        return r

    return SimpleNamespace(LineSettings=LineSettings, request_lines=request_lines)


def test_gpio_pulse_and_toggle_through_gpiods_v2_api():
    requests, calls = [], Calls()
    hooks = GpioHooks(
        [
            GpioHook("yes", 17, "/dev/gpiochip0", "pulse", 200, False),
            GpioHook("stop", 27, "/dev/gpiochip0", "toggle", active_low=True),
        ],
        gpiod_module=fake_gpiod(requests, calls),
    )
    (yes_req, consumer), (stop_req, _) = requests
    assert consumer == "kwsd"
    settings = stop_req.config[27]
    assert settings.direction == Direction.OUTPUT and settings.active_low is True
    assert settings.output_value == Value.INACTIVE
    t0 = time.monotonic()
    hooks(Detection("yes", 0.9, 1000, "default"))
    hooks(Detection("stop", 0.9, 2000, "default"))
    hooks(Detection("stop", 0.9, 4000, "default"))
    assert calls.wait_for(17, 2) and calls.wait_for(27, 2)  # the pulse has ended; toggled on and off
    hooks.close()
    yes = [(t - t0, v) for t, p, o, v in calls if o == 17]
    assert yes[0][1] == Value.ACTIVE and yes[1][1] == Value.INACTIVE
    assert 0.15 < yes[1][0] - yes[0][0] < 0.35  # a 200 ms pulse
    stop = [v for _, p, o, v in calls if o == 27]
    assert stop[:2] == [Value.ACTIVE, Value.INACTIVE]  # toggled on, then off
    assert yes_req.released and stop_req.released


def test_a_missing_gpio_chip_is_one_clear_error(tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("hooks:\n  gpio:\n    - {keyword: yes, chip: /dev/gpiochip99, line: 17}\n")
    proc = kwsd("run", "--config", config, "--input", SAMPLE)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "/dev/gpiochip99" in err[0] and "17" in err[0]


def test_hook_config_errors_name_the_key(tmp_path):
    config = tmp_path / "kwsd.yaml"
    config.write_text("hooks:\n  commands:\n    - keyword: stop\n      argv: echo hi\n")
    proc = kwsd("check-config", "--config", config)
    assert proc.returncode == 78 and "hooks.commands.0.argv" in proc.stderr.decode()
    config.write_text("hooks:\n  gpio:\n    - keyword: 'yes'\n")  # a line offset is required
    proc = kwsd("check-config", "--config", config)
    assert proc.returncode == 78 and "hooks.gpio.0: the required key 'line' is missing" in proc.stderr.decode()


def test_hooks_see_the_systems_alsa_configuration_not_kwsds(tmp_path, monkeypatch):
    """kwsd points ALSA at its own leaner configuration before PortAudio starts
    (kwsd/alsa_config.py); a hook that plays a sound gets the environment without it."""
    from kwsd import alsa_config

    monkeypatch.delenv("ALSA_CONFIG_PATH", raising=False)
    monkeypatch.setattr(alsa_config, "ADDED", set())
    try:
        assert alsa_config.lean_alsa_config()
        assert os.environ["ALSA_CONFIG_PATH"].endswith("root.conf")
        out = tmp_path / "env.json"
        dump = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
        hooks = CommandHooks([CommandHook("*", [sys.executable, "-c", dump, str(out)], 10.0)], max_concurrent=1)
        hooks(Detection("go", 0.9, 1000, "default"))
        hooks.close(10)
        env = json.loads(out.read_text())
        assert "ALSA_CONFIG_PATH" not in env and "KWSD_ALSA_PLUGINS_OFF" not in env
        assert env["KWSD_KEYWORD"] == "go"
    finally:
        os.environ.pop("ALSA_CONFIG_PATH", None)
        os.environ.pop("KWSD_ALSA_PLUGINS_OFF", None)

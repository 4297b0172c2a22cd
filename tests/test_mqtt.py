"""MQTT through a real mosquitto broker on loopback: payloads, topics, outages, mute, discovery."""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import paho.mqtt.publish as publish
import pytest
from conftest import ROOT, SAMPLE, Subscriber, detections, kwsd
from hypothesis import given, settings
from hypothesis import strategies as st

from kwsd.mute import MuteSwitch
from kwsd.wavfile import read_wav, write_wav

pytestmark = pytest.mark.integration  # starts real programs: see pyproject.toml

SITE = "kitchen"


def mqtt_config(tmp_path, port, extra=""):
    path = tmp_path / "kwsd.yaml"
    path.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  site: {SITE}\n  flush_timeout_s: 20\n{extra}")
    return path


def run_realtime(config, wav) -> subprocess.Popen:
    """`kwsd run --json` on ``wav`` paced at real time, in the background, output piped."""
    argv = [sys.executable, "-m", "kwsd", "run", "--config", str(config), "--input", str(wav), "--realtime", "--json"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_every_detection_arrives_with_its_payload_and_status_is_retained(broker, tmp_path):
    sub = Subscriber(broker.port)
    proc = kwsd("run", "--config", mqtt_config(tmp_path, broker.port), "--input", SAMPLE, "--json", check=True)
    printed = detections(proc)
    assert len(printed) >= 3
    assert sub.wait_for(lambda: len(sub.on(f"kwsd/{SITE}/detection")) == len(printed))
    received = [json.loads(p) for p, _ in sub.on(f"kwsd/{SITE}/detection")]
    assert received == [{**d, "site": SITE} for d in printed]
    assert [p for p, _ in sub.on(f"kwsd/{SITE}/status")] == ["online", "offline"]
    sub.close()
    late = Subscriber(broker.port)  # a subscriber arriving later sees the retained status
    assert late.wait_for(lambda: late.on(f"kwsd/{SITE}/status") == [("offline", True)])
    late.close()


def test_detections_made_while_the_broker_is_down_arrive_after_it_returns(broker, tmp_path):
    """The broker killed three times during a 20 s stream: every detection arrives, at least once."""
    audio, _ = read_wav(str(SAMPLE))
    long = tmp_path / "long.wav"
    write_wav(str(long), np.concatenate([audio, audio]), 16000)  # 20 s: 8 keywords, paced at real time
    sub = Subscriber(broker.port)
    proc = run_realtime(mqtt_config(tmp_path, broker.port), long)
    time.sleep(3.0)
    for down_s, up_s in ((3.0, 1.0), (3.0, 1.0), (4.0, 0.0)):  # outages at about 3-6, 7-10 and 11-15 s
        broker.stop(kill=True)
        time.sleep(down_s)
        broker.start()
        time.sleep(up_s)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    printed = [json.loads(line) for line in out.decode().splitlines()]
    assert sum(3000 < d["audio_ms"] < 15000 for d in printed) >= 3  # several were made during the outages
    assert sub.wait_for(
        lambda: (
            {json.loads(p)["audio_ms"] for p, _ in sub.on(f"kwsd/{SITE}/detection")} == {d["audio_ms"] for d in printed}
        ),
        timeout=30,
    ), err.decode()
    received = [json.loads(p)["audio_ms"] for p, _ in sub.on(f"kwsd/{SITE}/detection")]
    duplicates = len(received) - len(set(received))  # QoS 1 is at-least-once: a resend may arrive twice
    assert duplicates <= 3, received
    assert "lost the broker" in err.decode()
    sub.close()


def test_last_will_says_offline_when_kwsd_dies(broker, tmp_path):
    audio, _ = read_wav(str(SAMPLE))
    long = tmp_path / "long.wav"
    write_wav(str(long), audio, 16000)
    sub = Subscriber(broker.port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kwsd",
            "run",
            "--config",
            str(mqtt_config(tmp_path, broker.port)),
            "--input",
            str(long),
            "--realtime",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert sub.wait_for(
        lambda: (
            ("online", True) in [(p, r) for p, r in sub.on(f"kwsd/{SITE}/status")]
            or ("online", False) in sub.on(f"kwsd/{SITE}/status")
        )
    )
    proc.kill()  # no clean shutdown: the broker publishes the Last Will
    proc.wait()
    assert sub.wait_for(lambda: [p for p, _ in sub.on(f"kwsd/{SITE}/status")][-1:] == ["offline"], timeout=120)
    sub.close()


def test_set_mutes_and_resumes_and_malformed_payloads_are_ignored(broker, tmp_path):
    audio, _ = read_wav(str(SAMPLE))
    long = tmp_path / "long.wav"
    write_wav(str(long), np.concatenate([audio, audio]), 16000)  # keywords at 0.5, 3, 6, 8.5, 10.5, 13, 16, 18.5 s
    sub = Subscriber(broker.port)
    proc = run_realtime(mqtt_config(tmp_path, broker.port), long)
    topic = f"kwsd/{SITE}/set"
    opts = {"hostname": "127.0.0.1", "port": broker.port, "qos": 1}
    first = proc.stdout.readline()  # the first "yes" (about 1.8 s into the audio): not muted yet
    publish.single(topic, "not json", **opts)
    publish.single(topic, json.dumps({"enabled": "no"}), **opts)
    publish.single(topic, "[" * 4000, **opts)  # deeper than Python's json can parse: RecursionError
    publish.single(topic, "[" * 100_000, **opts)  # over the size limit: not even parsed
    time.sleep(0.3)
    publish.single(topic, json.dumps({"enabled": False}), **opts)  # muted from ~2.3 s ...
    time.sleep(9.0)
    publish.single(topic, json.dumps({"enabled": True}), **opts)  # ... to ~11.3 s
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    printed = [json.loads(line) for line in (first + out).decode().splitlines()]
    assert printed and not any(3000 < d["audio_ms"] < 11000 for d in printed), printed
    assert any(d["audio_ms"] < 2500 for d in printed) and any(d["audio_ms"] > 12000 for d in printed)
    states = [json.loads(p)["enabled"] for p, _ in sub.on(f"kwsd/{SITE}/state")]
    assert states == [True, False, True]
    assert err.decode().count("ignored a malformed message") == 3  # paho's thread survived all of them
    assert "ignored a message of 100000 bytes" in err.decode() and "Traceback" not in err.decode()
    sub.close()


def test_home_assistant_discovery_and_hermes_topics(broker, tmp_path):
    sub = Subscriber(broker.port)
    extra = "  hermes: true\n  homeassistant:\n    enabled: true\n"
    proc = kwsd("run", "--config", mqtt_config(tmp_path, broker.port, extra), "--input", SAMPLE, "--json", check=True)
    printed = detections(proc)
    config = sub.on(f"homeassistant/event/kwsd_{SITE}/config")
    assert len(config) == 1
    payload = json.loads(config[0][0])
    assert payload["event_types"] == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    assert payload["state_topic"] == f"kwsd/{SITE}/detection"
    assert payload["availability_topic"] == f"kwsd/{SITE}/status"
    assert sub.wait_for(lambda: len([t for t, _, _ in sub.messages if t.startswith("hermes/hotword/")]) == len(printed))
    first = json.loads(sub.on(f"hermes/hotword/{printed[0]['keyword']}/detected")[0][0])
    assert first["siteId"] == SITE and first["modelId"] == "default"
    assert first["currentSensitivity"] == printed[0]["score"]
    sub.close()


def test_listening_for_two_words_announces_and_publishes_those_two_alone(broker, tmp_path):
    sub = Subscriber(broker.port)
    config = mqtt_config(tmp_path, broker.port, "  hermes: true\n  homeassistant:\n    enabled: true\n")
    config.write_text(config.read_text() + "recognize:\n  keywords: [stop, go]\n")
    printed = detections(kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True))
    assert [d["keyword"] for d in printed] == ["stop", "stop", "go"]  # the sample's "yes" is not reported
    payload = json.loads(sub.on(f"homeassistant/event/kwsd_{SITE}/config")[0][0])
    assert payload["event_types"] == ["stop", "go"]  # Home Assistant offers only what can come
    assert sub.wait_for(lambda: len([t for t, _, _ in sub.messages if t.startswith("hermes/hotword/")]) == 3)
    hotwords = [t for t, _, _ in sub.messages if t.startswith("hermes/hotword/")]
    assert sorted(hotwords) == ["hermes/hotword/go/detected"] + ["hermes/hotword/stop/detected"] * 2
    sub.close()


def test_password_comes_from_a_file_and_is_never_shown(broker, tmp_path):
    secret = "s3cret-Pa55"
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "kwsd", secret], check=True, capture_output=True)
    broker.stop()
    broker.conf.write_text(
        broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false") + f"password_file {passwd}\n"
    )
    broker.start()
    (tmp_path / "pw").write_text(secret + "\n")
    config = mqtt_config(tmp_path, broker.port, f"  username: kwsd\n  password_file: {tmp_path / 'pw'}\n")
    sub_config = tmp_path / "sub.yaml"
    import paho.mqtt.client as mqtt

    got, subscribed, detected = [], threading.Event(), threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set("kwsd", secret)
    client.on_message = lambda c, u, m: (got.append(m.topic), m.topic.endswith("/detection") and detected.set())
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("kwsd/#", qos=1)
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert subscribed.wait(10)  # the password was accepted and the subscription is in place
    proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json", "--debug", check=True)
    checked = kwsd("check-config", "--config", config, check=True)
    assert detected.wait(10)
    client.loop_stop()
    assert f"kwsd/{SITE}/detection" in got
    for text in (proc.stdout, proc.stderr, checked.stdout, checked.stderr):
        assert secret.encode() not in text
    assert str(tmp_path / "pw") in checked.stdout.decode()
    sub_config.write_text(f"mqtt:\n  password: {secret}\n")
    bad = kwsd("check-config", "--config", sub_config)
    assert bad.returncode == 78 and "mqtt.password: unknown key" in bad.stderr.decode()
    assert secret.encode() not in bad.stderr


def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path):
    from conftest import Broker

    from kwsd.detection import Detection
    from kwsd.sinks.mqtt import MqttSink
    from kwsd.sinks.settings import MqttConfig

    broker = Broker(tmp_path)  # not started yet: the broker is unreachable
    sink = MqttSink(
        MqttConfig(host="127.0.0.1", port=broker.port, site=SITE, queue_size=3, flush_timeout_s=10),
        ["yes"],
        MuteSwitch(),
    )
    sink.start()
    t0 = time.monotonic()
    for i in range(5):
        sink(Detection("yes", 0.9, 1000 * i, "default"))
    assert time.monotonic() - t0 < 0.5  # the worker never waits for the network
    assert sink.dropped == 2 and sink.dropped_detections == 2
    time.sleep(1.5)  # paho retries at 1 s, then 3 s: the subscriber is in place before that
    broker.start()
    try:
        sub = Subscriber(broker.port)
        assert sub.wait_for(lambda: len(sub.on(f"kwsd/{SITE}/detection")) == 3, timeout=40)
        assert [json.loads(p)["audio_ms"] for p, _ in sub.on(f"kwsd/{SITE}/detection")] == [2000, 3000, 4000]
        assert sink.close() == 2  # what was dropped is reported at shutdown
        sub.close()
    finally:
        broker.stop()


def test_sighup_moves_mqtt_to_a_new_site_without_stopping_detection(broker, tmp_path):
    import signal as sig

    sub = Subscriber(broker.port)
    config = tmp_path / "kwsd.yaml"
    config.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  site: before\n")
    proc = run_realtime(config, SAMPLE)
    time.sleep(4.5)  # after "yes" (0.5 s) and the first "stop" (3 s)
    config.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  site: after\n")
    proc.send_signal(sig.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    printed = [json.loads(line) for line in out.decode().splitlines()]
    assert sub.wait_for(
        lambda: len(sub.on("kwsd/before/detection")) + len(sub.on("kwsd/after/detection")) == len(printed)
    )
    before = [json.loads(p)["audio_ms"] for p, _ in sub.on("kwsd/before/detection")]
    after = [json.loads(p)["audio_ms"] for p, _ in sub.on("kwsd/after/detection")]
    assert sorted(before + after) == [d["audio_ms"] for d in printed]
    assert min(before) < 2000 and max(after) > 6000 and max(before) < min(after)  # moved once, mid-stream
    assert [p for p, _ in sub.on("kwsd/before/status")] == ["online", "offline"]
    assert [p for p, _ in sub.on("kwsd/after/status")] == ["online", "offline"]
    sub.close()


def make_certificates(folder, client_cn=None):
    """A CA (ca.crt), a server certificate for 127.0.0.1 (server.crt/.key) and, with ``client_cn``,
    a client certificate with that common name (client.crt/.key), all made with openssl in ``folder``."""

    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kwsd test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    wanted = [("server", "127.0.0.1", ["-extfile", "san.ext"])] + ([("client", client_cn, [])] if client_cn else [])
    for name, cn, ext in wanted:
        ssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        ssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            *ext,
            "-out",
            f"{name}.crt",
        )


def test_tls_with_a_private_ca(tmp_path):
    """mosquitto with a TLS listener and a certificate from a CA made here; kwsd trusts that CA."""
    from conftest import Broker

    make_certificates(tmp_path)
    broker = Broker(tmp_path)
    plain = broker.port
    from conftest import free_port

    tls_port = free_port()
    broker.conf.write_text(
        broker.conf.read_text() + f"listener {tls_port} 127.0.0.1\ncafile {tmp_path}/ca.crt\n"
        f"certfile {tmp_path}/server.crt\nkeyfile {tmp_path}/server.key\n"
    )
    broker.start()
    try:
        sub = Subscriber(plain)
        config = tmp_path / "kwsd.yaml"
        config.write_text(
            f"mqtt:\n  host: 127.0.0.1\n  port: {tls_port}\n  site: {SITE}\n  tls:\n    ca: {tmp_path}/ca.crt\n"
        )
        proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json", check=True)
        printed = detections(proc)
        assert sub.wait_for(lambda: len(sub.on(f"kwsd/{SITE}/detection")) == len(printed) > 0)
        sub.close()
        # without the CA, the broker's certificate is not trusted: nothing is delivered, and kwsd says so
        config.write_text(
            f"mqtt:\n  host: 127.0.0.1\n  port: {tls_port}\n  site: other\n  flush_timeout_s: 2\n  tls: {{}}\n"
        )
        proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json")
        err = proc.stderr.decode()
        assert proc.returncode == 75, err  # EX_TEMPFAIL: detections were lost, and the exit status says so
        assert "cannot connect" in err and "could not be delivered" in err
        undelivered = [line for line in err.splitlines() if "undelivered at shutdown: kwsd/other/detection" in line]
        assert len(undelivered) == len(detections(proc)) > 0  # each one logged with what it was
        assert json.loads(undelivered[0].split("kwsd/other/detection ", 1)[1])["keyword"] == "yes"
    finally:
        broker.stop()


def test_a_message_paho_refuses_is_logged_and_never_blocks_the_queue(broker, caplog):
    """A Hermes topic built from a label paho cannot publish to is dropped; later detections still go out.

    (Model labels with wildcards are refused when the model loads; this is the second line of defence.)
    """
    from kwsd.detection import Detection
    from kwsd.sinks.mqtt import MqttSink
    from kwsd.sinks.settings import MqttConfig

    sub = Subscriber(broker.port)
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=broker.port, site=SITE, hermes=True), ["yes", "#"], MuteSwitch())
    sink.start()
    assert sub.wait_for(lambda: sub.on(f"kwsd/{SITE}/status"))
    sink(Detection("#", 0.9, 1000, "odd"))
    sink(Detection("yes", 0.9, 2000, "default"))
    assert sub.wait_for(lambda: len(sub.on("hermes/hotword/yes/detected")) == 1)
    assert [json.loads(p)["audio_ms"] for p, _ in sub.on(f"kwsd/{SITE}/detection")] == [1000, 2000]
    assert sink.close() == 0  # the detection itself went out on kwsd/<site>/detection
    assert sink.dropped == 1 and "refused by the MQTT client" in caplog.text
    sub.close()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([f"kwsd/{SITE}/set", "hermes/hotword/toggleOff", "hermes/hotword/toggleOn"]),
    st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: (
                st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["enabled", "siteId", "x"]), c, max_size=3)
            ),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
        st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),
    ),
)
def test_fuzzed_control_payloads_never_raise_and_only_valid_ones_mute(topic, payload):
    from types import SimpleNamespace

    from kwsd.sinks.mqtt import MqttSink
    from kwsd.sinks.settings import MqttConfig

    changes = []

    class Recording(MuteSwitch):
        def set(self, enabled, by):
            changes.append(enabled)
            super().set(enabled, by)

    sink = MqttSink(MqttConfig(host="127.0.0.1", site=SITE, hermes=True), ["yes"], Recording())
    sink._on_message(None, None, SimpleNamespace(topic=topic, payload=payload))
    if changes:  # only a well-formed command changes anything, and it does what it says
        data = json.loads(payload or b"{}")  # an empty Hermes toggle is a toggle
        assert changes == [data["enabled"] if topic.endswith("/set") else topic.endswith("toggleOn")]
    elif topic.endswith("/set"):
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            data = None
        assert not (isinstance(data, dict) and isinstance(data.get("enabled"), bool))


def test_tls_client_certificate_and_an_acl_that_allows_only_kwsds_topics(tmp_path):
    """A broker that requires a client certificate (its CN is the user name) and grants that user only
    publishing under kwsd/<site>/ and subscribing to kwsd/<site>/set: kwsd needs no more than that."""
    from conftest import Broker, free_port

    make_certificates(tmp_path, client_cn="kwsd-kitchen")
    (tmp_path / "acl").write_text(f"user kwsd-kitchen\ntopic write kwsd/{SITE}/#\ntopic read kwsd/{SITE}/set\n")
    broker = Broker(tmp_path)
    tls_port = free_port()
    user = "user root\n" if os.geteuid() == 0 else ""
    broker.conf.write_text(
        f"per_listener_settings true\npersistence false\n{user}"
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\n"  # the test's own clients
        f"listener {tls_port} 127.0.0.1\ncafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nrequire_certificate true\nuse_identity_as_username true\n"
        f"acl_file {tmp_path}/acl\n"
    )
    broker.start()
    try:
        sub = Subscriber(broker.port)
        config = tmp_path / "kwsd.yaml"
        config.write_text(
            f"mqtt:\n  host: 127.0.0.1\n  port: {tls_port}\n  site: {SITE}\n  flush_timeout_s: 5\n"
            f"  tls:\n    ca: {tmp_path}/ca.crt\n    cert: {tmp_path}/client.crt\n"
            f"    key: {tmp_path}/client.key\n"
        )
        proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        printed = detections(proc)
        assert sub.wait_for(lambda: len(sub.on(f"kwsd/{SITE}/detection")) == len(printed) > 0)
        assert [p for p, _ in sub.on(f"kwsd/{SITE}/status")] == ["online", "offline"]
        # the same user may not publish anywhere else: Hermes topics are refused by the broker's ACL
        config.write_text(config.read_text() + "  hermes: true\n")
        proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        # ... and the refused messages hold up nothing: this run's detections arrive too
        assert sub.wait_for(lambda: len(sub.on(f"kwsd/{SITE}/detection")) == 2 * len(printed))
        assert sub.on("hermes/hotword/yes/detected") == []
        sub.close()
        # without a client certificate the broker drops the connection: nothing is delivered, exit 75
        config.write_text(
            f"mqtt:\n  host: 127.0.0.1\n  port: {tls_port}\n  site: {SITE}\n  flush_timeout_s: 2\n"
            f"  tls:\n    ca: {tmp_path}/ca.crt\n"
        )
        proc = kwsd("run", "--config", config, "--input", SAMPLE, "--json")
        err = proc.stderr.decode()
        assert proc.returncode == 75 and ("cannot connect" in err or "lost the broker" in err), err
        assert err.count("undelivered at shutdown: kwsd/kitchen/detection") == len(detections(proc))
    finally:
        broker.stop()


def test_a_reload_while_muted_keeps_kwsd_muted_and_says_so(broker, tmp_path):
    """The MQTT sink rebuilt by a reload (new site) reads the mute state instead of assuming 'enabled'."""
    from kwsd.config import load_config
    from kwsd.daemon import Daemon

    sub = Subscriber(broker.port)
    config = tmp_path / "kwsd.yaml"
    config.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  site: before\n")
    daemon = Daemon(load_config(str(config)), str(config), input_path=str(SAMPLE))
    try:
        assert sub.wait_for(lambda: sub.on("kwsd/before/state") == [('{"enabled": true}', False)])
        publish.single("kwsd/before/set", json.dumps({"enabled": False}), hostname="127.0.0.1", port=broker.port, qos=1)
        assert sub.wait_for(lambda: len(sub.on("kwsd/before/state")) == 2)
        assert daemon.engine.enabled is False
        config.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  site: after\n")
        daemon.reload()
        assert sub.wait_for(lambda: sub.on("kwsd/after/state"))
        assert json.loads(sub.on("kwsd/after/state")[0][0]) == {"enabled": False}  # not a retained "true"
        assert daemon.engine.enabled is False
    finally:
        daemon.engine.close_sinks()
        sub.close()

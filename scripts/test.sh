#!/bin/sh
# Install the test dependencies (PulseAudio, mosquitto, TensorFlow and text-to-speech, Piper too, for the training tests)
# and run the whole test suite.  Run from the repository root.
set -e
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    pulseaudio pulseaudio-utils alsa-utils mosquitto espeak-ng flite wamerican systemd libseccomp2 >/dev/null
sh scripts/install.sh "[train,test,tts]"
# lint, format and types first (rules in pyproject.toml), then the tests; the fast unit tests
# alone: scripts/test.sh -m "not integration"
.venv/bin/ruff check kwsd tests bench
.venv/bin/ruff format --check kwsd tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

#!/bin/sh
# Install the test dependencies (PulseAudio, mosquitto, TensorFlow and text-to-speech for the training tests)
# and run the whole test suite.  Run from the repository root.
set -e
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    pulseaudio pulseaudio-utils alsa-utils mosquitto espeak-ng flite wamerican systemd libseccomp2 >/dev/null
sh scripts/install.sh "[train,test]"
.venv/bin/ruff check kwsd tests bench   # lint (rules in pyproject.toml) before the tests
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

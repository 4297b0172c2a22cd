#!/bin/sh
# Install kwsd on Debian 12 / Raspberry Pi OS: system packages, a venv in .venv, the package.
# Run from the repository root; asks for sudo only if you are not root.
set -e
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip libportaudio2 >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q ".$1"
echo "installed: $(.venv/bin/kwsd --version) in $(pwd)/.venv"

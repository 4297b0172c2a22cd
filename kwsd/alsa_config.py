"""A leaner ALSA configuration for PortAudio's device scan.

PortAudio (19.6 in Debian 12) opens every PCM of the ALSA configuration to list devices, and
the output and conversion plugins of libasound2-plugins load their libraries when opened
(libavcodec with its codecs, librsvg, x265, jack, ...): 14 MB of resident memory that a
microphone never uses (bench/RESULTS.md, "Ninth session").  PortAudio 19.7 can skip plugins
(PA_ALSA_IGNORE_ALL_PLUGINS); 19.6 cannot.  So before PortAudio starts kwsd points ALSA at
``alsa/root.conf``: the system's configuration, then ``alsa/plugins_off.conf``, which turns
those plugin PCMs into ones that fail to open at once.  Your own PCMs, hw, plughw, dsnoop,
pulse and pipewire stay as they are.

Left alone when ``ALSA_CONFIG_PATH`` is already set (set it to /usr/share/alsa/alsa.conf to
have kwsd see every plugin) or where the system's file is not at Debian's path.  The
variables kwsd adds are not passed on to command hooks.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_CONFIG = "/usr/share/alsa/alsa.conf"  # what alsa/root.conf includes
FOLDER = Path(__file__).with_name("alsa")
ADDED: set[str] = set()  # the environment variables this process set for ALSA


def lean_alsa_config() -> bool:
    """Point ALSA at kwsd's configuration (before PortAudio starts); False if left alone."""
    if "ALSA_CONFIG_PATH" in os.environ or not os.path.isfile(SYSTEM_CONFIG):
        return False
    os.environ["ALSA_CONFIG_PATH"] = str(FOLDER / "root.conf")
    os.environ["KWSD_ALSA_PLUGINS_OFF"] = str(FOLDER / "plugins_off.conf")
    ADDED.update(("ALSA_CONFIG_PATH", "KWSD_ALSA_PLUGINS_OFF"))
    return True


def environment_for_children() -> dict[str, str]:
    """os.environ without what ``lean_alsa_config`` added: a hook that plays a sound sees the
    system's ALSA configuration."""
    return {k: v for k, v in os.environ.items() if k not in ADDED}

"""Bounds on what users hand to kwsd: files read whole, strings that become MQTT topics.

A daemon must not hang on a FIFO, read /dev/zero until memory runs out, or hand a
broker a topic with wildcards in it.  Each check returns one readable sentence; the
caller adds the file or key it came from.
"""

from __future__ import annotations

import os
import re
import stat

CONFIG_MAX_BYTES = 1 << 20  # a kwsd.yaml is a few kB
MODEL_MAX_BYTES = 64 << 20  # the bundled model is 53 kB; TFLite keyword models stay far below this
LABEL_MAX_CHARS = 64


def check_ranges(ranges) -> None:
    """ValueError naming the first ``(flag, value, low, high)`` whose value is out of range (NaN is
    out of every range: it fails every comparison)."""
    for flag, value, low, high in ranges:
        if not low <= value <= high:
            raise ValueError(f"{flag} must be from {low} to {high}, not {value}")


def stride_fits(stride, frame_stride_ms: float) -> bool:
    """A clip stride kwsd can run a model at: whole milliseconds, 10..1000, whole frames."""
    return (
        isinstance(stride, int)
        and not isinstance(stride, bool)
        and 10 <= stride <= 1000
        and not stride % frame_stride_ms
    )


def open_regular(path: str) -> int:
    """A blocking file descriptor of a regular file; IsADirectoryError, ValueError or OSError else.

    Opened non-blocking first, so a FIFO or a device is refused at once instead of
    blocking the start-up.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a directory")
        raise ValueError("not a regular file (a FIFO, socket or device)")
    os.set_blocking(fd, True)
    return fd


def read_bounded(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file (open_regular) of at most ``max_bytes``, else OSError/ValueError.

    The size is checked while reading, so /dev/zero-like files cannot exhaust memory even
    if they claim to be regular.
    """
    fd = open_regular(path)
    try:
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"larger than {max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def topic_level_problem(value: str) -> str | None:
    """Why ``value`` cannot be one level of an MQTT topic, or None.

    MQTT forbids the wildcards ``+`` and ``#`` and NUL in topic names a client
    publishes to; a ``/`` would add levels that subscribers do not expect.
    """
    if not value:
        return "must not be empty"
    if any(c in value for c in "+#/\0"):
        return f"{shorten(value)} contains one of + # / or NUL (MQTT wildcards and level separators)"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{shorten(value)} contains control characters"
    if len(value.encode()) > 128:
        return "is longer than 128 bytes"
    return None


def topic_prefix_problem(value: str) -> str | None:
    """Like topic_level_problem, but ``/`` may separate several levels (``home/kwsd``)."""
    if not value:
        return "must not be empty"
    for level in value.split("/"):
        problem = topic_level_problem(level)
        if problem and level:
            return problem
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return f"{shorten(value)} has an empty topic level"
    return None


_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def host_problem(value: str) -> str | None:
    """Why ``value`` is not a host name or IP address a client can connect to, or None."""
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return "is longer than 253 characters"
    if ":" in value and re.fullmatch(r"[0-9A-Fa-f:.]+", value):
        return None  # an IPv6 address
    if not all(_HOST_LABEL.match(label) for label in value.rstrip(".").split(".")):
        return f"{shorten(value)} is not a host name (letters, digits, '-', at most 63 per dot-separated part)"
    return None


def label_problem(value: str) -> str | None:
    """Why a model label cannot be shown in logs and used as an MQTT topic level, or None."""
    if len(value) > LABEL_MAX_CHARS:
        return f"is longer than {LABEL_MAX_CHARS} characters"
    return topic_level_problem(value)


def shorten(value, limit: int = 60) -> str:
    """repr of ``value`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 15] + f"...' ({len(text):,} chars)"

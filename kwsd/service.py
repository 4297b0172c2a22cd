"""Being a good systemd service: sd_notify (READY, WATCHDOG, STATUS, STOPPING) and journald.

systemd-python is used where it is installed; otherwise the notify protocol is one
datagram to ``$NOTIFY_SOCKET`` (a path, or '@' for an abstract socket) and the
journal protocol is one datagram of ``KEY=value`` lines to journald's socket, which is
all the C library does either.  Outside systemd every call here is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

JOURNAL_SOCKET = "/run/systemd/journal/socket"


class Notifier:
    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_s = int(usec) / 1e6 if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        self._sock = None
        self._last_watchdog = 0.0
        self.ready_sent = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            from systemd import daemon  # type: ignore[attr-defined]  # systemd-python, where installed

            return bool(daemon.notify(message))
        except ImportError:
            pass
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), address)
            return True
        except OSError as e:
            logging.getLogger(__name__).debug("sd_notify failed: %s", e)
            return False

    def ready(self, status: str = "") -> None:
        if not self.ready_sent:
            self.ready_sent = self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog_due(self) -> bool:
        return self.watchdog_s is not None and time.monotonic() - self._last_watchdog >= self.watchdog_s / 2

    def watchdog(self) -> None:
        """Pet the watchdog; the caller only does so while the pipeline makes progress."""
        self._last_watchdog = time.monotonic()
        self.send("WATCHDOG=1")


def under_journald() -> bool:
    """True when stderr is connected to the journal ($JOURNAL_STREAM names its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
        return stream == f"{st.st_dev}:{st.st_ino}"
    except (OSError, ValueError):
        return False


class JournalHandler(logging.Handler):
    """Log records to journald with structured fields (extra={"KEYWORD": ..., "SCORE": ...})."""

    PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, identifier: str = "kwsd", address: str = JOURNAL_SOCKET):
        super().__init__()
        self.identifier = identifier
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def fields(self, record: logging.LogRecord) -> dict:
        out = {
            "MESSAGE": self.format(record),
            "PRIORITY": str(self.PRIORITY.get(record.levelno, 6)),
            "SYSLOG_IDENTIFIER": self.identifier,
            "CODE_FILE": record.pathname,
            "CODE_LINE": str(record.lineno),
            "CODE_FUNC": record.funcName,
        }
        for key, value in record.__dict__.items():
            if key.isupper() and key.replace("_", "").isalnum():
                out[key] = str(value)
        return out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = b""
            for key, value in self.fields(record).items():
                v = value.encode()
                if b"\n" in v:  # the protocol's binary-safe form
                    data += key.encode() + b"\n" + len(v).to_bytes(8, "little") + v + b"\n"
                else:
                    data += key.encode() + b"=" + v + b"\n"
            self._sock.sendto(data, self.address)
        except OSError:
            self.handleError(record)

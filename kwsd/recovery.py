"""Getting a lost microphone back without restarting kwsd.

When the audio server restarts or a USB microphone is unplugged, PortAudio ends the
capture stream and kwsd would hear nothing from then on.  The daemon's main loop calls
:meth:`DeviceRecovery.check` a few times a second: it notices that a live source has
stopped (the stream is no longer active, or no audio arrived for ``stall_s``), logs
it, and reopens the device with backoff (1, 2, 4, ... 30 s) until audio flows again.
Meanwhile ``status`` says what is going on, for systemd's STATUS= and the logs.
"""

from __future__ import annotations

import logging
import time

from .errors import AudioError

log = logging.getLogger("kwsd")

BACKOFF_S = (1, 2, 4, 8, 15, 30)


class DeviceRecovery:
    def __init__(self, engine, stall_s: float = 3.0, grace_s: float = 5.0, backoff_s=BACKOFF_S):
        self.engine = engine
        self.source = engine.source
        self.enabled = hasattr(self.source, "reopen")  # files and stdin end; they are not recovered
        self.stall_s, self.grace_s, self.backoff_s = stall_s, grace_s, backoff_s
        self.lost_since: float | None = None
        self.attempts = 0
        self.recoveries = 0
        self.status = ""
        self._next_try = 0.0
        self._grace_until = 0.0
        self._last_check = time.monotonic()

    @property
    def recovering(self) -> bool:
        return self.lost_since is not None

    def check(self, now: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        suspended = now - self._last_check > 2.0  # the whole process was stopped or starved, not the device
        self._last_check = now
        if self.lost_since is None and suspended:
            # After a stop the audio stack has its own overrun to recover from (PortAudio restarts the
            # capture), which can take as long as opening a stream: the same grace as a freshly opened one.
            # With half of stall_s instead, a CI run reopened the microphone 1.5 s after a 4 s SIGSTOP.
            self._grace_until = now + self.grace_s
            self.engine.heartbeat = max(self.engine.heartbeat, now)
            return
        if self.lost_since is None:
            if now < self._grace_until or not self.engine.stats.strides:
                return  # audio has not started flowing yet: READY and the watchdog cover that
            if self.source.alive() and not self.engine.stalled(self.stall_s, sinks=False):
                return
            why = "its stream ended" if not self.source.alive() else f"no audio for {self.stall_s:g} s"
            log.warning("audio: %s stopped (%s); reopening it", self.source.description, why)
            self.lost_since, self.attempts, self._next_try = now, 0, now
            self.status = f"audio device lost ({why}); reopening"
        if now < self._next_try:
            return
        self.attempts += 1
        try:
            self.source.reopen(self.engine.ring)
        except AudioError as e:
            delay = self.backoff_s[min(self.attempts, len(self.backoff_s)) - 1]
            self._next_try = now + delay
            log.warning("audio: reopening failed (attempt %d: %s); next try in %d s", self.attempts, e, delay)
            self.status = f"audio device lost for {now - self.lost_since:.0f} s; retrying every {delay} s"
            return
        log.info(
            "audio: %s is back after %.1f s (attempt %d)", self.source.description, now - self.lost_since, self.attempts
        )
        self.recoveries += 1
        self.lost_since, self.status = None, ""
        self._grace_until = now + self.grace_s  # the first callback of a new stream takes a second or two
        self.engine.heartbeat = now

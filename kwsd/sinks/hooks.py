"""Command hooks: run a program per keyword, never through a shell, never delaying detection.

Each matching hook runs in its own thread with ``KWSD_KEYWORD``, ``KWSD_SCORE``,
``KWSD_SITE``, ``KWSD_TIMESTAMP`` (and ``KWSD_MODEL``, ``KWSD_AUDIO_MS``) in its
environment.  A hook that runs longer than ``timeout_s`` is killed with its process
group; at most ``max_concurrent`` hooks run at once and a run beyond that is skipped
and logged: a light switched minutes late is worse than one request missed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading

from ..alsa_config import environment_for_children
from ..detection import Detection
from .settings import CommandHook

log = logging.getLogger(__name__)


class CommandHooks:
    def __init__(self, hooks: list[CommandHook], max_concurrent: int = 4, site: str = ""):
        self.hooks = hooks
        self.site = site or socket.gethostname()
        self.max_concurrent = max_concurrent
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.skipped = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []

    def __call__(self, d: Detection) -> None:
        for hook in self.hooks:
            if hook.keyword in ("*", d.keyword):
                if not self._slots.acquire(blocking=False):
                    self.skipped += 1
                    log.warning("hook %s skipped: %d hooks already running", hook.argv[0], self.max_concurrent)
                    continue
                t = threading.Thread(target=self._run, args=(hook, d), name="kwsd-hook", daemon=True)
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
                t.start()

    def _run(self, hook: CommandHook, d: Detection) -> None:
        env = {
            **environment_for_children(),
            "KWSD_KEYWORD": d.keyword,
            "KWSD_SCORE": f"{d.score:.4f}",
            "KWSD_SITE": self.site,
            "KWSD_TIMESTAMP": d.timestamp,
            "KWSD_MODEL": d.model,
            "KWSD_AUDIO_MS": str(d.audio_ms),
        }
        try:
            proc = subprocess.Popen(
                hook.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            self.failed += 1
            log.error("hook %s could not start: %s", hook.argv[0], e.strerror or e)
            self._slots.release()
            return
        try:
            _, err = proc.communicate(timeout=hook.timeout_s)
            if proc.returncode != 0:
                self.failed += 1
                tail = err.decode(errors="replace").strip().splitlines()[-1:]  # its last words, if any
                said = f": {tail[0][:200]}" if tail else ""
                log.error("hook %s exited with status %d%s", hook.argv[0], proc.returncode, said)
        except subprocess.TimeoutExpired:
            self.failed += 1
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the hook and its children
            proc.communicate()
            log.error("hook %s killed after %.1f s", hook.argv[0], hook.timeout_s)
        finally:
            self._slots.release()

    def close(self, timeout: float = 5.0) -> None:
        """Let running hooks finish (bounded) so their results are logged."""
        for t in self._threads:
            t.join(timeout)

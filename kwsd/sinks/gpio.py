"""GPIO hooks: pulse or toggle an output line per keyword, through the Linux GPIO character
device with the libgpiod v2 bindings (``gpiod`` on PyPI).  Works on any board with a
/dev/gpiochip*, Raspberry Pi 5 included (where the old sysfs and RPi.GPIO do not)."""

from __future__ import annotations

import logging
import threading

from ..detection import Detection
from ..errors import KwsdError
from .settings import GpioHook

log = logging.getLogger(__name__)


class GpioHooks:
    def __init__(self, hooks: list[GpioHook], gpiod_module=None):
        if gpiod_module is None:
            try:
                import gpiod as gpiod_module
            except ImportError:
                raise KwsdError("GPIO hooks need the gpiod package: pip install gpiod") from None
        self.gpiod = gpiod_module
        from gpiod.line import Direction, Value  # noqa: F401 - fail early if the API is not v2

        self.hooks = hooks
        self._requests: dict = {}
        self._state: dict = {}
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        for hook in hooks:
            key = (hook.chip, hook.line)
            if key in self._requests:
                continue
            try:
                settings = gpiod_module.LineSettings(
                    direction=Direction.OUTPUT, active_low=hook.active_low, output_value=Value.INACTIVE
                )
                self._requests[key] = gpiod_module.request_lines(
                    hook.chip, consumer="kwsd", config={hook.line: settings}
                )
            except (OSError, ValueError) as e:
                self.close()
                raise KwsdError(f"GPIO {hook.chip} line {hook.line}: {e}") from None
            self._state[key] = False

    def _set(self, key, active: bool) -> None:
        from gpiod.line import Value

        with self._lock:
            self._requests[key].set_value(key[1], Value.ACTIVE if active else Value.INACTIVE)
            self._state[key] = active

    def __call__(self, d: Detection) -> None:
        for hook in self.hooks:
            if hook.keyword not in ("*", d.keyword):
                continue
            key = (hook.chip, hook.line)
            try:
                if hook.mode == "toggle":
                    self._set(key, not self._state[key])
                else:
                    self._set(key, True)
                    timer = threading.Timer(hook.pulse_ms / 1000, self._end_pulse, args=(key,))
                    timer.daemon = True
                    self._timers = [t for t in self._timers if t.is_alive()] + [timer]
                    timer.start()
            except OSError as e:
                log.error("GPIO %s line %d: %s", hook.chip, hook.line, e)

    def _end_pulse(self, key) -> None:
        try:
            self._set(key, False)
        except OSError as e:
            log.error("GPIO %s line %d: %s", key[0], key[1], e)

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
        for key, request in self._requests.items():
            try:
                self._set(key, False)
                request.release()
            except (OSError, KeyError):
                pass
        self._requests = {}

"""The microphone: a sounddevice (PortAudio) input stream feeding the ring buffer.

The callback only copies into the ring: it never blocks, never allocates, and counts an
overflow instead of waiting. Device choice by index or name, sample-rate negotiation,
and reopening after the audio server went away (see recovery.py) live here too.
"""

from __future__ import annotations

import logging

import numpy as np

from .alsa_config import lean_alsa_config
from .audio import RingBuffer
from .errors import AudioError, NoMicrophoneError
from .sources import Source

log = logging.getLogger(__name__)

COMMON_RATES = (16000, 48000, 44100, 32000, 22050, 8000)


def list_input_devices() -> list[dict]:
    """Input devices as sounddevice reports them: index, name, channels, default rate."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as e:
        raise AudioError(f"cannot list audio devices: {e}") from None
    return [
        dict(
            index=i,
            name=d["name"],
            channels=d["max_input_channels"],
            default_samplerate=d["default_samplerate"],
            hostapi=sd.query_hostapis(d["hostapi"])["name"],
        )
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def import_sounddevice():
    lean_alsa_config()  # before PortAudio's device scan reads the ALSA configuration
    try:
        import sounddevice
    except OSError as e:  # PortAudio library missing
        raise NoMicrophoneError(
            f"no microphone available: PortAudio is not installed ({e}); install libportaudio2, or use --input FILE.wav"
        ) from None
    return sounddevice


class MicrophoneSource(Source):
    """A sounddevice InputStream; the callback only copies into the ring."""

    def __init__(self, device=None, channel=None, rate=None, wanted_rate=16000, block_ms=None, stride_ms=40):
        self.sd = import_sounddevice()
        self.device_spec = device
        self.device_index, info = self._find_device(device)
        self.device_name = info["name"]
        max_ch = int(info["max_input_channels"])
        if channel is not None and channel >= max_ch:
            raise AudioError(
                f"audio.channel {channel} does not exist: device '{self.device_name}' has {max_ch} input channel(s)"
            )
        self.channel = channel
        self.channels = channel + 1 if channel is not None else self._channels_to_mix(info)
        self.rate = self._pick_rate(rate, wanted_rate, info)
        if block_ms is None:
            # one clip stride per block: strides end where blocks end, so nothing waits for the
            # next block, and the audio path wakes once per stride.  A resampler holds back a few
            # samples, which would then wait a whole block: 20 ms blocks keep that short.
            block_ms = stride_ms if self.rate == wanted_rate else 20
        self.block = max(1, self.rate * block_ms // 1000)
        self._scratch = np.zeros(self.block * 4, np.float32)
        mixing = (
            f"channel {channel}"
            if channel is not None
            else ("one channel" if self.channels == 1 else f"mean of {self.channels} channels")
        )
        self.description = f"microphone '{self.device_name}' at {self.rate} Hz, {mixing}, {block_ms} ms blocks"
        self.stream = None

    def _find_device(self, device):
        sd = self.sd
        try:
            devices = sd.query_devices()
        except Exception as e:
            raise NoMicrophoneError(f"no microphone found ({e}); try --input FILE.wav") from None
        inputs = [(i, d) for i, d in enumerate(devices) if d["max_input_channels"] > 0]
        if not inputs:
            raise NoMicrophoneError("no microphone found (no audio input device); try --input FILE.wav")
        if device is None:
            try:
                index = sd.default.device[0]
                if index is None or index < 0:
                    index = sd.query_devices(kind="input")["index"]
            except Exception:
                index = inputs[0][0]
            for i, d in inputs:
                if i == index:
                    return i, d
            return inputs[0]
        if isinstance(device, int):
            for i, d in inputs:
                if i == device:
                    return i, d
            raise AudioError(f"audio.device {device} is not an input device; see 'kwsd devices'")
        matches = [(i, d) for i, d in inputs if device.lower() in d["name"].lower()]
        exact = [(i, d) for i, d in matches if d["name"].lower() == device.lower()]
        if exact:
            return exact[0]
        if not matches:
            raise AudioError(f"audio.device '{device}' matches no input device; see 'kwsd devices'")
        if len(matches) > 1:
            names = ", ".join(f"{i}: {d['name']}" for i, d in matches)
            raise AudioError(f"audio.device '{device}' matches several input devices ({names}); be more specific")
        return matches[0]

    def _channels_to_mix(self, info) -> int:
        """How many channels to open when ``audio.channel`` names none.

        One on ALSA's converting devices: a sound server's ('pulse', 'pipewire', 'default' where one
        runs) and ALSA's plug devices claim more channels than any microphone has (32 and more) and
        mix the source's channels themselves.  Asking PulseAudio for two of a mono microphone's made
        it copy the channel and kwsd average the copies back: 0.15-0.2% of a core for nothing
        (bench/RESULTS.md).  Other devices (hardware, '... (hw:1,0)'; dsnoop) give the mean of their
        first two channels."""
        max_ch = int(info["max_input_channels"])
        try:
            alsa = self.sd.query_hostapis(info["hostapi"])["name"] == "ALSA"
        except Exception:
            alsa = False
        if max_ch == 1 or (alsa and max_ch > 2 and "(hw:" not in info["name"]):
            return 1
        return min(max_ch, 2)

    def _pick_rate(self, rate, wanted, info) -> int:
        """The model's rate if the device takes it, else its default, else a common rate.

        Many USB microphones only open at 44.1 or 48 kHz; we resample in the worker.
        """
        candidates = [rate] if rate else [wanted, int(info["default_samplerate"]), *COMMON_RATES]
        for r in dict.fromkeys(candidates):
            try:
                self.sd.check_input_settings(
                    device=self.device_index, channels=self.channels, dtype="float32", samplerate=r
                )
                return int(r)
            except Exception as e:
                log.debug("device %s refuses %s Hz: %s", self.device_name, r, e)
        tried = ", ".join(str(r) for r in dict.fromkeys(candidates))
        raise AudioError(f"microphone '{self.device_name}' accepts none of the sample rates {tried} Hz")

    def start(self, ring: RingBuffer) -> None:
        scratch, channel, mix = self._scratch, self.channel, self.channels > 1 and self.channel is None
        write, inv = ring.write_nowait, np.float32(1.0 / self.channels)
        wake = ring.data_ready.set

        def callback(indata, frames, _time, status):
            # the hot path: no logging, no allocation of our own, one uncontended lock (the wake-up)
            if status.input_overflow:
                ring.overflows += 1
            if channel is not None:
                write(indata[:, channel])
            elif mix and frames <= len(scratch):
                out = scratch[:frames]
                np.sum(indata, axis=1, out=out)
                out *= inv
                write(out)
            else:
                write(indata[:, 0])
            wake()  # the worker runs the stride now, not when its poll next comes round (up to a stride later)

        try:
            self.stream = self.sd.InputStream(
                device=self.device_index,
                channels=self.channels,
                samplerate=self.rate,
                dtype="float32",
                blocksize=self.block,
                callback=callback,
            )
            self.stream.start()
        except Exception as e:
            raise AudioError(f"cannot open microphone '{self.device_name}' at {self.rate} Hz: {e}") from None

    def stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception as e:
                log.debug("closing the microphone: %s", e)
            self.stream = None

    def alive(self) -> bool:
        """False once PortAudio has ended the stream by itself (the device or audio server is gone)."""
        return self.stream is not None and bool(self.stream.active)

    def reopen(self, ring: RingBuffer) -> None:
        """Close the stream, scan the devices again and reopen the same one at the same rate.

        PortAudio reads the device list once, when it starts; a restarted audio server or a
        replugged USB microphone is only seen after it is terminated and initialised again.
        AudioError (or NoMicrophoneError) if the device is not back yet.
        """
        self.stop()
        try:
            self.sd._terminate()
            self.sd._initialize()
        except Exception as e:
            raise AudioError(f"cannot restart PortAudio: {e}") from None
        self.device_index, info = self._find_device(self.device_spec)
        self.rate = self._pick_rate(self.rate, self.rate, info)  # the worker resamples from this rate
        self.start(ring)

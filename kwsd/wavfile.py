"""WAV files: one reader for every part of kwsd, streamed block by block.

``kwsd run --input`` may be handed a two-hour recording; reading it whole would cost
hundreds of megabytes on a Pi, so :class:`WavReader` parses the RIFF header itself and
yields float32 mono blocks.  The header is checked before any audio is read: a sample
rate, channel count or sample format that makes no sense is one AudioError naming the
file, never a traceback or minutes of resampling (a valid file at 1 Hz would be
upsampled 16,000-fold).  FIFOs and devices are refused instead of blocking.

Accepted: PCM 16, 24 or 32-bit integer and 32-bit float (WAVE_FORMAT_PCM,
WAVE_FORMAT_IEEE_FLOAT, or either inside WAVE_FORMAT_EXTENSIBLE), 4 kHz to 384 kHz,
1 to 64 channels (averaged to mono).
"""

from __future__ import annotations

import os
import struct
import wave
from typing import BinaryIO, Iterator, NoReturn

import numpy as np

from .errors import AudioError
from .limits import open_regular

MIN_RATE, MAX_RATE = 4000, 384000
MAX_CHANNELS = 64
PCM, IEEE_FLOAT, EXTENSIBLE = 1, 3, 0xFFFE


class WavReader:
    """An open WAV file: ``rate``, ``channels``, ``frames``, and ``blocks(n)`` of float32 mono."""

    def __init__(self, path: str):
        self.path = path
        try:
            fd = open_regular(path)
        except FileNotFoundError:
            raise AudioError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise AudioError(f"{path}: is a directory, not a WAV file") from None
        except ValueError as e:
            raise AudioError(f"{path}: is {e}, not a WAV file") from None
        except OSError as e:
            raise AudioError(f"{path}: cannot open ({e.strerror})") from None
        self._file: BinaryIO = os.fdopen(fd, "rb")
        try:
            self._parse_header(os.fstat(fd).st_size)
        except AudioError:
            self._file.close()
            raise
        except (OSError, struct.error, ValueError) as e:
            self._file.close()
            raise AudioError(f"{path}: not a readable WAV file ({e})") from None

    def _fail(self, message: str) -> NoReturn:
        raise AudioError(f"{self.path}: {message}")

    def _parse_header(self, file_size: int) -> None:
        f = self._file
        riff = f.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            self._fail("not a readable WAV file (no RIFF/WAVE header)")
        fmt = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                self._fail("not a readable WAV file (no data chunk)")
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id == b"fmt ":
                if not 16 <= size <= 1024:
                    self._fail(f"not a readable WAV file (fmt chunk of {size} bytes)")
                fmt = f.read(size)
                if size % 2:
                    f.read(1)
            elif chunk_id == b"data":
                if fmt is None:
                    self._fail("not a readable WAV file (data before fmt)")
                self._read_format(fmt)
                start = f.tell()
                size = min(size, file_size - start)  # streamed writers leave 0 or 0xFFFFFFFF
                if size == 0 and struct.unpack("<I", head[4:])[0] in (0, 0xFFFFFFFF):
                    size = file_size - start
                self.frames = size // self.block_align
                if self.frames == 0:
                    self._fail("contains no audio")
                self._left = self.frames
                return
            else:
                f.seek(size + size % 2, os.SEEK_CUR)

    def _read_format(self, fmt: bytes) -> None:
        tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the old tag
        if channels == 0:
            self._fail("no channels")
        if channels > MAX_CHANNELS:
            self._fail(f"{channels} channels (at most {MAX_CHANNELS})")
        if not MIN_RATE <= rate <= MAX_RATE:
            self._fail(f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
        kinds = {(PCM, 16): "<i2", (PCM, 24): "i3", (PCM, 32): "<i4", (IEEE_FLOAT, 32): "<f4"}
        if (tag, bits) not in kinds:
            codec = {2: "ADPCM", 6: "A-law", 7: "mu-law", 0x11: "IMA ADPCM", 0x55: "MP3"}.get(tag)
            other = f"{codec}, WAV format tag {tag}" if codec else f"WAV format tag {tag}"
            name = {PCM: f"{bits}-bit PCM", IEEE_FLOAT: f"{bits}-bit float"}.get(tag, other)
            self._fail(f"unsupported sample format {name} (use PCM 16, 24 or 32-bit integer, or 32-bit float)")
        if block_align != channels * bits // 8:
            self._fail(f"not a readable WAV file (block align {block_align} for {channels} x {bits} bits)")
        self.rate, self.channels, self.block_align, self._kind = int(rate), int(channels), block_align, kinds[tag, bits]

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """float32 mono blocks of ``frames`` frames (the last one shorter) until the end."""
        seen = 0
        while self._left > 0:
            n = min(frames, self._left)
            raw = self._file.read(n * self.block_align)
            n = len(raw) // self.block_align
            if n == 0:
                break  # the file is shorter than its header says
            self._left -= n
            block = self._decode(raw[: n * self.block_align], n)
            finite = np.isfinite(block)
            if not finite.all():  # the time of the first bad sample, not of its block
                self._fail(f"contains NaN or infinite samples (at {(seen + int(finite.argmin())) / self.rate:.2f} s)")
            seen += n
            yield block
        self._left = 0

    def _decode(self, raw: bytes, n: int) -> np.ndarray:
        if self._kind == "i3":  # 24-bit: widen each sample to int32, sign from the top byte
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
            wide = np.zeros((len(b), 4), np.uint8)
            wide[:, 1:] = b
            data = wide.view("<i4").reshape(-1).astype(np.float32) / 2147483648.0
        elif self._kind == "<f4":
            data = np.frombuffer(raw, "<f4")
        else:  # integers: scaled by a power of two in float32, the same values as in float64, half the work
            data = np.frombuffer(raw, self._kind).astype(np.float32)
            data *= np.float32(1 / 32768.0 if self._kind == "<i2" else 1 / 2147483648.0)
        if self.channels > 1:
            return data.reshape(n, self.channels).mean(axis=1, dtype=np.float32)
        return data if data.flags.writeable else data.copy()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_wav(path: str, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A whole WAV file as float32 mono in [-1, 1] and its sample rate (see WavReader).

    For clips and evaluation streams; ``kwsd run`` streams instead.  ``max_seconds``
    refuses longer files before reading them.
    """
    with WavReader(path) as wav:
        if max_seconds is not None and wav.seconds > max_seconds:
            raise AudioError(f"{path}: {wav.seconds:.0f} s long, more than the {max_seconds:.0f} s allowed here")
        audio = np.concatenate(list(wav.blocks(1 << 16)))
        return audio, wav.rate


def write_wav(path: str, audio: np.ndarray, rate: int) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM."""
    pcm = np.clip(np.round(np.asarray(audio) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())

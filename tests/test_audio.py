"""Reading recordings, resampling a stream, and the ring buffer between callback and worker."""
import wave

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal

from conftest import compose, kwsd
from kwsd.audio import RingBuffer, StreamResampler, read_wav
from kwsd.errors import AudioError


def write_pcm24(path, audio, rate, channels=1):
    pcm = np.clip(np.round(audio * 8388608), -8388608, 8388607).astype("<i4")
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in pcm.reshape(-1))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(raw)


@pytest.fixture(scope="module")
def speech():
    return compose([("yes", 0, 0.2)], 1.5)


@pytest.mark.parametrize("fmt", ["int16", "int24", "int32", "float32"])
def test_supported_formats_decode_to_the_same_audio(tmp_path, speech, fmt):
    path = tmp_path / f"{fmt}.wav"
    if fmt == "int24":
        write_pcm24(path, speech, 16000)
    elif fmt == "float32":
        scipy.io.wavfile.write(path, 16000, speech.astype(np.float32))
    else:
        scale = {"int16": 32767, "int32": 2147483647}[fmt]
        scipy.io.wavfile.write(path, 16000, np.round(speech * scale).astype(fmt))
    audio, rate = read_wav(str(path))
    assert rate == 16000 and audio.dtype == np.float32
    np.testing.assert_allclose(audio, speech, atol=2 / 32768)


def test_stereo_is_averaged(tmp_path, speech):
    path = tmp_path / "stereo.wav"
    scipy.io.wavfile.write(path, 16000, np.stack([speech, speech * 0.5], axis=1).astype(np.float32))
    audio, _ = read_wav(str(path))
    np.testing.assert_allclose(audio, speech * 0.75, atol=1e-6)


@pytest.mark.parametrize("kind", ["uint8", "float64", "garbage", "empty", "directory"])
def test_unsupported_or_broken_files_get_one_clear_line(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "uint8":
        scipy.io.wavfile.write(path, 16000, np.full(1600, 128, np.uint8))
    elif kind == "float64":
        scipy.io.wavfile.write(path, 16000, np.zeros(1600))
    elif kind == "garbage":
        path.write_bytes(b"RIFF not really a wave file at all")
    elif kind == "empty":
        scipy.io.wavfile.write(path, 16000, np.zeros(0, np.int16))
    else:
        path.mkdir()
    with pytest.raises(AudioError, match=str(path)):
        read_wav(str(path))
    proc = kwsd("run", "--input", path, "--json")
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kwsd: error:") and str(path) in err[0], err
    assert proc.stdout == b""


@pytest.mark.parametrize("src", [48000, 44100, 22050, 8000])
def test_stream_resampler_equals_resampling_the_whole_signal(src):
    rng = np.random.default_rng(src)
    x = compose([("go", 0, 0.1)], 1.2)
    x = scipy.signal.resample_poly(x, src, 16000).astype(np.float32) if src != 16000 else x
    whole = scipy.signal.resample_poly(x, 16000, src)
    r = StreamResampler(src, 16000)
    parts, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, 3000))
        parts.append(r.process(x[pos:pos + n]))
        pos += n
    parts.append(r.flush())
    streamed = np.concatenate(parts)
    assert abs(len(streamed) - len(whole)) <= 1
    n = min(len(streamed), len(whole))
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-5)


def test_ring_buffer_wraps_and_counts_overflows_without_blocking():
    ring = RingBuffer(1000)
    data = np.arange(3000, dtype=np.float32)
    out = []
    for i in range(0, 3000, 300):
        assert ring.write_nowait(data[i:i + 300])
        out.append(ring.read(ring.available()))
    np.testing.assert_array_equal(np.concatenate(out), data)
    assert ring.write_nowait(np.zeros(900, np.float32))
    assert not ring.write_nowait(np.zeros(200, np.float32))  # full: dropped, not waited for
    assert ring.overflows == 1 and ring.dropped_samples == 200

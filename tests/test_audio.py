"""Reading recordings, resampling a stream, and the ring buffer between callback and worker."""

import os
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal
from conftest import compose, kwsd, pipeline_features
from hypothesis import given, settings
from hypothesis import strategies as st

from kwsd.audio import RingBuffer, StreamResampler
from kwsd.errors import AudioError
from kwsd.wavfile import MAX_RATE, MIN_RATE, read_wav


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


@pytest.mark.integration
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
        parts.append(r.process(x[pos : pos + n]))
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
        assert ring.write_nowait(data[i : i + 300])
        out.append(ring.read(ring.available()))
    np.testing.assert_array_equal(np.concatenate(out), data)
    assert ring.write_nowait(np.zeros(900, np.float32))
    assert not ring.write_nowait(np.zeros(200, np.float32))  # full: dropped, not waited for
    assert ring.overflows == 1 and ring.dropped_samples == 200


def wav_bytes(rate=16000, channels=1, bits=16, tag=1, frames=1600, data_size=None, block_align=None, payload=None):
    """A WAV file built by hand, so that its header can say anything."""
    align = channels * bits // 8 if block_align is None else block_align
    data = payload if payload is not None else bytes(frames * max(align, 0))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * max(align, 0), align, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.integration
@pytest.mark.parametrize(
    "header,message",
    [
        (dict(rate=1_000_000_000), "sample rate 1000000000 Hz is outside 4000..384000 Hz"),
        (dict(rate=1, frames=16000), "sample rate 1 Hz is outside"),  # would be upsampled 16,000-fold
        (dict(channels=0, block_align=0), "no channels"),
        (dict(channels=5000), "5000 channels (at most 64)"),
        (dict(bits=0, block_align=2), "unsupported sample format 0-bit PCM"),
        (dict(tag=85), "unsupported sample format MP3, WAV format tag 85 (use PCM"),  # MP3 in a WAV
        (dict(block_align=7), "block align 7"),
        (dict(payload=np.array([0, 0.5, np.nan], "<f4").tobytes(), tag=3, bits=32), "NaN or infinite samples"),
    ],
)
def test_hostile_wav_headers_get_one_clear_line(tmp_path, header, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(wav_bytes(**header))
    proc = kwsd("run", "--input", path, "--json", timeout=60)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 1 and err[-1].startswith("kwsd: error: ") and message in err[-1], err
    assert str(path) in err[-1] and proc.stdout == b"" and "Traceback" not in proc.stderr.decode()
    if "NaN" not in message:  # a bad header is refused before the pipeline starts: nothing else printed
        assert len(err) == 1, err


@pytest.mark.integration
def test_a_nan_sample_is_reported_at_its_own_time_whether_the_file_is_streamed_or_read_whole(tmp_path):
    """kwsd run reads a file in blocks, kwsd label (read_wav) in one: both name 1.50 s, not the block's start."""
    audio = np.zeros(32000, np.float32)
    audio[24000] = np.nan
    path = tmp_path / "nan.wav"
    path.write_bytes(wav_bytes(tag=3, bits=32, payload=audio.astype("<f4").tobytes()))
    for command in (("run", "--input"), ("label",)):
        err = kwsd(*command, path, timeout=60).stderr.decode()
        assert "contains NaN or infinite samples (at 1.50 s)" in err, err


def test_a_header_claiming_more_data_than_the_file_holds_reads_what_is_there(tmp_path):
    path = tmp_path / "truncated.wav"
    path.write_bytes(wav_bytes(frames=1600, data_size=0xFFFFFFF0))
    audio, rate = read_wav(str(path))
    assert rate == 16000 and len(audio) == 1600


@pytest.mark.integration
def test_a_fifo_as_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    proc = kwsd("run", "--input", fifo, timeout=30)
    assert proc.returncode == 1 and "not a regular file" in proc.stderr.decode()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 60))
def test_fuzzed_wav_files_decode_or_give_an_audio_error(tmp_path_factory, junk, cut):
    """Random bytes, and a valid header with random bytes after or cut short: audio or AudioError."""
    path = tmp_path_factory.mktemp("fuzz") / "f.wav"
    for data in (junk, wav_bytes(frames=4)[:cut] + junk, b"RIFF\xff\xff\xff\xffWAVE" + junk):
        path.write_bytes(data)
        try:
            audio, rate = read_wav(str(path))
            assert audio.dtype == np.float32 and len(audio) > 0 and MIN_RATE <= rate <= MAX_RATE
        except AudioError as e:
            assert str(path) in str(e) and "\n" not in str(e)


@pytest.mark.integration
def test_a_long_recording_is_streamed_not_loaded_whole(tmp_path):
    """Peak memory of `kwsd run --input` does not grow with the recording's length."""

    def peak_rss_mb(seconds):
        path = tmp_path / f"{seconds}.wav"
        noise = np.random.default_rng(0).normal(0, 0.01, 16000 * seconds).astype(np.float32)
        scipy.io.wavfile.write(path, 16000, noise)  # float32: 64 kB per second
        code = (
            "import resource, subprocess, sys; subprocess.run([sys.executable, '-m', 'kwsd', 'run', "
            f"'--input', {str(path)!r}], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        return (
            int(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300).stdout)
            / 1024
        )

    short, long = peak_rss_mb(5), peak_rss_mb(600)  # the long file is 38 MB on disk
    assert long - short < 15, (short, long)  # loaded whole it would add > 38 MB


@pytest.mark.parametrize("level_db", [0, -20])
def test_narrowband_audio_gives_features_near_the_wideband_recordings(level_db):
    # an 8 kHz source has nothing above 4 kHz, where every training clip had sound: without the
    # band fill the upper mel bands fall to the log's floor and the cepstra move far from what the
    # model knows (the bundled model then missed 81% of the validation keywords; 39% with it)
    words = [("go", 0), ("left", 1), ("no", 2), ("stop", 3), ("yes", 0)]
    wide = compose([(w, i, 0.5 + 2 * k) for k, (w, i) in enumerate(words)], 10.5, noise_volume=0.05)
    wide *= 10 ** (level_db / 20)
    narrow = scipy.signal.resample_poly(wide, 1, 2).astype(np.float32)
    reference = pipeline_features(wide, 16000, fill=True)  # no fill at the model's own rate
    n = len(reference)
    unfilled = np.abs(pipeline_features(narrow, 8000, fill=False)[:n] - reference).mean()
    filled = np.abs(pipeline_features(narrow, 8000, fill=True)[:n] - reference).mean()
    assert filled < 0.7 * unfilled, (filled, unfilled)


def test_the_band_fill_follows_the_speakers_level_and_is_the_same_on_every_run():
    from kwsd.audio import BandFill

    rng = np.random.default_rng(3)
    speech = scipy.signal.resample_poly(0.1 * rng.standard_normal(8000 * 6), 2, 1).astype(np.float32)  # 6 s at 8 kHz
    strides = speech[: len(speech) // 1280 * 1280].reshape(-1, 1280)

    def added(gain: float, seconds_of_quiet: float = 0.0) -> np.ndarray:
        fill = BandFill(8000, 16000, 1280)
        quiet = np.zeros((int(seconds_of_quiet * 16000 / 1280), 1280), np.float32)
        return np.stack([fill(s) - s for s in np.concatenate((strides * gain, quiet))])

    loud, soft = added(1.0), added(0.1)
    assert np.array_equal(loud, added(1.0))  # one seeded loop: a stream gives the same features again
    assert np.allclose(soft, loud / 10, atol=1e-7)  # 20 dB quieter speech, 20 dB quieter noise
    power = np.abs(np.fft.rfft(loud.reshape(-1))) ** 2
    assert power[: len(power) * 7 // 16].sum() < 0.01 * power.sum()  # the noise lies above 3.5 kHz
    level = np.sqrt(np.mean(loud[-10:] ** 2)) / np.sqrt(np.mean(strides**2))
    assert 10 ** (-57 / 20) < level < 10 ** (-53 / 20)  # 55 dB under the speech (white: every stride alike)
    after = added(1.0, seconds_of_quiet=8.0)  # once the speech has left the last 5 s, the noise goes too
    assert np.abs(after[-5:]).max() == 0.0

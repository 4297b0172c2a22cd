"""The MFCC front end against python_speech_features, on real recordings."""

import itertools

import numpy as np
import pytest
from conftest import SPEECH, clip, compose
from hypothesis import given, settings
from hypothesis import strategies as st
from python_speech_features import mfcc

from kwsd.features import FrontendParams, MfccFrontend, StreamingMfcc
from kwsd.wavfile import read_wav

PARAMS = FrontendParams()


def reference(audio, p=PARAMS):
    """python_speech_features with the same parameters, minus its padded tail frame."""
    window = {"hamming": np.hamming, "rectangular": lambda n: np.ones(n), "hann": np.hanning}[p.window]
    feats = mfcc(
        audio,
        p.sample_rate,
        p.window_size_ms / 1000,
        p.window_stride_ms / 1000,
        p.feature_bin_count,
        p.num_filters,
        p.fft_size,
        p.low_freq,
        p.high_freq,
        p.preemphasis,
        p.lifter,
        p.append_energy,
        window,
    )
    return feats[: 1 + (len(audio) - p.window_samples) // p.stride_samples]


@pytest.mark.parametrize("path", sorted(SPEECH.glob("*/*.wav"))[:8], ids=lambda p: p.parent.name + "/" + p.name)
def test_batch_features_match_python_speech_features(path):
    audio, _ = read_wav(str(path))
    ours = MfccFrontend(PARAMS).signal_features(audio)
    ref = reference(audio)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_one_second_gives_49_frames_not_mfccs_padded_50():
    audio = clip("yes")
    assert len(audio) == 16000
    assert mfcc(audio, 16000, 0.03, 0.02).shape[0] == 50  # the trap: a padded tail frame
    assert MfccFrontend(PARAMS).clip_features(audio).shape == (49, 13)
    assert PARAMS.input_shape == (49, 13)


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(1, 2000), min_size=1, max_size=40))
def test_streaming_equals_whole_signal_for_any_chunking(chunks):
    audio = compose([("stop", 0, 0.3), ("go", 0, 1.4)], 2.6)
    stream = StreamingMfcc(MfccFrontend(PARAMS))
    pos = 0
    for n in itertools.cycle(chunks):
        if pos >= len(audio):
            break
        stream.push(audio[pos : pos + n])
        pos += n
    ref = reference(audio)
    assert stream.frames_seen == len(ref)
    np.testing.assert_allclose(stream.window, ref[-49:], atol=1e-4, rtol=0)


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.tuples(st.integers(1, 6000), st.booleans()), min_size=1, max_size=30))
def test_deferred_audio_gives_the_same_window_once_pushed(chunks):
    """The silence gate defers the features of quiet strides: whatever was deferred, and for
    however long, the next push leaves the window and frame count of a stream that never deferred."""
    audio = compose([("stop", 0, 0.3), ("go", 0, 1.4), ("yes", 0, 2.9)], 4.4)
    stream = StreamingMfcc(MfccFrontend(PARAMS))
    pos = 0
    for n, deferred in itertools.cycle(chunks):
        if pos + n >= len(audio):
            break
        (stream.defer if deferred else stream.push)(audio[pos : pos + n])
        pos += n
    stream.push(audio[pos:])  # the loud stride that opens the gate
    ref = reference(audio)
    assert stream.frames_seen == len(ref)
    np.testing.assert_allclose(stream.window, ref[-49:], atol=1e-4, rtol=0)


def test_a_long_deferral_costs_one_window_of_frames_when_it_ends():
    stream = StreamingMfcc(MfccFrontend(PARAMS))
    quiet = np.zeros(16000 * 60, np.float32)
    for i in range(0, len(quiet), 1280):  # a quiet minute in 80 ms strides
        stream.defer(quiet[i : i + 1280])
    computed = stream.push(np.zeros(1280, np.float32))
    assert 49 <= computed <= 49 + 1280 // 320  # the window and the new stride, not 3,000 frames
    assert stream.frames_seen == 1 + (len(quiet) + 1280 - 480) // 320


def test_streaming_window_is_exactly_the_last_clip_of_a_real_recording():
    audio = compose([("yes", 0, 0.2), ("no", 0, 1.5), ("left", 0, 2.7)], 4.0)
    stream = StreamingMfcc(MfccFrontend(PARAMS))
    for i in range(0, len(audio), 640):  # the daemon's 40 ms stride
        stream.push(audio[i : i + 640])
    np.testing.assert_allclose(stream.window, reference(audio)[-49:], atol=1e-4, rtol=0)


def test_rectangular_window_and_other_sizes_also_match():
    p = FrontendParams(
        window="rectangular", window_size_ms=25, window_stride_ms=10, feature_bin_count=10, num_filters=40
    )
    audio = clip("stop", 1)
    np.testing.assert_allclose(MfccFrontend(p).signal_features(audio), reference(audio, p), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "field,value",
    [
        ("fft_size", 256),
        ("feature_bin_count", 40),
        ("high_freq", 9000.0),
        ("window", "kaiser"),
        ("window_stride_ms", 40.0),
    ],
)
def test_inconsistent_parameters_are_refused_naming_the_field(field, value):
    params = {**PARAMS.to_dict(), field: value}
    with pytest.raises(ValueError, match=f"frontend.{field}"):
        FrontendParams.from_dict(params)

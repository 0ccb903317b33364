"""genai_lib.audio with the packaged Piper voice and Whisper tiny.en."""

import numpy as np
import pytest

from genai_lib import audio, evaluation
from genai_lib.core import GenAIError


def test_clip_properties_and_resampling(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    clip = audio.AudioClip(np.sin(2 * np.pi * 440 * t).astype(np.float32) * 0.5, sr, seconds_to_make=0.25)
    assert clip.duration == pytest.approx(1.0) and clip.real_time_factor == pytest.approx(0.25)
    down = clip.resampled(16000)
    assert down.sample_rate == 16000 and len(down.samples) == 16000
    spectrum = np.abs(np.fft.rfft(down.samples))
    assert abs(np.argmax(spectrum) - 440) <= 1  # the tone survives resampling
    clip.save_wav(tmp_path / "a.wav")
    import wave

    with wave.open(str(tmp_path / "a.wav")) as fh:
        assert fh.getframerate() == sr and fh.getnframes() == sr


def test_resampling_to_the_same_rate_is_the_clip_itself():
    clip = audio.AudioClip(np.array([0.1, -0.2, 0.3], np.float32), 8000)
    assert clip.resampled(8000) is clip
    assert audio.AudioClip(np.zeros(0, np.float32), 8000).real_time_factor == float("inf")  # empty: no division


def test_wav_is_16_bit_pcm_clipped_to_full_scale(tmp_path):
    import wave

    clip = audio.AudioClip(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0], np.float32), 8000)
    clip.save_wav(tmp_path / "c.wav")
    with wave.open(str(tmp_path / "c.wav")) as fh:
        assert (fh.getnchannels(), fh.getsampwidth(), fh.getframerate()) == (1, 2, 8000)
        pcm = np.frombuffer(fh.readframes(fh.getnframes()), "<i2")
    # 0.5 * 32767 = 16383.5 truncates to 16383; out-of-range samples saturate instead of wrapping round
    assert pcm.tolist() == [0, 16383, -16383, 32767, -32767, 32767, -32767]


def test_player_keeps_the_rate_and_the_loudness():
    """``play`` must not normalise: a quiet clip stays quiet in the page's <audio> element."""
    import io
    import wave

    clip = audio.AudioClip(np.full(400, 0.25, np.float32), 8000)
    player = clip.play()
    with wave.open(io.BytesIO(player.data)) as fh:
        assert (fh.getnchannels(), fh.getframerate(), fh.getnframes()) == (1, 8000, 400)
        pcm = np.frombuffer(fh.readframes(400), "<i2")
    assert np.all(np.abs(pcm - 0.25 * 32767) <= 1)   # normalising would have scaled it to full scale


def test_plot_shows_waveform_and_spectrogram():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr = 16000
    samples = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(sr // 2) / sr)).astype(np.float32)
    clip = audio.AudioClip(samples, sr)
    fig = audio.plot_clip(clip)
    try:
        wave_ax, spec_ax = fig.axes[:2]
        x, y = wave_ax.lines[0].get_data()
        assert np.array_equal(y, samples) and x[1] == pytest.approx(1 / sr) and x[-1] == pytest.approx(0.5 - 1 / sr)
        assert wave_ax.get_title() == "0.5 s at 16000 Hz"
        assert spec_ax.get_ylim() == (0, 8000) and spec_ax.get_xlabel() == "time (s)"
        power = spec_ax.images[0].get_array()[::-1]      # (frequency bins, frames) in dB; drawn top row = highest
        hz = np.argmax(power.mean(axis=1)) * (sr / 2) / (len(power) - 1)
        assert abs(hz - 1000) <= sr / 512                 # the tone's row is the brightest
    finally:
        plt.close(fig)
    fig = audio.plot_clip(clip, title="mine")
    assert fig.axes[0].get_title() == "mine"
    plt.close(fig)


class _Pipeline:
    """A stand-in for ``transformers.pipeline``: records how it was built and what it was given."""

    def __init__(self, answer):
        self.answer, self.built, self.calls = answer, [], []

    def __call__(self, task, model, revision, device):
        self.built.append(dict(task=task, model=model, revision=revision, device=device))

        def run(inputs, **kwargs):
            self.calls.append((inputs, kwargs))
            return self.answer(inputs)

        return run


@pytest.fixture
def hub_pipeline(monkeypatch):
    """Profile ``hub`` without the network: the Hub probe passes and ``transformers`` is a stand-in module.

    (A stand-in module rather than a patched attribute: Transformers' lazy module can be replaced in
    ``sys.modules`` on first use, which would leave a patched attribute on a stale object.)
    """
    import sys
    import types

    from genai_lib import registry

    monkeypatch.setattr(registry, "ensure_hub_reachable", lambda hub_id: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # should anything reach the real Hub, fail fast instead of retrying

    def install(answer):
        fake = _Pipeline(answer)
        monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(pipeline=fake))
        return fake

    return install


def test_hub_speech_is_seeded_per_call_and_leaves_the_global_generator_alone(hub_pipeline):
    import torch

    from genai_lib.core import get_device

    fake = hub_pipeline(lambda text: {"audio": torch.randn(1, 64).numpy(), "sampling_rate": 16000})
    tts = audio.load_tts("hub")
    assert fake.built == [dict(task="text-to-speech", model="facebook/mms-tts-eng", revision="main",
                               device=get_device())]
    assert (tts.profile, tts.sample_rate, tts.voice_noise) == ("hub", 0, (0.0, 0.0))
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first, again, other = (tts.synthesize("  Hello there.  ", seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), state)          # the caller's random stream is untouched
    assert [c for c, _ in fake.calls] == ["Hello there."] * 3  # stripped text
    torch.manual_seed(7)
    expected = torch.randn(1, 64).numpy().reshape(-1)
    assert first.samples.shape == (64,) and first.samples.dtype == np.float32 and first.sample_rate == 16000
    assert np.array_equal(first.samples, expected) and np.array_equal(again.samples, expected)
    assert not np.array_equal(other.samples, expected)
    assert first.seconds_to_make >= 0
    with pytest.raises(GenAIError, match="speed"):
        tts.synthesize("hello", speed=0.2)
    assert len(fake.calls) == 3


def test_hub_recognizer_hears_16_khz_audio(hub_pipeline):
    fake = hub_pipeline(lambda inputs: {"text": "  hello world \n"})
    asr = audio.load_asr("hub")
    assert (fake.built[0]["task"], fake.built[0]["model"]) == ("automatic-speech-recognition", "openai/whisper-tiny.en")
    assert fake.built[0]["revision"] == "87c7102498dcde7456f24cfd30239ca606ed9063"   # pinned, not "main"
    clip = audio.AudioClip(np.zeros(22050, np.float32), 22050)                      # one second at 22.05 kHz
    assert asr.transcribe(clip) == "hello world"
    (given, _), = fake.calls
    assert given["sampling_rate"] == audio.ASR_SAMPLE_RATE == 16000 and given["raw"].shape == (16000,)


def test_hub_music_asks_for_fifty_frames_a_second(hub_pipeline):
    fake = hub_pipeline(lambda prompt: {"audio": np.ones((1, 1, 320), np.float64), "sampling_rate": 32000})
    clip = audio.generate_music("  a calm piano melody ", seconds=2.0, profile="hub")
    assert (fake.built[0]["task"], fake.built[0]["model"]) == ("text-to-audio", "facebook/musicgen-small")
    assert fake.calls == [("a calm piano melody", {"forward_params": {"max_new_tokens": 100}})]
    assert clip.samples.shape == (320,) and clip.samples.dtype == np.float32 and clip.sample_rate == 32000
    with pytest.raises(GenAIError, match="non-empty"):
        audio.generate_music("   ", profile="hub")


def test_music_is_hub_only():
    with pytest.raises(GenAIError, match="GENAI_PROFILE=hub"):
        audio.generate_music("a calm piano melody", profile="offline")


@pytest.fixture(scope="module")
def tts():
    return audio.load_tts("offline")


@pytest.mark.offline
def test_tts_then_asr_round_trip(tts):
    sentence = "Generative models learn the distribution of their training data."
    clip = tts.synthesize(sentence)
    assert clip.sample_rate == 22050 and 2.0 < clip.duration < 8.0
    assert np.abs(clip.samples).max() <= 1.0
    heard = audio.load_asr("offline").transcribe(clip)
    assert evaluation.wer([sentence], [heard]) <= 0.2, heard
    faster = tts.synthesize(sentence, speed=1.5)
    assert faster.duration < clip.duration


@pytest.mark.offline
def test_same_text_gives_the_same_audio(tts):
    """Piper's noise is set to 0 by default: speech is deterministic (issue 11: the round trip was a coin flip)."""
    sentence = "The same text gives the same audio."
    first, second = tts.synthesize(sentence), tts.synthesize(sentence)
    assert np.array_equal(first.samples, second.samples)
    # the voice's own noise is real and unseeded: two calls differ, which is why the default is 0
    noisy = [tts.synthesize(sentence, noise_scale=tts.voice_noise[0], noise_w=tts.voice_noise[1]) for _ in range(2)]
    assert tts.voice_noise == (0.667, 0.8)
    assert len(noisy[0].samples) != len(noisy[1].samples) or not np.array_equal(noisy[0].samples, noisy[1].samples)


@pytest.mark.offline
def test_tts_input_errors(tts):
    for bad, message in (("", "non-empty"), ("x" * (audio.MAX_TTS_CHARS + 1), "at most")):
        with pytest.raises(GenAIError, match=message):
            tts.synthesize(bad)
    with pytest.raises(GenAIError, match="speed"):
        tts.synthesize("hello", speed=10)
    with pytest.raises(GenAIError, match="noise_scale and noise_w"):
        tts.synthesize("hello", noise_scale=-1)

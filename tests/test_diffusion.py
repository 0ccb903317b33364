"""Tests of genai_lib.diffusion in the tiny profile (seconds): the scheduler against diffusers', the
training objective, the sampling pipeline, guidance, inpainting, img2img, latent diffusion, the
Stable Diffusion code path on tiny local components, and the error messages."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genai_lib import diffusion as D
from genai_lib import digits
from genai_lib.core import GenAIError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return digits.load()


@pytest.fixture(scope="module")
def model(data):
    m = D.build(D.preset("tiny"))
    D.train(m, data.train_x, F.one_hot(data.train_y, 10).float(), steps=5, progress=False)
    return m


# ----------------------------------------------------------------------------- scheduler
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("beta_schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("clip", [False, True])
def test_ddim_step_equals_diffusers(prediction_type, beta_schedule, spacing, clip):
    from diffusers import DDIMScheduler

    ours = D.NoiseScheduler(1000, beta_schedule, prediction_type, clip_sample=clip, timestep_spacing=spacing)
    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule, prediction_type=prediction_type,
                        clip_sample=clip, timestep_spacing=spacing, set_alpha_to_one=True)
    ours.set_timesteps(20)
    ref.set_timesteps(20)
    assert torch.equal(ours.timesteps, ref.timesteps)
    torch.manual_seed(0)
    x_ours = x_ref = torch.randn(4, 1, 8, 8)
    for t in ours.timesteps:
        out = torch.randn(4, 1, 8, 8)  # stands in for the network's output
        x_ours = ours.step(out, t, x_ours).prev_sample
        # diffusers keeps the unclipped ε unless told (the FACTS pitfall); ours always stays consistent
        x_ref = ref.step(out, t, x_ref, eta=0.0, use_clipped_model_output=clip).prev_sample
        torch.testing.assert_close(x_ours, x_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps", [None, 50])
@pytest.mark.parametrize("clip", [False, True])
def test_ddpm_step_equals_diffusers(steps, clip):
    from diffusers import DDPMScheduler

    ours = D.NoiseScheduler(1000, "linear", "epsilon", clip_sample=clip, timestep_spacing="leading")
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=clip)
    if steps:
        ours.set_timesteps(steps)
        ref.set_timesteps(steps)
        assert torch.equal(ours.timesteps, ref.timesteps)
    torch.manual_seed(1)
    x = torch.randn(3, 1, 8, 8)
    for t in list(ours.timesteps[:3]) + list(ours.timesteps[-2:]):
        out = torch.randn(3, 1, 8, 8)
        a = ours.step(out, t, x, eta=1.0, generator=torch.Generator().manual_seed(int(t))).prev_sample
        b = ref.step(out, t, x, generator=torch.Generator().manual_seed(int(t))).prev_sample
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_add_noise_and_target_match_diffusers():
    from diffusers import DDPMScheduler

    ours = D.NoiseScheduler(1000, "squaredcos_cap_v2", "v_prediction")
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod)
    x0, noise, t = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8), torch.tensor([0, 10, 500, 900, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t))
    torch.testing.assert_close(ours.target(x0, noise, t), ref.get_velocity(x0, noise, t))


def test_forward_process_ends_in_noise():
    s = D.NoiseScheduler()
    assert s.alphas_cumprod[0] > 0.999 and s.alphas_cumprod[-1] < 1e-3


# ----------------------------------------------------------------------------- training and sampling
def test_training_loss_decreases(data):
    m = D.build(D.preset("tiny"))
    h = D.train(m, data.train_x, F.one_hot(data.train_y, 10).float(), steps=40, progress=False)
    assert len(h) == 40
    assert sum(h[-8:]) / 8 < 0.9 * sum(h[:8]) / 8


@pytest.mark.parametrize("sampler", D.SAMPLERS)
def test_sample_shapes_ranges_and_seed(model, sampler):
    x = D.sample(model, labels=[0, 1, 2, 3], steps=5, sampler=sampler, seed=3)
    assert x.shape == (4, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, D.sample(model, labels=[0, 1, 2, 3], steps=5, sampler=sampler, seed=3))
    assert not torch.equal(x, D.sample(model, labels=[0, 1, 2, 3], steps=5, sampler=sampler, seed=4))
    assert D.sample(model, n=3, labels=7, steps=2).shape == (3, 1, 8, 8)
    assert D.sample(model, n=2, steps=2).shape == (2, 1, 8, 8)  # unconditional


@pytest.mark.parametrize("sampler", D.SAMPLERS)
def test_every_sampler_keeps_the_one_step_contract(sampler):
    """Ours and diffusers' DPM-Solver++ alike: set_timesteps, timesteps, step(...).prev_sample, add_noise."""
    sched = D.make_scheduler(D.preset("tiny"), sampler)
    sched.set_timesteps(4)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    noisy = sched.add_noise(x, torch.randn_like(x), sched.timesteps[1].repeat(2))
    assert noisy.shape == x.shape and not torch.equal(noisy, x)
    for t in sched.timesteps:
        out = sched.step(torch.zeros_like(x), t, x, generator=torch.Generator().manual_seed(1))
        assert out.prev_sample.shape == x.shape
        x = out.prev_sample


def test_guidance_scale_one_is_the_conditional_prediction(model):
    x, t = torch.randn(4, 1, 8, 8), 500
    cond = D.condition(model, labels=[1, 2, 3, 4])
    null, neg = torch.zeros_like(cond), D.condition(model, labels=[5, 5, 5, 5])
    tt = torch.full((4,), t)
    with torch.no_grad():
        c, u, n = model.ema(x, tt, cond), model.ema(x, tt, null), model.ema(x, tt, neg)
        torch.testing.assert_close(D._guided(model, x, t, cond, null, 1.0), c)
        torch.testing.assert_close(D._guided(model, x, t, cond, null, 3.0), u + 3.0 * (c - u), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(D._guided(model, x, t, cond, neg, 2.0), n + 2.0 * (c - n), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(D._guided(model, x, t, cond, null, 0.0), u)


def test_negative_labels_change_the_samples(model):
    a = D.sample(model, labels=[3] * 4, steps=4, guidance_scale=2.0)
    b = D.sample(model, labels=[3] * 4, steps=4, guidance_scale=2.0, negative_labels=8)
    assert not torch.equal(a, b)


def test_condition_vectors(model):
    c = D.condition(model, labels=[0, 9, -1])
    assert torch.equal(c[0], F.one_hot(torch.tensor(0), 10).float()) and c[2].abs().sum() == 0


def test_inpainting_keeps_known_pixels(model, data):
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :4] = 1  # keep the left half
    x = data.test_x[:6]
    for sampler in ("ddpm", "ddim"):
        y = D.inpaint(model, x, mask, labels=data.test_y[:6], steps=6, sampler=sampler)
        assert y.shape == x.shape
        assert torch.equal(y[..., :4], x[..., :4])
        assert not torch.equal(y[..., 4:], x[..., 4:])


def test_img2img_strength(model, data):
    x = data.test_x[:4]
    assert torch.equal(D.img2img(model, x, strength=0.0, labels=3), x)
    y = D.img2img(model, x, strength=0.5, labels=3, steps=6)
    assert y.shape == x.shape and not torch.equal(y, x)


def test_text_conditioning_tiny(tiny, data):
    prompts = D.captions(7) + D.captions(1)
    emb = D.embed_text(prompts)
    assert emb.shape[0] == len(prompts)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(prompts)))
    # the embedder's own encode, loaded once and kept
    assert D._embedder("tiny") is D._embedder("tiny")
    np.testing.assert_allclose(emb.numpy(), D._embedder("tiny").encode(prompts), rtol=1e-5, atol=1e-6)
    m = D.build(D.preset("tiny", cond="text", cond_dim=emb.shape[1]))
    c = D.condition(m, prompts=["a handwritten seven", ""])
    assert c.shape == (2, emb.shape[1]) and c[1].abs().sum() == 0
    x = D.sample(m, prompts=["a scribbled seven", "the numeral 1"], negative_prompts=["the digit 3"],
                 guidance_scale=2.0, steps=3)
    assert x.shape == (2, 1, 8, 8)


def test_latent_diffusion_tiny():
    from genai_lib import vae

    v = vae.build(vae.preset("tiny"), device="cpu")
    m, z = D.build_latent(v, D.preset("tiny", arch="mlp", sample_shape=(v.cfg.latent_dim,), channels=(16,),
                                      clip_sample=False))
    assert z.shape == (1437, v.cfg.latent_dim)
    h = D.train(m, z, F.one_hot(digits.load().train_y, 10).float(), steps=3, progress=False)
    assert len(h) == 3
    x = D.sample(m, labels=[1, 2], steps=3)
    assert x.shape == (2, 1, 8, 8)


# ----------------------------------------------------------------------------- errors
def test_clear_errors(model, data):
    with pytest.raises(GenAIError, match="sampler"):
        D.sample(model, labels=[1], sampler="euler")
    with pytest.raises(GenAIError, match="steps"):
        D.sample(model, labels=[1], steps=0)
    with pytest.raises(GenAIError, match="steps"):
        D.sample(model, labels=[1], steps=-3)
    with pytest.raises(GenAIError, match="0–9"):
        D.sample(model, labels=[3, 10], steps=2)
    with pytest.raises(GenAIError, match="strength"):
        D.img2img(model, data.test_x[:2], strength=1.5)
    with pytest.raises(GenAIError, match="strength"):
        D.img2img(model, data.test_x[:2], strength=-0.1)
    with pytest.raises(GenAIError, match="guidance"):
        D.sample(model, labels=[1], guidance_scale=-1.0)
    with pytest.raises(GenAIError, match="prompts"):
        D.sample(model, prompts=["a seven"])
    with pytest.raises(GenAIError, match="beta_schedule"):
        D.NoiseScheduler(beta_schedule="quadratic")
    with pytest.raises(GenAIError, match="arch"):
        D.build(D.preset("tiny", arch="transformer"))
    for change, word in ((dict(cond="audio"), "cond"), (dict(p_uncond=1.0), "p_uncond"),
                         (dict(ema_decay=1.0), "ema_decay"), (dict(sample_shape=(64,)), "sample_shape"),
                         (dict(train_steps=0), "train_steps"), (dict(lr=0.0), "lr"),
                         (dict(prediction_type="x0"), "prediction_type")):
        with pytest.raises(GenAIError, match=word):
            D.preset("tiny", **change).validate()


# ----------------------------------------------------------------------------- the pipeline with an oracle denoiser
class Oracle(torch.nn.Module):
    """A hand-made denoiser whose answer is known: it believes the clean image of condition c is the
    constant image ``base + c·(values − base)`` (one-hot digit k: ``values[k]``; the null condition:
    ``base``) and outputs the exact ε (or v) of x_t under that belief. Every call is recorded."""

    def __init__(self, cfg, values, base=0.0):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))                      # so that model.device works
        self.ab = D.NoiseScheduler(cfg.num_train_timesteps, cfg.beta_schedule).alphas_cumprod
        self.values, self.base, self.pred = torch.as_tensor(values, dtype=torch.float32), base, cfg.prediction_type
        self.calls = []

    def clean(self, c):
        return self.base + c @ (self.values - self.base)                    # (B,)

    def forward(self, x, t, c):
        self.calls.append((x.clone(), t.clone(), c.clone()))
        shape = (-1, *([1] * (x.dim() - 1)))
        a, x0 = self.ab[t].view(shape), self.clean(c).view(shape).expand_as(x)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return eps if self.pred == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0


VALUES = [-0.9, -0.7, 0.2, -0.3, 0.1, 0.5, 0.3, 0.7, 0.8, 0.9]


def oracle_model(base=0.0, values=VALUES, **overrides):
    cfg = D.preset("tiny", **overrides)
    o = Oracle(cfg, values[: cfg.cond_dim], base)
    return D.DiffusionModel(cfg, o, o), o


def constant(vals, shape=(1, 8, 8)):
    return torch.tensor(vals, dtype=torch.float32).view(-1, *([1] * len(shape))).expand(-1, *shape)


@pytest.mark.parametrize("sampler", D.SAMPLERS)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_sample_with_an_oracle_ends_at_its_clean_images(sampler, prediction_type):
    m, o = oracle_model(base=-0.2, prediction_type=prediction_type)
    x = D.sample(m, labels=[0, 3, 9, -1], steps=5, sampler=sampler, seed=1)
    torch.testing.assert_close(x, constant([-0.9, -0.3, 0.9, -0.2]), rtol=1e-3, atol=1e-3)
    assert len(o.calls) == 5                                             # one network call per step
    sched = D.make_scheduler(m.cfg, sampler)
    sched.set_timesteps(5)
    assert [int(t[0]) for _, t, _ in o.calls] == sched.timesteps.tolist()
    for xin, t, c in o.calls:
        assert t.shape == (4,) and len(set(t.tolist())) == 1 and xin.shape == (4, 1, 8, 8)
        torch.testing.assert_close(c, D.condition(m, labels=[0, 3, 9, -1]))
    # x_T is the seeded noise
    torch.testing.assert_close(o.calls[0][0], torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(1)))


def test_sample_defaults_with_an_oracle():
    m, o = oracle_model(base=0.4)
    x = D.sample(m)                                                      # one unconditional DDIM sample, 20 steps
    torch.testing.assert_close(x, constant([0.4]), rtol=1e-4, atol=1e-4)
    assert len(o.calls) == 20 and all(len(c[0]) == 1 for c in o.calls)  # guidance 1: one pass per step
    torch.testing.assert_close(o.calls[0][0], torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    # DDIM is deterministic: x_t' follows from x_t alone (a DDPM step would add fresh noise)
    s = D.make_scheduler(m.cfg, "ddim")
    s.set_timesteps(20)
    out = m.ema(o.calls[0][0], torch.full((1,), int(s.timesteps[0])), torch.zeros(1, 10))
    torch.testing.assert_close(o.calls[1][0], s.step(out, s.timesteps[0], o.calls[0][0]).prev_sample)
    o.calls.clear()
    assert D.sample(m, n=3, labels=7, steps=2).shape == (3, 1, 8, 8)
    torch.testing.assert_close(o.calls[0][2], D.condition(m, labels=[7, 7, 7]))
    torch.testing.assert_close(D.sample(m, n=2, steps=2), constant([0.4, 0.4]), rtol=1e-4, atol=1e-4)


def test_sample_ddpm_draws_fresh_noise_from_the_seed():
    m, o = oracle_model()
    D.sample(m, labels=[2], steps=3, sampler="ddpm", seed=5)
    g = torch.Generator().manual_seed(5)
    x_T = torch.randn((1, 1, 8, 8), generator=g)
    s = D.make_scheduler(m.cfg, "ddpm")
    s.set_timesteps(3)
    t0 = s.timesteps[0]
    out = m.ema(x_T, torch.full((1,), int(t0)), D.condition(m, labels=[2]))
    torch.testing.assert_close(o.calls[1][0], s.step(out, t0, x_T, generator=g).prev_sample)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_classifier_free_guidance_with_an_oracle(prediction_type):
    """ε and v are affine in x_0, so guidance moves the oracle's clean image to base + s·(x0_c − base)."""
    m, o = oracle_model(base=0.1, prediction_type=prediction_type)
    x = D.sample(m, labels=[2, 4], steps=4, guidance_scale=3.0)
    torch.testing.assert_close(x, constant([0.1 + 3 * 0.1, 0.1 + 3 * 0.0]), rtol=1e-4, atol=1e-4)
    xin, t, c = o.calls[0]                                               # cond and null in one batch of 2N
    assert xin.shape == (4, 1, 8, 8) and torch.equal(xin[:2], xin[2:]) and torch.equal(t[:2], t[2:])
    torch.testing.assert_close(c, torch.cat([D.condition(m, labels=[2, 4]), torch.zeros(2, 10)]))
    o.calls.clear()
    # a negative label replaces the null condition: 0.5 (label 5) + 2·(x0_c − 0.5)
    x = D.sample(m, labels=[2, 7], steps=4, guidance_scale=2.0, negative_labels=5)
    torch.testing.assert_close(x, constant([0.5 + 2 * (0.2 - 0.5), 0.5 + 2 * (0.7 - 0.5)]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(o.calls[0][2][2:], D.condition(m, labels=[5, 5]))
    x = D.sample(m, labels=[2, 7], steps=4, guidance_scale=2.0, negative_labels=[6, 0])
    torch.testing.assert_close(x, constant([0.3 + 2 * (0.2 - 0.3), -0.9 + 2 * (0.7 + 0.9)]).clamp(-1, 1),
                               rtol=1e-4, atol=1e-4)
    # scale 0: the null (unconditional) model alone
    torch.testing.assert_close(D.sample(m, labels=[9], steps=3, guidance_scale=0.0), constant([0.1]), rtol=1e-4,
                               atol=1e-4)


def test_guided_by_hand():
    """_guided with a denoiser that is linear in the condition: out(c) = c·w + t/1000."""
    cfg = D.preset("tiny")

    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def forward(self, x, t, c):
            self.seen.append((len(x), t.clone()))
            return x * 0 + (c @ torch.arange(10.0)).view(-1, 1, 1, 1) + t.view(-1, 1, 1, 1) / 1000

    net = Lin()
    m = D.DiffusionModel(cfg, net, net)
    x = torch.zeros(2, 1, 8, 8)
    cond, neg = F.one_hot(torch.tensor([3, 4]), 10).float(), F.one_hot(torch.tensor([1, 1]), 10).float()
    out = D._guided(m, x, torch.tensor(250), cond, neg, 2.5)
    torch.testing.assert_close(out, constant([1 + 2.5 * 2 + 0.25, 1 + 2.5 * 3 + 0.25]))
    assert net.seen[-1][0] == 4 and net.seen[-1][1].tolist() == [250] * 4
    out = D._guided(m, x, 600, cond, neg, 1.0)
    torch.testing.assert_close(out, constant([3.6, 4.6]))
    assert net.seen[-1][0] == 2 and net.seen[-1][1].tolist() == [600] * 2


def test_text_model_prompts_and_negative_prompts(monkeypatch):
    """A text model with a stand-in encoder: a caption's vector is the one-hot of the digit word in it."""
    calls = []

    def fake_embed(texts):
        calls.append(list(texts))
        return torch.stack([F.one_hot(torch.tensor(next(i for i, w in enumerate(D.WORDS) if w in t.split())), 10)
                            .float() for t in texts])

    monkeypatch.setattr(D, "embed_text", fake_embed)
    m, o = oracle_model(base=0.0, cond="text")
    c = D.condition(m, prompts=["the digit seven", "", "a two", "the digit seven"])
    torch.testing.assert_close(c, F.one_hot(torch.tensor([7, 0, 2, 7]), 10).float() * torch.tensor([[1], [0], [1], [1]]))
    assert calls == [["a two", "the digit seven"]]                        # each missing caption once, sorted
    D.condition(m, prompts=["a two", "a nine"])
    assert calls[-1] == ["a nine"] and set(m.prompt_cache) == {"a two", "the digit seven", "a nine"}
    # labels on a text model: the caption "a handwritten <word>"; -1: the empty prompt (null)
    torch.testing.assert_close(D.condition(m, labels=[3, -1]), torch.stack([F.one_hot(torch.tensor(3), 10).float(),
                                                                            torch.zeros(10)]))
    assert "a handwritten three" in m.prompt_cache
    torch.testing.assert_close(D.condition(m, labels=[0]), F.one_hot(torch.tensor([0]), 10).float())
    with pytest.raises(GenAIError, match="0–9"):
        D.condition(m, labels=[3, 12])
    x = D.sample(m, prompts=["a seven", "a two"], negative_prompts=["a five"], guidance_scale=2.0, steps=3)
    torch.testing.assert_close(x, constant([0.5 + 2 * (0.7 - 0.5), 0.5 + 2 * (0.2 - 0.5)]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(o.calls[-1][2][2:], F.one_hot(torch.tensor([5, 5]), 10).float())
    images, mask = torch.zeros(2, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    torch.testing.assert_close(D.inpaint(m, images, mask, prompts=["a seven", "a two"], steps=3),
                               constant([0.7, 0.2]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(D.img2img(m, images, strength=1.0, prompts=["a seven", "a two"], steps=3),
                               constant([0.7, 0.2]), rtol=1e-4, atol=1e-4)


def test_latent_model_decodes_unless_asked_not_to():
    m, o = oracle_model(base=0.0, values=[2.5, -3.0] + [0.0] * 8, arch="mlp", sample_shape=(3,), channels=(4,),
                        clip_sample=False)
    m.decode, m.latent_scale = (lambda z: z + 100.0), 2.0
    z = D.sample(m, labels=[0, 1], steps=4, decode=False)                 # latents are not clamped to [-1, 1]
    torch.testing.assert_close(z, torch.tensor([[2.5] * 3, [-3.0] * 3]), rtol=1e-4, atol=1e-4)
    img = D.sample(m, labels=[0, 1], steps=4)
    torch.testing.assert_close(img, torch.tensor([[105.0] * 3, [94.0] * 3]), rtol=1e-4, atol=1e-4)
    # img2img works in latent space: no decoding
    out = D.img2img(m, torch.zeros(2, 3), strength=1.0, labels=[1, 0], steps=4)
    torch.testing.assert_close(out, torch.tensor([[-3.0] * 3, [2.5] * 3]), rtol=1e-4, atol=1e-4)
    with pytest.raises(GenAIError, match="latent"):
        D.inpaint(m, torch.zeros(2, 3), torch.ones(2, 3))


def test_unet_samples_are_clamped():
    m, _ = oracle_model(base=0.0, values=[3.0] * 10, clip_sample=False)
    torch.testing.assert_close(D.sample(m, labels=[1], steps=3), constant([1.0]))


def test_img2img_with_an_oracle():
    m, o = oracle_model(base=0.0)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = D.img2img(m, images, strength=0.7, labels=[4, 5], steps=5, seed=2)    # round(3.5) = 4 steps of 5
    torch.testing.assert_close(y, constant([0.1, 0.5]), rtol=1e-4, atol=1e-4)
    s = D.make_scheduler(m.cfg, "ddim")
    s.set_timesteps(5)
    assert [int(t[0]) for _, t, _ in o.calls] == s.timesteps[1:].tolist()
    noise = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(o.calls[0][0], s.add_noise(images, noise, s.timesteps[1].repeat(2)))
    o.calls.clear()
    D.img2img(m, images, labels=3)                                        # defaults: strength 0.5 of 50 steps, seed 0
    s.set_timesteps(50)
    assert [int(t[0]) for _, t, _ in o.calls] == s.timesteps[25:].tolist()
    torch.testing.assert_close(o.calls[0][2], D.condition(m, labels=[3, 3]))
    noise = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(o.calls[0][0], s.add_noise(images, noise, s.timesteps[25].repeat(2)))
    o.calls.clear()
    D.img2img(m, images, strength=1.0, steps=3, sampler="ddpm")           # unconditional, from the first timestep
    assert len(o.calls) == 3 and o.calls[0][2].abs().sum() == 0
    ddpm_second = o.calls[1][0]
    o.calls.clear()
    D.img2img(m, images, strength=1.0, steps=3)
    assert not torch.allclose(o.calls[1][0], ddpm_second)                 # the sampler is passed on
    o.calls.clear()
    y = D.img2img(m, images, strength=1.0, steps=3, labels=[2, 7], guidance_scale=2.0)
    assert len(o.calls[0][0]) == 4                                        # guidance: cond and null in one batch
    torch.testing.assert_close(y, constant([0.4, 1.0]), rtol=1e-4, atol=1e-4)
    same = D.img2img(m, images, strength=0.0)
    assert torch.equal(same, images) and same is not images
    assert torch.equal(D.img2img(m, images, strength=0.05, steps=5), images)   # round(0.25) = 0 steps
    for strength in (0.1, 0.5):                                           # a non-integer steps is refused
        with pytest.raises(GenAIError, match="steps"):
            D.img2img(m, images, strength=strength, steps=2.5)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpaint_with_an_oracle(sampler):
    m, o = oracle_model(base=-0.5)
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :3, :] = 1                                                  # keep the top three rows
    y = D.inpaint(m, images, mask, labels=[1, 8, -1], steps=4, sampler=sampler, seed=3)
    assert torch.equal(y[..., :3, :], images[..., :3, :])
    torch.testing.assert_close(y[..., 3:, :], constant([-0.7, 0.8, -0.5], (1, 5, 8)), rtol=1e-4, atol=1e-4)
    # RePaint: after each step the known rows are the image noised to the next timestep
    s = D.make_scheduler(m.cfg, sampler)
    s.set_timesteps(4)
    g = torch.Generator().manual_seed(3)
    draws = [torch.randn((3, 1, 8, 8), generator=g) for _ in range(3)]
    noise = draws[1] if sampler == "ddim" else draws[2]                   # DDPM's step draws its noise first
    expect = s.add_noise(images, noise, s.timesteps[1].repeat(3))
    torch.testing.assert_close(o.calls[1][0][..., :3, :], expect[..., :3, :])
    assert not torch.allclose(o.calls[1][0][..., 3:, :], expect[..., 3:, :])
    # the last replacement before the final step is noisy too: exact only after the last step
    assert not torch.allclose(o.calls[-1][0][..., :3, :], images[..., :3, :], atol=1e-2)
    if sampler == "ddim":                                                 # the unknown rows: the step's output
        x0, t0 = o.calls[0][0], s.timesteps[0]
        out = Oracle(m.cfg, VALUES, -0.5)(x0, torch.full((3,), int(t0)), D.condition(m, labels=[1, 8, -1]))
        torch.testing.assert_close(o.calls[1][0][..., 3:, :], s.step(out, t0, x0).prev_sample[..., 3:, :])


def test_inpaint_defaults_and_checks():
    m, o = oracle_model(base=-0.5)
    images = torch.zeros(2, 1, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[0, 0, 0, 0] = 0
    y = D.inpaint(m, images, mask)                                        # unconditional DDPM, 50 steps, seed 0
    assert len(o.calls) == 50 and o.calls[0][2].abs().sum() == 0
    assert y[0, 0, 0, 0].item() == pytest.approx(-0.5, abs=1e-4) and y.flatten()[1:].abs().sum() == 0
    torch.testing.assert_close(o.calls[0][0], torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    o.calls.clear()
    y = D.inpaint(m, images, mask, labels=9, guidance_scale=2.0, steps=2)
    assert y[0, 0, 0, 0].item() == 1.0                                   # −0.5 + 2·(0.9 + 0.5) = 2.3, clamped
    assert len(o.calls[0][0]) == 4
    o.calls.clear()
    y = D.inpaint(m, images, mask.bool(), steps=2)                       # a boolean mask works too
    assert y[0, 0, 0, 0].item() == pytest.approx(-0.5, abs=1e-4) and y.flatten()[1:].abs().sum() == 0
    with pytest.raises(GenAIError, match="mask"):
        D.inpaint(m, images, mask * 0.5)
    with pytest.raises(GenAIError, match="mask"):
        D.inpaint(m, images, mask * 2)


def test_per_image():
    assert D._per_image([1, 2], ["a one"], 2) is None
    assert D._per_image(None, None, 3) == [-1, -1, -1]
    assert D._per_image(4, None, 3).tolist() == [4, 4, 4]
    assert D._per_image([5], None, 2).tolist() == [5, 5]
    assert D._per_image([1, 2, 3], None, 3).tolist() == [1, 2, 3]


# ----------------------------------------------------------------------------- guards, by hand
def test_check_labels():
    y = D._check_labels([[0, 9], [3, 4]])
    assert y.dtype == torch.long and y.tolist() == [0, 9, 3, 4]
    assert D._check_labels([2.0, 7.0]).dtype == torch.long
    assert D._check_labels([]).tolist() == []
    for bad in ([-1], [10], [0, 10]):
        with pytest.raises(GenAIError, match=r"labels must be digits 0–9"):
            D._check_labels(bad)
    with pytest.raises(GenAIError, match=r"^negative_labels must .*\[-2, 3\]"):
        D._check_labels([3, -2], "negative_labels")


def test_condition_label_model():
    m, _ = oracle_model()
    c = D.condition(m, labels=[[0], [9], [-1], [4]])
    expect = torch.zeros(4, 10)
    expect[0, 0] = expect[1, 9] = expect[3, 4] = 1
    assert torch.equal(c, expect) and c.dtype == torch.float32
    assert torch.equal(D.condition(m, labels=-1), torch.zeros(1, 10))
    assert torch.equal(D.condition(m, labels=[4.0, -1.0]), expect[[3, 2]])    # float labels are digits too
    with pytest.raises(GenAIError, match="labels"):
        D.condition(m)
    with pytest.raises(GenAIError, match="cond='text'"):
        D.condition(m, labels=[1], prompts=["a one"])
    with pytest.raises(GenAIError, match="0–9"):
        D.condition(m, labels=[10, -1])


def test_check_sampling_bounds():
    cfg = D.preset("tiny", num_train_timesteps=10)
    for steps in (1, 10):
        D._check_sampling(steps, 0.0, "ddim", cfg)
    for sampler in D.SAMPLERS:
        D._check_sampling(5, 1.0, sampler, cfg)
    for steps in (0, 11, 2.0, "3"):
        with pytest.raises(GenAIError, match="between 1 and 10"):
            D._check_sampling(steps, 1.0, "ddim", cfg)
    with pytest.raises(GenAIError, match="guidance_scale"):
        D._check_sampling(5, -1e-6, "ddim", cfg)
    with pytest.raises(GenAIError, match="euler"):
        D._check_sampling(5, 1.0, "euler", cfg)


def test_validate_bounds():
    ok = [dict(arch="mlp", sample_shape=(4,)), dict(cond="text"), dict(beta_schedule="linear"),
          dict(prediction_type="epsilon"), dict(p_uncond=0.0), dict(p_uncond=0.999), dict(ema_decay=0.0),
          dict(ema_decay=0.999), dict(cond_dim=1), dict(num_train_timesteps=1), dict(batch_size=1),
          dict(train_steps=1), dict(lr=1e-12), dict(channels=(4,))]
    for change in ok:
        D.preset("tiny", **change).validate()
    bad = [(dict(arch="cnn"), "arch"), (dict(cond="class"), "cond"), (dict(beta_schedule="cosine"), "beta_schedule"),
           (dict(prediction_type="sample"), "prediction_type"), (dict(p_uncond=-0.01), "p_uncond"),
           (dict(p_uncond=1.0), "p_uncond"), (dict(ema_decay=-0.1), "ema_decay"), (dict(ema_decay=1.0), "ema_decay"),
           (dict(sample_shape=(1, 8)), "sample_shape"), (dict(arch="mlp"), "sample_shape"),
           (dict(channels=()), "channels"), (dict(cond_dim=0), "cond_dim"), (dict(cond_dim=2.0), "cond_dim"),
           (dict(num_train_timesteps=0), "num_train_timesteps"), (dict(batch_size=0), "batch_size"),
           (dict(batch_size=16.0), "batch_size"), (dict(train_steps=-1), "train_steps"), (dict(lr=-1e-3), "lr"),
           (dict(lr=0.0), "lr"), (dict(num_train_timesteps=1000.0), "num_train_timesteps")]
    for change, word in bad:
        with pytest.raises(GenAIError, match=word):
            D.preset("tiny", **change).validate()


def test_presets_and_captions():
    assert D.preset("offline") == D.DiffusionConfig()
    assert D.preset("tiny").channels == (8, 16) and D.preset("hub").train_steps == 4000
    assert D.preset("tiny", lr=0.5, seed=3) == replace(D.PRESETS["tiny"], lr=0.5, seed=3)
    assert D.captions(7) == ["a handwritten seven", "the digit 7", "the number seven", "7", "a picture of a seven",
                             "an image of the digit seven", "a seven written by hand", "digit 7"]
    assert D.captions(0, ("{d} is {w}",)) == ["0 is zero"]
    assert D.captions(2, D.HELDOUT_CAPTIONS)[3] == "a 2 drawn with a pen"


# ----------------------------------------------------------------------------- training, with a recording stand-in
class Recorder(torch.nn.Module):
    """A trainable stand-in for the denoiser: one learnable number everywhere; records what it is fed."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.3))
        self.seen, self.ws = [], []

    def forward(self, x, t, c):
        self.seen.append((x.detach().clone(), t.clone(), c.clone(), self.training))
        self.ws.append(self.w.item())
        return self.w * torch.ones_like(x)


def recorder_model(**overrides):
    cfg = D.preset("tiny", **overrides)
    net = Recorder()
    return D.DiffusionModel(cfg, net, copy.deepcopy(net).requires_grad_(False)), net


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_train_objective_by_hand(prediction_type):
    """Every sample is the same image, so each row's noise can be read back from x_t and its target rebuilt."""
    m, net = recorder_model(prediction_type=prediction_type, batch_size=8, p_uncond=0.0)
    x = torch.full((20, 1, 8, 8), 0.5)
    cond = F.one_hot(torch.full((20,), 3), 10).float()
    h = D.train(m, x, cond, steps=3, progress=False)
    assert len(h) == 3 and len(net.seen) == 3
    sched = D.NoiseScheduler(1000, "squaredcos_cap_v2", prediction_type)
    ts, noises = [], []
    for (xin, t, c, training), loss, w in zip(net.seen, h, [0.3, None, None]):
        assert xin.shape == (8, 1, 8, 8) and t.shape == (8,) and torch.equal(c, cond[:8]) and training
        a = sched.alphas_cumprod[t].double().view(-1, 1, 1, 1)
        noise = (xin.double() - a.sqrt() * 0.5) / (1 - a).sqrt()
        target = noise if prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * 0.5
        if w is not None:
            assert loss == pytest.approx(((w - target) ** 2).mean().item(), rel=1e-3)
        ts.append(t)
        noises.append(noise[t > 20])                                     # well conditioned rows
    t, noise = torch.cat(ts), torch.cat(noises)
    assert t.min() >= 0 and t.max() < 1000 and t.max() - t.min() > 300   # uniform over the 1,000 steps
    assert abs(noise.mean().item()) < 0.2 and 0.8 < noise.std().item() < 1.2
    assert not net.training                                              # left in eval mode


def test_train_label_dropout_and_alternative_captions():
    m, net = recorder_model(p_uncond=0.5, batch_size=16)
    cond = F.one_hot(torch.arange(40) % 10, 10).float()
    D.train(m, torch.zeros(40, 1, 8, 8), cond, steps=10, progress=False)
    c = torch.cat([s[2] for s in net.seen])
    null = c.abs().sum(1) == 0
    assert 0.3 < null.float().mean().item() < 0.7                       # about p_uncond of the rows
    assert torch.equal(c[~null].sum(1), torch.ones(int((~null).sum())))  # the others are untouched one-hots
    m, net = recorder_model(p_uncond=0.0, batch_size=16)
    alts = F.one_hot(torch.tensor([1, 2, 3]), 10).float().expand(40, 3, 10)  # (N, K, D): three captions a row
    D.train(m, torch.zeros(40, 1, 8, 8), alts, steps=4, progress=False)
    c = torch.cat([s[2] for s in net.seen])
    assert c.shape == (64, 10) and torch.equal(c.sum(1), torch.ones(64))
    assert set(c.argmax(1).tolist()) == {1, 2, 3}                        # one of the K, drawn per row


def test_train_step_size_ema_and_budget():
    m, net = recorder_model(p_uncond=0.0)
    init = net.w.item()
    h = D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=1, progress=False)
    # Adam's first update is lr·sign(gradient); the schedule's factor at step 0 of 1 is 1; no weight decay
    assert len(h) == 1 and abs(net.w.item() - init) == pytest.approx(m.cfg.lr, rel=1e-3)
    assert len(net.seen[0][0]) == 4                                      # batch = min(batch_size, N)
    # the EMA's warm-up: decay min(0.995, 1/10) at the first step
    assert m.ema.w.item() == pytest.approx(0.1 * init + 0.9 * net.w.item(), rel=1e-6)
    m, net = recorder_model(p_uncond=0.0)
    D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=2, progress=False)
    w1 = net.ws[1]                                                      # the weight seen at the second step
    ema1 = 0.1 * init + 0.9 * w1
    assert m.ema.w.item() == pytest.approx(2 / 11 * ema1 + 9 / 11 * net.w.item(), rel=1e-6)   # decay 2/11
    m, net = recorder_model(p_uncond=0.0, ema_decay=0.05)
    D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=1, progress=False)
    assert m.ema.w.item() == pytest.approx(0.05 * init + 0.95 * net.w.item(), rel=1e-6)
    m, net = recorder_model()
    assert len(D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), progress=False)) == m.cfg.train_steps == 5
    assert len(D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=50, max_seconds=0.0,
                       progress=False)) == 1
    assert len(D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=3, max_seconds=600.0,
                       progress=False)) == 3
    with pytest.raises(GenAIError, match="steps"):
        D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=0)
    with pytest.raises(GenAIError, match="condition"):
        D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(3, 10))


def test_train_learning_rate_schedule(monkeypatch):
    """Linear warm-up over steps/20 steps, then cosine decay to 0 (the factor LambdaLR multiplies lr by)."""
    seen = {}
    real = torch.optim.lr_scheduler.LambdaLR

    def spy(opt, fn):
        seen["fn"], seen["lr"] = fn, opt.param_groups[0]["initial_lr"] if "initial_lr" in opt.param_groups[0] \
            else opt.param_groups[0]["lr"]
        return real(opt, fn)

    monkeypatch.setattr(torch.optim.lr_scheduler, "LambdaLR", spy)
    m, _ = recorder_model(lr=0.01)
    D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=50, progress=False)
    fn = seen["fn"]
    assert seen["lr"] == 0.01
    assert fn(0) == pytest.approx(0.5) and fn(1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 50)))  # 50 // 20 = 2
    assert fn(25) == pytest.approx(0.5) and fn(49) == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / 50)))
    D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=60, progress=False)
    assert seen["fn"](0) == pytest.approx(1 / 3)                          # 60 // 20 = 3 warm-up steps
    assert seen["fn"](1) == pytest.approx(2 / 3 * 0.5 * (1 + math.cos(math.pi / 60)))
    D.train(m, torch.zeros(4, 1, 8, 8), torch.zeros(4, 10), steps=10, progress=False)
    assert seen["fn"](0) == pytest.approx(1.0)                            # 10 // 20 = 0: warm-up of one step


def test_train_is_seeded():
    """The batches, the dropout, the caption choice, t and the noise all come from the config's seed."""
    runs, conds = [], []
    alts = F.one_hot(torch.arange(90) % 10, 10).float().view(30, 3, 10)
    for i, seed in enumerate((0, 0, 1)):
        m, net = recorder_model(seed=seed, p_uncond=0.5)
        torch.manual_seed(100 + i)                                        # the global RNG must not matter
        runs.append(D.train(m, torch.randn(30, 1, 8, 8, generator=torch.Generator().manual_seed(0)),
                            alts, steps=3, progress=False))
        conds.append(torch.cat([s[2] for s in net.seen]))
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert torch.equal(conds[0], conds[1]) and not torch.equal(conds[0], conds[2])


def test_train_draws_every_row_and_every_timestep():
    m, net = recorder_model(p_uncond=0.0, num_train_timesteps=2)
    D.train(m, torch.zeros(2, 1, 8, 8), torch.eye(10)[:2], steps=6, progress=False)
    assert {int(c.argmax()) for s in net.seen for c in s[2]} == {0, 1}   # both rows, the first one too
    assert {int(t) for s in net.seen for t in s[1]} == {0, 1}            # t = 0 is a training timestep


def test_build_latent_default_config(tiny, monkeypatch):
    from genai_lib import vae

    v = vae.build(vae.preset("tiny"), device="cpu")
    m, z = D.build_latent(v)
    Z = v.cfg.latent_dim
    assert m.cfg == replace(D.preset("tiny"), arch="mlp", sample_shape=(Z,), channels=(256,), clip_sample=False,
                            lr=1e-3, train_steps=5)
    raw = vae.encode(v, digits.load().train_x)
    assert m.latent_scale == pytest.approx(float(raw.std()))
    torch.testing.assert_close(z, raw / raw.std())
    torch.testing.assert_close(m.decode(z[:3]), vae.decode(v, z[:3]))
    monkeypatch.setenv("GENAI_PROFILE", "offline")
    assert D.build_latent(v)[0].cfg.train_steps == 3000                  # latents are cheap: more steps
    monkeypatch.setitem(D.PRESETS, "offline", D.preset("offline", train_steps=100))
    assert D.build_latent(v)[0].cfg.train_steps == 3000                  # from a pixel budget of 100 on
    monkeypatch.setitem(D.PRESETS, "offline", D.preset("offline", train_steps=99))
    assert D.build_latent(v)[0].cfg.train_steps == 99                    # below it (tiny-sized): the same budget


def test_build_gives_a_frozen_ema_copy():
    m = D.build(D.preset("tiny"))
    assert not m.ema.training and not any(p.requires_grad for p in m.ema.parameters())
    assert all(p.requires_grad for p in m.net.parameters())
    for pe, p in zip(m.ema.parameters(), m.net.parameters()):
        assert torch.equal(pe, p) and pe is not p


def test_build_from_a_trained_backbone_copies_its_ema_denoiser_and_keeps_a_new_condition(data):
    label = D.build(D.preset("tiny"))
    D.train(label, data.train_x[:64], F.one_hot(data.train_y[:64], 10).float(), steps=3, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(label.ema.parameters(), label.net.parameters()))
    text_cfg = D.preset("tiny", cond="text", cond_dim=24)
    m = D.build(text_cfg, backbone_from=label)
    for src, net, ema in zip(label.ema.backbone.parameters(), m.net.backbone.parameters(), m.ema.backbone.parameters()):
        assert torch.equal(net, src) and torch.equal(ema, src) and net is not src   # the EMA weights, copied
    fresh = D.build(text_cfg)
    assert torch.equal(m.net.cond_proj.weight, fresh.net.cond_proj.weight)         # the condition starts fresh
    assert not torch.equal(next(m.net.backbone.parameters()), next(fresh.net.backbone.parameters()))
    with pytest.raises(GenAIError, match="channels"):
        D.build(D.preset("tiny", channels=(8, 8)), backbone_from=label)


def test_embed_text_uses_the_profile_it_is_given(monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "no-such-profile")               # the environment is not read
    emb = D.embed_text(["a two", "a seven"], profile="tiny")
    np.testing.assert_allclose(emb.numpy(), D._embedder("tiny").encode(["a two", "a seven"]), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the cached label model
def test_load_trains_once_then_reads_the_saved_model(monkeypatch, tmp_path, data):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(D.preset("tiny"), train_steps=3)
    with torch.no_grad():                                    # training still works inside the caller's no_grad
        a = D.load(cfg)
    (path,) = tmp_path.glob("diffusion-digits-*.pt")
    assert a.cached_from is None and len(a.history) == 3 and a.train_cpu_s > 0
    b = D.load(cfg)
    assert b.cached_from == str(path)                                            # read, not trained
    assert b.history == a.history and b.train_cpu_s == a.train_cpu_s             # its training run's record
    x = [D.sample(m, labels=[3, 7], steps=4, seed=0) for m in (a, b)]
    assert torch.equal(*x)                                                       # the same weights


def test_the_cache_is_keyed_by_config_and_a_damaged_file_is_trained_again(monkeypatch, tmp_path, data):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(D.preset("tiny"), train_steps=2)
    a = D.load(cfg)
    (path,) = tmp_path.glob("diffusion-digits-*.pt")
    path.write_bytes(b"damaged")
    b = D.load(cfg)
    assert b.cached_from is None and torch.equal(D.sample(a, labels=[1], steps=3), D.sample(b, labels=[1], steps=3))
    assert set(torch.load(path, weights_only=True)) == {"net", "ema", "history", "train_cpu_s"}     # rewritten
    D.load(replace(cfg, seed=1))
    assert len(list(tmp_path.glob("diffusion-digits-*.pt"))) == 2                 # another config, another file


def test_a_process_that_asks_while_another_trains_waits_and_reads_the_model(monkeypatch, tmp_path, data):
    """Two notebooks that need the uncached model at once train it once: this process holds the
    model's lock while it trains and saves (as load() does); another process's load() waits for the
    lock and then reads the file instead of training a second copy."""
    import subprocess
    import sys
    import time

    from genai_lib.core import cache_lock

    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    monkeypatch.setenv("GENAI_THREADS", "1")
    cfg = replace(D.preset("tiny"), train_steps=2)
    path = D._cache_path(cfg)
    script = ("from dataclasses import replace\nfrom genai_lib import diffusion as D\n"
              "cfg = replace(D.preset('tiny'), train_steps=2)\nprint(D._cache_path(cfg), flush=True)\n"
              "print(D.load(cfg).cached_from, flush=True)\n")
    with cache_lock(path.name):
        other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline().strip() == str(path)          # the same model, about to load()
            time.sleep(1.0)                                               # time enough to train a tiny model
            assert other.poll() is None                                   # ...but it waits for the lock
            m = D.build(cfg)
            D.train(m, data.train_x, F.one_hot(data.train_y, 10).float(), progress=False)
            D.save(m)
        except BaseException:
            other.kill()
            raise
    out, _ = other.communicate(timeout=120)
    assert other.returncode == 0
    assert out.strip() == str(path)                                       # read the file, not trained


def test_a_model_the_notebook_trained_and_saved_is_what_load_returns(monkeypatch, tmp_path, data):
    """The diffusion chapter trains in the open and saves; the text-to-image chapter's load() finds it."""
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(D.preset("tiny"), train_steps=2)
    m = D.build(cfg)
    D.train(m, data.train_x, F.one_hot(data.train_y, 10).float(), progress=False)
    assert D.save(m) == str(next(tmp_path.glob("diffusion-digits-*.pt")))
    loaded = D.load(cfg)
    assert loaded.cached_from is not None and loaded.history == m.history       # read, not trained again
    for p, q in zip(m.ema.parameters(), loaded.ema.parameters()):
        assert torch.equal(p, q)


def test_save_and_load_refuse_models_they_do_not_keep(model, data):
    text_cfg = D.preset("tiny", cond="text", cond_dim=384)
    with pytest.raises(GenAIError, match="label models"):
        D.load(text_cfg)
    with pytest.raises(GenAIError, match="label models"):
        D.save(D.build(text_cfg))
    with pytest.raises(GenAIError, match="0 training steps"):
        D.save(D.build(D.preset("tiny")))                                       # never trained


def test_the_cache_name_changes_with_the_config_and_with_the_training_code(monkeypatch, tmp_path):
    from genai_lib import core

    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = D.preset("tiny")

    def one():
        return 1

    def two():
        return 2

    base = core.cached_model_path("x", cfg, one)
    assert base.parent == tmp_path and base.name.startswith("x-") and base.suffix == ".pt"
    assert core.cached_model_path("x", cfg, one) == base
    assert core.cached_model_path("x", replace(cfg, seed=1), one) != base
    assert core.cached_model_path("x", cfg, two) != base

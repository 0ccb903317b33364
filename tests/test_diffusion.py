"""Tests of genai_lib.diffusion in the tiny profile (seconds): the scheduler against diffusers', the
training objective, the sampling pipeline, guidance, inpainting, img2img, latent diffusion, the
Stable Diffusion code path on tiny local components, and the error messages."""

from __future__ import annotations

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


def test_text_conditioning_tiny(data):
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

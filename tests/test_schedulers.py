"""Tests of genai_lib.schedulers against closed forms worked out by hand and against diffusers'
DDPMScheduler / DDIMScheduler / DPMSolverMultistepScheduler (an independent implementation of the
same maths): the beta schedules, the forward process, the targets, the timestep spacings, the
reverse step for every eta, and make_scheduler's choices."""

from __future__ import annotations

import math

import pytest
import torch

from genai_lib.core import GenAIError
from genai_lib.diffusion import DiffusionConfig, preset
from genai_lib.schedulers import SAMPLERS, NoiseScheduler, SchedulerOutput, make_scheduler

torch.set_num_threads(1)


def _cos(s: float) -> float:
    """The cosine schedule's ᾱ(s) before normalisation (Nichol & Dhariwal, s in [0, 1])."""
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


# ----------------------------------------------------------------------------- beta schedules
def test_linear_schedule_by_hand():
    s = NoiseScheduler(5, "linear")
    betas = [1e-4 + i * (0.02 - 1e-4) / 4 for i in range(5)]        # linspace(1e-4, 0.02, 5)
    torch.testing.assert_close(s.betas, torch.tensor(betas), rtol=1e-6, atol=1e-9)
    ab, expect = 1.0, []
    for b in betas:
        ab *= 1 - b
        expect.append(ab)
    torch.testing.assert_close(s.alphas_cumprod, torch.tensor(expect), rtol=1e-6, atol=1e-9)
    assert s.betas.dtype == torch.float32 and s.alphas_cumprod.dtype == torch.float32


def test_cosine_schedule_by_hand():
    """Without the cap, ᾱ_t = Π (1 − β_i) telescopes to f((t+1)/T) / f(0); the cap 0.999 bites only at the end."""
    T = 1000
    s = NoiseScheduler(T, "squaredcos_cap_v2")
    t = torch.arange(0, 990)
    expect = torch.tensor([_cos((i + 1) / T) / _cos(0) for i in t.tolist()])
    torch.testing.assert_close(s.alphas_cumprod[t], expect, rtol=2e-4, atol=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.999)                     # f(1) = 0: β would be 1, capped
    assert s.betas[0].item() == pytest.approx(1 - _cos(1 / T) / _cos(0), rel=1e-4)
    # a short schedule: betas by hand, including the cap on the last one
    s4 = NoiseScheduler(4, "squaredcos_cap_v2")
    betas = [min(1 - _cos((i + 1) / 4) / _cos(i / 4), 0.999) for i in range(4)]
    torch.testing.assert_close(s4.betas, torch.tensor(betas), rtol=1e-6, atol=1e-7)
    assert s4.betas.dtype == torch.float32


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("T", [10, 1000])
def test_schedules_equal_diffusers(schedule, T):
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=schedule)
    ours = NoiseScheduler(T, schedule)
    torch.testing.assert_close(ours.betas, ref.betas)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod)


def test_constructor_keeps_its_settings_and_defaults():
    s = NoiseScheduler(20, "linear", "v_prediction", clip_sample=True, timestep_spacing="leading", eta=0.3)
    assert (s.num_train_timesteps, s.prediction_type, s.clip_sample, s.timestep_spacing, s.eta) == \
        (20, "v_prediction", True, "leading", 0.3)
    d = NoiseScheduler()
    assert (d.num_train_timesteps, d.prediction_type, d.clip_sample, d.timestep_spacing, d.eta) == \
        (1000, "epsilon", False, "trailing", 0.0)
    torch.testing.assert_close(d.alphas_cumprod, NoiseScheduler(1000, "squaredcos_cap_v2").alphas_cumprod)
    # the full schedule until set_timesteps is called: T−1 down to 0, one by one
    assert torch.equal(s.timesteps, torch.arange(19, -1, -1)) and s.num_inference_steps == 20
    assert torch.equal(d.timesteps, torch.arange(999, -1, -1)) and d.num_inference_steps == 1000


def test_constructor_errors():
    with pytest.raises(GenAIError, match="beta_schedule"):
        NoiseScheduler(beta_schedule="quadratic")
    with pytest.raises(GenAIError, match="prediction_type"):
        NoiseScheduler(prediction_type="sample")
    with pytest.raises(GenAIError, match="timestep_spacing"):
        NoiseScheduler(timestep_spacing="linspace")
    for ok in ("epsilon", "v_prediction"):
        assert NoiseScheduler(10, prediction_type=ok).prediction_type == ok
    for ok in ("leading", "trailing"):
        assert NoiseScheduler(10, timestep_spacing=ok).timestep_spacing == ok


def test_schedules_are_float32_whatever_the_default_dtype():
    """Like diffusers': the betas are float32 even when a notebook switched torch's default to float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for schedule in ("linear", "squaredcos_cap_v2"):
            s = NoiseScheduler(10, schedule)
            assert s.betas.dtype == torch.float32 and s.alphas_cumprod.dtype == torch.float32
    finally:
        torch.set_default_dtype(before)


def test_ddpm_noise_follows_the_samples_dtype():
    """A float64 sample gets float64 noise from the generator (the same draws as torch.randn in float64)."""
    s = NoiseScheduler(100, "linear", eta=1.0)
    s.alphas_cumprod = s.alphas_cumprod.double()
    s.set_timesteps(10)
    x, out = torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64)
    t, tp = int(s.timesteps[2]), int(s.timesteps[3])
    y = s.step(out, t, x, generator=torch.Generator().manual_seed(0)).prev_sample
    a, ap = s.alphas_cumprod[t], s.alphas_cumprod[tp]
    sigma = ((1 - ap) / (1 - a) * (1 - a / ap)).sqrt()
    noise = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, sigma * noise, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- forward process and targets
def test_add_noise_and_targets_by_hand():
    s = NoiseScheduler(1000, "linear", "epsilon")
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 1, 2, 2, generator=g), torch.randn(3, 1, 2, 2, generator=g)
    t = torch.tensor([0, 400, 999])
    xt = s.add_noise(x0, noise, t)
    for i, ti in enumerate(t.tolist()):
        a = float(s.alphas_cumprod[ti])
        torch.testing.assert_close(xt[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * noise[i])
    assert torch.equal(s.target(x0, noise, t), noise)                    # ε-prediction learns the noise
    v = NoiseScheduler(1000, "linear", "v_prediction").target(x0, noise, t)
    for i, ti in enumerate(t.tolist()):
        a = float(s.alphas_cumprod[ti])
        torch.testing.assert_close(v[i], math.sqrt(a) * noise[i] - math.sqrt(1 - a) * x0[i])


def test_add_noise_and_target_on_latent_vectors():
    """(B, D) latents: ᾱ_t broadcasts over the one feature axis (the view follows x0's rank)."""
    s = NoiseScheduler(100, "squaredcos_cap_v2", "v_prediction")
    x0, noise = torch.ones(2, 3), torch.full((2, 3), 2.0)
    t = torch.tensor([10, 90])
    a = s.alphas_cumprod[t][:, None]
    torch.testing.assert_close(s.add_noise(x0, noise, t), a.sqrt() * x0 + (1 - a).sqrt() * noise)
    torch.testing.assert_close(s.target(x0, noise, t), a.sqrt() * noise - (1 - a).sqrt() * x0)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_split_recovers_x0_and_eps_by_hand(prediction_type):
    s = NoiseScheduler(1000, "linear", prediction_type)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.rand(2, 1, 4, 4, generator=g) * 2 - 1, torch.randn(2, 1, 4, 4, generator=g)
    t = 300
    a = float(s.alphas_cumprod[t])
    xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
    out = noise if prediction_type == "epsilon" else math.sqrt(a) * noise - math.sqrt(1 - a) * x0
    x0_hat, eps_hat = s.split(out, t, xt)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(eps_hat, noise, rtol=1e-4, atol=1e-4)


def test_split_clips_x0_and_recomputes_eps():
    s = NoiseScheduler(1000, "linear", "epsilon", clip_sample=True)
    t = 500
    a = float(s.alphas_cumprod[t])
    x0 = torch.tensor([[-3.0, -0.5, 0.25, 2.0]])
    noise = torch.tensor([[0.3, -1.0, 0.5, 1.5]])
    xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
    x0_hat, eps_hat = s.split(noise, t, xt)
    torch.testing.assert_close(x0_hat, torch.tensor([[-1.0, -0.5, 0.25, 1.0]]), rtol=1e-5, atol=1e-5)
    # ε consistent with the clipped x0: x_t = √ᾱ·x0_hat + √(1−ᾱ)·ε_hat still holds
    torch.testing.assert_close(math.sqrt(a) * x0_hat + math.sqrt(1 - a) * eps_hat, xt, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eps_hat[:, 1:3], noise[:, 1:3], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(eps_hat[:, 0], noise[:, 0])
    unclipped, _ = NoiseScheduler(1000, "linear", "epsilon").split(noise, t, xt)
    torch.testing.assert_close(unclipped, x0, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- timesteps
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("n", [1, 3, 7, 20, 1000])
def test_set_timesteps_equals_diffusers(spacing, n):
    from diffusers import DDIMScheduler

    ours = NoiseScheduler(1000, "linear", timestep_spacing=spacing)
    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing=spacing)
    ours.set_timesteps(n)
    ref.set_timesteps(n)
    assert torch.equal(ours.timesteps, ref.timesteps) and ours.timesteps.dtype == torch.long
    assert ours.num_inference_steps == n == len(ours.timesteps)


def test_set_timesteps_by_hand():
    s = NoiseScheduler(10, "linear", timestep_spacing="trailing")
    s.set_timesteps(5)
    assert s.timesteps.tolist() == [9, 7, 5, 3, 1]
    s.set_timesteps(4)                         # 10/4 = 2.5: round half to even of 10, 7.5, 5, 2.5, minus 1
    assert s.timesteps.tolist() == [9, 7, 4, 1]
    s.set_timesteps(1)
    assert s.timesteps.tolist() == [9]
    lead = NoiseScheduler(10, "linear", timestep_spacing="leading")
    lead.set_timesteps(4)                                # 10 // 4 = 2: 0, 2, 4, 6, reversed
    assert lead.timesteps.tolist() == [6, 4, 2, 0]
    lead.set_timesteps(10)
    assert lead.timesteps.tolist() == list(range(9, -1, -1))


@pytest.mark.parametrize("bad", [0, -1, 11, 2.0, "3", None])
def test_set_timesteps_rejects(bad):
    s = NoiseScheduler(10, "linear")
    with pytest.raises(GenAIError, match="between 1 and 10"):
        s.set_timesteps(bad)


def test_previous_timestep():
    s = NoiseScheduler(10, "linear", timestep_spacing="trailing")
    s.set_timesteps(5)
    assert [s.previous_timestep(t) for t in (9, 7, 5, 3, 1)] == [7, 5, 3, 1, -1]
    assert s.previous_timestep(torch.tensor(5)) == 3
    assert isinstance(s.previous_timestep(9), int)


# ----------------------------------------------------------------------------- the reverse step
def _ddim_by_hand(s, out, t, x, t_prev, eta=0.0, noise=None):
    a = float(s.alphas_cumprod[t])
    ap = float(s.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x - math.sqrt(1 - a) * out) / math.sqrt(a)
    eps = out
    sigma = eta * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
    prev = math.sqrt(ap) * x0 + math.sqrt(max(1 - ap - sigma**2, 0.0)) * eps
    return (prev + sigma * noise if noise is not None else prev), x0


def test_ddim_step_by_hand():
    s = NoiseScheduler(1000, "linear", "epsilon", timestep_spacing="trailing")
    s.set_timesteps(4)                                    # 999, 749, 499, 249
    g = torch.Generator().manual_seed(2)
    x, out = torch.randn(2, 1, 3, 3, generator=g), torch.randn(2, 1, 3, 3, generator=g)
    r = s.step(out, torch.tensor(749), x)
    assert isinstance(r, SchedulerOutput)
    prev, x0 = _ddim_by_hand(s, out, 749, x, 499)
    torch.testing.assert_close(r.prev_sample, prev, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r.pred_original_sample, x0, rtol=1e-5, atol=1e-5)
    # the last step goes to ᾱ = 1: the sample is the predicted x_0
    last = s.step(out, 249, x)
    torch.testing.assert_close(last.prev_sample, last.pred_original_sample)
    torch.testing.assert_close(last.prev_sample, _ddim_by_hand(s, out, 249, x, -1)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("eta", [0.3, 1.0])
def test_ddim_with_eta_by_hand(eta):
    s = NoiseScheduler(1000, "squaredcos_cap_v2", "epsilon")
    s.set_timesteps(10)
    g = torch.Generator().manual_seed(3)
    x, out = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
    t, tp = int(s.timesteps[3]), int(s.timesteps[4])
    noise = torch.randn(2, 4, generator=torch.Generator().manual_seed(7))
    r = s.step(out, t, x, eta=eta, generator=torch.Generator().manual_seed(7))
    expect, _ = _ddim_by_hand(s, out, t, x, tp, eta=eta, noise=noise)
    torch.testing.assert_close(r.prev_sample, expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_eta_equals_diffusers(eta, prediction_type):
    from diffusers import DDIMScheduler

    ours = NoiseScheduler(1000, "squaredcos_cap_v2", prediction_type)
    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction_type,
                        clip_sample=False, timestep_spacing="trailing", set_alpha_to_one=True)
    ours.set_timesteps(8)
    ref.set_timesteps(8)
    torch.manual_seed(4)
    x_ours = x_ref = torch.randn(2, 1, 4, 4)
    for t in ours.timesteps:
        out = torch.randn(2, 1, 4, 4)
        x_ours = ours.step(out, t, x_ours, eta=eta, generator=torch.Generator().manual_seed(int(t))).prev_sample
        x_ref = ref.step(out, t, x_ref, eta=eta, generator=torch.Generator().manual_seed(int(t))).prev_sample
        torch.testing.assert_close(x_ours, x_ref, rtol=1e-4, atol=1e-4)


def test_full_ddpm_chain_equals_diffusers_v_prediction():
    from diffusers import DDPMScheduler

    ours = NoiseScheduler(1000, "squaredcos_cap_v2", "v_prediction", eta=1.0)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                        clip_sample=False)
    ours.set_timesteps(1000)
    ref.set_timesteps(1000)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, generator=g)
    for t in (999, 500, 2, 1, 0):
        out = torch.randn(2, 3, generator=g)
        a = ours.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample    # eta from the scheduler
        b = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_eta_defaults_to_the_schedulers_and_noise_is_drawn_only_when_used():
    s0, s1 = NoiseScheduler(100, "linear", eta=0.0), NoiseScheduler(100, "linear", eta=1.0)
    for s in (s0, s1):
        s.set_timesteps(5)
    x, out = torch.randn(1, 6, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 6)
    t = int(s0.timesteps[1])

    def run(s, **kw):
        g = torch.Generator().manual_seed(9)
        y = s.step(out, t, x, generator=g, **kw).prev_sample
        return y, torch.randn(1, generator=g)            # the generator's next draw: was it consumed?

    fresh = torch.randn(1, generator=torch.Generator().manual_seed(9))
    y0, nxt0 = run(s0)
    y1, nxt1 = run(s1)
    assert torch.equal(nxt0, fresh) and not torch.equal(nxt1, fresh)   # DDIM draws nothing, DDPM draws noise
    assert not torch.allclose(y0, y1)
    assert torch.equal(run(s0, eta=1.0)[0], y1) and torch.equal(run(s1, eta=0.0)[0], y0)
    # the last step is never noised, whatever eta
    g = torch.Generator().manual_seed(9)
    last = s1.step(out, int(s1.timesteps[-1]), x, generator=g)
    assert torch.equal(torch.randn(1, generator=g), fresh)
    torch.testing.assert_close(last.prev_sample, last.pred_original_sample)


def test_ddpm_variance_is_the_posterior_variance():
    """With eta = 1 and all T steps, σ²_t = β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t (Ho et al. eq. 7)."""
    s = NoiseScheduler(50, "linear", "epsilon", eta=1.0)
    x, out = torch.zeros(4000), torch.zeros(4000)
    t = 30
    ys = s.step(out, t, x, generator=torch.Generator().manual_seed(0)).prev_sample
    ab, b = s.alphas_cumprod, s.betas
    beta_tilde = float((1 - ab[t - 1]) / (1 - ab[t]) * b[t])
    assert ys.var().item() == pytest.approx(beta_tilde, rel=0.1)
    assert ys.mean().item() == pytest.approx(0.0, abs=4 * math.sqrt(beta_tilde / 4000))


# ----------------------------------------------------------------------------- make_scheduler
def test_make_scheduler_ours():
    cfg = DiffusionConfig(num_train_timesteps=200, beta_schedule="linear", prediction_type="epsilon", clip_sample=False)
    ddim, ddpm = make_scheduler(cfg), make_scheduler(cfg, "ddpm")
    for s in (ddim, ddpm):
        assert isinstance(s, NoiseScheduler)
        assert (s.num_train_timesteps, s.prediction_type, s.clip_sample, s.timestep_spacing) == \
            (200, "epsilon", False, "trailing")
        torch.testing.assert_close(s.alphas_cumprod, NoiseScheduler(200, "linear").alphas_cumprod)
    assert ddim.eta == 0.0 and ddpm.eta == 1.0
    assert make_scheduler(cfg, "ddim").eta == 0.0
    v = make_scheduler(preset("tiny"))
    assert v.prediction_type == "v_prediction" and v.clip_sample is True
    torch.testing.assert_close(v.alphas_cumprod, NoiseScheduler(1000, "squaredcos_cap_v2").alphas_cumprod)


def test_make_scheduler_dpm():
    from diffusers import DPMSolverMultistepScheduler

    cfg = DiffusionConfig(num_train_timesteps=300, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon")
    s = make_scheduler(cfg, "dpm")
    assert isinstance(s, DPMSolverMultistepScheduler)
    c = s.config
    assert (c.num_train_timesteps, c.beta_schedule, c.prediction_type) == (300, "squaredcos_cap_v2", "epsilon")
    assert (c.thresholding, c.algorithm_type, c.solver_order, c.timestep_spacing, c.final_sigmas_type) == \
        (False, "dpmsolver++", 2, "trailing", "zero")
    assert make_scheduler(DiffusionConfig(), "dpm").config.prediction_type == "v_prediction"


def test_make_scheduler_rejects_unknown_samplers():
    assert SAMPLERS == ("ddim", "ddpm", "dpm")
    with pytest.raises(GenAIError, match="euler"):
        make_scheduler(DiffusionConfig(), "euler")

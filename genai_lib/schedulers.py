"""Noise schedulers for the diffusion models: the forward process and the reverse steps.

:class:`NoiseScheduler` is the book's own DDIM/DDPM scheduler, written with the contract of
``diffusers``' schedulers so that the two are interchangeable in one sampling loop:
``set_timesteps(n)`` then ``timesteps``; ``step(model_output, t, x)`` returns an object whose
``prev_sample`` is the next, less noisy x; ``add_noise(x0, noise, t)`` noises clean samples to
timestep ``t``. :func:`make_scheduler` picks ours (``ddim``, ``ddpm``) or diffusers'
DPM-Solver++ (``dpm``) for a :class:`~genai_lib.diffusion.DiffusionConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genai_lib.core import GenAIError

SAMPLERS = ("ddim", "ddpm", "dpm")


@dataclass
class SchedulerOutput:
    """What one reverse step returns (the fields diffusers' ``DDIMSchedulerOutput`` has)."""

    prev_sample: torch.Tensor             # x_{t'}, the sample at the next timestep
    pred_original_sample: torch.Tensor    # the predicted clean sample x_0


class NoiseScheduler:
    """The forward process q(x_t | x_0) and the DDIM/DDPM reverse steps, with diffusers' contract.

    ``alphas_cumprod[t]`` is ᾱ_t: x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε. One ``step`` goes from timestep
    t to the next one in ``timesteps``. With ``eta=0`` it is the deterministic DDIM update (Song et
    al.); with ``eta=1`` it samples the DDPM posterior (Ho et al.) — the same formula as diffusers'
    ``DDPMScheduler`` when all 1,000 steps are used.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 prediction_type: str = "epsilon", clip_sample: bool = False, timestep_spacing: str = "trailing",
                 eta: float = 0.0):
        T = num_train_timesteps
        if beta_schedule == "linear":
            betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
        elif beta_schedule == "squaredcos_cap_v2":
            f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
            betas = torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float32)
        else:
            raise GenAIError(f"Unknown beta_schedule {beta_schedule!r}; use 'linear' or 'squaredcos_cap_v2'.")  # pragma: no mutate  (message wording; the raise is tested)
        if prediction_type not in ("epsilon", "v_prediction"):
            raise GenAIError(f"Unknown prediction_type {prediction_type!r}; use 'epsilon' or 'v_prediction'.")  # pragma: no mutate  (message wording; the raise is tested)
        if timestep_spacing not in ("leading", "trailing"):
            raise GenAIError(f"Unknown timestep_spacing {timestep_spacing!r}; use 'leading' or 'trailing'.")  # pragma: no mutate  (message wording; the raise is tested)
        self.num_train_timesteps, self.prediction_type = T, prediction_type
        self.clip_sample, self.timestep_spacing = clip_sample, timestep_spacing
        self.eta = eta                                            # 0: DDIM (deterministic), 1: DDPM
        self.betas = betas                                        # (T,)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)   # (T,) ᾱ_t, from ≈1 down to ≈0
        self.set_timesteps(T)

    # [start:add-noise]
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for a batch of timesteps ``t`` (B,)."""
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))  # (B, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network learns to output: ε, or v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0."""
        if self.prediction_type == "epsilon":
            return noise
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * noise - (1 - a).sqrt() * x0
    # [end:add-noise]

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose ``num_inference_steps`` timesteps from T−1 down towards 0 (diffusers' spacings)."""
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise GenAIError(f"steps must be an integer between 1 and {self.num_train_timesteps}, "  # pragma: no mutate  (message wording; the raise is tested)
                             f"got {num_inference_steps!r}.")  # pragma: no mutate  (message wording; the raise is tested)
        n, T = num_inference_steps, self.num_train_timesteps
        if self.timestep_spacing == "leading":
            ts = torch.arange(0, n) * (T // n)                                  # 0, 50, ..., 950
        else:
            ts = torch.round(torch.arange(T, 0, -T / n)).long().flip(0) - 1     # 49, 99, ..., 999
        self.timesteps = ts.flip(0).long()                                      # (n,) descending
        self.num_inference_steps = n

    def previous_timestep(self, t: int) -> int:
        """The timestep after ``t`` in ``timesteps`` (−1 after the last one: the clean image)."""
        i = int((self.timesteps == t).nonzero()[0, 0])
        return int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else -1

    def split(self, model_output: torch.Tensor, t: int, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn the network's output at timestep ``t`` into (predicted x_0, predicted ε)."""
        a = self.alphas_cumprod[t]
        if self.prediction_type == "epsilon":
            x0 = (sample - (1 - a).sqrt() * model_output) / a.sqrt()
        else:
            x0 = a.sqrt() * sample - (1 - a).sqrt() * model_output
        if self.clip_sample:  # clip x_0 AND recompute ε from it, so that both stay consistent (see FACTS)
            x0 = x0.clamp(-1, 1)
        eps = (sample - a.sqrt() * x0) / (1 - a).sqrt()
        return x0, eps

    # [start:step]
    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, eta: float | None = None,
             generator: torch.Generator | None = None) -> SchedulerOutput:
        """One reverse step x_t → x_{t'} (t' = the next timestep): DDIM for ``eta=0``, DDPM for ``eta=1``.

        ``eta`` defaults to the scheduler's own. Like diffusers' schedulers it returns an object whose
        ``prev_sample`` is x_{t'}, so one sampling loop serves both.
        """
        eta = self.eta if eta is None else eta
        t = int(timestep)
        t_prev = self.previous_timestep(t)
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        x0, eps = self.split(model_output, t, sample)
        var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)         # σ² of the DDPM posterior
        sigma = eta * var.clamp(min=1e-20).sqrt()
        prev = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and t_prev >= 0:
            noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device="cpu").to(sample.device)
            prev = prev + sigma * noise
        return SchedulerOutput(prev_sample=prev, pred_original_sample=x0)
    # [end:step]


def make_scheduler(cfg, sampler: str = "ddim"):
    """A scheduler for ``sampler``: ours for "ddim"/"ddpm", diffusers' DPM-Solver++ (2M) for "dpm"."""
    if sampler not in SAMPLERS:
        raise GenAIError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")  # pragma: no mutate  (message wording; the raise is tested)
    if sampler == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                                           prediction_type=cfg.prediction_type, thresholding=False,
                                           algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing",
                                           final_sigmas_type="zero")
    return NoiseScheduler(cfg.num_train_timesteps, cfg.beta_schedule, cfg.prediction_type, cfg.clip_sample,
                          eta=1.0 if sampler == "ddpm" else 0.0)

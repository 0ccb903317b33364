"""Diffusion models on 8×8 digits: a small UNet, a noise scheduler, classifier-free guidance, text
conditioning, latent diffusion, inpainting and image-to-image; plus the paper's Stable Diffusion.

The roles are split the way ``diffusers`` splits them:

* the **denoiser** (a ``diffusers`` :class:`~diffusers.UNet2DModel`, or a small MLP for latent
  vectors) predicts the noise (or ``v``) in a noisy image, given the timestep and a condition vector;
* the **scheduler** (:class:`NoiseScheduler`) knows the noise schedule: ``add_noise`` for training,
  and ``set_timesteps`` / ``timesteps`` / ``step`` for sampling, the same contract as diffusers'
  ``DDIMScheduler`` and ``DDPMScheduler`` (tests check that the outputs are the same);
* the **pipeline** (:func:`sample`) is the sampling loop: a few readable lines.

Typical use::

    from genai_lib import diffusion
    model = diffusion.build(diffusion.PRESETS["offline"])
    history = diffusion.train(model, images, labels)          # images (N, 1, 8, 8) in [-1, 1]
    x = diffusion.sample(model, labels=[7] * 16, steps=20)     # (16, 1, 8, 8) in [-1, 1]
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from genai_lib.core import GenAIError, get_profile

SAMPLERS = ("ddim", "ddpm", "dpm")
NUM_CLASSES = 10


@dataclass
class DiffusionConfig:
    """Everything that defines a digits diffusion model and its training run."""

    sample_shape: tuple[int, ...] = (1, 8, 8)  # shape of one sample: (C, H, W) pixels, or (D,) latents
    arch: str = "unet"                          # "unet" (diffusers UNet2DModel) or "mlp" (latent vectors)
    channels: tuple[int, ...] = (32, 64, 64)    # UNet: channels per resolution (8×8, 4×4, 2×2); MLP: hidden widths
    layers_per_block: int = 1                   # UNet: ResNet blocks per resolution
    cond: str = "label"                         # "label": one-hot digit; "text": MiniLM caption embedding
    cond_dim: int = NUM_CLASSES                 # size of the condition vector (10 labels, 384 MiniLM)
    p_uncond: float = 0.1                       # label dropout: share of training rows with the null condition
    num_train_timesteps: int = 1000             # T, the length of the forward process
    beta_schedule: str = "squaredcos_cap_v2"    # "linear" (Ho et al.) or "squaredcos_cap_v2" (cosine)
    prediction_type: str = "v_prediction"       # what the network predicts: "epsilon" or "v_prediction"
    clip_sample: bool = True                    # clip the predicted clean image to [-1, 1] while sampling
    batch_size: int = 128                       # training batch
    lr: float = 2e-3                            # peak AdamW learning rate (warm-up, then cosine decay)
    train_steps: int = 1300                     # optimiser steps (the training budget)
    ema_decay: float = 0.995                    # exponential moving average of the weights used to sample
    seed: int = 0                               # seeds the weights and the training batches


PRESETS: dict[str, DiffusionConfig] = {
    "tiny": DiffusionConfig(channels=(8, 16), layers_per_block=1, batch_size=16, train_steps=5),
    "offline": DiffusionConfig(),
    "hub": DiffusionConfig(channels=(64, 128, 128), layers_per_block=2, batch_size=256, train_steps=4000),
}


def preset(profile: str | None = None, **changes) -> DiffusionConfig:
    """The preset of ``profile`` (the active one when ``None``), with ``changes`` applied."""
    return replace(PRESETS[get_profile(profile)], **changes)


# ----------------------------------------------------------------------------- the scheduler
class NoiseScheduler:
    """The forward process q(x_t | x_0) and the DDIM/DDPM reverse steps, with diffusers' contract.

    ``alphas_cumprod[t]`` is ᾱ_t: x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε. One ``step`` goes from timestep
    t to the next one in ``timesteps``. With ``eta=0`` it is the deterministic DDIM update (Song et
    al.); with ``eta=1`` it samples the DDPM posterior (Ho et al.) — the same formula as diffusers'
    ``DDPMScheduler`` when all 1,000 steps are used.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 prediction_type: str = "epsilon", clip_sample: bool = False, timestep_spacing: str = "trailing"):
        T = num_train_timesteps
        if beta_schedule == "linear":
            betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
        elif beta_schedule == "squaredcos_cap_v2":
            f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
            betas = torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float32)
        else:
            raise GenAIError(f"Unknown beta_schedule {beta_schedule!r}; use 'linear' or 'squaredcos_cap_v2'.")
        if prediction_type not in ("epsilon", "v_prediction"):
            raise GenAIError(f"Unknown prediction_type {prediction_type!r}; use 'epsilon' or 'v_prediction'.")
        if timestep_spacing not in ("leading", "trailing"):
            raise GenAIError(f"Unknown timestep_spacing {timestep_spacing!r}; use 'leading' or 'trailing'.")
        self.num_train_timesteps, self.prediction_type = T, prediction_type
        self.clip_sample, self.timestep_spacing = clip_sample, timestep_spacing
        self.betas = betas                                        # (T,)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)   # (T,) ᾱ_t, from ≈1 down to ≈0
        self.set_timesteps(T)

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

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose ``num_inference_steps`` timesteps from T−1 down towards 0 (diffusers' spacings)."""
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise GenAIError(f"steps must be an integer between 1 and {self.num_train_timesteps}, "
                             f"got {num_inference_steps!r}.")
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

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, eta: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One reverse step x_t → x_{t'} (t' = the next timestep): DDIM for ``eta=0``, DDPM for ``eta=1``."""
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
        return prev


def make_scheduler(cfg: DiffusionConfig, sampler: str = "ddim"):
    """A scheduler for ``sampler``: ours for "ddim"/"ddpm", diffusers' DPM-Solver++ (2M) for "dpm"."""
    if sampler not in SAMPLERS:
        raise GenAIError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    if sampler == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                                           prediction_type=cfg.prediction_type, thresholding=False,
                                           algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing",
                                           final_sigmas_type="zero")
    return NoiseScheduler(cfg.num_train_timesteps, cfg.beta_schedule, cfg.prediction_type, cfg.clip_sample)


# ----------------------------------------------------------------------------- the denoisers
class MLPDenoiser(nn.Module):
    """A denoiser for flat latent vectors (latent diffusion): MLP with time and condition embeddings."""

    def __init__(self, dim: int, hidden: int, temb_dim: int):
        super().__init__()
        self.temb_dim = temb_dim
        self.t_mlp = nn.Sequential(nn.Linear(temb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden))
                                     for _ in range(4)])
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        half = self.temb_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=x.device) / half)
        tf = t.float()[:, None] * freqs[None]                                    # (B, half)
        e = self.t_mlp(torch.cat([tf.sin(), tf.cos()], dim=1)) + emb             # (B, hidden)
        h = self.inp(x)                                                          # (B, hidden)
        for block in self.blocks:
            h = h + block(h + e)                                                 # residual MLP blocks
        return self.out(h)                                                       # (B, D)


class Denoiser(nn.Module):
    """The network ε_θ(x_t, t, c): a backbone plus a linear map from the condition vector c.

    c is a one-hot digit (10 numbers), or a MiniLM caption embedding (384 numbers); the all-zero
    vector is the *null* condition used for classifier-free guidance. Its projection is added to the
    timestep embedding, which every ResNet block of the UNet receives.
    """

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.arch == "unet":
            from diffusers import UNet2DModel

            n = len(cfg.channels)
            temb_dim = cfg.channels[0] * 4
            self.backbone = UNet2DModel(
                sample_size=cfg.sample_shape[-1], in_channels=cfg.sample_shape[0], out_channels=cfg.sample_shape[0],
                block_out_channels=cfg.channels, layers_per_block=cfg.layers_per_block,
                down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n, add_attention=False,
                norm_num_groups=min(8, cfg.channels[0]), class_embed_type="identity")
        elif cfg.arch == "mlp":
            temb_dim = cfg.channels[0]
            self.backbone = MLPDenoiser(cfg.sample_shape[0], cfg.channels[0], temb_dim)
        else:
            raise GenAIError(f"Unknown arch {cfg.arch!r}; use 'unet' or 'mlp'.")
        self.cond_proj = nn.Linear(cfg.cond_dim, temb_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.cond_proj(cond)                                               # (B, temb_dim)
        if self.cfg.arch == "unet":
            return self.backbone(x, t, class_labels=emb).sample                  # (B, 1, 8, 8)
        return self.backbone(x, t, emb)                                          # (B, D)


@dataclass
class DiffusionModel:
    """A trained (or training) model: config, network, its EMA copy (used to sample) and extras."""

    cfg: DiffusionConfig
    net: Denoiser
    ema: Denoiser
    prompt_cache: dict[str, torch.Tensor] = field(default_factory=dict)   # caption -> MiniLM vector
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None          # latent -> image (latent diffusion)
    latent_scale: float = 1.0                                             # latents are divided by this

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


def build(cfg: DiffusionConfig | None = None, device: str | None = "cpu") -> DiffusionModel:
    """A fresh model for ``cfg`` (the active profile's preset when ``None``).

    Args:
        cfg: the configuration.
        device: where the weights live (the 8×8 models train fastest on the CPU they were timed on).

    Returns:
        A :class:`DiffusionModel`; ``model.ema`` holds the averaged weights that :func:`sample` uses.
    """
    cfg = cfg or preset()
    if cfg.cond not in ("label", "text"):
        raise GenAIError(f"Unknown cond {cfg.cond!r}; use 'label' or 'text'.")
    if not 0.0 <= cfg.p_uncond < 1.0:
        raise GenAIError(f"p_uncond must be in [0, 1), got {cfg.p_uncond}.")
    torch.manual_seed(cfg.seed)
    net = Denoiser(cfg).to(device)
    ema = copy.deepcopy(net).requires_grad_(False).eval()
    return DiffusionModel(cfg, net, ema)

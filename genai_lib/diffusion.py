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

from genai_lib.core import GenAIError, preset_of

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


def preset(profile: str | None = None, **overrides) -> DiffusionConfig:
    """The profile's preset :class:`DiffusionConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


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

    # [start:step]
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
    # [end:step]


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


# [start:denoiser]
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
# [end:denoiser]


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


# ----------------------------------------------------------------------------- conditions
#: Captions used to train the text-conditioned model ({w}: "seven", {d}: "7"), and phrasings it
#: never sees, used to measure whether the MiniLM embedding carries the meaning over.
TRAIN_CAPTIONS = ("a handwritten {w}", "the digit {d}", "the number {w}", "{d}", "a picture of a {w}",
                  "an image of the digit {w}", "a {w} written by hand", "digit {d}")
HELDOUT_CAPTIONS = ("a scribbled {w}", "the numeral {d}, handwritten", "someone wrote the number {w}",
                    "an {d} drawn with a pen".replace("an ", "a "), "{w}")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def captions(label: int, templates: Sequence[str] = TRAIN_CAPTIONS) -> list[str]:
    """The captions of digit ``label`` built from ``templates``."""
    return [t.format(w=WORDS[label], d=label) for t in templates]


@torch.no_grad()
def embed_text(texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """MiniLM sentence embeddings (mean pooling + L2 norm), the condition of the text model.

    Args:
        texts: captions.

    Returns:
        (N, 384) unit vectors (the embedder's width; a tiny random encoder in the ``tiny`` profile).
    """
    from transformers import AutoModel, AutoTokenizer

    from genai_lib.registry import resolve

    path = resolve("embedder").source
    tok, enc = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, return_tensors="pt")
        h = enc(**batch).last_hidden_state                                  # (B, L, H)
        m = batch["attention_mask"].unsqueeze(-1).float()                   # (B, L, 1)
        out.append(F.normalize((h * m).sum(1) / m.sum(1), dim=-1))          # (B, H)
    return torch.cat(out)


def _check_labels(labels, name: str = "labels") -> torch.Tensor:
    y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise GenAIError(f"{name} must be digits 0–9, got values {sorted(set(y.tolist()))}.")
    return y


def condition(model: DiffusionModel, labels=None, prompts: Sequence[str] | None = None) -> torch.Tensor:
    """Condition vectors (N, cond_dim) for digit labels (one-hot) or captions (MiniLM).

    A label model accepts ``labels``; a text model accepts ``prompts``, or ``labels``, which it turns
    into the caption "a handwritten <word>". ``-1`` as a label (or ``""`` as a prompt) is the null condition.
    """
    if prompts is None and labels is None:
        raise GenAIError("Give labels (digits 0–9) or prompts (captions).")
    if model.cfg.cond == "label":
        if prompts is not None:
            raise GenAIError("This model is conditioned on labels; build it with cond='text' to use prompts.")
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        _check_labels(y[y >= 0])
        return F.one_hot(y.clamp(min=0), NUM_CLASSES).float() * (y >= 0).float()[:, None]   # (N, 10)
    if prompts is None:
        y = _check_labels(torch.as_tensor(labels).reshape(-1)[torch.as_tensor(labels).reshape(-1) >= 0])
        prompts = [captions(int(v))[0] if v >= 0 else "" for v in torch.as_tensor(labels).reshape(-1)]
    missing = sorted({p for p in prompts if p and p not in model.prompt_cache})
    if missing:
        model.prompt_cache.update(zip(missing, embed_text(missing)))
    zero = torch.zeros(model.cfg.cond_dim)
    return torch.stack([model.prompt_cache[p] if p else zero for p in prompts])          # (N, 384)


# ----------------------------------------------------------------------------- training
def train(model: DiffusionModel, x: torch.Tensor, cond: torch.Tensor, steps: int | None = None,
          max_seconds: float | None = None, progress: bool = True) -> list[float]:
    """Train with the DDPM objective ‖target − net(x_t, t, c)‖², label dropout and an EMA.

    Args:
        model: from :func:`build`.
        x: training samples (N, *sample_shape), images in [-1, 1] or scaled latents.
        cond: their condition vectors (N, cond_dim), or (N, K, cond_dim) for K alternatives per row
            (several captions of an image; one is drawn at random each time).
        steps: optimiser steps (default ``cfg.train_steps``): the training budget.
        max_seconds: also stop after this many seconds of wall time (``None`` = no limit).
        progress: show a tqdm bar.

    Returns:
        The loss of every step.
    """
    cfg, net, ema = model.cfg, model.net, model.ema
    steps = cfg.train_steps if steps is None else steps
    if steps < 1 or len(x) != len(cond):
        raise GenAIError(f"Need steps ≥ 1 and one condition per sample (got {steps} steps, {len(x)} samples, "
                         f"{len(cond)} conditions).")
    sched = make_scheduler(cfg)
    dev = model.device
    x, cond = x.to(dev), cond.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    warm = max(1, steps // 20)
    lr_at = lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / steps))  # noqa: E731
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, t0 = [], time.perf_counter()
    net.train()
    for step in tqdm(range(steps), desc="diffusion", disable=not progress):
        # [start:training-step]
        idx = torch.randint(0, len(x), (min(cfg.batch_size, len(x)),), generator=gen)
        x0, c = x[idx], cond[idx]                                                  # (B, 1, 8, 8), (B, [K,] D)
        if c.dim() == 3:                                                           # pick one caption per row
            c = c[torch.arange(len(idx)), torch.randint(0, c.shape[1], (len(idx),), generator=gen)]
        keep = (torch.rand(len(idx), generator=gen) >= cfg.p_uncond).float().to(dev)
        c = c * keep[:, None]                                                      # label dropout -> null
        t = torch.randint(0, cfg.num_train_timesteps, (len(idx),), generator=gen).to(dev)
        noise = torch.randn(x0.shape, generator=gen).to(dev)
        loss = F.mse_loss(net(sched.add_noise(x0, noise, t), t, c), sched.target(x0, noise, t))
        # [end:training-step]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_sched.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
        history.append(loss.item())
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    net.eval()
    return history


# ----------------------------------------------------------------------------- sampling
# [start:guided]
def _guided(model: DiffusionModel, x: torch.Tensor, t, cond: torch.Tensor, neg: torch.Tensor,
            scale: float) -> torch.Tensor:
    """Classifier-free guidance: out = out(neg) + scale·(out(cond) − out(neg)); neg = null unless given."""
    tt = torch.full((len(x),), int(t), device=x.device)
    if scale == 1.0:                                      # the conditional prediction: one pass is enough
        return model.ema(x, tt, cond)
    both = model.ema(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, neg]))
    out_c, out_n = both.chunk(2)
    return out_n + scale * (out_c - out_n)
# [end:guided]


def _check_sampling(steps, guidance_scale, sampler, cfg: DiffusionConfig) -> None:
    if sampler not in SAMPLERS:
        raise GenAIError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    if not isinstance(steps, int) or not 1 <= steps <= cfg.num_train_timesteps:
        raise GenAIError(f"steps must be an integer between 1 and {cfg.num_train_timesteps}, got {steps!r}.")
    if guidance_scale < 0:
        raise GenAIError(f"guidance_scale must be ≥ 0 (1 = no guidance), got {guidance_scale}.")


@torch.no_grad()
def sample(model: DiffusionModel, n: int | None = None, labels=None, steps: int = 20, guidance_scale: float = 1.0,
           negative_labels=None, sampler: str = "ddim", generator: torch.Generator | None = None,
           prompts: Sequence[str] | None = None, negative_prompts: Sequence[str] | None = None,
           x_init: torch.Tensor | None = None, start: int = 0, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, decode: bool = True) -> torch.Tensor:
    """Generate samples: the pipeline, start from noise and apply ``scheduler.step`` ``steps`` times.

    Args:
        model: a trained :class:`DiffusionModel`.
        n: how many samples; ``labels`` may instead give one label per sample (an int repeats).
        labels: requested digits (0–9); ``-1`` = unconditional. Text models also take ``prompts``.
        steps: denoising steps (1–1000). 1,000 with ``sampler="ddpm"`` is the original DDPM.
        guidance_scale: classifier-free guidance; 1 = the conditional model alone, > 1 pushes harder.
        negative_labels: digits to steer away from (replace the null condition in the guidance).
        sampler: "ddim" (deterministic), "ddpm" (stochastic) or "dpm" (diffusers' DPM-Solver++).
        generator: seeds the starting noise (and the DDPM noise).
        prompts, negative_prompts: captions, for models built with ``cond="text"``.
        x_init, start: begin at timestep index ``start`` from ``x_init`` instead of pure noise (img2img).
        known, mask: inpainting; pixels where ``mask`` is 1 are replaced by ``known`` noised to the
            current level after every step (and exactly at the end).
        decode: for latent models, decode the latents into images.

    Returns:
        Samples (N, *sample_shape) — images in [-1, 1], or decoded images for latent models.
    """
    cfg = model.cfg
    _check_sampling(steps, guidance_scale, sampler, cfg)
    if labels is not None and n is not None and torch.as_tensor(labels).dim() == 0:
        labels = [int(labels)] * n
    if labels is None and prompts is None:
        labels = [-1] * (n or 1)
    cond = condition(model, labels=labels, prompts=prompts).to(model.device)           # (N, D)
    N = len(cond)
    neg = torch.zeros_like(cond)                                                       # the null condition
    if negative_labels is not None or negative_prompts is not None:
        nl = None if negative_labels is None else torch.as_tensor(negative_labels).reshape(-1).expand(N)
        neg = condition(model, labels=nl, prompts=negative_prompts and list(negative_prompts) * (N // len(negative_prompts)))
        neg = neg.to(model.device)
    # [start:sampling-loop]
    scheduler = make_scheduler(cfg, sampler)
    scheduler.set_timesteps(steps)
    gen = generator or torch.Generator().manual_seed(0)
    x = torch.randn((N, *cfg.sample_shape), generator=gen).to(model.device)            # x_T ~ N(0, I)
    if x_init is not None:
        x = x_init.to(model.device)
    for i, t in enumerate(scheduler.timesteps[start:]):
        out = _guided(model, x, t, cond, neg, guidance_scale)                          # ε or v prediction
        if sampler == "dpm":
            x = scheduler.step(out, t, x, generator=gen).prev_sample
        else:
            x = scheduler.step(out, t, x, eta=1.0 if sampler == "ddpm" else 0.0, generator=gen)
        if mask is not None:                                                           # inpainting
            x = _replace_known(scheduler, x, known, mask, start + i, gen)
    # [end:sampling-loop]
    if model.decode is not None and decode:
        return model.decode(x * model.latent_scale).cpu()
    return (x.clamp(-1, 1) if cfg.arch == "unet" else x).cpu()


# [start:replace-known]
def _replace_known(scheduler, x, known, mask, i, gen):
    """RePaint's replacement: known pixels are the original, noised to the level x is now at."""
    ts = scheduler.timesteps
    if i + 1 >= len(ts):
        return mask * known + (1 - mask) * x                                           # the end: exactly known
    t_next = ts[i + 1].view(1)
    noise = torch.randn(known.shape, generator=gen).to(known.device)
    noisy = NoiseScheduler.add_noise(scheduler, known, noise, t_next.expand(len(x)))
    return mask * noisy + (1 - mask) * x
# [end:replace-known]


def _per_image(labels, prompts, n: int):
    """One label per image: ``None`` -> unconditional, an int -> repeated."""
    if prompts is not None:
        return None
    if labels is None:
        return [-1] * n
    y = torch.as_tensor(labels).reshape(-1)
    return y.expand(n) if len(y) == 1 else y


def inpaint(model: DiffusionModel, images: torch.Tensor, mask: torch.Tensor, labels=None, steps: int = 50,
            sampler: str = "ddpm", guidance_scale: float = 1.0, generator: torch.Generator | None = None,
            prompts: Sequence[str] | None = None) -> torch.Tensor:
    """Regenerate the unknown part of images (RePaint-style replacement).

    Args:
        images: (N, 1, 8, 8) in [-1, 1].
        mask: (N or 1, 1, 8, 8): 1 where the pixel is known (kept), 0 where it is regenerated.
        labels: what digit to complete (``-1`` or ``None`` = unconditional).

    Returns:
        (N, 1, 8, 8); the known pixels equal the input exactly.
    """
    if model.decode is not None:
        raise GenAIError("Inpainting works on pixel-space models; this one is a latent model.")
    mask = torch.as_tensor(mask, dtype=torch.float32).expand_as(images).to(model.device)
    if not ((mask == 0) | (mask == 1)).all():
        raise GenAIError("mask must hold only 0 (regenerate) and 1 (keep).")
    labels = _per_image(labels, prompts, len(images))
    return sample(model, labels=labels, prompts=prompts, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                  generator=generator, known=images.to(model.device), mask=mask)


def img2img(model: DiffusionModel, images: torch.Tensor, strength: float = 0.5, labels=None, steps: int = 50,
            sampler: str = "ddim", guidance_scale: float = 1.0, generator: torch.Generator | None = None,
            prompts: Sequence[str] | None = None) -> torch.Tensor:
    """Image-to-image: noise the images part of the way, then denoise towards the condition.

    Args:
        images: (N, 1, 8, 8) in [-1, 1] (latent models: latents (N, D)).
        strength: how far to go into the noise, from 0 (return the input) to 1 (nearly pure noise).
        steps: the schedule's length at strength 1; ``round(strength·steps)`` steps are run.

    Returns:
        (N, *sample_shape), in the same space as the input.
    """
    if not 0.0 <= strength <= 1.0:
        raise GenAIError(f"strength must be between 0 and 1, got {strength}.")
    _check_sampling(steps, guidance_scale, sampler, model.cfg)
    run = int(round(strength * steps))
    if run == 0:
        return images.clone()
    scheduler = make_scheduler(model.cfg, sampler)
    scheduler.set_timesteps(steps)
    start = steps - run
    gen = generator or torch.Generator().manual_seed(0)
    t = scheduler.timesteps[start].view(1).expand(len(images))
    images = images.to(model.device)
    noise = torch.randn(images.shape, generator=gen).to(model.device)
    noisy = NoiseScheduler.add_noise(make_scheduler(model.cfg), images, noise, t.to(model.device))
    labels = _per_image(labels, prompts, len(images))
    return sample(model, labels=labels, prompts=prompts, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                  generator=gen, x_init=noisy, start=start, decode=False)


# ----------------------------------------------------------------------------- latent diffusion
def build_latent(vae_model, cfg: DiffusionConfig | None = None) -> tuple[DiffusionModel, torch.Tensor]:
    """Latent diffusion (Rombach et al.): the same diffusion, on the VAE's latent vectors.

    Args:
        vae_model: a trained :mod:`genai_lib.vae` model; its encoder makes the training latents and
            its decoder turns sampled latents into images.
        cfg: the config (default: the active preset with an MLP denoiser sized for the latents).

    Returns:
        (model, latents): the untrained model and the training latents (N, Z), already divided by
        ``model.latent_scale`` (their std, like Stable Diffusion's 0.18215) so they have unit variance.
    """
    from genai_lib import digits, vae

    z = vae.encode(vae_model, digits.load().train_x)                              # (N, Z)
    base = preset()                                    # latents are cheap: more steps than pixels
    cfg = cfg or replace(base, arch="mlp", sample_shape=(z.shape[1],), channels=(256,), clip_sample=False,
                         lr=1e-3, train_steps=3000 if base.train_steps >= 1000 else base.train_steps)
    model = build(cfg)
    model.latent_scale = float(z.std())
    model.decode = lambda lat: vae.decode(vae_model, lat)
    return model, z / model.latent_scale


# ----------------------------------------------------------------------------- Stable Diffusion (hub)
# [start:load-stable-diffusion]
def load_stable_diffusion(kind: str = "text2image", path: str | None = None, device: str | None = None,
                          fp16: bool | None = None, attention_slicing: bool = True):
    """The paper's ``StableDiffusionPipeline`` (or its img2img / inpainting siblings).

    Args:
        kind: "text2image", "img2img" or "inpaint" (all three share one checkpoint's components).
        path: a Hub id or local folder; default ``registry.model_path("text2image")``, i.e.
            ``stable-diffusion-v1-5/stable-diffusion-v1-5`` in the ``hub`` profile (or the folder
            in ``GENAI_MODEL_TEXT2IMAGE``).
        device: default :func:`genai_lib.core.get_device`.
        fp16: half precision (default: on CUDA only); halves the memory to ~2.6 GB of weights.
        attention_slicing: compute attention in slices, trading a little speed for memory.

    Returns:
        A diffusers pipeline on ``device``.
    """
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline

    from genai_lib.core import get_device
    from genai_lib.registry import resolve

    classes = {"text2image": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
               "inpaint": StableDiffusionInpaintPipeline}
    if kind not in classes:
        raise GenAIError(f"Unknown pipeline kind {kind!r}; choose one of {', '.join(classes)}.")
    device = device or get_device()
    half = device.startswith("cuda") if fp16 is None else fp16
    src = resolve("text2image", path=path)
    pipe = classes[kind].from_pretrained(src.source, revision=src.revision,
                                         dtype=torch.float16 if half else torch.float32)
    pipe = pipe.to(device)
    if attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stable_diffusion(pipe, prompt: str, negative_prompt: str | None = None, guidance_scale: float = 7.5,
                     steps: int = 30, seed: int = 0, **kwargs):
    """Run a Stable Diffusion pipeline with the knobs the book discusses; returns a list of PIL images.

    ``kwargs`` go to the pipeline (``image=``, ``strength=`` for img2img; ``image=``, ``mask_image=``
    for inpainting; ``height=``, ``width=``).
    """
    if not prompt or not isinstance(prompt, str):
        raise GenAIError("prompt must be a non-empty string.")
    if not isinstance(steps, int) or steps < 1:
        raise GenAIError(f"steps must be a positive integer, got {steps!r}.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return pipe(prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale, num_inference_steps=steps,
                generator=gen, **kwargs).images
# [end:load-stable-diffusion]


def save_tiny_stable_diffusion(folder: str) -> str:
    """Write a minuscule, random Stable Diffusion checkpoint (same classes and layout) to ``folder``.

    It exercises the ``hub`` code path offline: tests and the ``tiny`` profile load it with
    :func:`load_stable_diffusion` exactly as the real checkpoint is loaded from the Hub.
    """
    import json
    from pathlib import Path

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=16, attention_head_dim=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae_kl = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
                           norm_num_groups=8, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                           up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, max_position_embeddings=77, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513, projection_dim=16))
    tmp = Path(folder) / "_tokenizer_src"
    tmp.mkdir(parents=True, exist_ok=True)
    chars = sorted(pre_tokenizers.ByteLevel.alphabet())   # a byte-level vocabulary with no merges
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (tmp / "vocab.json").write_text(json.dumps(vocab))
    (tmp / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"), model_max_length=77)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae_kl, text_encoder=text, tokenizer=tok, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder

"""Diffusion models on 8×8 digits: a small UNet, classifier-free guidance, text conditioning, latent
diffusion, inpainting and image-to-image. (The paper's Stable Diffusion is in :mod:`genai_lib.stable_diffusion`.)

The roles are split the way ``diffusers`` splits them:

* the **denoiser** (:mod:`genai_lib.denoisers`: a ``diffusers`` :class:`~diffusers.UNet2DModel`, or a
  small MLP for latent vectors) predicts the noise (or ``v``) in a noisy image, given the timestep and a condition vector;
* the **scheduler** (:class:`~genai_lib.schedulers.NoiseScheduler`) knows the noise schedule:
  ``add_noise`` for training, and ``set_timesteps`` / ``timesteps`` / ``step`` for sampling, the same
  contract as diffusers' ``DDIMScheduler`` and ``DDPMScheduler`` (tests check that the outputs are the same);
* the **pipeline** (:func:`sample`) is the sampling loop: a few readable lines that serve plain
  sampling, image-to-image and inpainting alike.

Typical use::

    from genai_lib import diffusion
    model = diffusion.build(diffusion.preset("offline"))
    history = diffusion.train(model, images, labels)          # images (N, 1, 8, 8) in [-1, 1]
    x = diffusion.sample(model, labels=[7] * 16, steps=20, seed=0)     # (16, 1, 8, 8) in [-1, 1]
    diffusion.save(model)                                     # a digits label model, for load()
    model = diffusion.load()       # the same model from the cache folder (trained there if missing)
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genai_lib.core import GenAIError, atomic_write, cached_model_path, ema_update, get_profile, load_or_train, preset_of
from genai_lib.denoisers import Denoiser
from genai_lib.schedulers import SAMPLERS, NoiseScheduler, make_scheduler  # noqa: F401  (NoiseScheduler: the API)

NUM_CLASSES = 10


@dataclass
class DiffusionConfig:
    """Everything that defines a digits diffusion model and its training run."""

    sample_shape: tuple[int, ...] = (1, 8, 8)  # shape of one sample: (C, H, W) pixels, or (D,) latents
    arch: str = "unet"                          # "unet" (diffusers UNet2DModel) or "mlp" (latent vectors)
    channels: tuple[int, ...] = (16, 32, 32)    # UNet: channels per resolution (8×8, 4×4, 2×2); MLP: hidden widths
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
    train_steps: int = 650                      # optimiser steps (the budget; bench/diffusion_steps.py)
    ema_decay: float = 0.995                    # exponential moving average of the weights used to sample
    seed: int = 0                               # seeds the weights and the training batches

    def validate(self) -> None:
        """Raise :class:`GenAIError` with a clear message if any field is out of range."""
        choices = {"arch": ("unet", "mlp"), "cond": ("label", "text"),
                   "beta_schedule": ("linear", "squaredcos_cap_v2"), "prediction_type": ("epsilon", "v_prediction")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise GenAIError(f"Unknown {name} {getattr(self, name)!r}; use one of {', '.join(map(repr, allowed))}.")  # pragma: no mutate  (message wording; the raise is tested)
        if not 0.0 <= self.p_uncond < 1.0:
            raise GenAIError(f"p_uncond must be in [0, 1), got {self.p_uncond}.")  # pragma: no mutate  (message wording; the raise is tested)
        if not 0.0 <= self.ema_decay < 1.0:
            raise GenAIError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")  # pragma: no mutate  (message wording; the raise is tested)
        if len(self.sample_shape) != (3 if self.arch == "unet" else 1) or not self.channels:
            raise GenAIError(f"sample_shape {self.sample_shape} does not fit arch {self.arch!r}: the UNet takes "  # pragma: no mutate  (message wording; the raise is tested)
                             "(C, H, W) images, the MLP (D,) latent vectors; channels must not be empty.")  # pragma: no mutate  (message wording; the raise is tested)
        for name in ("cond_dim", "num_train_timesteps", "batch_size", "train_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise GenAIError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")  # pragma: no mutate  (message wording; the raise is tested)
        if not self.lr > 0:
            raise GenAIError(f"lr must be positive, got {self.lr}.")  # pragma: no mutate  (message wording; the raise is tested)


PRESETS: dict[str, DiffusionConfig] = {
    "tiny": DiffusionConfig(channels=(8, 16), layers_per_block=1, batch_size=16, train_steps=5),
    "offline": DiffusionConfig(),
    "hub": DiffusionConfig(channels=(64, 128, 128), layers_per_block=2, batch_size=256, train_steps=4000),
}


def preset(profile: str | None = None, **overrides) -> DiffusionConfig:
    """The profile's preset :class:`DiffusionConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


@dataclass
class DiffusionModel:
    """A trained (or training) model: config, network, its EMA copy (used to sample) and extras."""

    cfg: DiffusionConfig
    net: Denoiser
    ema: Denoiser
    prompt_cache: dict[str, torch.Tensor] = field(default_factory=dict)   # caption -> MiniLM vector
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None          # latent -> image (latent diffusion)
    latent_scale: float = 1.0                                             # latents are divided by this
    history: list[float] = field(default_factory=list)                    # the loss of every training step
    train_cpu_s: float = 0.0                                              # CPU seconds spent in train()
    cached_from: str | None = None                                        # the file load() read it from

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


def build(cfg: DiffusionConfig | None = None, device: str | None = "cpu",
          backbone_from: DiffusionModel | None = None) -> DiffusionModel:
    """A fresh model for ``cfg`` (the active profile's preset when ``None``).

    Args:
        cfg: the configuration.
        device: where the weights live (the 8×8 models train fastest on the CPU they were timed on).
        backbone_from: start from this trained model's denoiser (its EMA weights) instead of random
            weights. Only the projection of the condition stays new, so a label model can become a text
            model: the network already knows how to denoise digits and only learns the new condition.
            The two configs must agree on everything but the condition.

    Returns:
        A :class:`DiffusionModel`; ``model.ema`` holds the averaged weights that :func:`sample` uses.
    """
    cfg = cfg or preset()
    cfg.validate()
    torch.manual_seed(cfg.seed)
    net = Denoiser(cfg).to(device)
    if backbone_from is not None:
        src = backbone_from.cfg
        differ = [f for f in ("arch", "sample_shape", "channels", "layers_per_block") if getattr(src, f) != getattr(cfg, f)]
        if differ:
            raise GenAIError(f"backbone_from has a different network ({', '.join(differ)}); its denoiser only fits "  # pragma: no mutate  (message wording; the raise is tested)
                             "a config that differs in the condition alone (cond, cond_dim).")  # pragma: no mutate  (message wording; the raise is tested)
        net.backbone.load_state_dict(backbone_from.ema.backbone.state_dict())
    if cfg.arch == "unet":  # channels-last convolutions: about a fifth less time per CPU step (bench/workloads.py)
        net = net.to(memory_format=torch.channels_last)
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


@functools.lru_cache(maxsize=3)
def _embedder(profile: str):
    """The profile's sentence encoder, loaded once per process (on the CPU, like the 8×8 models)."""
    from genai_lib import embed

    return embed.load(profile, device="cpu", progress=False)


def embed_text(texts: Sequence[str], profile: str | None = None) -> torch.Tensor:
    """Caption embeddings from :meth:`genai_lib.embed.Embedder.encode`: the condition of the text model.

    Args:
        texts: captions.
        profile: whose embedder (MiniLM in ``offline``, a tiny random encoder in ``tiny``); the active one when ``None``.

    Returns:
        (N, D) unit vectors, D the embedder's width (384 for MiniLM).
    """
    return torch.from_numpy(_embedder(get_profile(profile)).encode(list(texts)))


def _check_labels(labels, name: str = "labels") -> torch.Tensor:
    y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise GenAIError(f"{name} must be digits 0–9, got values {sorted(set(y.tolist()))}.")  # pragma: no mutate  (message wording; the raise is tested)
    return y


def condition(model: DiffusionModel, labels=None, prompts: Sequence[str] | None = None) -> torch.Tensor:
    """Condition vectors (N, cond_dim) for digit labels (one-hot) or captions (MiniLM).

    A label model accepts ``labels``; a text model accepts ``prompts``, or ``labels``, which it turns
    into the caption "a handwritten <word>". ``-1`` as a label (or ``""`` as a prompt) is the null condition.
    """
    if prompts is None and labels is None:
        raise GenAIError("Give labels (digits 0–9) or prompts (captions).")  # pragma: no mutate  (message wording; the raise is tested)
    if model.cfg.cond == "label":
        if prompts is not None:
            raise GenAIError("This model is conditioned on labels; build it with cond='text' to use prompts.")  # pragma: no mutate  (message wording; the raise is tested)
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
        raise GenAIError(f"Need steps ≥ 1 and one condition per sample (got {steps} steps, {len(x)} samples, "  # pragma: no mutate  (message wording; the raise is tested)
                         f"{len(cond)} conditions).")  # pragma: no mutate  (message wording; the raise is tested)
    sched = make_scheduler(cfg)
    dev = model.device
    x, cond = x.to(dev), cond.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    warm = max(1, steps // 20)
    lr_at = lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / steps))  # noqa: E731
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, t0, c0 = [], time.perf_counter(), time.process_time()
    net.train()
    for step in tqdm(range(steps), desc="diffusion", disable=not progress):  # pragma: no mutate  (progress bar display)
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
        ema_update(ema, net, min(cfg.ema_decay, (1 + step) / (10 + step)))   # warm-up: average less at first
        history.append(loss.item())
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    net.eval()
    model.history += history
    model.train_cpu_s += time.process_time() - c0
    return history


def save(model: DiffusionModel) -> str:
    """Keep a digits label model, trained as :func:`load` trains it, in the cache folder for :func:`load`.

    The diffusion chapter trains its model in the open and then saves it; the text-to-image chapter
    calls :func:`load`, which finds it there instead of training the same model a second time.

    Returns:
        The path of the file written (its name carries the hash of the config and of the training code).
    """
    cfg = model.cfg
    if cfg.cond != "label" or model.decode is not None or not model.history:
        raise GenAIError("save() keeps trained pixel-space label models (the ones load() trains); "  # pragma: no mutate  (message wording; the raise is tested)
                         f"this one is cond={cfg.cond!r}, latent={model.decode is not None}, "  # pragma: no mutate  (message wording; the raise is tested)
                         f"{len(model.history)} training steps.")  # pragma: no mutate  (message wording; the raise is tested)
    path = _cache_path(cfg)
    state = {"net": model.net.state_dict(), "ema": model.ema.state_dict(), "history": list(model.history),
             "train_cpu_s": float(model.train_cpu_s)}
    with atomic_write(path) as tmp:
        torch.save(state, tmp)
    return str(path)


def load(cfg: DiffusionConfig | None = None, device: str | None = "cpu", progress: bool = False) -> DiffusionModel:
    """The label-conditioned model of ``cfg`` trained on the digits' training split: trained once, then cached.

    A notebook that *uses* the diffusion chapter's model (text-to-image starts from it) calls this; it
    runs alone: with an empty cache it trains the model itself (the same :func:`build` and :func:`train`
    calls as the diffusion chapter) and saves it. A damaged cache file is trained again and replaced.
    Processes that ask for the same model at once train it once; the others wait and read it
    (:func:`genai_lib.core.load_or_train`).

    Args:
        cfg: the configuration (default: the active profile's preset); it must be a label model.
        device: where the weights live.
        progress: show the training progress bar when it has to train.

    Returns:
        The trained :class:`DiffusionModel`; ``history`` and ``train_cpu_s`` describe its training run,
        ``cached_from`` is the file it was read from (``None`` when it was trained by this call).
    """
    cfg = cfg or preset()
    if cfg.cond != "label" or cfg.arch != "unet":
        raise GenAIError(f"load() trains pixel-space label models (cond='label', arch='unet'), got "  # pragma: no mutate  (message wording; the raise is tested)
                         f"cond={cfg.cond!r}, arch={cfg.arch!r}. Build other models with build() and train().")  # pragma: no mutate  (message wording; the raise is tested)

    def restore(path) -> DiffusionModel:
        model = build(cfg, device=device)
        state = torch.load(path, map_location=model.device, weights_only=True)
        model.net.load_state_dict(state["net"])
        model.ema.load_state_dict(state["ema"])
        model.history, model.train_cpu_s = [float(v) for v in state["history"]], float(state["train_cpu_s"])
        model.cached_from = str(path)
        return model

    def train_and_save() -> DiffusionModel:
        from genai_lib import digits

        model, data = build(cfg, device=device), digits.load()
        with torch.enable_grad():      # the caller may be inside torch.no_grad()
            train(model, data.train_x, F.one_hot(data.train_y, NUM_CLASSES).float(), progress=progress)
        save(model)
        return model

    return load_or_train(_cache_path(cfg), restore, train_and_save)


def _cache_path(cfg: DiffusionConfig):
    import sys

    from genai_lib import core, denoisers, schedulers

    return cached_model_path("diffusion-digits", cfg, sys.modules[__name__], denoisers, schedulers, core)


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
        raise GenAIError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")  # pragma: no mutate  (message wording; the raise is tested)
    if not isinstance(steps, int) or not 1 <= steps <= cfg.num_train_timesteps:
        raise GenAIError(f"steps must be an integer between 1 and {cfg.num_train_timesteps}, got {steps!r}.")  # pragma: no mutate  (message wording; the raise is tested)
    if guidance_scale < 0:
        raise GenAIError(f"guidance_scale must be ≥ 0 (1 = no guidance), got {guidance_scale}.")  # pragma: no mutate  (message wording; the raise is tested)


@torch.no_grad()
def sample(model: DiffusionModel, n: int | None = None, labels=None, steps: int = 20, guidance_scale: float = 1.0,
           negative_labels=None, sampler: str = "ddim", seed: int = 0,
           prompts: Sequence[str] | None = None, negative_prompts: Sequence[str] | None = None,
           init: torch.Tensor | None = None, start: int = 0, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, decode: bool = True) -> torch.Tensor:
    """Generate samples: the pipeline, start from noise and apply ``scheduler.step`` ``steps`` times.

    The one denoising loop of the module: :func:`img2img` and :func:`inpaint` call it too.

    Args:
        model: a trained :class:`DiffusionModel`.
        n: how many samples; ``labels`` may instead give one label per sample (an int repeats).
        labels: requested digits (0–9); ``-1`` = unconditional. Text models also take ``prompts``.
        steps: denoising steps (1–1000). 1,000 with ``sampler="ddpm"`` is the original DDPM.
        guidance_scale: classifier-free guidance; 1 = the conditional model alone, > 1 pushes harder.
        negative_labels: digits to steer away from (replace the null condition in the guidance).
        sampler: "ddim" (deterministic), "ddpm" (stochastic) or "dpm" (diffusers' DPM-Solver++).
        seed: seeds the starting noise (and the DDPM noise), so a call can be repeated exactly.
        prompts, negative_prompts: captions, for models built with ``cond="text"``.
        init, start: img2img; begin at timestep index ``start`` from ``init`` (clean samples) noised to
            that timestep, instead of from pure noise at the first timestep.
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
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((N, *cfg.sample_shape), generator=gen).to(model.device)            # x_T ~ N(0, I)
    if init is not None:                                                               # img2img: x_t from the input
        x = scheduler.add_noise(init.to(model.device), x, scheduler.timesteps[start].repeat(N))
    for i, t in enumerate(scheduler.timesteps[start:]):
        out = _guided(model, x, t, cond, neg, guidance_scale)                          # ε or v prediction
        x = scheduler.step(out, t, x, generator=gen).prev_sample                       # x_t -> x_t'
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
    noise = torch.randn(known.shape, generator=gen).to(known.device)
    noisy = scheduler.add_noise(known, noise, ts[i + 1].repeat(len(x)))
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
            sampler: str = "ddpm", guidance_scale: float = 1.0, seed: int = 0,
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
        raise GenAIError("Inpainting works on pixel-space models; this one is a latent model.")  # pragma: no mutate  (message wording; the raise is tested)
    mask = torch.as_tensor(mask, dtype=torch.float32).expand_as(images).to(model.device)
    if not ((mask == 0) | (mask == 1)).all():
        raise GenAIError("mask must hold only 0 (regenerate) and 1 (keep).")  # pragma: no mutate  (message wording; the raise is tested)
    labels = _per_image(labels, prompts, len(images))
    return sample(model, labels=labels, prompts=prompts, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                  seed=seed, known=images.to(model.device), mask=mask)


def img2img(model: DiffusionModel, images: torch.Tensor, strength: float = 0.5, labels=None, steps: int = 50,
            sampler: str = "ddim", guidance_scale: float = 1.0, seed: int = 0,
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
        raise GenAIError(f"strength must be between 0 and 1, got {strength}.")  # pragma: no mutate  (message wording; the raise is tested)
    run = int(round(strength * steps)) if isinstance(steps, int) else steps
    if run == 0:
        return images.clone()
    labels = _per_image(labels, prompts, len(images))
    return sample(model, labels=labels, prompts=prompts, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                  seed=seed, init=images, start=steps - run, decode=False)


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
                         lr=1e-3, train_steps=3000 if base.train_steps >= 100 else base.train_steps)  # tiny: 5
    model = build(cfg)
    model.latent_scale = float(z.std())
    model.decode = lambda lat: vae.decode(vae_model, lat)
    return model, z / model.latent_scale

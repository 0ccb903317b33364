"""A conditional DCGAN for 8×8 digits: two small convolutional networks trained against each other.

The generator G turns noise z (and a class label y) into an image; the discriminator D scores how
real an image looks (for that label). They play a game: D minimises

    L_D = -log D(x, y) - log(1 - D(G(z, y), y))          (real images -> 1, generated ones -> 0)

and G minimises the "non-saturating" loss ``L_G = -log D(G(z, y), y)`` (Goodfellow et al., 2014).
Two stabilisers are built in: *one-sided label smoothing* (D aims at 0.9 instead of 1 for real
images) and an *exponential moving average* (EMA) of G's weights, which is what we sample from.

Typical use::

    from genai_lib import digits, gan
    cfg = gan.preset("offline")
    model = gan.build(cfg)
    history = gan.train(model, digits.load(), cfg)        # {'d_loss': [...], 'g_loss': [...], ...}
    images = gan.sample(model, 100, labels=torch.arange(10).repeat(10))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genai_lib import digits
from genai_lib.core import GenAIError, ema_update, get_device, preset_of


@dataclass
class GANConfig:
    """Size and training of the GAN.

    Attributes:
        latent_dim: size of the noise vector z.
        width: channel count of the networks' first/last conv layer (doubles at each scale).
        conditional: give both players the class label (a class-conditional GAN); ``False`` for
            an unconditional GAN, which is free to ignore some digits (mode collapse).
        label_smoothing: D's target for real images is ``1 - label_smoothing`` (0 = off).
        ema_decay: decay of the EMA copy of G (0 = no EMA: the EMA copy *is* G).
        minibatch_std: append the batch's feature spread to D's input of its last layer, so D can
            see a batch of look-alikes (a fix for mode collapse from ProGAN).
        steps: optimisation steps (one D update and one G update each).
        batch_size: real and generated images per step.
        lr_g: Adam learning rate of G.
        lr_d: Adam learning rate of D.
        snapshot_steps: steps after which :func:`train` keeps a grid of samples (fixed z, one row per class).
        seed: seeds the initialisation, the noise and the batch order.
    """

    latent_dim: int = 32
    width: int = 16
    conditional: bool = True
    label_smoothing: float = 0.1
    ema_decay: float = 0.995
    minibatch_std: bool = False
    steps: int = 1500
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    snapshot_steps: tuple[int, ...] = field(default_factory=tuple)
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`GenAIError` when a field is out of range."""
        for name in ("latent_dim", "width", "steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GenAIError(f"GANConfig.{name} must be a positive integer, got {value!r}")
        if not 0 <= self.label_smoothing < 0.5:
            raise GenAIError(f"GANConfig.label_smoothing must be in [0, 0.5), got {self.label_smoothing}; "
                             "0.1 is usual (the real target becomes 0.9).")
        if not 0 <= self.ema_decay < 1:
            raise GenAIError(f"GANConfig.ema_decay must be in [0, 1), got {self.ema_decay}; 0 turns EMA off.")
        for name in ("lr_g", "lr_d"):
            if not 0 < getattr(self, name) < 1:
                raise GenAIError(f"GANConfig.{name} must be in (0, 1), got {getattr(self, name)}")


PRESETS: dict[str, GANConfig] = {
    "tiny": GANConfig(latent_dim=8, width=8, steps=20, batch_size=32),
    "offline": GANConfig(),
    "hub": GANConfig(width=32, steps=6000),       # no GAN weights on the Hub: just train longer
}


def preset(profile: str | None = None, **overrides: Any) -> GANConfig:
    """The profile's preset :class:`GANConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


# [start:generator]
class Generator(nn.Module):
    """DCGAN generator: (z, one-hot y) -> a 2×2 map -> transposed convs up to 8×8 -> tanh."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        w, self.cfg = cfg.width, cfg
        n_in = cfg.latent_dim + (digits.N_CLASSES if cfg.conditional else 0)
        self.project = nn.Sequential(nn.Linear(n_in, 4 * w * 2 * 2), nn.BatchNorm1d(4 * w * 4), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),   # (B, 2w, 4, 4)
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),           # (B, w, 8, 8)
            nn.Conv2d(w, 1, 3, padding=1), nn.Tanh(),                                      # (B, 1, 8, 8)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (B, Z) and labels (B,) -> images (B, 1, 8, 8) in [-1, 1]."""
        if self.cfg.conditional:
            z = torch.cat([z, F.one_hot(y, digits.N_CLASSES).to(z.dtype)], 1)   # (B, Z + 10)
        h = self.project(z).view(len(z), -1, 2, 2)          # (B, 4w, 2, 2)
        return self.net(h)


class Discriminator(nn.Module):
    """DCGAN discriminator: strided convs 8×8 -> 2×2, one logit; the label enters by projection."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        w, self.cfg = cfg.width, cfg
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.LeakyReLU(0.2),                    # (B, w, 8, 8)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),                     # (B, 2w, 4, 4)
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),   # (B, 16w)
        )
        feat = 16 * w + (1 if cfg.minibatch_std else 0)
        self.out = nn.Linear(feat, 1)
        self.embed = nn.Embedding(digits.N_CLASSES, feat) if cfg.conditional else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 8, 8) and labels (B,) -> logits (B,); sigmoid(logit) = P(real)."""
        h = self.net(x)                                                          # (B, 16w)
        if self.cfg.minibatch_std:
            spread = h.std(0).mean().expand(len(h), 1)                           # (B, 1)
            h = torch.cat([h, spread], 1)
        logit = self.out(h).squeeze(1)                                           # (B,)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(1)                           # projection of the label
        return logit
# [end:generator]


class GAN(nn.Module):
    """The two players and the EMA copy of the generator that is sampled from."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False)

    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * G (:func:`genai_lib.core.ema_update`)."""
        ema_update(self.ema, self.generator, self.cfg.ema_decay)


# [start:d-loss-fn]
def d_loss_fn(real_logits: torch.Tensor, fake_logits: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Discriminator loss: -log D(x) - log(1 - D(G(z))), with the real target 1 - smoothing."""
    real_target = torch.full_like(real_logits, 1.0 - smoothing)
    return (F.binary_cross_entropy_with_logits(real_logits, real_target)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_loss_fn(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z)) (G wants D to call its images real)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
# [end:d-loss-fn]


def build(cfg: GANConfig | None = None, device: str | None = None) -> GAN:
    """A new, untrained GAN (seeded with ``cfg.seed``).

    Args:
        cfg: the configuration; ``None`` = the active profile's preset.
        device: where to put it; ``None`` = :func:`genai_lib.core.get_device`.

    Returns:
        The model (generator, discriminator, EMA generator).
    """
    cfg = cfg or preset()
    cfg.validate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = GAN(cfg)
    # channels-last convolutions: about a tenth less time per CPU training step (bench/workloads.py)
    return model.to(device or get_device()).to(memory_format=torch.channels_last)


def train(model: GAN, data: Any, cfg: GANConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Train both players with Adam (betas 0.5, 0.999 as in DCGAN), one D step then one G step.

    Args:
        model: from :func:`build`.
        data: a :class:`genai_lib.digits.Digits` (its training split is used), or a pair
            ``(images (N, 1, 8, 8) in [-1, 1], labels (N,))``.
        cfg: training settings; ``None`` = the model's own config.
        progress: show a progress bar.

    Returns:
        The history: per step ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)) and ``d_fake`` (mean
        D(G(z))); and ``snapshots``, a dict step -> images (10 per class, EMA generator, fixed z).
    """
    from tqdm.auto import trange

    cfg = cfg or model.cfg
    cfg.validate()
    x_all, y_all = (data.train_x, data.train_y) if isinstance(data, digits.Digits) else data
    x_all = digits.as_images(x_all)
    y_all = torch.as_tensor(y_all).long()
    if len(y_all) != len(x_all):
        raise GenAIError(f"{len(x_all)} images but {len(y_all)} labels")
    device = next(model.parameters()).device
    x_all, y_all = x_all.to(device), y_all.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    G, D = model.generator, model.discriminator
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    fixed_z = torch.randn(100, cfg.latent_dim, generator=gen).to(device)
    fixed_y = torch.arange(digits.N_CLASSES).repeat_interleave(10).to(device)      # one row per class
    history: dict[str, Any] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "snapshots": {}}
    G.train()
    D.train()
    for step in trange(1, cfg.steps + 1, disable=not progress, desc="GAN"):
        idx = torch.randint(0, len(x_all), (cfg.batch_size,), generator=gen).to(device)
        x, y = x_all[idx], y_all[idx]                                              # (B, 1, 8, 8), (B,)
        z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=gen).to(device)  # (B, Z)
        y_fake = torch.randint(0, digits.N_CLASSES, (cfg.batch_size,), generator=gen).to(device)
        fake = G(z, y_fake)                                                        # (B, 1, 8, 8)
        # [start:training-step]
        # 1) the discriminator learns to tell real from generated (G's output is held fixed)
        real_logits, fake_logits = D(x, y), D(fake.detach(), y_fake)
        loss_d = d_loss_fn(real_logits, fake_logits, cfg.label_smoothing)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # 2) the generator learns to make D call its images real
        loss_g = g_loss_fn(D(fake, y_fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        model.update_ema()
        # [end:training-step]
        history["d_loss"].append(loss_d.item())
        history["g_loss"].append(loss_g.item())
        history["d_real"].append(torch.sigmoid(real_logits).mean().item())
        history["d_fake"].append(torch.sigmoid(fake_logits).mean().item())
        if step in cfg.snapshot_steps:
            history["snapshots"][step] = _generate(model.ema, fixed_z, fixed_y)
            G.train()
    model.eval()
    return history


@torch.no_grad()
def _generate(net: Generator, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    net.eval()
    return torch.cat([net(zb, yb) for zb, yb in zip(z.split(1000), y.split(1000))]).cpu()


@torch.no_grad()
def sample(model: GAN, n: int, labels: Any = None, seed: int = 0, use_ema: bool = True) -> torch.Tensor:
    """Generate n images.

    Args:
        model: a trained GAN.
        n: how many images.
        labels: the class of each image (n,) for a conditional GAN; ``None`` = classes 0..9 in turn.
            Ignored by an unconditional GAN.
        seed: seeds the noise.
        use_ema: sample from the EMA generator (``False``: the raw generator).

    Returns:
        Images (n, 1, 8, 8) in [-1, 1], on the CPU.
    """
    if not isinstance(n, int) or n < 1:
        raise GenAIError(f"n must be a positive integer, got {n!r}")
    y = torch.arange(n) % digits.N_CLASSES if labels is None else torch.as_tensor(labels).long().cpu()
    if y.shape != (n,) or y.min() < 0 or y.max() >= digits.N_CLASSES:
        raise GenAIError(f"labels must be n={n} integers in 0..9, got shape {tuple(y.shape)}")
    device = next(model.parameters()).device
    z = torch.randn(n, model.cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
    return _generate(model.ema if use_ema else model.generator, z.to(device), y.to(device))

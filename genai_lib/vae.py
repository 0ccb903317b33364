"""A variational autoencoder (VAE) for 8×8 digits, small enough to train in seconds on a CPU.

The encoder maps an image x to a Gaussian q(z|x) = N(mu, diag(exp(logvar))) over a small latent
vector z; the decoder maps z back to an image. Training maximises the evidence lower bound (ELBO),
i.e. minimises

    loss = reconstruction + beta * KL( q(z|x) || N(0, I) )

where the reconstruction term is the negative log-likelihood of x under a Gaussian decoder with a
fixed pixel noise ``sigma``: ``|x - x_hat|² / (2 sigma²)`` (plus a constant). New images come from
decoding z ~ N(0, I). The encoder and decoder are reused by latent diffusion.

Typical use::

    from genai_lib import digits, vae
    cfg = vae.preset("offline")
    model = vae.build(cfg)
    history = vae.train(model, digits.load().train_x, cfg)     # {'loss': [...], 'recon': [...], 'kl': [...]}
    images = vae.sample(model, 64)                             # (64, 1, 8, 8) in [-1, 1]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genai_lib import digits
from genai_lib.core import GenAIError, atomic_write, cached_model_path, get_device, load_or_train, preset_of

PIXELS = digits.SIDE * digits.SIDE   # 64


@dataclass
class VAEConfig:
    """Size and training of the VAE.

    Attributes:
        latent_dim: size of the latent vector z (2 lets us plot the latent space).
        hidden: width of the two hidden layers of the encoder and of the decoder.
        sigma: the decoder's pixel noise (std, in [-1, 1] units); smaller values weight the
            reconstruction more against the KL term (sharper images, a less regular latent space).
        beta: weight of the KL term (1 = the true ELBO; > 1 is the beta-VAE).
        epochs: passes over the training images.
        batch_size: images per optimisation step.
        lr: Adam learning rate.
        input_noise: std of Gaussian noise added to the *inputs* while training (a denoising VAE); 0 = off.
        seed: seeds the initialisation, the batch order and the reparameterisation noise.
    """

    latent_dim: int = 16
    hidden: int = 256
    sigma: float = 0.5
    beta: float = 1.0
    epochs: int = 150
    batch_size: int = 64
    lr: float = 2e-3
    input_noise: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`GenAIError` when a field is out of range."""
        for name in ("latent_dim", "hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GenAIError(f"VAEConfig.{name} must be a positive integer, got {value!r}")
        if not 0 < self.sigma <= 10:
            raise GenAIError(f"VAEConfig.sigma must be in (0, 10], got {self.sigma}")
        if not 0 <= self.beta <= 100:
            raise GenAIError(f"VAEConfig.beta must be in [0, 100], got {self.beta}")
        if not 0 < self.lr < 1:
            raise GenAIError(f"VAEConfig.lr must be in (0, 1), got {self.lr}")
        if self.input_noise < 0:
            raise GenAIError(f"VAEConfig.input_noise must be >= 0, got {self.input_noise}")


PRESETS: dict[str, VAEConfig] = {
    "tiny": VAEConfig(latent_dim=2, hidden=32, epochs=3),
    "offline": VAEConfig(),
    "hub": VAEConfig(hidden=512, epochs=400),          # no image weights on the Hub: just train longer
}


def preset(profile: str | None = None, **overrides: Any) -> VAEConfig:
    """The profile's preset :class:`VAEConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


# [start:vae]
class VAE(nn.Module):
    """MLP encoder and decoder around a Gaussian latent space."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, z = cfg.hidden, cfg.latent_dim
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, h), nn.SiLU(),
                                     nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 2 * z))   # (B, 2Z)
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                     nn.Linear(h, PIXELS), nn.Tanh())                      # (B, 64)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z|x): images (B, 1, 8, 8) -> mean and log-variance (clamped to [-12, 8]), each (B, Z)."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, Z) -> images (B, 1, 8, 8) in [-1, 1] (the decoder's mean)."""
        return self.decoder(z).view(-1, 1, digits.SIDE, digits.SIDE)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients can flow through. (B, Z).

        ``eps`` is drawn on the CPU (from ``generator``, a CPU generator, or the global CPU one) and then
        moved to ``mu``'s device, so a seed gives the same draws on a CPU and on a GPU."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, sample z, decode: x (B, 1, 8, 8) -> (x_hat (B, 1, 8, 8), mu (B, Z), logvar (B, Z))."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar
# [end:vae]


# [start:loss-terms]
def loss_terms(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None,
               target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the negative ELBO, each averaged over the batch (in nats per image).

    Args:
        model: the VAE.
        x: images (B, 1, 8, 8) in [-1, 1], the encoder's input.
        generator: random generator for the reparameterisation noise.
        target: what the decoder should reproduce; ``x`` itself unless given (a denoising VAE
            reads a noisy ``x`` and reconstructs the clean ``target``).

    Returns:
        (reconstruction, kl): ``|target - x_hat|² / (2 sigma²)`` and ``KL(N(mu, var) || N(0, I))``.
    """
    target = x if target is None else target
    x_hat, mu, logvar = model(x, generator)
    recon = ((target - x_hat) ** 2).flatten(1).sum(1) / (2 * model.cfg.sigma ** 2)  # (B,)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(1)                       # (B,)
    return recon.mean(), kl.mean()
# [end:loss-terms]


def build(cfg: VAEConfig | None = None, device: str | None = None) -> VAE:
    """A new, untrained VAE (seeded with ``cfg.seed``).

    Args:
        cfg: the configuration; ``None`` = the active profile's preset.
        device: where to put it; ``None`` = :func:`genai_lib.core.get_device`.

    Returns:
        The model.
    """
    cfg = cfg or preset()
    cfg.validate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = VAE(cfg)
    return model.to(device or get_device())


def train(model: VAE, data: Any, cfg: VAEConfig | None = None, progress: bool = True) -> dict[str, list[float]]:
    """Train the VAE with Adam on images in [-1, 1].

    Args:
        model: from :func:`build`.
        data: training images (N, 1, 8, 8) in [-1, 1], or a :class:`genai_lib.digits.Digits`.
        cfg: training settings (epochs, batch size, learning rate, beta, input noise); ``None`` = the
            model's own config. The likelihood's ``sigma`` is always the model's.
        progress: show a progress bar.

    Returns:
        The history, one value per epoch: ``loss`` (= recon + beta * kl), ``recon`` and ``kl``. The model
        keeps the configs it was trained with in ``model.trained_with`` (one per call), which
        :func:`save` reads.
    """
    from tqdm.auto import trange

    cfg = cfg or model.cfg
    cfg.validate()
    x_all = digits.as_images(data.train_x if isinstance(data, digits.Digits) else data)
    device = next(model.parameters()).device
    x_all = x_all.to(device)
    # Both generators are CPU ones (draws move to the device): the same seed trains on the same noise
    # on a CPU and on a GPU, so the two runs differ only by floating-point rounding.
    gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: dict[str, list[float]] = {"loss": [], "recon": [], "kl": []}
    model.train()
    for _ in trange(cfg.epochs, disable=not progress, desc="VAE"):  # pragma: no mutate  (progress bar display)
        sums, count = [0.0, 0.0], 0
        for idx in torch.randperm(len(x_all), generator=gen).split(cfg.batch_size):
            x = x_all[idx.to(device)]                                              # (B, 1, 8, 8)
            inp = x
            if cfg.input_noise > 0:
                inp = (x + cfg.input_noise * torch.randn(x.shape, generator=noise_gen).to(device)).clamp(-1, 1)
            recon, kl = loss_terms(model, inp, noise_gen, target=x)               # the negative ELBO's terms
            loss = recon + cfg.beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            sums[0] += recon.item() * len(x)
            sums[1] += kl.item() * len(x)
            count += len(x)
        history["recon"].append(sums[0] / count)
        history["kl"].append(sums[1] / count)
        history["loss"].append(history["recon"][-1] + cfg.beta * history["kl"][-1])
    model.eval()
    model.trained_with = (*getattr(model, "trained_with", ()), cfg)
    return history


@torch.no_grad()
def sample(model: VAE, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """Decode n draws from the prior z ~ N(0, temperature² I).

    Args:
        model: a trained VAE.
        n: how many images.
        seed: seeds the draws.
        temperature: scales the prior's std (< 1 gives cleaner, less varied digits).

    Returns:
        Images (n, 1, 8, 8) in [-1, 1], on the CPU.
    """
    if not isinstance(n, int) or n < 1:
        raise GenAIError(f"n must be a positive integer, got {n!r}")
    model.eval()
    device = next(model.parameters()).device
    z = torch.randn(n, model.cfg.latent_dim, generator=torch.Generator().manual_seed(seed)) * temperature
    return model.decode(z.to(device)).cpu()                                         # (n, 1, 8, 8)


@torch.no_grad()
def encode(model: VAE, images: Any) -> torch.Tensor:
    """The posterior means of images: (N, 1, 8, 8) in [-1, 1] -> latents (N, Z) on the CPU."""
    model.eval()
    x = digits.as_images(images).to(next(model.parameters()).device)
    return model.encode(x)[0].cpu()


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Latents (N, Z) -> images (N, 1, 8, 8) in [-1, 1] on the CPU."""
    model.eval()
    if z.ndim != 2 or z.shape[1] != model.cfg.latent_dim:
        raise GenAIError(f"z must have shape (N, {model.cfg.latent_dim}), got {tuple(z.shape)}")
    return model.decode(z.to(next(model.parameters()).device)).cpu()


def reconstruct(model: VAE, images: Any) -> torch.Tensor:
    """Encode to the posterior mean and decode: (N, 1, 8, 8) -> (N, 1, 8, 8). Also a denoiser."""
    return decode(model, encode(model, images))


def interpolate(model: VAE, a: Any, b: Any, steps: int = 8) -> torch.Tensor:
    """Walk in a straight line through latent space from image a to image b.

    Args:
        model: a trained VAE.
        a, b: two single images, each (1, 8, 8) or (1, 1, 8, 8).
        steps: number of images on the path, ends included (>= 2).

    Returns:
        Images (steps, 1, 8, 8): the decoded points ``(1 - t) z_a + t z_b`` for t from 0 to 1.
    """
    if steps < 2:
        raise GenAIError(f"steps must be at least 2, got {steps}")
    za, zb = encode(model, a), encode(model, b)                                     # (1, Z) each
    t = torch.linspace(0, 1, steps).unsqueeze(1)                                    # (steps, 1)
    return decode(model, (1 - t) * za + t * zb)


# [start:anomaly-score]
def anomaly_score(model: VAE, images: Any) -> torch.Tensor:
    """Reconstruction error of each image (sum of squared pixel errors): high = unlike the training data.

    Args:
        model: a VAE trained on normal images.
        images: (N, 1, 8, 8) in [-1, 1].

    Returns:
        Scores (N,), on the CPU.
    """
    x = digits.as_images(images)
    return ((x - reconstruct(model, x)) ** 2).flatten(1).sum(1)
# [end:anomaly-score]


def _cache_path(cfg: VAEConfig):
    """Where :func:`save` and :func:`load` keep the VAE of ``cfg`` (named by a hash of the config and this module)."""
    return cached_model_path("vae-digits", cfg, sys.modules[__name__])


def save(model: VAE) -> str:
    """Keep a VAE trained as :func:`load` trains it (:func:`build` then one :func:`train` with its own
    config) in the cache folder, where :func:`load` finds it.

    The VAE chapter trains its model in the open and saves it; the text-to-image chapter's latent
    diffusion calls :func:`load`, which reads it instead of training the same model a second time.

    Returns:
        The path of the file written (its name carries the hash of the config and of the training code).
    """
    runs = getattr(model, "trained_with", ())
    if runs != (model.cfg,):
        raise GenAIError("save() keeps a VAE trained once with its own config, as load() trains it; "  # pragma: no mutate  (message wording; the raise is tested)
                         f"this one was trained {len(runs)} time(s)"  # pragma: no mutate  (message wording; the raise is tested)
                         + ("" if not runs or runs[-1] == model.cfg else " with another config")  # pragma: no mutate  (message wording; the raise is tested)
                         + ". Train it with vae.train(model, data, model.cfg), once.")  # pragma: no mutate  (message wording; the raise is tested)
    return _write(model)


def _write(model: VAE) -> str:
    path = _cache_path(model.cfg)
    with atomic_write(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return str(path)


def load(profile: str | None = None, cfg: VAEConfig | None = None, progress: bool = False) -> VAE:
    """A VAE trained on the digits' training split, trained once and then kept in the cache folder.

    Chapters that *use* a VAE (latent diffusion) call this; the VAE chapter trains its own and keeps it
    with :func:`save`. With an empty cache this trains the model itself (the same :func:`build` and
    :func:`train` calls), so a notebook that calls it still runs alone. Processes that ask for the same
    VAE at once train it once; the others wait and read it (:func:`genai_lib.core.load_or_train`).

    Args:
        profile: whose preset to use (``None`` = the active profile).
        cfg: an explicit configuration instead of the preset.
        progress: show the training progress bar.

    Returns:
        The trained VAE in eval mode, on :func:`genai_lib.core.get_device`.
    """
    cfg = cfg or preset(profile)

    def restore(path) -> VAE:
        model = build(cfg)
        model.load_state_dict(torch.load(path, map_location=next(model.parameters()).device, weights_only=True))
        model.trained_with = (cfg,)
        return model

    def train_and_save() -> VAE:
        model = build(cfg)
        with torch.enable_grad():      # the caller may be inside torch.no_grad()
            train(model, digits.load().train_x, cfg, progress=progress)
        _write(model)
        return model

    return load_or_train(_cache_path(cfg), restore, train_and_save).eval()

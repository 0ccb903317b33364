"""The networks of the diffusion models: ε_θ(x_t, t, c), the part that learns.

:class:`Denoiser` wraps a backbone (``diffusers``' :class:`~diffusers.UNet2DModel` for 8×8 images,
or :class:`MLPDenoiser` for the flat latent vectors of latent diffusion) with a linear map from the
condition vector into the timestep embedding. The schedulers (:mod:`genai_lib.schedulers`) and the
sampling loop (:func:`genai_lib.diffusion.sample`) do not care which backbone it is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from genai_lib.diffusion import DiffusionConfig


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

    def __init__(self, cfg: "DiffusionConfig"):
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
        else:  # "mlp" (DiffusionConfig.validate allows no other)
            temb_dim = cfg.channels[0]
            self.backbone = MLPDenoiser(cfg.sample_shape[0], cfg.channels[0], temb_dim)
        self.cond_proj = nn.Linear(cfg.cond_dim, temb_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.cond_proj(cond)                                               # (B, temb_dim)
        if self.cfg.arch == "unet":
            return self.backbone(x, t, class_labels=emb).sample                  # (B, 1, 8, 8)
        return self.backbone(x, t, emb)                                          # (B, D)
# [end:denoiser]

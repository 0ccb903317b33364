"""Text embeddings: sentences and passages turned into unit-length vectors.

A sentence encoder maps a text to one vector so that texts with similar meaning get vectors that
point the same way. The book uses all-MiniLM-L6-v2 (Sentence-BERT training on a MiniLM backbone):
a 6-layer BERT whose token vectors are averaged (*mean pooling*) and scaled to length 1, giving a
384-number vector. Because every vector has length 1, the dot product of two vectors *is* their
cosine similarity.

Typical use::

    from genai_lib import embed
    emb = embed.load()                                  # MiniLM in `offline`, a tiny random encoder in `tiny`
    vecs = emb.encode(["a cat sat", "a kitten sat"])    # (2, 384) float32, each row of length 1
    print(vecs[0] @ vecs[1])                            # cosine similarity
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from genai_lib.core import GenAIError, preset_of
from genai_lib.registry import load_pretrained, resolve


@dataclass
class EmbedConfig:
    """How texts are encoded.

    Attributes:
        max_length: tokens kept per text; longer texts are cut (MiniLM was trained on <= 256).
        batch_size: texts encoded per forward pass.
        normalize: scale every vector to length 1 (so dot product = cosine similarity).
        progress: show a progress bar when more than one batch is encoded.
    """

    max_length: int = 256
    batch_size: int = 32
    normalize: bool = True
    progress: bool = True


PRESETS: dict[str, EmbedConfig] = {
    "tiny": EmbedConfig(max_length=128, batch_size=8, progress=False),
    "offline": EmbedConfig(),
    "hub": EmbedConfig(),
}


# [start:mean-pool]
def preset(profile: str | None = None, **overrides: Any) -> EmbedConfig:
    """The profile's preset :class:`EmbedConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each text, ignoring padding.

    Args:
        hidden: the encoder's last hidden states, (B, T, H).
        mask: the attention mask, 1 for real tokens and 0 for padding, (B, T).

    Returns:
        One vector per text, (B, H).
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)           # (B, T, 1)
    summed = (hidden * weights).sum(dim=1)                   # (B, H)
    counts = weights.sum(dim=1).clamp(min=1e-9)              # (B, 1)
    return summed / counts
# [end:mean-pool]


class Embedder:
    """A sentence encoder: tokenizer + transformer encoder + mean pooling + L2 normalisation.

    Args:
        tokenizer: a ``transformers`` tokenizer.
        model: a ``transformers`` encoder (``AutoModel``) in eval mode.
        name: what to call the model (used in index metadata, so a changed model invalidates an index).
        config: encoding options; the profile's preset when ``None``.
    """

    def __init__(self, tokenizer, model, name: str, config: EmbedConfig | None = None) -> None:
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.name = name
        self.config = config or EmbedConfig()

    @property
    def dim(self) -> int:
        """The length of the vectors (384 for MiniLM)."""
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: str | Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts.

        Args:
            texts: one text or a list of texts (none of them empty).
            batch_size: texts per forward pass; the config's when ``None``.

        Returns:
            A float32 array of shape (N, dim); with ``normalize`` every row has length 1.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            raise GenAIError("encode() got no texts; pass a non-empty list of strings.")
        bad = [i for i, t in enumerate(items) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise GenAIError(f"encode() got empty or non-string texts at positions {bad[:5]}; "
                             "remove them before embedding.")
        bs = self.config.batch_size if batch_size is None else batch_size
        if not isinstance(bs, int) or bs <= 0:
            raise GenAIError(f"batch_size must be a positive integer, got {bs!r}")
        device = next(self.model.parameters()).device
        # Texts of similar length share a batch, so that little padding is computed; the rows go back
        # to the caller's order at the end (padding is masked, so a text's vector does not depend on it).
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = []
        starts = range(0, len(items), bs)
        for start in tqdm(starts, desc="embedding", disable=not self.config.progress or len(starts) < 2):
            enc = self.tokenizer([items[i] for i in order[start:start + bs]], padding=True, truncation=True,
                                 max_length=self.config.max_length, return_tensors="pt").to(device)
            hidden = self.model(**enc).last_hidden_state                 # (B, T, H)
            vecs = mean_pool(hidden, enc["attention_mask"])               # (B, H)
            if self.config.normalize:
                vecs = torch.nn.functional.normalize(vecs, dim=-1)
            out.append(vecs.float().cpu().numpy())
        vectors = np.empty((len(items), out[0].shape[1]), dtype=np.float32)  # (N, H)
        vectors[order] = np.concatenate(out)
        return vectors

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim})"


def load(profile: str | None = None, device: str | None = None, path: str | None = None,
         **overrides: Any) -> Embedder:
    """Load the registry's ``embedder`` for a profile.

    Args:
        profile: ``tiny`` (a random 32-d encoder), ``offline`` (MiniLM from its PyPI wheel) or ``hub``.
        device: force a device; chosen by :func:`genai_lib.core.get_device` when ``None``.
        path: load this local folder (written by ``save_pretrained``) instead.
        **overrides: any :class:`EmbedConfig` field, e.g. ``batch_size=64``.

    Returns:
        An :class:`Embedder`.
    """
    from transformers import AutoModel

    src = resolve("embedder", profile, path)
    tokenizer, model = load_pretrained(src, AutoModel, "a sentence encoder", device)
    return Embedder(tokenizer, model, name=src.name, config=preset(src.profile, **overrides))

"""The image data set of the book: scikit-learn's handwritten digits (1,797 images, 8×8, 10 classes).

It ships inside scikit-learn, so every image chapter trains its generators on it without a download.
One fixed, stratified split is used everywhere (seed 0): 1,437 training images and 360 held-out test
images. Pixels are stored on a 0–16 scale; the models see them scaled to [-1, 1].

Typical use::

    from genai_lib import digits
    data = digits.load()                 # Digits(train_x (1437, 1, 8, 8), train_y, test_x, test_y)
    fig = digits.grid(data.train_x[:32], nrow=8)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from genai_lib.core import GenAIError

N_CLASSES = 10
SIDE = 8            # images are SIDE × SIDE pixels
MAX_VALUE = 16.0    # scikit-learn's digits use the 0..16 scale
TEST_SIZE = 360     # held-out images (20 % of 1,797)
SPLIT_SEED = 0


@dataclass(frozen=True)
class Digits:
    """The fixed split of scikit-learn's digits, as tensors in [-1, 1].

    Attributes:
        train_x: training images, float32, shape (1437, 1, 8, 8), values in [-1, 1].
        train_y: their labels, int64, shape (1437,), values 0..9.
        test_x: held-out images, float32, shape (360, 1, 8, 8).
        test_y: their labels, int64, shape (360,).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def from_16(pixels: Any) -> torch.Tensor:
    """Scale images from the digits' 0–16 scale to float32 in [-1, 1], shaped (N, 1, 8, 8).

    Args:
        pixels: array-like of shape (N, 64), (N, 8, 8) or (N, 1, 8, 8) on the 0–16 scale.

    Returns:
        A float32 tensor of shape (N, 1, 8, 8).
    """
    x = torch.as_tensor(np.asarray(pixels, dtype=np.float32))
    x = as_images(x, "pixels")
    return x / MAX_VALUE * 2.0 - 1.0


def to_16(images: Any) -> np.ndarray:
    """Scale images from [-1, 1] back to the digits' 0–16 scale (clipped), as a NumPy array.

    Args:
        images: tensor or array of shape (N, 1, 8, 8), (N, 8, 8) or (N, 64) in [-1, 1].

    Returns:
        A float32 array of shape (N, 8, 8) with values in [0, 16]; the format ``bench`` saves.
    """
    x = as_images(torch.as_tensor(np.asarray(_to_numpy(images), dtype=np.float32)), "images")
    return ((x[:, 0] + 1.0) / 2.0 * MAX_VALUE).clamp(0.0, MAX_VALUE).numpy()


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def as_images(x: Any, name: str = "images") -> torch.Tensor:
    """Check and reshape a batch of digit images to a float32 CPU tensor of shape (N, 1, 8, 8).

    Args:
        x: tensor or array of shape (N, 1, 8, 8), (N, 8, 8) or (N, 64).
        name: what to call the argument in error messages.

    Returns:
        A float32 CPU tensor of shape (N, 1, 8, 8) (the values are not changed).

    Raises:
        GenAIError: the shape is not one of those above, or the batch is empty.
    """
    t = x.detach().float().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    n = t.shape[0] if t.ndim else 0
    if n == 0 or t.numel() != n * SIDE * SIDE or t.ndim not in (2, 3, 4):
        raise GenAIError(f"{name} must be a non-empty batch of 8×8 digit images shaped (N, 1, 8, 8), "
                         f"(N, 8, 8) or (N, 64); got shape {tuple(t.shape)}.")
    return t.reshape(n, 1, SIDE, SIDE)


@lru_cache(maxsize=1)
def _load_cached() -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x, y = bunch.images.astype(np.float32), bunch.target.astype(np.int64)   # (1797, 8, 8), (1797,)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    return Digits(from_16(x_tr), torch.from_numpy(y_tr), from_16(x_te), torch.from_numpy(y_te))


def load() -> Digits:
    """The fixed train/test split (stratified, seed 0): 1,437 training and 360 test images.

    Returns:
        A :class:`Digits` with images in [-1, 1] shaped (N, 1, 8, 8) and int64 labels. The tensors
        are fresh copies, so a caller may modify them.
    """
    d = _load_cached()
    return Digits(d.train_x.clone(), d.train_y.clone(), d.test_x.clone(), d.test_y.clone())


def grid(images: Any, nrow: int = 10, ax: Any = None, title: str | None = None,
         labels: Any = None, scale: float = 0.6) -> Any:
    """Draw a batch of digits as one grid image with matplotlib.

    Args:
        images: tensor or array of shape (N, 1, 8, 8), (N, 8, 8) or (N, 64), values in [-1, 1].
        nrow: images per row.
        ax: a matplotlib Axes to draw into; a new figure is made when ``None``.
        title: the axes' title.
        labels: optional per-image labels (length N), printed small above each image.
        scale: figure inches per image (used only when a new figure is made).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    x = as_images(images).clamp(-1, 1)[:, 0].numpy()          # (N, 8, 8)
    if not isinstance(nrow, int) or nrow < 1:
        raise GenAIError(f"nrow must be a positive integer, got {nrow!r}")
    n, pad = x.shape[0], 1
    cols, rows = min(nrow, n), -(-n // nrow)
    canvas = np.full((rows * (SIDE + pad) + pad, cols * (SIDE + pad) + pad), 1.0, dtype=np.float32)
    for i, img in enumerate(x):
        r, c = divmod(i, nrow)
        top, left = pad + r * (SIDE + pad), pad + c * (SIDE + pad)
        canvas[top:top + SIDE, left:left + SIDE] = img
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(1.5, cols * scale), max(1.5, rows * scale)))
    else:
        fig = ax.figure
    ax.imshow(canvas, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    if labels is not None:
        for i, lab in enumerate(np.asarray(_to_numpy(labels)).tolist()[:n]):
            r, c = divmod(i, nrow)
            ax.text(pad + c * (SIDE + pad) + SIDE / 2 - 0.5, pad + r * (SIDE + pad) - 0.6, str(lab),
                    ha="center", va="bottom", fontsize=6, color="tab:blue")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig

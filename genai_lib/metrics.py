"""Measuring generated digits: digits-FID, an Inception-Score-style value, class accuracy, diversity.

FID and IS were defined with an ImageNet Inception network, which neither fits 8×8 digits nor
installs offline. Here a small CNN trained on the digits' training split plays its part:

* :func:`fid` - the Fréchet distance between Gaussians fitted to the classifier's penultimate
  features (64-d) of generated and of real held-out images; lower is better. Always read it next to
  :func:`fid_floor`, the FID of *real* training images against the same test images: no generator can
  be expected to go below it.
* :func:`inception_score` - ``exp E_x KL(p(y|x) || p(y))`` from the classifier's softmax; between 1 and
  10, higher when every image is clearly one digit and all digits appear.
* :func:`class_accuracy` - for a conditional model, the share of images of requested class c that the
  classifier calls c.
* :func:`class_histogram` and :func:`diversity` - expose mode collapse, which IS and class accuracy reward.

Typical use::

    from genai_lib import metrics
    scores = metrics.evaluate(images, labels)   # {'fid': ..., 'fid_floor': ..., 'is': ..., ...}
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from genai_lib import digits
from genai_lib.core import GenAIError, atomic_write, cache_dir

CLASSIFIER_VERSION = "digits-cnn-v1"   # change it when the network or its training changes
FEATURE_DIM = 64                       # size of the penultimate layer used by FID


class DigitClassifier(nn.Module):
    """A small CNN for 8×8 digits: 3 conv layers, a 64-d feature layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),                      # (B, 16, 8, 8)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 32, 4, 4)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 64, 2, 2)
            nn.Flatten(),                                                   # (B, 256)
            nn.Dropout(0.3),
            nn.Linear(256, FEATURE_DIM), nn.ReLU(),                         # (B, 64) the features
        )
        self.head = nn.Linear(FEATURE_DIM, digits.N_CLASSES)               # (B, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, (B, 1, 8, 8) -> (B, 64)."""
        return self.conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, (B, 1, 8, 8) -> (B, 10)."""
        return self.head(self.features(x))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Augmentation: move each image by up to one pixel in each direction (zeros = background -1)."""
    padded = nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)              # (B, 1, 10, 10)
    dx, dy = torch.randint(0, 3, (2,), generator=gen).tolist()
    return padded[:, :, dy:dy + digits.SIDE, dx:dx + digits.SIDE]


def train_classifier(epochs: int = 30, seed: int = 0, progress: bool = False) -> tuple[DigitClassifier, float]:
    """Train the feature network on the training split (a few CPU seconds).

    Args:
        epochs: passes over the 1,437 training images.
        seed: seeds the initialisation and the batch order (the global RNGs are left untouched).
        progress: show a progress bar.

    Returns:
        The classifier (in eval mode, on the CPU) and its accuracy on the 360 test images.
    """
    from tqdm.auto import trange

    data = digits.load()
    # enable_grad: the first call may come from inside a no_grad function (features() trains the
    # classifier on first use when the cache folder is empty).
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = DigitClassifier()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * 23)
        for _ in trange(epochs, disable=not progress, desc="digit classifier"):  # pragma: no mutate  (progress bar display)
            model.train()
            order = torch.randperm(len(data.train_x), generator=gen)
            for idx in order.split(64):                                     # 23 batches per epoch
                x = _shift(data.train_x[idx], gen)
                loss = nn.functional.cross_entropy(model(x), data.train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(data.test_x).argmax(1) == data.test_y).float().mean().item()
    return model, acc


@lru_cache(maxsize=1)
def classifier() -> tuple[DigitClassifier, float]:
    """The feature network, trained once and kept in the cache folder (keyed by its version).

    Returns:
        The classifier (eval mode, CPU) and its test accuracy.
    """
    path = cache_dir() / f"{CLASSIFIER_VERSION}.pt"
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = DigitClassifier()
            model.load_state_dict(saved["state_dict"])
            return model.eval(), float(saved["test_accuracy"])
        except Exception:                       # a damaged file: train again and overwrite it
            pass
    model, acc = train_classifier()
    with atomic_write(path) as tmp:             # atomic: readers never see half a file
        torch.save({"state_dict": model.state_dict(), "test_accuracy": acc}, tmp)
    return model, acc


def _check(images: Any) -> torch.Tensor:
    x = digits.as_images(images)
    if not torch.isfinite(x).all():
        raise GenAIError("images contain NaN or infinite values; the generator probably diverged.")  # pragma: no mutate  (message wording)
    if x.min() < -1.5 or x.max() > 1.5:
        raise GenAIError(f"images must be in [-1, 1] (got values from {x.min():.2f} to {x.max():.2f}); "
                         "images on the 0-16 scale can be converted with genai_lib.digits.from_16(...).")
    return x.clamp(-1, 1)


@torch.no_grad()
def features(images: Any) -> np.ndarray:
    """The classifier's penultimate features, (N, 1, 8, 8) in [-1, 1] -> float64 array (N, 64)."""
    model, _ = classifier()
    x = _check(images)
    return torch.cat([model.features(b) for b in x.split(1024)]).double().numpy()


@torch.no_grad()
def probabilities(images: Any) -> np.ndarray:
    """The classifier's softmax, (N, 1, 8, 8) in [-1, 1] -> float64 array (N, 10)."""
    model, _ = classifier()
    x = _check(images)
    return torch.cat([model(b).softmax(-1) for b in x.split(1024)]).double().numpy()


# [start:frechet-distance]
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``d² = |mu1 - mu2|² + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``

    Args:
        mu1, mu2: mean vectors, shape (D,).
        sigma1, sigma2: covariance matrices, shape (D, D).
        eps: added to the diagonals when the product is singular (too few samples for D).

    Returns:
        The squared distance d² (what papers call FID), a non-negative float.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise GenAIError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}; "
                         "expected two (D,) means and two (D, D) covariances.")
    diff = mu1 - mu2
    with warnings.catch_warnings():             # singular products are handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):               # round-off leaves tiny imaginary parts
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise GenAIError(f"sqrtm gave a large imaginary component ({np.abs(covmean.imag).max():.3g}); "
                             "the covariances are not positive semi-definite.")
        covmean = covmean.real
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))
# [end:frechet-distance]


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(0), np.cov(feats, rowvar=False)


@lru_cache(maxsize=1)
def _test_stats() -> tuple[np.ndarray, np.ndarray]:
    return _stats(features(digits.load().test_x))


def fid(gen_images: Any, ref_images: Any = None) -> float:
    """Digits-FID: Fréchet distance of classifier features, generated vs reference images.

    Args:
        gen_images: generated images (N, 1, 8, 8) in [-1, 1]; use 1,000 to compare with the book.
        ref_images: reference images; ``None`` = the 360 held-out test images.

    Returns:
        The FID (lower is better; compare with :func:`fid_floor`).
    """
    x = _check(gen_images)
    if len(x) < 2:
        raise GenAIError("FID needs at least 2 images (1,000 to compare with the book's numbers).")  # pragma: no mutate  (message wording)
    mu_r, s_r = _test_stats() if ref_images is None else _stats(features(ref_images))
    return frechet_distance(*_stats(features(x)), mu_r, s_r)


@lru_cache(maxsize=4)
def fid_floor(n: int = 1000, repeats: int = 5, seed: int = 0) -> tuple[float, float]:
    """The FID of *real* training images against the test images: the best a generator can expect.

    Args:
        n: images per subset (drawn without replacement from the 1,437 training images).
        repeats: how many random subsets.
        seed: seeds the subsets.

    Returns:
        (mean, std) of the FID over the subsets.
    """
    train_x = digits.load().train_x
    rng = np.random.default_rng(seed)
    values = [fid(train_x[rng.choice(len(train_x), size=min(n, len(train_x)), replace=False)])
              for _ in range(repeats)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(images: Any = None, probs: np.ndarray | None = None) -> float:
    """Inception-Score-style value ``exp E_x KL(p(y|x) || p(y))`` from the digit classifier.

    Args:
        images: images (N, 1, 8, 8) in [-1, 1]; or pass ``probs`` instead.
        probs: class probabilities (N, 10), rows summing to 1.

    Returns:
        A value between 1 (all images look alike or are ambiguous) and 10 (confident and all classes equally).
    """
    p = probabilities(images) if probs is None else np.asarray(probs, np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise GenAIError(f"probs must be an (N, K) array whose rows sum to 1; got shape {p.shape}.")
    p_y = p.mean(0, keepdims=True)                                        # (1, K) marginal
    kl = (p * (np.log(p + 1e-12) - np.log(p_y + 1e-12))).sum(1)           # (N,)
    return float(np.exp(kl.mean()))


def predict(images: Any) -> np.ndarray:
    """The classifier's predicted class of each image, int array (N,)."""
    return probabilities(images).argmax(1)


def class_accuracy(images: Any, requested_labels: Any) -> float:
    """Share of images the classifier assigns to the class they were generated for.

    Args:
        images: images (N, 1, 8, 8) in [-1, 1].
        requested_labels: the class each image was asked to be, shape (N,).

    Returns:
        Accuracy in [0, 1].
    """
    y = np.asarray(requested_labels.cpu() if isinstance(requested_labels, torch.Tensor) else requested_labels)
    pred = predict(images)
    if y.shape != pred.shape:
        raise GenAIError(f"requested_labels has shape {y.shape} but there are {len(pred)} images.")
    return float((pred == y).mean())


def class_histogram(images: Any) -> np.ndarray:
    """How many images the classifier puts in each class: int array (10,). A spike means mode collapse."""
    return np.bincount(predict(images), minlength=digits.N_CLASSES)


def diversity(images: Any) -> float:
    """Within-class diversity: mean pairwise feature distance between images of the same predicted class.

    Averaged over the classes holding at least 2 images. Compare with :func:`diversity` of real
    images (``evaluate`` reports both): a generator that repeats a few images per class scores low,
    even when its IS and class accuracy are perfect.
    """
    f, pred = features(images), predict(images)
    values = []
    for c in range(digits.N_CLASSES):
        fc = f[pred == c]                                                  # (n_c, 64)
        if len(fc) >= 2:
            d = np.sqrt(((fc[:, None, :] - fc[None, :, :]) ** 2).sum(-1))  # (n_c, n_c)
            values.append(d.sum() / (len(fc) * (len(fc) - 1)))
    return float(np.mean(values)) if values else 0.0


@lru_cache(maxsize=1)
def real_diversity() -> float:
    """:func:`diversity` of the 360 real test images, the reference for generated ones."""
    return diversity(digits.load().test_x)


def evaluate(images: Any, labels: Any = None) -> dict[str, Any]:
    """All the measures at once, with the real-data references beside them.

    Args:
        images: generated images (N, 1, 8, 8) in [-1, 1] (1,000 to compare with the book).
        labels: the requested class of each image, for conditional models (optional).

    Returns:
        A dict with ``fid``, ``fid_floor``, ``fid_floor_std``, ``is``, ``diversity``,
        ``diversity_real``, ``histogram`` (list of 10 counts), ``n``, and ``class_accuracy`` when
        labels are given.
    """
    x = _check(images)
    floor, floor_std = fid_floor()
    out: dict[str, Any] = {"n": len(x), "fid": fid(x), "fid_floor": floor, "fid_floor_std": floor_std,
                           "is": inception_score(x), "diversity": diversity(x),
                           "diversity_real": real_diversity(), "histogram": class_histogram(x).tolist()}
    if labels is not None:
        out["class_accuracy"] = class_accuracy(x, labels)
    return out

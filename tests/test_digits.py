import numpy as np
import pytest
import torch

from genai_lib import digits
from genai_lib.core import GenAIError


def test_split_sizes_ranges_and_stratification():
    d = digits.load()
    assert d.train_x.shape == (1437, 1, 8, 8) and d.test_x.shape == (360, 1, 8, 8)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert d.train_x.min() == -1.0 and d.train_x.max() == 1.0
    assert sorted(d.test_y.unique().tolist()) == list(range(10))
    counts = np.bincount(d.test_y.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37          # stratified: ~36 per class
    again = digits.load()
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)
    d.train_x.zero_()                                          # copies: the cache is not changed
    assert digits.load().train_x.max() == 1.0


def test_same_images_as_sklearn():
    from sklearn.datasets import load_digits

    raw = load_digits().images.reshape(len(load_digits().images), -1)
    d = digits.load()
    back = digits.to_16(d.test_x).reshape(360, -1)
    # every test image is one of sklearn's images, and train and test do not overlap
    rows = {r.tobytes() for r in raw.astype(np.float32)}
    assert all(r.tobytes() in rows for r in back.astype(np.float32))
    train = {r.tobytes() for r in digits.to_16(d.train_x).reshape(1437, -1).astype(np.float32)}
    assert len(rows) - len(train) <= 360


def test_scale_round_trip_and_shapes():
    x16 = np.arange(64, dtype=np.float32).reshape(1, 64) % 17
    x = digits.from_16(x16)
    assert x.shape == (1, 1, 8, 8) and x.min() == -1 and x.max() == 1
    np.testing.assert_allclose(digits.to_16(x).reshape(1, 64), x16, atol=1e-5)
    assert digits.to_16(torch.full((2, 8, 8), 3.0)).max() == 16.0          # clipped
    with pytest.raises(GenAIError, match="8×8"):
        digits.as_images(torch.zeros(3, 7, 7))
    with pytest.raises(GenAIError, match="non-empty"):
        digits.as_images(torch.zeros(0, 1, 8, 8))


def test_grid_draws_a_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = digits.load()
    fig = digits.grid(d.test_x[:23], nrow=8, title="digits", labels=d.test_y[:23])
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (3 * 9 + 1, 8 * 9 + 1)
    plt.close(fig)
    with pytest.raises(GenAIError, match="nrow"):
        digits.grid(d.test_x[:4], nrow=0)

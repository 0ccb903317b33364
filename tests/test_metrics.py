import numpy as np
import pytest
import torch
from scipy import linalg

from genai_lib import digits, metrics
from genai_lib.core import GenAIError


pytestmark = pytest.mark.usefixtures("one_thread")


def _random_cov(rng, d):
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d)


def test_frechet_1d_closed_form():
    # between N(m1, s1²) and N(m2, s2²): (m1 - m2)² + (s1 - s2)²
    for m1, s1, m2, s2 in [(0, 1, 0, 1), (1.5, 2.0, -0.5, 0.5), (3, 0.1, 3, 4)]:
        got = metrics.frechet_distance(np.array([m1]), np.array([[s1**2]]), np.array([m2]), np.array([[s2**2]]))
        assert got == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-6, abs=1e-9)


def test_frechet_diagonal_and_identical():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-6)
    s = _random_cov(rng, 8)
    assert metrics.frechet_distance(mu1[:1].repeat(8), s, mu1[:1].repeat(8), s) == pytest.approx(0, abs=1e-6)


def test_frechet_matches_an_independent_computation():
    # tr (S1 S2)^½ = tr (S1^½ S2 S1^½)^½, the symmetric form, computed with eigendecompositions
    rng = np.random.default_rng(1)
    for d in (3, 16, 64):
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        w, v = np.linalg.eigh(s1)
        r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
        expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum()
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
        # and scipy's sqrtm on the symmetric form
        alt = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(r1 @ s2 @ r1).real)
        assert metrics.frechet_distance(mu1, s1, mu1, s2) == pytest.approx(alt, rel=1e-6)


def test_frechet_singular_covariances_and_errors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 10))              # 5 samples in 10-d: rank-deficient covariance
    s = np.cov(x, rowvar=False)
    value = metrics.frechet_distance(x.mean(0), s, x.mean(0) + 1, s)
    assert np.isfinite(value) and value == pytest.approx(10.0, rel=1e-3)
    with pytest.raises(GenAIError, match="shapes"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_inception_score_limits():
    uniform = np.full((50, 10), 0.1)
    assert metrics.inception_score(probs=uniform) == pytest.approx(1.0)
    one_hot_all = np.eye(10)[np.arange(100) % 10]
    assert metrics.inception_score(probs=one_hot_all) == pytest.approx(10.0, rel=1e-6)
    one_hot_same = np.eye(10)[np.zeros(100, dtype=int)]
    assert metrics.inception_score(probs=one_hot_same) == pytest.approx(1.0)
    half = np.eye(10)[np.arange(100) % 2]     # two classes only
    assert metrics.inception_score(probs=half) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(GenAIError, match="sum to 1"):
        metrics.inception_score(probs=np.ones((4, 10)))


def test_input_checks():
    with pytest.raises(GenAIError, match="from_16"):
        metrics._check(torch.full((4, 1, 8, 8), 16.0))
    with pytest.raises(GenAIError, match="NaN"):
        metrics._check(torch.full((4, 1, 8, 8), float("nan")))


# The tests below train the feature network once (a few CPU seconds, cached afterwards).
@pytest.mark.offline
def test_classifier_accuracy_and_cache():
    model, acc = metrics.classifier()
    assert acc >= 0.98
    path = metrics.cache_dir() / f"{metrics.CLASSIFIER_VERSION}.pt"
    assert path.exists()
    saved = torch.load(path, weights_only=True)
    assert saved["test_accuracy"] == pytest.approx(acc)
    d = digits.load()
    assert metrics.class_accuracy(d.test_x, d.test_y) == pytest.approx(acc, abs=1e-6)
    assert metrics.features(d.test_x[:5]).shape == (5, metrics.FEATURE_DIM)


@pytest.mark.offline
def test_fid_separates_real_from_noise_and_collapse():
    d = digits.load()
    floor, std = metrics.fid_floor()
    assert 0 < floor and std < floor
    real = metrics.evaluate(d.train_x[:1000], d.train_y[:1000])
    noise = metrics.evaluate(torch.rand(1000, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert real["fid"] < 2 * floor < noise["fid"] / 20
    assert real["class_accuracy"] > 0.98 and real["is"] > 8 and noise["is"] < 4
    # mode collapse: one image per class repeated -> perfect IS and accuracy, but zero diversity, bad FID
    means = torch.stack([d.train_x[d.train_y == c].mean(0) for c in range(10)]).repeat(100, 1, 1, 1)
    col = metrics.evaluate(means, torch.arange(10).repeat(100))
    assert col["class_accuracy"] == 1.0 and col["is"] > 9.5
    assert col["diversity"] == 0.0 < real["diversity"] and col["fid"] > 10 * floor
    ones = d.train_x[d.train_y == 1][:50]
    hist = metrics.class_histogram(ones)
    assert hist.sum() == 50 and hist[1] >= 48
    assert metrics.fid(d.test_x) == pytest.approx(0.0, abs=1e-6)


def test_first_call_with_an_empty_cache_trains_the_classifier(monkeypatch, tmp_path):
    """Issue 11: on an empty cache the first FID (a no_grad function) trains the classifier: that must work."""
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    metrics.classifier.cache_clear()
    metrics._test_stats.cache_clear()
    monkeypatch.setattr(metrics, "train_classifier",
                        lambda real=metrics.train_classifier: real(epochs=1))
    try:
        with torch.no_grad():                 # from inside the caller's own no_grad block
            value = metrics.fid(digits.load().test_x[:50])
        assert np.isfinite(value) and value > 0
        assert (tmp_path / f"{metrics.CLASSIFIER_VERSION}.pt").exists()
    finally:                                  # the next tests use the normal cache (and its statistics) again
        metrics.classifier.cache_clear()
        metrics._test_stats.cache_clear()

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
    with pytest.raises(GenAIError, match="shapes"):                               # covariances differ
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(GenAIError, match="shapes"):                               # means differ
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(3))
    with pytest.raises(GenAIError, match="shapes"):                               # covariance not (D, D)
        metrics.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(2))


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


# ------------------------------------------------------------------ fast tests with a briefly trained classifier
@pytest.fixture(scope="module")
def quick_classifier():
    """The feature network after 4 epochs (about 2 s): enough to separate digits, not the book's network."""
    return metrics.train_classifier(epochs=4, seed=0)


@pytest.fixture
def patched_classifier(monkeypatch, quick_classifier):
    """``metrics.classifier()`` answers with the quick network; the cached test statistics are rebuilt."""
    monkeypatch.setattr(metrics, "classifier", lambda: quick_classifier)
    metrics._test_stats.cache_clear()
    yield quick_classifier[0]
    metrics._test_stats.cache_clear()


def test_train_classifier_learns_is_seeded_and_leaves_the_global_rng_alone(quick_classifier):
    model, acc = quick_classifier
    assert acc > 0.7 and not model.training
    d = digits.load()
    with torch.no_grad():
        assert acc == pytest.approx((model(d.test_x).argmax(1) == d.test_y).float().mean().item())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again, acc_again = metrics.train_classifier(epochs=1, seed=5)
    assert torch.equal(torch.rand(3), expected)                                  # global RNG untouched
    other, _ = metrics.train_classifier(epochs=1, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), other.state_dict().values()))
    third, _ = metrics.train_classifier(epochs=1, seed=6)
    assert not torch.equal(again.head.weight, third.head.weight)


def test_shift_moves_each_batch_by_at_most_one_pixel_with_background_fill():
    x = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8) / 200          # distinct values in [0, 1)
    seen = set()
    for seed in range(60):
        out = metrics._shift(x, torch.Generator().manual_seed(seed))
        assert out.shape == x.shape
        # find the shift (dy, dx) in {-1, 0, 1}^2 that reproduces out by index arithmetic
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ref = torch.full_like(x, -1.0)
                for i in range(8):
                    for j in range(8):
                        si, sj = i + dy, j + dx
                        if 0 <= si < 8 and 0 <= sj < 8:
                            ref[:, :, i, j] = x[:, :, si, sj]
                if torch.equal(out, ref):
                    matches.append((dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}            # all nine shifts occur
    for seed in range(5):                                                          # the generator decides
        assert torch.equal(metrics._shift(x, torch.Generator().manual_seed(seed)),
                           metrics._shift(x, torch.Generator().manual_seed(seed)))


def test_classifier_reads_its_cache_and_retrains_over_a_damaged_file(monkeypatch, tmp_path, quick_classifier):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    path = tmp_path / f"{metrics.CLASSIFIER_VERSION}.pt"
    model, _ = quick_classifier
    trained = []

    def fake_train():
        trained.append(1)
        return model, 0.5

    monkeypatch.setattr(metrics, "train_classifier", fake_train)
    metrics.classifier.cache_clear()
    try:
        torch.save({"state_dict": model.state_dict(), "test_accuracy": 0.25}, path)
        loaded, acc = metrics.classifier()
        assert acc == 0.25 and not trained and not loaded.training
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
        metrics.classifier.cache_clear()
        path.write_bytes(b"not a checkpoint")
        _, acc = metrics.classifier()
        assert acc == 0.5 and trained == [1]
        assert torch.load(path, weights_only=True)["test_accuracy"] == 0.5            # overwritten
    finally:
        metrics.classifier.cache_clear()
        metrics._test_stats.cache_clear()


def test_check_accepts_small_overshoot_and_clamps_it():
    x = metrics._check(torch.tensor([1.5, -1.5, 0.25, 1.2]).repeat(16).reshape(1, 1, 8, 8))
    assert x.max().item() == 1.0 and x.min().item() == -1.0 and 0.25 in x.flatten().tolist()
    for bad in (1.51, -1.51):
        with pytest.raises(GenAIError, match=r"\[-1, 1\]"):
            metrics._check(torch.full((1, 1, 8, 8), bad))
    with pytest.raises(GenAIError, match="NaN or infinite"):
        metrics._check(torch.full((1, 1, 8, 8), float("inf")))


def test_features_probabilities_and_predictions_come_from_the_classifier(patched_classifier):
    model = patched_classifier
    x = digits.load().test_x[:40]
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    f, p = metrics.features(x * 1.2), metrics.probabilities(x)       # 1.2: clamped back to [-1, 1] first
    assert f.dtype == np.float64 and f.shape == (40, metrics.FEATURE_DIM)
    np.testing.assert_allclose(metrics.features(x), feats.numpy(), rtol=1e-6)
    np.testing.assert_allclose(f, model.features((x * 1.2).clamp(-1, 1)).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(p, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert metrics.predict(x).tolist() == logits.argmax(1).tolist()
    hist = metrics.class_histogram(x)
    assert hist.tolist() == np.bincount(logits.argmax(1).numpy(), minlength=10).tolist()
    y = logits.argmax(1)
    y[:10] = (y[:10] + 1) % 10                                       # 10 of 40 labels made wrong
    assert metrics.class_accuracy(x, y) == pytest.approx(0.75)
    assert metrics.class_accuracy(x, y.numpy()) == pytest.approx(0.75)
    with pytest.raises(GenAIError, match="shape"):
        metrics.class_accuracy(x, y[:5])
    assert metrics.inception_score(x) == pytest.approx(metrics.inception_score(probs=p), rel=1e-9)


def test_fid_against_the_test_set_and_given_references(patched_classifier):
    d = digits.load()
    model = patched_classifier
    a, b = d.train_x[:60], d.train_x[60:150]
    with torch.no_grad():
        fa, fb, ft = (model.features(t).double().numpy() for t in (a, b, d.test_x))
    stats = lambda f: (f.mean(0), np.cov(f, rowvar=False))   # noqa: E731
    assert metrics.fid(a, b) == pytest.approx(metrics.frechet_distance(*stats(fa), *stats(fb)), rel=1e-6)
    assert metrics.fid(a) == pytest.approx(metrics.frechet_distance(*stats(fa), *stats(ft)), rel=1e-6)
    assert metrics.fid(a[:2], b) > 0                                      # two images are enough
    with pytest.raises(GenAIError, match="at least 2"):
        metrics.fid(a[:1])


def test_diversity_is_the_mean_within_class_pairwise_distance(patched_classifier):
    x = digits.load().test_x[:30]
    f, pred = metrics.features(x), metrics.predict(x)
    per_class = []
    for c in range(10):
        fc = f[pred == c]
        if len(fc) >= 2:
            d = [np.linalg.norm(fc[i] - fc[j]) for i in range(len(fc)) for j in range(len(fc)) if i != j]
            per_class.append(np.mean(d))
    assert metrics.diversity(x) == pytest.approx(np.mean(per_class), rel=1e-9)
    assert metrics.diversity(x[:1]) == 0.0                            # no class with two images
    assert metrics.diversity(x[:1].repeat(5, 1, 1, 1)) == 0.0         # one image repeated: no diversity


def test_frechet_raises_on_covariances_that_are_not_positive_semidefinite():
    with pytest.raises(GenAIError, match="imaginary"):
        metrics.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    # a product with a slightly negative eigenvalue from round-off is accepted (its tiny imaginary part dropped)
    s = np.diag([1.0, 1e-14])
    assert metrics.frechet_distance(np.zeros(2), s, np.ones(2), s) == pytest.approx(2.0, abs=1e-6)


def test_inception_score_tolerates_round_off_but_not_unnormalised_rows():
    p = np.full((6, 10), 0.1)
    p[:, 0] += 5e-5                                   # float32 softmax round-off: rows sum to 1.00005
    assert metrics.inception_score(probs=p) == pytest.approx(1.0, abs=1e-6)
    for total in (1.5, 0.5):
        with pytest.raises(GenAIError, match="sum to 1"):
            metrics.inception_score(probs=np.full((6, 10), total / 10))
    with pytest.raises(GenAIError, match="sum to 1"):
        metrics.inception_score(probs=np.full(10, 0.1))                 # one row must still be (1, K)


def _reference_features(model, x):
    """The documented network written out with torch.nn.functional and the model's own weights (eval mode):
    3 x (3x3 conv, padding 1, ReLU), max-pooling after the 2nd and 3rd, flatten, linear, ReLU."""
    import torch.nn.functional as F

    convs = [m for m in model.conv if isinstance(m, torch.nn.Conv2d)]
    (lin,) = [m for m in model.conv if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 3
    h = F.relu(F.conv2d(x, convs[0].weight, convs[0].bias, padding=1))                 # (B, 16, 8, 8)
    h = F.max_pool2d(F.relu(F.conv2d(h, convs[1].weight, convs[1].bias, padding=1)), 2)  # (B, 32, 4, 4)
    h = F.max_pool2d(F.relu(F.conv2d(h, convs[2].weight, convs[2].bias, padding=1)), 2)  # (B, 64, 2, 2)
    return F.relu(F.linear(h.flatten(1), lin.weight, lin.bias))                        # (B, 64)


def test_classifier_network_matches_its_reference_forward():
    torch.manual_seed(0)
    model = metrics.DigitClassifier().eval()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        ref = _reference_features(model, x)
        feats = model.features(x)
        torch.testing.assert_close(feats, ref)
        torch.testing.assert_close(model(x), torch.nn.functional.linear(ref, model.head.weight, model.head.bias))
    assert feats.shape == (6, metrics.FEATURE_DIM) and (feats >= 0).all() and (feats == 0).any()


def test_classifier_drops_30_percent_of_the_flattened_activations_while_training():
    torch.manual_seed(0)
    model = metrics.DigitClassifier().train()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    seen = []
    hook = model.conv[-2].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            a = model.features(x)
            torch.manual_seed(3)
            again = model.features(x)
            torch.manual_seed(4)
            b = model.features(x)
            model.eval()
            plain = model.features(x)
    finally:
        hook.remove()
    assert torch.equal(a, again) and not torch.equal(a, b)             # random in training, seeded by torch
    # the input of the feature layer: the flattened 256 activations, a share of them zeroed by dropout
    dropped, kept = seen[0], seen[3]
    assert dropped.shape == kept.shape == (64, 256)
    newly_zero = ((dropped == 0) & (kept != 0)).sum() / (kept != 0).sum()
    assert 0.25 < newly_zero.item() < 0.35
    nz = kept != 0                                                        # survivors are scaled by 1 / (1 - 0.3)
    torch.testing.assert_close(dropped[nz & (dropped != 0)], kept[nz & (dropped != 0)] / 0.7)
    assert not torch.equal(a, plain)


def test_frechet_distance_falls_back_to_an_offset_of_1e_minus_6(monkeypatch):
    s1, s2 = np.diag([1.0, 2.0]), np.diag([3.0, 0.5])
    calls = []
    real = linalg.sqrtm

    def sqrtm(m, *args, **kwargs):
        calls.append(np.array(m))
        if len(calls) == 1:                                  # the product looks singular: no finite root
            return np.full_like(m, np.nan)
        return real(m, *args, **kwargs)

    monkeypatch.setattr(linalg, "sqrtm", sqrtm)
    value = metrics.frechet_distance(np.zeros(2), s1, np.ones(2), s2)
    off = 1e-6 * np.eye(2)
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[1], (s1 + off) @ (s2 + off))
    root = np.sqrt(np.diag((s1 + off) @ (s2 + off)))
    assert value == pytest.approx(2 + 3.0 + 3.5 - 2 * root.sum(), rel=1e-12)   # |mu1 - mu2|² + traces

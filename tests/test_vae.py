from dataclasses import replace

import pytest
import torch

from genai_lib import digits, vae
from genai_lib.core import GenAIError


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return digits.load()


def test_shapes_and_loss_terms(tiny, data):
    cfg = vae.preset("tiny")
    model = vae.build(cfg, device="cpu")
    x = data.train_x[:5]
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == (5, 1, 8, 8) and mu.shape == logvar.shape == (5, cfg.latent_dim)
    assert x_hat.abs().max() <= 1
    recon, kl = vae.loss_terms(model, x)
    assert recon.ndim == 0 and kl.item() >= 0
    # the KL term against its closed form for one latent: KL(N(m, s²) || N(0, 1))
    m, lv = torch.tensor([[0.7, -0.2]]), torch.tensor([[0.3, -1.0]])
    expected = sum(0.5 * (mm**2 + torch.exp(v) - 1 - v) for mm, v in zip(m[0], lv[0]))
    got = 0.5 * (m**2 + lv.exp() - 1 - lv).sum()
    assert got.item() == pytest.approx(expected.item())


def test_training_lowers_the_loss_and_is_deterministic(data):
    cfg = replace(vae.preset("tiny"), epochs=4)
    a = vae.build(cfg, device="cpu")
    hist = vae.train(a, data.train_x[:128], cfg, progress=False)
    assert set(hist) == {"loss", "recon", "kl"} and len(hist["loss"]) == 4
    assert hist["loss"][-1] < hist["loss"][0]
    for k in range(4):
        assert hist["loss"][k] == pytest.approx(hist["recon"][k] + cfg.beta * hist["kl"][k])
    b = vae.build(cfg, device="cpu")
    hist_b = vae.train(b, data.train_x[:128], cfg, progress=False)
    assert hist_b["loss"] == hist["loss"]
    assert torch.equal(vae.sample(a, 4, seed=3), vae.sample(b, 4, seed=3))
    assert not torch.equal(vae.sample(a, 4, seed=3), vae.sample(a, 4, seed=4))


def test_sample_encode_decode_interpolate_anomaly(data):
    cfg = vae.preset("tiny")
    model = vae.build(cfg, device="cpu")
    s = vae.sample(model, 7)
    assert s.shape == (7, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
    z = vae.encode(model, data.test_x[:3])
    assert z.shape == (3, cfg.latent_dim)
    assert vae.decode(model, z).shape == (3, 1, 8, 8)
    path = vae.interpolate(model, data.test_x[0], data.test_x[1], steps=5)
    assert path.shape == (5, 1, 8, 8)
    torch.testing.assert_close(path[0], vae.reconstruct(model, data.test_x[:1])[0])
    torch.testing.assert_close(path[-1], vae.reconstruct(model, data.test_x[1:2])[0])
    scores = vae.anomaly_score(model, data.test_x[:4])
    assert scores.shape == (4,) and (scores >= 0).all()
    with pytest.raises(GenAIError, match="shape"):
        vae.decode(model, torch.zeros(2, cfg.latent_dim + 1))
    with pytest.raises(GenAIError, match="steps"):
        vae.interpolate(model, data.test_x[0], data.test_x[1], steps=1)
    with pytest.raises(GenAIError, match="positive"):
        vae.sample(model, 0)


def test_trained_vae_flags_noise_as_anomalous(data):
    from sklearn.metrics import roc_auc_score

    cfg = replace(vae.preset("tiny"), latent_dim=4, hidden=64, epochs=6, batch_size=128)
    model = vae.build(cfg, device="cpu")
    vae.train(model, data.train_x, cfg, progress=False)
    normal = vae.anomaly_score(model, data.test_x[:100])
    odd = vae.anomaly_score(model, digits.corrupt(data.test_x[:100], "random", seed=1))
    labels = [0] * 100 + [1] * 100
    assert roc_auc_score(labels, torch.cat([normal, odd]).numpy()) > 0.95


def test_config_validation():
    with pytest.raises(GenAIError, match="latent_dim"):
        vae.build(replace(vae.preset("tiny"), latent_dim=0))
    with pytest.raises(GenAIError, match="sigma"):
        replace(vae.preset("tiny"), sigma=0).validate()
    with pytest.raises(GenAIError, match="beta"):
        replace(vae.preset("tiny"), beta=-1).validate()
    assert set(vae.PRESETS) == {"tiny", "offline", "hub"}
    for cfg in vae.PRESETS.values():
        cfg.validate()


def test_load_trains_once_and_reuses_the_cache(monkeypatch, tmp_path, data):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(vae.preset("tiny"), epochs=1)
    a = vae.load(cfg=cfg)
    files = list(tmp_path.glob("vae-digits-*.pt"))
    assert len(files) == 1
    b = vae.load(cfg=cfg)
    assert torch.equal(vae.encode(a, data.test_x[:2]), vae.encode(b, data.test_x[:2]))


def test_corrupt_kinds(data):
    x = data.test_x[:6]
    for kind in ("noise", "mask", "shuffle", "random"):
        y = digits.corrupt(x, kind, seed=0)
        assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and not torch.equal(x, y)
        assert torch.equal(y, digits.corrupt(x, kind, seed=0))
    assert torch.equal(digits.corrupt(x, "shuffle").sort(-1)[0].flatten(1).sort(1)[0], x.flatten(1).sort(1)[0])
    with pytest.raises(GenAIError, match="Unknown corruption"):
        digits.corrupt(x, "blur")

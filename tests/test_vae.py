import math
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


def test_loss_terms_match_a_monte_carlo_estimate_of_the_elbo(tiny, data):
    """KL(q(z|x) || N(0, I)) from ``loss_terms`` equals E_q[log q(z|x) - log p(z)] estimated by sampling,
    and the reconstruction term is the Gaussian negative log-likelihood up to its constant."""
    cfg = vae.preset("tiny")
    model = vae.build(cfg, device="cpu")
    with torch.no_grad():
        # push the posterior away from N(0, I) so the KL is far from zero
        model.encoder[-1].bias.add_(torch.linspace(-1.5, 1.5, model.encoder[-1].bias.numel()))
        x = data.train_x[:8]
        recon, kl = vae.loss_terms(model, x, torch.Generator().manual_seed(0))
        mu, logvar = model.encode(x)
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        torch.manual_seed(0)
        z = q.sample((20_000,))                                           # (S, B, Z)
        mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()               # mean over samples and batch
        assert kl.item() > 0.5
        assert kl.item() == pytest.approx(mc.item(), rel=0.03)
        # the reconstruction term: -log N(x; x_hat, sigma² I) minus its constant, for the same noise
        x_hat = model.decode(model.reparameterize(mu, logvar, torch.Generator().manual_seed(0)))
        nll = -torch.distributions.Normal(x_hat, cfg.sigma).log_prob(x).flatten(1).sum(1)
        const = 0.5 * x[0].numel() * math.log(2 * math.pi * cfg.sigma ** 2)
        assert recon.item() == pytest.approx((nll - const).mean().item(), rel=1e-4)


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

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


def test_load_reads_a_kept_vae_without_taking_the_lock(monkeypatch, tmp_path, data):
    """The lock is only for training: reading a file that is there needs no lock file, so a cache
    folder the reader cannot write to still serves the models in it."""
    from genai_lib import core

    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(vae.preset("tiny"), epochs=1)
    a = vae.load(cfg=cfg)

    def no_lock(name):
        raise AssertionError(f"cache_lock({name!r}) taken to read a kept model")

    monkeypatch.setattr(core, "cache_lock", no_lock)
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


@pytest.mark.parametrize("field, good, bad", [
    ("latent_dim", 1, [0, 2.0, True]), ("hidden", 1, [0]), ("epochs", 1, [0]), ("batch_size", 1, [-1]),
    ("sigma", 10.0, [0.0, 10.5]), ("beta", 0.0, [-0.1, 100.5]), ("lr", 0.999, [0.0, 1.0]),
    ("input_noise", 0.0, [-0.01]),
])
def test_config_validation_boundaries(field, good, bad):
    replace(vae.preset("tiny"), **{field: good}).validate()
    replace(vae.preset("tiny"), beta=100.0, sigma=1e-3).validate()     # the other ends of the ranges
    for value in bad:
        with pytest.raises(GenAIError, match=field):
            replace(vae.preset("tiny"), **{field: value}).validate()


def test_preset_applies_overrides():
    assert vae.preset("hub") == vae.PRESETS["hub"]
    assert vae.preset("tiny", beta=4.0) == replace(vae.PRESETS["tiny"], beta=4.0)


def test_build_is_seeded_and_leaves_the_global_rng_alone(monkeypatch):
    cfg = vae.preset("tiny")
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    a = vae.build(cfg, device="cpu")
    assert torch.equal(torch.rand(2), expected)
    b = vae.build(cfg, device="cpu")
    c = vae.build(replace(cfg, seed=1), device="cpu")
    assert torch.equal(a.encoder[1].weight, b.encoder[1].weight)
    assert not torch.equal(a.encoder[1].weight, c.encoder[1].weight)
    monkeypatch.setenv("GENAI_PROFILE", "tiny")
    d = vae.build()                                            # no config: the active profile's preset
    assert d.cfg == cfg and next(d.parameters()).device.type in ("cpu", "cuda", "mps")


def test_reparameterize_and_the_clamped_log_variance():
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    z = vae.VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, mu + torch.tensor([[1.0, 2.0]]) * eps)   # std = exp(logvar / 2)
    model = vae.build(vae.preset("tiny"), device="cpu")
    with torch.no_grad():
        model.encoder[-1].bias.copy_(torch.tensor([0.0, 0.0, 1e4, -1e4]))    # logvar far outside the range
        _, lv = model.encode(torch.zeros(1, 1, 8, 8))
    assert lv.tolist() == [[8.0, -12.0]]                   # clamped to [-12, 8], so exp() stays finite


def test_loss_terms_reconstruct_the_target_when_given(tiny):
    model = vae.build(vae.preset("tiny"), device="cpu")
    x = digits.load().train_x[:4]
    target = -x
    gen = lambda: torch.Generator().manual_seed(1)    # noqa: E731
    recon_t, kl_t = vae.loss_terms(model, x, gen(), target=target)
    recon_x, kl_x = vae.loss_terms(model, x, gen())
    with torch.no_grad():
        x_hat, _, _ = model(x, gen())
    sigma2 = model.cfg.sigma ** 2
    assert recon_t.item() == pytest.approx(((target - x_hat) ** 2).sum((1, 2, 3)).mean().item() / (2 * sigma2), rel=1e-5)
    assert recon_x.item() == pytest.approx(((x - x_hat) ** 2).sum((1, 2, 3)).mean().item() / (2 * sigma2), rel=1e-5)
    assert kl_t.item() == pytest.approx(kl_x.item())


def _reference_history(cfg, x, steps_per_epoch_sizes):
    """The training loop written out step by step: the same generators, loss and Adam updates."""
    model = vae.build(cfg, device="cpu")
    gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hist = {"loss": [], "recon": [], "kl": []}
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        assert [len(b) for b in order.split(cfg.batch_size)] == steps_per_epoch_sizes
        r_sum = k_sum = 0.0
        for idx in order.split(cfg.batch_size):
            xb = x[idx]
            inp = xb
            if cfg.input_noise:
                inp = (xb + cfg.input_noise * torch.randn(xb.shape, generator=noise_gen)).clamp(-1, 1)
            recon, kl = vae.loss_terms(model, inp, noise_gen, target=xb)
            opt.zero_grad()
            (recon + cfg.beta * kl).backward()
            opt.step()
            r_sum += recon.item() * len(xb)
            k_sum += kl.item() * len(xb)
        hist["recon"].append(r_sum / len(x))
        hist["kl"].append(k_sum / len(x))
        hist["loss"].append(hist["recon"][-1] + cfg.beta * hist["kl"][-1])
    return model, hist


@pytest.mark.parametrize("input_noise", [0.0, 0.3])
def test_train_matches_the_loop_written_out(input_noise, data):
    """Unequal batches (7 = 4 + 3), beta != 1 and the denoising option, against an explicit reference."""
    cfg = replace(vae.preset("tiny"), epochs=2, batch_size=4, beta=2.5, lr=0.01, seed=4, input_noise=input_noise)
    x = data.train_x[:7]
    ref_model, ref = _reference_history(cfg, x, [4, 3])
    model = vae.build(cfg, device="cpu")
    hist = vae.train(model, x, progress=False)                 # no cfg: the model's own
    for key in ("loss", "recon", "kl"):
        assert hist[key] == pytest.approx(ref[key], rel=1e-5)
    torch.testing.assert_close(model.decoder[-2].weight, ref_model.decoder[-2].weight)
    assert not model.training


def test_train_accepts_a_digits_object_and_another_config(data):
    cfg = replace(vae.preset("tiny"), epochs=1, batch_size=512)
    a = vae.build(cfg, device="cpu")
    b = vae.build(cfg, device="cpu")
    ha = vae.train(a, data, cfg, progress=False)                 # the Digits: its training split
    hb = vae.train(b, data.train_x, replace(cfg, epochs=2), progress=False)
    assert len(ha["loss"]) == 1 and len(hb["loss"]) == 2 and ha["loss"][0] == pytest.approx(hb["loss"][0])
    with pytest.raises(GenAIError, match="lr"):
        vae.train(a, data.train_x, replace(cfg, lr=2.0), progress=False)


def test_sample_decode_interpolate_and_anomaly_against_direct_computations(data):
    model = vae.build(vae.preset("tiny"), device="cpu")
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(vae.sample(model, 5, seed=8, temperature=0.5), model.decode(z * 0.5))
        torch.testing.assert_close(vae.sample(model, 1, seed=8), model.decode(z[:1]))
        mu_a, _ = model.encode(data.test_x[:1])
        mu_b, _ = model.encode(data.test_x[1:2])
        path = vae.interpolate(model, data.test_x[0], data.test_x[1], steps=3)
        torch.testing.assert_close(path[1], model.decode((mu_a + mu_b) / 2)[0])
        assert vae.interpolate(model, data.test_x[0], data.test_x[1], steps=2).shape == (2, 1, 8, 8)
        x = data.test_x[:3]
        rec = model.decode(model.encode(x)[0])
        torch.testing.assert_close(vae.reconstruct(model, x), rec)
        torch.testing.assert_close(vae.anomaly_score(model, x), ((x - rec) ** 2).sum((1, 2, 3)))
    with pytest.raises(GenAIError, match="positive"):
        vae.sample(model, 2.0)
    with pytest.raises(GenAIError, match="shape"):
        vae.decode(model, torch.zeros(2))


def test_load_keys_the_cache_by_config_and_retrains_over_a_damaged_file(monkeypatch, tmp_path, data):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(vae.preset("tiny"), epochs=1, batch_size=512)
    with torch.no_grad():                                    # training still works inside the caller's no_grad
        a = vae.load(cfg=cfg)
    (path,) = tmp_path.glob("vae-digits-*.pt")
    path.write_bytes(b"damaged")
    b = vae.load(cfg=cfg)
    assert torch.equal(vae.encode(a, data.test_x[:2]), vae.encode(b, data.test_x[:2]))
    assert torch.load(path, weights_only=True).keys() == a.state_dict().keys()     # rewritten
    vae.load(cfg=replace(cfg, seed=1))
    assert len(list(tmp_path.glob("vae-digits-*.pt"))) == 2                      # another config, another file
    trained = []
    monkeypatch.setattr(vae, "train", lambda *a, **k: trained.append(1))
    vae.load(cfg=cfg)
    assert not trained                                                           # read from the cache


def test_a_model_the_chapter_saves_is_the_one_load_would_train_and_load_reads_it(monkeypatch, tmp_path, data):
    """The VAE notebook trains in the open (build, then train with the model's own config) and saves;
    the text-to-image notebook's load() then reads that file instead of training again, and what it
    reads equals what it would have trained in an empty cache."""
    cfg = replace(vae.preset("tiny"), epochs=2)
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "fresh"))
    trained_by_load = vae.load(cfg=cfg)
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "chapter"))
    model = vae.build(cfg)
    vae.train(model, data.train_x, cfg, progress=False)
    path = vae.save(model)
    assert path.startswith(str(tmp_path / "chapter")) and model.trained_with == (cfg,)
    trained = []
    monkeypatch.setattr(vae, "train", lambda *a, **k: trained.append(1))
    got = vae.load(cfg=cfg)
    assert not trained and got.trained_with == (cfg,)                             # read, not trained
    for name, tensor in trained_by_load.state_dict().items():
        assert torch.equal(got.state_dict()[name], tensor), name
    assert vae.save(got) == path                                                 # a loaded model may be kept again


def test_save_refuses_a_vae_that_load_would_not_have_trained(tmp_path, monkeypatch, data):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(vae.preset("tiny"), epochs=1)
    with pytest.raises(GenAIError, match="trained 0 time"):
        vae.save(vae.build(cfg))                                                 # untrained
    other = vae.build(cfg)
    vae.train(other, data.train_x, replace(cfg, input_noise=0.5), progress=False)   # the denoising recipe
    with pytest.raises(GenAIError, match="another config"):
        vae.save(other)
    twice = vae.build(cfg)
    vae.train(twice, data.train_x, progress=False)
    vae.train(twice, data.train_x, progress=False)
    with pytest.raises(GenAIError, match="trained 2 time"):
        vae.save(twice)
    assert not list(tmp_path.glob("vae-digits-*"))                               # nothing written


def test_load_uses_the_named_profiles_preset(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    monkeypatch.setenv("GENAI_PROFILE", "offline")
    seen = []
    monkeypatch.setattr(vae, "train", lambda model, data, cfg, progress: seen.append((cfg, progress)))
    model = vae.load("tiny", progress=True)                  # training replaced: only which config is used
    assert seen == [(vae.preset("tiny"), True)] and model.cfg == vae.preset("tiny")


def test_encoder_and_decoder_match_their_reference_forward():
    """Encoder: linear, SiLU, linear, SiLU, linear to (mu, logvar); decoder: linear, SiLU, linear, SiLU,
    linear, tanh. Written out with torch.nn.functional from the model's own weights."""
    import torch.nn.functional as F

    cfg = replace(vae.preset("tiny"), hidden=12, latent_dim=3)
    model = vae.build(cfg, device="cpu")
    h, z = cfg.hidden, cfg.latent_dim
    enc = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    dec = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in enc] == [(h, 64), (h, h), (2 * z, h)]
    assert [tuple(m.weight.shape) for m in dec] == [(h, z), (h, h), (64, h)]
    assert sum(p.numel() for p in model.encoder.parameters()) == 64 * h + h + h * h + h + 2 * z * h + 2 * z
    assert sum(p.numel() for p in model.decoder.parameters()) == z * h + h + h * h + h + 64 * h + 64
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = torch.randn(5, z, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        a = F.silu(F.linear(x.flatten(1), enc[0].weight, enc[0].bias))
        a = F.silu(F.linear(a, enc[1].weight, enc[1].bias))
        out = F.linear(a, enc[2].weight, enc[2].bias)
        mu, logvar = model.encode(x)
        torch.testing.assert_close(mu, out[:, :z])
        torch.testing.assert_close(logvar, out[:, z:].clamp(-12, 8))
        d = F.silu(F.linear(latents, dec[0].weight, dec[0].bias))
        d = F.silu(F.linear(d, dec[1].weight, dec[1].bias))
        d = torch.tanh(F.linear(d, dec[2].weight, dec[2].bias))
        torch.testing.assert_close(model.decode(latents), d.view(5, 1, 8, 8))


def test_reparameterize_draws_the_noise_in_the_dtype_of_mu():
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, math.log(4.0), -1.0]], dtype=torch.float64)
    z = vae.VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn(1, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert z.dtype == torch.float64
    assert torch.equal(z, mu + torch.exp(0.5 * logvar) * eps)


def test_build_puts_the_model_on_the_requested_device():
    model = vae.build(vae.preset("tiny"), device="meta")        # a device no default would pick
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_interpolate_gives_8_images_by_default(data):
    model = vae.build(vae.preset("tiny"), device="cpu")
    path = vae.interpolate(model, data.test_x[0], data.test_x[1])
    assert path.shape == (8, 1, 8, 8)
    torch.testing.assert_close(path, vae.interpolate(model, data.test_x[0], data.test_x[1], steps=8))


class _Planted:
    """A pickle that creates a file when it is unpickled: what a hostile cache file could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_never_unpickles_code_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    cfg = replace(vae.preset("tiny"), epochs=1)
    trained = []
    monkeypatch.setattr(vae, "train", lambda model, data, cfg, progress: trained.append(cfg))
    vae.load(cfg=cfg)
    (path,) = tmp_path.glob("vae-digits-*.pt")                # the configuration's cache file
    marker = tmp_path / "pwned"
    torch.save({"encoder.1.weight": _Planted(marker)}, path)
    model = vae.load(cfg=cfg)
    assert not marker.exists()                                  # loaded with weights_only: nothing ran
    assert trained == [cfg, cfg]                                # treated as a damaged file: trained again
    saved = torch.load(path, weights_only=True)                 # and overwritten with the new weights
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())

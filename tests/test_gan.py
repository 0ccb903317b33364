from dataclasses import replace

import pytest
import torch

from genai_lib import digits, gan
from genai_lib.core import GenAIError


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    d = digits.load()
    return d.train_x[:256], d.train_y[:256]


def test_shapes_conditional_and_unconditional(tiny):
    for conditional, mbstd in [(True, False), (False, True)]:
        cfg = replace(gan.preset("tiny"), conditional=conditional, minibatch_std=mbstd)
        model = gan.build(cfg, device="cpu")
        z, y = torch.randn(5, cfg.latent_dim), torch.arange(5)
        fake = model.generator(z, y)
        assert fake.shape == (5, 1, 8, 8) and fake.abs().max() <= 1
        assert model.discriminator(fake, y).shape == (5,)


def test_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.0, 0.7, 0.0])
    sig = torch.sigmoid
    smooth = 0.1
    expected_d = (-(0.9 * torch.log(sig(real)) + 0.1 * torch.log(1 - sig(real)))).mean() - torch.log(1 - sig(fake)).mean()
    assert gan.d_loss_fn(real, fake, smooth).item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert gan.g_loss_fn(fake).item() == pytest.approx((-torch.log(sig(fake))).mean().item(), rel=1e-5)


def test_training_history_snapshots_and_determinism(data):
    cfg = replace(gan.preset("tiny"), steps=12, snapshot_steps=(4, 12))
    a = gan.build(cfg, device="cpu")
    hist = gan.train(a, data, cfg, progress=False)
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert len(hist[key]) == 12
    assert sorted(hist["snapshots"]) == [4, 12] and hist["snapshots"][12].shape == (100, 1, 8, 8)
    b = gan.build(cfg, device="cpu")
    assert gan.train(b, data, cfg, progress=False)["d_loss"] == hist["d_loss"]
    torch.testing.assert_close(gan.sample(a, 6, seed=2), gan.sample(b, 6, seed=2))


def test_discriminator_learns_in_a_few_steps(data):
    # with the generator frozen, a few D steps must lower L_D (D learns to tell real from generated)
    cfg = replace(gan.preset("tiny"), label_smoothing=0.0)
    model = gan.build(cfg, device="cpu")
    x, y = data
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-3)
    z = torch.randn(len(x), cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake = model.generator(z, y)
    losses = []
    for _ in range(15):
        loss = gan.d_loss_fn(model.discriminator(x, y), model.discriminator(fake, y), 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_ema_follows_the_generator():
    cfg = replace(gan.preset("tiny"), ema_decay=0.5)
    model = gan.build(cfg, device="cpu")
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.ema.parameters()]
    model.update_ema()
    for pb, pe, pg in zip(before, model.ema.parameters(), model.generator.parameters()):
        torch.testing.assert_close(pe, 0.5 * pb + 0.5 * pg)
    no_ema = gan.build(replace(cfg, ema_decay=0.0), device="cpu")
    no_ema.update_ema()
    for pe, pg in zip(no_ema.ema.parameters(), no_ema.generator.parameters()):
        assert torch.equal(pe, pg)


def test_sample_shapes_ranges_and_errors():
    model = gan.build(gan.preset("tiny"), device="cpu")
    s = gan.sample(model, 7, labels=[0, 1, 2, 3, 4, 5, 9])
    assert s.shape == (7, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
    assert gan.sample(model, 3, use_ema=False).shape == (3, 1, 8, 8)
    with pytest.raises(GenAIError, match="labels"):
        gan.sample(model, 3, labels=[0, 1, 10])
    with pytest.raises(GenAIError, match="labels"):
        gan.sample(model, 3, labels=[0, 1])
    with pytest.raises(GenAIError, match="positive"):
        gan.sample(model, 0)


def test_config_validation(data):
    with pytest.raises(GenAIError, match="label_smoothing"):
        gan.build(replace(gan.preset("tiny"), label_smoothing=0.7))
    with pytest.raises(GenAIError, match="ema_decay"):
        replace(gan.preset("tiny"), ema_decay=1.0).validate()
    with pytest.raises(GenAIError, match="steps"):
        replace(gan.preset("tiny"), steps=0).validate()
    model = gan.build(gan.preset("tiny"), device="cpu")
    with pytest.raises(GenAIError, match="labels"):
        gan.train(model, (data[0], data[1][:10]), progress=False)
    assert set(gan.PRESETS) == {"tiny", "offline", "hub"}
    for cfg in gan.PRESETS.values():
        cfg.validate()

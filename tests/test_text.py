"""genai_lib.text in the tiny profile (seconds), plus the offline checks on SmolLM2."""

import copy
import math
import pytest
import torch

from genai_lib import text
from genai_lib.core import GenAIError


def test_greedy_equals_plain_transformers_generate(tiny_lm):
    prompt = "The quick brown fox"
    ours = tiny_lm.generate(prompt, max_new_tokens=12)
    enc = tiny_lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    ref = tiny_lm.model.generate(**enc, max_new_tokens=12, do_sample=False,
                                 pad_token_id=tiny_lm.tokenizer.pad_token_id)
    assert ours == tiny_lm.tokenizer.decode(ref[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_sampling_is_repeatable_with_a_seed_and_varies_without(tiny_lm):
    cfg = text.GenerationConfig(max_new_tokens=10, do_sample=True, temperature=1.5, seed=7)
    assert tiny_lm.generate("abc", cfg) == tiny_lm.generate("abc", cfg)
    outs = {tiny_lm.generate("abc", cfg, seed=s) for s in range(6)}
    assert len(outs) > 1


def test_stream_pieces_join_to_generate(tiny_lm):
    pieces = list(tiny_lm.stream("Hello", max_new_tokens=10))
    assert "".join(pieces) == tiny_lm.generate("Hello", max_new_tokens=10)
    with pytest.raises(GenAIError, match="beam"):
        list(tiny_lm.stream("Hello", num_beams=2))


def _reference(lm, prompt: str, **hf) -> str:
    """What plain ``transformers`` generate returns for ``prompt`` (the continuation only)."""
    enc = lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    out = lm.model.generate(**enc, pad_token_id=lm.tokenizer.pad_token_id, **hf)
    return lm.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_chat_uses_the_chat_template(tiny_lm):
    prompt = tiny_lm.format_chat("Hi there", system="Be brief.")
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    # chat() is generate() on the templated conversation, and stream_chat() yields the same text
    templated = tiny_lm.format_chat([{"role": "user", "content": "Hi"}])
    reply = tiny_lm.chat([{"role": "user", "content": "Hi"}], max_new_tokens=6)
    assert reply == _reference(tiny_lm, templated, max_new_tokens=6, do_sample=False).strip()
    assert "".join(tiny_lm.stream_chat("Hi", max_new_tokens=6)).strip() == reply


def test_beam_search_and_sampling_options_reach_transformers(tiny_lm):
    beams = tiny_lm.generate("Once", max_new_tokens=5, num_beams=3)
    assert beams == _reference(tiny_lm, "Once", max_new_tokens=5, num_beams=3, do_sample=False)
    cfg = text.GenerationConfig(max_new_tokens=8, do_sample=True, top_k=5, top_p=0.9,
                                repetition_penalty=1.3, temperature=0.7, seed=11)
    sampled = tiny_lm.generate("Once", cfg)
    again = tiny_lm.generate("Once", cfg)
    assert sampled == again and sampled.strip()
    # top_k=1 sampling can only ever pick the argmax: it must equal greedy decoding
    assert tiny_lm.generate("Once", max_new_tokens=8, do_sample=True, top_k=1, seed=3) == \
        tiny_lm.generate("Once", max_new_tokens=8)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": -5}, "max_new_tokens"),
    ({"max_new_tokens": 10**9}, "max_new_tokens"),
    ({"max_new_tokens": 2.5}, "integer"),
    ({"temperature": 0.0}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"num_beams": 0}, "num_beams"),
    ({"seed": -3}, "seed"),
])
def test_bad_options_are_clear_errors(tiny_lm, kwargs, message):
    with pytest.raises(GenAIError, match=message):
        tiny_lm.generate("abc", **kwargs)


def test_empty_prompt_and_empty_chat_are_errors(tiny_lm):
    for bad in ("", "   "):
        with pytest.raises(GenAIError, match="empty"):
            tiny_lm.generate(bad)
    with pytest.raises(GenAIError, match="content"):
        tiny_lm.chat([])
    with pytest.raises(GenAIError, match="content"):
        tiny_lm.chat([{"role": "user", "content": " "}])


def test_next_token_distribution_matches_the_sampling_filters(tiny_lm):
    full = tiny_lm.next_token_distribution("ab", k=1000)
    assert abs(sum(p for _, p in full) - 1.0) < 1e-4
    probs = [p for _, p in full]
    assert probs == sorted(probs, reverse=True)
    top3 = tiny_lm.next_token_distribution("ab", top_k=3, k=10)
    assert sum(p > 0 for _, p in top3) == 3 and abs(sum(p for _, p in top3) - 1) < 1e-5
    nucleus = tiny_lm.next_token_distribution("ab", top_p=0.5, k=1000)
    kept = [p for _, p in nucleus if p > 0]
    assert abs(sum(kept) - 1) < 1e-5 and len(kept) < len(full)
    cold = tiny_lm.next_token_distribution("ab", temperature=0.1, k=1)[0][1]
    assert cold > full[0][1]


def test_inverse_cdf_draws_the_token_whose_interval_holds_the_uniform():
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75], [0.5, 0.5, 0.0, 0.0]])      # (2, 4)
    draw = lambda u0, u1: text.inverse_cdf(probs, torch.tensor([[u0], [u1]], dtype=torch.float64)).flatten().tolist()  # noqa: E731
    assert draw(0.0, 0.0) == [1, 0]                                               # a zero-probability token is never drawn
    assert draw(0.2499, 0.4999) == [1, 0]
    assert draw(0.25, 0.5) == [3, 1]                                              # an interval's end belongs to the next token
    assert draw(0.99999999, 0.99999999) == [3, 1]                                 # the trailing zeros are never drawn
    unnormalised = torch.tensor([[0.0, 0.5, 1.5]])                                # rows are scaled by their own total
    assert text.inverse_cdf(unnormalised, torch.tensor([[0.24]])).item() == 1
    assert text.inverse_cdf(unnormalised, torch.tensor([[0.26]])).item() == 2


def test_sampled_tokens_follow_next_token_distribution(tiny_lm):
    """Many rows sampled once each draw every token as often as next_token_distribution says (seeded)."""
    import collections

    opts = dict(temperature=0.7, top_k=4, top_p=0.7)
    expected = collections.Counter()
    for piece, p in tiny_lm.next_token_distribution("ab", k=10, **opts):
        expected[piece] += p                                                      # several tokens may print alike
    n = 3000
    drawn = collections.Counter(tiny_lm.generate_batch(["ab"] * n, max_new_tokens=1, do_sample=True, seed=0,
                                                       batch_size=n, **opts))
    assert sum(p > 0 for p in expected.values()) >= 3                             # top-p cut one of the top-4 tokens
    assert set(drawn) == {piece for piece, p in expected.items() if p > 0}
    for piece, p in expected.items():
        assert abs(drawn[piece] / n - p) <= 4 * math.sqrt(p * (1 - p) / n), piece


def test_seeded_sampling_leaves_the_global_generator_alone(tiny_lm):
    cfg = text.GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, seed=3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = tiny_lm.generate("abc", cfg)
    batch = tiny_lm.generate_batch(["abc", "Hello"], cfg)
    streamed = "".join(tiny_lm.stream("abc", cfg))
    assert torch.equal(torch.get_rng_state(), state)                             # the seed went to a generator of its own
    torch.manual_seed(456)                                                        # and the global state does not matter
    assert tiny_lm.generate("abc", cfg) == first == streamed
    assert tiny_lm.generate_batch(["abc", "Hello"], cfg) == batch


def test_perplexity_is_exp_of_the_loss(tiny_lm):
    ppl = tiny_lm.perplexity("hello world")
    enc = tiny_lm.tokenizer("hello world", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        loss = tiny_lm.model(**enc, labels=enc["input_ids"]).loss
    assert ppl == pytest.approx(float(torch.exp(loss)), rel=1e-5)
    with pytest.raises(GenAIError):
        tiny_lm.perplexity("a")


def test_presets_and_local_folder_loading(tmp_path, tiny_lm):
    assert text.preset("tiny").max_new_tokens < text.preset("offline").max_new_tokens
    assert text.preset("offline", temperature=0.5).temperature == 0.5
    tiny_lm.model.save_pretrained(tmp_path)
    tiny_lm.tokenizer.save_pretrained(tmp_path)
    again = text.load(path=str(tmp_path), profile="hub", device="cpu")  # how `hub` is tested offline
    assert again.generate("xyz", max_new_tokens=6) == tiny_lm.generate("xyz", max_new_tokens=6)
    with pytest.raises(GenAIError, match="Could not load"):
        text.load(path=str(tmp_path / "nothing"), profile="hub")
    assert "M params" in repr(tiny_lm)


@pytest.mark.offline
def test_smollm2_knows_the_capital_of_france(smol):
    answer = smol.chat("What is the capital of France?", max_new_tokens=20)
    assert "Paris" in answer


@pytest.mark.offline
def test_every_offline_registry_entry_loads():
    from transformers import AutoModel, AutoTokenizer

    from genai_lib import registry

    paths = registry.prepare_offline_models()
    for role, path in paths.items():
        AutoTokenizer.from_pretrained(path)
        AutoModel.from_pretrained(path)


PROMPTS = ["The quick brown fox", "a", "Once upon a time in a land far away", "xyz 123", "Hello"]


def test_generate_batch_equals_one_by_one_greedy(tiny_lm):
    one = [tiny_lm.generate(p, max_new_tokens=10) for p in PROMPTS]
    for batch_size in (1, 2, 16):  # uneven batches, so rows of very different lengths share a batch
        assert tiny_lm.generate_batch(PROMPTS, max_new_tokens=10, batch_size=batch_size) == one
    assert tiny_lm.tokenizer.padding_side == "right"  # restored after the call


def test_chat_batch_equals_chat_and_sampling_is_repeatable(tiny_lm):
    msgs = ["Hi", [{"role": "user", "content": "What is 2+2?"}], "Tell me a story"]
    assert tiny_lm.chat_batch(msgs, max_new_tokens=6, system="Be brief.") == \
        [tiny_lm.chat(m, max_new_tokens=6, system="Be brief.") for m in msgs]
    cfg = text.GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, seed=3)
    assert tiny_lm.generate_batch(PROMPTS, cfg) == tiny_lm.generate_batch(PROMPTS, cfg)
    assert len(set(tiny_lm.generate_batch(["abc"] * 6, cfg))) > 1  # rows draw different random numbers


class _EndAfterARun:
    """A logits processor that ends a row (forces its end-of-text token) once it repeated its last token
    ``2 + token % 9`` times (the tiny random model repeats one token over and over).

    The rule depends only on the row's own tokens, so rows end at different steps, the same ones in a
    batch as alone.
    """

    def __init__(self, eos: int) -> None:
        self.eos = eos

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for b, row in enumerate(input_ids.tolist()):
            run = next((i for i, t in enumerate(reversed(row)) if t != row[-1]), len(row))
            if run >= 2 + row[-1] % 9:
                scores[b] = float("-inf")
                scores[b, self.eos] = 0.0
        return scores


def test_finished_rows_leave_the_batch_between_chunks_and_greedy_tokens_do_not_change(tiny_lm, monkeypatch):
    ends = [_EndAfterARun(text._eos_ids(tiny_lm.model)[0])]
    one = [tiny_lm.generate_batch([p], max_new_tokens=20, batch_size=1, logits_processor=ends) for p in PROMPTS]
    monkeypatch.setattr(text, "DECODE_CHUNK", 10**6)                           # one generate call per batch
    whole = tiny_lm.generate_batch(PROMPTS, max_new_tokens=20, logits_processor=ends)
    rows = []                                                                  # batch rows of every forward pass
    forward = tiny_lm.model.forward
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **kw: rows.append(kw["input_ids"].shape[0]) or forward(*a, **kw))
    monkeypatch.setattr(text, "DECODE_CHUNK", 3)
    ragged = tiny_lm.generate_batch(PROMPTS, max_new_tokens=20, logits_processor=ends)
    assert ragged == whole == [o[0] for o in one]
    lengths = {len(tiny_lm.tokenizer(o, add_special_tokens=False).input_ids) for o in ragged}
    assert len(lengths) > 2 and max(lengths) > 3                               # rows ended in different chunks
    assert rows[0] == len(PROMPTS) and min(rows) < len(PROMPTS) and rows == sorted(rows, reverse=True)


def test_done_stops_a_row_early_and_keeps_what_it_had(tiny_lm, monkeypatch):
    monkeypatch.setattr(text, "DECODE_CHUNK", 4)
    full = tiny_lm.generate_batch(PROMPTS, max_new_tokens=16)
    seen = []
    short = tiny_lm.generate_batch(PROMPTS, max_new_tokens=16,
                                   done=lambda i, t: seen.append(i) or i % 2 == 0)    # rows 0, 2, 4 are done
    assert set(seen) == set(range(len(PROMPTS)))
    for i, (a, b) in enumerate(zip(full, short)):
        assert a.startswith(b) and (a == b) == (i % 2 == 1)                    # even rows stop after 4 tokens


# ------------------------------------------------------------------ shared prompt prefixes
SHARED = "Worked examples come first, the same in every row: one two three four five six seven eight nine. "
PREFIXED = [SHARED + q for q in ("Q1 alpha", "Q2 beta gamma", "Q3", "Q4 delta")] + \
    ["short", "an unrelated prompt of its own"] + [SHARED + "Q1 alpha"] * 2


@pytest.mark.parametrize("ids, minimum, expected", [
    ([[1, 2, 3, 4], [1, 2, 3, 5], [9, 9]], 2, [3, 3, 0]),              # two rows share three tokens
    ([[1, 2, 3, 4], [1, 2, 3, 5], [9, 9]], 4, [0, 0, 0]),              # ... fewer than the minimum
    ([[1, 2, 3, 4], [1, 2, 3, 5], [9, 9]], 3, [3, 3, 0]),              # ... exactly the minimum
    ([[1, 2, 3], [1, 2, 3]], 1, [2, 2]),                                # identical rows keep their last token
    ([[5, 1, 2], [1, 2, 7], [5, 1, 2, 8]], 1, [2, 0, 3]),               # the longest match with any other row
    ([[1, 2, 3], [1, 2, 4]], 0, [0, 0]),                                # minimum 0 turns sharing off
    ([[1, 2]], 1, [0]),
    ([], 1, []),
])
def test_shared_prefix_lengths_by_hand(ids, minimum, expected):
    assert text.shared_prefix_lengths(ids, minimum) == expected


def _forward_tokens(lm, monkeypatch):
    """Count the token positions every forward pass of ``lm`` computes (a list that grows)."""
    seen = []
    forward = lm.model.forward
    monkeypatch.setattr(lm.model, "forward", lambda *a, **kw: seen.append(kw["input_ids"].numel()) or forward(*a, **kw))
    return seen


def test_shared_prefixes_are_computed_once_and_change_no_token(tiny_lm, monkeypatch):
    one = [tiny_lm.generate(p, max_new_tokens=10) for p in PREFIXED]
    sampled = text.GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, seed=3)
    monkeypatch.setattr(text, "SHARED_PREFIX_MIN", 0)                          # sharing off: the plain batch
    plain_sampled = tiny_lm.generate_batch(PREFIXED, sampled)
    seen = _forward_tokens(tiny_lm, monkeypatch)
    assert tiny_lm.generate_batch(PREFIXED, max_new_tokens=10) == one
    plain_prefill = seen[0]
    monkeypatch.setattr(text, "SHARED_PREFIX_MIN", 16)
    seen.clear()
    assert tiny_lm.generate_batch(PREFIXED, max_new_tokens=10) == one
    prefix_len = len(tiny_lm.tokenizer(SHARED, add_special_tokens=False).input_ids)
    assert seen[0] <= 3 * (prefix_len + 5)                                     # a few distinct prefixes, once each
    assert seen[0] + seen[1] < 0.6 * plain_prefill                             # prefixes + the rest of every row
    assert tiny_lm.prefill_positions(PREFIXED) == {"plain": plain_prefill, "shared": seen[0] + seen[1]}
    assert tiny_lm.generate_batch(PREFIXED, sampled) == plain_sampled          # the same draws, too
    ends = [_EndAfterARun(text._eos_ids(tiny_lm.model)[0])]
    monkeypatch.setattr(text, "DECODE_CHUNK", 3)                               # rows leave with their shared cache
    alone = [tiny_lm.generate_batch([p], max_new_tokens=20, logits_processor=ends)[0] for p in PREFIXED]
    assert tiny_lm.generate_batch(PREFIXED, max_new_tokens=20, logits_processor=ends) == alone


def test_sharing_that_would_compute_more_falls_back_to_the_plain_batch(tiny_lm):
    assert tiny_lm._prefill_shared(PREFIXED) is not None
    long_alone = "a long prompt that shares nothing with the others, " * 6
    assert tiny_lm._prefill_shared([SHARED + "Q1", SHARED + "Q2", long_alone]) is None
    assert tiny_lm._prefill_shared(["no two", "rows share", "a prefix"]) is None
    assert tiny_lm.prefill_positions(["no two", "rows share"]) == {"plain": 20, "shared": 20}
    assert tiny_lm.prefill_positions([]) == {"plain": 0, "shared": 0}
    plan = text.plan_prefixes([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6], [1, 2, 3, 4, 7, 8], [9, 9, 9]], 2)
    assert plan.prefixes == [(1, 2, 3, 4)] and plan.share == [4, 4, 4, 0] and plan.group == [0, 0, 0, 0]
    assert (plan.width, plan.rest, plan.positions) == (4, 3, 4 + 4 * 3)       # against 4 rows x 6 plain
    plan = text.plan_prefixes([[1, 2, 3, 4, 5], [7, 8, 9, 6], [1, 2, 3, 4, 6], [7, 8, 9, 5], [3]], 2)
    assert plan.prefixes == [(1, 2, 3, 4), (7, 8, 9)] and plan.group == [0, 1, 0, 1, 0]
    assert plan.share == [4, 3, 4, 3, 0] and (plan.width, plan.rest, plan.positions) == (4, 1, 2 * 4 + 5 * 1)
    assert text.plan_prefixes([[1, 2, 3, 4], [1, 2, 3, 5], [6, 6, 6, 6]], 3) is None   # 3 + 3 x 3 = 3 x 4 plain


def test_beam_search_does_not_share_prefixes(tiny_lm, monkeypatch):
    seen = _forward_tokens(tiny_lm, monkeypatch)
    beams = tiny_lm.generate_batch(PREFIXED[:3], max_new_tokens=4, num_beams=2)
    assert beams == [tiny_lm.generate(p, max_new_tokens=4, num_beams=2) for p in PREFIXED[:3]]
    assert seen[0] % 2 == 0 and seen[0] // 2 >= 3 * len(SHARED) // 4          # one pass over all beam rows


def test_generate_batch_bad_input(tiny_lm):
    with pytest.raises(GenAIError, match="list"):
        tiny_lm.generate_batch("one prompt")
    with pytest.raises(GenAIError, match="empty"):
        tiny_lm.generate_batch(["ok", " "])
    with pytest.raises(GenAIError, match="batch_size"):
        tiny_lm.generate_batch(["ok"], batch_size=0)
    assert tiny_lm.generate_batch([]) == []


@pytest.mark.offline
def test_smollm2_batch_equals_one_by_one(smol_fp32):
    qs = ["What is the capital of France?", "What is 12 plus 7?", "Name a primary colour."]
    assert smol_fp32.chat_batch(qs, max_new_tokens=12) == [smol_fp32.chat(q, max_new_tokens=12) for q in qs]


@pytest.mark.offline
def test_smollm2_rows_that_end_early_leave_the_batch_with_the_same_replies(smol_fp32, monkeypatch):
    qs = ["What is the capital of France?", "Explain in two sentences why the sky is blue."]
    monkeypatch.setattr(text, "DECODE_CHUNK", 40)
    whole = smol_fp32.chat_batch(qs, max_new_tokens=40)
    monkeypatch.setattr(text, "DECODE_CHUNK", 4)
    assert smol_fp32.chat_batch(qs, max_new_tokens=40) == whole
    assert len(smol_fp32.tokenizer(whole[0]).input_ids) < 36 < len(smol_fp32.tokenizer(whole[1]).input_ids)  # one left early


def _last_logprobs(lm, prompts):
    """Next-token log-probs after each prompt: the padded batch the way ``generate`` runs it, and alone."""
    lm.tokenizer.padding_side = "left"
    enc = lm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)                  # (B, T): positions skip padding
    with torch.no_grad():
        batch = lm.model(**enc, position_ids=pos).logits[:, -1].float().log_softmax(-1)      # (B, V)
        alone = torch.stack([lm.model(**lm._encode(p)).logits[0, -1].float().log_softmax(-1) for p in prompts])
    return batch, alone


@pytest.mark.offline
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.bfloat16, 0.5)])
def test_smollm2_padded_rows_predict_like_single_prompts(smol, smol_fp32, dtype, tolerance):
    """Left padding is masked out in both precisions; bf16 only rounds differently in a padded batch.

    Measured on SmolLM2 with these prompts: float32 differs by about 2e-5 nats, bfloat16 by up to about
    0.2, and a batch whose padding is NOT masked by about 2 (checked below), so 0.5 separates rounding
    from a masking bug.
    """
    lm = smol_fp32 if dtype == torch.float32 else text.LanguageModel(
        smol.tokenizer, copy.deepcopy(smol_fp32.model).to(torch.bfloat16), "bf16 copy", "offline")
    prompts = [lm.format_chat(q) for q in ("What is the capital of France?", "What is 12 plus 7?",
                                           "Explain in two sentences why the sky is blue, please, for a child.")]
    batch, alone = _last_logprobs(lm, prompts)
    top = alone.topk(20, dim=-1).indices                                       # (B, 20): the tokens that matter
    assert (batch.gather(1, top) - alone.gather(1, top)).abs().max() < tolerance
    assert torch.equal(batch.argmax(-1), alone.argmax(-1))
    enc = lm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():                                                      # the same batch, padding NOT masked
        unmasked = lm.model(input_ids=enc["input_ids"]).logits[:, -1].float().log_softmax(-1)
    assert (unmasked[:2].gather(1, top[:2]) - alone[:2].gather(1, top[:2])).abs().max() > 1.0


def _shared_last_logprobs(lm, prompts, positions_count_padding=False):
    """Next-token log-probs after each prompt through the shared-prefix layout, and each prompt alone.

    ``positions_count_padding`` gives the rows positions that count the padding: the bug the layout's
    position ids exist to avoid (a control that must move the log-probs).
    """
    enc, cache = lm._prefill_shared(prompts)
    width = cache.get_seq_length()
    assert 0 < width < enc["input_ids"].shape[1]
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)                 # (B, T): positions skip padding
    if positions_count_padding:
        pos = torch.arange(enc["input_ids"].shape[1]).expand(len(prompts), -1)
    with torch.no_grad():
        logits = lm.model(input_ids=enc["input_ids"][:, width:], attention_mask=enc["attention_mask"],
                          position_ids=pos[:, width:], **{lm._cache_arg(): cache}).logits
        alone = torch.stack([lm.model(**lm._encode(p)).logits[0, -1].float().log_softmax(-1) for p in prompts])
    return logits[:, -1].float().log_softmax(-1), alone                       # (B, V) each


def test_rows_of_two_shared_prefixes_predict_like_single_prompts(tiny_lm):
    """Two groups of rows, each with its own prefix, and a row that shares nothing: every row's KV cache
    holds its own prefix at the right positions. The tiny model in float32 agrees to about 5e-7; a
    layout whose positions count the padding moves a log-prob by 2e-4 or more, and rows given the other
    group's prefix by about 3e-2 (measured), so 2e-5 tells them apart."""
    first = "First worked examples, shared by two rows: one two three four five six seven. "
    second = "A second, different preamble that two other rows begin with: red green blue cyan. "
    prompts = [first + "Q1", first + "Q2 is longer", second + "Q3", second + "Q4 x", "alone here"]
    plan = text.plan_prefixes(tiny_lm.tokenizer(prompts, add_special_tokens=False)["input_ids"], text.SHARED_PREFIX_MIN)
    assert len(plan.prefixes) == 2 and plan.group[0] != plan.group[2] and plan.share[-1] == 0
    shared, alone = _shared_last_logprobs(tiny_lm, prompts)
    assert (shared - alone).abs().max() < 2e-5
    wrong, _ = _shared_last_logprobs(tiny_lm, prompts, positions_count_padding=True)
    assert (wrong - alone).abs().amax(-1)[:4].min() > 1e-4                    # every sharing row moves


@pytest.mark.offline
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.bfloat16, 0.5)])
def test_smollm2_rows_with_a_shared_few_shot_prefix_predict_like_single_prompts(smol, smol_fp32, dtype, tolerance):
    """The shared-prefix layout ([prefix | padding | rest]) masks its padding and keeps positions right.

    Same bounds as the left-padding test above; a layout that got the positions wrong (counting the
    padding) moves the log-probs by far more than the bfloat16 bound (checked below).
    """
    from genai_lib import prompting

    lm = smol_fp32 if dtype == torch.float32 else text.LanguageModel(
        smol.tokenizer, copy.deepcopy(smol_fp32.model).to(torch.bfloat16), "bf16 copy", "offline")
    task = prompting.TASKS[0]
    prompts = [lm.format_chat(prompting.build_messages(task, q, "few_shot")) for q, _ in task.items[:3]]
    prompts.append(lm.format_chat("Name a primary colour."))                  # a row that shares nothing long
    shared, alone = _shared_last_logprobs(lm, prompts)
    unshifted, _ = _shared_last_logprobs(lm, prompts, positions_count_padding=True)
    top = alone.topk(20, dim=-1).indices                                       # (B, 20)
    assert (shared.gather(1, top) - alone.gather(1, top)).abs().max() < tolerance
    assert torch.equal(shared.argmax(-1), alone.argmax(-1))
    assert (unshifted.gather(1, top) - alone.gather(1, top)).abs().max() > 1.0
    if dtype == torch.float32:                                                 # and the replies are the same
        assert lm.generate_batch(prompts, max_new_tokens=12) == [lm.generate(p, max_new_tokens=12) for p in prompts]


def test_decode_speed_and_roofline_figures():
    """decode_speed measures real decoding: positive rates, a roofline from the model's bytes and bandwidth."""
    lm = text.load("chat", profile="tiny")
    params = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    assert text.bytes_per_step(lm.model) == params                        # tiny model: tied embedding
    assert text.bytes_per_step(lm.model, batch=2, context=10) > params
    one = text.decode_speed(lm, "Once upon a time", new_tokens=4, batch=1, repeats=1)
    two = text.decode_speed(lm, "Once upon a time", new_tokens=4, batch=2, repeats=1,
                            cache_implementation="static")
    for r in (one, two):
        assert r["tokens_per_s"] > 0 and r["roofline_tokens_per_s"] > 0 and r["bandwidth_GBps"] > 0
        assert r["fraction_of_roofline"] == pytest.approx(r["tokens_per_s"] / r["roofline_tokens_per_s"])
    assert two["batch"] == 2


# ------------------------------------------------------------------ GenerationConfig, by hand
@pytest.mark.parametrize("kwargs", [
    dict(max_new_tokens=1), dict(max_new_tokens=text.MAX_NEW_TOKENS_LIMIT), dict(temperature=100.0),
    dict(temperature=1e-6), dict(top_k=0), dict(top_k=50), dict(top_p=1.0), dict(top_p=1e-6),
    dict(repetition_penalty=10.0), dict(repetition_penalty=1e-6), dict(num_beams=1), dict(num_beams=16),
    dict(seed=None), dict(seed=0), dict(seed=12345),
])
def test_generation_config_accepts_the_edges(kwargs):
    text.GenerationConfig(**kwargs).validate()


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=True), "integer"),
    (dict(max_new_tokens=text.MAX_NEW_TOKENS_LIMIT + 1), "between 1 and 4096"),
    (dict(max_new_tokens=0), "between 1 and"),
    (dict(temperature=100.01), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=2.0), "top_k"),
    (dict(top_k=-1), "top_k"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.0001), "top_p"),
    (dict(repetition_penalty=10.01), "repetition_penalty"),
    (dict(repetition_penalty=-1.0), "repetition_penalty"),
    (dict(num_beams=17), "num_beams"),
    (dict(num_beams=2.0), "num_beams"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
])
def test_generation_config_rejects_each_bad_option(kwargs, message):
    with pytest.raises(GenAIError, match=message):
        text.GenerationConfig(**kwargs).validate()


def test_to_hf_passes_sampling_options_only_when_sampling():
    greedy = text.GenerationConfig(max_new_tokens=7, temperature=0.5, top_k=3, top_p=0.8, repetition_penalty=1.2,
                                   num_beams=2)
    assert greedy.to_hf() == {"max_new_tokens": 7, "do_sample": False, "num_beams": 2, "repetition_penalty": 1.2,
                              "temperature": None, "top_k": None, "top_p": None}
    sampled = text.GenerationConfig(max_new_tokens=9, do_sample=True, temperature=0.5, top_k=3, top_p=0.8)
    assert sampled.to_hf() == {"max_new_tokens": 9, "do_sample": True, "num_beams": 1, "repetition_penalty": 1.0,
                               "temperature": 0.5, "top_k": 3, "top_p": 0.8}


def test_preset_follows_the_active_profile(tiny):
    assert text.preset() == text.GenerationConfig(max_new_tokens=8)
    assert text.preset(top_k=4) == text.GenerationConfig(max_new_tokens=8, top_k=4)
    assert text.preset("hub") == text.GenerationConfig(max_new_tokens=64)


# ------------------------------------------------------------------ LanguageModel pieces without a real model
class _PlainTokenizer:
    """A tokenizer without a chat template or a padding token (like GPT-2's)."""

    pad_token_id = None
    eos_token = "<eos>"
    chat_template = None


def test_language_model_defaults_without_a_chat_template(tiny):
    lm = text.LanguageModel(_PlainTokenizer(), torch.nn.Linear(2, 2).train(), name="plain")
    assert lm.profile == "tiny" and not lm.model.training
    assert lm.tokenizer.pad_token == "<eos>"
    assert text.LanguageModel(_PlainTokenizer(), torch.nn.Linear(2, 2), name="p", profile="hub").profile == "hub"
    assert lm.format_chat("Hi") == "user: Hi\nassistant:"
    assert lm.format_chat([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                          system="Sys") == "system: Sys\nuser: a\nassistant: b\nassistant:"
    with pytest.raises(GenAIError, match="content"):
        lm.format_chat(["not a dict"])
    with pytest.raises(GenAIError, match="content"):
        lm.format_chat([{"role": "user"}])
    with pytest.raises(GenAIError, match="empty"):
        lm._encode(None)


def test_language_model_keeps_an_existing_padding_token(tiny_lm):
    assert tiny_lm.tokenizer.pad_token == "[PAD]"
    assert repr(tiny_lm) == f"LanguageModel('genai-lib/tiny-random-llama', {tiny_lm.model.num_parameters() / 1e6:.1f} M params, float32, device=cpu)"


def test_config_overrides_apply_to_a_given_config_and_to_the_preset(tiny_lm):
    base = text.GenerationConfig(max_new_tokens=5, top_k=2)
    assert tiny_lm._config(base, {"top_k": 3}) == text.GenerationConfig(max_new_tokens=5, top_k=3)
    assert tiny_lm._config(None, {"top_k": 3}) == text.GenerationConfig(max_new_tokens=8, top_k=3)
    with pytest.raises(GenAIError, match="top_k"):
        tiny_lm._config(base, {"top_k": -2})


def test_unseeded_sampling_runs_and_uses_the_global_generator(tiny_lm):
    torch.manual_seed(1)
    a = tiny_lm.generate("abc", max_new_tokens=6, do_sample=True, temperature=2.0, seed=None)
    b = tiny_lm.generate_batch(["abc"], max_new_tokens=6, do_sample=True, temperature=2.0, seed=None)[0]
    torch.manual_seed(1)
    assert tiny_lm.generate("abc", max_new_tokens=6, do_sample=True, temperature=2.0, seed=None) == a
    assert tiny_lm.generate_batch(["abc"], max_new_tokens=6, do_sample=True, temperature=2.0, seed=None)[0] == b
    torch.manual_seed(1)
    pieces = "".join(tiny_lm.stream("abc", max_new_tokens=6, do_sample=True, temperature=2.0, seed=None))
    assert pieces == a


def test_next_token_distribution_equals_a_hand_filtered_softmax(tiny_lm):
    enc = tiny_lm.tokenizer("ab", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = tiny_lm.model(**enc).logits[0, -1].double()
    for temperature, top_k, top_p in ((0.7, 0, 1.0), (1.3, 5, 1.0), (1.0, 0, 0.3), (0.9, 8, 0.6)):
        z = logits / temperature
        if top_k:
            z[z < z.sort(descending=True).values[top_k - 1]] = float("-inf")
        p = torch.softmax(z, dim=-1)
        if top_p < 1.0:
            kept, total = set(), 0.0
            for i in p.argsort(descending=True).tolist():  # smallest set whose mass reaches top_p
                if total >= top_p:
                    break
                kept.add(i)
                total += float(p[i])
            p = torch.tensor([float(p[i]) if i in kept else 0.0 for i in range(len(p))], dtype=torch.double)
            p = p / p.sum()
        got = tiny_lm.next_token_distribution("ab", temperature=temperature, top_k=top_k, top_p=top_p, k=6)
        top = p.topk(6)
        assert [t for t, _ in got] == [tiny_lm.tokenizer.decode([int(i)]) for i in top.indices]
        assert [q for _, q in got] == pytest.approx(top.values.tolist(), abs=1e-5)
    with pytest.raises(GenAIError, match="temperature"):
        tiny_lm.next_token_distribution("ab", temperature=0)
    assert len(tiny_lm.next_token_distribution("ab", k=10**6)) == tiny_lm.model.config.vocab_size


def test_perplexity_of_two_tokens(tiny_lm):
    assert tiny_lm.perplexity("ab") > 1.0  # "ab" is two tokens: the shortest text with a prediction to score


def test_load_uses_float32_on_cpu():
    lm = text.load("chat", profile="tiny", device="cpu")
    assert next(lm.model.parameters()).dtype == torch.float32 and lm.profile == "tiny"
    assert lm.name == "genai-lib/tiny-random-llama"


def test_bfloat16_model_decodes_in_batches_and_alone(monkeypatch):
    monkeypatch.setenv("GENAI_DTYPE", "bfloat16")        # what a CPU with native bf16 gets in offline
    lm = text.load("chat", profile="tiny", device="cpu")
    assert next(lm.model.parameters()).dtype == torch.bfloat16 and "bfloat16" in repr(lm)
    prompts = ["a b c", "hello there, how are you", "x"]
    batch = lm.generate_batch(prompts, batch_size=3, max_new_tokens=6)
    assert len(batch) == 3 and all(isinstance(r, str) for r in batch)
    assert lm.generate(prompts[2], max_new_tokens=6) == batch[2]  # the longest-padded row still matches
    assert math.isfinite(lm.perplexity("a b c d"))


# ------------------------------------------------------------------ decoding speed, with a fake clock
class _Clock:
    """A stand-in for the ``time`` module whose perf_counter steps through given intervals."""

    def __init__(self, intervals):
        self.times = [0.0]
        for dt in intervals:
            self.times += [self.times[-1] + 100.0, self.times[-1] + 100.0 + dt]  # a pause, then the timed span
        self.times = iter(self.times[1:])

    def perf_counter(self):
        return next(self.times)


class _TinyNet(torch.nn.Module):
    def __init__(self, config, dtype=torch.float32):
        super().__init__()
        self.config = config
        self.emb = torch.nn.Embedding(10, 4).to(dtype)     # 40 numbers
        self.head = torch.nn.Linear(4, 3).to(dtype)        # 15 numbers

    def get_input_embeddings(self):
        return self.emb


def test_bytes_per_step_by_hand():
    from types import SimpleNamespace as NS

    gpt2_like = _TinyNet(NS(n_head=4, n_layer=3, hidden_size=32, tie_word_embeddings=True))
    assert text.bytes_per_step(gpt2_like) == 55 * 4
    assert type(text.bytes_per_step(gpt2_like, context=5)) is int                   # bytes: a whole number
    assert text.bytes_per_step(gpt2_like, context=5) == 55 * 4 + 1 * 5 * (2 * 3 * 4 * 8 * 4)  # one row by default
    assert text.bytes_per_step(gpt2_like, batch=2, context=5) == 55 * 4 + 2 * 5 * (2 * 3 * 4 * 8 * 4)
    llama_like = _TinyNet(NS(num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_size=32,
                             num_hidden_layers=2, tie_word_embeddings=False), dtype=torch.float16)
    assert text.bytes_per_step(llama_like) == 15 * 2                   # the untied input embedding is not read
    assert text.bytes_per_step(llama_like, batch=3, context=7) == 15 * 2 + 3 * 7 * (2 * 2 * 2 * 16 * 2)
    no_flag = _TinyNet(NS(num_attention_heads=2, num_key_value_heads=None, head_dim=None, hidden_size=8,
                          num_hidden_layers=1))
    assert text.bytes_per_step(no_flag, batch=1, context=1) == 15 * 4 + 2 * 1 * 2 * 4 * 4


def test_memory_bandwidth_is_the_best_of_six_copies(monkeypatch):
    monkeypatch.setattr(text, "time", _Clock([5.0, 4.0, 3.0, 2.5, 2.0, 2.2, 0.5]))  # a 7th copy would be faster
    assert text.memory_bandwidth("cpu", mib=1) == 2 * 2**20 / 2.0                   # read + write 1 MiB in 2 s


@pytest.mark.parametrize("cache, compile_config, extra", [
    (None, None, {}),
    ("static", None, {"cache_implementation": "static", "disable_compile": True}),
    ("static", "COMPILE", {"cache_implementation": "static", "compile_config": "COMPILE"}),
    (None, "COMPILE", {"compile_config": "COMPILE"}),
])
def test_decode_speed_arithmetic_with_a_fake_clock(tiny_lm, monkeypatch, cache, compile_config, extra):
    calls, devices = [], []
    monkeypatch.setattr(tiny_lm.model, "generate", lambda ids, **kw: calls.append((ids, kw)))
    monkeypatch.setattr(text, "memory_bandwidth", lambda dev: devices.append(dev) or 1e9)
    monkeypatch.setattr(text, "time", _Clock([10.0, 3.0, 0.5, 2.0]))  # warm-up, then three timed runs
    r = text.decode_speed(tiny_lm, "Once upon a time", new_tokens=6, batch=2, repeats=3,
                          cache_implementation=cache, compile_config=compile_config)
    prompt_len = len(tiny_lm.tokenizer("Once upon a time", add_special_tokens=False).input_ids)
    assert len(calls) == 4 and devices == [torch.device("cpu")]
    for ids, kw in calls:
        assert ids.shape == (2, prompt_len) and torch.equal(ids[0], ids[1])
        assert torch.equal(kw.pop("attention_mask"), torch.ones(2, prompt_len, dtype=torch.long))
        assert kw == {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False,
                      "pad_token_id": tiny_lm.tokenizer.pad_token_id, **extra}
    params = sum(p.numel() * 4 for p in tiny_lm.model.parameters())   # float32, tied embedding
    per_token = 2 * 2 * 2 * 8 * 4                                       # K and V, 2 layers, 2 KV heads of 8, 4 bytes
    step = params + 2 * (prompt_len + 3) * per_token                    # context: the prompt plus half the new tokens
    assert r["seconds"] == 0.5 and r["warmup_s"] == 10.0 and r["batch"] == 2
    assert r["tokens_per_s"] == pytest.approx(2 * 6 / 0.5)
    assert r["roofline_tokens_per_s"] == pytest.approx(2 * 1e9 / step)
    assert r["fraction_of_roofline"] == pytest.approx(r["tokens_per_s"] / r["roofline_tokens_per_s"])
    assert r["bandwidth_GBps"] == pytest.approx(1.0)


class _Params(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(n))


def test_repr_counts_parameters_in_millions():
    lm = text.LanguageModel(_PlainTokenizer(), _Params(1_050_001), name="m", profile="tiny")
    assert repr(lm) == "LanguageModel('m', 1.1 M params, float32, device=cpu)"


def test_load_defaults_to_the_chat_role():
    assert text.load(profile="tiny", device="cpu").name == text.load("chat", profile="tiny", device="cpu").name


def test_stream_takes_a_config_and_leaves_special_tokens_out(tiny_lm):
    cfg = text.GenerationConfig(max_new_tokens=40, do_sample=True, temperature=50.0, seed=2)
    enc = tiny_lm._encode("Hello")
    torch.manual_seed(0)
    raw = tiny_lm.model.generate(**enc, **tiny_lm._hf_kwargs(cfg), pad_token_id=tiny_lm.tokenizer.pad_token_id)
    new = raw[0, enc["input_ids"].shape[1]:].tolist()
    assert set(new) & set(tiny_lm.tokenizer.all_special_ids)  # this draw does produce a special token
    assert "".join(tiny_lm.stream("Hello", cfg)) == tiny_lm.generate("Hello", cfg)
    short = text.GenerationConfig(max_new_tokens=3)
    assert "".join(tiny_lm.stream("Hello", short)) == tiny_lm.generate("Hello", short)


def test_stream_chat_is_stream_on_the_templated_conversation(tiny_lm, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny_lm, "stream", lambda prompt, config=None, **kw: calls.append((prompt, config, kw)) or "S")
    cfg = text.GenerationConfig(max_new_tokens=3)
    assert tiny_lm.stream_chat("Hi", cfg, system="Be brief.", top_k=2) == "S"
    assert calls == [(tiny_lm.format_chat("Hi", system="Be brief."), cfg, {"top_k": 2})]


def test_next_token_distribution_defaults_are_the_plain_softmax(tiny_lm):
    enc = tiny_lm.tokenizer("ab", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        p = torch.softmax(tiny_lm.model(**enc).logits[0, -1].double(), dim=-1)
    got = tiny_lm.next_token_distribution("ab")
    assert [q for _, q in got] == pytest.approx(p.topk(10).values.tolist(), abs=1e-6)


def test_batches_hold_sixteen_prompts_by_default(tiny_lm, monkeypatch):
    sizes = []
    real = tiny_lm.model.generate
    monkeypatch.setattr(tiny_lm.model, "generate",
                        lambda input_ids, **kw: sizes.append(input_ids.shape[0]) or real(input_ids, **kw))
    prompts = [f"p{i}" for i in range(17)]
    assert len(tiny_lm.generate_batch(prompts, max_new_tokens=1)) == 17
    assert len(tiny_lm.chat_batch(prompts, max_new_tokens=1)) == 17
    assert sizes == [16, 1, 16, 1]


def test_decode_speed_and_memory_bandwidth_defaults(tiny_lm, monkeypatch):
    calls, mibs = [], []
    monkeypatch.setattr(tiny_lm.model, "generate", lambda ids, **kw: calls.append((ids.shape, kw["max_new_tokens"])))
    real_bandwidth = text.memory_bandwidth
    monkeypatch.setattr(text, "time", _Clock([1.0, 0.5, 0.25, 2.0] + [1.0] * 6))  # warm-up, two runs, then copies
    monkeypatch.setattr(text, "memory_bandwidth", lambda dev: mibs.append(dev) or real_bandwidth(dev, mib=1))
    r = text.decode_speed(tiny_lm, "Hello")
    n = len(tiny_lm.tokenizer("Hello", add_special_tokens=False).input_ids)
    assert calls == [((1, n), 16)] * 3 and r["batch"] == 1 and r["seconds"] == 0.25
    assert r["tokens_per_s"] == pytest.approx(16 / 0.25) and r["bandwidth_GBps"] == pytest.approx(2 * 2**20 / 1e9)
    monkeypatch.setattr(text, "time", _Clock([1.0, 1.0, 0.5, 1.0, 1.0, 1.0]))
    monkeypatch.setattr(text.torch, "randn", lambda n, device: torch.zeros(1).expand(n))  # no 256 MiB to fill
    assert real_bandwidth("cpu") == 2 * 256 * 2**20 / 0.5                        # 256 MiB by default


class _NoTemplateAttribute:
    """A tokenizer object that has no ``chat_template`` attribute at all."""

    pad_token_id = 0


def test_format_chat_without_a_chat_template_attribute():
    lm = text.LanguageModel(_NoTemplateAttribute(), torch.nn.Linear(1, 1), name="n", profile="tiny")
    assert lm.format_chat("Hi", system="S") == "system: S\nuser: Hi\nassistant:"


def test_chat_and_chat_batch_delegate_with_every_option(tiny_lm, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny_lm, "generate", lambda prompt, config=None, **kw: calls.append((prompt, config, kw)) or " r ")
    monkeypatch.setattr(tiny_lm, "generate_batch",
                        lambda prompts, config=None, **kw: calls.append((prompts, config, kw)) or [" a ", "b "])
    cfg = text.GenerationConfig(max_new_tokens=3)
    assert tiny_lm.chat("Hi", cfg, system="S", top_k=2) == "r"
    templated = [tiny_lm.format_chat("Hi", system="S"), tiny_lm.format_chat("Yo", system="S")]
    assert calls.pop() == (templated[0], cfg, {"top_k": 2})
    proc, stop = object(), lambda i, t: False
    assert tiny_lm.chat_batch(["Hi", "Yo"], cfg, system="S", batch_size=5, progress=True,
                              logits_processor=[proc], done=stop, top_k=2) == ["a", "b"]
    assert calls.pop() == (templated, cfg, {"batch_size": 5, "progress": True, "logits_processor": [proc],
                                            "done": stop, "top_k": 2})


class _SpyTokenizer(_PlainTokenizer):
    """Records how it is called; the model's prompt must never get special tokens added silently."""

    def __init__(self):
        self.calls = []

    def __call__(self, prompt, **kw):
        self.calls.append((prompt, kw))
        return {"input_ids": torch.tensor([[5, 6]])}


def test_encode_adds_no_special_tokens():
    tok = _SpyTokenizer()
    lm = text.LanguageModel(tok, torch.nn.Linear(1, 1), name="spy", profile="tiny")
    assert torch.equal(lm._encode("ab")["input_ids"], torch.tensor([[5, 6]]))
    assert tok.calls == [("ab", {"return_tensors": "pt", "add_special_tokens": False})]


@pytest.mark.parametrize("device, asked, dtype", [("cpu", None, "policy:cpu:tiny"), ("cuda:3", None, "policy:resolved:cuda:3:tiny"),
                                                  ("cpu", torch.bfloat16, torch.bfloat16)])
def test_load_asks_the_registry_for_the_right_device_and_precision(monkeypatch, device, asked, dtype):
    calls = []
    monkeypatch.setattr(text, "get_device", lambda prefer: f"resolved:{prefer}" if prefer != "cpu" else "cpu")
    monkeypatch.setattr(text, "model_dtype", lambda dev, profile: f"policy:{dev}:{profile}")
    monkeypatch.setattr(text, "load_pretrained", lambda src, cls, what, dev, dtype: calls.append(
        (src.name, cls.__name__, what, dev, dtype)) or (_PlainTokenizer(), torch.nn.Linear(1, 1)))
    lm = text.load("chat", profile="tiny", device=device, dtype=asked)
    want_dev = "cpu" if device == "cpu" else "resolved:cuda:3"
    assert calls == [("genai-lib/tiny-random-llama", "AutoModelForCausalLM", "a causal language model", want_dev,
                      dtype)]
    assert lm.name == "genai-lib/tiny-random-llama" and lm.profile == "tiny"

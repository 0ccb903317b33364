"""Bias probe, watermark and safety filter, in the tiny profile."""

import math

import numpy as np
import pytest
import torch

from genai_lib import responsible as rs
from genai_lib.core import GenAIError

V = 5000


def test_green_list_has_the_right_size_and_depends_on_key_and_context():
    wm = rs.Watermark(key=1, gamma=0.25)
    mask = wm.green_mask(torch.tensor([0, 1, 2, 3]), V)
    assert mask.shape == (4, V)
    assert abs(mask.float().mean().item() - 0.25) < 0.02
    assert not torch.equal(mask[0], mask[1])  # context changes the list
    assert torch.equal(mask, wm.green_mask(torch.tensor([0, 1, 2, 3]), V))  # deterministic
    other = rs.Watermark(key=2, gamma=0.25).green_mask(torch.tensor([0, 1, 2, 3]), V)
    assert (mask != other).float().mean() > 0.2
    prev, tok = torch.tensor([0, 1, 2, 3]), torch.tensor([10, 20, 30, 4999])
    assert torch.equal(wm.is_green(prev, tok), mask[torch.arange(4), tok])


def test_processor_adds_delta_to_green_logits_only():
    wm = rs.Watermark(delta=3.0)
    ids = torch.tensor([[5, 7, 9]])
    scores = torch.zeros(1, V)
    out = wm(ids, scores)
    green = wm.green_mask(torch.tensor([9]), V)
    assert torch.all(out[green] == 3.0) and torch.all(out[~green] == 0.0)


def test_z_score_formula_and_null_distribution():
    wm = rs.Watermark(gamma=0.25)
    rng = np.random.default_rng(0)
    zs = [wm.score(rng.integers(V, size=80).tolist(), V)["z"] for _ in range(300)]
    assert abs(np.mean(zs)) < 0.25 and 0.7 < np.std(zs) < 1.3  # ~ N(0, 1) on unwatermarked text
    assert max(zs) < 4.0  # no false positive at the detection threshold
    s = wm.score([1, 2, 3, 4, 5], V)
    t, g = s["tokens"], s["green"]
    assert t == 4 and s["z"] == pytest.approx((g - 0.25 * t) / math.sqrt(t * 0.25 * 0.75))


def test_watermark_plugs_into_generate(tiny_lm):
    from transformers import LogitsProcessorList

    wm = rs.Watermark(delta=8.0)
    vocab = tiny_lm.model.config.vocab_size
    enc = tiny_lm.tokenizer(["hello"], return_tensors="pt")
    for processors, detected in ((LogitsProcessorList([wm]), True), (LogitsProcessorList(), False)):
        torch.manual_seed(0)
        out = tiny_lm.model.generate(**enc, max_new_tokens=40, do_sample=True, top_k=0, logits_processor=processors,
                                     pad_token_id=tiny_lm.tokenizer.pad_token_id)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        assert (wm.score(new, vocab)["z"] > 4) is detected
    attacked = rs.substitute_tokens(new, 1.0, vocab, seed=1)
    assert len(attacked) == len(new)


@pytest.mark.offline
def test_watermarked_text_is_detected_from_text_alone(smol):
    wm = rs.Watermark()
    prompts = ["Describe a walk in a forest.", "Explain how a bicycle works."]
    marked = rs.sample_texts(smol, prompts, max_new_tokens=60, watermark=wm, seed=1)
    plain = rs.sample_texts(smol, prompts, max_new_tokens=60, seed=1)
    assert all(wm.detect(t, smol.tokenizer)["z"] > 4 for t in marked), marked
    assert all(wm.detect(t, smol.tokenizer)["z"] < 4 for t in plain), plain


def test_pronoun_preference_and_its_errors(tiny_lm):
    rows = rs.pronoun_preference(tiny_lm, ["nurse", "pilot"], ["The {subject} said"], pronouns=("x", "y"))
    assert len(rows) == 2 and all(math.isfinite(r["log_ratio"]) for r in rows)
    r = rows[0]
    assert r["log_ratio"] == pytest.approx(math.log(r["p_a"]) - math.log(r["p_b"]), abs=1e-4)
    # " he" and " she" are several tokens for the tiny byte-level tokenizer: scored as sequences,
    # compared here with an independent sum over the whole sentence's token log-probabilities
    (row,) = rs.pronoun_preference(tiny_lm, ["nurse"], ["The {subject} said"])
    tok = tiny_lm.tokenizer
    assert len(tok.encode(" she", add_special_tokens=False)) > 1

    def sentence_logprob(prompt, pronoun):
        p_ids = tok.encode(prompt, add_special_tokens=False)
        ids = torch.tensor([p_ids + tok.encode(pronoun, add_special_tokens=False)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_lm.model(input_ids=ids).logits[0].float(), -1)   # (T, V)
        return sum(float(logp[i - 1, ids[0, i]]) for i in range(len(p_ids), ids.shape[1]))

    expected = sentence_logprob("The nurse said", " he") - sentence_logprob("The nurse said", " she")
    assert row["log_ratio"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(GenAIError, match="non-empty"):
        rs.pronoun_preference(tiny_lm, ["nurse"], ["The {subject} said"], pronouns=("he", ""))
    with pytest.raises(GenAIError, match="slot"):
        rs.pronoun_preference(tiny_lm, ["nurse"], ["no slot"])


def test_permutation_test():
    assert rs.permutation_test([1, 2, 3], [1, 2, 3], n=500) > 0.9
    assert rs.permutation_test([0.0] * 10, [5.0] * 10, n=500) < 0.01


def test_filters_and_confusion():
    kw = rs.KeywordFilter(["bomb", "steal"])
    assert kw.flags(["How do I steal a car?", "Photobombing tips", "a bomb"]) == [True, False, True]

    def encode(texts):  # a tiny bag-of-letters embedding, normalised
        e = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts], float)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    ef = rs.EmbeddingFilter(encode, ["steal"], threshold=0.99)
    assert ef.flags(["steal", "least", "hello"]) == [True, True, False]  # anagrams: same letters
    assert ef.flags(["", "steal", "  "]) == [False, True, False]           # an empty answer is not unsafe
    assert ef.similarity(["", " "]).tolist() == [0.0, 0.0]
    c = rs.confusion([True, True, False, False], [True, False, True, False])
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (1, 1, 1, 1) and c["recall"] == 0.5
    with pytest.raises(GenAIError):
        rs.confusion([], [])
    with pytest.raises(GenAIError):
        rs.Watermark(gamma=1.5)

"""Text and speech metrics against hand-computed values."""

import math

import pytest

from genai_lib import evaluation as ev
from genai_lib.core import GenAIError


def test_bleu_identical_is_100_and_a_hand_computed_case():
    assert ev.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # 7-token hypothesis, 6-token reference: p1..p4 = 6/7, 5/6, 4/5, 3/4, no brevity penalty.
    expected = 100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert ev.bleu(["the cat sat on the mat"], ["the cat sat on the mat today"]) == pytest.approx(expected, abs=1e-3)


def test_bleu_brevity_penalty():
    # A 5-token hypothesis that is a prefix of a 6-token reference: precisions 1, BP = exp(1 - 6/5).
    score = ev.bleu(["the cat sat on the mat"], ["the cat sat on the"])
    assert score == pytest.approx(100 * math.exp(1 - 6 / 5), abs=1e-3)


def test_rouge_hand_computed():
    r = ev.rouge(["the cat sat"], ["the cat ran"])
    assert r["rouge1"] == pytest.approx(2 / 3)
    assert r["rouge2"] == pytest.approx(0.5)
    assert r["rougeL"] == pytest.approx(2 / 3)


def test_wer_hand_computed_and_normalised():
    # one substitution (sat -> sit) and one deletion (the) over six reference words
    assert ev.wer(["The cat sat on the mat."], ["the cat sit on mat"]) == pytest.approx(2 / 6)
    assert ev.wer(["Hello, world!"], ["hello world"]) == 0.0
    assert ev.normalize("  Well-known  CAFÉ, ok? ") == "well known café ok"


def test_metric_input_errors():
    with pytest.raises(GenAIError, match="as many"):
        ev.bleu(["a"], ["a", "b"])
    with pytest.raises(GenAIError, match="lists"):
        ev.wer("a b", "a b")
    with pytest.raises(GenAIError, match="empty"):
        ev.wer(["!!!"], ["x"])


def test_token_nll_matches_perplexity():
    from genai_lib import text

    lm = text.load("chat", profile="tiny")
    sample = "the cat sat on the mat and the dog sat on the rug"
    tokens, nll = ev.token_nll(lm, sample)
    assert len(tokens) == len(nll) == len(lm.tokenizer(sample, add_special_tokens=False)["input_ids"]) - 1
    assert all(v >= 0 for v in nll)
    assert math.exp(sum(nll) / len(nll)) == pytest.approx(lm.perplexity(sample), rel=1e-4)
    with pytest.raises(GenAIError, match="two tokens"):
        ev.token_nll(lm, "a")


def test_one_string_among_the_arguments_is_rejected():
    # "ab" has the length of ["a", "b"]: only the type check can catch it
    with pytest.raises(GenAIError, match="lists"):
        ev.wer("ab", ["a", "b"])
    with pytest.raises(GenAIError, match="lists"):
        ev.wer(["a", "b"], "ab")


def test_rouge_stems_words_and_averages_over_the_pairs():
    # Porter stemming: "cats" -> "cat", so the unigrams all match (2/3 without stemming)
    assert ev.rouge(["the cats ran"], ["the cat ran"])["rouge1"] == pytest.approx(1.0)
    # the mean of the per-pair F-measures: 2/3 for the first pair, 1 for the second
    r = ev.rouge(["the cat sat", "a b"], ["the cat ran", "a b"])
    assert r["rouge1"] == pytest.approx((2 / 3 + 1) / 2)
    assert r["rouge2"] == pytest.approx((0.5 + 1) / 2)


class _BosTokenizer:
    """The tiny model's tokenizer, made to add a special token (like a BOS) unless told not to."""

    def __init__(self, tok, bos):
        self.tok, self.bos = tok, bos

    def __call__(self, text, add_special_tokens=True, **kw):
        import torch

        out = self.tok(text, add_special_tokens=False, **kw)
        if add_special_tokens:
            out["input_ids"] = torch.cat([torch.tensor([[self.bos]]), out["input_ids"]], 1)
        return out

    def decode(self, ids):
        return self.tok.decode(ids)


def test_token_nll_scores_the_bare_text_without_special_tokens(tiny_lm):
    from types import SimpleNamespace

    sample = "the cat sat on the mat"
    bare = tiny_lm.tokenizer(sample, add_special_tokens=False)["input_ids"]
    wrapped = _BosTokenizer(tiny_lm.tokenizer, bos=bare[-1])
    assert len(wrapped(sample, return_tensors="pt")["input_ids"][0]) == len(bare) + 1     # it does add one
    lm = SimpleNamespace(tokenizer=wrapped, model=tiny_lm.model, device=tiny_lm.device)
    tokens, nll = ev.token_nll(lm, sample)
    assert len(tokens) == len(nll) == len(bare) - 1
    assert (tokens, nll) == ev.token_nll(tiny_lm, sample)


def test_token_nll_of_a_two_token_text(tiny_lm):
    tok = tiny_lm.tokenizer
    text = next(t for t in ("hello world", "the cat", "a b", "ab", "cat sat", "on the")
                if len(tok(t, add_special_tokens=False)["input_ids"]) == 2)
    tokens, nll = ev.token_nll(tiny_lm, text)
    assert len(tokens) == len(nll) == 1 and nll[0] >= 0

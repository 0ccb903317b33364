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

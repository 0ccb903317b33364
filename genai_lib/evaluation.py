"""Text and speech metrics: BLEU, ROUGE, word error rate.

Each wraps the library made for it (``sacrebleu``, ``rouge-score``, ``jiwer``) so that the book
reports the numbers the literature reports; only the text normalisation is ours, and it is the same
for every metric. Image metrics (FID, IS, class accuracy) live in :mod:`genai_lib.metrics`,
perplexity in :meth:`genai_lib.text.LanguageModel.perplexity`, pass@k in :mod:`genai_lib.codegen`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from genai_lib.core import GenAIError

if TYPE_CHECKING:
    from genai_lib.text import LanguageModel

_PUNCT = re.compile(r"[^\w\s']")


def normalize(text: str) -> str:
    """Lower-case, strip accents' compatibility forms, drop punctuation, collapse spaces."""
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return " ".join(_PUNCT.sub(" ", text).split())


def _pairs(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise GenAIError("Pass lists of strings (one reference per hypothesis), not single strings.")
    if len(references) != len(hypotheses) or not references:
        raise GenAIError(f"Need as many references as hypotheses, and at least one; got {len(references)} "
                         f"references and {len(hypotheses)} hypotheses.")


# [start:bleu]
def bleu(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus BLEU (0–100) with sacrebleu's standard 13a tokenisation, one reference per hypothesis."""
    import sacrebleu

    _pairs(references, hypotheses)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def sentence_bleu(reference: str, hypothesis: str) -> float:
    """BLEU of a single sentence (0–100), smoothed as sacrebleu does for sentences."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(hypothesis, [reference]).score)


def rouge(references: Sequence[str], hypotheses: Sequence[str],
          kinds: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """Mean ROUGE F-measures (0–1) over the pairs, with stemming (Lin, 2004, via rouge-score)."""
    from rouge_score import rouge_scorer

    _pairs(references, hypotheses)
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for ref, hyp in zip(references, hypotheses):
        for kind, score in scorer.score(ref, hyp).items():
            totals[kind] += score.fmeasure
    return {k: v / len(references) for k, v in totals.items()}
# [end:bleu]


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over all pairs after :func:`normalize`: (substitutions + deletions + insertions) / words."""
    import jiwer

    _pairs(references, hypotheses)
    refs = [normalize(r) for r in references]
    if not all(refs):
        raise GenAIError("A reference is empty after normalisation; WER needs at least one reference word.")
    return float(jiwer.wer(refs, [normalize(h) for h in hypotheses]))


# [start:token-nll]
def token_nll(lm: LanguageModel, text: str) -> tuple[list[str], list[float]]:
    """The negative log-likelihood (nats) the model gives each token of ``text``, given the tokens before it.

    Perplexity is ``exp`` of their mean, so this shows *where* a text is surprising: the first token
    has no context and is not scored, exactly as in :meth:`genai_lib.text.LanguageModel.perplexity`.

    Args:
        lm: a loaded :class:`genai_lib.text.LanguageModel`.
        text: at least two tokens of text.

    Returns:
        The scored tokens (as text, from the second token on) and their NLLs, two lists of equal length.
    """
    import torch

    ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(lm.device)  # (1, T)
    if ids.shape[1] < 2:
        raise GenAIError("token_nll needs a text of at least two tokens.")
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[0, :-1].float()                # (T-1, V): predicts tokens 1..T-1
    nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")  # (T-1,)
    tokens = [lm.tokenizer.decode([int(i)]) for i in ids[0, 1:]]
    return tokens, nll.cpu().tolist()
# [end:token-nll]

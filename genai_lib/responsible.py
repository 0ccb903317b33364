"""Responsible use, measured: a bias probe, a text watermark, and a simple safety filter.

* :func:`pronoun_preference` compares the probabilities a language model gives to " he" and " she"
  after templated sentences that differ only in an occupation.
* :class:`Watermark` is the green-list watermark of Kirchenbauer et al. (2023): during generation a
  pseudo-random "green" part of the vocabulary, chosen from the previous token and a secret key,
  gets a logit bonus; detection counts green tokens and applies a one-proportion z-test.
* :class:`KeywordFilter` and :class:`EmbeddingFilter` flag unsafe prompts; :func:`confusion` measures
  their false positives and misses on a labelled set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genai_lib.core import GenAIError

# --------------------------------------------------------------------------------------- bias probe


@torch.no_grad()
def pronoun_preference(lm, subjects: Sequence[str], templates: Sequence[str],
                       pronouns: tuple[str, str] = (" he", " she")) -> list[dict]:
    """log P(pronoun A) − log P(pronoun B) as the continuation, for every subject in every template.

    A pronoun that the tokenizer splits into several tokens is scored as a sequence: the sum of the
    log-probabilities of its tokens, each given the prompt and the tokens before it (for a one-token
    pronoun, as with SmolLM2's " he" and " she", that is simply the next-token log-probability).

    Args:
        lm: a :class:`genai_lib.text.LanguageModel`.
        subjects: words substituted for ``{subject}`` (e.g. occupations).
        templates: sentences ending where a pronoun could follow, with a ``{subject}`` slot.
        pronouns: the two continuations to compare.

    Returns:
        One dict per (subject, template): ``subject``, ``template``, ``log_ratio`` (> 0 favours the
        first pronoun), and the two probabilities.
    """
    if not subjects or not templates or any("{subject}" not in t for t in templates):
        raise GenAIError("Give at least one subject and templates that contain a '{subject}' slot.")
    ids = [lm.tokenizer.encode(p, add_special_tokens=False) for p in pronouns]
    if len(ids) != 2 or any(not i for i in ids):
        raise GenAIError(f"Give two non-empty pronouns to compare; got {pronouns!r}.")
    rows = []
    for template in templates:
        prompts = [template.format(subject=s) for s in subjects]
        logp_a, logp_b = (_continuation_logprob(lm, prompts, i) for i in ids)   # (B,) each
        for s, la, lb in zip(subjects, logp_a.tolist(), logp_b.tolist()):
            rows.append({"subject": s, "template": template, "log_ratio": la - lb,
                         "p_a": math.exp(la), "p_b": math.exp(lb)})
    return rows


@torch.no_grad()
def _continuation_logprob(lm, prompts: Sequence[str], cont: Sequence[int]) -> torch.Tensor:
    """log P(cont | prompt) for each prompt: (B,), summed over the k continuation tokens."""
    tok = lm.tokenizer
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = side
    c = torch.tensor([list(cont)] * len(prompts))                             # (B, k)
    ids = torch.cat([enc["input_ids"], c], 1).to(lm.device)                  # (B, T + k)
    mask = torch.cat([enc["attention_mask"], torch.ones_like(c)], 1).to(lm.device)
    t, k = enc["input_ids"].shape[1], c.shape[1]
    logits = lm.model(input_ids=ids, attention_mask=mask).logits[:, t - 1:t + k - 1].float()  # (B, k, V)
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, c.to(lm.device).unsqueeze(-1)).squeeze(-1).sum(1).cpu()          # (B,)


def permutation_test(x: Sequence[float], y: Sequence[float], n: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value for a difference in means between ``x`` and ``y`` by random relabelling."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    observed = abs(x.mean() - y.mean())
    pooled = np.concatenate([x, y])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n):
        rng.shuffle(pooled)
        hits += abs(pooled[: len(x)].mean() - pooled[len(x):].mean()) >= observed - 1e-12
    return (hits + 1) / (n + 1)


# --------------------------------------------------------------------------------------- watermark
_M1, _M2 = -4658895280553007687, -7723592293110705685  # splitmix64 multipliers as signed int64


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 tensors (wrap-around multiplication), a cheap good hash."""
    z = (z ^ (z >> 30)) * _M1
    z = (z ^ (z >> 27)) * _M2
    return z ^ (z >> 31)


@dataclass
class Watermark:
    """A green-list watermark (Kirchenbauer et al., 2023, "soft" variant with a one-token context).

    Attributes:
        key: the secret; detection needs the same key.
        gamma: fraction of the vocabulary that is green at each step.
        delta: logit bonus added to green tokens during generation (0 = no watermark).
    """

    key: int = 15485863
    gamma: float = 0.25
    delta: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise GenAIError(f"gamma must be in (0, 1), got {self.gamma}")
        if self.delta < 0:
            raise GenAIError(f"delta must be >= 0, got {self.delta}")

    def is_green(self, prev: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """Whether each ``token`` is green after ``prev`` (tensors that broadcast together)."""
        seed = _mix(prev.long() * 0x9E3779B1 + self.key)  # one pseudo-random seed per context
        h = _mix(seed ^ (token.long() * 0x85EBCA6B))
        return (h & 0xFFFF) < int(self.gamma * 0x10000)

    # [start:green-mask]
    def green_mask(self, prev: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(B,) previous token ids -> (B, V) boolean mask of the green tokens."""
        v = torch.arange(vocab_size, dtype=torch.int64, device=prev.device)
        return self.is_green(prev[:, None], v[None, :])

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The logits processor: ``transformers`` calls it at every generation step."""
        return scores + self.delta * self.green_mask(input_ids[:, -1], scores.shape[-1]).to(scores.dtype)

    def detect(self, text: str, tokenizer) -> dict:
        """Tokenise ``text`` as a detector would (no access to the generating run) and :meth:`score` it."""
        return self.score(tokenizer.encode(text, add_special_tokens=False), len(tokenizer))
    # [end:green-mask]

    def score(self, token_ids: Sequence[int], vocab_size: int, prev: int | None = None) -> dict:
        """Count green tokens in a sequence and test them against chance.

        Each distinct (previous token, token) pair is counted once, so repeated phrases cannot inflate
        the score. ``prev`` is the token before the first one (the prompt's last token), if known.

        Returns:
            ``{"tokens": T, "green": G, "z": z, "p": one-sided p-value}``.
        """
        ids = ([prev] if prev is not None else []) + list(token_ids)
        pairs = sorted({(ids[i - 1], ids[i]) for i in range(1, len(ids))})
        if not pairs:
            raise GenAIError("Need at least two tokens to score a watermark.")
        if max(max(pair) for pair in pairs) >= vocab_size:
            raise GenAIError(f"A token id is outside the vocabulary of {vocab_size} tokens.")
        prevs = torch.tensor([p for p, _ in pairs])
        toks = torch.tensor([t for _, t in pairs])
        green = int(self.is_green(prevs, toks).sum())
        t = len(pairs)
        z = (green - self.gamma * t) / math.sqrt(t * self.gamma * (1 - self.gamma))
        return {"tokens": t, "green": green, "z": z, "p": 0.5 * math.erfc(z / math.sqrt(2))}


def sample_texts(lm, prompts: Sequence[str], max_new_tokens: int, watermark: Watermark | None = None,
                 seed: int = 0, temperature: float = 1.0) -> list[str]:
    """Sample answers to several chat prompts at once (pure sampling: no top-k/top-p), optionally watermarked."""
    return lm.chat_batch(list(prompts), max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                         top_k=0, top_p=1.0, seed=seed, logits_processor=[watermark] if watermark else None)


def substitute_tokens(ids: Sequence[int], fraction: float, vocab_size: int, seed: int = 0) -> list[int]:
    """A crude paraphrase attack: replace ``fraction`` of the tokens by random ones."""
    if not 0.0 <= fraction <= 1.0:
        raise GenAIError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    out = list(ids)
    for i in rng.choice(len(out), size=round(fraction * len(out)), replace=False):
        out[i] = int(rng.integers(vocab_size))
    return out


# --------------------------------------------------------------------------------------- safety filter
class KeywordFilter:
    """Flags text that matches any of a list of regular expressions (whole words, case-insensitive)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [re.compile(rf"\b(?:{p})\b", re.I) for p in patterns]
        if not self.patterns:
            raise GenAIError("KeywordFilter needs at least one pattern.")  # pragma: no mutate  (message wording; the raise is tested)

    def flags(self, texts: Sequence[str]) -> list[bool]:
        return [any(p.search(t) for p in self.patterns) for t in texts]


class EmbeddingFilter:
    """Flags text whose embedding is close to any example of unsafe text (cosine similarity).

    Args:
        encode: maps a list of texts to L2-normalised embeddings, shape (N, D).
        unsafe_examples: short descriptions of what must be refused.
        threshold: cosine similarity at or above which text is flagged.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], unsafe_examples: Sequence[str],
                 threshold: float = 0.5) -> None:
        if not unsafe_examples:
            raise GenAIError("EmbeddingFilter needs at least one unsafe example.")  # pragma: no mutate  (message wording; the raise is tested)
        self.encode, self.threshold = encode, threshold
        self.bank = np.asarray(encode(list(unsafe_examples)), dtype=np.float32)  # (K, D)

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) highest cosine similarity of each text to the unsafe examples (0 for empty text)."""
        texts = list(texts)
        keep = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]   # a model may answer nothing
        out = np.zeros(len(texts), dtype=np.float32)
        if keep:
            emb = np.asarray(self.encode([texts[i] for i in keep]), dtype=np.float32)  # (N', D)
            out[keep] = (emb @ self.bank.T).max(axis=1)
        return out

    def flags(self, texts: Sequence[str]) -> list[bool]:
        return [bool(s >= self.threshold) for s in self.similarity(texts)]


def confusion(flags: Sequence[bool], unsafe: Sequence[bool]) -> dict[str, float]:
    """Misses and false alarms of a filter: counts, recall (caught / unsafe), false-positive rate."""
    if len(flags) != len(unsafe) or not flags:
        raise GenAIError("flags and labels must be non-empty and of the same length.")  # pragma: no mutate  (message wording; the raise is tested)
    tp = sum(f and u for f, u in zip(flags, unsafe))
    fp = sum(f and not u for f, u in zip(flags, unsafe))
    fn = sum(u and not f for f, u in zip(flags, unsafe))
    tn = len(flags) - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "recall": tp / max(tp + fn, 1),
            "false_positive_rate": fp / max(fp + tn, 1), "precision": tp / max(tp + fp, 1)}

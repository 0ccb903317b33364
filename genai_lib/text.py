"""Text generation with a pretrained causal language model.

The same code serves every profile: a random ``tiny`` model, SmolLM2-135M-Instruct in ``offline``,
the paper's GPT-2 (or any Hub model) in ``hub``, or any local folder written by ``save_pretrained``.

Typical use::

    from genai_lib import text
    lm = text.load()                                   # the profile's chat model
    print(lm.chat("What is the capital of France?"))   # uses the model's chat template
    print(lm.generate("Once upon a time", text.GenerationConfig(do_sample=True, temperature=0.8)))
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from genai_lib.core import GenAIError, get_device, get_profile, model_dtype, preset_of
from genai_lib.gpt import top_k_filter
from genai_lib.registry import load_pretrained, resolve

Messages = Sequence[dict[str, str]]
MAX_NEW_TOKENS_LIMIT = 4096
#: Tokens decoded between two looks at which rows of a batch have finished (:meth:`LanguageModel.generate_batch`).
DECODE_CHUNK = 16
#: Shortest prompt prefix (in tokens) that rows of a batch share through one KV cache entry; 0 turns sharing off.
SHARED_PREFIX_MIN = 16


# [start:generationconfig]
@dataclass
class GenerationConfig:
    """The decoding options a learner plays with.

    Attributes:
        max_new_tokens: how many tokens to generate *after* the prompt (the prompt does not count).
        do_sample: ``False`` for greedy (or beam) search; ``True`` to sample from the distribution.
        temperature: divides the logits before sampling; < 1 sharpens, > 1 flattens. Sampling only.
        top_k: keep only the k most likely tokens (0 = no limit). Sampling only.
        top_p: keep the smallest set of tokens whose probabilities add up to p (1.0 = no limit).
        repetition_penalty: > 1 makes tokens already in the text less likely (1.0 = off).
        num_beams: beam search width (1 = no beam search).
        seed: seeds the draws so that a run can be repeated (``None`` = draw from PyTorch's global CPU
            generator). Tokens are drawn on the CPU whatever the model's device (:class:`CPUSampler`),
            so a seed picks the same tokens on a CPU and a GPU, unless rounding moves a probability
            across the drawn value.
    """

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    num_beams: int = 1
    seed: int | None = 0
# [end:generationconfig]

    def validate(self) -> None:
        """Raise :class:`GenAIError` with a clear message if any option is out of range."""
        if not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool):
            raise GenAIError(f"max_new_tokens must be an integer, got {self.max_new_tokens!r}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise GenAIError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}, "
                             f"got {self.max_new_tokens}; it counts generated tokens only, not the prompt.")
        if not (0.0 < self.temperature <= 100.0) or math.isnan(self.temperature):
            raise GenAIError(f"temperature must be in (0, 100], got {self.temperature}; "
                             "for deterministic output use do_sample=False instead of temperature 0.")  # pragma: no mutate  (message wording)
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise GenAIError(f"top_k must be a non-negative integer (0 = off), got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise GenAIError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 < self.repetition_penalty <= 10.0:
            raise GenAIError(f"repetition_penalty must be in (0, 10], got {self.repetition_penalty}")
        if not isinstance(self.num_beams, int) or not 1 <= self.num_beams <= 16:
            raise GenAIError(f"num_beams must be an integer from 1 to 16, got {self.num_beams!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise GenAIError(f"seed must be a non-negative integer or None, got {self.seed!r}")

    def to_hf(self) -> dict[str, Any]:
        """The keyword arguments for ``transformers``' ``generate``."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                                  "num_beams": self.num_beams, "repetition_penalty": self.repetition_penalty}
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        else:  # silence transformers' warnings about sampling options that greedy search ignores
            kwargs.update(temperature=None, top_k=None, top_p=None)
        return kwargs


#: Default decoding per profile: tiny models only need a few tokens to exercise the code.
PRESETS: dict[str, GenerationConfig] = {
    "tiny": GenerationConfig(max_new_tokens=8),
    "offline": GenerationConfig(max_new_tokens=64),
    "hub": GenerationConfig(max_new_tokens=64),
}


def preset(profile: str | None = None, **overrides: Any) -> GenerationConfig:
    """The profile's preset :class:`GenerationConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


def shared_prefix_lengths(ids: Sequence[Sequence[int]], minimum: int) -> list[int]:
    """How many leading tokens of each row another row of the batch begins with too (0 if under ``minimum``).

    Rows are compared with their neighbours in sorted order, which finds each row's longest common
    prefix with any other row. At least one token of every row is left over, so that every row has a
    token to predict from (two identical prompts share all but their last token).
    """
    if minimum < 1:
        return [0] * len(ids)
    order = sorted(range(len(ids)), key=lambda i: list(ids[i]))
    best = [0] * len(ids)
    for a, b in zip(order, order[1:]):
        n = next((j for j, (x, y) in enumerate(zip(ids[a], ids[b])) if x != y), min(len(ids[a]), len(ids[b])))
        best[a], best[b] = max(best[a], n), max(best[b], n)
    return [n if n >= minimum else 0 for n in (min(n, len(row) - 1) for n, row in zip(best, ids))]


@dataclass(frozen=True)
class PrefixPlan:
    """How a batch shares prompt prefixes (:func:`plan_prefixes`).

    Attributes:
        share: per row, how many of its leading tokens come from a shared prefix (0: none).
        prefixes: the distinct shared prefixes, each computed once.
        group: per row, the index of its prefix in ``prefixes`` (0 for a row that shares none: the
            attention mask hides that row's whole prefix region).
        width: the prefix region's length (the longest prefix).
        rest: the length of the region after it (the longest remainder of a prompt).
    """

    share: list[int]
    prefixes: list[tuple[int, ...]]
    group: list[int]
    width: int
    rest: int

    @property
    def positions(self) -> int:
        """Token positions computed: every prefix once, then every row's remainder region."""
        return len(self.prefixes) * self.width + len(self.share) * self.rest


def plan_prefixes(ids: Sequence[Sequence[int]], minimum: int) -> PrefixPlan | None:
    """Plan the shared prefixes of a batch of tokenised prompts; ``None`` when sharing would not pay.

    It does not pay when no two rows share ``minimum`` tokens, or when the layout computes at least as
    many token positions as the plain left-padded batch (a long prompt that shares nothing makes every
    row's remainder region long).
    """
    share = shared_prefix_lengths(ids, minimum)
    prefixes = sorted({tuple(row[:n]) for row, n in zip(ids, share) if n})
    if not prefixes or len(prefixes) == len(ids):                           # nothing is shared by two rows
        return None
    index = {k: g for g, k in enumerate(prefixes)}
    plan = PrefixPlan(share, prefixes, [index.get(tuple(row[:n]), 0) for row, n in zip(ids, share)],
                      width=max(map(len, prefixes)), rest=max(len(row) - n for row, n in zip(ids, share)))
    return plan if plan.positions < len(ids) * max(map(len, ids)) else None


def _eos_ids(model) -> list[int]:
    """The token ids that end a row in ``model.generate`` (its generation config's ``eos_token_id``)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


# [start:inverse-cdf]
def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw one token per row: the first token whose cumulative probability exceeds the row's uniform.

    Args:
        probs: ``(B, V)`` probabilities (each row sums to 1 up to rounding; zeros are never drawn).
        uniforms: ``(B, 1)`` numbers in [0, 1), one per row (float64: a float32 just below 1 rounds to 1).

    Returns:
        ``(B, 1)`` token ids.
    """
    exact = torch.float32 if probs.device.type == "mps" else torch.float64   # MPS has no float64
    cdf = probs.to(exact).cumsum(dim=-1)                                      # (B, V), last column ≈ 1
    target = uniforms.to(device=probs.device, dtype=exact) * cdf[:, -1:]     # (B, 1), below the row's total
    return torch.searchsorted(cdf, target, right=True).clamp_(max=probs.shape[-1] - 1)
# [end:inverse-cdf]


class CPUSampler:
    """Sampling's last step, as a ``transformers`` logits processor that draws with a CPU generator.

    ``generate`` draws sampled tokens with ``torch.multinomial`` on the model's device, so a seed picks
    other tokens on a GPU than on a CPU. :class:`LanguageModel` therefore runs ``generate`` in greedy
    mode with this processor last: it applies temperature, top-k and top-p with ``transformers``' own
    warpers (in the order ``generate`` would), draws one token per row with :func:`inverse_cdf` from a
    uniform made on the CPU, and hands back scores whose only finite entry is that token, which greedy
    search then picks. One uniform per row (not ``multinomial``'s one random number per vocabulary
    entry) keeps the draw cheap on every device.

    Args:
        cfg: the sampling options (``temperature``, ``top_k``, ``top_p``).
        generator: a CPU ``torch.Generator``; ``None`` draws from PyTorch's global CPU generator.
    """

    def __init__(self, cfg: GenerationConfig, generator: torch.Generator | None = None) -> None:
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.warpers = ([TemperatureLogitsWarper(cfg.temperature)] if cfg.temperature != 1.0 else []) + \
            ([TopKLogitsWarper(top_k=cfg.top_k)] if cfg.top_k else []) + \
            ([TopPLogitsWarper(top_p=cfg.top_p)] if cfg.top_p < 1.0 else [])
        self.generator = generator

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)                                    # (B, V)
        probs = torch.softmax(scores.float(), dim=-1)                           # (B, V)
        uniforms = torch.rand(probs.shape[0], 1, generator=self.generator, dtype=torch.float64)  # (B, 1) on the CPU
        token = inverse_cdf(probs, uniforms)                                    # (B, 1)
        return torch.full_like(scores, -math.inf).scatter_(1, token, 0.0)       # one-hot scores


class LanguageModel:
    """A tokenizer and a causal LM on one device, with generation helpers.

    Args:
        tokenizer: a ``transformers`` tokenizer.
        model: a ``transformers`` causal language model (in eval mode).
        name: what to call the model in printed run facts.
        profile: the profile the model was loaded for (decides the default decoding preset).
    """

    def __init__(self, tokenizer, model, name: str, profile: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.name = name
        self.profile = profile if profile is not None else get_profile()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ prompts
    def format_chat(self, messages: str | Messages, system: str | None = None) -> str:
        """Turn a user message (or a list of ``{"role", "content"}`` messages) into the model's prompt.

        Uses the tokenizer's chat template; a model without one (GPT-2) gets plain "role: text" lines.
        """
        msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        if system:
            msgs = [{"role": "system", "content": system}, *msgs]
        if not msgs or not all(isinstance(m, dict) and m.get("content", "").strip() for m in msgs):
            raise GenAIError("chat needs at least one message, and every message needs non-empty 'content'.")  # pragma: no mutate  (message wording)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"

    def _encode(self, prompt: str) -> dict[str, torch.Tensor]:
        if not isinstance(prompt, str) or not prompt.strip():
            raise GenAIError("The prompt is empty; give the model some text to continue.")  # pragma: no mutate  (message wording)
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        return {k: v.to(self.device) for k, v in enc.items()}  # input_ids: (1, T)

    def _config(self, config: GenerationConfig | None, overrides: dict[str, Any]) -> GenerationConfig:
        cfg = replace(config, **overrides) if config is not None else preset(self.profile, **overrides)
        cfg.validate()
        return cfg

    @staticmethod
    def _hf_kwargs(cfg: GenerationConfig, processors: Sequence[Any] = ()) -> dict[str, Any]:
        """``generate``'s keyword arguments for ``cfg``, with sampling done by a :class:`CPUSampler`.

        Beam search with sampling keeps ``transformers``' own draws, seeded through the global generator.
        """
        from transformers import LogitsProcessorList

        kwargs = cfg.to_hf()
        processors = LogitsProcessorList(processors)
        if cfg.do_sample and cfg.num_beams == 1:
            generator = None if cfg.seed is None else torch.Generator().manual_seed(cfg.seed)
            kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
            processors.append(CPUSampler(cfg, generator))
        elif cfg.do_sample and cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        return {**kwargs, "logits_processor": processors}

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompt: str, config: GenerationConfig | None = None, **overrides: Any) -> str:
        """Continue ``prompt`` and return only the new text.

        Args:
            prompt: the text to continue (used verbatim, no chat template).
            config: decoding options; the profile's preset when ``None``.
            **overrides: any :class:`GenerationConfig` field, e.g. ``temperature=0.7``.

        Returns:
            The generated continuation, without the prompt and without special tokens.
        """
        cfg = self._config(config, overrides)
        enc = self._encode(prompt)
        out = self.model.generate(**enc, **self._hf_kwargs(cfg), pad_token_id=self.tokenizer.pad_token_id)  # (1, T + new)
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def chat(self, messages: str | Messages, config: GenerationConfig | None = None, system: str | None = None,
             **overrides: Any) -> str:
        """Answer a chat message (or conversation) through the model's chat template."""
        return self.generate(self.format_chat(messages, system), config, **overrides).strip()

    @torch.no_grad()
    def generate_batch(self, prompts: Sequence[str], config: GenerationConfig | None = None, batch_size: int = 16,
                       progress: bool = False, logits_processor: Sequence[Any] | None = None,
                       done: Callable[[int, str], bool] | None = None, **overrides: Any) -> list[str]:
        """Continue many prompts at once; the answers come back in the order of ``prompts``.

        Prompts of different lengths are *left*-padded, so that every row's last real token sits in the
        last column and generation continues from it; the attention mask hides the padding. Greedy
        results equal :meth:`generate` called one prompt at a time, while a CPU does several rows in
        little more than the time of one. With sampling, the draws differ from one-by-one calls (the
        random numbers are shared out across the batch) but are repeatable with a fixed ``seed``.

        A batch is decoded :data:`DECODE_CHUNK` tokens at a time. After each chunk the rows that have
        finished (end-of-text, or ``done``) leave the batch, with their part of the KV cache, so the
        rest go on without computing padding for them (``transformers`` alone keeps every row to the
        end). Greedy tokens are the same either way; ``bench/ragged.py`` measures the gain.

        Rows that begin with the same tokens (few-shot examples, a fixed instruction, several samples
        of one prompt) share them: each shared prefix is computed once and copied into the rows' KV
        cache (:meth:`_prefill_shared`, at least :data:`SHARED_PREFIX_MIN` tokens). In float32 the
        tokens are the same as without sharing; in bfloat16 the different shapes round differently, as
        any change of batch does. ``bench/prefix.py`` measures the gain.

        Args:
            prompts: the texts to continue (used verbatim, no chat template).
            config: decoding options; the profile's preset when ``None``.
            batch_size: how many prompts go through the model together (memory grows with it).
            progress: show a progress bar over the batches.
            logits_processor: extra ``transformers`` logits processors applied at every step (e.g. a
                watermark, :class:`genai_lib.responsible.Watermark`).
            done: ``done(i, text)`` says whether prompt ``i``'s continuation so far is all the caller
                needs (e.g. a code block that is closed); such a row stops early. The text returned
                is then shorter, but agrees with the full run on everything up to that point.
            **overrides: any :class:`GenerationConfig` field.

        Returns:
            One continuation per prompt, without the prompt and without special tokens.
        """
        from tqdm.auto import tqdm

        cfg = self._config(config, overrides)
        if isinstance(prompts, str):
            raise GenAIError("generate_batch takes a list of prompts; for one prompt call generate().")  # pragma: no mutate  (message wording)
        prompts = list(prompts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise GenAIError(f"batch_size must be a positive integer, got {batch_size!r}")
        for p in prompts:
            if not isinstance(p, str) or not p.strip():
                raise GenAIError("One of the prompts is empty; give the model some text to continue.")  # pragma: no mutate  (message wording)
        # Sort by length so each batch holds prompts of similar length (less padding), then restore order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[str] = [""] * len(prompts)
        hf = self._hf_kwargs(cfg, logits_processor or [])                     # one generator for every batch
        old_side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            starts = range(0, len(order), batch_size)
            for start in tqdm(starts, desc="generating", disable=not progress):  # pragma: no mutate  (progress bar display)
                rows = order[start:start + batch_size]
                batch = [prompts[i] for i in rows]
                shared = self._prefill_shared(batch) if cfg.num_beams == 1 else None   # beams expand rows
                if shared is None:
                    enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
                    enc = {k: v.to(self.device) for k, v in enc.items()}  # input_ids, attention_mask: (B, T)
                    cache = None
                else:
                    enc, cache = shared
                news = self._decode_ragged(enc, hf, rows, done, cache)
                for i, row in zip(rows, news):
                    results[i] = self.tokenizer.decode(row, skip_special_tokens=True)
        finally:
            self.tokenizer.padding_side = old_side
        return results

    def _forward_params(self) -> Mapping[str, inspect.Parameter]:
        """The keyword arguments the model's ``forward`` knows. A ``peft`` model (LoRA adapters) takes
        ``**kwargs`` and hands them to the model it wraps, so they are read from that model."""
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return inspect.signature(type(inner).forward).parameters

    def _cache_arg(self) -> str:
        """transformers 5.x renamed ``past_key_values`` to ``cache`` (in and out); the name this one uses."""
        return "cache" if "cache" in self._forward_params() else "past_key_values"

    # [start:shared-prefix]
    @torch.no_grad()
    def _prefill_shared(self, prompts: list[str]) -> tuple[dict[str, torch.Tensor], Any] | None:
        """Compute each prompt prefix that several rows share once, and lay the batch out around it.

        Few-shot prompts, a fixed instruction, or ``n`` samples of one prompt make many rows of a batch
        begin with the same tokens. Their keys and values are the same in every such row, so they are
        computed once per distinct prefix (a batch of prefixes, right-padded) and copied into the rows'
        KV cache. Each row is then laid out as ``[its prefix | padding | the rest of its prompt]``; the
        attention mask hides the padding and the positions count real tokens only, so every row sees
        exactly the tokens it would see alone. Returns ``None`` when :func:`plan_prefixes` finds
        nothing worth sharing (the plain left-padded batch is then as good).
        """
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        plan = plan_prefixes(ids, SHARED_PREFIX_MIN)
        if plan is None:
            return None
        pad, dev = self.tokenizer.pad_token_id, self.device
        groups, width, rest = len(plan.prefixes), plan.width, plan.rest
        pre_ids = torch.full((groups, width), pad, dtype=torch.long)        # (G, P), right-padded
        pre_mask = torch.zeros_like(pre_ids)
        for g, k in enumerate(plan.prefixes):
            pre_ids[g, :len(k)], pre_mask[g, :len(k)] = torch.tensor(k, dtype=torch.long), 1
        pos = torch.arange(width).expand(groups, -1)                         # (G, P): right padding needs no shift
        lean = {"logits_to_keep": 1} if "logits_to_keep" in self._forward_params() else {}
        out = self.model(input_ids=pre_ids.to(dev), attention_mask=pre_mask.to(dev), position_ids=pos.to(dev),
                         use_cache=True, **lean)                             # only the cache is needed
        cache = getattr(out, self._cache_arg())
        cache.batch_select_indices(torch.tensor(plan.group, device=dev))     # (B, heads, P, head_dim)
        full = torch.full((len(ids), width + rest), pad, dtype=torch.long)   # (B, P + S)
        mask = torch.zeros_like(full)
        for r, (row, n) in enumerate(zip(ids, plan.share)):
            full[r, :n], mask[r, :n] = torch.tensor(row[:n], dtype=torch.long), 1
            tail = row[n:]                                                   # the rest, left-padded to S
            full[r, width + rest - len(tail):], mask[r, width + rest - len(tail):] = torch.tensor(tail), 1
        return {"input_ids": full.to(dev), "attention_mask": mask.to(dev)}, cache

    def prefill_positions(self, prompts: Sequence[str]) -> dict[str, int]:
        """Token positions the first forward pass computes for ``prompts`` as one batch.

        ``plain``: the left-padded batch (rows x longest prompt); ``shared``: with shared prefixes
        computed once (:meth:`generate_batch` does this whenever it computes less).
        """
        ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
        plain = len(ids) * max(map(len, ids), default=0)
        plan = plan_prefixes(ids, SHARED_PREFIX_MIN)
        return {"plain": plain, "shared": plain if plan is None else plan.positions}
    # [end:shared-prefix]

    def _decode_ragged(self, enc: dict[str, torch.Tensor], hf: dict[str, Any], rows: list[int],
                       done: Callable[[int, str], bool] | None, cache: Any = None) -> list[torch.Tensor]:
        """Decode one left-padded batch in chunks, dropping finished rows; the new tokens of each row.

        ``hf`` holds ``generate``'s keyword arguments (:meth:`_hf_kwargs`). ``cache`` holds the keys and
        values of the first columns of ``enc`` when a shared prefix was computed already
        (:meth:`_prefill_shared`); generation then starts after them.
        """
        ids, mask = enc["input_ids"], enc["attention_mask"]                    # (B, T)
        hf = dict(hf)
        prompt_len, budget = ids.shape[1], hf.pop("max_new_tokens")
        pad = self.tokenizer.pad_token_id
        chunk = budget if hf["num_beams"] > 1 else DECODE_CHUNK           # beams cannot be split up
        stops = torch.tensor(_eos_ids(self.model), dtype=torch.long, device=ids.device)
        cache_arg = self._cache_arg()
        alive = list(range(len(rows)))                                       # batch rows still decoding
        news: list[torch.Tensor] = [ids.new_empty(0)] * len(rows)
        made = 0
        while alive:
            step = min(chunk, budget - made)
            extra = {} if cache is None else {cache_arg: cache}
            out = self.model.generate(input_ids=ids, attention_mask=mask, **hf, max_new_tokens=step,
                                      pad_token_id=pad, return_dict_in_generate=True, **extra)
            seqs = out.sequences                                               # (b, t + step)
            new = seqs[:, ids.shape[1]:]                                       # (b, ≤ step)
            made += new.shape[1]
            over = made >= budget or new.shape[1] < step                       # budget spent, or all rows ended
            keep = []
            for j, r in enumerate(alive):
                row_new = seqs[j, prompt_len:]
                ended = over or bool(torch.isin(new[j], stops).any())
                if not ended and done is not None:
                    ended = done(rows[r], self.tokenizer.decode(row_new, skip_special_tokens=True))
                if ended:
                    news[r] = row_new
                else:
                    keep.append(j)
            if not keep:
                break
            cache = getattr(out, cache_arg)
            idx = torch.tensor(keep, device=ids.device)
            if len(keep) < len(alive):
                cache.batch_select_indices(idx)                                # keep the cache of live rows
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], new.shape[1])], dim=1)[idx]
            ids = seqs[idx]
            alive = [alive[j] for j in keep]
        return news

    def chat_batch(self, conversations: Sequence[str | Messages], config: GenerationConfig | None = None,
                   system: str | None = None, batch_size: int = 16, progress: bool = False,
                   logits_processor: Sequence[Any] | None = None, done: Callable[[int, str], bool] | None = None,
                   **overrides: Any) -> list[str]:
        """:meth:`chat` for many messages (or conversations) at once, batched like :meth:`generate_batch`."""
        if isinstance(conversations, str):
            raise GenAIError("chat_batch takes a list of messages; for one message call chat().")  # pragma: no mutate  (message wording)
        prompts = [self.format_chat(c, system) for c in conversations]
        outs = self.generate_batch(prompts, config, batch_size=batch_size, progress=progress,
                                   logits_processor=logits_processor, done=done, **overrides)
        return [o.strip() for o in outs]

    def stream(self, prompt: str, config: GenerationConfig | None = None, **overrides: Any) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece while it is generated.

        Generation runs in a background thread; the pieces joined equal :meth:`generate`'s result.
        """
        from transformers import TextIteratorStreamer

        cfg = self._config(config, overrides)
        if cfg.num_beams > 1:
            raise GenAIError("Streaming works token by token and cannot be combined with beam search (num_beams > 1).")  # pragma: no mutate  (message wording)
        enc = self._encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        kwargs = dict(**enc, **self._hf_kwargs(cfg), pad_token_id=self.tokenizer.pad_token_id, streamer=streamer)
        worker = threading.Thread(target=lambda: torch.no_grad()(self.model.generate)(**kwargs), daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()

    def stream_chat(self, messages: str | Messages, config: GenerationConfig | None = None,
                    system: str | None = None, **overrides: Any) -> Iterator[str]:
        """:meth:`stream` for a chat message or conversation."""
        return self.stream(self.format_chat(messages, system), config, **overrides)

    # ------------------------------------------------------------------ inspection
    # [start:next-token-distribution]
    @torch.no_grad()
    def next_token_distribution(self, prompt: str, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                                k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens and their probabilities after temperature, top-k and top-p.

        This is exactly the distribution that sampling with those options draws from.
        """
        GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p, do_sample=True).validate()
        enc = self._encode(prompt)
        logits = self.model(**enc).logits[0, -1].float() / temperature  # (V,)
        probs = torch.softmax(top_k_filter(logits, top_k), dim=-1)
        if top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            drop = sorted_p.cumsum(0) - sorted_p >= top_p  # tokens outside the nucleus
            probs = probs.clone()
            probs[order[drop]] = 0.0
            probs = probs / probs.sum()
        top = torch.topk(probs, min(k, probs.numel()))
        return [(self.tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices)]
    # [end:next-token-distribution]

    @torch.no_grad()
    def perplexity(self, text: str) -> float:
        """exp(mean negative log-likelihood per token) of ``text`` under the model (lower is better)."""
        enc = self._encode(text)
        if enc["input_ids"].shape[1] < 2:
            raise GenAIError("Perplexity needs a text of at least two tokens.")  # pragma: no mutate  (message wording)
        loss = self.model(**enc, labels=enc["input_ids"]).loss
        return float(torch.exp(loss))

    def __repr__(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        return f"LanguageModel({self.name!r}, {params / 1e6:.1f} M params, {dtype}, device={self.device})"


# ---------------------------------------------------------------------------------- decoding speed
def memory_bandwidth(device: str | torch.device, mib: int = 256) -> float:
    """Bytes per second of a large tensor copy on ``device`` (bytes read + bytes written), fastest of six copies.

    This is the ceiling for decoding at small batch sizes, where every step must read all the weights.
    """
    device = torch.device(device)
    x = torch.randn(mib * 2**20 // 4, device=device)
    y = torch.empty_like(x)
    best = float("inf")
    for _ in range(6):
        _sync(device)
        t0 = time.perf_counter()
        y.copy_(x)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * x.numel() * x.element_size() / best


def bytes_per_step(model, batch: int = 1, context: int = 0) -> int:
    """Bytes one decoding step must read: every weight once, plus ``batch`` rows of KV cache of ``context`` tokens.

    A tied embedding is read once (as the output layer); an untied input embedding only for the rows it
    looks up, which is negligible, so it is left out.
    """
    cfg = model.config
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    if not getattr(cfg, "tie_word_embeddings", False):
        total -= emb.numel() * emb.element_size()
    heads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    kv = 2 * layers * kv_heads * head_dim * emb.element_size()          # keys + values, per token and row
    return total + batch * context * kv


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def decode_speed(lm: LanguageModel, prompt: str, new_tokens: int = 16, batch: int = 1, repeats: int = 2,
                 cache_implementation: str | None = None, compile_config: Any = None) -> dict[str, float]:
    """Measure greedy decoding: tokens per second, and the fraction of the memory-bandwidth roofline.

    Args:
        lm: the model.
        prompt: the prompt (every row of the batch gets the same one).
        new_tokens: tokens generated per row (exactly: the end-of-text token does not stop it early).
        batch: rows decoded together.
        repeats: timed runs after one warm-up; the fastest counts.
        cache_implementation: ``None`` (dynamic KV cache) or ``"static"`` (pre-allocated, needed for
            compilation).
        compile_config: a ``transformers.CompileConfig`` (with ``cache_implementation="static"``).

    Returns:
        ``tokens_per_s`` (all rows), ``roofline_tokens_per_s`` (batch x bandwidth / bytes per step),
        ``fraction_of_roofline``, ``seconds`` and ``warmup_s`` (includes compilation, if any).
    """
    enc = lm._encode(prompt)
    ids = enc["input_ids"].expand(batch, -1).contiguous()                   # (B, P)
    extra: dict[str, Any] = {}
    if cache_implementation:
        extra["cache_implementation"] = cache_implementation
    if compile_config is not None:
        extra["compile_config"] = compile_config
    elif cache_implementation:
        extra["disable_compile"] = True

    def run() -> None:
        lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                          min_new_tokens=new_tokens, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id,
                          **extra)

    dev = lm.device
    _sync(dev)
    t0 = time.perf_counter()
    run()
    _sync(dev)
    warmup = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        _sync(dev)
        best = min(best, time.perf_counter() - t0)
    bw = memory_bandwidth(dev)
    roof = batch * bw / bytes_per_step(lm.model, batch, ids.shape[1] + new_tokens // 2)
    tps = batch * new_tokens / best
    return {"batch": batch, "tokens_per_s": tps, "roofline_tokens_per_s": roof, "fraction_of_roofline": tps / roof,
            "seconds": best, "warmup_s": warmup, "bandwidth_GBps": bw / 1e9}


def load(role: str = "chat", profile: str | None = None, device: str | None = None,
         path: str | None = None, dtype: torch.dtype | None = None) -> LanguageModel:
    """Load the causal language model the registry names for ``role`` in ``profile``.

    Args:
        role: a registry role with a causal LM (``chat``, ``text``, ``code``, ``qa``).
        profile: ``tiny``, ``offline`` or ``hub``; the active profile when ``None``.
        device: force a device; chosen by :func:`genai_lib.core.get_device` when ``None``.
        path: load this local folder (or Hub id) instead of the registry's model.
        dtype: the weights' dtype; :func:`genai_lib.core.model_dtype` chooses when ``None`` (bfloat16 on
            a GPU or a CPU that computes it natively, float32 on other CPUs and in ``tiny``).

    Returns:
        A :class:`LanguageModel` in eval mode.
    """
    from transformers import AutoModelForCausalLM

    src = resolve(role, profile, path)
    dev = get_device(device)
    dtype = model_dtype(dev, src.profile) if dtype is None else dtype
    tokenizer, model = load_pretrained(src, AutoModelForCausalLM, "a causal language model", dev, dtype=dtype)
    return LanguageModel(tokenizer, model, name=src.name, profile=src.profile)

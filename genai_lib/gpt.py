"""A small GPT: a decoder-only transformer written out plainly, with a KV cache for generation.

The architecture is GPT-2's (Radford et al., 2019): token and learned position embeddings, a stack
of pre-LayerNorm blocks (causal self-attention, then an MLP, each added to a residual stream), a
final LayerNorm and a language-model head that shares its weights with the token embedding. The
parameter names follow GPT-2's, so :func:`to_hf` can copy the weights into ``transformers``'
``GPT2LMHeadModel`` and the tests can check that both compute the same logits.

Shapes: ``B`` batch, ``T`` sequence length, ``C`` embedding width (``n_embd``), ``nh`` heads,
``hs`` head size (``C // nh``), ``V`` vocabulary size.

Typical use::

    from genai_lib import corpus, gpt
    cfg = gpt.preset("offline")                  # or gpt.preset() for the active profile
    model = gpt.build(replace(cfg, vocab_size=tok.vocab_size))
    history = gpt.train(model, train_data, val_data, gpt.train_preset("offline"))
    ids = gpt.generate(model, idx, max_new_tokens=200, temperature=0.8, top_k=20)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from genai_lib.core import GenAIError, autocast_dtype, get_device, preset_of


# [start:gptconfig]
@dataclass
class GPTConfig:
    """The shape of the model. The presets differ only in these numbers."""

    vocab_size: int = 65    # number of distinct tokens (characters, for the King James text)
    block_size: int = 64    # the longest context the model sees; positions run 0 .. block_size-1
    n_layer: int = 4        # how many transformer blocks are stacked
    n_head: int = 4         # attention heads per block; n_embd must be divisible by n_head
    n_embd: int = 128       # width C of the residual stream (the embedding size)
    dropout: float = 0.0    # dropout probability while training (0 = off, fine for short runs)
    bias: bool = True       # biases in the Linear and LayerNorm layers, as in GPT-2
# [end:gptconfig]

    def validate(self) -> None:
        """Raise :class:`GenAIError` if the numbers cannot make a model."""
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GenAIError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise GenAIError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             "each head gets n_embd // n_head dimensions.")  # pragma: no mutate  (message wording)
        if not 0.0 <= self.dropout < 1.0:
            raise GenAIError(f"dropout must be in [0, 1), got {self.dropout}")


#: Model shapes per profile: a minuscule one for tests, one that learns in ~100 s on 2 CPU cores,
#: and nanoGPT's "baby" character model for a GPU.
PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32),
    "offline": GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128),
    "hub": GPTConfig(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
}


@dataclass
class TrainConfig:
    """How long and how fast to train."""

    steps: int = 600              # optimisation steps (each sees batch_size x block_size tokens)
    batch_size: int = 32          # windows per step
    learning_rate: float = 3e-3   # peak learning rate of AdamW
    min_lr: float = 3e-4          # the cosine schedule decays to this by the last step
    warmup_steps: int = 50        # linear warm-up from 0 to learning_rate
    weight_decay: float = 0.1     # AdamW weight decay on matrices (not on biases or LayerNorms)
    grad_clip: float = 1.0        # clip the gradient norm to this (0 = no clipping)
    eval_interval: int = 100      # estimate train and validation loss every this many steps
    eval_iters: int = 10          # batches averaged for each estimate
    seed: int = 0                 # seeds the batch sampler (and the dropout)
    mixed_precision: bool = True  # forward pass in bfloat16 where core.autocast_dtype allows (weights stay fp32)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(steps=30, batch_size=8, eval_interval=10, eval_iters=2, warmup_steps=5),
    "offline": TrainConfig(eval_iters=5),  # 1.2 M characters; measured 117 CPU-s on one core
    "hub": TrainConfig(steps=5000, batch_size=64, learning_rate=1e-3, min_lr=1e-4, warmup_steps=100,
                       eval_interval=250, eval_iters=50),
}


def preset(profile: str | None = None, **overrides) -> GPTConfig:
    """The active profile's :class:`GPTConfig`, with ``overrides`` (e.g. ``vocab_size=...``) applied."""
    return preset_of(PRESETS, profile, **overrides)


def train_preset(profile: str | None = None, **overrides) -> TrainConfig:
    """The training run's preset :class:`TrainConfig` of ``profile``, with ``overrides`` applied."""
    return preset_of(TRAIN_PRESETS, profile, **overrides)


# ----------------------------------------------------------------------------------- attention
# [start:causal-attention]
def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention with a causal mask, written out.

    ``q`` holds the last ``Tq`` positions of a sequence whose ``Tk`` keys and values are all given
    (``Tq == Tk`` in training; ``Tq < Tk`` when earlier keys come from the KV cache). Query ``i``
    sits at position ``Tk - Tq + i`` and may look at keys ``0 .. Tk - Tq + i``, never the future.

    Args:
        q: queries ``(B, nh, Tq, hs)``; k, v: keys and values ``(B, nh, Tk, hs)``.

    Returns:
        ``(B, nh, Tq, hs)``: for every query, the attention-weighted average of the values.
    """
    Tq, Tk, hs = q.size(-2), k.size(-2), q.size(-1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)                  # (B, nh, Tq, Tk)
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)  # (Tq, Tk)
    scores = scores.masked_fill(~allowed, float("-inf"))
    weights = F.softmax(scores, dim=-1)                                 # (B, nh, Tq, Tk), rows sum to 1
    return weights @ v                                                  # (B, nh, Tq, hs)
# [end:causal-attention]


# [start:kvcache]
class KVCache:
    """The keys and values of every token seen so far, one ``(k, v)`` pair per layer.

    Generating token ``t+1`` needs the keys and values of tokens ``0..t`` in every layer. They
    do not change once computed (a token only looks backwards), so we keep them instead of
    recomputing the whole prefix at every step.
    """

    def __init__(self, n_layer: int) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer

    def __len__(self) -> int:
        first = self.layers[0]
        return 0 if first is None else first[0].size(2)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's ``k, v`` ``(B, nh, T, hs)`` and return all of them ``(B, nh, T_past + T, hs)``."""
        past = self.layers[layer]
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        self.layers[layer] = (k, v)
        return k, v
# [end:kvcache]


# [start:causalselfattention]
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: every position mixes in information from earlier ones."""

    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.n_head, self.layer = cfg.n_head, layer
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)      # mixes the heads' outputs
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape                                                   # (B, T, C)
        q, k, v = self.c_attn(x).split(C, dim=2)                            # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)                           # (B, nh, T_past + T, hs)
        y = causal_attention(q, k, v)                                       # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                    # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))                           # (B, T, C)
# [end:causalselfattention]


class MLP(nn.Module):
    """The position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))       # (B, T, C) -> (B, T, 4C) -> (B, T, C)


# [start:block]
class Block(nn.Module):
    """One transformer block, pre-LayerNorm: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=1e-5, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=1e-5, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)  # tokens talk to each other   (B, T, C)
        x = x + self.mlp(self.ln_2(x))          # each token thinks on its own (B, T, C)
        return x
# [end:block]


# [start:gpt]
class GPT(nn.Module):
    """The decoder-only transformer language model."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),   # token embeddings   (V, C)
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),   # position embeddings, learned (block_size, C)
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=1e-5, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
# [end:gpt]

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding/head matrix once."""
        return sum(p.numel() for p in self.parameters())

    # [start:forward]
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next token at every position, and the loss if ``targets`` are given.

        Args:
            idx: token ids ``(B, T)``. With a ``cache`` they continue the cached tokens.
            targets: the ids that should come next ``(B, T)``; ``None`` for no loss.
            cache: a :class:`KVCache` that is read and extended in place (``None`` = no cache).

        Returns:
            ``logits (B, T, V)`` and the mean cross-entropy loss (or ``None``).
        """
        B, T = idx.shape
        past = len(cache) if cache is not None else 0
        if past + T > self.cfg.block_size:
            raise GenAIError(f"The model sees at most block_size={self.cfg.block_size} tokens, "
                             f"got {past + T}; crop the context to the last {self.cfg.block_size} tokens.")
        pos = torch.arange(past, past + T, device=idx.device)            # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)        # (B, T, C) + (T, C) -> (B, T, C)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x, cache)                                          # (B, T, C)
        logits = self.lm_head(self.transformer.ln_f(x))                  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss
    # [end:forward]


def build(cfg: GPTConfig | None = None, device: str | None = None) -> GPT:
    """A freshly initialised :class:`GPT` (the profile's preset when ``cfg`` is ``None``) on ``device``."""
    return GPT(cfg if cfg is not None else preset()).to(get_device(device))


# ----------------------------------------------------------------------------------- training
@torch.no_grad()
def estimate_loss(model: GPT, data: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> float:
    """Mean loss over ``cfg.eval_iters`` random batches of ``data``, in eval mode."""
    from genai_lib.corpus import get_batch

    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    losses = [model(*get_batch(data, model.cfg.block_size, cfg.batch_size, generator, dev))[1].item()
              for _ in range(cfg.eval_iters)]
    model.train(was_training)
    return sum(losses) / len(losses)


def _lr(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from learning_rate to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def train(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor, cfg: TrainConfig | None = None,
          progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` to predict the next token of ``train_data`` with AdamW.

    Args:
        model: the :class:`GPT` to train (in place).
        train_data, val_data: 1-D tensors of token ids.
        cfg: the schedule; the profile's :data:`TRAIN_PRESETS` entry when ``None``.
        progress: show a tqdm progress bar.

    Returns:
        The loss history: ``step``, ``train`` and ``val`` (estimates every ``eval_interval`` steps,
        and at the start and the end), plus ``step_loss`` (the loss of every training batch).

    With ``cfg.mixed_precision`` the training forward pass runs under ``torch.autocast`` in bfloat16 on
    hardware that computes it natively (:func:`genai_lib.core.autocast_dtype`); the weights, the
    optimiser state and the loss estimates stay float32.
    """
    from genai_lib.corpus import get_batch

    cfg = cfg if cfg is not None else train_preset()
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.eval_interval < 1 or cfg.eval_iters < 1:
        raise GenAIError(f"steps, batch_size, eval_interval and eval_iters must be positive: {cfg}")
    dev = next(model.parameters()).device
    batches, evals = torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]      # matrices and embeddings
    no_decay = [p for p in model.parameters() if p.dim() < 2]    # biases and LayerNorm gains
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate, betas=(0.9, 0.95))
    history: dict[str, list[float]] = {"step": [], "train": [], "val": [], "step_loss": []}
    amp = autocast_dtype(str(dev)) if cfg.mixed_precision else None

    def evaluate(step: int) -> None:
        history["step"].append(step)
        history["train"].append(estimate_loss(model, train_data, cfg, evals))
        history["val"].append(estimate_loss(model, val_data, cfg, evals))

    model.train()
    bar = tqdm(range(cfg.steps), desc="training", disable=not progress)  # pragma: no mutate  (progress bar display)
    for step in bar:
        if step % cfg.eval_interval == 0:
            evaluate(step)
            bar.set_postfix(train=f"{history['train'][-1]:.3f}", val=f"{history['val'][-1]:.3f}")  # pragma: no mutate  (progress bar display)
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        x, y = get_batch(train_data, model.cfg.block_size, cfg.batch_size, batches, dev)  # (B, T), (B, T)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            _, loss = model(x, y)                                                    # loss in float32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        history["step_loss"].append(loss.item())
    evaluate(cfg.steps)
    model.eval()
    return history


# ----------------------------------------------------------------------------------- generation
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of the last dimension and set the rest to −inf (``k=0``: keep all).

    Used by :func:`generate` and by :meth:`genai_lib.text.LanguageModel.next_token_distribution`.
    """
    if not k:
        return logits
    kth = torch.topk(logits, min(k, logits.size(-1))).values[..., -1:]     # (..., 1) the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


# [start:generate]
@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int = 0, greedy: bool = False, use_cache: bool = True,
             seed: int | None = None) -> torch.Tensor:
    """Extend ``idx`` by ``max_new_tokens`` tokens, one at a time.

    Args:
        model: a :class:`GPT` (it is put in eval mode).
        idx: the prompt's token ids ``(B, T)``, at least one token.
        max_new_tokens: how many tokens to add.
        temperature: divides the logits before sampling (< 1 sharper, > 1 flatter).
        top_k: sample only among the ``top_k`` most likely tokens (0 = no limit).
        greedy: take the most likely token instead of sampling.
        use_cache: keep keys and values in a :class:`KVCache` so each step only processes the
            newest token. Without it every step reruns the whole context. Both give the same tokens.
        seed: seeds the sampling so that a call can be repeated (``None`` = the global generator).
            Tokens are drawn on the CPU whatever the model's device, so a seed picks the same tokens on
            a CPU and on a GPU (unless rounding moves a probability across the drawn value).

    Returns:
        ``(B, T + max_new_tokens)``: the prompt followed by the new tokens.
    """
    if idx.dim() != 2 or idx.size(1) < 1:
        raise GenAIError(f"idx must be a (batch, time) tensor with at least one token, got shape {tuple(idx.shape)}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise GenAIError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not greedy and not temperature > 0:
        raise GenAIError(f"temperature must be > 0, got {temperature}; use greedy=True for deterministic output.")
    model.eval()
    generator = None if seed is None else torch.Generator().manual_seed(seed)  # a CPU generator
    block = model.cfg.block_size
    cache = KVCache(model.cfg.n_layer) if use_cache else None
    logits, _ = model(idx[:, -block:], cache=cache)                       # prefill: (B, T, V)
    for _ in range(max_new_tokens):
        logits = logits[:, -1, :] / (1.0 if greedy else temperature)      # (B, V)
        if greedy:
            nxt = logits.argmax(dim=-1, keepdim=True)                       # (B, 1)
        else:
            probs = F.softmax(top_k_filter(logits, top_k), dim=-1)         # (B, V)
            nxt = torch.multinomial(probs.cpu(), num_samples=1, generator=generator).to(idx.device)  # (B, 1)
        idx = torch.cat([idx, nxt], dim=1)                                  # (B, T + 1)
        if cache is None or idx.size(1) > block:
            # No cache, or the window slid: with learned absolute positions every token now sits one
            # position earlier, so cached keys are stale. Recompute the last `block` tokens.
            cache = KVCache(model.cfg.n_layer) if use_cache else None
            logits, _ = model(idx[:, -block:], cache=cache)                 # (B, T', V)
        else:
            logits, _ = model(nxt, cache=cache)                             # only the new token: (B, 1, V)
    return idx
# [end:generate]


def generate_text(model: GPT, tokenizer, prompt: str, max_new_tokens: int = 200, seed: int = 0,
                  **kwargs) -> str:
    """Continue a text prompt with :func:`generate` and return prompt + continuation as text."""
    if not prompt:
        raise GenAIError("The prompt is empty; give the model at least one character to continue.")  # pragma: no mutate  (message wording)
    dev = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=dev)  # (1, T)
    out = generate(model, idx, max_new_tokens, seed=seed, **kwargs)
    return tokenizer.decode(out[0].tolist())


# ----------------------------------------------------------------------------------- GPT-2 bridge
def to_hf(model: GPT):
    """The same network as a ``transformers`` ``GPT2LMHeadModel``, with the weights copied in.

    GPT-2's ``Conv1D`` layers store their weight as ``(in, out)``, the transpose of ``nn.Linear``'s
    ``(out, in)``; everything else maps name for name.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg
    if not cfg.bias:
        raise GenAIError("GPT-2 has biases everywhere; only a GPTConfig with bias=True maps onto it.")  # pragma: no mutate  (message wording)
    hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, activation_function="gelu_new",
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                        bos_token_id=None, eos_token_id=None, pad_token_id=0, tie_word_embeddings=True)
    hf = GPT2LMHeadModel(hf_cfg)
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    ours = model.state_dict()
    with torch.no_grad():
        for name, p in hf.state_dict().items():
            if name not in ours:
                continue  # non-parameter buffers of transformers' implementation
            src = ours[name].t() if name.endswith(conv1d) else ours[name]
            if src.shape != p.shape:
                raise GenAIError(f"Cannot copy {name}: ours {tuple(src.shape)}, GPT-2 {tuple(p.shape)}")
            p.copy_(src)
    return hf.to(next(model.parameters()).device).eval()

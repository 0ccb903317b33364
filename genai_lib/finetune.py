"""Parameter-efficient fine-tuning of a chat model with LoRA (and QLoRA on a GPU), through ``peft``.

LoRA freezes every pretrained weight matrix ``W`` (d_out × d_in) and learns a low-rank update beside
it: ``W x + (alpha / r) · B A x`` with ``A`` (r × d_in) and ``B`` (d_out × r), ``B`` starting at zero so
that training starts from the pretrained model. Only ``r · (d_in + d_out)`` numbers per adapted
matrix are trained, a fraction of a percent of the model. QLoRA does the same on top of a base model
stored in 4-bit NF4, which needs a CUDA GPU and the ``bitsandbytes`` package.

Typical use::

    from genai_lib import finetune, text
    lm = text.load("chat", dtype=torch.float32)                   # train and merge in float32 (see merge)
    cfg = finetune.preset("offline")
    model = finetune.build(lm.model, cfg)                         # a peft model; base weights frozen
    losses = finetune.train(model, lm.tokenizer, train_items, cfg)
    print(finetune.evaluate(model, lm.tokenizer, test_items, cfg)["exact"])
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genai_lib.core import GenAIError, preset_of, set_seed
from genai_lib.registry import resolve
from genai_lib.text import LanguageModel

Item = tuple[str, str]  # (question, answer)


@dataclass
class LoRAConfig:
    """What to adapt and how long to train.

    Attributes:
        r: rank of the update ``B A``; the number of trainable numbers grows linearly with it.
        alpha: the update is scaled by ``alpha / r`` (so changing ``r`` keeps a similar step size).
        dropout: dropout on the adapter's input during training.
        target_modules: names of the linear layers that get an adapter (Llama: q/k/v/o_proj, up/down/gate_proj).
        layers: which transformer blocks get adapters (``None`` = all). Adapting only the top blocks
            also saves time: back-propagation stops below the lowest adapter.
        steps: optimizer steps.
        batch_size: examples per step.
        lr: AdamW learning rate (LoRA tolerates larger rates than full fine-tuning).
        system: the system message of every prompt (short prompts train faster).
        max_new_tokens: the longest generated answer when evaluating.
        seed: seeds the adapter's initialisation and the order of the examples.
        load_in_4bit: QLoRA: load the base model in 4-bit NF4 (CUDA + bitsandbytes only).
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    layers: tuple[int, ...] | None = None
    steps: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    system: str = "Answer briefly."
    max_new_tokens: int = 10
    seed: int = 0
    load_in_4bit: bool = False
    extra: dict = field(default_factory=dict)  # passed on to peft.LoraConfig

    def validate(self) -> None:
        """Raise :class:`GenAIError` with a clear message if a setting is out of range."""
        if not isinstance(self.r, int) or self.r <= 0:
            raise GenAIError(f"LoRA rank r must be a positive integer, got {self.r!r}")
        if self.alpha <= 0:
            raise GenAIError(f"alpha must be positive, got {self.alpha!r}")
        if not self.target_modules:
            raise GenAIError("target_modules is empty: name at least one linear layer to adapt (e.g. 'q_proj').")
        for name, val in (("steps", self.steps), ("batch_size", self.batch_size), ("max_new_tokens", self.max_new_tokens)):
            if not isinstance(val, int) or val <= 0:
                raise GenAIError(f"{name} must be a positive integer, got {val!r}")
        if not self.lr > 0:
            raise GenAIError(f"lr must be positive, got {self.lr!r}")


PRESETS: dict[str, LoRAConfig] = {
    # a random tiny model's logits are nearly uniform; adapting every matrix lets the loss move quickly.
    "tiny": LoRAConfig(r=4, alpha=8, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                     "down_proj"), steps=30, batch_size=8, lr=5e-2, max_new_tokens=6),
    # SmolLM2-135M on 2 CPU cores: adapters on all attention and MLP matrices of the top 8 of 30 blocks.
    "offline": LoRAConfig(r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                          "up_proj", "down_proj"),
                          layers=tuple(range(22, 30)), steps=24, batch_size=8, lr=2e-3, max_new_tokens=8),
    # the paper-scale run on a GPU: every block, QLoRA's 4-bit base.
    "hub": LoRAConfig(r=16, alpha=32, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"), steps=200, batch_size=16, lr=2e-4,
                      load_in_4bit=True),
}


def preset(profile: str | None = None, **overrides: Any) -> LoRAConfig:
    """The profile's preset :class:`LoRAConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


# ----------------------------------------------------------------------------- parameters
def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """``{"trainable": ..., "total": ...}``: numbers of parameters that get gradients, and all of them."""
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), "total": total}


def lora_parameter_formula(model: torch.nn.Module, cfg: LoRAConfig) -> int:
    """The trainable-parameter count LoRA should give: ``r · (d_in + d_out)`` per adapted matrix.

    Counted on the *base* model (before :func:`build`), from the shapes of the matching linear layers.
    """
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in cfg.target_modules:
            layer = _layer_number(name)
            if cfg.layers is None or layer in cfg.layers:
                total += cfg.r * (module.in_features + module.out_features)
    return total


def _layer_number(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:]):
        if a == "layers" and b.isdigit():
            return int(b)
    return None


# ----------------------------------------------------------------------------- build
# [start:build]
def build(model: torch.nn.Module, cfg: LoRAConfig | None = None):
    """Wrap a causal LM with LoRA adapters; its own weights are frozen (and modified in place).

    Args:
        model: a ``transformers`` causal LM (e.g. ``text.load("chat").model``).
        cfg: the LoRA settings; the profile's preset when ``None``.

    Returns:
        A ``peft.PeftModel`` whose only trainable parameters are the adapters.
    """
    from peft import LoraConfig, get_peft_model

    cfg = cfg or preset()
    cfg.validate()
    set_seed(cfg.seed)
    names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = [t for t in cfg.target_modules if t not in names]
    if missing:
        raise GenAIError(f"target_modules {missing} are not linear layers of this model; "
                         f"choose among {sorted(names)}.")
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules),
                      layers_to_transform=list(cfg.layers) if cfg.layers is not None else None,
                      task_type="CAUSAL_LM", **cfg.extra)
    return get_peft_model(model, lora)
# [end:build]


def load_base_4bit(role: str = "chat", profile: str | None = None, path: str | None = None):
    """QLoRA's base model: the weights stored in 4-bit NF4, computed in bfloat16 (Dettmers et al., 2023).

    Args:
        role: the registry role of the causal LM (``chat`` by default).
        profile: whose model; the active profile when ``None``.
        path: a local folder or Hub id instead of the registry's model.

    Returns:
        The quantized model, prepared for k-bit training (``peft.prepare_model_for_kbit_training``).

    Raises:
        GenAIError: no CUDA GPU, or ``bitsandbytes`` is not installed.
    """
    # [start:qlora-4bit]
    if not torch.cuda.is_available():
        raise GenAIError("QLoRA needs a CUDA GPU: bitsandbytes' 4-bit NF4 kernels do not run on this CPU. "
                         "Use plain LoRA (load_in_4bit=False) here, or run the hub profile on a GPU machine.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise GenAIError("QLoRA needs the bitsandbytes package: `pip install bitsandbytes` (on a CUDA machine).")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    src = resolve(role, profile, path)
    model = AutoModelForCausalLM.from_pretrained(src.source, revision=src.revision, quantization_config=quant,
                                                 device_map={"": 0})
    return prepare_model_for_kbit_training(model)
    # [end:qlora-4bit]


# ----------------------------------------------------------------------------- data
def prompt(tokenizer, question: str, cfg: LoRAConfig) -> str:
    """The chat prompt for one question (the model's chat template, the config's system message)."""
    msgs = [{"role": "system", "content": cfg.system}, {"role": "user", "content": question}]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def encode(tokenizer, items: Sequence[Item], cfg: LoRAConfig) -> dict[str, torch.Tensor]:
    """Tokenize (question, answer) pairs for training; the loss counts only the answer's tokens.

    Returns:
        ``input_ids``, ``attention_mask`` and ``labels``, each (N, T); ``labels`` is -100 on the
        prompt and the padding, so only the answer and its end-of-turn token are learned.
    """
    if not items:
        raise GenAIError("No training items: give a non-empty list of (question, answer) pairs.")
    eos = tokenizer.eos_token or ""
    rows = []
    for q, a in items:
        if not q.strip() or not a.strip():
            raise GenAIError(f"Empty question or answer in item {(q, a)!r}.")
        p = tokenizer(prompt(tokenizer, q, cfg), add_special_tokens=False)["input_ids"]
        t = tokenizer(a + eos, add_special_tokens=False)["input_ids"]
        rows.append((p + t, [-100] * len(p) + t))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in rows])                   # (N, T)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in rows])         # (N, T)
    labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in rows])               # (N, T)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------- train and evaluate
def train(model, tokenizer, items: Sequence[Item], cfg: LoRAConfig | None = None,
          progress: bool = True) -> list[float]:
    """Train the trainable parameters (the adapters) on ``items`` with AdamW.

    Args:
        model: a model from :func:`build` (or any model whose trainable parameters you want to train).
        tokenizer: its tokenizer.
        items: (question, answer) pairs.
        cfg: the settings; the profile's preset when ``None``.
        progress: show a progress bar.

    Returns:
        The training loss at every step (mean cross-entropy over the answer tokens).
    """
    cfg = cfg or preset()
    cfg.validate()
    data = encode(tokenizer, items, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise GenAIError("The model has no trainable parameters; wrap it with finetune.build() first.")
    device = params[0].device
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    losses = []
    model.train()
    # [start:training-loop]
    for _ in tqdm(range(cfg.steps), desc="LoRA", disable=not progress):
        if len(order) < cfg.batch_size:  # reshuffle the examples once they are used up
            order += rng.sample(range(len(items)), len(items))
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        batch = {k: v[idx] for k, v in data.items()}
        width = int(batch["attention_mask"].sum(1).max())                      # drop all-padding columns
        batch = {k: v[:, :width].to(device) for k, v in batch.items()}         # (B, T)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # [end:training-loop]
    model.eval()
    return losses


def normalise(answer: str) -> str:
    """The first line of an answer, lower case, single spaces, no trailing full stop."""
    first = answer.strip().split("\n")[0] if answer.strip() else ""
    return " ".join(first.lower().replace(",", " ").split()).rstrip(".")


def evaluate(model, tokenizer, items: Sequence[Item], cfg: LoRAConfig | None = None,
             batch_size: int = 16) -> dict:
    """Greedy answers to held-out questions, scored by exact match after :func:`normalise`.

    Returns:
        ``{"exact": fraction correct, "outputs": [answers], "correct": [bools]}``.
    """
    cfg = cfg or preset()
    if not items:
        raise GenAIError("No evaluation items: give a non-empty list of (question, answer) pairs.")
    prompts = [prompt(tokenizer, q, cfg) for q, _ in items]
    lm = LanguageModel(tokenizer, model, name="evaluated")
    outputs = [o.strip() for o in lm.generate_batch(prompts, max_new_tokens=cfg.max_new_tokens,
                                                    batch_size=batch_size, seed=None)]
    correct = [normalise(o) == normalise(a) for o, (_, a) in zip(outputs, items)]
    return {"exact": sum(correct) / len(items), "outputs": outputs, "correct": correct}


@torch.no_grad()
def logits(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """The model's logits for some texts (right-padded batch), (B, T, V); for comparing models."""
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    device = next(model.parameters()).device
    return model(**{k: v.to(device) for k, v in enc.items()}).logits.float().cpu()


def save_adapter(model, folder: str | Path) -> Path:
    """Save only the adapter weights and their config (kilobytes to megabytes, not the whole model)."""
    folder = Path(folder)
    model.save_pretrained(folder)
    return folder


def load_adapter(base_model, folder: str | Path):
    """Put a saved adapter on a (fresh) base model; returns a ``PeftModel`` in eval mode."""
    from peft import PeftModel

    if not (Path(folder) / "adapter_config.json").exists():
        raise GenAIError(f"No adapter in {folder!s} (adapter_config.json is missing); save one with save_adapter().")
    return PeftModel.from_pretrained(base_model, str(folder)).eval()


def merge(model):
    """Fold the adapters into the base weights (``W + (alpha/r) B A``) and return a plain model.

    The sum is stored in the base weights' dtype. In bfloat16 or float16 the small update is rounded
    to a coarse grid around each weight, so the merged model computes visibly different logits from the
    adapter model; merge a float32 base (``text.load(..., dtype=torch.float32)``) to keep them equal.
    """
    return model.merge_and_unload()

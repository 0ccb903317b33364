"""Dynamic int8 quantisation of SmolLM2's linear layers on the CPU: speed AND quality, side by side.

``torch.ao.quantization.quantize_dynamic`` stores every ``nn.Linear`` weight in int8 (one scale per
tensor) and quantises the activations on the fly. This script loads the offline SmolLM2 twice (fp32 and
int8) and measures, in one run:

* decoding speed: greedy tokens/s at batch 1 and at ``--batch`` (best of ``--repeats``, interleaved);
* perplexity of a fixed set of sentences (the text-generation and evaluation chapters' kind);
* the prompting chapter's score: zero-shot accuracy on its tasks (``--items`` questions per task);
* how often the two models' greedy answers are identical.

The book adopts quantisation only if the speed gain is large and the change in scores is stated on the
page; this script prints the figures that decision needs.

    GENAI_THREADS=2 PYTHONPATH=. python bench/quantize.py --items 4
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch

from genai_lib import prompting, text
from genai_lib.core import apply_thread_policy

SENTENCES = [
    "The cat sat on the mat and looked out of the window at the rain.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "The old bridge over the river will be closed for repairs until March.",
    "A language model predicts a probability for every possible next token.",
    "Students built a cheap robot with a camera and a neural network to sort bottles.",
    "In the beginning God created the heaven and the earth.",
]


def quantized(lm: text.LanguageModel) -> text.LanguageModel:
    from torch.ao.quantization import quantize_dynamic

    model = quantize_dynamic(copy.deepcopy(lm.model), {torch.nn.Linear}, dtype=torch.qint8)
    return text.LanguageModel(lm.tokenizer, model, name=lm.name + " (int8 dynamic)", profile=lm.profile)


def speed(lm: text.LanguageModel, prompts: list[str], new_tokens: int) -> float:
    t0 = time.perf_counter()
    lm.generate_batch(prompts, max_new_tokens=new_tokens, batch_size=len(prompts))
    return len(prompts) * new_tokens / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=4, help="prompting questions per task")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    apply_thread_policy()
    base = text.load("chat", profile="offline", device="cpu")
    base.model.generation_config.eos_token_id = None  # speed runs generate exactly --new-tokens
    models = {"fp32": base, "int8": quantized(base)}
    size = {k: sum(b.numel() * b.element_size() for b in
                   (list(m.model.parameters()) + list(m.model.buffers()))) for k, m in models.items()}
    for m in models["int8"].model.modules():  # packed int8 weights are not parameters: count them
        if hasattr(m, "weight") and callable(m.weight):  # DynamicQuantizedLinear.weight() unpacks it
            size["int8"] += m.weight().numel()
    prompts = [base.format_chat(f"Tell me one fact about the number {i}.") for i in range(args.batch)]
    tps = {k: {"batch 1": 0.0, f"batch {args.batch}": 0.0} for k in models}
    for _ in range(args.repeats):
        for k, lm in models.items():
            tps[k]["batch 1"] = max(tps[k]["batch 1"], speed(lm, prompts[:1], args.new_tokens))
            tps[k][f"batch {args.batch}"] = max(tps[k][f"batch {args.batch}"], speed(lm, prompts, args.new_tokens))
    ppl = {k: math.exp(sum(math.log(lm.perplexity(s)) for s in SENTENCES) / len(SENTENCES))
           for k, lm in models.items()}
    cfg = prompting.PromptingConfig(items_per_task=args.items)
    for lm in models.values():
        lm.model.generation_config.eos_token_id = base.tokenizer.eos_token_id
    scores, replies = {}, {}
    for k, lm in models.items():
        res = prompting.evaluate(lm, prompting.TASKS, "zero_shot", cfg)
        scores[k] = res.accuracy
        replies[k] = [r["reply"] for r in res.rows]
    same = sum(a == b for a, b in zip(replies["fp32"], replies["int8"])) / len(replies["fp32"])
    out = {"threads": torch.get_num_threads(), "new_tokens": args.new_tokens,
           "model_MB": {k: round(v / 1e6) for k, v in size.items()},
           "tokens_per_s": {k: {b: round(v, 2) for b, v in d.items()} for k, d in tps.items()},
           "speedup_int8": {b: round(tps["int8"][b] / tps["fp32"][b], 2) for b in tps["fp32"]},
           "perplexity_geomean": {k: round(v, 3) for k, v in ppl.items()},
           "prompting_zero_shot_accuracy": scores, "questions": len(replies["fp32"]),
           "identical_greedy_answers": round(same, 3)}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()

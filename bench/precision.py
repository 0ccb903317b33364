"""SmolLM2 in float32, bfloat16 and dynamic int8 on the CPU: speed AND the chapters' scores, side by side.

``genai_lib.text.load`` puts the offline chat model in bfloat16 on a CPU that computes it natively
(AVX512-BF16 or AMX; :func:`genai_lib.core.model_dtype`). This script measures what that choice costs
and gains, in one run, for each precision named in ``--precisions``:

* decoding speed: greedy tokens/s at batch 1 and at ``--batch`` (best of ``--repeats``, interleaved);
* perplexity of a fixed set of sentences (the text-generation and evaluation chapters' kind);
* the prompting chapter's scores: :func:`genai_lib.prompting.compare` at the book's preset (every
  technique), its wall time, and how many replies equal float32's;
* the code-generation chapter's greedy pass@1 on its tasks, and how many programs equal float32's.

``--only gpt`` measures the other use of bfloat16 in the book: the transformers chapter's character GPT
trained with ``gpt.train`` at its ``offline`` preset, float32 against bfloat16 mixed precision (wall time,
final training and validation loss).

``int8`` is ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` (one scale per tensor);
it was measured on 2026-11-28 (``bench/results/quantize-cpu-2026-11-28.json``) and rejected.

    GENAI_THREADS=1 PYTHONPATH=. python bench/precision.py --json bench/results/precision-cpu-DATE.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from functools import partial

import torch

from genai_lib import codegen, prompting, text
from genai_lib.core import apply_thread_policy, cpu_has_native_bf16

from _timing import no_eos, save_json, timed as _timed  # bench/_timing.py (a script's own folder is on sys.path)

SENTENCES = [
    "The cat sat on the mat and looked out of the window at the rain.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "The old bridge over the river will be closed for repairs until March.",
    "A language model predicts a probability for every possible next token.",
    "Students built a cheap robot with a camera and a neural network to sort bottles.",
    "In the beginning God created the heaven and the earth.",
]


def in_precision(lm: text.LanguageModel, name: str) -> text.LanguageModel:
    """A copy of the float32 ``lm`` in ``name`` (``fp32``, ``bf16`` or ``int8``)."""
    model = copy.deepcopy(lm.model)
    if name == "int8":
        from torch.ao.quantization import quantize_dynamic

        model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    else:
        model = model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[name])
    return text.LanguageModel(lm.tokenizer, model, name=f"{lm.name} ({name})", profile=lm.profile)


def speed(lm: text.LanguageModel, prompts: list[str], new_tokens: int) -> float:
    with no_eos(lm.model):  # generate exactly new_tokens per row
        _, wall, _ = _timed(lambda: lm.generate_batch(prompts, max_new_tokens=new_tokens, batch_size=len(prompts)))
    return len(prompts) * new_tokens / wall


timed = partial(_timed, ndigits=1)  # figures to a tenth of a second


def gpt_training(json_path: str) -> dict:
    """The transformers chapter's GPT, trained at the offline preset in float32 and in bf16 mixed precision."""
    from dataclasses import replace

    from genai_lib import corpus, gpt

    kjv = corpus.load_kjv()
    tok = corpus.CharTokenizer.from_text(kjv)
    train_data, val_data = corpus.split(torch.tensor(tok.encode(kjv), dtype=torch.long))
    out: dict = {"threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(), "torch": torch.__version__}
    for name, amp in (("fp32", False), ("bf16-autocast", True)):
        torch.manual_seed(0)
        model = gpt.build(gpt.preset("offline", vocab_size=tok.vocab_size), device="cpu")
        cfg = replace(gpt.train_preset("offline"), mixed_precision=amp)
        hist, w, c = timed(lambda: gpt.train(model, train_data, val_data, cfg, progress=False))
        out[name] = {"wall_s": w, "cpu_s": c, "train_loss": round(hist["train"][-1], 3), "val_loss": round(hist["val"][-1], 3)}
        print(name, json.dumps(out[name]), flush=True)
    save_json(json_path, out)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, int8")
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: prompting, codegen")
    ap.add_argument("--only", default="", help="'gpt': only the GPT training comparison")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    apply_thread_policy()
    if args.only == "gpt":
        return gpt_training(args.json)
    names = [p for p in args.precisions.split(",") if p]
    base = text.load("chat", profile="offline", device="cpu", dtype=torch.float32)
    models = {k: in_precision(base, k) for k in names}
    out: dict = {"threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(),
                 "torch": torch.__version__, "new_tokens": args.new_tokens, "batch": args.batch}
    prompts = [base.format_chat(f"Tell me one fact about the number {i}.") for i in range(args.batch)]
    tps = {k: {"batch 1": 0.0, f"batch {args.batch}": 0.0} for k in models}
    for _ in range(args.repeats):
        for k, lm in models.items():
            tps[k]["batch 1"] = max(tps[k]["batch 1"], speed(lm, prompts[:1], args.new_tokens))
            tps[k][f"batch {args.batch}"] = max(tps[k][f"batch {args.batch}"], speed(lm, prompts, args.new_tokens))
    out["tokens_per_s"] = {k: {b: round(v, 2) for b, v in d.items()} for k, d in tps.items()}
    out["speedup_vs_fp32"] = {k: {b: round(tps[k][b] / tps[names[0]][b], 2) for b in tps[k]} for k in names}
    with torch.no_grad():
        out["perplexity_geomean"] = {
            k: round(math.exp(sum(math.log(lm.perplexity(s)) for s in SENTENCES) / len(SENTENCES)), 3)
            for k, lm in models.items()}
    print(json.dumps(out, indent=1), flush=True)
    if "prompting" not in args.skip:
        ref = None
        out["prompting"] = {}
        for k, lm in models.items():
            res, w, c = timed(lambda: prompting.compare(lm, config=prompting.preset("offline")))
            ref = ref or res
            same = sum(a["reply"] == b["reply"] for t in res for a, b in zip(res[t].rows, ref[t].rows))
            out["prompting"][k] = {"wall_s": w, "cpu_s": c, "same_replies": f"{same}/{sum(len(r.rows) for r in res.values())}",
                                   "accuracy": {t: round(r.accuracy, 3) for t, r in res.items()}}
            print(k, "prompting", json.dumps(out["prompting"][k]), flush=True)
    if "codegen" not in args.skip:
        ref = None
        out["codegen_greedy"] = {}
        for k, lm in models.items():
            rep, w, c = timed(lambda: codegen.evaluate(lm, codegen.TASKS, codegen.preset("offline"), greedy=True))
            ref = ref or rep.completions
            same = sum(a == b for t, progs in rep.completions.items() for a, b in zip(progs, ref[t]))
            out["codegen_greedy"][k] = {"wall_s": w, "cpu_s": c, "pass@1": round(rep.pass_at[1], 3),
                                        "same_programs": f"{same}/{len(rep.completions)}"}
            print(k, "codegen", json.dumps(out["codegen_greedy"][k]), flush=True)
    print(json.dumps(out, indent=1))
    save_json(args.json, out)
    return out


if __name__ == "__main__":
    main()

"""Do genai_lib.gpt and transformers' GPT-2 agree at GPT-2-small's shape? Precision or a bug?

Both models get the same random weights (``gpt.to_hf``) at the 124 M shape (12 layers, 12 heads, width 768,
1,024 positions, 50,257 tokens) and decode greedily from the same prompt. For each arithmetic setting
(float32 with TF32 matrix units on, float32 with TF32 off, float64) the script prints:

* ``same_tokens``: whether the two greedy sequences are identical, and where they first differ;
* ``max_logit_diff``: the largest difference of the two models' logits on the same sequence (teacher
  forced, so one early flip does not compound);
* ``min_top2_gap``: the smallest distance between the best and the second-best logit along that
  sequence. Random weights give an almost flat distribution over 50,257 tokens, so some steps are
  near-ties; when ``max_logit_diff`` exceeds such a gap, rounding alone can flip greedy's choice.

A bug shows as a logit difference far above the rounding of the arithmetic in use (and in float64,
where rounding is ~1e-15, as anything above ~1e-10); a precision effect shows as differences of the
size of that rounding (~1e-3 relative with TF32, ~1e-6 in float32) and agreement in float64.

    PYTHONPATH=. python bench/gpt_precision.py --device cuda
"""

from __future__ import annotations

import argparse
import json

import torch

from genai_lib import gpt

from _timing import append_jsonl  # bench/_timing.py (a script's own folder is on sys.path)


def check(device: str, dtype: torch.dtype, tf32: bool | None, new_tokens: int, shape: dict) -> dict:
    if device.startswith("cuda") and tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    ours = gpt.GPT(gpt.GPTConfig(**shape)).to(device=device, dtype=dtype).eval()
    hf = gpt.to_hf(ours.float()).to(dtype=dtype)
    ours = ours.to(dtype=dtype)
    prompt = torch.tensor([[0, 1, 2, 3]], device=device)                       # (1, 4)
    with torch.no_grad():
        a = gpt.generate(ours, prompt, new_tokens, greedy=True, use_cache=True)  # (1, 4 + n)
        b = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        la, _ = ours(a)                                                          # (1, T, V)
        lb = hf(a).logits                                                        # (1, T, V)
    same = bool(torch.equal(a, b))
    diff_at = None if same else int((a[0] != b[0]).nonzero()[0])
    top2 = la[0].double().topk(2, dim=-1).values                                 # (T, 2)
    gaps = (top2[:, 0] - top2[:, 1])[prompt.shape[1] - 1:-1]                     # the steps that chose a token
    out = {"device": device, "dtype": str(dtype).replace("torch.", ""),
           "tf32": None if not device.startswith("cuda") else torch.backends.cuda.matmul.allow_tf32,
           "attention": getattr(hf.config, "_attn_implementation", None), "new_tokens": new_tokens,
           "same_tokens": same, "first_difference_at_new_token": None if same else diff_at - prompt.shape[1],
           "max_logit_diff": float((la.double() - lb.double()).abs().max()),
           "logit_std": float(la.double().std()), "min_top2_gap": float(gaps.min()),
           "gap_at_first_difference": None if same else float(gaps[diff_at - prompt.shape[1]])}
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--new-tokens", type=int, default=255)
    ap.add_argument("--small", action="store_true", help="the 4-layer shape of bench/kv_cache.py (quick)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    shape = (dict(vocab_size=65, block_size=256, n_layer=4, n_head=4, n_embd=128) if args.small else
             dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768))
    settings = [("default", torch.float32, None)]
    if args.device.startswith("cuda"):
        settings += [("tf32 on", torch.float32, True), ("tf32 off", torch.float32, False)]
    settings += [("float64", torch.float64, False)]
    rows = []
    default_tf32 = torch.backends.cuda.matmul.allow_tf32
    for name, dtype, tf32 in settings:
        row = {"setting": name, "shape": shape, **check(args.device, dtype, tf32, args.new_tokens, shape)}
        if name == "default":
            row["torch_default_tf32"] = default_tf32
        rows.append(row)
        print(json.dumps(row), flush=True)
    torch.backends.cuda.matmul.allow_tf32 = default_tf32
    append_jsonl(args.json, rows)
    print(f"\n{'setting':10s} {'same':>5s} {'differs at':>10s} {'max |dlogit|':>13s} {'min top-2 gap':>14s}")
    for r in rows:
        print(f"{r['setting']:10s} {str(r['same_tokens']):>5s} {str(r['first_difference_at_new_token']):>10s} "
              f"{r['max_logit_diff']:13.3e} {r['min_top2_gap']:14.3e}")
    return rows


if __name__ == "__main__":
    main()

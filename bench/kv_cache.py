"""Tokens per second of genai_lib's GPT with and without its KV cache, against transformers' GPT-2.

Both models have the same shape and the same weights (copied with ``gpt.to_hf``), generate greedily
from the same one-token prompt, and must produce the same tokens. The four runs are interleaved and
repeated; the best of each is kept, and the ratios come from the same run, so they hold on a busy
machine even when the absolute figures do not.

    PYTHONPATH=. python bench/kv_cache.py                 # prints one JSON line per run, then a summary
    PYTHONPATH=. python bench/kv_cache.py --new-tokens 511 --block-size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import json

import torch

from genai_lib import gpt

from _timing import timed  # bench/_timing.py (a script's own folder is on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=255, help="tokens generated after a 1-token prompt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = gpt.GPTConfig(vocab_size=65, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                        n_embd=args.n_embd)
    torch.manual_seed(0)
    ours = gpt.build(cfg, device="cpu").eval()
    hf = gpt.to_hf(ours)
    prompt = torch.zeros(1, 1, dtype=torch.long)  # (1, 1)
    n = args.new_tokens

    runs = {
        "genai_lib.gpt, KV cache": lambda: gpt.generate(ours, prompt, n, greedy=True, use_cache=True),
        "genai_lib.gpt, no cache": lambda: gpt.generate(ours, prompt, n, greedy=True, use_cache=False),
        "transformers GPT-2, KV cache": lambda: hf.generate(prompt, max_new_tokens=n, min_new_tokens=n,
                                                            do_sample=False, use_cache=True, pad_token_id=0),
        "transformers GPT-2, no cache": lambda: hf.generate(prompt, max_new_tokens=n, min_new_tokens=n,
                                                            do_sample=False, use_cache=False, pad_token_id=0),
    }
    best: dict[str, tuple[float, float]] = {}
    tokens: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for fn in runs.values():  # warm-up
            fn()
        for _ in range(args.repeats):
            for name, fn in runs.items():
                out, wall, cpu = timed(fn)
                tokens[name] = out
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    ref = tokens["genai_lib.gpt, KV cache"]
    same = all(torch.equal(t, ref) for t in tokens.values())
    tps = {}
    for name, (wall, cpu) in best.items():
        tps[name] = n / wall
        print(json.dumps({"run": name, "new_tokens": n, "best_wall_s": round(wall, 4), "cpu_s": round(cpu, 4),
                          "tokens_per_s": round(n / wall, 1)}))
    summary = {
        "shape": {"block_size": cfg.block_size, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
                  "vocab_size": cfg.vocab_size, "params": ours.num_params()},
        "threads": torch.get_num_threads(), "repeats": args.repeats,
        "identical_tokens_all_four": same,
        "speedup_of_cache_ours": round(tps["genai_lib.gpt, KV cache"] / tps["genai_lib.gpt, no cache"], 2),
        "speedup_of_cache_transformers": round(tps["transformers GPT-2, KV cache"] / tps["transformers GPT-2, no cache"], 2),
        "ours_vs_transformers_cached": round(tps["genai_lib.gpt, KV cache"] / tps["transformers GPT-2, KV cache"], 2),
        "ours_vs_transformers_uncached": round(tps["genai_lib.gpt, no cache"] / tps["transformers GPT-2, no cache"], 2),
    }
    print(json.dumps(summary))
    if not same:
        raise SystemExit("The four runs did not generate the same tokens.")


if __name__ == "__main__":
    main()

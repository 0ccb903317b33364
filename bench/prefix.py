"""Shared prompt prefixes: what computing a common prefix once saves, on the book's real prompts.

``LanguageModel.generate_batch`` finds the prefixes that rows of a batch share (the worked examples of
a few-shot prompt, a task's instruction, ``n`` samples of one code prompt), computes their keys and
values once, and copies them into each row's KV cache (``text.SHARED_PREFIX_MIN``). This script runs
the prompting chapter's technique comparison and sampling sweep and the code chapter's sampled programs
(pass@k) with sharing off and on, in this process, in each precision asked for, and prints wall and CPU
seconds, the token positions the first forward pass computes, how many replies are the same, and the
chapters' scores both ways.

In float32 the replies must be the same; in bfloat16 a different batch shape rounds differently, so
some replies change, as they do with any change of batch (the chapters' scores come from the run).

    GENAI_THREADS=1 PYTHONPATH=. python bench/prefix.py --json bench/results/prefix-cpu-DATE.json
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from functools import partial

import torch

from genai_lib import codegen, core, prompting, text

from _timing import save_json, timed as _timed  # bench/_timing.py (a script's own folder is on sys.path)

timed = partial(_timed, ndigits=1)  # figures to a tenth of a second


@contextmanager
def sharing(on: bool):
    """Turn prefix sharing on (the library's default minimum) or off for the calls inside."""
    old = text.SHARED_PREFIX_MIN
    text.SHARED_PREFIX_MIN = old if on else 0
    try:
        yield
    finally:
        text.SHARED_PREFIX_MIN = old


def _prompts(lm: text.LanguageModel, workload: str) -> list[str]:
    """The prompts of one workload's first batch, as ``generate_batch`` sees them."""
    if workload == "codegen":
        n = codegen.preset(lm.profile).n_samples
        return [lm.format_chat(f"{codegen.CHAT_INSTRUCTION}\n\n```python\n{t.prompt}```")
                for t in codegen.TASKS for _ in range(n)]
    cfg = prompting.preset(lm.profile)
    return [lm.format_chat(c) for c in prompting.conversations(prompting.TASKS, workload, cfg)[:cfg.batch_size]]


def _score(workload: str, result) -> dict[str, float]:
    """The chapter's scores: accuracy per technique or setting, or pass@k."""
    if workload == "codegen":
        return {f"pass@{k}": round(v, 3) for k, v in result.pass_at.items()}
    return {name: round(res.accuracy, 3) for name, res in result.items()}


def _replies(workload: str, result) -> list[str]:
    if workload == "codegen":
        return [p for progs in result.completions.values() for p in progs]
    return [row["reply"] for res in result.values() for row in res.rows]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", default="auto,float32",
                    help="precisions to load SmolLM2 in: auto (the library's choice), float32, bfloat16")
    ap.add_argument("--only", default="compare,sweep,codegen", help="any of compare, sweep, codegen")
    ap.add_argument("--json", default="", help="write the figures to this file")
    args = ap.parse_args(argv)
    core.apply_thread_policy()
    out: dict = {"threads": core.thread_count(), "profile": core.get_profile(),
                 "shared_prefix_min": text.SHARED_PREFIX_MIN, "runs": {}}
    for name in args.dtypes.split(","):
        lm = text.load("chat", dtype=None if name == "auto" else getattr(torch, name))
        dtype = str(next(lm.model.parameters()).dtype).removeprefix("torch.")
        print(f"-- {lm.name} in {dtype}", flush=True)
        work = {
            "compare": lambda: prompting.compare(lm),
            "sweep": lambda: prompting.sampling_sweep(lm),
            "codegen": lambda: codegen.evaluate(lm, codegen.TASKS),
        }
        for workload in args.only.split(","):
            runs = {}
            for on in (False, True):
                with sharing(on):
                    res, wall, cpu = timed(work[workload])
                runs["shared" if on else "plain"] = (res, wall, cpu)
            plain, shared = _replies(workload, runs["plain"][0]), _replies(workload, runs["shared"][0])
            same = sum(a == b for a, b in zip(plain, shared))
            probe = {"compare": "few_shot", "sweep": "zero_shot", "codegen": "codegen"}[workload]
            positions = lm.prefill_positions(_prompts(lm, probe))
            row = {"dtype": dtype, "same_replies": f"{same}/{len(plain)}",
                   "scores_plain": _score(workload, runs["plain"][0]), "scores_shared": _score(workload, runs["shared"][0]),
                   f"prefill_positions_{probe}": positions,
                   **{f"{k}_wall_s": v[1] for k, v in runs.items()}, **{f"{k}_cpu_s": v[2] for k, v in runs.items()}}
            out["runs"][f"{workload}-{dtype}"] = row
            print(f"{workload:8s} {dtype:9s} plain {runs['plain'][1]:6.1f} s  shared {runs['shared'][1]:6.1f} s wall  "
                  f"(CPU {runs['plain'][2]:.1f} -> {runs['shared'][2]:.1f} s)  same replies {same}/{len(plain)}  "
                  f"{probe} prefill positions {positions['plain']} -> {positions['shared']}", flush=True)
    save_json(args.json, out)
    return out


if __name__ == "__main__":
    main()

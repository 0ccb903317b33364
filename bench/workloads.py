"""Threads and parallel notebooks: time the book's real workloads at 1 and 2 torch threads, alone and in pairs.

Each workload is a slice of what a notebook does, run in a fresh process with ``GENAI_THREADS`` set:
diffusion training and sampling (the digits U-Net), GAN training, SmolLM2 batched decoding and the
digit classifier. For each one it prints wall and CPU seconds

- alone with 1 thread and alone with 2 threads (what ``make book`` does today: one notebook at a time,
  the thread policy's threads), and
- two copies at once with 1 thread each (what a build that executes two notebooks side by side does).

"speed-up of 2 threads" is wall(1 thread) / wall(2 threads). "pair throughput" is 2 × wall(1 thread
alone) / wall(the pair): how much more work per second two 1-thread processes get done than one 2-thread
process would, relative to one 1-thread process. CPU seconds include OpenMP's spin-waiting, which is why
a second thread can cost CPU without saving wall time.

    PYTHONPATH=. python bench/workloads.py                       # every workload
    PYTHONPATH=. python bench/workloads.py --only decode,diffusion-sample --json bench/results/x.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _timing import append_jsonl  # bench/_timing.py (a script's own folder is on sys.path)

CHILD = r"""
import json, sys, time
import torch
from genai_lib import core
core.apply_thread_policy()
name = sys.argv[1]
core.set_seed(0)
if name == "diffusion-train":
    from genai_lib import diffusion, digits
    import torch.nn.functional as F
    data = digits.load()
    model = diffusion.build(diffusion.preset("offline"), device="cpu")
    run = lambda: diffusion.train(model, data.train_x, F.one_hot(data.train_y, 10).float(), steps=120, progress=False)
elif name == "diffusion-sample":
    from genai_lib import diffusion
    model = diffusion.build(diffusion.preset("offline"), device="cpu")
    run = lambda: diffusion.sample(model, labels=torch.arange(300) % 10, steps=10, sampler="dpm", guidance_scale=1.5)
elif name == "gan-train":
    from genai_lib import digits, gan
    data = digits.load()
    cfg = gan.preset("offline", steps=300)
    model = gan.build(cfg, device="cpu")
    run = lambda: gan.train(model, data, cfg, progress=False)
elif name == "decode":
    from genai_lib import text
    lm = text.load("chat", profile="offline", device="cpu")
    prompts = [f"Question {i}: what is {i} plus {i + 3}? Answer briefly." for i in range(20)]
    run = lambda: lm.generate_batch(prompts, batch_size=20, max_new_tokens=24, do_sample=False)
elif name == "classifier":
    from genai_lib import metrics
    run = lambda: metrics.train_classifier(epochs=10)
else:
    raise SystemExit(f"unknown workload {name}")
w0, c0 = time.perf_counter(), time.process_time()
run()
print(json.dumps({"torch_threads": torch.get_num_threads(), "wall_s": round(time.perf_counter() - w0, 2),
                  "cpu_s": round(time.process_time() - c0, 2)}))
"""

WORKLOADS = ("diffusion-train", "diffusion-sample", "gan-train", "decode", "classifier")


def launch(name: str, threads: int, env: dict) -> subprocess.Popen:
    env = {**env, "GENAI_THREADS": str(threads), "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.Popen([sys.executable, "-c", CHILD, name], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"workload failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    ap.add_argument("--json", default="", help="append the rows to this JSON-lines file")
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    rows = []
    for name in args.only.split(","):
        one, two = result(launch(name, 1, env)), result(launch(name, 2, env))
        t0 = time.perf_counter()
        pair = [result(p) for p in [launch(name, 1, env), launch(name, 1, env)]]
        pair_wall = time.perf_counter() - t0
        row = {"workload": name, "wall_1t": one["wall_s"], "cpu_1t": one["cpu_s"], "wall_2t": two["wall_s"],
               "cpu_2t": two["cpu_s"], "pair_wall_1t_each": max(p["wall_s"] for p in pair),
               "pair_cpu_1t_each": round(sum(p["cpu_s"] for p in pair), 2),
               "speedup_2t": round(one["wall_s"] / two["wall_s"], 2),
               "pair_throughput": round(2 * one["wall_s"] / max(p["wall_s"] for p in pair), 2),
               "pair_process_wall_s": round(pair_wall, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    append_jsonl(args.json, rows)
    print(f"\n{'workload':18s} {'1 thread':>15s} {'2 threads':>15s} {'2×1 at once':>15s} {'2t speed-up':>11s} "
          f"{'pair thr.':>9s}\n{'':18s} {'wall / CPU s':>15s} {'wall / CPU s':>15s} {'wall / CPU s':>15s}")
    for r in rows:
        print(f"{r['workload']:18s} {r['wall_1t']:7.1f} / {r['cpu_1t']:5.1f} {r['wall_2t']:7.1f} / {r['cpu_2t']:5.1f} "
              f"{r['pair_wall_1t_each']:7.1f} / {r['pair_cpu_1t_each']:5.1f} {r['speedup_2t']:11.2f} "
              f"{r['pair_throughput']:9.2f}")
    return rows


if __name__ == "__main__":
    main()

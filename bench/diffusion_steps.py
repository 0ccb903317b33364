"""The diffusion chapter's label U-Net: how its samples depend on the training budget.

Trains the chapter's label-conditioned model (the profile's preset) for several step counts (the
cosine schedule is stretched to each budget), then scores each like the chapter's headline: 1,000
samples with DPM-Solver++ (15 steps, guidance 1.3), FID against real digits (and the FID floor of two
real halves), digit-classifier accuracy. Prints one line per budget; use it before changing
``train_steps`` in ``diffusion.PRESETS``. ``--set FIELD=VALUE`` (repeatable) changes other fields of
the preset for every run, to weigh a smaller network or batch against more steps.

    GENAI_THREADS=1 PYTHONPATH=. python bench/diffusion_steps.py --steps 650,975,1300 --seeds 0,1 | tee bench/results/diffusion-steps-DATE.txt
    GENAI_THREADS=1 PYTHONPATH=. python bench/diffusion_steps.py --steps 650 --set "channels=(24, 48, 48)" --set batch_size=96
"""

from __future__ import annotations

import argparse
import ast
import time

import torch
import torch.nn.functional as F

from genai_lib import core, diffusion, digits, metrics


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="650,975,1300", help="comma-separated training budgets")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (DiffusionConfig.seed)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a DiffusionConfig field for every run (a Python literal), e.g. batch_size=96")
    args = ap.parse_args(argv)
    overrides = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    core.apply_thread_policy()
    data = digits.load()
    floor, _ = metrics.fid_floor()
    labels = torch.arange(args.samples) % 10
    rows = []
    runs = [(int(st), int(sd)) for st in args.steps.split(",") for sd in args.seeds.split(",")]
    for steps, seed in runs:
        core.set_seed(seed)
        model = diffusion.build(diffusion.preset(**{**overrides, "train_steps": steps, "seed": seed}))
        c0 = time.process_time()
        diffusion.train(model, data.train_x, F.one_hot(data.train_y, 10).float(), progress=False)
        cpu = time.process_time() - c0
        x = diffusion.sample(model, labels=labels, steps=15, sampler="dpm", guidance_scale=1.3, seed=1)
        row = {**overrides, "steps": steps, "seed": seed, "train_cpu_s": round(cpu), "fid": round(metrics.fid(x), 2), "fid_floor": round(floor, 2),
               "class_accuracy": round(metrics.class_accuracy(x, labels), 3)}
        rows.append(row)
        print(row, flush=True)
    return rows


if __name__ == "__main__":
    main()

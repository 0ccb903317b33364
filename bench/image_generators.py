"""Train each image generator of the book on the digits for a time budget, sample 1,000 images, and
print one JSON line per model: FID (with the floor), IS, class accuracy, train and sample seconds.

    python bench/image_generators.py --seconds 120                      # all models
    python bench/image_generators.py --seconds 120 --models diffusion --save /tmp/samples

Budgets are steps, not wall clock (the machine may be shared): every preset is calibrated so that
its ``offline`` training takes about 120 s on 2 uncontended CPU cores, and ``--seconds S`` scales its
steps (or epochs) by S/120. The JSON line reports the steps run and the CPU seconds measured
(``train_cpu_s``); with torch on ``--threads 1`` the CPU time is not inflated by other processes'
load, and uncontended 2-core wall time is at best half of it (``train_s_2core_est``).

``--save DIR`` writes ``DIR/<model>.npy`` (1000×8×8, the digits' 0–16 scale) and
``DIR/<model>_labels.npy`` (the requested class of each sample; -1 for unconditional models).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genai_lib import core, digits, metrics  # noqa: E402

CALIBRATED_SECONDS = 120.0   # the presets' training budget (uncontended 2-core wall time)


class Timer:
    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def _scale(n: int, seconds: float) -> int:
    return max(1, int(round(n * seconds / CALIBRATED_SECONDS)))


def run_diffusion(data, seconds, n, args, latent=False):
    from genai_lib import diffusion as D

    cond = F.one_hot(data.train_y, 10).float()
    extra = {}
    with Timer() as tt:
        if latent:
            from genai_lib import vae

            with Timer() as tv:
                v = vae.load()                        # trained once, then cached (its own budget)
            extra["vae_train_cpu_s"] = round(tv.cpu, 1)
            model, x = D.build_latent(v)
        else:
            model, x = D.build(D.preset("offline")), data.train_x
        steps = _scale(model.cfg.train_steps, seconds)
        D.train(model, x, cond, steps=steps, progress=not args.quiet)
    labels = torch.arange(n) % 10
    with Timer() as ts:
        x = D.sample(model, labels=labels, steps=args.steps, sampler=args.sampler, guidance_scale=args.guidance,
                     seed=args.seed)
    return x, labels, tt, ts, {"steps": steps, "sampler": f"{args.sampler}-{args.steps}",
                               "guidance": args.guidance, **extra}


def run_gan(data, seconds, n, args):
    from dataclasses import replace

    from genai_lib import gan

    cfg = replace(gan.preset("offline"), steps=_scale(gan.preset("offline").steps, seconds))
    with Timer() as tt:
        model = gan.build(cfg, device="cpu")
        gan.train(model, data, cfg, progress=not args.quiet)
    labels = torch.arange(n) % 10
    with Timer() as ts:
        x = gan.sample(model, n, labels=labels, seed=args.seed)
    return x, labels, tt, ts, {"steps": cfg.steps}


def run_vae(data, seconds, n, args):
    from dataclasses import replace

    from genai_lib import vae

    cfg = replace(vae.preset("offline"), epochs=_scale(vae.preset("offline").epochs, seconds))
    with Timer() as tt:
        model = vae.build(cfg, device="cpu")
        vae.train(model, data, cfg, progress=not args.quiet)
    with Timer() as ts:
        x = vae.sample(model, n, seed=args.seed)
    return x, None, tt, ts, {"epochs": cfg.epochs}


MODELS = {"diffusion": run_diffusion, "latent_diffusion": lambda *a: run_diffusion(*a, latent=True),
          "gan": run_gan, "vae": run_vae}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=CALIBRATED_SECONDS, help="training budget per model")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--n", type=int, default=1000, help="samples per model")
    p.add_argument("--sampler", default="dpm", help="diffusion sampler: ddim, ddpm or dpm")
    p.add_argument("--steps", type=int, default=15, help="diffusion sampling steps")
    p.add_argument("--guidance", type=float, default=1.3, help="classifier-free guidance scale")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps CPU time honest on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="folder for <model>.npy and <model>_labels.npy")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or args.seconds <= 0 or args.n < 2:
        p.error(f"unknown models {unknown} (known: {', '.join(MODELS)})" if unknown else "need --seconds > 0, --n ≥ 2")
    torch.set_num_threads(args.threads)
    core.set_seed(args.seed)
    data = digits.load()
    metrics.classifier()
    floor, floor_std = metrics.fid_floor()
    for name in names:
        core.set_seed(args.seed)
        x, labels, tt, ts, extra = MODELS[name](data, args.seconds, args.n, args)
        r = metrics.evaluate(x, labels)
        row = {"model": name, "fid": round(r["fid"], 2), "fid_floor": round(floor, 2),
               "fid_floor_std": round(floor_std, 2), "is": round(r["is"], 2),
               "class_accuracy": None if labels is None else round(r["class_accuracy"], 4),
               "diversity": round(r["diversity"], 3), "diversity_real": round(r["diversity_real"], 3),
               "histogram": r["histogram"], "n": r["n"], "budget_s": args.seconds,
               "train_cpu_s": round(tt.cpu, 1), "train_wall_s": round(tt.wall, 1),
               "train_s_2core_est": round(tt.cpu / 2, 1), "sample_cpu_s": round(ts.cpu, 2),
               "sample_wall_s": round(ts.wall, 2), "sample_s_2core_est": round(ts.cpu / 2, 2),
               "threads": args.threads, **extra}
        print(json.dumps(row), flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.save(args.save / f"{name}.npy", digits.to_16(x).astype(np.float32))
            lab = np.full(len(x), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
            np.save(args.save / f"{name}_labels.npy", lab)


if __name__ == "__main__":
    main()

"""The text-to-image chapter's text model: trained from scratch, or started from the diffusion chapter's label model.

Trains the label model of the diffusion chapter (the profile's preset, or ``--label-steps``), then text-conditioned
models (MiniLM captions) as ``--runs`` lists them: by default from random weights for 30% of the label
model's steps (what the chapter did on 2026-11-28), and from the label model's EMA denoiser
(``diffusion.build(..., backbone_from=label)``) for 10% and 15% of them. Each is scored like the chapter scores it: digit-classifier accuracy and FID of 300
samples asked with the training phrasings and with held-out phrasings. Prints one line per model.

    GENAI_THREADS=1 PYTHONPATH=. python bench/diffusion_text_init.py [--label-steps N] [--runs label:0.3,...] | tee bench/results/diffusion-text-init-DATE.txt
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from genai_lib import core, diffusion, digits, metrics


def score(model, train_prompts, held_prompts, n: int = 300) -> dict[str, float]:
    out = {}
    for name, prompt_sets in (("train", train_prompts), ("held-out", held_prompts)):
        k = len(prompt_sets[0])
        reps = max(1, n // (10 * k))
        prompts = [p for _ in range(reps) for d in range(10) for p in prompt_sets[d]]
        wanted = torch.tensor([d for _ in range(reps) for d in range(10) for _ in range(k)])
        xs = diffusion.sample(model, prompts=prompts, steps=20, sampler="dpm", seed=6)
        out[f"{name} accuracy"] = round(metrics.class_accuracy(xs, wanted), 3)
        out[f"{name} FID"] = round(metrics.fid(xs), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label-steps", type=int, default=0, help="the label model's budget (default: the preset's)")
    ap.add_argument("--runs", default="scratch:0.30,label:0.10,label:0.15",
                    help="comma-separated start:share pairs (start = scratch or label; share of the label model's steps)")
    args = ap.parse_args(argv)
    core.apply_thread_policy()
    data = digits.load()
    base = diffusion.preset(**({"train_steps": args.label_steps} if args.label_steps else {}))
    c0 = time.process_time()
    core.set_seed(0)
    label = diffusion.build(base)
    diffusion.train(label, data.train_x, F.one_hot(data.train_y, 10).float(), progress=False)
    print(f"label model: {base.train_steps} steps, {time.process_time() - c0:.0f} CPU-s", flush=True)
    train_prompts = [diffusion.captions(d) for d in range(10)]
    held_prompts = [diffusion.captions(d, diffusion.HELDOUT_CAPTIONS) for d in range(10)]
    emb = diffusion.embed_text([p for ps in train_prompts for p in ps]).reshape(10, len(train_prompts[0]), -1)
    runs = [(("scratch" if a == "scratch" else "label model"), float(b)) for a, b in
            (r.split(":") for r in args.runs.split(","))]
    for start, share in runs:
        cfg = diffusion.preset(cond="text", cond_dim=emb.shape[-1], train_steps=max(5, int(share * base.train_steps)))
        model = diffusion.build(cfg, backbone_from=label if start != "scratch" else None)
        for ps, e in zip(train_prompts, emb):
            model.prompt_cache.update(zip(ps, e))
        c0 = time.process_time()
        diffusion.train(model, data.train_x, emb[data.train_y], progress=False)
        cpu = time.process_time() - c0
        print(f"text model from {start:11s} {cfg.train_steps:4d} steps {cpu:5.0f} CPU-s  "
              f"{score(model, train_prompts, held_prompts)}", flush=True)


if __name__ == "__main__":
    main()

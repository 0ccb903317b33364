"""Why decoding is slow and what makes it fast: tokens/s of a SmolLM2-135M-shaped model, against the roofline.

Generating one token reads every weight of the model once (plus the KV cache), but does only about two
floating-point operations per weight and per row of the batch. At batch 1 the floor is therefore set by
memory bandwidth, ``bytes per step / bandwidth``; this script measures the bandwidth of the device it runs
on (a large tensor copy, bytes read + written) and prints each run's fraction of that roofline:

* ``eager``        ``transformers``' ``generate`` with its default dynamic KV cache, batch 1
* ``genai_lib``    the same through :meth:`genai_lib.text.LanguageModel.generate` (tokenising and
                   detokenising included); the ratio ``genai_lib / eager`` is the library's cost (goal >= 0.98)
* ``static``       a static (pre-allocated) KV cache, not compiled
* ``compiled``     static cache + ``torch.compile(mode="reduce-overhead")``: fused kernels replayed as
                   one CUDA graph per step (needs a C++ compiler on the CPU; slow to compile)
* ``cudagraphs``   static cache + ``torch.compile(backend="cudagraphs")``: the launch overhead removed,
                   no kernel fusion (compiles in seconds)
* ``batched``      eager, ``--batch`` prompts at once: the weights are read once for all the rows
* ``sampled``      ``--batch`` rows sampled (temperature 1) by ``generate``'s ``torch.multinomial`` on the device
* ``cpu_sampled``  the same rows sampled by :class:`genai_lib.text.CPUSampler`, as ``LanguageModel`` does:
                   one uniform per row drawn on the CPU, so a seed picks the same tokens on every device

The model has SmolLM2-135M's shape with random weights (speed depends on the shape, not the values),
or the real offline SmolLM2 with ``--real``. Greedy decoding except the two sampled runs; every run
generates exactly ``--new-tokens`` tokens and the greedy runs must agree token for token with ``eager``
(printed). Runs are interleaved and repeated; the best of each is kept, so ratios hold on a busy
machine. Prints one JSON line per run, then a table.

    PYTHONPATH=. python bench/decode.py                                    # CPU: eager, genai_lib, static, batched
    PYTHONPATH=. python bench/decode.py --device cuda --modes eager,genai_lib,compiled,cudagraphs,batched
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

import torch

from genai_lib.core import apply_thread_policy
from genai_lib.runfacts import device_name
from genai_lib.text import bytes_per_step, memory_bandwidth

from _timing import append_jsonl  # bench/_timing.py (a script's own folder is on sys.path)

MODES = ("eager", "genai_lib", "static", "compiled", "cudagraphs", "batched", "sampled", "cpu_sampled")


def smollm2_config():
    """SmolLM2-135M's architecture (Llama: 30 layers, width 576, 9 query and 3 key/value heads)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                       rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                       bos_token_id=1, eos_token_id=None, pad_token_id=0)


def pick_dtype(device: str, name: str) -> torch.dtype:
    """``auto``: what ``text.load`` uses (:func:`genai_lib.core.model_dtype`): bf16 where the GPU or CPU computes
    it natively, fp16 on older GPUs (a T4), fp32 on other CPUs."""
    if name != "auto":
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
    from genai_lib.core import model_dtype

    return model_dtype(device, "offline")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


@dataclass
class Run:
    name: str
    batch: int
    fn: object
    best: float = float("inf")
    cpu: float = 0.0
    out: torch.Tensor | None = None
    warmup_s: float = 0.0


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    ap.add_argument("--modes", default="eager,genai_lib,static,batched",
                    help=f"comma-separated, from {','.join(MODES)}")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8, help="rows of the batched run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--real", action="store_true", help="the offline SmolLM2 weights instead of random ones")
    ap.add_argument("--tokenizer", default="", help="a tokenizer folder (default: SmolLM2's when --real, "
                    "else genai_lib's byte-level tiny tokenizer)")
    ap.add_argument("--bandwidth-mib", type=int, default=256)
    ap.add_argument("--json", default="", help="also append the JSON lines to this file")
    args = ap.parse_args(argv)
    apply_thread_policy()
    from transformers import AutoModelForCausalLM, AutoTokenizer, CompileConfig, LlamaForCausalLM

    from genai_lib import registry, text

    device, dtype = args.device, pick_dtype(args.device, args.dtype)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - set(MODES))
    if bad:
        sys.exit(f"unknown mode(s) {bad}; choose from {MODES}")
    torch.manual_seed(0)
    if args.real:
        folder = registry.resolve("chat", "offline").source
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        tok = AutoTokenizer.from_pretrained(args.tokenizer or folder)
        model.generation_config.eos_token_id = None  # always generate exactly --new-tokens
    else:
        with torch.device(device):
            model = LlamaForCausalLM(smollm2_config()).to(dtype).eval()
        tok = AutoTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else registry._tiny_tokenizer()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
    lm = text.LanguageModel(tok, model, name="SmolLM2-135M shape" + (" (real)" if args.real else " (random)"))
    # a prompt of exactly --prompt-tokens tokens, as text (for genai_lib) and as ids (for the raw calls)
    ids = tok("The quick brown fox jumps over the lazy dog. " * 8, add_special_tokens=False,
              return_tensors="pt")["input_ids"][:, :args.prompt_tokens]
    prompt = tok.decode(ids[0])
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)  # (1, P)
    n, P = args.new_tokens, ids.shape[1]
    common = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

    def hf(batch: int = 1, **extra):
        x = ids.expand(batch, -1).contiguous()  # (B, P)
        return lambda: model.generate(x, attention_mask=torch.ones_like(x), **{**common, **extra})[:, P:]  # (B, n)

    def lib():
        new = lm.generate(prompt, max_new_tokens=n)
        return new

    runs: list[Run] = []
    for m in modes:
        if m == "eager":
            runs.append(Run(m, 1, hf()))
        elif m == "genai_lib":
            runs.append(Run(m, 1, lib))
        elif m == "static":
            runs.append(Run(m, 1, hf(cache_implementation="static", disable_compile=True)))
        elif m == "compiled":
            cc = CompileConfig(fullgraph=True, mode="reduce-overhead")
            cc._compile_all_devices = True
            runs.append(Run(m, 1, hf(cache_implementation="static", compile_config=cc)))
        elif m == "cudagraphs":
            cc = CompileConfig(fullgraph=True, backend="cudagraphs", mode=None)
            cc._compile_all_devices = True
            runs.append(Run(m, 1, hf(cache_implementation="static", compile_config=cc)))
        elif m == "batched":
            runs.append(Run(f"batched x{args.batch}", args.batch, hf(args.batch)))
        elif m == "sampled":
            runs.append(Run(f"sampled x{args.batch}", args.batch, hf(args.batch, do_sample=True, top_k=0, top_p=1.0)))
        elif m == "cpu_sampled":
            cfg = text.GenerationConfig(max_new_tokens=n, do_sample=True, seed=0)
            lib_kw = {k: v for k, v in lm._hf_kwargs(cfg).items() if k != "max_new_tokens"}
            runs.append(Run(f"cpu_sampled x{args.batch}", args.batch, hf(args.batch, **lib_kw)))

    bw = memory_bandwidth(device, args.bandwidth_mib)
    threads = "" if device.startswith("cuda") else f", {torch.get_num_threads()} torch threads"
    facts = {"device": device_name(device) + threads, "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__,
             "transformers": __import__("transformers").__version__, "new_tokens": n, "prompt_tokens": P,
             "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
             "copy_bandwidth_GBps": round(bw / 1e9, 1), "weights": "real" if args.real else "random",
             "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    lines = [{"facts": facts}]
    with torch.no_grad():
        for r in runs:  # warm-up (compilation happens here)
            sync(device)
            t0 = time.perf_counter()
            r.fn()
            r.fn()
            sync(device)
            r.warmup_s = time.perf_counter() - t0
        for _ in range(args.repeats):
            for r in runs:
                sync(device)
                w0, c0 = time.perf_counter(), time.process_time()
                out = r.fn()
                sync(device)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                if wall < r.best:
                    r.best, r.cpu, r.out = wall, cpu, out
    ref = next((r.out for r in runs if r.name == "eager"), None)
    eager_tps = None
    for r in runs:
        tps = r.batch * n / r.best
        roof = r.batch * bw / bytes_per_step(model, r.batch, P + n // 2)
        if isinstance(r.out, str):  # genai_lib returns text: compare with the eager tokens, decoded
            same = None if ref is None else r.out == tok.decode(ref[0], skip_special_tokens=True)
        else:
            same = None if ref is None or "sampled" in r.name else bool(torch.equal(r.out[:1], ref))
        if r.name == "eager":
            eager_tps = tps
        line = {"run": r.name, "batch": r.batch, "best_wall_s": round(r.best, 4), "cpu_s": round(r.cpu, 3),
                "tokens_per_s": round(tps, 1), "roofline_tokens_per_s": round(roof, 1),
                "fraction_of_roofline": round(tps / roof, 4), "warmup_s": round(r.warmup_s, 2),
                "same_tokens_as_eager": same}
        if eager_tps:
            line["x_eager"] = round(tps / eager_tps, 3)
        lines.append(line)
    for line in lines:
        print(json.dumps(line), flush=True)
    append_jsonl(args.json, lines)
    print(f"\n{facts['device']}, {facts['dtype']}, {n} new tokens after {P}; copy bandwidth "
          f"{facts['copy_bandwidth_GBps']} GB/s")
    print(f"{'run':14s} {'tok/s':>9s} {'x eager':>8s} {'roofline':>9s} {'of roof':>8s} {'warm-up s':>9s} same")
    for line in lines[1:]:
        print(f"{line['run']:14s} {line['tokens_per_s']:9.1f} {line.get('x_eager', float('nan')):8.3f} "
              f"{line['roofline_tokens_per_s']:9.0f} {line['fraction_of_roofline']:8.2%} "
              f"{line['warmup_s']:9.1f} {line['same_tokens_as_eager']}")
    return lines


if __name__ == "__main__":
    main()

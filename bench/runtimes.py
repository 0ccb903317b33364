"""CPU inference runtimes for SmolLM2 against the book's own path: speed, perplexity and the prompting scores.

Issue #14 lists "a runtime made for small-model CPU inference from PyPI, such as ONNX Runtime GenAI,
kept behind ``genai_lib.text``" as a lever to evaluate with figures. This script measures, in one run
on one thread, the book's path (:class:`genai_lib.text.LanguageModel` over ``transformers``, with its
shared-prefix prefill and ragged batches) against:

* ``ct2-fp32`` and ``ct2-int8``: CTranslate2 (already installed: faster-whisper runs on it), the model
  converted with ``ctranslate2.converters.TransformersConverter``; ``int8`` is ``int8_float32``
  (one scale per output row of every weight matrix);
* ``ort-fp32`` and ``ort-int4``: ONNX Runtime GenAI, the model converted with its model builder (int4 is
  its default round-to-nearest, blocks of 32 weights). It is not one of the book's dependencies; the
  script says so and skips it unless ``pip install onnxruntime-genai onnx onnx-ir onnxscript`` was run.
  It takes at most 32 rows a batch, so it decodes a batch of 40 as two of 20.

For each it prints greedy tokens/s at batch 1, the perplexity of ``precision.SENTENCES`` (not for ONNX
Runtime GenAI, which has no scoring call), and the prompting chapter's :func:`genai_lib.prompting.compare`
workload at the book's preset: wall and CPU seconds, the accuracy per technique and how many of the 200
replies equal the book's float32 replies. On a CPU with native bfloat16 it adds the book's path in
bfloat16, which is what :func:`genai_lib.core.model_dtype` chooses there.

    GENAI_THREADS=1 PYTHONPATH=. python bench/runtimes.py --json bench/results/runtimes-cpu-DATE.json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import tempfile
from pathlib import Path

import torch

from genai_lib import prompting, text
from genai_lib.core import apply_thread_policy, cpu_has_native_bf16
from genai_lib.runfacts import device_name

from _timing import no_eos, save_json, timed  # bench/_timing.py (a script's own folder is on sys.path)
from precision import SENTENCES

ORT_MAX_BATCH = 32  # onnxruntime-genai refuses larger batches


class Book:
    """The book's path: genai_lib.text over transformers."""

    def __init__(self, lm: text.LanguageModel) -> None:
        self.lm = lm

    def replies(self, prompts: list[str], new_tokens: int, batch: int) -> list[str]:
        return self.lm.generate_batch(prompts, text.GenerationConfig(max_new_tokens=new_tokens), batch_size=batch)

    def speed(self, prompt: str, new_tokens: int) -> float:
        with no_eos(self.lm.model):  # exactly new_tokens
            _, wall, _ = timed(lambda: self.lm.generate(prompt, text.GenerationConfig(max_new_tokens=new_tokens)))
        return new_tokens / wall

    def perplexity(self, sentence: str) -> float:
        with torch.no_grad():
            return self.lm.perplexity(sentence)


class CT2:
    """CTranslate2's Generator over the converted model."""

    def __init__(self, folder: str, tokenizer, eos: list[int]) -> None:
        import ctranslate2

        self.gen = ctranslate2.Generator(folder, device="cpu", intra_threads=torch.get_num_threads(), inter_threads=1)
        self.tok, self.end = tokenizer, [tokenizer.convert_ids_to_tokens(i) for i in eos]

    def _tokens(self, s: str) -> list[str]:
        return self.tok.convert_ids_to_tokens(self.tok(s, add_special_tokens=False)["input_ids"])

    def replies(self, prompts: list[str], new_tokens: int, batch: int) -> list[str]:
        res = self.gen.generate_batch([self._tokens(p) for p in prompts], max_length=new_tokens, sampling_topk=1,
                                      include_prompt_in_result=False, end_token=self.end, max_batch_size=batch)
        return [self.tok.decode(r.sequences_ids[0], skip_special_tokens=True) for r in res]

    def speed(self, prompt: str, new_tokens: int) -> float:
        (res,), wall, _ = timed(lambda: self.gen.generate_batch(
            [self._tokens(prompt)], max_length=new_tokens, min_length=new_tokens, sampling_topk=1,
            include_prompt_in_result=False))
        return len(res.sequences_ids[0]) / wall

    def perplexity(self, sentence: str) -> float:
        (res,) = self.gen.score_batch([self._tokens(sentence)])
        return math.exp(-sum(res.log_probs) / len(res.log_probs))


class ORTGenAI:
    """ONNX Runtime GenAI over the model builder's output."""

    def __init__(self, folder: str, tokenizer, threads: int) -> None:
        import onnxruntime_genai as og

        cfg_path = Path(folder) / "genai_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["model"]["decoder"]["session_options"].update(intra_op_num_threads=threads, inter_op_num_threads=1)
        cfg_path.write_text(json.dumps(cfg, indent=1))
        self.og, self.model, self.tok = og, og.Model(folder), tokenizer
        self.og_tok = og.Tokenizer(self.model)

    def _run(self, prompts: list[str], new_tokens: int, exact: bool) -> list[list[int]]:
        ids = self.og_tok.encode_batch(prompts)
        plen = ids.shape()[1] if callable(ids.shape) else ids.shape[1]
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=plen + new_tokens, batch_size=len(prompts), do_sample=False,
                                  **({"min_length": plen + new_tokens} if exact else {}))
        gen = self.og.Generator(self.model, params)
        gen.append_tokens(ids)
        while not gen.is_done():
            gen.generate_next_token()
        return [list(gen.get_sequence(i))[plen:] for i in range(len(prompts))]

    def replies(self, prompts: list[str], new_tokens: int, batch: int) -> list[str]:
        out = []
        for s in range(0, len(prompts), batch):
            rows = prompts[s:s + batch]
            size = math.ceil(len(rows) / math.ceil(len(rows) / ORT_MAX_BATCH))  # equal chunks of at most 32
            for c in range(0, len(rows), size):
                out += [self.tok.decode(seq, skip_special_tokens=True) for seq in self._run(rows[c:c + size], new_tokens, False)]
        return out

    def speed(self, prompt: str, new_tokens: int) -> float:
        (seq,), wall, _ = timed(lambda: self._run([prompt], new_tokens, True))
        return len(seq) / wall

    def perplexity(self, sentence: str) -> float:
        return float("nan")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "ctranslate2", "onnxruntime", "onnxruntime-genai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def convert(kind: str, src: str, work: Path) -> str:
    out = work / kind
    if kind.startswith("ct2-"):
        from ctranslate2.converters import TransformersConverter

        TransformersConverter(src).convert(str(out), quantization={"ct2-fp32": "float32", "ct2-int8": "int8_float32"}[kind])
    else:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", src, "-o", str(out),
                        "-p", kind.removeprefix("ort-"), "-e", "cpu", "-c", str(work / "ort-cache")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(out)


def workload(engine, lm: text.LanguageModel, cfg: prompting.PromptingConfig) -> tuple[dict[str, list[str]], float, float]:
    """The prompting chapter's compare(): every technique, greedy, the book's token budgets and batch size."""
    def run() -> dict[str, list[str]]:
        out = {}
        for tech in prompting.TECHNIQUES:
            gen = prompting._generation(tech, cfg, None)
            prompts = [lm.format_chat(c) for c in prompting.conversations(prompting.TASKS, tech, cfg)]
            out[tech] = [r.strip() for r in engine.replies(prompts, gen.max_new_tokens, cfg.batch_size)]
        return out
    return timed(run, ndigits=1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="book-fp32,book-bf16,ct2-fp32,ct2-int8,ort-fp32,ort-int4",
                    help="comma-separated; book-bf16 only runs on a CPU with native bfloat16")
    ap.add_argument("--new-tokens", type=int, default=64, help="tokens decoded for the batch-1 speed")
    ap.add_argument("--repeats", type=int, default=2, help="batch-1 speed: the best of this many")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    apply_thread_policy()
    base = text.load("chat", profile="offline", device="cpu", dtype=torch.float32)
    src = str(Path(base.model.name_or_path))
    cfg = prompting.preset("offline")
    qs = prompting._questions(prompting.TASKS, cfg)
    prompt = base.format_chat("Explain in a few sentences why the sky is blue.")
    out: dict = {"date": datetime.date.today().isoformat(), "machine": device_name("cpu"),
                 "versions": _versions(), "threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(),
                 "batch": cfg.batch_size, "new_tokens_batch1": args.new_tokens, "engines": {}}
    ref = None
    with tempfile.TemporaryDirectory() as work:
        for kind in [e for e in args.engines.split(",") if e]:
            if kind == "book-bf16" and not cpu_has_native_bf16():
                out["engines"][kind] = "skipped: this CPU has no native bfloat16"
                continue
            try:
                if kind.startswith("book-"):
                    engine = Book(base if kind == "book-fp32" else text.LanguageModel(
                        base.tokenizer, copy.deepcopy(base.model).to(torch.bfloat16), "bf16", "offline"))
                elif kind.startswith("ct2-"):
                    engine = CT2(convert(kind, src, Path(work)), base.tokenizer, text._eos_ids(base.model))
                else:
                    import onnxruntime_genai  # noqa: F401  (not a dependency of the book)

                    engine = ORTGenAI(convert(kind, src, Path(work)), base.tokenizer, torch.get_num_threads())
            except ImportError as e:
                out["engines"][kind] = f"skipped: {e}; pip install onnxruntime-genai onnx onnx-ir onnxscript"
                print(kind, out["engines"][kind], flush=True)
                continue
            tps = max(engine.speed(prompt, args.new_tokens) for _ in range(args.repeats))
            ppl = [engine.perplexity(s) for s in SENTENCES]
            replies, wall, cpu = workload(engine, base, cfg)
            ref = ref or replies
            acc = {t: round(sum(prompting.is_correct(task, r, gold) for (task, _, gold), r in zip(qs, replies[t])) / len(qs), 3)
                   for t in replies}
            same = sum(a == b for t in replies for a, b in zip(replies[t], ref[t]))
            out["engines"][kind] = {
                "tokens_per_s_batch1": round(tps, 1),
                "perplexity_geomean": None if math.isnan(ppl[0]) else round(math.exp(sum(map(math.log, ppl)) / len(ppl)), 3),
                "prompting_wall_s": wall, "prompting_cpu_s": cpu,
                "same_replies_as_first": f"{same}/{sum(map(len, replies.values()))}", "accuracy": acc}
            print(kind, json.dumps(out["engines"][kind]), flush=True)
    print(json.dumps(out, indent=1))
    save_json(args.json, out)
    return out


if __name__ == "__main__":
    main()

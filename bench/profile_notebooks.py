"""Where a notebook's time goes: model loads, decoding (with tokens/s), training, sampling, metrics, the rest.

Each notebook runs in a fresh process (its code cells in order, as ``bench/gpu_notebooks.py`` runs them)
with timers around the calls that cost: ``from_pretrained`` (model and tokenizer loads), ``generate``
(decoding: calls, rows, new tokens), the ``train`` functions of ``genai_lib`` (training), the
generators' ``sample`` functions (sampling), ``genai_lib.metrics`` (the digit classifier and FID) and the
retrieval/embedding calls. Only the outermost timed call counts, so nothing is counted twice; what is
left is "other" (imports, plotting, small cells). Prints one JSON line per notebook and a table.

    GENAI_THREADS=2 PYTHONPATH=. python bench/profile_notebooks.py --notebooks prompting,diffusion
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _timing import append_jsonl  # noqa: E402  (bench/_timing.py)

# (category, module, attribute path) of the calls timed in the child
TIMED = [
    ("training", "genai_lib.gan", "train"), ("training", "genai_lib.vae", "train"),
    ("training", "genai_lib.vae", "load"), ("training", "genai_lib.diffusion", "train"),
    ("training", "genai_lib.gpt", "train"), ("training", "genai_lib.finetune", "train"),
    ("sampling", "genai_lib.gan", "sample"), ("sampling", "genai_lib.vae", "sample"),
    ("sampling", "genai_lib.diffusion", "sample"), ("sampling", "genai_lib.diffusion", "inpaint"),
    ("sampling", "genai_lib.diffusion", "img2img"), ("sampling", "genai_lib.gpt", "generate"),
    ("metrics", "genai_lib.metrics", "classifier"), ("metrics", "genai_lib.metrics", "evaluate"),
    ("metrics", "genai_lib.metrics", "fid"), ("metrics", "genai_lib.metrics", "fid_floor"),
    ("metrics", "genai_lib.metrics", "class_accuracy"),
    ("embedding", "genai_lib.embed", "load"), ("embedding", "genai_lib.rag", "build_index"),
    ("audio", "genai_lib.audio", "load_tts"), ("audio", "genai_lib.audio", "load_asr"),
    ("code tests", "genai_lib.codegen", "check"),
]


class Profile:
    def __init__(self) -> None:
        self.depth = 0
        self.cats: dict[str, dict[str, float]] = {}
        self.open: tuple[str, float] | None = None  # the outermost timed call in progress

    def close_open(self) -> None:
        """Count the call still running (the notebook stopped inside it) as unfinished."""
        if self.open is not None:
            cat, t0 = self.open
            self.add(cat, time.perf_counter() - t0, unfinished=1)
            self.open = None

    def add(self, cat: str, seconds: float, **counts: float) -> None:
        row = self.cats.setdefault(cat, {"s": 0.0, "calls": 0})
        row["s"] += seconds
        row["calls"] += 1
        for k, v in counts.items():
            row[k] = row.get(k, 0) + v

    def wrap(self, cat: str, fn, counter=None):
        prof = self

        def timed(*args, **kwargs):
            if prof.depth:
                return fn(*args, **kwargs)
            prof.depth += 1
            t0 = time.perf_counter()
            prof.open = (cat, t0)
            try:
                out = fn(*args, **kwargs)
            finally:
                prof.depth -= 1
                if prof.open is not None and prof.open[1] == t0:
                    prof.open = None
                    if sys.exc_info()[0] is not None:   # count a call that raised (or was stopped) too
                        prof.add(cat, time.perf_counter() - t0, unfinished=1)
            extra = counter(args, kwargs, out) if counter else {}
            prof.add(cat, time.perf_counter() - t0, **extra)
            return out

        timed.__wrapped__ = fn
        return timed


def install(prof: Profile) -> None:
    """Put the timers in place (in the child, before the notebook runs)."""
    import importlib

    import transformers
    from transformers import PreTrainedModel
    from transformers.generation.utils import GenerationMixin
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    def tokens(args, kwargs, out):
        ids = kwargs.get("input_ids", args[1] if len(args) > 1 else None)
        if hasattr(out, "sequences"):
            out = out.sequences
        if ids is None or not hasattr(out, "shape"):
            return {}
        return {"rows": int(out.shape[0]), "new_tokens": int(out.shape[0] * (out.shape[1] - ids.shape[1]))}

    GenerationMixin.generate = prof.wrap("decoding", GenerationMixin.generate, tokens)
    for cls in (PreTrainedModel, PreTrainedTokenizerBase):
        orig = cls.from_pretrained.__func__
        cls.from_pretrained = classmethod(prof.wrap("model loads", orig))
    del transformers
    for cat, mod, attr in TIMED:
        try:
            m = importlib.import_module(mod)
        except Exception:  # an optional dependency missing: that category is simply not timed
            continue
        if hasattr(m, attr):
            setattr(m, attr, prof.wrap(cat, getattr(m, attr)))


def child(path: str, out: str) -> None:
    prof = Profile()
    install(prof)
    from gpu_notebooks import run_cells

    import signal

    w0, c0 = time.perf_counter(), time.process_time()
    ok: object = True

    def on_term(signum, frame):  # the parent's time limit: stop, and still write what was measured
        raise TimeoutError("stopped at the time limit")

    signal.signal(signal.SIGTERM, on_term)
    try:
        run_cells(Path(path))
    except BaseException as exc:  # record what ran before the failure too
        ok = f"{type(exc).__name__}: {exc}"[:300]
    prof.close_open()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    cats = {k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in prof.cats.items()}
    cats["other"] = {"s": round(wall - sum(v["s"] for v in prof.cats.values()), 2)}
    dec = prof.cats.get("decoding")
    if dec and dec.get("new_tokens"):
        cats["decoding"]["tokens_per_s"] = round(dec["new_tokens"] / dec["s"], 1)
    import torch

    Path(out).write_text(json.dumps({"notebook": Path(path).stem, "ok": ok, "wall_s": round(wall, 1),
                                     "cpu_s": round(cpu, 1), "torch_threads": torch.get_num_threads(),
                                     "categories": cats}))


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebooks", default="")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--json", default="", help="append the JSON lines to this file")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return []
    names = [n.strip() for n in args.notebooks.split(",") if n.strip()] or \
        sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rows = []
    for name in names:
        res = Path(f"/tmp/profile-{os.getpid()}-{name}.json")
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(ROOT / "notebooks" / f"{name}.ipynb"),
                                 str(res)], env=env, cwd=ROOT / "notebooks", stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            _, err = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the child writes its partial profile on SIGTERM
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            err = f"timed out after {args.timeout:.0f} s"
        row = json.loads(res.read_text()) if res.exists() else {"notebook": name, "ok": err.strip()[-300:]}
        res.unlink(missing_ok=True)
        row["process_wall_s"] = round(time.monotonic() - t0, 1)
        row["load_avg_1min"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        append_jsonl(args.json, [row])
    cats = ["model loads", "decoding", "training", "sampling", "metrics", "embedding", "other"]
    print(f"\n{'notebook':20s} {'wall':>6s} {'cpu':>6s} " + " ".join(f"{c[:10]:>10s}" for c in cats) + "  tok/s")
    for r in rows:
        c = r.get("categories", {})
        print(f"{r['notebook']:20s} {r.get('wall_s', 0):6.0f} {r.get('cpu_s', 0):6.0f} "
              + " ".join(f"{c.get(k, {}).get('s', 0):10.1f}" for k in cats)
              + f"  {c.get('decoding', {}).get('tokens_per_s', '')}" + ("" if r.get("ok") is True else "  FAILED"))
    return rows


if __name__ == "__main__":
    main()

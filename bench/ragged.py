"""Ragged batches: what dropping finished rows between decoding chunks saves, on the book's real decoding.

``LanguageModel.generate_batch`` decodes a batch ``text.DECODE_CHUNK`` tokens at a time and lets rows
that have finished (end-of-text, or the caller's ``done``, such as a closed code block) leave the batch
with their KV cache. ``transformers``' ``generate`` alone keeps every row to the end of the longest one.
This script runs the prompting chapter's technique comparison (greedy) and the code chapter's sampled
programs (pass@k) both ways, in this process, with the profile's models, and prints wall and CPU seconds
and how many replies agree.

- ``whole``: one ``generate`` call per batch, no ``done``, at the batch sizes the presets had before
  (``--before``): what the book did before.
- ``ragged``: the library and the presets as they are.

Greedy replies must agree exactly. Sampled programs differ (fewer rows draw from the random stream once
some have left), so for them the script compares pass@k and the share of programs that pass.

    GENAI_THREADS=1 PYTHONPATH=. python bench/ragged.py --json bench/results/ragged-cpu-DATE.json
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import partial

from genai_lib import codegen, core, prompting, text

from _timing import save_json, timed as _timed  # bench/_timing.py (a script's own folder is on sys.path)


@contextmanager
def whole_batches():
    """The old behaviour: one ``generate`` call per batch, and no early stop for code."""
    chunk, complete, body = text.DECODE_CHUNK, codegen.reply_complete, codegen.body_complete
    text.DECODE_CHUNK = 10**9
    codegen.reply_complete = codegen.body_complete = lambda *a: False
    try:
        yield
    finally:
        text.DECODE_CHUNK, codegen.reply_complete, codegen.body_complete = chunk, complete, body


timed = partial(_timed, ndigits=1)  # figures to a tenth of a second


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="prompting,codegen", help="prompting, codegen or both")
    ap.add_argument("--json", default="", help="write the figures to this file")
    ap.add_argument("--prompting-batches", default="", help="also time ragged compare at these batch sizes, e.g. 40")
    ap.add_argument("--before", default="20,54", help="batch sizes of the whole-batch runs (prompting,codegen): "
                    "the presets before ragged decoding")
    args = ap.parse_args(argv)
    core.apply_thread_policy()
    rows: dict[str, dict] = {"threads": core.thread_count(), "profile": core.get_profile(),
                             "decode_chunk": text.DECODE_CHUNK}
    before = dict(zip(("prompting", "codegen"), (int(b) for b in args.before.split(","))))
    if "prompting" in args.only:
        lm = text.load("chat")
        cfg = prompting.preset()
        runs = [("whole", before["prompting"]), ("ragged", cfg.batch_size)]
        runs += [("ragged", int(b)) for b in args.prompting_batches.split(",") if b]
        ref = None
        for mode, bs in runs:
            with whole_batches() if mode == "whole" else nullcontext():
                res, w, c = timed(lambda: prompting.compare(lm, config=replace(cfg, batch_size=bs)))
            ref = ref or res                                                   # the whole-batch replies
            same = sum(a["reply"] == b["reply"] for t in res for a, b in zip(res[t].rows, ref[t].rows))
            total = sum(len(r.rows) for r in res.values())
            key = f"prompting-{mode}" if bs in (before["prompting"], cfg.batch_size) else f"prompting-ragged-batch{bs}"
            rows[key] = {"batch_size": bs, "wall_s": w, "cpu_s": c, "same_replies": f"{same}/{total}",
                         "accuracy": {t: round(r.accuracy, 3) for t, r in res.items()}}
            print(f"prompting.compare  {mode:7s} batch {bs:3d} {w:7.1f} s wall {c:7.1f} s CPU  "
                  f"replies equal to whole: {same}/{total}", flush=True)
    if "codegen" in args.only:
        lm = text.load("code")
        cfg = codegen.preset()
        refs: dict[str, dict[str, list[str]]] = {}                             # the whole-batch programs
        for mode, bs in (("whole", before["codegen"]), ("ragged", cfg.batch_size)):
            for greedy in (True, False):
                kind = "greedy" if greedy else "sampled"
                with whole_batches() if mode == "whole" else nullcontext():
                    rep, w, c = timed(lambda: codegen.evaluate(lm, codegen.TASKS, replace(cfg, batch_size=bs),
                                                               greedy=greedy))
                ref = refs.setdefault(kind, rep.completions)
                same = sum(a == b for t, progs in rep.completions.items() for a, b in zip(progs, ref[t]))
                n = sum(len(v) for v in rep.completions.values())
                passed = sum(rep.correct().values())
                pass_at = {k: round(v, 3) for k, v in rep.pass_at.items()}
                rows[f"codegen-{kind}-{mode}"] = {"batch_size": bs, "wall_s": w, "cpu_s": c,
                                                  "same_programs": f"{same}/{n}", "passed": f"{passed}/{n}",
                                                  "pass_at": pass_at}
                print(f"codegen {kind:7s}    {mode:7s} batch {bs:3d} {w:7.1f} s wall {c:7.1f} s CPU  programs equal to "
                      f"whole: {same}/{n}, passed {passed}/{n}, pass@k {pass_at}", flush=True)
    save_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()

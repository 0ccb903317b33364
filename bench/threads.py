"""The thread policy for small models: time the digit classifier's training at several torch thread counts.

``genai_lib.metrics.train_classifier`` (a small CNN on 8x8 digits, 30 epochs) is the kind of model the
book trains everywhere: its matrix products are too small to split over many cores. Each run is a fresh
process. Then ``--parallel`` processes train at once, as when a build executes notebooks side by side:
once with torch's default (one thread per core each: the cores are oversubscribed) and once with the
library's policy (``GENAI_THREADS`` = cores / parallel). Prints JSON lines and a table.

    PYTHONPATH=. python bench/threads.py                      # 1, the policy's default, all cores
    PYTHONPATH=. python bench/threads.py --parallel 4 --timeout 120
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _timing import append_jsonl  # bench/_timing.py (a script's own folder is on sys.path)

CHILD = """
import json, os, sys, time, torch
from genai_lib import core, metrics
threads = int(sys.argv[1])
if threads > 0:
    torch.set_num_threads(threads)      # an explicit count
elif threads == 0:
    core.apply_thread_policy()          # the library's policy (GENAI_THREADS or min(cores, 4))
# threads < 0: torch's own default
w0, c0 = time.perf_counter(), time.process_time()
_, acc = metrics.train_classifier(epochs=int(sys.argv[2]))
print(json.dumps({"torch_threads": torch.get_num_threads(), "wall_s": round(time.perf_counter() - w0, 2),
                  "cpu_s": round(time.process_time() - c0, 2), "test_accuracy": round(acc, 4)}))
"""


def launch(threads: int, epochs: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(threads), str(epochs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, deadline: float) -> dict:
    try:
        out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"timed_out": True}
    if proc.returncode:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=0, help="also run this many trainings at once (0 = skip)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for each (group of) run(s)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GENAI_THREADS", "MKL_NUM_THREADS")}
    rows = []
    for label, threads in [("1 thread", 1), ("policy", 0), ("torch default", -1)]:
        row = finish(launch(threads, args.epochs, env), time.monotonic() + args.timeout)
        rows.append({"run": label, "processes": 1, "cores": cores, **row})
        print(json.dumps(rows[-1]), flush=True)
    if args.parallel > 1:
        per = max(1, cores // args.parallel)
        for label, threads, extra in [("torch default", -1, {}), ("policy", 0, {"GENAI_THREADS": str(per)})]:
            t0 = time.monotonic()
            procs = [launch(threads, args.epochs, {**env, **extra}) for _ in range(args.parallel)]
            res = [finish(p, t0 + args.timeout) for p in procs]
            done = [r for r in res if "wall_s" in r]
            rows.append({"run": f"{args.parallel} at once, {label}", "processes": args.parallel, "cores": cores,
                         "torch_threads": done[0]["torch_threads"] if done else None,
                         "wall_s": round(time.monotonic() - t0, 2) if len(done) == len(res) else None,
                         "timed_out": sum("timed_out" in r for r in res), "timeout_s": args.timeout,
                         "slowest_child_wall_s": max((r["wall_s"] for r in done), default=None)})
            print(json.dumps(rows[-1]), flush=True)
    append_jsonl(args.json, rows)
    print(f"\n{'run':28s} {'threads':>7s} {'wall s':>8s}")
    for r in rows:
        print(f"{r['run']:28s} {str(r.get('torch_threads')):>7s} {str(r.get('wall_s')):>8s}"
              + ("  (timed out)" if r.get("timed_out") else ""))
    return rows


if __name__ == "__main__":
    main()

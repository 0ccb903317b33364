"""What the sandbox costs per program: a plain subprocess vs the sandbox without and with bubblewrap.

Each configuration runs the same tiny program; the configurations are interleaved and repeated, and the
median wall time of each is kept (``genai_lib.sandbox.overhead``). Prints one JSON line per program and
a summary table with the overhead over a plain ``python -I -B -c`` subprocess.

    PYTHONPATH=. python bench/sandbox_overhead.py                # 20 repeats of each
    PYTHONPATH=. python bench/sandbox_overhead.py --repeats 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from genai_lib import codegen, sandbox

PROGRAMS = {
    "empty program": "pass",
    "a task's tests (add)": codegen.TASKS[0].prompt + codegen.TASKS[0].solution + "\n" + codegen.tests_for(
        codegen.TASKS[0]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "repeats": args.repeats,
                      "layers": sandbox.layers(), "bubblewrap": sandbox.isolation_problem() or "available"}))
    rows = []
    for name, program in PROGRAMS.items():
        medians = sandbox.overhead(args.repeats, program)
        print(json.dumps({"program": name, **{k: round(v * 1000, 1) for k, v in medians.items()}}))
        rows += [(name, k, v, v - medians["plain subprocess"]) for k, v in medians.items()]
    print(f"\n{'program':24s} {'configuration':28s} {'median ms':>10s} {'overhead ms':>12s}")
    for name, config, t, extra in rows:
        print(f"{name:24s} {config:28s} {t * 1000:10.1f} {extra * 1000:12.1f}")


if __name__ == "__main__":
    main()

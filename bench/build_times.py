"""Cold and warm build times of the book (or of any MyST project), as JSON lines.

    .venv/bin/python bench/build_times.py                 # the book: cold build, then warm rebuild
    .venv/bin/python bench/build_times.py --project tests/fixtures/book   # the tiny fixture (needs templates/)
    .venv/bin/python bench/build_times.py --warm-only     # keep _build, measure one rebuild

A *cold* build starts from an empty ``_build`` (execution cache included), so every notebook runs; a
*warm* rebuild changes nothing and must execute no notebook. For each build it prints one JSON line:
wall seconds, CPU seconds of the whole process tree (the build, myst/node, the Jupyter server and its
kernels; on a 2-core machine uncontended wall time is roughly CPU time / 2), how many notebooks were
executed and how many came from the cache, and the export sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_build(project: Path, label: str, extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "build_book.py"), "--project", str(project),
                          "--quiet", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary_file = project / "_build" / "logs" / "build-summary.json"
    s = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    out = {"build": label, "ok": res.returncode == 0, "wall_s": round(wall, 1),
           "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
           "executed": len(s.get("executed", [])), "cached": len(s.get("cached", [])),
           "executed_pages": s.get("executed", []), "profile": s.get("profile"),
           "exports": {Path(k).name: v for k, v in s.get("exports", {}).items()}, "cpus": os.cpu_count()}
    if res.returncode != 0:
        out["error"] = res.stderr.strip().splitlines()[-5:]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", default=str(REPO))
    ap.add_argument("--warm-only", action="store_true", help="do not clear _build first")
    ap.add_argument("--no-exports", action="store_true")
    args = ap.parse_args()
    project = Path(args.project).resolve()
    extra = ["--no-exports"] if args.no_exports else []
    results = []
    if not args.warm_only:
        shutil.rmtree(project / "_build", ignore_errors=True)
        results.append(one_build(project, "cold", extra))
        print(json.dumps(results[-1]), flush=True)
    results.append(one_build(project, "warm", extra))
    print(json.dumps(results[-1]), flush=True)
    warm = results[-1]
    ok = all(r["ok"] for r in results) and warm["executed"] == 0
    if warm["executed"]:
        print(json.dumps({"problem": "the warm rebuild executed notebooks", "pages": warm["executed_pages"]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

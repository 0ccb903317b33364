"""Print the mutation score per module from mutmut's results (run `make mutation` first).

mutmut keeps, for every mutated module, a ``mutants/<path>.meta`` file with the exit code of the test
run against each mutant. A mutant is *killed* when the tests failed (or timed out) on it, *survived*
when they passed, and *no tests* when no selected test reaches the mutated function. The score is
killed / (killed + survived + no tests): a mutant no test reaches counts against the module.

Usage::

    .venv/bin/python bench/mutation_score.py [--mutants mutants] [--list-survivors] [--target 85]

Exits 1 when a module is below the target, so the figure is a check and not only a report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}   # test failure, pytest internal error, timeouts, type check
SURVIVED = {0}
NO_TESTS = {5, 33}


def classify(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code == 34:
        return "skipped"
    return "suspicious"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", default="mutants", help="mutmut's working folder")
    ap.add_argument("--list-survivors", action="store_true", help="print the name of every surviving mutant")
    ap.add_argument("--target", type=float, default=85.0, help="minimum score per module, in percent")
    args = ap.parse_args(argv)

    metas = sorted(Path(args.mutants).rglob("*.py.meta"))
    if not metas:
        print(f"No mutmut results under {args.mutants}/: run `make mutation` first.", file=sys.stderr)
        return 2
    width = max(28, *(len(str(m.relative_to(args.mutants))) - len(".meta") for m in metas))
    print(f"{'module':<{width}} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'unchecked':>9} {'score':>6}")
    worst = 100.0
    survivors: list[str] = []
    totals: Counter = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        c = Counter(classify(v) for v in codes.values())
        totals.update(c)
        judged = c["killed"] + c["survived"] + c["no tests"]
        score = 100.0 * c["killed"] / judged if judged else float("nan")
        if judged:
            worst = min(worst, score)
        module = str(meta.relative_to(args.mutants))[: -len(".meta")]
        print(f"{module:<{width}} {len(codes):>7} {c['killed']:>6} {c['survived']:>8} {c['no tests']:>8} "
              f"{c['not checked'] + c['suspicious'] + c['skipped']:>9} {score:>5.1f}%")
        survivors += [k for k, v in codes.items() if classify(v) in ("survived", "no tests")]
    judged = totals["killed"] + totals["survived"] + totals["no tests"]
    print(f"{'all':<{width}} {sum(totals.values()):>7} {totals['killed']:>6} {totals['survived']:>8} "
          f"{totals['no tests']:>8} {totals['not checked'] + totals['suspicious'] + totals['skipped']:>9} "
          f"{100.0 * totals['killed'] / max(judged, 1):>5.1f}%")
    if args.list_survivors:
        print("\nsurviving mutants (show one with `mutmut show NAME`):")
        for name in survivors:
            print("  " + name)
    if worst < args.target:
        print(f"\nbelow the target of {args.target:.0f}% in at least one module (lowest {worst:.1f}%)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

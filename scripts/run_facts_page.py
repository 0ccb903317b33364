"""Write the book's *Run facts* page (``run-facts.md``) from the facts the notebooks saved.

Every notebook ends with ``runfacts.report()``, which (during the book build) saves
``_build/runfacts/<notebook>.json``: profile, device, library versions, models, wall and CPU time,
peak memory. This script turns them, with the model registry, into one page: the cost of the whole
book. The build writes it before running myst (a placeholder on a first build) and again after the
notebooks ran; the page is generated, so it is not committed (see ``.gitignore``).

Usage: ``python scripts/run_facts_page.py [--facts _build/runfacts] [--out run-facts.md]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # a fallback only: the genai_lib the caller imports (PYTHONPATH, venv) wins
    sys.path.append(str(REPO))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(facts_dir: Path, notebooks: list[str]) -> str:
    """The page's markdown: a table of every notebook's run facts, totals, and the model registry."""
    from genai_lib import registry
    from genai_lib.core import PROFILES
    from genai_lib.runfacts import elapsed_s

    facts = {}
    for path in sorted(facts_dir.glob("*.json")):
        try:
            facts[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    lines = ["---", "title: Run facts", "---", "",
             "What each notebook of this build ran with and what it cost: the profile, the device, the",
             "models, the wall-clock and CPU time, and the peak memory of its kernel. Every notebook shows",
             "the same box at its end; this page collects them. The figures come from the latest execution",
             "of each notebook (a notebook whose code did not change since is not re-executed).", ""]
    rows = [facts[n] for n in notebooks if n in facts]
    missing = [n for n in notebooks if n not in facts]
    if rows:
        total_wall = sum(r["wall_s"] for r in rows)
        total_cpu = sum(r["cpu_s"] for r in rows)
        first = rows[0]
        span = elapsed_s(rows)  # the notebooks execute side by side: less than the summed wall time
        elapsed = (f" Executed side by side, they took **{span / 60:.1f} minutes** from the first start to the "
                   "last finish." if span is not None else "")
        lines += [f"Profile **{first['profile']}** on **{_cell(first['device_name'])}**; "
                  f"{len(rows)} notebooks, **{total_wall / 60:.1f} minutes** of wall time in all "
                  f"({total_cpu / 60:.1f} minutes of CPU time).{elapsed}", "",
                  # labelled, so that other pages (the landing page) embed this build's table: ![](#tbl-run-facts)
                  ":::{table} What each notebook of this build ran with and cost.",
                  ":label: tbl-run-facts",
                  "| notebook | profile | device | wall time | CPU time | peak memory | models |",
                  "|---|---|---|---:|---:|---:|---|"]
        for r in rows:
            mem = f"{r['peak_mem_mb']:,} MiB" + (f" (GPU {r['peak_gpu_mem_mb']:,} MiB)" if "peak_gpu_mem_mb" in r else "")
            lines.append(f"| [{r['name']}](notebooks/{r['name']}.ipynb) | {r['profile']} | {_cell(r['device'])} | "
                         f"{r['wall_s']:.0f} s | {r['cpu_s']:.0f} s | {mem} | {_cell(', '.join(r['models']) or 'trained here')} |")
        lines.append(":::")
        versions = ", ".join(f"{k} {v}" for k, v in first["versions"].items())
        lines += ["", f"Library versions: {versions}.", ""]
    else:
        lines += ["No notebook has reported its run facts yet: this page fills in when the build has "
                  "executed the notebooks.", ""]
    if missing:
        lines += ["Not measured in this build: " + ", ".join(missing) + ".", ""]
    lines += ["## The model registry", "",
              "The models each profile uses for each role (`genai_lib/registry.py`).", ""]
    for profile in PROFILES:
        lines += [f"### Profile `{profile}`", "", "| role | model | revision | licence | size | weights from |",
                  "|---|---|---|---|---|---|"]
        for row in registry.table(profile):
            lines.append("| " + " | ".join(_cell(row[k]) for k in
                                            ("role", "hub_id", "revision", "licence", "size", "source")) + " |")
        lines.append("")
    return "\n".join(lines)


def write(facts_dir: Path, out: Path) -> bool:
    """Write the page atomically; return True when its content changed."""
    notebooks = sorted(p.stem for p in (out.parent / "notebooks").glob("*.ipynb"))
    text = render(facts_dir, notebooks)
    if out.exists() and out.read_text() == text:
        return False
    from genai_lib.core import atomic_write

    with atomic_write(out) as tmp:
        tmp.write_text(text)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, default=REPO / "_build" / "runfacts")
    parser.add_argument("--out", type=Path, default=REPO / "run-facts.md")
    args = parser.parse_args()
    print("run-facts page", "updated" if write(args.facts, args.out) else "unchanged", "->", args.out)


if __name__ == "__main__":
    main()

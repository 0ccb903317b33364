"""Write the README's budget table from the run facts of a build.

The README lists every notebook's time budget (a setting, kept here in :data:`BUDGET_S`) next to what
the latest build measured (from ``_build/runfacts/<notebook>.json``, which ``runfacts.report()``
writes during the book build). The measured columns are never typed by hand: after a build, run

    python scripts/budget_table.py            # rewrites the table in README.md
    python scripts/budget_table.py --check    # exit 1 if README.md differs from the run facts

The table sits between the markers ``<!-- budget-table:start -->`` and ``<!-- budget-table:end -->``.
A notebook without run facts is listed as "not measured", and the stamp line says which profile,
device and day the figures come from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- budget-table:start -->", "<!-- budget-table:end -->"

# Wall-time budget of each notebook in the `offline` profile on 2 CPU cores, in seconds (a setting).
BUDGET_S: dict[str, int] = {
    "transformers": 150, "text-generation": 60, "prompting": 120, "code-generation": 120,
    "question-answering": 60, "rag": 90, "fine-tuning": 150, "gan": 100, "vae": 80, "diffusion": 120,
    "text-to-image": 120,
    "audio": 40, "evaluation": 90, "responsible-ai": 90, "app": 40,
}


def load_facts(facts_dir: Path) -> dict[str, dict]:
    """The run facts of every notebook found in ``facts_dir`` (unreadable files are skipped)."""
    facts = {}
    for path in sorted(Path(facts_dir).glob("*.json")):
        try:
            facts[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return facts


def measured_in_readme(readme: Path = REPO / "README.md") -> dict[str, float]:
    """Each notebook's measured wall seconds as the README's table gives them (the last committed build).

    A fresh clone has no run facts, but it has this table: the build orders a cold execution by it.
    Rows without a measurement, and a README without the table, give nothing.
    """
    try:
        text = Path(readme).read_text()
    except OSError:
        return {}
    if START not in text or END not in text:
        return {}
    block = text.split(START, 1)[1].split(END, 1)[0]
    out = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in BUDGET_S and cells[2].split(" ")[0].replace(".", "", 1).isdigit():
            out[cells[0]] = float(cells[2].split(" ")[0])
    return out


def render(facts: dict[str, dict]) -> str:
    """The markdown table (with its stamp line), budgets beside the measured figures."""
    from genai_lib.runfacts import elapsed_s

    lines = ["| notebook | budget (wall, 2 cores) | measured wall (CPU) | peak memory |", "|---|---:|---:|---:|"]
    total_budget = total_wall = total_cpu = 0.0
    measured = []
    for name, budget in BUDGET_S.items():
        total_budget += budget
        f = facts.get(name)
        if f is None:
            lines.append(f"| {name} | {budget} s | not measured | |")
            continue
        measured.append(f)
        total_wall += f["wall_s"]
        total_cpu += f["cpu_s"]
        over = " **over budget**" if f["wall_s"] > budget else ""
        lines.append(f"| {name} | {budget} s | {f['wall_s']:.0f} s ({f['cpu_s']:.0f} s){over} | "
                     f"{f['peak_mem_mb'] / 1024:.1f} GiB |")
    total = (f"**{total_wall / 60:.1f} min ({total_cpu / 60:.1f} min CPU)**" if len(measured) == len(BUDGET_S)
             else f"{len(measured)} of {len(BUDGET_S)} measured")
    lines.append(f"| **all notebooks** | **{total_budget / 60:.0f} min** | {total} | |")
    if measured:
        profiles = sorted({f["profile"] for f in measured})
        devices = sorted({f["device_name"] for f in measured})
        stamp = time.strftime("%Y-%m-%d", time.gmtime(max(os.path.getmtime(f["_path"]) for f in measured)))
        threads = sorted({f["torch_threads"] for f in measured if "torch_threads" in f})
        span = elapsed_s(measured) if len(measured) == len(BUDGET_S) else None
        side = (f" The build executed them side by side ({'/'.join(map(str, threads)) or '?'} torch thread(s) "
                f"each): {span / 60:.1f} min from the first start to the last finish." if span is not None else "")
        lines += ["", f"Measured by the run facts of a book build: profile {', '.join(profiles)}, on "
                  f"{'; '.join(devices)}, {stamp}; regenerate with `python scripts/budget_table.py` after a build.{side}"]
    else:
        lines += ["", "No run facts found: build the book, then run `python scripts/budget_table.py`."]
    return "\n".join(lines)


def update(readme: Path, facts_dir: Path) -> tuple[str, str]:
    """Return README's text now and with the table regenerated."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: the markers {START} and {END} are missing; put them around the budget table")
    facts = load_facts(facts_dir)
    for name, f in facts.items():
        f["_path"] = str(Path(facts_dir) / f"{name}.json")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return text, f"{head}{START}\n{render(facts)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=Path, default=REPO / "_build" / "runfacts")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    ap.add_argument("--check", action="store_true", help="exit 1 if the README's table differs from the run facts")
    args = ap.parse_args(argv)
    old, new = update(args.readme, args.facts)
    if args.check:
        print("budget table", "up to date" if old == new else "differs from the run facts")
        return 0 if old == new else 1
    if old != new:
        tmp = args.readme.with_suffix(".md.tmp")
        tmp.write_text(new)
        os.replace(tmp, args.readme)
    print("budget table", "updated" if old != new else "unchanged", "->", args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())

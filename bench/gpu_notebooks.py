"""Execute notebooks on whatever device is there (a CUDA GPU when present) and print wall time per notebook
next to the CPU figures of the book's run facts.

Each notebook runs in a fresh Python process, its code cells in order in one namespace (through IPython
when it is installed, so magics and ``display`` work; else plain ``exec``), with ``MPLBACKEND=Agg`` and
``GENAI_RUNFACTS_DIR`` set so that its ``runfacts.report()`` writes the facts it measured. A notebook's
printed output is kept (``--out``); ``--compare DIR`` pairs the numbers printed by the same notebook in
another run (e.g. the CPU one) and reports the largest relative difference, against ``--rtol``.

CPU figures: the ``*.json`` run facts of a build (``--cpu-facts _build/runfacts``), else the measured
column of the README's budget table.

    PYTHONPATH=. python bench/gpu_notebooks.py --notebooks gan,vae,diffusion --out /tmp/gpu-run
    PYTHONPATH=. python bench/gpu_notebooks.py --notebooks gan --out /tmp/cpu-run --compare /tmp/gpu-run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.I)


def run_cells(path: Path) -> None:
    """Execute the notebook's code cells in order (the child process)."""
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    try:
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        for i, src in enumerate(cells):
            result = shell.run_cell(src, store_history=False)
            if not result.success:
                print(f"\n[cell {i} failed]", file=sys.stderr)
                result.raise_error()
    except ImportError:
        namespace: dict = {"__name__": "__main__", "display": print}
        for i, src in enumerate(cells):
            lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            exec(compile("\n".join(lines), f"{path.name}[cell {i}]", "exec"), namespace)


def cpu_figures(facts_dir: str) -> dict[str, float]:
    """CPU wall seconds per notebook: from run-facts JSON files, else from the README's budget table."""
    out: dict[str, float] = {}
    if facts_dir and Path(facts_dir).is_dir():
        for f in Path(facts_dir).glob("*.json"):
            data = json.loads(f.read_text())
            wall = data.get("wall_s") or data.get("wall_seconds") or data.get("wall")
            if isinstance(wall, (int, float)):
                out[f.stem] = float(wall)
        if out:
            return out
    readme = ROOT / "README.md"
    if readme.exists():
        for m in re.finditer(r"^\| ([a-z-]+) \| [^|]*\| (\d+(?:\.\d+)?) s", readme.read_text(), re.M):
            out[m.group(1)] = float(m.group(2))
    return out


def numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(text)]


def compare(a: str, b: str) -> dict:
    """Pair the numbers of two runs' printed output in order; the largest relative difference."""
    na, nb = numbers(a), numbers(b)
    if not na or len(na) != len(nb):
        return {"comparable": False, "numbers": [len(na), len(nb)]}
    rel = [abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in zip(na, nb)]
    worst = max(range(len(rel)), key=rel.__getitem__)
    return {"comparable": True, "numbers": len(na), "max_rel_diff": round(rel[worst], 5),
            "worst_pair": [na[worst], nb[worst]]}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebooks", default="", help="comma-separated names (default: all in notebooks/)")
    ap.add_argument("--out", default="gpu-notebooks", help="folder for outputs and run facts")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per notebook")
    ap.add_argument("--budget", type=float, default=0.0, help="stop starting notebooks after this many seconds")
    ap.add_argument("--cpu-facts", default=str(ROOT / "_build" / "runfacts"))
    ap.add_argument("--compare", default="", help="a folder of an earlier run's outputs to compare with")
    ap.add_argument("--rtol", type=float, default=0.05, help="relative tolerance for --compare")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        run_cells(Path(args.child))
        return []
    names = [n.strip() for n in args.notebooks.split(",") if n.strip()] or \
        sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    out = Path(args.out)
    (out / "runfacts").mkdir(parents=True, exist_ok=True)
    cpu = cpu_figures(args.cpu_facts)
    env = {**os.environ, "MPLBACKEND": "Agg", "GENAI_RUNFACTS_DIR": str((out / "runfacts").resolve()),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
    rows, t_start = [], time.monotonic()
    for name in names:
        if args.budget and time.monotonic() - t_start > args.budget:
            rows.append({"notebook": name, "skipped": "over --budget"})
            print(json.dumps(rows[-1]), flush=True)
            continue
        nb = ROOT / "notebooks" / f"{name}.ipynb"
        t0 = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", str(nb)], env=env, cwd=ROOT / "notebooks",
                                  capture_output=True, text=True, timeout=args.timeout)
            ok, stdout, err = proc.returncode == 0, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            ok, stdout, err = False, (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
                else (exc.stdout or ""), f"timed out after {args.timeout:.0f} s"
        wall = time.monotonic() - t0
        (out / f"{name}.txt").write_text(stdout)
        row = {"notebook": name, "ok": ok, "wall_s": round(wall, 1), "cpu_wall_s": cpu.get(name)}
        facts = out / "runfacts" / f"{name}.json"
        if facts.exists():
            data = json.loads(facts.read_text())
            row.update({k: data[k] for k in ("device", "cpu_s", "peak_gpu_mem_mb", "peak_mem_mb") if k in data})
            row["notebook_wall_s"] = data.get("wall_s")  # from the first cell to the last, without the start
        if not ok:
            row["error"] = [ln for ln in err.strip().splitlines() if ln.strip()][-3:]
        if args.compare and (Path(args.compare) / f"{name}.txt").exists():
            cmp = compare(stdout, (Path(args.compare) / f"{name}.txt").read_text())
            cmp["within_rtol"] = cmp.get("comparable") and cmp["max_rel_diff"] <= args.rtol
            row["compare"] = cmp
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{'notebook':20s} {'ok':>5s} {'wall s':>7s} {'CPU wall s':>10s}")
    for r in rows:
        print(f"{r['notebook']:20s} {str(r.get('ok', '-')):>5s} {str(r.get('wall_s', '-')):>7s} "
              f"{str(r.get('cpu_wall_s', '-')):>10s}")
    return rows


if __name__ == "__main__":
    main()

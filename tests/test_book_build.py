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
    logs = [proj / "_build" / "logs" / name for name in ("myst-execute.log", "myst-build.log")]  # parallel or not
    # The build stands for one started from a terminal, where Ctrl-C works: a test run launched as a
    # background job (`cmd &` in a script) inherits SIGINT ignored, and a Python child would inherit that and
    # never raise KeyboardInterrupt. A handler set here is reset to the default in the child at exec.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, str(BUILD), "--project", str(proj), "--quiet", "--no-exports"],
                                env=build_env(proj), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, before)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 240:
        if any(log.exists() and "Executing notebook (notebooks/slow.ipynb)" in log.read_text() for log in logs):
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


def test_notebooks_execute_side_by_side_longest_first_then_exports_come_from_the_cache(tmp_path):
    proj = make_project(tmp_path, lib=False)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    for name in ("nap_a", "nap_b"):
        add_notebook(proj, name, [f"import time\nt0 = time.time()\ntime.sleep(8)\n"
                                  f"open({str(stamps / name)!r}, 'w').write(f'{{t0}} {{time.time()}}')"])
    facts = proj / "_build" / "runfacts"                  # the last build's run facts: nap_b took longest
    facts.mkdir(parents=True)
    for name, wall in {"nap_a": 1.0, "nap_b": 100.0}.items():
        (facts / f"{name}.json").write_text(json.dumps({"name": name, "wall_s": wall}))
    # a git repository with `github` set: myst then runs git for each page's edit URL, in any order
    (proj / "myst.yml").write_text((proj / "myst.yml").read_text().replace(
        "project:\n", "project:\n  github: https://github.com/example/fixture\n", 1))
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    env = {**build_env(proj), "GENAI_EXECUTE_PARALLEL": "2"}
    env.pop("GENAI_THREADS", None)
    r = subprocess.run([sys.executable, str(BUILD), "--project", str(proj), "--quiet"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (a0, a1), (b0, b1) = [map(float, (stamps / n).read_text().split()) for n in ("nap_a", "nap_b")]
    assert max(a0, b0) < min(a1, b1), "the two notebooks did not run at the same time"
    # the export and site pass executed nothing: every page came from the parallel pass's cache
    assert "Executing notebook" not in (proj / "_build" / "logs" / "myst-build.log").read_text()
    executed = re.findall(r"Executing notebook \((.+?)\)", (proj / "_build" / "logs" / "myst-execute.log").read_text())
    assert executed[0] == "notebooks/nap_b.ipynb", executed        # longest first, whatever order git answers in
    assert sorted(executed) == ["chapters/paper.md", "notebooks/nap_a.ipynb", "notebooks/nap_b.ipynb",
                                "notebooks/squares.ipynb"]
    assert "2 at a time, longest first: nap_b, nap_a" in r.stdout
    assert all(e.stat().st_size > 0 for e in [proj / "exports" / "paper.docx", proj / "exports" / "paper.pdf"])
    assert not (proj / ".myst.execute.yml").exists()


def test_execution_order_is_longest_first(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    from bookbuild.project import execution_order

    proj = make_project(tmp_path, lib=False)
    for name in ("short", "long"):
        add_notebook(proj, name, ["print(1)"])
    pages = [proj / "chapters" / "paper.md"] + [proj / "notebooks" / f"{n}.ipynb" for n in ("squares", "short", "long")]
    order = [p.stem for p in execution_order(pages, {"long": 300, "short": 5})]
    assert order == ["long", "short", "paper", "squares"]   # unknown pages keep their order, after the known


def test_a_notebook_that_reuses_another_ones_model_executes_after_all_others(tmp_path):
    """text-to-image reads the model diffusion saves: it is queued last, whatever its expected time."""
    import nbformat

    sys.path.insert(0, str(REPO / "scripts"))
    from bookbuild.project import execution_order, runs_after

    proj = make_project(tmp_path, lib=False)
    for name in ("trainer", "user", "other"):
        add_notebook(proj, name, ["print(1)"])
    user = proj / "notebooks" / "user.ipynb"
    nb = nbformat.read(user, as_version=4)
    nb.metadata["genai"] = {"runs_after": ["trainer"]}
    nbformat.write(nb, user)
    assert runs_after(user) == ["trainer"] and runs_after(proj / "notebooks" / "other.ipynb") == []
    pages = [proj / "notebooks" / f"{n}.ipynb" for n in ("squares", "trainer", "user", "other")]
    order = [p.stem for p in execution_order(pages, {"user": 500, "trainer": 100, "other": 50})]
    assert order == ["trainer", "other", "squares", "user"]
    # a notebook it names that is not in the book does not move it
    nb.metadata["genai"] = {"runs_after": ["not-in-this-book"]}
    nbformat.write(nb, user)
    assert [p.stem for p in execution_order(pages, {"user": 500})][0] == "user"


def test_expected_seconds_prefer_run_facts_then_the_readme_then_budgets(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    import budget_table
    import build_book

    facts = tmp_path / "facts"
    facts.mkdir()
    (facts / "gan.json").write_text(json.dumps({"wall_s": 7.5}))
    readme = tmp_path / "README.md"
    readme.write_text(f"{budget_table.START}\n| notebook | budget | measured |\n|---|---|---|\n"
                      f"| gan | 100 s | 140 s (135 s) |\n| vae | 80 s | 43 s (42 s) |\n"
                      f"| rag | 90 s | not measured | |\n{budget_table.END}\n")
    got = build_book.expected_seconds(facts, readme)
    assert got["gan"] == 7.5 and got["vae"] == 43.0                            # run facts, then the README
    assert got["rag"] == budget_table.BUDGET_S["rag"] and set(got) == set(budget_table.BUDGET_S)


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


def test_typst_command_compiles_a_subpar_figure(tmp_path):
    """myst writes `subpar.grid` for a figure that embeds a cell with several outputs (the paper's
    Figure 1); the local stand-in makes it one numbered, captioned, referable figure, offline."""
    src = tmp_path / "f.typ"
    src.write_text('#import "@preview/subpar:0.2.2"\n'
                   '#figure(rect[x], caption: [First.], kind: "figure", supplement: [Figure]) <fig-a>\n'
                   '#subpar.grid([```\nprinted\n```], rect(width: 2cm, height: 1cm), columns: 1, label: <fig-b>,\n'
                   '  caption: [Embedded outputs.], kind: "figure", supplement: [Figure])\n'
                   'See @fig-b and @fig-a.\n')
    res = subprocess.run([str(REPO / "scripts" / "bin" / "typst"), "compile", str(src)],
                         env={**os.environ, "TYPST_PYTHON": sys.executable}, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed (make system)")
    text = pdf_text(tmp_path / "f.pdf")
    assert "Figure 2: Embedded outputs." in text and "See Figure 2 and Figure 1." in text


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


@built_book
def test_book_site_built_without_a_warning():
    """The book's own site has nothing to warn about: no output shows an absolute path of the build
    machine (which the site would shorten: filter the warning in the notebook instead), no link points
    outside the book, no node type is rendered generically, and search and "Run live" are there."""
    s = json.loads((REPO / "_build" / "logs" / "build-summary.json").read_text())
    if s.get("site") != "local":
        pytest.skip(f"the site was built with the {s.get('site')!r} theme, which writes no site report")
    report = json.loads((REPO / "_build" / "html" / "site-report.json").read_text())
    assert report["warnings"] == [] and report["unknown_node_types"] == [], report


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


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+|\\[,;:!]")


def docx_xml(path: Path, part: str):
    import zipfile

    from lxml import etree

    with zipfile.ZipFile(path) as z:
        return etree.fromstring(z.read(part))


def check_docx_is_finished(path: Path, authors: list[str]) -> None:
    """What the build's Word finishing step promises (scripts/bookbuild/docx.py), for any docx."""
    import docx

    doc, styles = docx_xml(path, "word/document.xml"), docx_xml(path, "word/styles.xml")
    maths = doc.findall(f".//{{{M_NS}}}oMath")
    assert maths, "the document has equations"
    for m in maths:
        text = "".join(m.itertext())
        assert not LATEX_COMMAND.search(text), f"an equation is still LaTeX source: {text[:80]}"
    structured = [m for m in maths if m.find(f".//{{{M_NS}}}f") is not None or m.find(f".//{{{M_NS}}}rad") is not None
                  or m.find(f".//{{{M_NS}}}sSub") is not None or m.find(f".//{{{M_NS}}}d") is not None]
    assert structured, "fractions, roots, subscripts or delimiters are Office Math structures"
    defined = {s.get(f"{{{W_NS}}}styleId"): s for s in styles.findall(f"{{{W_NS}}}style")}
    defaults = [s.get(f"{{{W_NS}}}styleId") for s in defined.values()
                if s.get(f"{{{W_NS}}}type") == "paragraph" and s.get(f"{{{W_NS}}}default") == "1"]
    assert defaults == ["Normal"], f"one default paragraph style, Normal (found {defaults})"
    used = {e.get(f"{{{W_NS}}}val") for tag in ("pStyle", "rStyle", "tblStyle") for e in doc.iter(f"{{{W_NS}}}{tag}")}
    assert used - set(defined) == set(), f"styles used but not defined in styles.xml: {used - set(defined)}"
    assert "Caption" in defined
    d = docx.Document(str(path))
    assert all(p.style is not None for p in d.paragraphs), "every paragraph resolves to a style"
    fonts = {e.get(f"{{{W_NS}}}ascii") for e in doc.iter(f"{{{W_NS}}}rFonts")}
    assert "Monospace" not in fonts and fonts <= {"Consolas", "Courier New", "Menlo", "Calibri", None}, fonts
    table = docx_xml(path, "word/fontTable.xml")
    consolas = [f for f in table if f.get(f"{{{W_NS}}}name") == "Consolas"]
    assert consolas and consolas[0].find(f"{{{W_NS}}}altName").get(f"{{{W_NS}}}val") == "Courier New"
    assert consolas[0].find(f"{{{W_NS}}}pitch").get(f"{{{W_NS}}}val") == "fixed"
    assert d.core_properties.author == "; ".join(authors), d.core_properties.author
    for tbl in doc.iter(f"{{{W_NS}}}tbl"):
        assert all(int(c.get(f"{{{W_NS}}}w")) >= 1000 for c in tbl.iter(f"{{{W_NS}}}gridCol")), "columns of real width"


def caption_problems(path: Path) -> list[str]:
    """Figures (paragraphs with a drawing) and tables of a docx that have no caption paragraph next to them."""
    doc = docx_xml(path, "word/document.xml")
    body = doc.find(f"{{{W_NS}}}body")
    blocks = list(body)

    def is_caption(el) -> bool:
        style = el.find(f"{{{W_NS}}}pPr/{{{W_NS}}}pStyle")
        return el.tag == f"{{{W_NS}}}p" and style is not None and style.get(f"{{{W_NS}}}val") == "Caption"

    def near_caption(i: int) -> bool:
        near = [blocks[j] for j in (i - 2, i - 1, i + 1, i + 2) if 0 <= j < len(blocks)]
        return any(is_caption(el) for el in near)

    out = []
    for i, el in enumerate(blocks):
        if el.tag == f"{{{W_NS}}}tbl" and not near_caption(i):
            out.append(f"table {''.join(el.itertext())[:40]!r}")
        elif el.tag == f"{{{W_NS}}}p" and el.find(f".//{{{W_NS}}}drawing") is not None and not near_caption(i):
            out.append(f"figure at block {i}")
    return out


def test_fixture_docx_is_finished(built_fixture):
    """Word equations, resolvable styles, a real code font, the authors: on the fixture's own build."""
    proj, _, _ = built_fixture
    check_docx_is_finished(proj / "exports" / "paper.docx", ["Ada Lovelace"])
    text = docx_parts(proj / "exports" / "paper.docx")["text"]
    assert "Published 15 May 2025" in text and "Last updated:" in text


def test_pandoc_converts_latex_to_office_math():
    """The converter the build uses, on LaTeX the paper uses (softmax, a fraction, a square root)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from bookbuild import BuildError, docx as finish_docx

    out = finish_docx.latex_to_omml([r"\operatorname{softmax}\left(\frac{Q K^{\top}}{\sqrt{d_k}}\right) V", "x_t"])
    assert len(out) == 2
    first = "".join(out[0].itertext())
    assert "softmax" in first and "\\" not in first
    assert out[0].find(f".//{{{M_NS}}}f") is not None and out[0].find(f".//{{{M_NS}}}rad") is not None
    assert out[1].find(f".//{{{M_NS}}}sSub") is not None
    with pytest.raises(BuildError, match="could not convert"):
        finish_docx.latex_to_omml([r"\frac{1}{"])


def test_bibliography_style_has_no_stray_comma_and_keeps_particles(tmp_path):
    """Every entry of references.bib, set by the PDF template's bibliography code (apa.csl and the
    name-particle fix): no "(2019,)" and "von Platen" as the family name, as on the site and in the docx."""
    import typst

    template = (REPO / "templates" / "typst" / "template.typ").read_text()
    fix = template[template.index("#let keep-particles"):template.index("#bibliography(")]
    bib = (REPO / "references.bib").read_text().replace("{{von Platen}, Patrick", "{von Platen, Patrick")  # as myst writes it
    (tmp_path / "main.bib").write_text(bib)
    shutil.copy(REPO / "templates" / "typst" / "apa.csl", tmp_path / "apa.csl")
    (tmp_path / "t.typ").write_text(fix + '#cite(<vonplaten2022diffusers>)\n'
                                    '#bibliography(bytes(keep-particles(read("main.bib"))), style: "apa.csl", full: true)\n')
    typst.compile(str(tmp_path / "t.typ"), output=str(tmp_path / "t.pdf"))
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed (make system)")
    text = pdf_text(tmp_path / "t.pdf")
    entries = [ln for ln in text.splitlines() if re.match(r"^\S", ln)]
    assert len(entries) > 50
    assert [e for e in entries if ",)" in e] == []
    assert "(von Platen et al., 2022)" in text
    assert any(e.startswith("von Platen, P.") for e in entries)


def test_official_theme_switch(tmp_path):
    """GENAI_SITE_THEME=book-theme builds with myst's official theme, which myst downloads. The test
    points myst's template API at a host that cannot resolve (``.invalid``), so the download fails on
    every machine, online or not, and the build must fail with the clear message, clean up its
    temporary config and leave no process behind; an unknown theme name is refused."""
    proj = make_project(tmp_path, lib=False)
    env = {**build_env(proj), "GENAI_SITE_THEME": "book-theme", "API_URL": "http://myst-templates.invalid"}
    res = subprocess.run([sys.executable, str(BUILD), "--project", str(proj), "--quiet", "--no-exports"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert "official book-theme" in res.stdout
    assert res.returncode == 1, res.stdout[-2000:]
    assert "no network" in res.stderr and "GENAI_SITE_THEME=book-theme needs internet" in res.stderr, res.stderr
    assert not (proj / "_build" / "html" / "index.html").exists()
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
    assert "build: jupyter-book build --execute --execute-parallel 1 --html" in res.stdout   # Jupyter Book 2's CLI builds the site
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


# ----------------------------------------------------------------------------------------------
# the real paper's exports (issue #12): equations, captions, styles, references, site downloads
# ----------------------------------------------------------------------------------------------
def paper_figures() -> int:
    return len(re.findall(r"^:{3,}\{figure\}|^`{3,}\{figure\}", PAPER.read_text(), re.M))


def paper_equations() -> int:
    return len(re.findall(r"^\$\$", PAPER.read_text(), re.M)) // 2


@built_book
def test_paper_docx_equations_styles_properties():
    import yaml

    fm = yaml.safe_load(PAPER.read_text().split("---", 2)[1])
    check_docx_is_finished(DOCX, [a["name"] for a in fm["authors"]])
    doc = docx_xml(DOCX, "word/document.xml")
    numbered = [p for p in doc.iter(f"{{{W_NS}}}p") if p.find(f"{{{M_NS}}}oMath") is not None
                and re.search(r"\(\d+\)\s*$", "".join(p.itertext()))]
    assert len(numbered) >= paper_equations() > 0, "every display equation is numbered"
    text = docx_parts(DOCX)["text"]
    assert "Published 15 May 2025" in text and "Last updated:" in text


@built_book
def test_paper_docx_every_figure_and_table_has_a_caption():
    assert caption_problems(DOCX) == []
    text = docx_parts(DOCX)["text"]
    for n in range(1, paper_figures() + 1):
        assert re.search(rf"^Figure\s{n}: \S", text, re.M), f"Figure {n} has a caption"
    for n in range(1, paper_tables() + 1):
        assert re.search(rf"^Table\s{n}: \S", text, re.M), f"Table {n} has a caption"


@built_book
@needs_poppler
def test_paper_pdf_equation_numbers_captions_references():
    raw = pdf_text(PDF)
    assert re.search(r"softmax.*\(1\)\s*$", raw, re.M), "equation (1) carries its number"
    assert "equation (1)" in raw
    for n in range(1, paper_figures() + 1):
        assert re.search(rf"^\s*Figure {n}: \S", raw, re.M), f"Figure {n} has a caption"
    for n in range(1, paper_tables() + 1):
        assert re.search(rf"^\s*Table {n}: \S", raw, re.M), f"Table {n} has a caption"
    refs = raw[raw.rindex("References"):]
    assert ",)" not in refs, [ln for ln in refs.splitlines() if ",)" in ln]
    assert "von Platen, P." in refs and "(von Platen et al., 2022" in raw.replace("\n", " ")
    assert re.search(r"Published 15 May 2025 · Last updated \d{1,2} [A-Z][a-z]+ \d{4}", raw)
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(PDF), str(ARTIFACTS / "paper-pdf")], check=True)


@built_book
def test_paper_docx_and_pdf_agree_on_the_references():
    """One style everywhere: the same entries in the same (alphabetical, APA) order."""
    docx_refs = [r.split("(")[0].strip() for r in docx_parts(DOCX)["refs"]]
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed (make system)")
    raw = pdf_text(PDF)
    pdf_refs = [ln.split("(")[0].strip() for ln in raw[raw.rindex("References") + 10:].splitlines()
                if re.match(r"^\S", ln) and re.search(r"\(\d{4}\)", ln)]
    first = lambda names: [n.split(",")[0] for n in names]  # noqa: E731  (first author's family name)
    assert first(pdf_refs) == first(docx_refs)
    assert first(docx_refs) == sorted(first(docx_refs), key=str.lower)


@built_book
def test_site_offers_the_same_files_as_exports():
    """The docx and PDF the site links for download are byte-identical to exports/."""
    page = json.loads((REPO / "_build" / "site" / "content" / "paper.json").read_text())
    html = REPO / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.fail("the HTML site was not built (_build/html/index.html missing)")
    offered = {Path(e["url"]).suffix: html / "build" / Path(e["url"]).name
               for e in page["frontmatter"]["exports"] if Path(e["url"]).suffix in (".docx", ".pdf")}
    assert set(offered) == {".docx", ".pdf"}
    assert offered[".docx"].read_bytes() == DOCX.read_bytes()
    assert offered[".pdf"].read_bytes() == PDF.read_bytes()
    paper_html = (html / "paper.html").read_text()
    for f in offered.values():
        assert f"build/{f.name}" in paper_html, f"the paper page links {f.name}"


@built_book
def test_no_chapter_embeds_an_empty_block():
    """Every notebook output a chapter embeds shows something on the built page: a figure, a table or the
    text the cell printed (a cell that reports by printing must not turn into an empty figure)."""
    import re

    html = REPO / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.fail("the HTML site was not built (_build/html/index.html missing)")
    empty = []
    for page in sorted(html.glob("*.html")):
        for m in re.finditer(r'<(figure|div)[^>]*class="embed"[^>]*>(.*?)(?:<figcaption>.*?</figcaption>)?</\1>',
                             page.read_text(), re.S):
            body = re.sub(r"<figcaption>.*?</figcaption>", "", m.group(2), flags=re.S)
            if not re.search(r'class="output[ "]|<img|<table|<pre|<svg|<iframe|<audio|<video|<p\b|<ul|<ol', body):
                label = re.search(r'href="[^"]*#([\w-]+)"', m.group(0))
                empty.append(f"{page.name}: #{label.group(1) if label else '?'}")
    assert not empty, f"embeds that render empty: {empty}"

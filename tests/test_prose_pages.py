"""scripts/check_pages.py: the build fails on a quoted value that did not come from the run.

The page contents below have the shape mystmd 1.11 writes to ``_build/site/content/<page>.json``
(taken from a real build of a two-page project: an embed whose notebook cell exists, an embed whose
label nobody defines, an executed and an unexecuted ``{eval}``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import check_pages  # noqa: E402

RESOLVED_EMBED = {"type": "embed", "source": {"url": "/a-1", "label": "out-a-score", "kind": "Notebook"},
                  "remove-input": True,
                  "children": [{"type": "outputs", "children": [{"type": "output", "children": [],
                                "jupyter_data": {"output_type": "stream", "name": "stdout", "text": "FID 4.21\n"}}]}]}
MISSING_EMBED = {"type": "embed", "source": {"label": "out-missing"}, "remove-input": True}
ERROR_EMBED = {"type": "embed", "source": {"url": "/a-1", "label": "out-boom"},
               "children": [{"type": "outputs", "children": [{"type": "output", "children": [],
                             "jupyter_data": {"output_type": "error", "ename": "ZeroDivisionError"}}]}]}
EXECUTED = {"type": "inlineExpression", "value": "f'{fid:.2f}'",
            "result": {"status": "ok", "data": {"text/plain": "'4.21'"}, "metadata": {}},
            "children": [{"type": "text", "value": "4.21"}]}
UNEXECUTED = {"type": "inlineExpression", "value": "1 + 1"}
FAILED = {"type": "inlineExpression", "value": "facts['fid']",
          "result": {"status": "error", "ename": "KeyError", "evalue": "'fid'"}}
EMBEDDED_TABLE = {"type": "embed", "source": {"label": "tbl-run-facts"},
                  "children": [{"type": "table", "children": [{"type": "tableRow", "children": []}]}]}


def page(*nodes: dict, location: str = "/chapters/a.md") -> dict:
    return {"location": location, "mdast": {"type": "root", "children": [{"type": "paragraph",
                                                                           "children": list(nodes)}]}}


def write(folder: Path, **pages: dict) -> Path:
    for name, content in pages.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    return folder


def test_a_page_with_its_values_passes(tmp_path):
    content = write(tmp_path, a=page(RESOLVED_EMBED, EXECUTED, EMBEDDED_TABLE))
    assert check_pages.problems(content) == []
    assert check_pages.main([str(content)]) == 0


@pytest.mark.parametrize("node, words", [
    (MISSING_EMBED, "#out-missing was not found"),
    (ERROR_EMBED, "#out-boom is an error"),
    (UNEXECUTED, "{eval}`1 + 1` was not executed"),
    (FAILED, "raised KeyError"),
    ({"type": "text", "value": "Unexecuted inline expression"}, "Unexecuted inline expression"),
])
def test_a_hole_fails_and_names_the_page(tmp_path, node, words):
    content = write(tmp_path, a=page(RESOLVED_EMBED, node), b=page(EXECUTED, location="/chapters/b.md"))
    found = check_pages.problems(content)
    assert len(found) == 1 and found[0].startswith("chapters/a.md: ") and words in found[0], found
    assert check_pages.main([str(content)]) == 1


def test_no_content_at_all_fails(tmp_path):
    assert check_pages.problems(tmp_path) == [f"no page content in {tmp_path}: myst did not build the pages"]


@pytest.mark.book
def test_the_book_build_fails_on_an_embed_that_finds_nothing(tmp_path):
    """End to end: scripts/build_book.py on the build fixture, with a page that embeds one labelled
    output that exists and one that does not. myst itself exits 0 and logs nothing about it."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    proj = tmp_path / "proj"
    shutil.copytree(repo / "tests" / "fixtures" / "book", proj)
    (proj / "templates").symlink_to(repo / "templates")
    nb = json.loads((proj / "notebooks" / "squares.ipynb").read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = ["#| label: out-squares\n"] + code["source"]
    (proj / "notebooks" / "squares.ipynb").write_text(json.dumps(nb))
    (proj / "chapters" / "results.md").write_text("---\ntitle: Results\n---\nThe run printed:\n\n"
                                                  "![](#out-squares)\n\nAnd this label is a typo:\n\n![](#out-squarez)\n")
    config = (proj / "myst.yml").read_text()
    (proj / "myst.yml").write_text(config.replace("    - file: notebooks/squares.ipynb\n",
                                                  "    - file: notebooks/squares.ipynb\n    - file: chapters/results.md\n"))
    env = dict(os.environ, PYTHONPATH=str(repo), GENAI_PROFILE="tiny")
    env.pop("GENAI_SITE_THEME", None)
    done = subprocess.run([sys.executable, str(repo / "scripts" / "build_book.py"), "--project", str(proj), "--quiet",
                           "--no-exports", "--no-site"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "chapters/results.md: the embedded output #out-squarez was not found" in done.stderr, done.stderr
    assert "#out-squares " not in done.stderr  # the label that exists was embedded

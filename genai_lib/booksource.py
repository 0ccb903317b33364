"""Where the book's own text is, for a notebook opened without the repository around it.

The RAG chapter indexes the book itself (``myst.yml``, ``index.md``, ``chapters/*.md``). In a clone
those files are above the notebook; on Colab the notebook arrives alone and ``genai_lib`` was
installed by the setup cell from the book's repository at a pinned release. :func:`find` looks, in
order, beside the ``genai_lib`` that was imported (a clone, or an editable install) and then in a
copy of the repository at the exact commit pip installed, fetched once with git into the cache
folder (atomically: an interrupted fetch is never used).

Typical use (``rag.book_root`` falls back to it)::

    from genai_lib import booksource
    root = booksource.find()      # a folder with myst.yml, or None
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from pathlib import Path

from genai_lib.core import GenAIError, cache_dir

BOOK_FILES = ("myst.yml", "index.md", "chapters")   # what a copy of the book must hold


def installed_from() -> tuple[str, str] | None:
    """``(repository URL, commit)`` when genai_lib was pip-installed from git, else ``None``.

    pip writes both into the installed distribution's ``direct_url.json`` (PEP 610).
    """
    try:
        text = importlib.metadata.distribution("genai_lib").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    info = json.loads(text) if text else {}
    vcs = info.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id") and info.get("url"):
        return info["url"], vcs["commit_id"]
    return None


def fetch(url: str, commit: str) -> Path:
    """The book's files at ``commit`` of the git repository ``url``, fetched once into the cache.

    Raises:
        GenAIError: when git is missing or the fetch fails (no network, unknown commit).
    """
    final = cache_dir() / f"book-{commit[:12]}"
    if (final / "myst.yml").exists():
        return final
    if shutil.which("git") is None:
        raise GenAIError("The book's chapters are needed here and git is not installed to fetch them; "
                         "clone the book's repository and set GENAI_BOOK_ROOT to it.")
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    git = ["git", "-C", str(tmp), "-c", "advice.detachedHead=false"]
    try:
        tmp.mkdir(parents=True)
        for cmd in (["init", "-q"], ["fetch", "-q", "--depth", "1", url, commit],
                    ["checkout", "-q", "FETCH_HEAD", "--", *BOOK_FILES]):
            subprocess.run(git + cmd, check=True, capture_output=True, text=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = (getattr(err, "stderr", "") or "").strip()
        raise GenAIError(f"Could not fetch the book's chapters from {url} at {commit[:12]} ({detail or err}); "
                         "clone the book's repository and set GENAI_BOOK_ROOT to it.") from err
    shutil.rmtree(tmp / ".git", ignore_errors=True)
    try:
        os.replace(tmp, final)                  # atomic; another process may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def find() -> Path | None:
    """A folder holding the book's sources (``myst.yml``), without looking at the working directory.

    Beside the imported ``genai_lib`` (a clone or an editable install), else a cached copy of the
    repository at the commit pip installed genai_lib from; ``None`` when neither applies.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "myst.yml").exists():
        return here
    source = installed_from()
    if source is None:
        return None
    return fetch(*source)

"""genai_lib.booksource: the book's text for a notebook opened alone (the RAG notebook on Colab)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from genai_lib import booksource, rag
from genai_lib.core import GenAIError

ROOT = Path(__file__).resolve().parents[1]


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path):
    """A small git repository shaped like the book, and its HEAD commit."""
    src = tmp_path / "src"
    (src / "chapters").mkdir(parents=True)
    (src / "myst.yml").write_text("version: 1\n")
    (src / "index.md").write_text("# Home\n")
    (src / "chapters" / "rag.md").write_text("# RAG\n\nEach MiniLM vector has 384 numbers.\n")
    (src / "notebooks").mkdir()
    (src / "notebooks" / "big.ipynb").write_text("{}")
    _git("init", "-q", cwd=src)
    _git("add", "-A", cwd=src)
    _git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "book", cwd=src)
    return src, _git("rev-parse", "HEAD", cwd=src)


def test_found_beside_the_imported_package():
    assert booksource.find() == ROOT


def test_rag_book_root_from_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_BOOK_ROOT", raising=False)
    assert rag.book_root() == ROOT


def test_fetch_copies_only_the_book_text_once_and_atomically(remote, tmp_path, monkeypatch):
    src, commit = remote
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "cache"))
    got = booksource.fetch(f"file://{src}", commit)
    assert got == tmp_path / "cache" / f"book-{commit[:12]}"
    assert (got / "chapters" / "rag.md").read_text().endswith("384 numbers.\n")
    assert not (got / ".git").exists() and not (got / "notebooks").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [got.name]     # no temporary folder left
    (src / "index.md").unlink()                                                # the copy is reused
    assert booksource.fetch(f"file://{src}", commit) == got


def test_fetch_failure_says_what_to_do(remote, tmp_path, monkeypatch):
    src, _ = remote
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "cache"))
    with pytest.raises(GenAIError, match="GENAI_BOOK_ROOT"):
        booksource.fetch(f"file://{src}", "0" * 40)
    assert list((tmp_path / "cache").iterdir()) == []


def test_installed_from_reads_pips_direct_url(monkeypatch):
    record = {"url": "https://github.com/o/r", "vcs_info": {"vcs": "git", "commit_id": "a" * 40,
                                                           "requested_revision": "v1.0.0"}}

    class Dist:
        def __init__(self, text):
            self.text = text

        def read_text(self, name):
            return self.text if name == "direct_url.json" else None

    monkeypatch.setattr(booksource.importlib.metadata, "distribution", lambda name: Dist(json.dumps(record)))
    assert booksource.installed_from() == ("https://github.com/o/r", "a" * 40)
    monkeypatch.setattr(booksource.importlib.metadata, "distribution",
                        lambda name: Dist(json.dumps({"url": "file:///x", "dir_info": {"editable": True}})))
    assert booksource.installed_from() is None

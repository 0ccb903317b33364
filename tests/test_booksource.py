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


def test_installed_from_is_none_without_a_vcs_install(monkeypatch):
    """Not installed at all, installed from a wheel (no direct_url.json), or from git without a commit."""
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(booksource.importlib.metadata, "distribution", missing)
    assert booksource.installed_from() is None

    class Dist:
        def __init__(self, text):
            self.text = text

        def read_text(self, name):
            return self.text

    for text in (None, "", json.dumps({"url": "https://github.com/o/r", "vcs_info": {"vcs": "git"}}),
                 json.dumps({"url": "https://github.com/o/r", "vcs_info": {"vcs": "hg", "commit_id": "a" * 40}}),
                 json.dumps({"vcs_info": {"vcs": "git", "commit_id": "a" * 40}})):
        monkeypatch.setattr(booksource.importlib.metadata, "distribution", lambda name, t=text: Dist(t))
        assert booksource.installed_from() is None, text


def test_fetch_without_git_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(booksource.shutil, "which", lambda name: None)
    with pytest.raises(GenAIError, match="git is not installed.*GENAI_BOOK_ROOT"):
        booksource.fetch("https://example.org/book.git", "b" * 40)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_fetch_that_loses_the_race_uses_the_winners_copy(remote, tmp_path, monkeypatch):
    """Two kernels fetch at once: the one whose rename fails keeps the other's copy and cleans up its own."""
    import os
    import shutil

    src, commit = remote
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "cache"))
    real_replace = os.replace

    def replace_after_a_winner(tmp, final):
        shutil.copytree(tmp, final)                 # the other process finished first
        (Path(final) / "winner").write_text("")
        real_replace(tmp, final)                    # a folder onto a non-empty folder: OSError

    monkeypatch.setattr(os, "replace", replace_after_a_winner)
    got = booksource.fetch(f"file://{src}", commit)
    assert got == tmp_path / "cache" / f"book-{commit[:12]}" and (got / "winner").exists()
    assert (got / "myst.yml").read_text() == "version: 1\n"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [got.name]     # the loser's folder is gone


def test_find_away_from_a_clone(remote, tmp_path, monkeypatch):
    """Installed (not a clone): the copy at the installed commit, or None when pip did not install from git."""
    src, commit = remote
    site = tmp_path / "site-packages" / "genai_lib"
    site.mkdir(parents=True)
    monkeypatch.setattr(booksource, "__file__", str(site / "booksource.py"))
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(booksource, "installed_from", lambda: None)
    assert booksource.find() is None
    monkeypatch.setattr(booksource, "installed_from", lambda: (f"file://{src}", commit))
    got = booksource.find()
    assert got == tmp_path / "cache" / f"book-{commit[:12]}" and (got / "chapters" / "rag.md").exists()

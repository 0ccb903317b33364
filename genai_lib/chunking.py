"""Chunking Markdown for retrieval: the first step of RAG (:mod:`genai_lib.rag`).

Every file is cut into pieces that follow its headings and paragraphs, with a little overlap, and
each piece remembers its file and heading path, so that an answer can cite where it came from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from genai_lib.core import GenAIError


@dataclass(frozen=True)
class Chunk:
    """A piece of one file. ``text == document[start:end]``; ``document[core:end]`` is new text
    (``document[start:core]`` repeats the end of the previous chunk)."""

    source: str    # the file, relative to the book's root, e.g. "chapters/rag.md"
    heading: str   # the heading path, e.g. "Retrieval-augmented generation > Chunking"
    anchor: str    # the innermost heading's slug, e.g. "chunking"
    start: int
    core: int
    end: int
    text: str

    @property
    def cite(self) -> str:
        """Where a reader finds it: ``file#anchor``."""
        return f"{self.source}#{self.anchor}"

    def embed_text(self) -> str:
        """What is embedded: the heading path, then the text (headings carry much of the meaning)."""
        return f"{self.heading}\n{self.text}"


def slugify(heading: str) -> str:
    """A heading's anchor as MyST writes it: lower case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\s-]", "", heading.lower()).strip()
    return re.sub(r"[\s_]+", "-", slug) or "top"


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def _fence(line: str, open_fence: str | None) -> str | None:
    """The code fence open after ``line``: opened by a fence line, closed by a bare one as long."""
    m = _FENCE.match(line)
    if not m:
        return open_fence
    if open_fence is None:
        return m.group(1)
    mark = m.group(1)
    closes = mark[0] == open_fence[0] and len(mark) >= len(open_fence) and line.strip() == mark
    return None if closes else open_fence


def _sections(doc: str, title: str) -> list[tuple[int, str, str]]:
    """(start offset, heading path, anchor) of each section; code fences never hold headings."""
    pos, fence, stack = 0, None, []
    sections = [(0, title, slugify(title))]
    lines = doc.splitlines(keepends=True)
    if lines and lines[0].strip() == "---":  # front matter: its `title:` names the top section
        for i, line in enumerate(lines[1:], 1):
            if line.startswith("title:"):
                title = line.split(":", 1)[1].strip().strip("'\"") or title
                sections = [(0, title, slugify(title))]
            if line.strip() == "---":
                pos = sum(len(x) for x in lines[:i + 1])
                lines = lines[i + 1:]
                break
    for line in lines:
        was_open, fence = fence, _fence(line, fence)
        if was_open is None and fence is None and (h := _HEADING.match(line)):
            level, name = len(h.group(1)), h.group(2).strip()
            stack = [(lv, nm) for lv, nm in stack if lv < level] + [(level, name)]
            path = " > ".join([title] + [nm for lv, nm in stack if nm != title])
            sections.append((pos, path, slugify(name)))
        pos += len(line)
    return [s for i, s in enumerate(sections) if i + 1 == len(sections) or sections[i + 1][0] > s[0]]


def _paragraph_ends(doc: str, start: int, end: int) -> list[int]:
    """Offsets in (start, end] where paragraphs end: after a run of blank lines, outside code fences."""
    ends, pos, fence, prev_blank = [], start, None, False
    for line in doc[start:end].splitlines(keepends=True):
        blank = not line.strip()
        if prev_blank and not blank and fence is None:
            ends.append(pos)
        fence = _fence(line, fence)
        prev_blank = blank
        pos += len(line)
    return ends + [end]


def _split_long(doc: str, start: int, end: int, size: int) -> list[int]:
    """Cut [start, end) into pieces of at most ``size`` characters, at whitespace when possible."""
    cuts, pos = [], start
    while end - pos > size:
        window = doc[pos:pos + size]
        ws = max(window.rfind(" "), window.rfind("\n"))
        cut = pos + (ws + 1 if ws > size // 2 else size)
        cuts.append(cut)
        pos = cut
    return cuts + [end]


# [start:chunk-markdown]
def chunk_markdown(doc: str, source: str, max_chars: int = 600, overlap: int = 100) -> list[Chunk]:
    """Split a Markdown document into chunks that follow its headings and paragraphs.

    Sections (by heading) are never mixed in one chunk. Inside a section whole paragraphs are packed
    into a chunk while they fit; a paragraph longer than a chunk is cut at whitespace. Each chunk but
    a section's first starts with up to ``overlap`` characters of the chunk before it.

    Args:
        doc: the document's text.
        source: its name (kept in every chunk for citations).
        max_chars: the longest chunk, overlap included.
        overlap: characters repeated from the previous chunk (0 <= overlap <= max_chars // 2).

    Returns:
        The chunks in document order; their ``doc[core:end]`` spans cover the document exactly once.
    """
    if not isinstance(max_chars, int) or max_chars < 20:
        raise GenAIError(f"max_chars must be an integer >= 20, got {max_chars!r}")
    if not isinstance(overlap, int) or not 0 <= overlap <= max_chars // 2:
        raise GenAIError(f"overlap must be an integer from 0 to max_chars // 2 = {max_chars // 2}, got {overlap!r}")
    title = Path(source).stem
    sections = _sections(doc, title)
    budget = max_chars - overlap  # new characters per chunk
    chunks = []
    for i, (s_start, path, anchor) in enumerate(sections):
        s_end = sections[i + 1][0] if i + 1 < len(sections) else len(doc)
        paragraphs = _paragraph_ends(doc, s_start, s_end)
        ends: list[int] = []
        for a, b in zip([s_start] + paragraphs[:-1], paragraphs):
            ends.extend(_split_long(doc, a, b, budget))
        core = s_start
        for j, e in enumerate(ends):  # pack paragraphs greedily
            if j + 1 < len(ends) and ends[j + 1] - core <= budget:
                continue
            start = core
            if core > s_start and overlap:
                start = max(s_start, core - overlap)
                ws = re.search(r"\s", doc[start:core])  # do not begin in the middle of a word
                start = start + ws.end() if ws and start + ws.end() < core else start
            chunks.append(Chunk(source, path, anchor, start, core, e, doc[start:e]))
            core = e
    return chunks
# [end:chunk-markdown]


def book_root(start: str | Path | None = None) -> Path:
    """The book's root folder (the one with ``myst.yml``): ``GENAI_BOOK_ROOT``, a parent of ``start``
    (default: the working directory), or, when neither was given, :func:`genai_lib.booksource.find`
    (beside the imported genai_lib, or the repository at the commit pip installed it from, fetched once)."""
    env = os.environ.get("GENAI_BOOK_ROOT", "").strip()
    here = Path(env or start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "myst.yml").exists():
            return folder
    from genai_lib import booksource    # a notebook opened alone (Colab): beside genai_lib, or fetched

    found = None if (env or start) else booksource.find()   # an explicit place is not second-guessed
    if found is not None:
        return found
    raise GenAIError(f"No myst.yml found in {here} or its parents; run from a clone of the book's repository "
                     "or set GENAI_BOOK_ROOT to it.")


def corpus_files(root: str | Path) -> list[Path]:
    """The book's text: ``index.md`` and every ``chapters/*.md`` under ``root``, sorted."""
    root = Path(root)
    files = ([root / "index.md"] if (root / "index.md").exists() else []) + sorted((root / "chapters").glob("*.md"))
    if not files:
        raise GenAIError(f"No index.md or chapters/*.md under {root}: the corpus is empty.")
    return files

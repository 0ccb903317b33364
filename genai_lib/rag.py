"""Retrieval-augmented generation (RAG) over a folder of Markdown files: the book's own chapters.

Four steps, each a few lines here:

1. **chunk** every file into pieces that follow its headings and paragraphs, with a little overlap,
   remembering the file and heading of each piece so that an answer can cite it;
2. **embed** the chunks with a sentence encoder (:mod:`genai_lib.embed`) into an index kept on disk,
   re-embedding only the chunks whose text changed;
3. **retrieve** the chunks most similar to a question (exact inner-product search with NumPy or FAISS);
4. **generate** an answer with a chat model that sees the chunks, numbered ``[1]``, ``[2]``, ...

Typical use::

    from genai_lib import embed, rag, text
    index = rag.build_index(rag.corpus_files(root), embed.load(), folder="rag-index", root=root)
    bot = rag.RAG(index, embed.load(), text.load("chat"))
    print(bot.answer(["What does RAG stand for?"])[0].with_sources())
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from genai_lib.core import GenAIError, get_profile


@dataclass
class RAGConfig:
    """Chunking, retrieval and generation settings.

    Attributes:
        max_chars: the longest a chunk may be, overlap included (MiniLM reads ~256 tokens ≈ 1,000 chars).
        overlap: characters of the previous chunk repeated at the start of the next (same section only).
        k: how many chunks the generator sees.
        backend: ``"numpy"`` (a matrix product) or ``"faiss"`` (``IndexFlatIP``); both are exact.
        max_new_tokens: the longest answer, in tokens.
        batch_size: prompts generated together (one padded batch).
    """

    max_chars: int = 600
    overlap: int = 100
    k: int = 3
    backend: str = "numpy"
    max_new_tokens: int = 24
    batch_size: int = 10


PRESETS: dict[str, RAGConfig] = {
    "tiny": RAGConfig(max_chars=200, overlap=40, k=2, max_new_tokens=6, batch_size=4),
    "offline": RAGConfig(),
    "hub": RAGConfig(max_chars=1000, overlap=150, k=4, max_new_tokens=48),
}

SYSTEM_WITH = ("Answer the question using the numbered sources. Reply with one short sentence "
               "and cite the source you used like [1].")
SYSTEM_WITHOUT = "Answer the question with one short sentence."


# ----------------------------------------------------------------------------- 1. chunking
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


def book_root(start: str | Path | None = None) -> Path:
    """The book's root folder (the one with ``myst.yml``): ``GENAI_BOOK_ROOT``, a parent of ``start``
    (default: the working directory), or else :func:`genai_lib.booksource.find` (beside the imported
    genai_lib, or the repository at the commit pip installed it from, fetched once)."""
    env = os.environ.get("GENAI_BOOK_ROOT", "").strip()
    here = Path(env or start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "myst.yml").exists():
            return folder
    from genai_lib import booksource    # a notebook opened alone (Colab): beside genai_lib, or fetched

    found = None if env else booksource.find()
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


# ----------------------------------------------------------------------------- 2. vectors and the index
class VectorStore:
    """Exact maximum-inner-product search over unit vectors, with NumPy or FAISS.

    Args:
        vectors: (N, d) float32, rows of length 1 (so inner product = cosine similarity).
        backend: ``"numpy"`` or ``"faiss"``.
    """

    def __init__(self, vectors: np.ndarray, backend: str = "numpy") -> None:
        if backend not in ("numpy", "faiss"):
            raise GenAIError(f"backend must be 'numpy' or 'faiss', got {backend!r}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, d)
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise GenAIError(f"A vector store needs a non-empty (N, d) array, got shape {self.vectors.shape}.")
        self.backend = backend
        self._faiss = None
        if backend == "faiss":
            import faiss

            self._faiss = faiss.IndexFlatIP(self.vectors.shape[1])
            self._faiss.add(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query.

        Args:
            queries: (Q, d) float32.
            k: results per query (at most N are returned).

        Returns:
            ``(scores, ids)``, both (Q, min(k, N)), best first.
        """
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise GenAIError(f"k must be a positive integer, got {k!r}")
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # (Q, d)
        if q.shape[1] != self.vectors.shape[1]:
            raise GenAIError(f"Queries have {q.shape[1]} dimensions but the index has {self.vectors.shape[1]}; "
                             "embed them with the same model as the index.")
        k = min(int(k), len(self.vectors))
        if self._faiss is not None:
            return self._faiss.search(q, k)
        scores = q @ self.vectors.T                                   # (Q, N)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]          # (Q, k), unordered
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        ids = np.take_along_axis(top, order, 1)
        return np.take_along_axis(scores, ids, 1), ids


@dataclass
class Index:
    """Chunks, their vectors and a search backend.

    Attributes:
        chunks: the chunks, in corpus order.
        vectors: (N, d) float32 unit vectors, row i for chunk i.
        model: the embedder's name (an index only answers queries embedded by the same model).
        stats: what the last build did: ``chunks``, ``embedded``, ``reused``, ``written``.
    """

    chunks: list[Chunk]
    vectors: np.ndarray
    model: str
    backend: str = "numpy"
    stats: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = VectorStore(self.vectors, self.backend)

    def with_backend(self, backend: str) -> "Index":
        """The same index searched with another backend."""
        return Index(self.chunks, self.vectors, self.model, backend, dict(self.stats))


def _key(chunk: Chunk, model: str) -> str:
    """The content hash of a chunk as the embedder sees it (model name included)."""
    return hashlib.sha256(f"{model}\x00{chunk.embed_text()}".encode()).hexdigest()


def _read_saved(path: Path) -> dict[str, np.ndarray]:
    """Key -> vector from a saved index, or {} when there is none (or it cannot be read)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"]))
    except (OSError, KeyError, ValueError):
        return {}


def _write_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz file so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def build_index(files: Sequence[str | Path], embedder, folder: str | Path | None = None,
                root: str | Path | None = None, config: RAGConfig | None = None) -> Index:
    """Chunk and embed ``files``, reusing the vectors saved in ``folder`` for unchanged chunks.

    Args:
        files: Markdown files.
        embedder: a :class:`genai_lib.embed.Embedder`.
        folder: where the index is kept (``index.npz``); ``None`` keeps it in memory only.
        root: sources are named relative to this folder (the book's root); file names alone when ``None``.
        config: chunking settings; the profile's preset when ``None``.

    Returns:
        The :class:`Index`; ``index.stats`` says how many chunks were embedded and how many reused,
        and whether the file was rewritten (only when some chunk's content hash changed).
    """
    cfg = config or PRESETS[get_profile()]
    chunks = []
    for f in files:
        path = Path(f)
        name = path.relative_to(root).as_posix() if root else path.name
        chunks += chunk_markdown(path.read_text(encoding="utf-8"), name, cfg.max_chars, cfg.overlap)
    if not chunks:
        raise GenAIError("The corpus is empty: no files were given (or they hold no text); nothing to index.")
    keys = [_key(c, embedder.name) for c in chunks]
    saved_path = Path(folder) / "index.npz" if folder is not None else None
    saved = _read_saved(saved_path) if saved_path else {}
    todo = sorted({k for k in keys if k not in saved})
    if todo:
        first = {k: c for k, c in zip(keys, chunks)}
        saved.update(zip(todo, embedder.encode([first[k].embed_text() for k in todo])))
    vectors = np.stack([saved[k] for k in keys]).astype(np.float32)  # (N, d)
    written = False
    if saved_path is not None and (todo or set(_read_saved(saved_path)) != set(keys)):
        _write_atomic(saved_path, keys=np.array(keys), vectors=vectors,
                      chunks=np.array(json.dumps([asdict(c) for c in chunks])), model=np.array(embedder.name))
        written = True
    stats = {"chunks": len(chunks), "embedded": len(todo), "reused": len(chunks) - sum(k in todo for k in keys),
             "written": written}
    return Index(chunks, vectors, embedder.name, cfg.backend, stats)


# ----------------------------------------------------------------------------- 3-4. retrieve and answer
@dataclass
class Answer:
    """A generated answer and where it came from."""

    question: str
    text: str
    hits: list[Chunk]           # the chunks the model saw, numbered [1], [2], ... (empty without retrieval)
    scores: list[float]
    cited: list[int]            # the source numbers the answer uses
    cited_by: str               # "model" (it wrote [n]) or "overlap" (attributed by shared words) or "none"

    def with_sources(self) -> str:
        """The answer followed by the sources it cites, as ``[n] file#anchor``."""
        refs = [f"[{n}] {self.hits[n - 1].cite}" for n in self.cited]
        return self.text + ("\n" + "\n".join(refs) if refs else "")


def _words(s: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_]+", s.lower()) if len(w) > 3 or w.isdigit()}


def citations(answer: str, hits: Sequence[Chunk]) -> tuple[list[int], str]:
    """Which numbered sources an answer uses: the ``[n]`` it wrote, else the chunk sharing most words.

    Returns:
        ``(numbers, how)``: 1-based source numbers, and ``"model"``, ``"overlap"`` or ``"none"``.
    """
    written = sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer) if 1 <= int(n) <= len(hits)})
    if written:
        return written, "model"
    words = _words(re.sub(r"\[\d+\]", "", answer))
    shares = [len(words & _words(h.text)) / max(len(words), 1) for h in hits]
    if shares and max(shares) >= 0.5:
        return [int(np.argmax(shares)) + 1], "overlap"
    return [], "none"


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 24, batch_size: int = 8,
                   progress: bool = False) -> list[str]:
    """Greedy continuations of many prompts, ``batch_size`` at a time (left padding).

    Args:
        model: a causal LM (a ``transformers`` or ``peft`` model).
        tokenizer: its tokenizer.
        prompts: the full prompts (chat template already applied).
        max_new_tokens: the longest continuation.
        batch_size: prompts per batch; similar lengths are batched together to waste little padding.

    Returns:
        The continuations, without the prompts and special tokens, in the order of ``prompts``.
    """
    from genai_lib.text import LanguageModel  # the one batched generation loop of the library

    lm = LanguageModel(tokenizer, model, name="batch")
    outs = lm.generate_batch(list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size,
                             progress=progress, seed=None)
    return [o.strip() for o in outs]


class RAG:
    """Retriever + generator.

    Args:
        index: an :class:`Index` built with ``embedder``.
        embedder: embeds the questions (the same model as the index).
        lm: a :class:`genai_lib.text.LanguageModel` that writes the answers.
        config: settings; the profile's preset when ``None``.
    """

    def __init__(self, index: Index, embedder, lm, config: RAGConfig | None = None) -> None:
        if index.model != embedder.name:
            raise GenAIError(f"The index was embedded with {index.model!r} but the questions would be embedded "
                             f"with {embedder.name!r}; rebuild the index with this embedder.")
        self.index, self.embedder, self.lm = index, embedder, lm
        self.config = config or PRESETS[get_profile()]

    def retrieve(self, questions: Sequence[str], k: int | None = None) -> list[list[tuple[Chunk, float]]]:
        """The ``k`` chunks most similar to each question, best first, with their cosine similarity."""
        if isinstance(questions, str):
            questions = [questions]
        scores, ids = self.index.store.search(self.embedder.encode(list(questions)), k or self.config.k)
        return [[(self.index.chunks[i], float(s)) for s, i in zip(srow, irow)] for srow, irow in zip(scores, ids)]

    def prompt(self, question: str, hits: Sequence[Chunk]) -> str:
        """The chat prompt: numbered sources (when there are any), then the question."""
        if not hits:
            return self.lm.format_chat(f"Question: {question}", system=SYSTEM_WITHOUT)
        sources = "\n\n".join(f"[{n}] ({c.heading})\n{c.text.strip()}" for n, c in enumerate(hits, 1))
        return self.lm.format_chat(f"Sources:\n{sources}\n\nQuestion: {question}", system=SYSTEM_WITH)

    def answer(self, questions: Sequence[str], k: int | None = None, retrieval: bool = True,
               progress: bool = False) -> list[Answer]:
        """Answer questions, with the ``k`` retrieved chunks in the prompt (or none: ``retrieval=False``)."""
        if isinstance(questions, str):
            questions = [questions]
        if not questions or not all(isinstance(q, str) and q.strip() for q in questions):
            raise GenAIError("answer() needs a non-empty list of non-empty questions.")
        found = self.retrieve(questions, k) if retrieval else [[] for _ in questions]
        prompts = [self.prompt(q, [c for c, _ in hits]) for q, hits in zip(questions, found)]
        texts = generate_batch(self.lm.model, self.lm.tokenizer, prompts, self.config.max_new_tokens,
                               self.config.batch_size, progress)
        out = []
        for q, hits, t in zip(questions, found, texts):
            chunks = [c for c, _ in hits]
            cited, how = citations(t, chunks)
            out.append(Answer(q, t, chunks, [s for _, s in hits], cited, how))
        return out


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Question:
    """A question about the book with a known answer.

    Attributes:
        question: what is asked.
        answers: accepted answers; the reply is right when it contains any of them (case-insensitive).
        source: the file that holds the answer, e.g. ``"chapters/rag.md"``.
        anchor: the slug of the section that holds it (the relevant section for recall@k).
    """

    question: str
    answers: tuple[str, ...]
    source: str
    anchor: str

    @property
    def cite(self) -> str:
        return f"{self.source}#{self.anchor}"


def keyword_match(reply: str, answers: Sequence[str]) -> bool:
    """True when ``reply`` contains any accepted answer as whole words ("100" is not found in "1000").

    Case and spacing are ignored and commas inside numbers dropped ("1,000" matches "1000").
    """
    norm = lambda s: re.sub(r"\s+", " ", re.sub(r"(?<=\d),(?=\d)", "", s.lower())).strip()  # noqa: E731
    text = norm(reply)
    return any(re.search(rf"(?<![\w-]){re.escape(norm(a))}(?![\w-])", text) for a in answers if norm(a))


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """Mean over queries of |relevant ∩ top-k| / |relevant|.

    Args:
        ranked: for each query, the retrieved items' ids, best first (ids may repeat).
        relevant: for each query, the set of relevant ids (non-empty).
        k: how many of the ranked items count.

    Returns:
        A number in [0, 1].
    """
    if not isinstance(k, int) or k <= 0:
        raise GenAIError(f"k must be a positive integer, got {k!r}")
    if len(ranked) != len(relevant) or not ranked:
        raise GenAIError(f"recall_at_k needs one ranking per query and at least one query "
                         f"(got {len(ranked)} rankings, {len(relevant)} relevant sets).")
    if any(not r for r in relevant):
        raise GenAIError("Every query needs at least one relevant id.")
    return float(np.mean([len(set(r[:k]) & set(rel)) / len(rel) for r, rel in zip(ranked, relevant)]))


def evaluate(bot: RAG, questions: Sequence[Question], ks: Sequence[int] = (1, 3, 5)) -> dict:
    """Retrieval recall@k, and answer accuracy with and without retrieval, on known-answer questions.

    Returns:
        ``{"recall": {k: r}, "accuracy": {"with": a, "without": b}, "rows": [...], "seconds": {...}}``
    """
    if not questions:
        raise GenAIError("evaluate() needs at least one question.")
    qs = [q.question for q in questions]
    t0 = time.process_time()
    ranked = [[c.cite for c, _ in hits] for hits in bot.retrieve(qs, max(ks))]
    t1 = time.process_time()
    recall = {k: recall_at_k(ranked, [{q.cite} for q in questions], k) for k in ks}
    with_r = bot.answer(qs, retrieval=True)
    t2 = time.process_time()
    without = bot.answer(qs, retrieval=False)
    t3 = time.process_time()
    rows = [{"question": q.question, "expected": q.answers[0], "gold": q.cite, "top": r[0],
             "with": a.text, "with_ok": keyword_match(a.text, q.answers), "cited": [a.hits[n - 1].cite for n in a.cited],
             "without": b.text, "without_ok": keyword_match(b.text, q.answers)}
            for q, r, a, b in zip(questions, ranked, with_r, without)]
    acc = {"with": float(np.mean([r["with_ok"] for r in rows])),
           "without": float(np.mean([r["without_ok"] for r in rows]))}
    return {"recall": recall, "accuracy": acc, "rows": rows,
            "cpu_seconds": {"retrieve": t1 - t0, "answer_with": t2 - t1, "answer_without": t3 - t2}}


def with_config(bot: RAG, **changes) -> RAG:
    """A copy of ``bot`` with some :class:`RAGConfig` fields changed (e.g. ``k=5``)."""
    return RAG(bot.index, bot.embedder, bot.lm, replace(bot.config, **changes))

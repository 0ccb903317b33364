"""Question answering over a given context: extractive (a span of the context) or generative (written).

* ``hub``: the source article's extractive model, DistilBERT fine-tuned on SQuAD (Sanh et al. 2019);
  it points at the start and end of the answer span (:class:`ExtractiveReader`).
* ``offline``: SmolLM2 reads the context and writes the answer (generative QA).
* ``tiny``: the random tiny language model, to exercise the code.

Both are scored the way SQuAD is scored (Rajpurkar et al. 2016): exact match and token F1 after
normalising case, punctuation, articles and spaces::

    from genai_lib import qa
    reader = qa.load()
    preds = qa.answer(reader, qa.ITEMS)
    print(qa.score(preds, qa.ITEMS))       # {'exact_match': ..., 'f1': ...}
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genai_lib.core import GenAIError, get_profile
from genai_lib.registry import load_pretrained, resolve, spec
from genai_lib.text import GenerationConfig, LanguageModel


@dataclass(frozen=True)
class QAItem:
    """A question about a context, with the accepted answers (each a span of the context)."""

    context: str
    question: str
    answers: tuple[str, ...]


_FR = "France is a country in Western Europe. Its capital is Paris."  # the example of the source article
ITEMS: tuple[QAItem, ...] = (
    QAItem(_FR, "What is the capital of France?", ("Paris",)),
    QAItem(_FR, "Where is France?", ("Western Europe", "in Western Europe")),
    QAItem("The Amazon is the largest rainforest on Earth. It covers much of northern Brazil and parts of "
           "eight other countries.", "Which country holds much of the Amazon?", ("Brazil", "northern Brazil")),
    QAItem("Marie Curie won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911.",
           "In which year did Marie Curie win the Nobel Prize in Chemistry?", ("1911",)),
    QAItem("Water boils at 100 degrees Celsius at sea level. On a high mountain it boils at a lower temperature "
           "because the air pressure is lower.", "Why does water boil at a lower temperature on a mountain?",
           ("because the air pressure is lower", "the air pressure is lower", "air pressure is lower")),
    QAItem("The Great Wall of China was built over many centuries. Its most famous sections were built during "
           "the Ming dynasty.", "During which dynasty were the most famous sections built?", ("the Ming dynasty", "Ming")),
    QAItem("Python was created by Guido van Rossum and first released in 1991.", "Who created Python?",
           ("Guido van Rossum",)),
    QAItem("Python was created by Guido van Rossum and first released in 1991.", "When was Python first released?",
           ("1991",)),
    QAItem("The heart pumps blood through the body. The lungs take in oxygen and remove carbon dioxide.",
           "Which organ pumps blood?", ("The heart", "heart")),
    QAItem("Mount Kilimanjaro, in Tanzania, is the highest mountain in Africa at 5,895 metres.",
           "How high is Mount Kilimanjaro?", ("5,895 metres", "5895 metres")),
    QAItem("Mount Kilimanjaro, in Tanzania, is the highest mountain in Africa at 5,895 metres.",
           "In which country is Mount Kilimanjaro?", ("Tanzania",)),
    QAItem("Honeybees communicate the direction of flowers to other bees with a movement called the waggle dance.",
           "How do honeybees share the direction of flowers?", ("the waggle dance", "a movement called the waggle dance")),
    QAItem("The transformer architecture was introduced in 2017 in a paper titled Attention Is All You Need.",
           "What was the title of the paper that introduced the transformer?", ("Attention Is All You Need",)),
    QAItem("Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
           "What do plants make through photosynthesis?", ("sugar and oxygen",)),
    QAItem("The Nile flows north through eleven countries and empties into the Mediterranean Sea.",
           "Into which sea does the Nile empty?", ("the Mediterranean Sea", "Mediterranean Sea", "Mediterranean")),
    QAItem("Ada Lovelace wrote what is often called the first computer program, for Charles Babbage's "
           "Analytical Engine.", "For which machine did Ada Lovelace write her program?",
           ("Charles Babbage's Analytical Engine", "the Analytical Engine", "Analytical Engine")),
    QAItem("A leap year has 366 days instead of 365; the extra day is added to February.",
           "How many days does a leap year have?", ("366",)),
    QAItem("A leap year has 366 days instead of 365; the extra day is added to February.",
           "Which month gets the extra day?", ("February",)),
    QAItem("The violin has four strings, tuned G, D, A and E.", "How many strings does a violin have?",
           ("four", "4")),
    QAItem("Light from the Sun takes about eight minutes to reach the Earth.",
           "How long does sunlight take to reach the Earth?", ("about eight minutes", "eight minutes")),
    # Invented facts: the answer is only in the context, so memory cannot help the model.
    QAItem("The village of Brindlemoor elected Ada Kell as its mayor in 2021. Before that she ran the bakery.",
           "Who is the mayor of Brindlemoor?", ("Ada Kell",)),
    QAItem("The village of Brindlemoor elected Ada Kell as its mayor in 2021. Before that she ran the bakery.",
           "What did Ada Kell do before she became mayor?", ("ran the bakery", "she ran the bakery", "the bakery")),
    QAItem("Zorblat is a board game for three players. Each player starts with seven blue tokens.",
           "How many tokens does each Zorblat player start with?", ("seven", "seven blue tokens", "7")),
    QAItem("The research ship Petrel sailed from Hobart on 3 March and reached Antarctica eleven days later.",
           "From which port did the Petrel sail?", ("Hobart",)),
)


# ----------------------------------------------------------------------------- SQuAD scoring
# [start:normalize-answer]
def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals one of the normalised answers, else 0.0."""
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not pred or not gold:  # SQuAD: two empty answers agree, otherwise an empty one scores 0
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, answers: Sequence[str]) -> float:
    """Token-overlap F1 between the prediction and the best-matching answer (SQuAD)."""
    if not answers:
        raise GenAIError("f1 needs at least one reference answer.")
    return max(_f1(prediction, a) for a in answers)
# [end:normalize-answer]


def score(predictions: Sequence[str], items: Sequence[QAItem]) -> dict[str, float]:
    """Mean exact match and F1 of ``predictions`` against ``items`` (fractions from 0 to 1)."""
    if len(predictions) != len(items):
        raise GenAIError(f"{len(predictions)} predictions for {len(items)} items; give one prediction per item.")
    if not items:
        raise GenAIError("score needs at least one item.")
    return {"exact_match": sum(exact_match(p, i.answers) for p, i in zip(predictions, items)) / len(items),
            "f1": sum(f1(p, i.answers) for p, i in zip(predictions, items)) / len(items)}


# ----------------------------------------------------------------------------- readers
QA_INSTRUCTION = ("Answer the question using only the context. Reply with the shortest phrase from the "
                  "context that answers it, not a full sentence.")
#: Two worked examples, shown as earlier turns of the chat: they teach a small model the short answer format.
QA_EXAMPLES: tuple[QAItem, ...] = (
    QAItem("The Danube flows through ten countries and ends in the Black Sea.", "Where does the Danube end?",
           ("the Black Sea",)),
    QAItem("Alan Turing proposed the imitation game in 1950 as a test of machine intelligence.",
           "When did Turing propose the imitation game?", ("1950",)),
)


CLOSED_BOOK_INSTRUCTION = "Answer the question with the shortest phrase that answers it, not a full sentence."


# [start:qa-messages]
def qa_messages(item: QAItem, examples: Sequence[QAItem] = QA_EXAMPLES, closed_book: bool = False) -> list[dict[str, str]]:
    """The chat conversation that asks a generative reader ``item``'s question, after the worked ``examples``.

    With ``closed_book=True`` the contexts are left out (the model must answer from memory).
    """
    msgs: list[dict[str, str]] = []
    for ex in [*examples, item]:
        content = (f"{CLOSED_BOOK_INSTRUCTION}\n\nQuestion: {ex.question}" if closed_book else
                   f"{QA_INSTRUCTION}\n\nContext: {ex.context}\nQuestion: {ex.question}")
        msgs.append({"role": "user", "content": content})
        if ex is not item:
            msgs.append({"role": "assistant", "content": ex.answers[0]})
    return msgs
# [end:qa-messages]


class ExtractiveReader:
    """An extractive reader: a ``...ForQuestionAnswering`` model that points at the answer's span.

    The model reads ``[CLS] question [SEP] context [SEP]`` and gives every token two scores: how
    likely the answer *starts* there and how likely it *ends* there. The answer is the context span
    with the best start + end score (end not before start, at most ``max_answer_tokens`` long), cut
    out of the context with the tokenizer's character offsets. This is what transformers'
    ``pipeline("question-answering")`` did up to version 5.2; 5.3 removed that pipeline, so it is written here.

    Args:
        tokenizer: a fast tokenizer (it must return offset mappings).
        model: a ``transformers`` model with ``start_logits``/``end_logits`` outputs.
        name: what to call it in printed run facts.
        max_answer_tokens: the longest answer span considered.
    """

    def __init__(self, tokenizer, model, name: str, max_answer_tokens: int = 30) -> None:
        self.tokenizer, self.model, self.name = tokenizer, model.eval(), name
        self.max_answer_tokens = max_answer_tokens

    @property
    def device(self):
        return next(self.model.parameters()).device

    def __call__(self, question: str | Sequence[str], context: str | Sequence[str]) -> dict | list[dict]:
        """Answer one question (or a list) from its context: ``{"answer", "score", "start", "end"}``.

        ``start``/``end`` are character positions in the context; ``score`` is P(start) * P(end).
        """
        import torch

        single = isinstance(question, str)
        qs, cs = ([question], [context]) if single else (list(question), list(context))
        if len(qs) != len(cs) or not all(isinstance(x, str) and x.strip() for x in [*qs, *cs]):
            raise GenAIError("Give one non-empty context for every non-empty question.")
        enc = self.tokenizer(qs, cs, truncation="only_second", max_length=384, padding=True,
                             return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")  # (B, T, 2) character spans in the question or the context
        in_context = torch.tensor([[sid == 1 for sid in enc.sequence_ids(b)] for b in range(len(qs))])  # (B, T)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            out = self.model(**enc)
        results = []
        for b in range(len(qs)):
            start, end = out.start_logits[b].float().cpu(), out.end_logits[b].float().cpu()  # (T,), (T,)
            i, j = best_span(start, end, in_context[b], self.max_answer_tokens)
            p = torch.softmax(start.masked_fill(~in_context[b], float("-inf")), 0)[i] * \
                torch.softmax(end.masked_fill(~in_context[b], float("-inf")), 0)[j]
            a, z = int(offsets[b, i, 0]), int(offsets[b, j, 1])
            results.append({"answer": cs[b][a:z], "score": float(p), "start": a, "end": z})
        return results[0] if single else results


# [start:best-span]
def best_span(start_logits, end_logits, allowed, max_len: int) -> tuple[int, int]:
    """The (start, end) token pair with the largest start + end logit, end >= start, end - start < max_len.

    Args:
        start_logits: (T,) scores for the answer starting at each token.
        end_logits: (T,) scores for the answer ending at each token.
        allowed: (T,) bool, True for tokens that may be part of the answer (the context's tokens).
        max_len: the longest span, in tokens.
    """
    import torch

    if not bool(allowed.any()):
        raise GenAIError("No context tokens are left to answer from (was the context truncated away?).")
    neg = torch.finfo(torch.float32).min
    s = start_logits.masked_fill(~allowed, neg)
    e = end_logits.masked_fill(~allowed, neg)
    scores = s[:, None] + e[None, :]  # (T, T): row = start, column = end
    t = scores.shape[0]
    idx = torch.arange(t)
    valid = (idx[None, :] >= idx[:, None]) & (idx[None, :] - idx[:, None] < max_len) & allowed[:, None] & allowed[None, :]
    flat = int(torch.argmax(scores.masked_fill(~valid, float("-inf"))))
    return flat // t, flat % t
# [end:best-span]


def load(profile: str | None = None, path: str | None = None, device: str | None = None):
    """The profile's reader: extractive under ``hub`` (or for a local ``path``), else a chat model.

    Args:
        profile: ``tiny``, ``offline`` or ``hub``; the active profile when ``None``.
        path: a local folder with an extractive QA model (e.g. a saved ``DistilBertForQuestionAnswering``).
        device: force a device.

    Returns:
        An :class:`ExtractiveReader`, or a :class:`~genai_lib.text.LanguageModel` for generative QA.
    """
    from genai_lib import text

    prof = get_profile(profile)
    if path is None and spec("qa", prof).kind != "hub":
        return text.load("qa", prof, device=device)
    from transformers import AutoModelForQuestionAnswering

    src = resolve("qa", prof, path)
    tok, model = load_pretrained(src, AutoModelForQuestionAnswering, "an extractive question-answering model", device)
    return ExtractiveReader(tok, model, name=src.name)


def clean_generated(answer: str) -> str:
    """Keep the first line of a generated answer, without lead-ins ("Answer:", "The answer is"), quotes and
    a final full stop."""
    line = next((ln for ln in answer.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(answer\s*:|the answer( to (the|this) question)? is\s*:?)\s*", "", line, flags=re.IGNORECASE)
    return line.strip().rstrip(".").strip().strip("\"'").rstrip(".").strip()


def answer(reader: Any, items: Sequence[QAItem], config: GenerationConfig | None = None,
           batch_size: int = 16, closed_book: bool = False) -> list[str]:
    """Answer every item's question from its context.

    Args:
        reader: an :class:`ExtractiveReader` or a :class:`LanguageModel` (generative).
        items: the questions with their contexts.
        config: decoding options for a generative reader (greedy, 24 new tokens by default).
        batch_size: how many questions go through the model together.
        closed_book: ask a generative reader without the contexts (a baseline: what it remembers).

    Returns:
        One answer string per item.
    """
    items = list(items)
    if not items:
        return []
    if isinstance(reader, LanguageModel):
        cfg = config or GenerationConfig(max_new_tokens=24)
        convs = [qa_messages(i, closed_book=closed_book) for i in items]
        return [clean_generated(a) for a in reader.chat_batch(convs, cfg, batch_size=batch_size)]
    if closed_book:
        raise GenAIError("An extractive reader needs a context to point into; closed_book works with a language model.")
    outs = []
    for s in range(0, len(items), batch_size):
        chunk = items[s:s + batch_size]
        outs += reader(question=[i.question for i in chunk], context=[i.context for i in chunk])
    return [o["answer"].strip() for o in outs]

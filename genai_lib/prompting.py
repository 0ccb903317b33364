"""Prompt engineering, measured: prompting techniques scored on small tasks with known answers.

A *task* is an instruction, a few worked examples and a set of questions whose answers we know. A
*technique* turns a question into a chat conversation (zero-shot, few-shot, chain of thought, zero-shot
chain of thought, or a system prompt). :func:`evaluate` asks the model every question with one
technique, extracts the answer from the reply and scores it, so techniques and decoding settings can be
compared by accuracy instead of by anecdote::

    from genai_lib import prompting, text
    lm = text.load("chat")
    res = prompting.evaluate(lm, prompting.TASKS, "few_shot")
    print(res.accuracy, res.by_task())
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from genai_lib.core import GenAIError, preset_of
from genai_lib.text import GenerationConfig, LanguageModel, Messages

ANSWER_MARK = "Answer:"  # the chain-of-thought prompts ask the model to end with "Answer: <answer>"


@dataclass(frozen=True)
class Example:
    """A worked example shown to the model: a question, its reasoning and its answer."""

    question: str
    answer: str
    reasoning: str = ""  # one or two sentences, used only by the chain-of-thought technique


@dataclass(frozen=True)
class Task:
    """A small task with known answers.

    Attributes:
        name: short name (``arithmetic``, ``sentiment`` ...).
        instruction: what the model is asked to do, put before each question.
        kind: how answers are compared: ``number`` (numeric value), ``label`` (one of ``labels``)
            or ``text`` (the gold word, or an alias, appears in the reply).
        examples: worked examples for the few-shot and chain-of-thought techniques.
        items: (question, gold answer) pairs; several golds may be given separated by ``|``.
        labels: the valid labels of a ``label`` task.
    """

    name: str
    instruction: str
    kind: str
    examples: tuple[Example, ...]
    items: tuple[tuple[str, str], ...]
    labels: tuple[str, ...] = ()


TASKS: tuple[Task, ...] = (
    Task("arithmetic", "Solve the word problem.", "number", (
        Example("Sam has 3 bags with 4 marbles in each bag. He loses 2 marbles. How many marbles does he have?", "10",
                "3 bags of 4 marbles is 3 * 4 = 12 marbles. After losing 2 he has 12 - 2 = 10."),
        Example("A book costs 7 dollars. How much do 3 books cost?", "21", "3 books cost 3 * 7 = 21 dollars."),
        Example("There are 20 birds on a wire and 8 fly away. How many birds are left?", "12",
                "20 - 8 = 12 birds are left."),
    ), (
        ("Anna has 5 apples and buys 7 more. How many apples does she have?", "12"),
        ("A class has 6 rows of 5 chairs. How many chairs are there?", "30"),
        ("Tom had 15 stickers and gave 6 to his sister. How many stickers does he have now?", "9"),
        ("A pizza is cut into 8 slices. Two friends eat 3 slices each. How many slices are left?", "2"),
        ("A box holds 12 eggs. How many eggs are in 4 boxes?", "48"),
        ("Lena reads 10 pages a day. How many pages does she read in a week?", "70"),
        ("24 sweets are shared equally among 4 children. How many sweets does each child get?", "6"),
        ("A shop sells 9 pens on Monday and twice as many on Tuesday. How many pens did it sell on the two days?",
         "27"),
    )),
    Task("sentiment", "Is the sentiment of the review positive or negative?", "label", (
        Example("Review: The food was cold and the waiter was rude.", "negative",
                "Cold food and a rude waiter are complaints."),
        Example("Review: What a wonderful film, I would watch it again tomorrow.", "positive",
                "Calling it wonderful and wanting to watch it again is praise."),
        Example("Review: The battery died after two days.", "negative",
                "A battery that dies quickly is a fault."),
    ), (
        ("Review: I loved every minute of this concert.", "positive"),
        ("Review: The hotel room was dirty and noisy.", "negative"),
        ("Review: This is the best pizza in town.", "positive"),
        ("Review: The book was boring and far too long.", "negative"),
        ("Review: Friendly staff and a beautiful garden.", "positive"),
        ("Review: The phone broke the first time I dropped it.", "negative"),
        ("Review: A delightful story with charming characters.", "positive"),
        ("Review: I want my money back.", "negative"),
    ), labels=("positive", "negative")),
    Task("capitals", "What is the capital city of the country?", "text", (
        Example("Country: Italy", "Rome", "The capital of Italy is Rome."),
        Example("Country: Spain", "Madrid", "The capital of Spain is Madrid."),
        Example("Country: Egypt", "Cairo", "The capital of Egypt is Cairo."),
    ), (
        ("Country: France", "Paris"),
        ("Country: Japan", "Tokyo"),
        ("Country: Germany", "Berlin"),
        ("Country: Canada", "Ottawa"),
        ("Country: Australia", "Canberra"),
        ("Country: Kenya", "Nairobi"),
        ("Country: Brazil", "Brasilia|Brasília"),
        ("Country: Norway", "Oslo"),
    )),
    Task("units", "Convert the quantity. Give the number only.", "number", (
        Example("How many grams are in 2 kilograms?", "2000", "1 kilogram is 1000 grams, so 2 * 1000 = 2000."),
        Example("How many minutes are in 3 hours?", "180", "1 hour is 60 minutes, so 3 * 60 = 180."),
        Example("How many millimetres are in 4 centimetres?", "40", "1 centimetre is 10 millimetres, so 4 * 10 = 40."),
    ), (
        ("How many centimetres are in 5 metres?", "500"),
        ("How many seconds are in 2 minutes?", "120"),
        ("How many metres are in 3 kilometres?", "3000"),
        ("How many hours are in 2 days?", "48"),
        ("How many millilitres are in 2 litres?", "2000"),
        ("How many days are in 3 weeks?", "21"),
        ("How many minutes are in half an hour?", "30"),
        ("How many grams are in 1.5 kilograms?", "1500"),
    )),
    Task("category", "Is the thing an animal, a plant, a vehicle or a tool?", "label", (
        Example("Thing: hammer", "tool", "A hammer is used to drive nails, so it is a tool."),
        Example("Thing: eagle", "animal", "An eagle is a bird, and birds are animals."),
        Example("Thing: bicycle", "vehicle", "A bicycle carries a person, so it is a vehicle."),
    ), (
        ("Thing: oak tree", "plant"),
        ("Thing: truck", "vehicle"),
        ("Thing: screwdriver", "tool"),
        ("Thing: dolphin", "animal"),
        ("Thing: rose", "plant"),
        ("Thing: airplane", "vehicle"),
        ("Thing: saw", "tool"),
        ("Thing: elephant", "animal"),
    ), labels=("animal", "plant", "vehicle", "tool")),
)

SYSTEM_PROMPT = ("You are a precise assistant. Reply with the final answer only: a single number, word or "
                 "label, with no explanation and no full sentence.")
TECHNIQUES = ("zero_shot", "few_shot", "chain_of_thought", "zero_shot_cot", "system_prompt")


@dataclass
class PromptingConfig:
    """How much to ask, and how long the answers may be.

    Attributes:
        items_per_task: how many questions of each task to ask (``None`` = all of them).
        max_new_tokens: token budget of a direct answer (zero-shot, few-shot, system prompt).
        max_new_tokens_cot: token budget of an answer that reasons first (the two chain-of-thought techniques).
        batch_size: how many conversations are generated together (see ``LanguageModel.generate_batch``).
        sweep_items_per_task: questions per task in :func:`sampling_sweep` (sampling costs ``samples`` times more).
        sweep_samples: replies drawn per question and setting in :func:`sampling_sweep`.
    """

    items_per_task: int | None = None
    max_new_tokens: int = 32
    max_new_tokens_cot: int = 64
    batch_size: int = 40                        # all 40 questions in one ragged batch: fastest on 1 CPU thread (bench/ragged.py)
    sweep_items_per_task: int = 4
    sweep_samples: int = 2


PRESETS: dict[str, PromptingConfig] = {
    "tiny": PromptingConfig(items_per_task=2, max_new_tokens=4, max_new_tokens_cot=8, batch_size=8,
                            sweep_items_per_task=1, sweep_samples=2),
    "offline": PromptingConfig(),
    "hub": PromptingConfig(),
}


def preset(profile: str | None = None, **overrides: Any) -> PromptingConfig:
    """The profile's preset :class:`PromptingConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


# ----------------------------------------------------------------------------- prompts
def _user(task: Task, question: str) -> str:
    return f"{task.instruction}\n{question}"


# [start:build-messages]
def build_messages(task: Task, question: str, technique: str) -> list[dict[str, str]]:
    """The chat conversation that asks ``question`` with ``technique``.

    * ``zero_shot``: the instruction and the question, nothing else;
    * ``few_shot``: the worked examples first, as earlier turns of the conversation (Brown et al. 2020);
    * ``chain_of_thought``: the examples with their reasoning, each ending in ``Answer: ...`` (Wei et al. 2022);
    * ``zero_shot_cot``: no examples, but "Let's think step by step" (Kojima et al. 2022);
    * ``system_prompt``: a system message that fixes the role and the format of the reply.
    """
    if technique not in TECHNIQUES:
        raise GenAIError(f"Unknown technique {technique!r}; choose one of {', '.join(TECHNIQUES)}.")
    msgs: list[dict[str, str]] = []
    if technique == "system_prompt":
        msgs.append({"role": "system", "content": SYSTEM_PROMPT})
    if technique in ("few_shot", "chain_of_thought"):
        for ex in task.examples:
            reply = ex.answer if technique == "few_shot" else f"{ex.reasoning} {ANSWER_MARK} {ex.answer}"
            msgs += [{"role": "user", "content": _user(task, ex.question)}, {"role": "assistant", "content": reply}]
    content = _user(task, question)
    if technique == "zero_shot_cot":
        content += f"\nLet's think step by step, then give the final answer as '{ANSWER_MARK} <answer>'."
    msgs.append({"role": "user", "content": content})
    return msgs
# [end:build-messages]


# ----------------------------------------------------------------------------- answer extraction
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _answer_part(reply: str) -> str:
    """The text after the last ``Answer:`` marker if there is one, else the whole reply."""
    idx = reply.lower().rfind(ANSWER_MARK.lower())
    return reply[idx + len(ANSWER_MARK):] if idx >= 0 else reply


# [start:extract-number]
def extract_number(reply: str) -> float | None:
    """The number a reply gives as its answer: the first number after ``Answer:``, else the last number.

    The last number is the usual conclusion of a worked answer ("3 * 4 = 12, 12 - 2 = 10"); thousands
    separators are ignored. Returns ``None`` when the reply holds no number.
    """
    marked = reply.lower().rfind(ANSWER_MARK.lower()) >= 0
    found = _NUMBER.findall(_answer_part(reply))
    if not found:
        return None
    token = (found[0] if marked else found[-1]).replace(",", "")
    return float(token)


def extract_label(reply: str, labels: Sequence[str]) -> str | None:
    """The label a reply chooses: the first of ``labels`` that occurs as a word (after ``Answer:`` if present)."""
    part = _answer_part(reply).lower()
    hits = [(m.start(), lab) for lab in labels for m in [re.search(rf"\b{re.escape(lab.lower())}\b", part)] if m]
    return min(hits)[1] if hits else None
# [end:extract-number]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", s.lower().replace("í", "i")).strip()


def is_correct(task: Task, reply: str, gold: str) -> bool:
    """Score one reply against the gold answer(s) of a task (``|`` separates accepted answers)."""
    golds = gold.split("|")
    if task.kind == "number":
        got = extract_number(reply)
        return got is not None and any(abs(got - float(g)) < 1e-6 for g in golds)
    if task.kind == "label":
        return extract_label(reply, task.labels) == golds[0]
    first_line = next((ln for ln in _answer_part(reply).splitlines() if ln.strip()), "")
    return any(re.search(rf"\b{re.escape(_norm(g))}\b", _norm(first_line)) for g in golds)


# ----------------------------------------------------------------------------- evaluation
@dataclass
class Result:
    """The replies and scores of one technique (and one decoding setting) over a set of tasks."""

    technique: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # task, question, gold, reply, correct
    generation: GenerationConfig | None = None  # the decoding options the replies were generated with

    @property
    def accuracy(self) -> float:
        return sum(r["correct"] for r in self.rows) / max(len(self.rows), 1)

    def by_task(self) -> dict[str, float]:
        """Accuracy per task."""
        hits: dict[str, list[bool]] = defaultdict(list)
        for r in self.rows:
            hits[r["task"]].append(r["correct"])
        return {t: sum(v) / len(v) for t, v in hits.items()}


def _questions(tasks: Sequence[Task], cfg: PromptingConfig) -> list[tuple[Task, str, str]]:
    out = []
    for task in tasks:
        items = task.items if cfg.items_per_task is None else task.items[:cfg.items_per_task]
        out += [(task, q, a) for q, a in items]
    return out


def conversations(tasks: Sequence[Task], technique: str, config: PromptingConfig) -> list[Messages]:
    """The conversations :func:`evaluate` sends: every question ``config`` selects, asked with ``technique``."""
    return [build_messages(t, q, technique) for t, q, _ in _questions(tasks, config)]


def _generation(technique: str, cfg: PromptingConfig, generation: GenerationConfig | None) -> GenerationConfig:
    """The decoding options :func:`evaluate` uses: ``generation`` with the token budget of ``technique``."""
    cot = technique in ("chain_of_thought", "zero_shot_cot")
    return replace(generation or GenerationConfig(), max_new_tokens=cfg.max_new_tokens_cot if cot else cfg.max_new_tokens)


def evaluate(lm: LanguageModel, tasks: Sequence[Task], technique: str, config: PromptingConfig | None = None,
             generation: GenerationConfig | None = None, samples: int = 1, progress: bool = False) -> Result:
    """Ask every question of ``tasks`` with ``technique`` and score the replies.

    Args:
        lm: the chat model.
        tasks: the tasks (e.g. :data:`TASKS`).
        technique: one of :data:`TECHNIQUES`.
        config: how many items and tokens; the profile's preset when ``None``.
        generation: decoding options (greedy by default); ``max_new_tokens`` is set from ``config``.
        samples: how many replies to draw per question (useful with sampling); each is scored.
        progress: show a progress bar.

    Returns:
        A :class:`Result` with one row per question and sample.
    """
    cfg = config or preset(lm.profile)
    if not isinstance(samples, int) or samples < 1:
        raise GenAIError(f"samples must be a positive integer, got {samples!r}")
    gen = _generation(technique, cfg, generation)
    qs = _questions(tasks, cfg) * samples
    replies = lm.chat_batch(conversations(tasks, technique, cfg) * samples, gen, batch_size=cfg.batch_size,
                            progress=progress)
    res = Result(technique, generation=gen)
    for (task, q, gold), reply in zip(qs, replies):
        res.rows.append({"task": task.name, "question": q, "gold": gold, "reply": reply,
                         "correct": is_correct(task, reply, gold)})
    return res


def compare(lm: LanguageModel, tasks: Sequence[Task] = TASKS, techniques: Sequence[str] = TECHNIQUES,
            config: PromptingConfig | None = None, progress: bool = False) -> dict[str, Result]:
    """:func:`evaluate` every technique with greedy decoding; returns technique -> :class:`Result`."""
    return {t: evaluate(lm, tasks, t, config, progress=progress) for t in techniques}


#: Decoding settings for :func:`sampling_sweep`: greedy, three temperatures, and a hot temperature tamed by top-p.
SWEEP_SETTINGS: dict[str, GenerationConfig] = {
    "greedy": GenerationConfig(),
    "T=0.5": GenerationConfig(do_sample=True, temperature=0.5),
    "T=1.0": GenerationConfig(do_sample=True, temperature=1.0),
    "T=1.5": GenerationConfig(do_sample=True, temperature=1.5),
    "T=1.5, top-p=0.5": GenerationConfig(do_sample=True, temperature=1.5, top_p=0.5),
}


def sampling_sweep(lm: LanguageModel, tasks: Sequence[Task] = TASKS, technique: str = "zero_shot",
                   settings: dict[str, GenerationConfig] | None = None, config: PromptingConfig | None = None,
                   seed: int = 0, progress: bool = False, greedy: Result | None = None) -> dict[str, Result]:
    """Score one technique under several decoding settings (temperature, top-p).

    Greedy decoding is asked once per question; each sampled setting draws ``config.sweep_samples``
    replies per question (with a fixed seed, so the sweep is repeatable), on the first
    ``config.sweep_items_per_task`` questions of every task.

    Args:
        greedy: greedy replies already scored for ``technique``, such as ``compare(...)[technique]``
            with the same ``config``. A greedy setting then reuses its rows for the sweep's questions
            instead of asking the model again: the same prompts with the same decoding options, so the
            same replies (in bfloat16, up to the rounding of a different batch shape). A
            :class:`GenAIError` says what does not match when ``greedy`` cannot stand in.

    Returns:
        setting name -> :class:`Result`.
    """
    cfg = config or preset(lm.profile)
    small = replace(cfg, items_per_task=cfg.sweep_items_per_task)
    out = {}
    for name, gen in (settings or SWEEP_SETTINGS).items():
        gen = replace(gen, seed=seed)
        if greedy is not None and not gen.do_sample:
            out[name] = _reuse(greedy, tasks, technique, small, gen)
            continue
        samples = cfg.sweep_samples if gen.do_sample else 1
        out[name] = evaluate(lm, tasks, technique, small, gen, samples=samples, progress=progress)
    return out


def _reuse(greedy: Result, tasks: Sequence[Task], technique: str, cfg: PromptingConfig,
           generation: GenerationConfig) -> Result:
    """The rows of ``greedy`` that :func:`evaluate` would produce for ``cfg``'s questions with ``generation``."""
    want = _generation(technique, cfg, generation)
    if greedy.technique != technique:
        raise GenAIError(f"The greedy result is for {greedy.technique!r}, the sweep asks {technique!r}; "
                         f"pass the result of the same technique, e.g. compare(...)[{technique!r}].")
    used = greedy.generation
    if used is None or replace(used, seed=None) != replace(want, seed=None):  # greedy search ignores the seed
        raise GenAIError(f"The greedy result was decoded with {used}, the sweep's setting is {want}; "
                         "pass a result of evaluate() or compare() with the same config, or greedy=None.")
    rows = {(r["task"], r["question"]): r for r in greedy.rows}
    keys = [(t.name, q) for t, q, _ in _questions(tasks, cfg)]
    missing = [f"{name}: {q!r}" for name, q in keys if (name, q) not in rows]
    if missing:
        raise GenAIError(f"The greedy result has no reply to {len(missing)} of the sweep's questions "
                         f"(first: {missing[0]}); evaluate at least the first {cfg.items_per_task} "
                         "questions of every task, or pass greedy=None.")
    return Result(technique, [dict(rows[k]) for k in keys], used)

"""genai_lib.prompting: prompts, answer extraction and scoring (tiny), and one offline check on SmolLM2."""

from dataclasses import replace

import pytest

from genai_lib import prompting
from genai_lib.core import GenAIError
from genai_lib.prompting import TASKS, extract_label, extract_number, is_correct

ARITH, SENT, CAPS, UNITS, CAT = TASKS


@pytest.mark.parametrize("reply, expected", [
    ("3 * 4 = 12, then 12 - 2 = 10.", 10.0),           # the conclusion is the last number
    ("She has 12 apples. Answer: 12", 12.0),
    ("Answer: 1,500 grams (1.5 kg)", 1500.0),           # thousands separator; first number after the marker
    ("It is -4 degrees", -4.0),
    ("I do not know", None),
    ("5 apples... Answer: 35 apples, since 5*7", 35.0),
])
def test_extract_number(reply, expected):
    assert extract_number(reply) == expected


def test_extract_label_takes_the_first_label_mentioned():
    labels = ("positive", "negative")
    assert extract_label("The sentiment is positive, not negative.", labels) == "positive"
    assert extract_label("Negative. Nothing positive here", labels) == "negative"
    assert extract_label("positive at first... Answer: negative", labels) == "negative"
    assert extract_label("It is neutral", labels) is None
    assert extract_label("a positively great film", labels) is None  # whole words only


def test_is_correct_per_task_kind():
    assert is_correct(ARITH, "5 + 7 = 12", "12") and not is_correct(ARITH, "5 + 7 = 13", "12")
    assert is_correct(SENT, "positive", "positive") and not is_correct(SENT, "negative", "positive")
    assert is_correct(CAPS, "The capital of Japan is Tokyo.", "Tokyo")
    assert not is_correct(CAPS, "Sydney.\nCanberra is the capital.", "Canberra")  # only the first line counts
    assert is_correct(CAPS, "Brasília", "Brasilia|Brasília") and is_correct(CAPS, "brasilia", "Brasilia|Brasília")
    assert is_correct(CAT, "A rose is a flower. Answer: plant", "plant")


def test_every_gold_answer_scores_as_correct_and_tasks_are_a_few_dozen():
    n = 0
    for task in TASKS:
        assert len(task.examples) >= 2
        for q, gold in task.items:
            n += 1
            assert is_correct(task, gold.split("|")[0], gold), (task.name, q)
            assert is_correct(task, f"Some reasoning first. Answer: {gold.split('|')[0]}", gold)
            if task.kind == "label":
                assert gold in task.labels
    assert n >= 36


def test_build_messages_for_each_technique():
    q = SENT.items[0][0]
    zero = prompting.build_messages(SENT, q, "zero_shot")
    assert zero == [{"role": "user", "content": f"{SENT.instruction}\n{q}"}]
    few = prompting.build_messages(SENT, q, "few_shot")
    assert len(few) == 2 * len(SENT.examples) + 1 and few[1] == {"role": "assistant", "content": "negative"}
    cot = prompting.build_messages(SENT, q, "chain_of_thought")
    assert cot[1]["content"].endswith("Answer: negative") and "complaints" in cot[1]["content"]
    assert "step by step" in prompting.build_messages(SENT, q, "zero_shot_cot")[-1]["content"]
    sys_msgs = prompting.build_messages(SENT, q, "system_prompt")
    assert sys_msgs[0] == {"role": "system", "content": prompting.SYSTEM_PROMPT}
    with pytest.raises(GenAIError, match="technique"):
        prompting.build_messages(SENT, q, "telepathy")


def test_conversations_are_the_selected_questions_asked_with_the_technique(tiny_lm):
    cfg = prompting.PromptingConfig(items_per_task=2)
    convs = prompting.conversations(TASKS[:2], "few_shot", cfg)
    assert convs == [prompting.build_messages(t, q, "few_shot") for t in TASKS[:2] for q, _ in t.items[:2]]
    assert len(prompting.conversations(TASKS, "zero_shot", prompting.PromptingConfig())) == 40
    prompts = [tiny_lm.format_chat(c) for c in convs]                         # two tasks: two shared prefixes
    n = tiny_lm.prefill_positions(prompts)
    assert n["shared"] < n["plain"]


def test_evaluate_and_sweep_run_on_the_tiny_model(tiny_lm):
    cfg = prompting.preset("tiny")
    res = prompting.evaluate(tiny_lm, TASKS, "few_shot", cfg)
    assert len(res.rows) == len(TASKS) * cfg.items_per_task
    assert 0.0 <= res.accuracy <= 1.0 and set(res.by_task()) == {t.name for t in TASKS}
    assert res.accuracy == sum(r["correct"] for r in res.rows) / len(res.rows)
    sweep = prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg)
    assert set(sweep) == set(prompting.SWEEP_SETTINGS)
    assert len(sweep["greedy"].rows) == 2 and len(sweep["T=1.0"].rows) == 2 * cfg.sweep_samples
    assert sweep["T=1.0"].rows == prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg)["T=1.0"].rows  # seeded
    with pytest.raises(GenAIError, match="samples"):
        prompting.evaluate(tiny_lm, TASKS, "zero_shot", cfg, samples=0)


def test_sweep_reuses_the_greedy_replies_it_is_given(tiny_lm, monkeypatch):
    cfg = prompting.preset("tiny")
    compared = prompting.evaluate(tiny_lm, TASKS[:2], "zero_shot", cfg)
    assert compared.generation.max_new_tokens == cfg.max_new_tokens and not compared.generation.do_sample
    fresh = prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg)

    batches = []
    real_chat_batch = tiny_lm.chat_batch
    monkeypatch.setattr(tiny_lm, "chat_batch", lambda convs, *a, **k: batches.append(len(convs)) or real_chat_batch(convs, *a, **k))
    reused = prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=compared)
    sampled = [n for n, g in prompting.SWEEP_SETTINGS.items() if g.do_sample]
    assert batches == [2 * cfg.sweep_samples] * len(sampled)          # the greedy setting asked nothing
    first = [r for r in compared.rows if r["question"] in {t.items[0][0] for t in TASKS[:2]}]
    assert reused["greedy"].rows == first and len(first) == 2          # the first question of each task, in order
    assert [r["reply"] for r in reused["greedy"].rows] == [r["reply"] for r in fresh["greedy"].rows]  # float32: same text
    assert all(reused[n].rows == fresh[n].rows for n in sampled)       # sampled settings unchanged (seeded)
    only_greedy = {"greedy": prompting.SWEEP_SETTINGS["greedy"]}
    assert prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=compared, seed=7, settings=only_greedy)["greedy"].rows == first
    assert len(batches) == len(sampled)                                # greedy search ignores the seed: still reused


def test_sweep_refuses_greedy_replies_that_cannot_stand_in(tiny_lm):
    cfg = prompting.preset("tiny")
    few = prompting.evaluate(tiny_lm, TASKS[:2], "few_shot", cfg)
    with pytest.raises(GenAIError, match="'few_shot'.*'zero_shot'"):
        prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=few)
    longer = prompting.evaluate(tiny_lm, TASKS[:2], "zero_shot", replace(cfg, max_new_tokens=cfg.max_new_tokens + 1))
    with pytest.raises(GenAIError, match="decoded with"):
        prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=longer)
    with pytest.raises(GenAIError, match="decoded with None"):
        prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=prompting.Result("zero_shot", longer.rows))
    one_task = prompting.evaluate(tiny_lm, TASKS[:1], "zero_shot", cfg)
    with pytest.raises(GenAIError, match=f"no reply to 1 of the sweep's questions \\(first: {TASKS[1].name}"):
        prompting.sampling_sweep(tiny_lm, TASKS[:2], config=cfg, greedy=one_task)


@pytest.mark.offline
def test_smollm2_few_shot_gets_some_capitals_right(smol):
    res = prompting.evaluate(smol, [CAPS], "few_shot", prompting.PromptingConfig(items_per_task=4))
    assert res.accuracy >= 0.5, res.rows

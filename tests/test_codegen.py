"""genai_lib.codegen: pass@k against known values, the tasks' own tests, truncation, evaluation (tiny)."""

import itertools
import math
from fractions import Fraction

import pytest

from genai_lib import codegen
from genai_lib.codegen import TASKS, pass_at_k
from genai_lib.core import GenAIError


def _brute_force_pass_at_k(n, c, k):
    """The fraction of all k-subsets of n samples (c correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(samples[i] for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n, c, k, expected", [
    (10, 1, 1, 0.1), (10, 0, 5, 0.0), (10, 10, 1, 1.0), (10, 1, 10, 1.0),
    (5, 2, 2, 0.7),                          # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (4, 1, 2, 0.5),                          # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (20, 3, 5, 1 - 6188 / 15504),            # 1 - C(17,5)/C(20,5)
])
def test_pass_at_k_known_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_brute_force_and_exact_binomials():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(float(_brute_force_pass_at_k(n, c, k)), abs=1e-12)
    # large n: the product form stays accurate where the binomials have hundreds of digits
    for n, c, k in [(200, 13, 10), (1000, 7, 100), (500, 1, 1)]:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9)
        assert codegen.exact_pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9)


def test_pass_at_1_is_the_fraction_correct_and_grows_with_k():
    assert pass_at_k(37, 11, 1) == pytest.approx(11 / 37)
    values = [pass_at_k(20, 4, k) for k in range(1, 21)]
    assert values == sorted(values) and values[-1] == 1.0


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1), (5.0, 2, 1)])
def test_pass_at_k_bad_input(n, c, k):
    with pytest.raises(GenAIError):
        pass_at_k(n, c, k)


def test_every_task_has_tests_its_reference_passes_and_a_wrong_body_fails():
    assert 15 <= len(TASKS) <= 20 and len({t.entry_point for t in TASKS}) == len(TASKS)
    for task in TASKS:
        assert task.prompt.startswith(f"def {task.entry_point}(") and '"""' in task.prompt
        good = codegen.check(task, task.prompt + task.solution)
        assert good.status == "passed", (task.entry_point, good)
        bad = codegen.check(task, task.prompt + "    return None\n")
        assert bad.status == "failed", (task.entry_point, bad)


def test_truncate_stops_at_the_next_top_level_block():
    body = "    return a + b\n\ndef other():\n    pass\n"
    assert codegen.truncate(body) == "    return a + b\n"
    assert codegen.truncate("    x = 1\n    return x\n\nprint(add(1, 2))") == "    x = 1\n    return x\n"
    assert codegen.truncate("    return 1\n# tests\nassert f() == 1") == "    return 1"
    assert codegen.truncate("    return 1") == "    return 1"


def test_extract_code_from_a_chat_reply():
    reply = ("Here it is:\n```python\nimport math\n\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n"
             "print(add(1, 2))\n```\nThis function adds.")
    assert codegen.extract_code(reply, "add") == "import math\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n"
    assert codegen.check(codegen.TASKS[0], codegen.extract_code(reply, "add")).passed
    assert codegen.extract_code("def add(a, b): return a + b", "add") == "def add(a, b): return a + b\n"
    unfinished = "```python\ndef add(a, b):\n    return a + b"  # cut by the token budget inside the block
    assert codegen.extract_code(unfinished, "add") == "def add(a, b):\n    return a + b"


def test_a_dangerous_body_is_contained_in_check():
    add = TASKS[0]
    r = codegen.check(add, add.prompt + "    import os\n    os.system('echo pwned')\n    return a + b\n")
    assert r.status == "forbidden" and "pwned" not in r.stdout


def test_evaluate_on_the_tiny_model(tiny_lm):
    cfg = codegen.preset("tiny")
    rep = codegen.evaluate(tiny_lm, TASKS[:3], cfg)
    assert set(rep.results) == {t.entry_point for t in TASKS[:3]}
    assert all(len(v) == cfg.n_samples for v in rep.completions.values())
    assert set(rep.pass_at) == set(cfg.ks) and all(0 <= v <= 1 for v in rep.pass_at.values())
    curve = codegen.pass_at_k_curve(rep)
    assert list(curve) == [1, 2] and curve[1] == pytest.approx(rep.pass_at[1])
    assert sum(rep.statuses().values()) == 3 * cfg.n_samples
    greedy = codegen.evaluate(tiny_lm, TASKS[:2], cfg, greedy=True)
    assert set(greedy.pass_at) == {1}
    with pytest.raises(GenAIError, match="ks"):
        codegen.evaluate(tiny_lm, TASKS[:1], codegen.CodegenConfig(n_samples=2, ks=(1, 5), max_new_tokens=4))


@pytest.mark.parametrize("n, c, k", [(5, 2.0, 1), (5, 2, 1.0)])
def test_pass_at_k_needs_integers(n, c, k):
    with pytest.raises(GenAIError, match="integers"):
        pass_at_k(n, c, k)


def test_truncate_at_the_very_start_and_at_the_earliest_of_several_stops():
    assert codegen.truncate("\ndef helper():\n    pass\n") == ""
    assert codegen.truncate("    return 1\n```\nprint(f())\n\ndef g(): pass") == "    return 1"


def test_extract_code_keeps_imports_cuts_examples_and_ignores_prose():
    reply = ("You can write def add(a, b) like this:\n```py\nfrom math import fsum\nimport os\nx = 1\n"
             "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```")
    # the prose mention is not the function; the imports (not other lines) before the function are kept
    assert codegen.extract_code(reply, "add") == "from math import fsum\nimport os\ndef add(a, b):\n    return a + b\n"
    # the block starts with the function: the example call after it is still cut off
    block = "```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```"
    assert codegen.extract_code(block, "add") == "def add(a, b):\n    return a + b\n"
    # no such function: the code block is returned as it is
    assert codegen.extract_code("```python\nx = 1\n```", "add") == "x = 1\n"


REPLIES = [
    "Sure:\n```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```\nThis adds two numbers.",
    "```py\nimport math\n\ndef add(a, b):\n    # the sum\n    return a + b\n```",
    "def add(a, b) is easy.\n```python\nfrom os import sep\ndef add(a, b):\n    return a + b\n\nassert add(1, 1) == 2\n",
    "```python\ndef add(a, b):\n    return a + b\ndef add_three(a, b, c):\n    return a + b + c\n```",
    "```python\ndef helper():\n    pass\n```\nand then\n```python\ndef add(a, b):\n    return 0\n```",
    "```python\ndef add(a, b):\n#\n    return a + b\n\nif __name__ == '__main__':\n    print(1)\n",
    "No code here, just prose about def add(a, b):\n    return a + b\n\nprint(2)",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_a_reply_called_complete_extracts_the_same_code_as_the_whole_reply(reply):
    """Stopping generation where reply_complete first holds never changes the extracted solution."""
    whole = codegen.extract_code(reply.strip(), "add")
    cuts = [k for k in range(1, len(reply) + 1) if codegen.reply_complete(reply[:k], "add")]
    for k in cuts:
        assert codegen.extract_code(reply[:k].strip(), "add") == whole, reply[:k]
    assert bool(cuts) == ("```" in reply)                                    # each fenced reply ends early
    assert not cuts or cuts == list(range(cuts[0], len(reply) + 1))          # and stays complete after that


@pytest.mark.parametrize("body", ["    return a + b\n\ndef extra():\n    pass\n", "    return 1\n# done\nx = 2",
                                  "    return 1\nprint(add(1, 2))", "    return 1\n    "])
def test_a_body_called_complete_is_cut_the_same_as_the_whole_body(body):
    cuts = [k for k in range(1, len(body) + 1) if codegen.body_complete(body[:k])]
    assert all(codegen.truncate(body[:k]) == codegen.truncate(body) for k in cuts)
    assert bool(cuts) == any(s in body for s in codegen.STOP_SEQUENCES)


def test_check_uses_the_given_sandbox_limits():
    add = TASKS[0]
    noisy = add.prompt + "    print('x' * 8192)\n    return a + b\n"
    assert codegen.check(add, noisy).status == "passed"                        # 8 KiB < the default 64 KiB
    assert codegen.check(add, noisy, codegen.sandbox.SandboxConfig(output_kb=4)).status == "failed"


def test_tests_for_calls_check_on_the_entry_point():
    src = codegen.tests_for(TASKS[1])
    assert src.startswith(TASKS[1].tests) and src.rstrip().endswith("check(is_even)")


def test_uses_chat_follows_the_tokenizers_chat_template():
    from types import SimpleNamespace as NS

    assert codegen.uses_chat(NS(tokenizer=NS(chat_template="{{ messages }}"))) is True
    assert codegen.uses_chat(NS(tokenizer=NS(chat_template=None))) is False
    assert codegen.uses_chat(NS(tokenizer=NS())) is False


class _StubCoder:
    """A stand-in model that answers every prompt from a table; it records how it was called."""

    def __init__(self, answer, chat=False, profile="tiny"):
        from types import SimpleNamespace

        self.answer, self.calls, self.profile = answer, [], profile
        self.tokenizer = SimpleNamespace(chat_template="{{ messages }}" if chat else None)

    @staticmethod
    def _stop_early(i, answer, done):
        """Like ``LanguageModel.generate_batch``: a row stops at the first point where ``done`` holds."""
        return next((answer[:k] for k in range(1, len(answer)) if done(i, answer[:k])), answer)

    def generate_batch(self, prompts, generation, batch_size=1, progress=False, done=None):
        self.calls.append(("generate", list(prompts), generation, batch_size, progress))
        return [self._stop_early(i, self.answer(i, p), done) for i, p in enumerate(prompts)]

    def chat_batch(self, messages, generation, batch_size=1, progress=False, done=None):
        self.calls.append(("chat", list(messages), generation, batch_size, progress))
        return [self._stop_early(i, self.answer(i, m), done).strip() for i, m in enumerate(messages)]


def test_complete_with_a_base_model_continues_each_prompt_n_times():
    tasks = TASKS[:3]
    lm = _StubCoder(lambda i, p: f"    return {i}\n\ndef extra():\n    pass\n")
    gen = codegen.GenerationConfig(max_new_tokens=5)
    sols = codegen.complete(lm, tasks, gen, n=2, batch_size=7, progress=True)
    (kind, prompts, g, bs, progress), = lm.calls
    assert (kind, g, bs, progress) == ("generate", gen, 7, True)
    assert prompts == [t.prompt for t in tasks for _ in range(2)]
    assert sols == [[t.prompt + f"    return {2 * j + s}\n" for s in range(2)] for j, t in enumerate(tasks)]


def test_complete_with_a_chat_model_asks_for_the_function_and_extracts_it():
    tasks = TASKS[:2]

    def reply(i, msg):
        name = tasks[i // 3].entry_point
        return f"Sure:\n```python\ndef {name}(x):\n    return {i}\n\nprint({name}(1))\n```\nDone."

    lm = _StubCoder(reply, chat=True)
    gen = codegen.GenerationConfig(max_new_tokens=5)
    sols = codegen.complete(lm, tasks, gen, n=3, batch_size=4, progress=True)
    (kind, msgs, g, bs, progress), = lm.calls
    assert (kind, g, bs, progress) == ("chat", gen, 4, True)
    assert msgs == [f"{codegen.CHAT_INSTRUCTION}\n\n```python\n{t.prompt}```" for t in tasks for _ in range(3)]
    assert sols == [[f"def {t.entry_point}(x):\n    return {3 * j + s}\n" for s in range(3)]
                    for j, t in enumerate(tasks)]


def test_report_counts_passes_and_statuses():
    R = codegen.sandbox.SandboxResult
    rep = codegen.CodegenReport({}, {"a": [R("passed", "", 0.1), R("failed", "x", 0.1), R("passed", "", 0.1)],
                                     "b": [R("timeout", "t", 5.0), R("failed", "y", 0.1), R("failed", "z", 0.1)]}, {})
    assert rep.correct() == {"a": 2, "b": 0}
    assert rep.statuses() == {"passed": 2, "failed": 3, "timeout": 1}
    # pass@k per k from the counts: mean over tasks of 1 - C(3 - c, k) / C(3, k)
    assert codegen.pass_at_k_curve(rep) == pytest.approx({1: (2 / 3 + 0) / 2, 2: (1 + 0) / 2, 3: (1 + 0) / 2})
    assert codegen.pass_at_k_curve(rep, n=4) == pytest.approx(
        {k: (pass_at_k(4, 2, k) + 0) / 2 for k in (1, 2, 3, 4)})


def test_evaluate_runs_the_samples_and_estimates_pass_at_k_exactly():
    """Sample 0 of task 0 and both samples of task 1 are right; the rest are wrong: c = (1, 2, 0)."""
    tasks = TASKS[:3]
    right = {0, 2, 3}                                            # flat indices task * n + sample
    lm = _StubCoder(lambda i, p: tasks[i // 2].solution if i in right else "    return None\n")
    cfg = codegen.CodegenConfig(n_samples=2, ks=(1, 2), temperature=0.6, top_p=0.9, max_new_tokens=11,
                                batch_size=5, seed=9)
    rep = codegen.evaluate(lm, tasks, cfg)
    (_, prompts, gen, bs, _), = lm.calls
    assert gen == codegen.GenerationConfig(max_new_tokens=11, do_sample=True, temperature=0.6, top_p=0.9, seed=9)
    assert bs == 5 and len(prompts) == 6
    assert rep.correct() == {"add": 1, "is_even": 2, "reverse_string": 0}
    assert rep.pass_at == pytest.approx({1: (0.5 + 1 + 0) / 3, 2: (1 + 1 + 0) / 3})
    assert rep.completions["is_even"] == [tasks[1].prompt + tasks[1].solution] * 2


def test_evaluate_greedy_and_the_profile_preset():
    tasks = TASKS[:2]
    lm = _StubCoder(lambda i, p: tasks[i].solution if i == 0 else "    return None\n")
    cfg = codegen.CodegenConfig(n_samples=2, ks=(1, 5), max_new_tokens=7)   # ks > n is fine when greedy
    rep = codegen.evaluate(lm, tasks, cfg, greedy=True)
    (_, prompts, gen, _, _), = lm.calls
    assert gen == codegen.GenerationConfig(max_new_tokens=7) and len(prompts) == 2   # one greedy sample each
    assert rep.pass_at == {1: 0.5}
    lm = _StubCoder(lambda i, p: "    return None\n", profile="tiny")
    rep = codegen.evaluate(lm, TASKS[:1])                       # no config: the model's profile's preset
    tiny = codegen.preset("tiny")
    assert len(rep.completions["add"]) == tiny.n_samples and set(rep.pass_at) == set(tiny.ks)
    assert lm.calls[0][2].max_new_tokens == tiny.max_new_tokens and lm.calls[0][3] == tiny.batch_size


def test_preset_applies_overrides_to_the_profiles_config():
    from dataclasses import replace

    assert codegen.preset("hub") == codegen.PRESETS["hub"]
    assert codegen.preset("tiny", n_samples=4, ks=(1, 4)) == replace(codegen.PRESETS["tiny"], n_samples=4, ks=(1, 4))


def test_a_task_is_a_documented_signature_and_a_check_function_of_its_asserts():
    t = codegen._task("double", "(x: int) -> int", "Return twice x.", ["candidate(2) == 4", "candidate(-3) == -6"],
                      "    return 2 * x\n")
    assert (t.entry_point, t.solution) == ("double", "    return 2 * x\n")
    ns = {}
    exec(t.prompt + t.solution, ns)                         # the prompt is a function header with a docstring
    assert ns["double"](5) == 10 and ns["double"].__doc__.strip() == "Return twice x."
    exec(t.tests, ns)
    ns["check"](ns["double"])                               # every assert holds for the reference
    with pytest.raises(AssertionError):
        ns["check"](lambda x: 2 * x if x > 0 else 0)        # the second assert catches this one


def test_pass_at_k_error_says_what_was_given():
    with pytest.raises(GenAIError, match="got n=5, c=6, k=1"):
        pass_at_k(5, 6, 1)


def test_truncate_and_extract_code_take_the_first_occurrence():
    assert codegen.truncate("    return 1\nprint(1)\nprint(2)") == "    return 1"
    two = "```python\ndef add(a, b):\n    return a - b\n\ndef add(a, b):\n    return a + b\n```"
    assert codegen.extract_code(two, "add") == "def add(a, b):\n    return a - b\n"


def test_evaluate_runs_the_programs_under_the_configs_sandbox_and_passes_progress():
    add = TASKS[0]
    noisy = "    print('x' * 8192)\n" + add.solution                 # correct, but prints 8 KiB
    lm = _StubCoder(lambda i, p: noisy)
    loose = codegen.evaluate(lm, [add], codegen.CodegenConfig(n_samples=1, ks=(1,)))
    strict = codegen.evaluate(lm, [add], codegen.CodegenConfig(n_samples=1, ks=(1,),
                                                               sandbox=codegen.sandbox.SandboxConfig(output_kb=4)),
                              progress=True)
    assert loose.pass_at == {1: 1.0} and strict.pass_at == {1: 0.0}
    assert [c[4] for c in lm.calls] == [False, True]                  # progress bars only when asked


def test_complete_defaults_to_one_solution_per_task_in_batches_of_16():
    tasks = TASKS[:3]
    for chat in (False, True):
        name = lambda i: tasks[i].entry_point                                         # noqa: E731
        lm = _StubCoder((lambda i, m: f"```python\ndef {name(i)}(x):\n    return {i}\n```") if chat
                        else (lambda i, p: f"    return {i}\n"), chat=chat)
        gen = codegen.GenerationConfig(max_new_tokens=5)
        sols = codegen.complete(lm, tasks, gen)                                      # no n, batch_size, progress
        (kind, sent, g, bs, progress), = lm.calls
        assert (kind, g, bs, progress) == ("chat" if chat else "generate", gen, 16, False)
        assert len(sent) == len(tasks)                                               # each prompt sent once
        assert [len(s) for s in sols] == [1, 1, 1]
        expected = ([f"def {t.entry_point}(x):\n    return {i}\n" for i, t in enumerate(tasks)] if chat
                    else [t.prompt + f"    return {i}\n" for i, t in enumerate(tasks)])
        assert [s[0] for s in sols] == expected

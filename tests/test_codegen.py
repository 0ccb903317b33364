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

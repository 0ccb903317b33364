"""Code generation with measured correctness: HumanEval-style tasks, a sandbox, and pass@k.

A task is a function signature with a docstring (the *prompt*) and hidden unit tests. A model writes
the body, the program runs in :mod:`genai_lib.sandbox`, and the share of tasks solved is estimated
with the unbiased pass@k of Chen et al. (2021)::

    from genai_lib import codegen, text
    lm = text.load("code")
    report = codegen.evaluate(lm, codegen.TASKS)
    print(report.pass_at)            # {k: estimated pass@k for each k in the config}
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genai_lib import sandbox
from genai_lib.core import GenAIError, preset_of
from genai_lib.text import GenerationConfig, LanguageModel

#: Where a completion of a function body ends (as in the HumanEval evaluation): the next top-level block.
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ", "\n```")


@dataclass(frozen=True)
class CodeTask:
    """One programming task.

    Attributes:
        entry_point: the function's name.
        prompt: signature and docstring; the model continues it with the body.
        tests: a ``check(candidate)`` function of asserts, hidden from the model.
        solution: a reference body (``prompt + solution`` is a correct function), so the tests can be checked.
    """

    entry_point: str
    prompt: str
    tests: str
    solution: str


def _task(name: str, signature: str, doc: str, asserts: Sequence[str], solution: str) -> CodeTask:
    prompt = f"def {name}{signature}:\n    \"\"\"{doc}\n    \"\"\"\n"
    tests = "def check(candidate):\n" + "".join(f"    assert {a}\n" for a in asserts)
    return CodeTask(name, prompt, tests, solution)


TASKS: tuple[CodeTask, ...] = (
    _task("add", "(a: int, b: int) -> int", "Return the sum of a and b.",
          ["candidate(2, 3) == 5", "candidate(-1, 1) == 0", "candidate(0, 0) == 0"], "    return a + b\n"),
    _task("is_even", "(n: int) -> bool", "Return True if n is even, otherwise False.",
          ["candidate(4) is True", "candidate(7) is False", "candidate(0) is True", "candidate(-2) is True"],
          "    return n % 2 == 0\n"),
    _task("reverse_string", "(s: str) -> str", "Return the string s reversed.",
          ["candidate('abc') == 'cba'", "candidate('') == ''", "candidate('racecar') == 'racecar'"],
          "    return s[::-1]\n"),
    _task("max_of_list", "(xs: list) -> int", "Return the largest number in the non-empty list xs.",
          ["candidate([1, 5, 3]) == 5", "candidate([-4, -2, -9]) == -2", "candidate([7]) == 7"],
          "    return max(xs)\n"),
    _task("count_vowels", "(s: str) -> int", "Return how many vowels (a, e, i, o, u, in any case) the string s contains.",
          ["candidate('hello') == 2", "candidate('AEIOU') == 5", "candidate('xyz') == 0", "candidate('') == 0"],
          "    return sum(c in 'aeiouAEIOU' for c in s)\n"),
    _task("factorial", "(n: int) -> int", "Return n! (the product 1 * 2 * ... * n); factorial(0) is 1.",
          ["candidate(0) == 1", "candidate(1) == 1", "candidate(5) == 120", "candidate(10) == 3628800"],
          "    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out\n"),
    _task("fibonacci", "(n: int) -> int", "Return the n-th Fibonacci number, with fibonacci(0) = 0 and fibonacci(1) = 1.",
          ["candidate(0) == 0", "candidate(1) == 1", "candidate(2) == 1", "candidate(10) == 55", "candidate(20) == 6765"],
          "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"),
    _task("is_palindrome", "(s: str) -> bool",
          "Return True if s reads the same forwards and backwards, ignoring upper and lower case.",
          ["candidate('Level') is True", "candidate('hello') is False", "candidate('') is True", "candidate('Abba') is True"],
          "    return s.lower() == s.lower()[::-1]\n"),
    _task("sum_of_squares", "(n: int) -> int", "Return 1*1 + 2*2 + ... + n*n (0 when n is 0).",
          ["candidate(0) == 0", "candidate(1) == 1", "candidate(3) == 14", "candidate(10) == 385"],
          "    return sum(i * i for i in range(1, n + 1))\n"),
    _task("celsius_to_fahrenheit", "(c: float) -> float", "Convert a temperature from degrees Celsius to Fahrenheit.",
          ["candidate(0) == 32", "candidate(100) == 212", "abs(candidate(37) - 98.6) < 1e-9", "candidate(-40) == -40"],
          "    return c * 9 / 5 + 32\n"),
    _task("remove_duplicates", "(xs: list) -> list",
          "Return the elements of xs without repeats, keeping the order of first appearance.",
          ["candidate([1, 2, 1, 3, 2]) == [1, 2, 3]", "candidate([]) == []", "candidate(['b', 'a', 'b']) == ['b', 'a']"],
          "    seen, out = set(), []\n    for x in xs:\n        if x not in seen:\n            seen.add(x)\n"
          "            out.append(x)\n    return out\n"),
    _task("word_count", "(s: str) -> int", "Return the number of words in s (words are separated by whitespace).",
          ["candidate('the cat sat') == 3", "candidate('') == 0", "candidate('  many   spaces here ') == 3"],
          "    return len(s.split())\n"),
    _task("is_prime", "(n: int) -> bool", "Return True if n is a prime number, otherwise False.",
          ["candidate(2) is True", "candidate(1) is False", "candidate(15) is False", "candidate(13) is True",
           "candidate(97) is True", "candidate(0) is False"],
          "    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
          "            return False\n        i += 1\n    return True\n"),
    _task("flatten", "(xss: list) -> list", "Flatten a list of lists by one level: [[1, 2], [3]] -> [1, 2, 3].",
          ["candidate([[1, 2], [3]]) == [1, 2, 3]", "candidate([]) == []", "candidate([[], [4], []]) == [4]"],
          "    return [x for xs in xss for x in xs]\n"),
    _task("gcd", "(a: int, b: int) -> int", "Return the greatest common divisor of two positive integers a and b.",
          ["candidate(12, 18) == 6", "candidate(7, 13) == 1", "candidate(10, 5) == 5", "candidate(21, 14) == 7"],
          "    while b:\n        a, b = b, a % b\n    return a\n"),
    _task("capitalize_words", "(s: str) -> str",
          "Return s with the first letter of every word in upper case; words are separated by single spaces.",
          ["candidate('hello world') == 'Hello World'", "candidate('a') == 'A'", "candidate('') == ''"],
          "    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))\n"),
    _task("second_largest", "(xs: list) -> int",
          "Return the second largest distinct value in xs; the list has at least two distinct values.",
          ["candidate([1, 2, 3]) == 2", "candidate([5, 5, 4]) == 4", "candidate([-1, -7, -3]) == -3"],
          "    return sorted(set(xs))[-2]\n"),
    _task("running_sum", "(xs: list) -> list", "Return the running totals of xs: [1, 2, 3] -> [1, 3, 6].",
          ["candidate([1, 2, 3]) == [1, 3, 6]", "candidate([]) == []", "candidate([5, -5, 5]) == [5, 0, 5]"],
          "    out, total = [], 0\n    for x in xs:\n        total += x\n        out.append(total)\n    return out\n"),
)


@dataclass
class CodegenConfig:
    """How many programs to sample and how.

    Attributes:
        n_samples: programs sampled per task (``n`` in pass@k; every k must be <= n).
        ks: the k values of pass@k to report.
        temperature: sampling temperature of the n samples (Chen et al. use 0.2 for pass@1, 0.8 for large k).
        top_p: nucleus sampling of the n samples.
        max_new_tokens: token budget of one function body.
        batch_size: prompts generated together.
        seed: seeds the sampling, so a run can be repeated.
        sandbox: limits for running each program.
    """

    n_samples: int = 6
    ks: tuple[int, ...] = (1, 2, 3, 6)
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 96
    batch_size: int = 108                       # 18 tasks x 6 samples in one ragged batch: fastest on 1 CPU thread (bench/ragged.py)
    seed: int = 0
    sandbox: sandbox.SandboxConfig = field(default_factory=lambda: sandbox.SandboxConfig(timeout_s=5, cpu_s=3))


PRESETS: dict[str, CodegenConfig] = {
    "tiny": CodegenConfig(n_samples=2, ks=(1, 2), max_new_tokens=8, batch_size=8),  # n: 6 on a 2-core CPU budget
    "offline": CodegenConfig(),
    "hub": CodegenConfig(n_samples=20, ks=(1, 5, 10, 20), max_new_tokens=128),
}


def preset(profile: str | None = None, **overrides: Any) -> CodegenConfig:
    """The profile's preset :class:`CodegenConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


# ----------------------------------------------------------------------------- pass@k
# [start:pass-at-k]
def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from ``n`` samples of which ``c`` passed (Chen et al. 2021).

    pass@k = 1 - C(n-c, k) / C(n, k): one minus the chance that k samples drawn without replacement
    from the n are all wrong. The ratio of binomials is computed as a product,
    prod_{i=n-c+1}^{n} (1 - k / i), which never forms the huge binomials themselves.
    """
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise GenAIError(f"pass_at_k needs integers, got n={n!r}, c={c!r}, k={k!r}")
    if not 0 <= c <= n or not 1 <= k <= n:
        raise GenAIError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
# [end:pass-at-k]


# ----------------------------------------------------------------------------- running
def truncate(completion: str) -> str:
    """Cut a completion at the first stop sequence (where the function body ends)."""
    cut = min((i for s in STOP_SEQUENCES if (i := completion.find(s)) >= 0), default=len(completion))
    return completion[:cut]


CHAT_INSTRUCTION = ("Complete the Python function below. Reply with the whole function in one ```python "
                    "code block, without examples or tests.")


def extract_code(reply: str, entry_point: str) -> str:
    """The function an instruction-tuned model wrote in its reply.

    Takes the first fenced code block (or the whole reply), keeps the import lines before the
    function, and cuts the function where its body ends (see :func:`truncate`), dropping example calls.
    """
    m = re.search(r"```(?:python|py)?[^\n]*\n(.*?)(?:```|$)", reply, re.S)
    code = m.group(1) if m else reply
    i = code.find(f"def {entry_point}(")
    if i < 0:
        return code
    imports = "".join(ln + "\n" for ln in code[:i].splitlines() if ln.startswith(("import ", "from ")))
    rest = code[i:]
    nl = rest.find("\n")
    return rest + "\n" if nl < 0 else imports + rest[:nl + 1] + truncate(rest[nl + 1:])


def reply_complete(reply: str, entry_point: str) -> bool:
    """Whether more text could still change what :func:`extract_code` takes out of ``reply``.

    True once the first code block is closed, or once the function's ``def`` line is complete and a
    stop sequence follows it: whatever the model writes next is cut off anyway. Generation uses it
    to stop a reply early (``done`` of :meth:`genai_lib.text.LanguageModel.chat_batch`).
    """
    reply = reply.rstrip()                       # the caller strips the reply: a stop must not end it
    m = re.search(r"```(?:python|py)?[^\n]*\n", reply)
    if m is None:
        return False
    code = reply[m.end():]
    if "```" in code:
        return True
    i = code.find(f"def {entry_point}(")
    nl = code.find("\n", i)
    return i >= 0 and nl >= 0 and any(s in code[nl + 1:] for s in STOP_SEQUENCES)


def body_complete(completion: str) -> bool:
    """Whether :func:`truncate` already cuts ``completion`` (a base model's continuation of the prompt)."""
    return any(s in completion.rstrip() for s in STOP_SEQUENCES)


def tests_for(task: CodeTask) -> str:
    """The trusted code the sandbox runs after a solution: the hidden tests and the call of ``check``."""
    return f"{task.tests}\ncheck({task.entry_point})\n"


def check(task: CodeTask, solution: str, config: sandbox.SandboxConfig | None = None) -> sandbox.SandboxResult:
    """Run ``solution`` (the source of the whole function) against the task's hidden tests, in the sandbox.

    The solution runs first; the tests run after it as a separate, trusted step with untouched builtins, and
    the result is ``passed`` only when the harness saw that step finish. Exiting early (``sys.exit``,
    ``os._exit``, ``KeyboardInterrupt``), printing a fake verdict or tampering with the harness is a failure.
    """
    return sandbox.run(solution, config, tests=tests_for(task))


def uses_chat(lm: LanguageModel) -> bool:
    """Whether to ask ``lm`` through its chat template (instruction-tuned) or by plain completion (base model)."""
    return bool(getattr(lm.tokenizer, "chat_template", None))


# [start:complete]
def complete(lm: LanguageModel, tasks: Sequence[CodeTask], generation: GenerationConfig, n: int = 1,
             batch_size: int = 16, progress: bool = False) -> list[list[str]]:
    """Ask the model for ``n`` solutions per task.

    A base model (CodeGen) continues the prompt, and the body is cut at the next top-level block, as in
    the HumanEval evaluation. An instruction-tuned model (SmolLM2) is asked in a chat message, and the
    function is taken out of its reply (:func:`extract_code`).

    Returns:
        One list of ``n`` solutions (the whole function's source) per task.
    """
    if uses_chat(lm):
        msgs = [f"{CHAT_INSTRUCTION}\n\n```python\n{t.prompt}```" for t in tasks for _ in range(n)]
        outs = lm.chat_batch(msgs, generation, batch_size=batch_size, progress=progress,
                             done=lambda i, reply: reply_complete(reply, tasks[i // n].entry_point))
        sols = [extract_code(o, tasks[i // n].entry_point) for i, o in enumerate(outs)]
    else:
        prompts = [t.prompt for t in tasks for _ in range(n)]
        outs = lm.generate_batch(prompts, generation, batch_size=batch_size, progress=progress,
                                 done=lambda i, body: body_complete(body))
        sols = [tasks[i // n].prompt + truncate(o) for i, o in enumerate(outs)]
    return [sols[i * n:(i + 1) * n] for i in range(len(tasks))]
# [end:complete]


@dataclass
class CodegenReport:
    """Per-task results and the pass@k estimates of one run."""

    completions: dict[str, list[str]]
    results: dict[str, list[sandbox.SandboxResult]]
    pass_at: dict[int, float]

    def correct(self) -> dict[str, int]:
        """Task -> how many of its samples passed."""
        return {t: sum(r.passed for r in rs) for t, rs in self.results.items()}

    def statuses(self) -> Counter:
        """How often each sandbox status occurred over all samples."""
        return Counter(r.status for rs in self.results.values() for r in rs)


def evaluate(lm: LanguageModel, tasks: Sequence[CodeTask] = TASKS, config: CodegenConfig | None = None,
             greedy: bool = False, progress: bool = False) -> CodegenReport:
    """Sample programs for every task, run them in the sandbox, and estimate pass@k.

    Args:
        lm: the code model.
        tasks: the tasks.
        config: the profile's preset when ``None``.
        greedy: one greedy sample per task instead (its pass@1 is the share of tasks solved).
        progress: show progress bars.

    Returns:
        A :class:`CodegenReport`.
    """
    cfg = config or preset(lm.profile)
    n = 1 if greedy else cfg.n_samples
    if any(k > n for k in cfg.ks) and not greedy:
        raise GenAIError(f"every k in ks={cfg.ks} must be at most n_samples={n}")
    gen = (GenerationConfig(max_new_tokens=cfg.max_new_tokens) if greedy else
           GenerationConfig(max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                            top_p=cfg.top_p, seed=cfg.seed))
    solutions = complete(lm, tasks, gen, n, cfg.batch_size, progress)
    results = {t.entry_point: [check(t, b, cfg.sandbox) for b in bs] for t, bs in zip(tasks, solutions)}
    ks = (1,) if greedy else cfg.ks
    pass_at = {k: float(np.mean([pass_at_k(n, sum(r.passed for r in rs), k) for rs in results.values()]))
               for k in ks}
    return CodegenReport({t.entry_point: bs for t, bs in zip(tasks, solutions)}, results, pass_at)


def pass_at_k_curve(report: CodegenReport, n: int | None = None) -> dict[int, float]:
    """pass@k for every k from 1 to n, from the per-task counts of a report (for plotting)."""
    counts = report.correct()
    n = n or len(next(iter(report.results.values())))
    return {k: float(np.mean([pass_at_k(n, c, k) for c in counts.values()])) for k in range(1, n + 1)}


def exact_pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k with exact binomials (``math.comb``); the reference :func:`pass_at_k` is tested against."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)

"""genai_lib.decoding on the tiny random model (seconds)."""

import re
from dataclasses import replace
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from genai_lib import decoding, text  # noqa: E402
from genai_lib.core import GenAIError  # noqa: E402


def test_compare_runs_every_strategy_and_is_repeatable(tiny_lm):
    rows = decoding.compare(tiny_lm, "Hello there", max_new_tokens=5, seed=3)
    assert [r["strategy"] for r in rows] == list(decoding.STRATEGIES)
    assert all(0 <= r["distinct"] <= 1 and r["seconds"] >= 0 for r in rows)
    again = decoding.compare(tiny_lm, "Hello there", max_new_tokens=5, seed=3)
    assert [r["continuation"] for r in rows] == [r["continuation"] for r in again]
    greedy = tiny_lm.generate("Hello there", max_new_tokens=5)
    assert rows[0]["continuation"] == greedy.strip()


def test_to_markdown_escapes_pipes_and_newlines():
    md = decoding.to_markdown([{"a": "x|y", "b": "line\nbreak"}])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | line ⏎ break |"]
    with pytest.raises(GenAIError):
        decoding.to_markdown([])


def test_plot_next_token_shows_the_library_distribution(tiny_lm):
    fig = decoding.plot_next_token(tiny_lm, "abc", [{"temperature": 0.5}, {"top_p": 0.5}], k=5)
    axes = fig.axes
    assert len(axes) == 2
    widths = sorted(p.get_width() for p in axes[0].patches)[::-1]
    expected = [p for _, p in tiny_lm.next_token_distribution("abc", temperature=0.5, k=5)]
    assert widths == pytest.approx(expected)


def test_control_panel_generates_on_click(tiny_lm, capsys):
    panel = decoding.control_panel(tiny_lm, "Once", max_new_tokens=3)
    box, controls, out = panel.children
    sample = controls.children[1].children[2]
    button = controls.children[1].children[-1]
    sample.value = False  # greedy: the printed continuation is known
    button.click()
    printed = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", capsys.readouterr().out)  # clear_output's escapes
    assert printed.strip().splitlines()[0] == "Once" + tiny_lm.generate("Once", max_new_tokens=3)
    box.value = "   "
    button.click()  # an empty prompt is reported in the output, not raised
    assert "Cannot generate:" in capsys.readouterr().out


def test_strategies_are_valid_configs():
    for cfg in decoding.STRATEGIES.values():
        cfg.validate()
    assert isinstance(decoding.STRATEGIES["greedy"], text.GenerationConfig)


class _StubLM:
    """A stand-in language model with a known next-token distribution; it records what it was asked."""

    def __init__(self, reply=" The cat the CAT sat\n"):
        self.reply, self.generate_calls, self.dist_calls = reply, [], []

    def generate(self, prompt, cfg):
        cfg.validate()
        self.generate_calls.append((prompt, cfg))
        return self.reply

    def next_token_distribution(self, prompt, k=10, **opts):
        self.dist_calls.append((prompt, k, opts))
        return [(" a", 0.5), ("\n", 0.3), ("b", 0.2)][:k]


def test_compare_passes_each_strategy_with_the_shared_budget_and_seed():
    lm = _StubLM()
    own = {"hot": text.GenerationConfig(do_sample=True, temperature=1.7, top_k=5, max_new_tokens=99, seed=42),
           "beam": text.GenerationConfig(num_beams=2)}
    rows = decoding.compare(lm, "Hi", own, max_new_tokens=7, seed=11)
    assert [r["strategy"] for r in rows] == ["hot", "beam"]
    assert [c for _, c in lm.generate_calls] == [
        text.GenerationConfig(do_sample=True, temperature=1.7, top_k=5, max_new_tokens=7, seed=11),
        text.GenerationConfig(num_beams=2, max_new_tokens=7, seed=11)]
    assert all(p == "Hi" for p, _ in lm.generate_calls)
    # case-folded words: the, cat, the, cat, sat -> 3 distinct of 5
    assert rows[0]["continuation"] == "The cat the CAT sat" and rows[0]["distinct"] == 0.6
    assert set(rows[0]) == {"strategy", "continuation", "distinct", "seconds"}
    lm.generate_calls.clear()
    decoding.compare(lm, "Hi")                         # defaults: every strategy, 20 tokens, seed 0
    assert [c for _, c in lm.generate_calls] == [replace(c, max_new_tokens=20, seed=0)
                                                  for c in decoding.STRATEGIES.values()]


def test_compare_distinct_rounds_to_two_places_and_handles_an_empty_reply():
    assert decoding.compare(_StubLM("a b a"), "x", {"g": text.GenerationConfig()})[0]["distinct"] == 0.67
    assert decoding.compare(_StubLM(" once"), "x", {"g": text.GenerationConfig()})[0]["distinct"] == 1.0
    row = decoding.compare(_StubLM("   "), "x", {"g": text.GenerationConfig()})[0]
    assert row["distinct"] == 0.0 and row["continuation"] == ""


def test_compare_reports_the_generation_time(monkeypatch):
    clock = iter([10.0, 12.3456, 20.0, 20.5])
    monkeypatch.setattr(decoding, "time", SimpleNamespace(perf_counter=lambda: next(clock)))   # this module only
    rows = decoding.compare(_StubLM(), "x", {"a": text.GenerationConfig(), "b": text.GenerationConfig()})
    assert [r["seconds"] for r in rows] == [2.35, 0.5]


def test_to_markdown_keeps_the_first_rows_columns_for_every_row():
    md = decoding.to_markdown([{"n": 1, "s": "a"}, {"s": "b", "n": 2}, {"n": 3, "s": "c|d\ne"}])
    assert md.splitlines() == ["| n | s |", "|---|---|", "| 1 | a |", "| 2 | b |", "| 3 | c\\|d ⏎ e |"]


def test_plot_next_token_bars_labels_and_titles_follow_the_distribution():
    lm = _StubLM()
    fig = decoding.plot_next_token(lm, "Say", [{"temperature": 0.5, "top_p": 0.9}, {"top_k": 2}], k=3)
    a, b = fig.axes
    # options missing from a setting take the neutral values; k reaches the model
    assert lm.dist_calls == [("Say", 3, {"temperature": 0.5, "top_k": 0, "top_p": 0.9}),
                             ("Say", 3, {"temperature": 1.0, "top_k": 2, "top_p": 1.0})]
    bars = sorted(a.patches, key=lambda p: -p.get_y())         # top bar first
    assert [p.get_width() for p in bars] == [0.5, 0.3, 0.2]    # the most likely token on top
    ticks = sorted(zip(a.get_yticks(), (t.get_text() for t in a.get_yticklabels())), reverse=True)
    assert [t for _, t in ticks] == ["␣a", "\\n", "b"]          # spaces and newlines made visible
    assert a.get_xlim() == (0, 1)
    assert a.get_title() == "temperature=0.5, top_p=0.9" and b.get_title() == "top_k=2"
    assert "probability" in a.get_xlabel()
    assert "'Say'" in fig._suptitle.get_text()


def test_plot_next_token_defaults_and_given_axes():
    import matplotlib.pyplot as plt

    lm = _StubLM()
    fig = decoding.plot_next_token(lm, "x")
    assert [ax.get_title() for ax in fig.axes] == ["temperature=0.5", "temperature=1", "temperature=1.5",
                                                   "temperature=1, top_p=0.9"]
    assert all(k == 10 for _, k, _ in lm.dist_calls)
    one = decoding.plot_next_token(lm, "x", [{"temperature": 2.0}])
    assert len(one.axes) == 1
    own_fig, own_axes = plt.subplots(1, 2)
    assert decoding.plot_next_token(lm, "x", [{}, {}], axes=list(own_axes)) is own_fig
    assert all(len(ax.patches) == 3 for ax in own_axes)
    plt.close("all")


def test_control_panel_passes_the_widget_values_to_the_model(capsys, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    lm = _StubLM(" more")
    panel = decoding.control_panel(lm, "Start", max_new_tokens=4)
    box, controls, out = panel.children
    (temperature, top_k, top_p), (penalty, new_tokens, sample, button) = (c.children for c in controls.children)
    assert box.value == "Start"
    button.click()                                    # the starting values are the neutral ones
    assert lm.generate_calls[-1] == ("Start", text.GenerationConfig(max_new_tokens=4, do_sample=True, seed=None))
    assert lm.dist_calls[-1] == ("Start", 15, {"temperature": 1.0, "top_k": 0, "top_p": 1.0})
    temperature.value, top_k.value, top_p.value, penalty.value = 0.7, 12, 0.8, 1.5
    new_tokens.value, sample.value, box.value = 9, False, "Other"
    button.click()
    assert lm.generate_calls[-1] == ("Other", text.GenerationConfig(
        max_new_tokens=9, do_sample=False, temperature=0.7, top_k=12, top_p=0.8, repetition_penalty=1.5, seed=None))
    assert lm.dist_calls[-1] == ("Other", 15, {"temperature": 0.7, "top_k": 12, "top_p": 0.8})
    assert "Other more" in capsys.readouterr().out
    # each click shows the distribution plot for the chosen options
    assert [[ax.get_title() for ax in f.axes] for f in shown] == [["temperature=1, top_k=0, top_p=1"],
                                                                  ["temperature=0.7, top_k=12, top_p=0.8"]]

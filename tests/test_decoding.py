"""genai_lib.decoding on the tiny random model (seconds)."""

import re

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

"""Decoding strategies side by side, the next-token distribution as a picture, and a control panel.

Built on :mod:`genai_lib.text`: every function takes a :class:`~genai_lib.text.LanguageModel`.

Typical use::

    from genai_lib import decoding, text
    lm = text.load("text")
    rows = decoding.compare(lm, "The old lighthouse keeper", max_new_tokens=20)
    decoding.plot_next_token(lm, "The capital of France is")
    panel = decoding.control_panel(lm, "Once upon a time")   # ipywidgets, live kernels only
"""

from __future__ import annotations

import time
from dataclasses import replace

from genai_lib.core import GenAIError
from genai_lib.text import GenerationConfig, LanguageModel

#: The strategies compared in the text-generation chapter: name -> decoding options.
STRATEGIES: dict[str, GenerationConfig] = {
    "greedy": GenerationConfig(),
    "beam search (3 beams)": GenerationConfig(num_beams=3),
    "greedy + repetition penalty 1.3": GenerationConfig(repetition_penalty=1.3),
    "sampling, temperature 0.7": GenerationConfig(do_sample=True, temperature=0.7),
    "sampling, temperature 1.5": GenerationConfig(do_sample=True, temperature=1.5),
    "top-k 20 (temperature 1)": GenerationConfig(do_sample=True, top_k=20),
    "top-p 0.9 (temperature 1)": GenerationConfig(do_sample=True, top_p=0.9),
}


# [start:compare]
def compare(lm: LanguageModel, prompt: str, strategies: dict[str, GenerationConfig] | None = None,
            max_new_tokens: int = 20, seed: int = 0) -> list[dict[str, object]]:
    """Continue the same prompt with each strategy.

    Args:
        lm: the language model.
        prompt: the text to continue.
        strategies: name -> options (:data:`STRATEGIES` when ``None``); their ``max_new_tokens``
            and ``seed`` are replaced by the arguments below so the rows are comparable.
        max_new_tokens: tokens generated per strategy.
        seed: the sampling seed, the same for every sampling strategy.

    Returns:
        One dict per strategy: ``strategy``, ``continuation``, ``distinct`` (distinct words / words,
        a rough measure of repetition) and ``seconds``.
    """
    rows = []
    for name, cfg in (strategies or STRATEGIES).items():
        cfg = replace(cfg, max_new_tokens=max_new_tokens, seed=seed)
        t0 = time.perf_counter()
        out = lm.generate(prompt, cfg)
        words = out.lower().split()
        rows.append({"strategy": name, "continuation": out.strip(),
                     "distinct": round(len(set(words)) / max(1, len(words)), 2),
                     "seconds": round(time.perf_counter() - t0, 2)})
    return rows
# [end:compare]


def to_markdown(rows: list[dict[str, object]]) -> str:
    """Rows of dicts as a Markdown table (newlines and pipes in the text escaped)."""
    if not rows:
        raise GenAIError("No rows to show.")  # pragma: no mutate  (message wording; the raise is tested)
    cols = list(rows[0])
    clean = lambda v: str(v).replace("\n", " ⏎ ").replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(clean(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot_next_token(lm: LanguageModel, prompt: str,
                    settings: list[dict[str, float]] | None = None, k: int = 10, axes=None):
    """Bar charts of the next-token distribution under several decoding settings.

    Args:
        lm: the language model.
        prompt: the text whose next token is predicted.
        settings: a list of ``{"temperature": ..., "top_k": ..., "top_p": ...}`` (missing keys take
            the neutral values 1.0, 0, 1.0); by default temperatures 0.5, 1 and 1.5 and top-p 0.9.
        k: how many of the most likely tokens to show.
        axes: matplotlib axes to draw in (one per setting); a new figure when ``None``.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    settings = settings or [{"temperature": 0.5}, {"temperature": 1.0}, {"temperature": 1.5},
                            {"temperature": 1.0, "top_p": 0.9}]
    if axes is None:
        fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 3.4), sharey=True)  # pragma: no mutate  (styling)
        axes = [axes] if len(settings) == 1 else list(axes)
    fig = axes[0].figure
    for ax, s in zip(axes, settings):
        opts = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, **s}
        dist = lm.next_token_distribution(prompt, k=k, **opts)
        labels = [repr(tok)[1:-1].replace(" ", "␣") for tok, _ in dist]
        ax.barh(range(len(dist))[::-1], [p for _, p in dist])          # the most likely token on top
        ax.set_yticks(range(len(dist))[::-1], labels)
        ax.tick_params(axis="y", labelsize=8)  # pragma: no mutate  (font size: styling)
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")  # pragma: no mutate  (axis label text: presentation)
        title = ", ".join(f"{key}={val:g}" for key, val in s.items())
        ax.set_title(title, fontsize=9)  # pragma: no mutate  (font size: styling; the title text is tested)
    fig.suptitle(f"Next token after {prompt!r}", fontsize=10)  # pragma: no mutate  (figure title: presentation)
    fig.tight_layout()
    return fig


def control_panel(lm: LanguageModel, prompt: str = "Once upon a time", max_new_tokens: int = 30):  # pragma: no mutate  (demo defaults)
    """An ``ipywidgets`` panel: sliders for the decoding options, a prompt box, a Generate button.

    Pressing the button generates a continuation and redraws the next-token distribution with the
    chosen temperature, top-k and top-p. Widgets need a live kernel (Jupyter, Colab, Binder).

    Returns:
        The panel (an ``ipywidgets.VBox``); ``display`` it.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    # Ranges, steps, labels and colours are presentation; the starting values are set just below.
    box = w.Textarea(description="Prompt", layout=w.Layout(width="95%"))  # pragma: no mutate  (label, layout)
    temperature = w.FloatSlider(min=0.1, max=2.0, step=0.1, description="temperature")  # pragma: no mutate  (UI range)
    top_k = w.IntSlider(min=0, max=100, step=1, description="top-k (0=off)")  # pragma: no mutate  (UI range, label)
    top_p = w.FloatSlider(min=0.05, max=1.0, step=0.05, description="top-p")  # pragma: no mutate  (UI range, label)
    penalty = w.FloatSlider(min=1.0, max=2.0, step=0.05, description="rep. penalty")  # pragma: no mutate  (UI range)
    new_tokens = w.IntSlider(min=1, max=200, description="max new tokens")  # pragma: no mutate  (UI range, label)
    sample = w.Checkbox(description="sample (off = greedy)")  # pragma: no mutate  (label)
    button = w.Button(description="Generate", button_style="primary")  # pragma: no mutate  (label, colour)
    out = w.Output()
    box.value, new_tokens.value, sample.value = prompt, max_new_tokens, True
    temperature.value, top_k.value, top_p.value, penalty.value = 1.0, 0, 1.0, 1.0   # neutral: the model's own distribution

    def on_click(_) -> None:
        out.clear_output(wait=True)  # pragma: no mutate  (redraw timing only)
        with out:
            try:
                cfg = GenerationConfig(max_new_tokens=new_tokens.value, do_sample=sample.value,
                                       temperature=temperature.value, top_k=top_k.value, top_p=top_p.value,
                                       repetition_penalty=penalty.value, seed=None)
                print(box.value + lm.generate(box.value, cfg))
                fig = plot_next_token(lm, box.value, [{"temperature": temperature.value, "top_k": top_k.value,
                                                       "top_p": top_p.value}], k=15)
                display(fig)
                plt.close(fig)  # pragma: no mutate  (close(None) closes the same, current figure)
            except GenAIError as exc:
                print(f"Cannot generate: {exc}")

    button.on_click(on_click)
    controls = w.HBox([w.VBox([temperature, top_k, top_p]), w.VBox([penalty, new_tokens, sample, button])])
    return w.VBox([box, controls, out])

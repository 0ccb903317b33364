"""No hand-typed measurement in the book's prose.

Every measured value on a page (a score, an accuracy, a loss, a speed, a time, a memory figure) must
come from the run that built the page: the chapter embeds the notebook's labelled output
(``![](#label)``) or quotes it with an inline expression (``{eval}``). This test reads the prose of
every chapter and of the landing page, outside code, math, directive options, roles, inline code and
link targets, and fails on anything that looks like a measurement:

- a decimal number (``4.21``), a percentage (``98%``, ``12 percent``), a timing (``28 s``,
  ``2.5 minutes``, ``under a minute``), a speed (``14 tok/s``) or a memory size (``1.5 GB``);
- a metric name followed by a number (``FID 11``, ``pass@1 of 40``, ``an IS of 9``).

A few constants and settings are allowed, each with its reason (:data:`ALLOWED`). Adding to the list
needs a reason a reviewer accepts: a setting that the sentence explains, or a published figure with
its citation — never a value this book's own run produced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "chapters").glob("*.md")) + [REPO / "index.md"]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))  # their markdown cells are prose too

# (page name, exact text that is allowed, why). The text must occur on that page; unused entries fail.
ALLOWED: list[tuple[str, str, str]] = [
    ("gan.md", "0.9 instead of 1", "label smoothing's target, a setting the sentence explains"),
    ("evaluation.md", "perplexity of 20", "a worked example of the definition (uncertain as among 20 tokens)"),
    ("evaluation.md", "scores BLEU 0", "an exercise: the score the reader's hypothesis should reach"),
    ("evaluation.md", "scores above 50", "an exercise: the score the reader's hypothesis should reach"),
    ("transformers.md", "about 15 % of the", "BERT's published masking rate, cited (devlin2019bert)"),
    ("diffusion.md", "10% of the rows", "the label-dropout setting the sentence explains"),
    ("question-answering.md", "has EM 0 and F1 2/3", "a worked example of the metrics' definitions"),
    ("fine-tuning.md", "14 GB of weights", "arithmetic: 7 billion parameters at 2 bytes each"),
    ("code-generation.md", "allocates 8 GB", "an example of a misbehaving program, not a measurement"),
    ("audio.md", "63 MB file", "the size of the voice file in its published wheel, a constant"),
    ("responsible-ai.md", "green 60 % of the time", "an exercise: the rate the reader computes with"),
    ("text-generation.md", "perplexity of 20", "a worked example of the definition (a fair choice among 20 tokens)"),
    ("gan.md", "to 0.9 and 0.999", "an exercise: EMA decay settings for the reader to try"),
    ("index.md", "2 GB of memory", "the offline profile's stated requirement, a setting"),
    ("paper.md", "about 4 GB of downloads", "the size of the Stable Diffusion checkpoint, a constant"),
    ("diffusion.ipynb", "In 10% of the rows", "the label-dropout setting the sentence explains"),
    ("transformers.ipynb", "last 10 % of the text", "the validation split, a setting"),
    ("text-generation.ipynb", "perplexity of 20", "a worked example of the definition"),
    ("gan.md", "smoothed target 0.9", "figure caption: the label-smoothing setting drawn as a line"),
]

NUMBER_WORDS = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|half an?|a half|a quarter of an?)"
PATTERNS = {
    "decimal number": r"(?<![\w.-])(?<![Ss]ection )(?<!§)\d+\.\d+(?![\w.]|\s?(?:[KMGT]i?B|%|percent|ms|s|sec|seconds?|minutes?|tok)\b)",
    "percentage": r"\d+(?:\.\d+)?\s?(?:%|percent\b)",
    "timing": (r"(?:(?:\d+(?:[.,]\d+)?|" + NUMBER_WORDS + r")(?:\s+and\s+a\s+half)?[\s-]+(?:(?:CPU|GPU|wall)\s+)?"
               r"(?:minutes?|mins?|hours?)\b|\d+(?:[.,]\d+)?[\s-]*(?:(?:CPU|GPU|wall)\s+)?(?:ms|s|sec|secs|seconds?)\b"
               r"|(?:two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|a few)\s+(?:CPU\s+)?seconds)"),
    "throughput": r"\d+(?:\.\d+)?\s?(?:tok(?:ens)?/s|samples?/s|it/s|images?/s)",
    "memory size": r"\d+(?:\.\d+)?\s?(?:[KMGT]i?B)\b",
    "metric value": (r"\b(?:FID|(?-i:IS|EM|F1)|accuracy|pass@\d+|BLEU|ROUGE(?:-\w+)?|perplexity|WER|CER|loss|"
                     r"exact match|recall@\d+|MRR|nDCG(?:@\d+)?)\s+(?:of\s+|=\s*|:\s*|is\s+|was\s+|at\s+|about\s+|around\s+|near\s+)?"
                     r"\d(?:[\d.,]*\d)?(?![\d.,]*\d)(?!\s+(?:[\w*-]+\s+){0,2}(?:images|samples|questions|items|tokens)\b)"),
    "count of a total": r"\b\d+ (?:out )?of (?:the )?\d+\b",
    "speed-up": r"\b\d+(?:\.\d+)?\s?(?:times|×)\s+(?:faster|slower|smaller|larger|more|fewer|less)\b",
    "approximate value": r"\b(?:about|roughly|around|nearly|almost|over|under|above|below)\s+(?![01]\b)\d[\d,]*(?:\.\d+)?\b"
                         r"(?!\s*(?:[×x]\s*\d|images|samples|questions|items|tokens|words|characters|parameters|steps|epochs|classes|digits|pixels|lines|layers|years|times)\b)",
}
FLAG = re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(PATTERNS.values())), re.IGNORECASE)
KINDS = list(PATTERNS)

CITE = "\u3014cite\u3015"  # what a citation becomes in the cleaned prose

# directives whose body is code or data, not prose
NON_PROSE = {"code", "code-block", "code-cell", "literalinclude", "math", "embed", "include", "raw",
             "mermaid", "csv-table", "iframe", "bibliography"}


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The page's prose, line by line (1-based line numbers), with code, math, directive options,
    roles, inline code, inline math and link targets blanked out."""
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    i = 0
    if lines and lines[0].strip() == "---":  # frontmatter
        i = next((k for k in range(1, len(lines)) if lines[k].strip() == "---"), len(lines) - 1) + 1
    stack: list[tuple[str, bool]] = []
    in_math = False
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        i += 1
        m = re.match(r"^(`{3,}|~{3,}|:{3,})\s*(\{([\w:-]+)\})?", s)
        if stack and s and re.fullmatch(re.escape(stack[-1][0][0]) + "{%d,}" % len(stack[-1][0]), s):
            stack.pop()
            continue
        if m:
            marker, name = m.group(1), (m.group(3) or "")
            prose = bool(name) and name not in NON_PROSE and marker[0] in "`:~" and not name.startswith("code")
            if marker[0] == "`" and not name:
                prose = False
            stack.append((marker, prose))
            # the directive's title (argument) is prose for admonitions and figures
            rest = s[m.end():]
            if prose and rest:
                out.append((i, rest))
            continue
        if stack and not all(p for _, p in stack):
            continue
        if stack and re.match(r"^:[\w-]+:", s):  # directive option
            continue
        if s.startswith("$$"):
            if not (len(s) > 2 and s.endswith("$$") and len(s) >= 4 and s != "$$"):
                in_math = not in_math
            continue
        if in_math:
            continue
        out.append((i, line))
    cleaned = []
    for n, line in out:
        line = re.sub(r"^(#+\s+)[\d.]+\s", r"\1", line)  # section numbers in headings
        line = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", line)  # roles, {eval} included
        line = re.sub(r"`[^`]*`", " ", line)  # inline code
        line = re.sub(r"\$[^$]+\$", " ", line)  # inline math
        line = re.sub(r"\]\([^)]*\)", "]", line)  # link and image targets
        line = re.sub(r"\[@[^\]]*\]|(?<![\w.])@[\w:-]+", CITE, line)  # citations
        line = re.sub(r"<[^>]+>", " ", line)  # html tags
        cleaned.append((n, line))
    return cleaned


# version numbers of named products and data sets are names, not measurements
VERSIONS = re.compile(r"\b(?:Gemini|SQuAD|Python|Node(?:\.js)?|GPT|CUDA|Jupyter Book|transformers|torch)[\s-]?\d+(?:\.\d+)*"
                      r"|\b\d+(?:\.\d+)+\s(?:Flash|Pro)\b")


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence of ``text`` that holds ``text[start:end]``."""
    left = max(text.rfind(". ", 0, start), text.rfind("? ", 0, start), text.rfind("! ", 0, start))
    right = min([k for k in (text.find(". ", end), text.find("? ", end), text.find("! ", end)) if k >= 0]
                or [len(text)])
    return text[left + 1:right + 1]

# a number right after the name of a setting is that setting's value ("temperature 0.7", "top-p 0.5",
# "guidance scale 1.3", "temperatures 0.5, 1 and 1.5"), not a result
SETTINGS = re.compile(r"\b(?:temperatures?|top-p|top-k|guidance scales?|standard deviation|std|sigma|strengths?|"
                      r"learning rate|dropout|label smoothing)\s+(?:of\s+|around\s+|=\s*)?\d+(?:\.\d+)?"
                      r"(?:(?:,\s*|,?\s+(?:and|or)\s+(?:at\s+)?)\d+(?:\.\d+)?)*"
                      # a budget or a bound is a target, not a result: "a budget of two minutes", "≤ 10 s"
                      r"|\bbudget of\s+(?:about\s+)?\S+\s+(?:minutes?|seconds?|s)\b"
                      r"|[≤≥]\s*\d+(?:\.\d+)?(?:\s?(?:s|%|GB|MB))?", re.IGNORECASE)


def page_text(path: Path) -> str:
    """A page's markdown; for a notebook, its markdown cells (code cells are code, not prose)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


def findings(path: Path, text: str | None = None) -> list[str]:
    """Every suspected hand-typed measurement on a page, as ``page:line: kind 'text' in: ...``.

    A number in a sentence that carries a citation is a published figure (the citation is its
    source), not this book's measurement, and is allowed.
    """
    text = page_text(path) if text is None else text
    allowed = [a for a in ALLOWED if a[0] == path.name]
    lines = prose_lines(text)
    # paragraphs: runs of consecutive non-blank prose lines, joined with spaces
    paragraphs: list[list[tuple[int, str]]] = []
    for n, line in lines:
        if line.strip() and paragraphs and paragraphs[-1][-1][0] == n - 1 and paragraphs[-1][-1][1].strip():
            paragraphs[-1].append((n, line))
        else:
            paragraphs.append([(n, line)])
    found = []
    for para in paragraphs:
        joined, where = "", []
        for n, line in para:
            where.append((len(joined), n, line))
            joined += line + " "
        for pattern in (VERSIONS, SETTINGS, *(re.compile(re.escape(a[1])) for a in allowed)):
            joined = pattern.sub(lambda m: " " * len(m.group(0)), joined)
        for m in FLAG.finditer(joined):
            if CITE in _sentence(joined, m.start(), m.end()):
                continue
            kind = KINDS[int(next(k for k, v in m.groupdict().items() if v is not None)[1:])]
            _, n, line = max(w for w in where if w[0] <= m.start())
            found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{n}: {kind} {m.group(0)!r} in: {line.strip()[:120]}")
    return found


def test_allowlist_is_short_and_used():
    assert len(ALLOWED) <= 20, "the allowlist must stay short; quote measurements from the run instead"
    for page, snippet, why in ALLOWED:
        assert why.strip(), f"allowlist entry {snippet!r} needs a reason"
        path = next(p for p in PAGES + NOTEBOOKS if p.name == page)
        text = " ".join(line for _, line in prose_lines(page_text(path)))
        assert snippet in text, f"allowlist entry {snippet!r} is not in the prose of {page} any more: remove it"


@pytest.mark.parametrize("page", PAGES + NOTEBOOKS, ids=lambda p: p.name)
def test_no_hand_typed_measurement(page: Path):
    found = findings(page)
    assert not found, ("hand-typed measurements in the prose; embed the notebook's labelled output "
                       "(![](#label)) or use {eval} instead:\n" + "\n".join(found))


def test_detector_catches_and_spares():
    """The detector itself: what it must flag, and what it must leave alone."""
    page = ("---\ntitle: x\n---\n"
            "The GAN reaches FID 4.21 and an IS of 9 in 28 CPU seconds.\n"
            "It trains in under a minute, 98% of samples, 14 tok/s, peaks at 1.5 GB.\n"
            "```python\nx = 0.5  # code is not prose\n```\n"
            "$$\n\\beta = 0.9\n$$\n"
            "The rate $\\eta = 0.1$, the role {eval}`f'{fid:.2f}'`, the code `lr=3e-4`.\n"
            ":::{note} A note with 2.5 minutes\n:::\n"
            "```{code-cell} python\nprint(1.5)\n```\n"
            "8×8 digits, 1,797 images, 10 classes, in the link [x](a/1.5.md).\n"
            "Greedy decoding solved 5 of the 18 tasks; the cache made it 5 times faster.\n")
    flagged = [(n, m.group(0)) for n, line in prose_lines(page) for m in FLAG.finditer(line)]
    words = " | ".join(f for _, f in flagged)
    for expected in ("FID 4.21", "IS of 9", "28 CPU seconds", "a minute", "98%", "14 tok/s", "1.5 GB",
                     "2.5 minutes", "5 of the 18", "5 times faster"):
        assert expected in words, (expected, flagged)
    assert len(flagged) == 10, flagged  # nothing from code, math, roles, inline code, links, integers


def test_landing_page_keeps_its_promise():
    """The landing page promises that nothing on the pages is pasted in by hand; the tests above hold
    the prose to it, so the promise must stay."""
    text = (REPO / "index.md").read_text()
    assert "Nothing is pasted in by hand" in text
    assert "produced by executing" in text


def _defined_labels() -> set[str]:
    """Every label a page can embed: notebook cells' ``#| label:``, and labelled blocks of the pages."""
    labels = set()
    for nb in NOTEBOOKS:
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            labels |= set(re.findall(r"^#\|\s*label:\s*([\w-]+)", src, re.MULTILINE))
    for page in PAGES:
        text = page.read_text()
        labels |= set(re.findall(r"^:label:\s*([\w-]+)", text, re.MULTILINE))
        labels |= set(re.findall(r"^\(([\w-]+)\)=", text, re.MULTILINE))
    labels.add("tbl-run-facts")  # on the generated run-facts page (scripts/run_facts_page.py)
    return labels


def test_every_embedded_output_is_labelled_somewhere():
    """A chapter that embeds a label nobody defines would show an empty block (myst says nothing;
    scripts/check_pages.py fails the build). Catch the typo before the build."""
    labels = _defined_labels()
    missing = []
    for page in PAGES:
        text = page.read_text()
        for label in re.findall(r"!\[[^\]]*\]\(#([\w-]+)\)", text, re.DOTALL) + re.findall(
                r"^:::?\{embed\}\s*#?([\w-]+)", text, re.MULTILINE):
            if label not in labels:
                missing.append(f"{page.relative_to(REPO)}: ![](#{label})")
    assert not missing, "embedded labels that no notebook cell or page defines:\n" + "\n".join(missing)


def test_every_notebook_labels_its_run_facts():
    """The last cell (``runfacts.report()``) is labelled ``facts-<notebook>`` so that pages can embed
    the cost of the run that built them."""
    for nb in NOTEBOOKS:
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        src = "".join(cells[-1]["source"])
        assert "runfacts.report()" in src and f"#| label: facts-{nb.stem}" in src, nb.name


def test_no_backtick_in_a_backtick_directive_title():
    """A backtick fence cannot carry a backtick in its info string (CommonMark): myst then reads the
    directive as plain text and the rest of the page as a code block, hiding every embed after it."""
    bad = [f"{page.relative_to(REPO)}:{n}: {line.strip()[:80]}" for page in PAGES
           for n, line in enumerate(page.read_text().splitlines(), 1)
           if re.match(r"^\s*`{3,}\{[\w:-]+\}.*`", line)]
    assert not bad, "use a colon fence (:::{directive}) or drop the backticks:\n" + "\n".join(bad)

"""Fast tests of the site template's renderer (templates/site/booksite) on small hand-made MyST ASTs:
every node type the book uses, the notebook outputs of every kind, and a whole site written from a
hand-made ``_build/site`` folder. No myst build and no browser needed."""

from __future__ import annotations

import html.parser
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "templates" / "site"))

from booksite import nodes  # noqa: E402
from booksite.build import SiteBuilder, Source, launch_links, toc_tree  # noqa: E402
from booksite.search import build_index  # noqa: E402


def t(value):
    return {"type": "text", "value": value}


def P(*children):
    return {"type": "paragraph", "children": list(children)}


REFS = {"cite": {"order": ["vaswani2017attention"], "data": {"vaswani2017attention": {
    "label": "vaswani2017attention", "enumerator": "1",
    "html": 'Vaswani, A. (2017). Attention Is All You Need. <a href="https://arxiv.org/abs/1706.03762">link</a>'}}}}


def render(node, **kw):
    page = nodes.Page(references=REFS, **kw)
    return nodes.render(node, page), page


class _Checker(html.parser.HTMLParser):
    """Fails on unbalanced tags, so every renderer emits well-formed HTML."""
    VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "col"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def well_formed(markup: str) -> str:
    c = _Checker()
    c.feed(markup)
    c.close()
    assert not c.stack, f"unclosed tags: {c.stack}"
    return markup


# --------------------------------------------------------------------------------- text and blocks
def test_inline_nodes():
    out, _ = render(P(t("a <b> & "), {"type": "emphasis", "children": [t("em")]},
                      {"type": "strong", "children": [t("st")]}, {"type": "inlineCode", "value": "x<y"},
                      {"type": "subscript", "children": [t("2")]}, {"type": "superscript", "children": [t("3")]},
                      {"type": "delete", "children": [t("del")]}, {"type": "underline", "children": [t("u")]},
                      {"type": "abbreviation", "title": "Generative AI", "children": [t("GenAI")]},
                      {"type": "keyboard", "children": [t("Ctrl")]}, {"type": "break"},
                      {"type": "link", "url": "https://example.org", "children": [t("ext")]},
                      {"type": "link", "url": "/paper#sec-intro", "internal": True, "children": [t("int")]}))
    well_formed(out)
    assert "a &lt;b&gt; &amp; " in out
    for frag in ("<em>em</em>", "<strong>st</strong>", "<code>x&lt;y</code>", "<sub>2</sub>", "<sup>3</sup>",
                 "<del>del</del>", "<u>u</u>", 'title="Generative AI"', "<kbd>Ctrl</kbd>", "<br>",
                 'href="https://example.org" rel="noopener"', 'href="paper.html#sec-intro"'):
        assert frag in out, frag


def test_headings_get_anchors_and_feed_the_outline():
    out, page = render({"type": "root", "children": [
        {"type": "heading", "depth": 2, "identifier": "sec-intro", "html_id": "sec-intro", "children": [t("Intro")]},
        {"type": "heading", "depth": 3, "identifier": "sub", "html_id": "sub", "enumerated": True,
         "enumerator": "1.1", "children": [t("Sub")]}]})
    well_formed(out)
    assert '<h2 id="sec-intro">Intro<a class="anchor" href="#sec-intro"' in out
    assert '<span class="heading-number">1.1</span>' in out
    assert page.headings == [(2, "sec-intro", "Intro"), (3, "sub", "1.1 Sub")]


def test_lists_quotes_definitions_rules():
    out, _ = render({"type": "root", "children": [
        {"type": "list", "ordered": True, "start": 3, "children": [
            {"type": "listItem", "children": [P(t("three"))]},
            {"type": "listItem", "spread": True, "children": [P(t("four")), {"type": "list", "ordered": False, "children": [
                {"type": "listItem", "children": [P(t("nested"))]}]}]}]},
        {"type": "blockquote", "children": [P(t("quoted"))]},
        {"type": "definitionList", "children": [{"type": "definitionTerm", "children": [t("Term")]},
                                                {"type": "definitionDescription", "children": [t("Def")]}]},
        {"type": "thematicBreak"}]})
    well_formed(out)
    assert '<ol start="3"><li>three</li>' in out and "<ul><li>nested</li></ul>" in out
    assert "<blockquote><p>quoted</p></blockquote>" in out
    assert "<dl><dt>Term</dt><dd>Def</dd></dl>" in out and "<hr>" in out


def test_code_is_highlighted_with_copy_button_line_numbers_and_emphasis():
    out, _ = render({"type": "code", "lang": "python", "value": "def f(x):\n    return x + 1",
                     "showLineNumbers": True, "emphasizeLines": [2], "filename": "f.py"})
    well_formed(out)
    assert '<span class="k">def</span>' in out and '<span class="nf">f</span>' in out
    assert 'class="copy-btn"' in out and 'class="code-filename">f.py<' in out
    assert out.count('class="lineno"') == 2 and out.count('class="line hl"') == 1
    hidden, _ = render({"type": "code", "lang": "python", "value": "x", "visibility": "hide"})
    assert hidden.startswith("<details") and render({"type": "code", "value": "x", "visibility": "remove"})[0] == ""
    unknown, _ = render({"type": "code", "lang": "no-such-language", "value": "a < b"})
    assert "a &lt; b" in unknown


def test_math_uses_myst_katex_html_once_or_falls_back_to_mathml():
    katex = '<span class="katex"><span class="katex-mathml"><math></math></span><span class="katex-html">x</span></span>'
    out, page = render({"type": "math", "value": "x", "html": katex, "identifier": "eq-x", "html_id": "eq-x", "enumerator": "2"})
    assert out.count('class="katex"') == 1 and '<span class="eq-number">(2)</span>' in out and 'id="eq-x"' in out
    assert page.math_fallbacks == 0
    out, page = render(P({"type": "inlineMath", "value": r"\frac{a}{b}"}))
    assert "<math" in out and "<mfrac>" in out and page.math_fallbacks == 1
    out, _ = render({"type": "math", "value": r"\sum_{i=1}^n i"})
    assert 'display="block"' in out


def test_admonitions_including_dropdown():
    out, _ = render({"type": "admonition", "kind": "warning", "children": [
        {"type": "admonitionTitle", "children": [t("Careful")]}, P(t("body"))]})
    well_formed(out)
    assert 'class="admonition warning"' in out and ">Careful<" in out and "<p>body</p>" in out
    out, _ = render({"type": "admonition", "kind": "note", "children": [P(t("no title"))]})
    assert ">Note<" in out
    out, _ = render({"type": "admonition", "kind": "tip", "class": "dropdown", "children": [P(t("x"))]})
    assert out.startswith("<details")


def test_figures_tables_and_captions_with_numbers():
    fig = {"type": "container", "kind": "figure", "identifier": "fig-a", "html_id": "fig-a", "enumerator": "1", "children": [
        {"type": "image", "url": "/dots-123.svg", "alt": "Dots", "width": "60%"},
        {"type": "caption", "children": [P({"type": "captionNumber", "kind": "figure", "children": [t("Figure 1:")]}, t("Some dots."))]}]}
    out, _ = render(fig)
    well_formed(out)
    assert '<figure id="fig-a" class="container figure-container">' in out
    assert 'src="build/dots-123.svg"' in out and 'style="width:60%"' in out
    assert '<figcaption><span class="caption-number">Figure 1:</span> Some dots.</figcaption>' in out
    table = {"type": "container", "kind": "table", "children": [
        {"type": "caption", "children": [P(t("Models."))]},
        {"type": "table", "children": [
            {"type": "tableRow", "children": [{"type": "tableCell", "header": True, "children": [t("Model")]},
                                              {"type": "tableCell", "header": True, "align": "right", "children": [t("Params")]}]},
            {"type": "tableRow", "children": [{"type": "tableCell", "children": [t("GPT-2")]},
                                              {"type": "tableCell", "align": "right", "children": [t("124 M")]}]}]}]}
    out, _ = render(table)
    well_formed(out)
    assert out.index("<figcaption>") < out.index("<table")            # table captions go on top
    assert "<thead><tr><th>Model</th>" in out and '<td style="text-align:right">124 M</td>' in out
    remote, _ = render({"type": "image", "url": "https://example.org/x.png", "alt": "x"})
    assert "<img" not in remote                                        # no request leaves the site


def test_citations_link_to_the_bibliography():
    group = {"type": "citeGroup", "kind": "parenthetical", "children": [
        {"type": "cite", "label": "vaswani2017attention", "identifier": "vaswani2017attention", "kind": "parenthetical",
         "children": [t("Vaswani et al., 2017")]},
        {"type": "cite", "label": "missing", "identifier": "missing", "error": True, "children": [t("missing")]}]}
    out, page = render(P(group))
    well_formed(out)
    assert '(<a class="cite" href="#cite-vaswani2017attention"' in out and 'title="Vaswani, A. (2017).' in out
    assert 'class="cite cite-missing"' in out and out.endswith(")</span></p>")
    bib = nodes.render_bibliography(page)
    well_formed(bib)
    assert '<li id="cite-vaswani2017attention">Vaswani, A. (2017)' in bib and 'id="references"' in bib


def test_cross_references_local_remote_and_unresolved():
    out, _ = render(P(
        {"type": "crossReference", "identifier": "eq-a", "html_id": "eq-a", "kind": "equation", "resolved": True,
         "children": [t("(1)")]},
        {"type": "crossReference", "identifier": "fig-curve", "html_id": "fig-curve", "remote": True,
         "url": "/demo", "resolved": True, "children": [t("Figure 2")]},
        {"type": "crossReference", "identifier": "sec-x", "html_id": "sec-x", "template": "Section %s",
         "enumerator": "3", "resolved": True, "children": []},
        {"type": "crossReference", "identifier": "nope", "resolved": False, "children": [t("nope")]}))
    well_formed(out)
    assert '<a class="xref" href="#eq-a">(1)</a>' in out
    assert '<a class="xref" href="demo.html#fig-curve">Figure 2</a>' in out
    assert '<a class="xref" href="#sec-x">Section 3</a>' in out
    assert '<span class="xref unresolved">nope</span>' in out


def test_footnotes_collected_and_listed_at_the_bottom():
    out, page = render({"type": "root", "children": [
        P(t("text"), {"type": "footnoteReference", "identifier": "n", "label": "n", "enumerator": "1"}),
        {"type": "footnoteDefinition", "identifier": "n", "enumerator": "1", "children": [P(t("the note"))]}]})
    assert '<sup class="footnote-ref" id="fnref-n"><a href="#fn-n">1</a></sup>' in out and "the note" not in out
    notes = nodes.render_footnotes(page)
    well_formed(notes)
    assert '<li id="fn-n" value="1">the note' in notes and 'href="#fnref-n"' in notes


def test_directives_tabs_cards_grids_details_aside_embed():
    out, page = render({"type": "root", "children": [
        {"type": "tabSet", "children": [{"type": "tabItem", "title": "One", "children": [P(t("1"))]},
                                        {"type": "tabItem", "title": "Two", "children": [P(t("2"))]}]},
        {"type": "card", "children": [{"type": "cardTitle", "children": [t("Card")]}, P(t("body"))]},
        {"type": "card", "url": "/paper", "children": [P(t("linked"))]},
        {"type": "grid", "columns": [1, 2, 3], "children": [P(t("g"))]},
        {"type": "details", "children": [{"type": "summary", "children": [t("More")]}, P(t("hidden"))]},
        {"type": "aside", "children": [P(t("margin"))]},
        {"type": "embed", "source": {"url": "/demo", "label": "fig-curve", "kind": "Notebook", "title": "Demo"},
         "children": [P(t("embedded"))]},
        {"type": "html", "value": '<b>raw</b><script src="https://cdn.example.org/x.js"></script>'},
        {"type": "comment", "value": "invisible"}, {"type": "mystTarget", "label": "x"},
        {"type": "someFutureNode", "children": [P(t("still shown"))]}]})
    well_formed(out)
    assert out.count('role="tab"') == 2 and out.count("hidden>") == 1
    assert 'class="card-title">Card<' in out and '<a class="card card-link" href="paper.html">' in out
    assert "--grid-cols:3" in out and "<summary>More</summary>" in out and 'class="margin-note"' in out
    assert 'href="demo.html#fig-curve">(source: Demo)' in out
    assert "<b>raw</b>" in out and "cdn.example.org" not in out and "invisible" not in out
    assert "still shown" in out and page.unknown == {"someFutureNode"}


# --------------------------------------------------------------------------------- notebook outputs
def outputs(*jd):
    return {"type": "outputs", "children": [{"type": "output", "jupyter_data": d, "children": []} for d in jd]}


def test_outputs_of_every_kind():
    texts = {}

    def text_asset(path):
        texts[path] = True
        return "<p>big html from a file</p>"

    png = {"content_type": "image/png", "path": "/abc.png"}
    out, page = render(outputs(
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        {"output_type": "stream", "name": "stderr", "text": ["warn", "ing\n"]},
        {"output_type": "error", "ename": "ValueError", "evalue": "bad",
         "traceback": ["\x1b[31mValueError\x1b[39m: bad", "\x1b[1;32mline\x1b[0m"]},
        {"output_type": "display_data", "data": {"image/png": png, "text/plain": {"content": "<Figure>"}}},
        {"output_type": "display_data", "data": {"image/jpeg": {"content": "AAAA"}}},
        {"output_type": "display_data", "data": {"image/svg+xml": {"content": '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'}}},
        {"output_type": "execute_result", "data": {"text/html": {"content": "<table class='dataframe'><tr><td>1</td></tr></table>"},
                                                  "text/plain": {"content": "df"}}},
        {"output_type": "display_data", "data": {"text/html": {"path": "/big.html"}}},
        {"output_type": "display_data", "data": {"audio/wav": {"content": "UklGRg=="}, "text/plain": {"content": "<Audio>"}}},
        {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {"content": '{"model_id": "1"}'},
                                                "text/plain": {"content": "IntSlider(value=3)"}}},
        {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {"content": "{}"},
                                                "text/plain": {"content": "  0%|          | 0/50 [00:00<?, ?it/s]"}}},
        {"output_type": "display_data", "data": {"text/markdown": {"content": "Some **bold** text"}}},
        {"output_type": "display_data", "data": {"text/latex": {"content": r"$\alpha + \beta$"}}},
        {"output_type": "display_data", "data": {"application/json": {"content": '{"a": 1}'}}},
        {"output_type": "execute_result", "data": {"text/plain": {"content": "'plain <result>'"}}},
        {"output_type": "display_data", "data": {"application/x-strange": {"content": "?"}}}),
        text_asset=text_asset)
    well_formed(out)
    assert '<pre class="output stream stdout">hello\n</pre>' in out
    assert '<pre class="output stream stderr">warning\n</pre>' in out
    assert 'class="output error"' in out and '<span class="ansi-fg-1">ValueError</span>' in out
    assert '<span class="ansi-fg-2 ansi-bold">line</span>' in out and "\x1b" not in out
    assert '<img src="build/abc.png"' in out and 'src="data:image/jpeg;base64,AAAA"' in out
    assert "<svg" in out and "<?xml" not in out
    assert "class='dataframe'" in out and "big html from a file" in out and texts == {"/big.html": True}
    assert '<audio controls preload="metadata" src="data:audio/wav;base64,UklGRg=="></audio>' in out
    assert 'class="output widget-placeholder"' in out and "IntSlider(value=3)" in out and page.widgets == 1
    assert "0/50" not in out                                           # tqdm bars are dropped
    assert "<strong>bold</strong>" in out and "<mi>&#x003B1;</mi>" in out and "&quot;a&quot;: 1" in out
    assert "&#x27;plain &lt;result&gt;&#x27;" in out
    assert "application/x-strange" in out


def test_hidden_and_removed_outputs_and_html_audio_kept():
    out, _ = render({**outputs({"output_type": "stream", "name": "stdout", "text": "x"}), "visibility": "remove"})
    assert out == ""
    out, _ = render({**outputs({"output_type": "stream", "name": "stdout", "text": "x"}), "visibility": "hide"})
    assert out.startswith("<details")
    audio_html = '<audio controls="controls"><source src="data:audio/wav;base64,UklGRg==" type="audio/wav"></audio>'
    out, _ = render(outputs({"output_type": "display_data", "data": {"text/html": {"content": audio_html}}}))
    assert audio_html in out


def test_ansi_progress_bar_carriage_returns_keep_the_last_state():
    assert nodes.ansi_to_html("10%\r50%\r100%\ndone") == "100%\ndone"
    assert nodes.ansi_to_html("\x1b[38;5;28mgreen\x1b[0m") == '<span class="ansi-fg-2">green</span>'


# --------------------------------------------------------------------------------- site pieces
def test_toc_tree_nests_parts_and_children():
    project = {"index": "index", "pages": [
        {"slug": "paper", "title": "Paper", "level": 1}, {"title": "Part One", "level": 1},
        {"slug": "basics", "title": "Basics", "level": 2}, {"slug": "demo", "title": "Demo", "level": 3},
        {"slug": "more", "title": "More", "level": 2}]}
    tree = toc_tree(project, "Home")
    assert [i["title"] for i in tree] == ["Home", "Paper", "Part One"]
    part = tree[2]
    assert part["href"] is None and [c["title"] for c in part["children"]] == ["Basics", "More"]
    assert part["children"][0]["children"][0]["href"] == "demo.html"


def test_launch_links_for_colab_and_binder():
    fm = {"source_url": "https://github.com/genai-book/genai-executable-book/blob/main/notebooks/text-generation.ipynb"}
    links = launch_links(fm, {"thebe": {"binder": {"url": "https://mybinder.org/", "repo": "x", "ref": "HEAD"}}})
    assert links["colab"] == ("https://colab.research.google.com/github/genai-book/genai-executable-book/blob/main/"
                              "notebooks/text-generation.ipynb")
    assert links["binder"] == ("https://mybinder.org/v2/gh/genai-book/genai-executable-book/main"
                               "?urlpath=lab%2Ftree%2Fnotebooks%2Ftext-generation.ipynb")
    assert launch_links({}, {}) == {}
    assert launch_links({}, {"github": "https://github.com/o/r"}, "/notebooks/x.ipynb")["colab"] == \
        "https://colab.research.google.com/github/o/r/blob/main/notebooks/x.ipynb"


def test_search_index_has_one_entry_per_section():
    mdast = {"type": "root", "children": [P(t("Intro text.")),
                                          {"type": "heading", "depth": 2, "html_id": "diffusion", "children": [t("Diffusion")]},
                                          P(t("Noise is added step by step"), {"type": "inlineMath", "value": r"\beta_t"}, t(".")),
                                          {"type": "code", "value": "not indexed"}]}
    idx = build_index([{"slug": "ch", "href": "ch.html", "title": "Chapter", "mdast": mdast}])
    assert idx == [{"t": "Chapter", "h": "", "u": "ch.html", "x": "Intro text."},
                   {"t": "Chapter", "h": "Diffusion", "u": "ch.html#diffusion", "x": "Noise is added step by step."}]


def test_whole_site_from_a_hand_made_site_folder(tmp_path, monkeypatch):
    """SiteBuilder reads config.json + content/*.json + public files and writes linked pages."""
    monkeypatch.setenv("BOOKSITE_NO_NPM", "1")
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "public").mkdir()
    (site / "public" / "abc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (site / "public" / "nb-1.ipynb").write_text('{"nbformat": 4, "cells": []}')
    config = {"title": "Book", "projects": [{"index": "index", "title": "Book",
                                             "github": "https://github.com/o/r",
                                             "pages": [{"slug": "paper", "title": "Paper", "level": 1},
                                                       {"title": "Part", "level": 1},
                                                       {"slug": "nb", "title": "NB", "level": 2}]}]}
    (site / "config.json").write_text(json.dumps(config))
    pages = {
        "index": {"kind": "Article", "frontmatter": {"title": "Welcome"}, "mdast": {"type": "root", "children": [P(t("Hi"))]}},
        "paper": {"kind": "Article", "frontmatter": {"title": "Paper", "exports": [
            {"format": "docx", "filename": "paper.docx", "url": "/paper-1.docx"}],
            "parts": {"abstract": {"mdast": {"type": "root", "children": [P(t("Abstract text"))]}}}},
            "references": REFS,
            "mdast": {"type": "root", "children": [P({"type": "cite", "label": "vaswani2017attention", "children": [t("V")]})]}},
        "nb": {"kind": "Notebook", "frontmatter": {"title": "NB", "source_url": "https://github.com/o/r/blob/main/notebooks/nb.ipynb",
                                                   "exports": [{"format": "ipynb", "filename": "nb.ipynb", "url": "/nb-1.ipynb"}]},
               "mdast": {"type": "root", "children": [outputs({"output_type": "display_data",
                                                               "data": {"image/png": {"path": "/abc.png"}}})]}},
    }
    (site / "public" / "paper-1.docx").write_bytes(b"PK")
    for slug, data in pages.items():
        (site / "content" / f"{slug}.json").write_text(json.dumps(data))
    out = tmp_path / "html"
    report = SiteBuilder(Source(None, site), out, quiet=True).build()
    assert report["pages"] == 3 and report["warnings"] == [] and report["unknown_node_types"] == []
    for name in ("index.html", "paper.html", "nb.html", "search-index.js", "assets/book.css", "assets/book.js",
                 "assets/pygments.css", "build/abc.png", "build/nb-1.ipynb", "build/paper-1.docx", ".nojekyll"):
        assert (out / name).exists(), name
    paper = (out / "paper.html").read_text()
    assert "Abstract text" in paper and 'id="cite-vaswani2017attention"' in paper
    assert 'href="build/paper-1.docx" download="paper.docx"' in paper
    nb = (out / "nb.html").read_text()
    assert "colab.research.google.com/github/o/r/blob/main/notebooks/nb.ipynb" in nb
    assert 'href="build/nb-1.ipynb" download="nb.ipynb"' in nb and 'src="build/abc.png"' in nb
    assert 'href="paper.html" rel="prev"' in nb
    assert ("no-katex" in nb) != (out / "assets" / "katex" / "katex.min.css").exists()
    index = (out / "index.html").read_text()
    assert '<div class="toc-part-title">Part</div>' in index and 'href="nb.html"' in index
    # the downloads menu on every page offers the paper's docx
    assert 'href="build/paper-1.docx" download="paper.docx"><span class="fmt fmt-docx">DOCX</span> Paper</a>' in index
    # nothing on any page points at another machine except plain outbound links
    for f in out.glob("*.html"):
        text = f.read_text()
        assert "cdn." not in text and "googleapis" not in text
        assert not [s for s in __import__("re").findall(r'(?:src|href)="(https?://[^"]+)"', text)
                    if "<link" in text.split(s)[0][-200:] or "<script" in text.split(s)[0][-200:]]


@pytest.mark.parametrize("kind", sorted(nodes.HANDLERS))
def test_every_handler_accepts_an_empty_node(kind):
    out, _ = render({"type": kind})
    assert isinstance(out, str)


def test_embedded_notebook_figures_are_numbered_and_cross_referenced():
    emb = {"type": "embed", "alt": "A curve.", "source": {"url": "/demo", "label": "fig-curve", "kind": "Notebook", "title": "Demo"},
           "children": [outputs({"output_type": "display_data", "data": {"image/png": {"path": "/c.png"}}})]}
    fig = {"type": "container", "kind": "figure", "enumerator": "1", "identifier": "fig-a", "children": []}
    xref = {"type": "crossReference", "identifier": "fig-curve", "label": "fig-curve", "kind": "block:notebook-code",
            "remote": True, "url": "/demo", "resolved": True, "children": [t("Notebook-code")]}
    other = {**xref, "identifier": "fig-elsewhere", "label": "fig-elsewhere", "html_id": "fig-elsewhere"}
    root = {"type": "root", "children": [fig, P(xref, other), emb]}
    out, _ = render(root, embed_numbers=nodes.number_embeds(root))
    well_formed(out)
    assert '<a class="xref" href="#fig-curve">Figure\u00a02</a>' in out
    assert '<figure id="fig-curve" class="embed">' in out and "Figure\u00a02:</span> A curve." in out
    assert 'href="demo.html#fig-elsewhere">the figure</a>' in out and "Notebook-code" not in out


def test_links_to_sources_outside_the_book_are_not_dead_links():
    out, page = render(P({"type": "link", "url": "gan.md", "children": [t("GANs")]},
                         {"type": "link", "url": "https://example.org/x.md", "children": [t("remote")]}))
    assert '<span class="link-missing"' in out and ">GANs</span>" in out and 'href="gan.md"' not in out
    assert 'href="https://example.org/x.md"' in out and page.missing_links == ["gan.md"]


@pytest.mark.book
def test_myst_builds_the_fixture_book_with_this_template(tmp_path):
    """The whole route with the real myst (no execution): myst serves the JSON, runs the template's
    render command, and the site has every page, citations, math, cross-references and no unknown node."""
    import os
    import shutil
    import subprocess

    myst = Path(sys.executable).parent / "myst"
    if not myst.exists():
        pytest.skip("mystmd is not installed in this environment")
    book = tmp_path / "book"
    shutil.copytree(ROOT / "tests" / "fixtures" / "site", book, ignore=shutil.ignore_patterns("_build"))
    cfg = (book / "myst.yml").read_text().replace("../../../templates/site", str(ROOT / "templates" / "site"))
    (book / "myst.yml").write_text(cfg)
    env = {**os.environ, "BOOKSITE_PYTHON": sys.executable, "BOOKSITE_NO_NPM": "1"}
    res = subprocess.run([str(myst), "build", "--html"], cwd=book, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    html_dir = book / "_build" / "html"
    report = json.loads((html_dir / "site-report.json").read_text())
    assert report["pages"] == 5 and report["unknown_node_types"] == [] and report["warnings"] == []
    paper = (html_dir / "paper.html").read_text()
    assert paper.count('class="cite"') >= 4 and 'id="cite-ho2020denoising"' in paper
    assert 'class="katex"' in paper and '<span class="eq-number">(1)</span>' in paper
    assert '<a class="xref" href="#tbl-models">Table' in paper and 'id="fn-note"' in paper
    demo = (html_dir / "demo.html").read_text()
    assert "Open in Colab" in demo and "/blob/main/notebooks/demo.ipynb" in demo
    assert list((html_dir / "build").glob("demo-*.ipynb"))


def test_proofs_exercises_and_numbered_headings():
    out, _ = render({"type": "root", "children": [
        {"type": "proof", "kind": "theorem", "enumerator": "2", "children": [
            {"type": "admonitionTitle", "children": [t("Bayes")]}, P(t("holds"))]},
        {"type": "exercise", "enumerator": "1", "identifier": "ex-1", "html_id": "ex-1", "children": [P(t("do"))]},
        {"type": "solution", "children": [{"type": "admonitionTitle", "children": [t("Solution to Exercise 1")]}, P(t("ans"))]},
        {"type": "heading", "depth": 2, "enumerator": "3", "identifier": "h", "html_id": "h", "children": [t("Third")]},
        {"type": "glossary", "children": [{"type": "definitionList", "children": [
            {"type": "definitionTerm", "identifier": "term-x", "html_id": "term-x", "children": [t("X")]}]}]}]})
    well_formed(out)
    assert '<div class="proof-title">Theorem 2 (Bayes)</div>' in out
    assert '<div class="proof-title">Exercise 1</div>' in out and "Solution to Exercise 1</div>" in out
    assert '<span class="heading-number">3</span> Third' in out and 'class="glossary"' in out

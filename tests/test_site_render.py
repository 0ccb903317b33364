"""Fast tests of the site template's renderer (templates/site/booksite) on small hand-made MyST ASTs:
every node type the book uses, the notebook outputs of every kind, and a whole site written from a
hand-made ``_build/site`` folder. No myst build and no browser needed."""

from __future__ import annotations

import html.parser
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "templates" / "site"))

# the renderer under test by its path from the repository root: mutmut names (and switches) its mutants
# by that dotted path; booksite.build below loads its own booksite.nodes, as render.py does
from templates.site.booksite import nodes  # noqa: E402
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
    assert '<ul class="references">' in bib                      # author–year: no numbers


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
                   {"t": "Chapter", "h": "Diffusion", "u": "ch.html#diffusion", "x": "Noise is added step by step βₜ.",
                    "m": r"\beta_t"}]


def test_search_index_keeps_math_and_separates_citations():
    cite = {"type": "cite", "label": "ho2020", "kind": "narrative", "children": [t("Ho et al. (2020)")]}
    mdast = {"type": "root", "children": [P(cite, t("showed that "), {"type": "inlineMath", "value": r"\bar\alpha_t"},
                                            t(" shrinks; see"), {"type": "citeGroup", "children": [cite]}, t("."))]}
    (entry,) = build_index([{"slug": "ch", "href": "ch.html", "title": "Chapter", "mdast": mdast}])
    assert entry["x"] == "Ho et al. (2020) showed that ᾱₜ shrinks; see Ho et al. (2020)."
    assert entry["m"] == r"\bar\alpha_t"


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
    assert 'href="build/paper-1.docx" download="paper.docx" data-format="docx"><span class="fmt fmt-docx">DOCX</span> Paper</a>' in index
    # nothing on any page points at another machine except plain outbound links
    for f in out.glob("*.html"):
        text = f.read_text()
        assert "cdn." not in text and "googleapis" not in text
        loads = [tag for tag in re.findall(r"<(?:link|script|img|iframe)\b[^>]*>", text)
                 if re.search(r'(?:src|href)="(?:https?:)?//', tag) and 'rel="canonical"' not in tag]
        assert not loads, loads


# --------------------------------------------------------------------------------- golden HTML, one per handler
# A representative node for every handler and the exact HTML it must give (reviewed by hand; update a
# snippet only when the change is intended). Rendered with GOLDEN_REFS and a notebook page's context.
GOLDEN_REFS = {"cite": {"order": ["vaswani2017attention"], "data": {"vaswani2017attention": {
    "label": "vaswani2017attention", "html": "Vaswani, A. (2017). Attention."}}}}
GOLDEN = {
    'root': ({'type': 'root', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}]},
        '<p>a</p>'),
    'block': ({'type': 'block', 'kind': 'notebook-code', 'identifier': 'fig-x', 'label': 'fig-x', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/p.png'}}}}]}]},
        '<div id="fig-x" class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/p.png" alt="A curve of x²."></div></div></div>'),
    'paragraph': ({'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a & b'}]},
        '<p>a &amp; b</p>'),
    'heading': ({'type': 'heading', 'depth': 2, 'identifier': 'h', 'html_id': 'h', 'children': [{'type': 'text', 'value': 'Title'}]},
        '<h2 id="h">Title<a class="anchor" href="#h" aria-label="Link to this section">#</a></h2>'),
    'text': ({'type': 'text', 'value': '<x>'},
        '&lt;x&gt;'),
    'emphasis': ({'type': 'emphasis', 'children': [{'type': 'text', 'value': 'e'}]},
        '<em>e</em>'),
    'strong': ({'type': 'strong', 'children': [{'type': 'text', 'value': 's'}]},
        '<strong>s</strong>'),
    'underline': ({'type': 'underline', 'children': [{'type': 'text', 'value': 'u'}]},
        '<u>u</u>'),
    'delete': ({'type': 'delete', 'children': [{'type': 'text', 'value': 'd'}]},
        '<del>d</del>'),
    'subscript': ({'type': 'subscript', 'children': [{'type': 'text', 'value': '2'}]},
        '<sub>2</sub>'),
    'superscript': ({'type': 'superscript', 'children': [{'type': 'text', 'value': '3'}]},
        '<sup>3</sup>'),
    'smallcaps': ({'type': 'smallcaps', 'children': [{'type': 'text', 'value': 'sc'}]},
        '<span class="smallcaps">sc</span>'),
    'keyboard': ({'type': 'keyboard', 'children': [{'type': 'text', 'value': 'Ctrl'}]},
        '<kbd>Ctrl</kbd>'),
    'abbreviation': ({'type': 'abbreviation', 'title': 'Generative AI', 'children': [{'type': 'text', 'value': 'GenAI'}]},
        '<abbr title="Generative AI">GenAI</abbr>'),
    'inlineCode': ({'type': 'inlineCode', 'value': 'a<b'},
        '<code>a&lt;b</code>'),
    'break': ({'type': 'break'},
        '<br>'),
    'thematicBreak': ({'type': 'thematicBreak'},
        '<hr>'),
    'blockquote': ({'type': 'blockquote', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'q'}]}]},
        '<blockquote><p>q</p></blockquote>'),
    'list': ({'type': 'list', 'ordered': True, 'start': 2, 'children': [{'type': 'listItem', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'two'}]}]}]},
        '<ol start="2"><li>two</li></ol>'),
    'listItem': ({'type': 'listItem', 'checked': True, 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'done'}]}]},
        '<li class="task"><input type="checkbox" disabled checked> done</li>'),
    'link': ({'type': 'link', 'url': '/paper#intro', 'children': [{'type': 'text', 'value': 'paper'}]},
        '<a href="paper.html#intro" class="internal">paper</a>'),
    'html': ({'type': 'html', 'value': '<b>ok</b><script src="https://cdn.example.org/x.js"></script>'},
        '<b>ok</b><!-- remote resource removed -->'),
    'comment': ({'type': 'comment', 'value': 'hidden'},
        ''),
    'target': ({'type': 'target', 'label': 'x'},
        ''),
    'code': ({'type': 'code', 'lang': 'python', 'value': 'x = 1'},
        '<div class="code-block"><div class="code-wrap"><span class="code-lang">python</span><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-python"><span class="n">x</span> <span class="o">=</span> <span class="mi">1</span></code></pre></div></div>'),
    'math': ({'type': 'math', 'value': 'x', 'html': '<span class="katex">x</span>', 'identifier': 'eq-x', 'html_id': 'eq-x', 'enumerator': '1'},
        '<div id="eq-x" class="math-display"><span class="katex">x</span><span class="eq-number">(1)</span></div>'),
    'inlineMath': ({'type': 'inlineMath', 'value': 'x', 'html': '<span class="katex">x</span>'},
        '<span class="math-inline"><span class="katex">x</span></span>'),
    'admonition': ({'type': 'admonition', 'kind': 'tip', 'children': [{'type': 'admonitionTitle', 'children': [{'type': 'text', 'value': 'Tip'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<aside class="admonition tip" role="note"><div class="admonition-title">Tip</div><div class="admonition-body"><p>b</p></div></aside>'),
    'admonitionTitle': ({'type': 'admonitionTitle', 'children': [{'type': 'text', 'value': 'T'}]},
        '<div class="admonition-title">T</div>'),
    'container': ({'type': 'container', 'kind': 'figure', 'identifier': 'fig-a', 'html_id': 'fig-a', 'children': [{'type': 'image', 'url': '/a.png', 'alt': 'A'}, {'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'Cap.'}]}]}]},
        '<figure id="fig-a" class="container figure-container"><img src="build/a.png" alt="A" loading="lazy"><figcaption>Cap.</figcaption></figure>'),
    'caption': ({'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'Cap.'}]}]},
        '<figcaption>Cap.</figcaption>'),
    'legend': ({'type': 'legend', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'Leg.'}]}]},
        '<div class="legend"><p>Leg.</p></div>'),
    'captionNumber': ({'type': 'captionNumber', 'children': [{'type': 'text', 'value': 'Figure 1:'}]},
        '<span class="caption-number">Figure 1:</span> '),
    'image': ({'type': 'image', 'url': '/a.png', 'alt': 'A <plot>', 'width': '50%'},
        '<img src="build/a.png" alt="A &lt;plot&gt;" style="width:50%" loading="lazy">'),
    'table': ({'type': 'table', 'children': [{'type': 'tableRow', 'children': [{'type': 'tableCell', 'header': True, 'children': [{'type': 'text', 'value': 'h'}]}]}, {'type': 'tableRow', 'children': [{'type': 'tableCell', 'children': [{'type': 'text', 'value': 'v'}]}]}]},
        '<div class="table-wrap"><table><thead><tr><th>h</th></tr></thead><tbody><tr><td>v</td></tr></tbody></table></div>'),
    'tableRow': ({'type': 'tableRow', 'children': [{'type': 'tableCell', 'children': [{'type': 'text', 'value': 'v'}]}]},
        '<tr><td>v</td></tr>'),
    'tableCell': ({'type': 'tableCell', 'align': 'right', 'children': [{'type': 'text', 'value': '0d3d19a32d3338f10357c0889762bd8d64bbdeba'}]},
        '<td style="text-align:right"><abbr class="hash" title="0d3d19a32d3338f10357c0889762bd8d64bbdeba">0d3d19a32d…</abbr></td>'),
    'citeGroup': ({'type': 'citeGroup', 'kind': 'parenthetical', 'children': [{'type': 'cite', 'label': 'vaswani2017attention', 'children': [{'type': 'text', 'value': 'Vaswani et al., 2017'}]}]},
        '<span class="cite-group">(<a class="cite" href="#cite-vaswani2017attention" title="Vaswani, A. (2017). Attention.">Vaswani et al., 2017</a>)</span>'),
    'cite': ({'type': 'cite', 'label': 'nope', 'error': True, 'children': [{'type': 'text', 'value': 'nope'}]},
        '<span class="cite cite-missing" title="Reference not found: nope">nope</span>'),
    'crossReference': ({'type': 'crossReference', 'identifier': 'sec-x', 'html_id': 'sec-x', 'url': '/basics', 'remote': True, 'resolved': True, 'children': [{'type': 'text', 'value': 'Section 2'}]},
        '<a class="xref" href="basics.html#sec-x">Section 2</a>'),
    'footnoteReference': ({'type': 'footnoteReference', 'identifier': 'n', 'enumerator': '1'},
        '<sup class="footnote-ref" id="fnref-n"><a href="#fn-n">1</a></sup>'),
    'footnoteDefinition': ({'type': 'footnoteDefinition', 'identifier': 'n', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'note'}]}]},
        ''),
    'definitionList': ({'type': 'definitionList', 'children': [{'type': 'definitionTerm', 'children': [{'type': 'text', 'value': 'T'}]}]},
        '<dl><dt>T</dt></dl>'),
    'definitionTerm': ({'type': 'definitionTerm', 'children': [{'type': 'text', 'value': 'T'}]},
        '<dt>T</dt>'),
    'definitionDescription': ({'type': 'definitionDescription', 'children': [{'type': 'text', 'value': 'D'}]},
        '<dd>D</dd>'),
    'details': ({'type': 'details', 'open': True, 'children': [{'type': 'summary', 'children': [{'type': 'text', 'value': 'More'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'x'}]}]},
        '<details open class="dropdown"><summary>More</summary><p>x</p></details>'),
    'summary': ({'type': 'summary', 'children': [{'type': 'text', 'value': 'More'}]},
        '<summary>More</summary>'),
    'tabSet': ({'type': 'tabSet', 'children': [{'type': 'tabItem', 'title': 'A', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}]}, {'type': 'tabItem', 'title': 'B', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]}]},
        '<div class="tab-set"><div class="tab-labels" role="tablist"><button type="button" role="tab" class="tab-label active" aria-selected="true">A</button><button type="button" role="tab" class="tab-label" aria-selected="false">B</button></div><div role="tabpanel" class="tab-panel"><p>a</p></div><div role="tabpanel" class="tab-panel" hidden><p>b</p></div></div>'),
    'tabItem': ({'type': 'tabItem', 'title': 'A', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}]},
        '<p>a</p>'),
    'card': ({'type': 'card', 'url': '/paper', 'children': [{'type': 'cardTitle', 'children': [{'type': 'text', 'value': 'Card'}]}]},
        '<a class="card card-link" href="paper.html"><div class="card-title">Card</div></a>'),
    'cardTitle': ({'type': 'cardTitle', 'children': [{'type': 'text', 'value': 'Card'}]},
        '<div class="card-title">Card</div>'),
    'header': ({'type': 'header', 'children': [{'type': 'text', 'value': 'H'}]},
        '<div class="card-header">H</div>'),
    'footer': ({'type': 'footer', 'children': [{'type': 'text', 'value': 'F'}]},
        '<div class="card-footer">F</div>'),
    'grid': ({'type': 'grid', 'columns': [1, 2], 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'g'}]}]},
        '<div class="grid" style="--grid-cols:2"><p>g</p></div>'),
    'aside': ({'type': 'aside', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'm'}]}]},
        '<aside class="margin-note"><p>m</p></aside>'),
    'iframe': ({'type': 'iframe', 'src': 'https://example.org/x'},
        '<p class="iframe-link"><a href="https://example.org/x" rel="noopener">Open the embedded page: https://example.org/x</a></p>'),
    'proof': ({'type': 'proof', 'kind': 'lemma', 'enumerator': '3', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'p'}]}]},
        '<div class="proof lemma"><div class="proof-title">Lemma 3</div><p>p</p></div>'),
    'exercise': ({'type': 'exercise', 'enumerator': '1', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'do'}]}]},
        '<div class="proof exercise"><div class="proof-title">Exercise 1</div><p>do</p></div>'),
    'solution': ({'type': 'solution', 'children': [{'type': 'admonitionTitle', 'children': [{'type': 'text', 'value': 'Solution'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 's'}]}]},
        '<div class="proof solution"><div class="proof-title">Solution</div><p>s</p></div>'),
    'embed': ({'type': 'embed', 'alt': 'The signal \\bar\\alpha_t.', 'source': {'url': '/nb-1', 'slug': 'nb-1', 'label': 'fig-s', 'kind': 'Notebook', 'title': 'NB'}, 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 'printed\n'}}, {'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/s.png'}}}}]}]},
        '<figure class="embed"><div class="outputs"><div class="output image"><img src="build/s.png" alt="The signal ᾱₜ."></div></div><figcaption>The signal <span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msub><mover><mi>&#x003B1;</mi><mo stretchy="true">&#x000AF;</mo></mover><mi>t</mi></msub></mrow></math></span>. <a class="embed-source" href="nb-1.html#fig-s">(source: NB — notebook)</a></figcaption></figure>'),
    'include': ({'type': 'include', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'inc'}]}]},
        '<p>inc</p>'),
    'glossary': ({'type': 'glossary', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'g'}]}]},
        '<div class="glossary"><p>g</p></div>'),
    'outputs': ({'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 'hi\n'}}]},
        '<div class="outputs"><pre class="output stream stdout">hi\n</pre></div>'),
    'output': ({'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stderr', 'text': '/root/.venv/lib/python3.11/site-packages/peft/x.py:3: FutureWarning: old\n'}},
        '<pre class="output stream stderr">…/site-packages/peft/x.py:3: FutureWarning: old\n</pre>'),
    'div': ({'type': 'div', 'class': 'c', 'children': [{'type': 'text', 'value': 'd'}]},
        '<div class="c">d</div>'),
    'span': ({'type': 'span', 'class': 'c', 'children': [{'type': 'text', 'value': 's'}]},
        '<span class="c">s</span>'),
    'si': ({'type': 'si', 'value': '5 kg'},
        '<span class="si">5 kg</span>'),
    'chemicalFormula': ({'type': 'chemicalFormula', 'value': 'H2O'},
        '<span class="chemicalFormula">H2O</span>'),
    'mermaid': ({'type': 'mermaid', 'value': 'graph LR; A-->B'},
        '<pre class="mermaid-source">graph LR; A--&gt;B</pre>'),
    'mystDirective': ({'type': 'mystDirective', 'value': '{bad}'},
        '<pre class="myst-unparsed">{bad}</pre>'),
    'mystRole': ({'type': 'mystRole', 'value': '{bad}`x`'},
        '<pre class="myst-unparsed">{bad}`x`</pre>'),
    'mystTarget': ({'type': 'mystTarget', 'label': 'x'},
        ''),
    'raw': ({'type': 'raw', 'lang': 'latex', 'value': '\\newpage'},
        ''),
}


def test_every_handler_has_a_golden_snippet():
    assert set(GOLDEN) == set(nodes.HANDLERS), "add a golden snippet for each new handler (and drop old ones)"


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_handler_renders_its_golden_html(kind):
    node, expected = GOLDEN[kind]
    page = nodes.Page(references=GOLDEN_REFS, title="NB", page_titles={"nb-1": "NB — notebook"},
                      captions={"fig-x": "A curve of $x^2$."})
    out = nodes.render(node, page)
    assert out == expected
    well_formed(out)


# --------------------------------------------------------------------------------- property: never crash, always escape
def _text():
    from hypothesis import strategies as st

    return st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


def _fields():
    """Optional fields of a node, with values of the types the MyST spec gives them."""
    from hypothesis import strategies as st

    text = _text()
    return st.fixed_dictionaries({}, optional={
        "identifier": text, "label": text, "html_id": text, "kind": st.sampled_from(
            ["figure", "table", "note", "warning", "notebook-code", "narrative", "parenthetical", "theorem", "code"]),
        "url": st.one_of(text, st.sampled_from(["/paper", "/nb-1#x", "https://example.org/a", "x.md", "/a.png"])),
        "alt": text, "title": text, "lang": st.sampled_from(["python", "", "bash", "nope", "mermaid"]),
        "depth": st.integers(1, 6), "enumerator": text, "ordered": st.booleans(), "start": st.integers(1, 9),
        "visibility": st.sampled_from(["show", "hide", "remove"]), "class": text, "align": st.sampled_from(["left", "right"]),
        "header": st.booleans(), "resolved": st.booleans(), "remote": st.booleans(), "error": st.booleans(),
        "checked": st.booleans(), "open": st.booleans(), "spread": st.booleans(), "showLineNumbers": st.booleans(),
        "template": text, "columns": st.lists(st.integers(1, 4), min_size=1, max_size=4), "src": text,
    })


def _node_strategy():
    from hypothesis import strategies as st

    text, fields = _text(), _fields()
    kinds = sorted(set(nodes.HANDLERS) - {"html", "raw"})
    leaf = st.builds(lambda k, v, f: {**f, "type": k, "value": v}, st.sampled_from(kinds), text, fields)

    def branch(children):
        return st.builds(lambda k, v, f, c: {**f, "type": k, "value": v, "children": c},
                         st.sampled_from(kinds), text, fields, st.lists(children, max_size=4))
    return st.recursive(leaf, branch, max_leaves=25)


EVIL = ['<script>alert(1)</script>', '"><img src=x onerror=1>', "<b>x</b>"]


def _poison(n: dict, evil: str) -> dict:
    """The node with ``evil`` appended to every text field, recursively."""
    n = dict(n)
    for k in ("value", "alt", "title", "label", "identifier", "html_id", "class", "enumerator", "template", "url"):
        if isinstance(n.get(k), str):
            n[k] = n[k] + evil
    n["children"] = [_poison(c, evil) for c in n.get("children") or []]
    return n


def _check_escaped(tree: dict, evil: str) -> None:
    page = nodes.Page(references=REFS)
    out = nodes.render(_poison(tree, evil), page)
    assert isinstance(out, str)
    well_formed(out)
    assert evil not in out
    assert "<script" not in out and "<img src=x" not in out and "<b>x</b>" not in out
    well_formed(nodes.render_footnotes(page))
    well_formed(nodes.render_bibliography(page))


@pytest.mark.parametrize("kind", sorted(set(nodes.HANDLERS) - {"html", "raw"}))
def test_each_handler_never_crashes_and_escapes_its_text(kind):
    """Every handler, with any combination of valid fields and a text child: well-formed HTML, and
    the page's text (values, titles, alt text, labels, URLs) never reaches the HTML unescaped."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(fields=_fields(), value=_text(), kid=st.sampled_from(["text", "inlineCode", "paragraph", "emphasis"]),
           evil=st.sampled_from(EVIL))
    def check(fields, value, kid, evil):
        child = {"type": kid, "value": value, "children": [{"type": "text", "value": value}]}
        _check_escaped({**fields, "type": kind, "value": value, "children": [child]}, evil)

    check()


def test_renderer_never_crashes_on_any_tree_and_escapes_all_text():
    """Any valid tree of nodes (raw HTML nodes aside, whose job is to pass HTML through)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=_node_strategy(), evil=st.sampled_from(EVIL))
    def check(tree, evil):
        _check_escaped(tree, evil)

    check()


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
    printed = {**emb, "source": {**emb["source"], "label": "out-scores"}}
    assert nodes.number_embeds({"type": "root", "children": [fig, emb, printed]}) == {"fig-curve": "Figure\u00a02"}


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
    assert report["profile"] in ("tiny", "offline", "hub")
    paper = (html_dir / "paper.html").read_text()
    assert paper.count('class="cite"') >= 4 and 'id="cite-ho2020denoising"' in paper
    assert 'class="katex"' in paper and '<span class="eq-number">(1)</span>' in paper
    assert '<a class="xref" href="#tbl-models">Table' in paper and 'id="fn-note"' in paper
    # the notebook shares its chapter's file name and title: the site gives it its own
    demo = (html_dir / "basics-notebook.html").read_text()
    assert "Open in Colab" in demo and "/blob/main/notebooks/basics.ipynb" in demo
    assert "<h1 class=\"page-title\">The Basics — notebook</h1>" in demo and 'id="live-toggle"' in demo
    assert list((html_dir / "build").glob("basics-*.ipynb"))
    assert report["renamed"] == {"basics-1": "basics-notebook"}
    basics = (html_dir / "basics.html").read_text()
    assert 'href="basics-notebook.html" rel="next"' in basics
    # the embed's caption keeps its math (read from the Markdown source), typeset
    assert re.search(r'The curve <span class="math-inline"><(?:math|span class="katex")', basics)
    assert "\\sin" not in basics.split('<span class="katex-mathml">')[0]
    assert (html_dir / "sitemap.xml").exists() and (html_dir / "assets" / "thebe" / "index.js").exists() or \
        not (ROOT / "templates" / "site" / "node_modules" / "thebe").exists()


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


def test_captions_typeset_math_and_alt_text_reads_it_as_unicode():
    """myst drops the $ of an embed's caption: math is found again (bare commands or the source's
    $...$), typeset in the caption and written as Unicode in the alt text; never LaTeX source."""
    bare = "Left: the signal left, \\bar\\alpha_t, for two schedules; erased by t \\approx 400."
    assert nodes.alt_text(bare) == "Left: the signal left, ᾱₜ, for two schedules; erased by t ≈ 400."
    html_ = nodes.caption_html(bare)
    assert "\\bar" not in html_ and html_.count("<math") == 2 and "by t <span" in html_
    assert nodes.alt_text("A $\\mathcal{N}(0, I)$ prior and $x_{ij}^2$") == "A N(0, I) prior and xᵢⱼ²"
    assert nodes.label_to_words("fig-diffusion-loss") == "Figure: diffusion loss"
    from booksite import katex
    from booksite.build import KATEX_DIST

    tex = katex.start(KATEX_DIST.parent)
    if tex is None:
        pytest.skip("node or npm's katex not installed (make site-template)")
    try:
        out = nodes.caption_html("The curve $\\sin(x)$.", nodes.Page(inline_math=tex))
    finally:
        tex.close()
    assert out.startswith('The curve <span class="math-inline"><span class="katex">') and out.endswith("</span>.")
    well_formed(out)


def test_embed_captions_are_read_from_the_markdown_source():
    from booksite.build import embed_captions

    src = "Text.\n\n![The curve $\\sin(x)$ [see](#x).](#fig-curve)\n\n![](#fig-bare)\n"
    assert embed_captions(src) == {"fig-curve": "The curve $\\sin(x)$ [see](#x).", "fig-bare": ""}


def test_machine_paths_are_shortened_in_every_kind_of_output():
    out, page = render(outputs(
        {"output_type": "stream", "name": "stderr",
         "text": "/root/.venv/lib/python3.11/site-packages/peft/tuners/lora.py:12: FutureWarning: x\n"},
        {"output_type": "error", "ename": "OSError", "evalue": "no file /work/main/data/x.npy",
         "traceback": ["File /home/ada/book/genai_lib/text.py:3, in f()"]},
        {"output_type": "execute_result", "data": {"text/plain": {"content": "PosixPath('/tmp/tmpab12/model')"}}}))
    assert "/root/" not in out and "/work/" not in out and "/home/ada" not in out and "/tmp/" not in out
    assert "…/site-packages/peft/tuners/lora.py:12" in out and "…/genai_lib/text.py:3" in out
    assert page.scrubbed_paths == 4
    # URLs and relative paths are left alone
    assert nodes.scrub_paths("https://example.org/root/x and notebooks/x.ipynb") == \
        "https://example.org/root/x and notebooks/x.ipynb"


def test_bibliography_is_alphabetical_and_unnumbered():
    refs = {"cite": {"order": ["z", "a", "v"], "data": {
        "z": {"html": "Zhang, Y. (2020). Z."}, "a": {"html": "Ábel, N. (2019). A."},
        "v": {"html": "von Platen, P. (2022). Diffusers."}}}}
    bib = nodes.render_bibliography(nodes.Page(references=refs))
    assert [m for m in re.findall(r'id="cite-(\w)"', bib)] == ["a", "v", "z"]
    assert "<ol" not in bib


def test_notebook_pages_get_their_own_slugs_and_titles():
    from booksite.build import notebook_names

    pages = {"index": {"location": "/index.md", "frontmatter": {"title": "Home"}},
             "gan": {"location": "/chapters/gan.md", "frontmatter": {"title": "GANs"}},
             "gan-1": {"location": "/notebooks/gan.ipynb", "frontmatter": {"title": "GANs: a game"}},
             "qa": {"location": "/chapters/qa.md", "frontmatter": {"title": "Question answering"}},
             "qa-1": {"location": "/notebooks/qa.ipynb", "frontmatter": {"title": "Question answering"}},
             "solo": {"location": "/notebooks/solo.ipynb", "frontmatter": {"title": "Solo"}}}
    slugs, titles = notebook_names({}, pages)
    assert slugs == {"gan-1": "gan-notebook", "qa-1": "qa-notebook"}
    assert titles == {"qa-1": "Question answering — notebook"}


def test_a_pdf_made_through_typst_is_labelled_pdf(tmp_path):
    b = SiteBuilder(Source(None, tmp_path), tmp_path / "out", quiet=True)
    item = b._download({"format": "typst", "filename": "paper.pdf", "url": "/paper-1.pdf"})
    assert item["format"] == "pdf"
    assert b._download({"format": "docx", "url": "/paper-1.docx"})["format"] == "docx"


# --------------------------------------------------------------------------------- golden HTML, the other branches
# More nodes per handler, one for each branch the snippets above do not take (reviewed by hand like
# them): defaults, fallbacks, ids and classes, hidden and removed content, remote resources, every
# mime type an output can have. Rendered with VARIANT_PAGE().
VARIANT_REFS = {"cite": {"order": ["vaswani2017attention"], "data": {"vaswani2017attention": {
    "label": "vaswani2017attention", "html": "Vaswani, A. (2017). <em>Attention</em>."},
    "nohtml": {"label": "nohtml"}, "quoted": {"label": "quoted", "html": 'Say "hi" & \'bye\' <em>now</em>'}}}}


def VARIANT_PAGE():
    return nodes.Page(references=VARIANT_REFS, embed_numbers={"fig-n": "Figure\u00a05"},
                      embed_captions={"fig-c": "From source $y$"}, page_titles={"nb-2": "Notebook two"},
                      text_asset=lambda p: f"[{p}]")


VARIANTS = {
    'unknown-with-children': ({'type': 'futureNode', 'children': [{'type': 'text', 'value': 'k'}]},
        '<div class="unknown-node">k</div>'),
    'unknown-leaf': ({'type': 'futureLeaf', 'value': '<v>'},
        '&lt;v&gt;'),
    'no-type': ({'value': 'x'},
        'x'),
    'link-external-titled': ({'type': 'link', 'url': 'https://example.org/a?b=1&c', 'title': 'T', 'children': [{'type': 'text', 'value': 'x'}]},
        '<a href="https://example.org/a?b=1&amp;c" rel="noopener" class="external" title="T">x</a>'),
    'link-no-text': ({'type': 'link', 'url': '/nb-1#fig-a', 'children': []},
        '<a href="nb-1.html#fig-a" class="internal">/nb-1#fig-a</a>'),
    'link-asset': ({'type': 'link', 'url': '/paper-1.docx', 'children': [{'type': 'text', 'value': 'docx'}]},
        '<a href="build/paper-1.docx" class="internal">docx</a>'),
    'link-missing-source': ({'type': 'link', 'url': 'chapters/gan.md#sec', 'children': [{'type': 'text', 'value': 'GANs'}]},
        '<span class="link-missing" title="Not part of this book yet: chapters/gan.md#sec">GANs</span>'),
    'link-mailto': ({'type': 'link', 'url': 'mailto:a@b.org', 'children': [{'type': 'text', 'value': 'mail'}]},
        '<a href="mailto:a@b.org" class="internal">mail</a>'),
    'block-remove': ({'type': 'block', 'visibility': 'remove', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'x'}]}]},
        ''),
    'block-md-cell': ({'type': 'block', 'kind': 'notebook-content', 'identifier': 'c1', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'md'}]}]},
        '<div id="c1" class="cell md-cell"><p>md</p></div>'),
    'block-plain': ({'type': 'block', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<div class="block"><p>b</p></div>'),
    'block-code-label': ({'type': 'block', 'kind': 'notebook-code', 'label': 'fig-noise-level', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/q.png'}}}}]}]},
        '<div class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/q.png" alt="Figure: noise level"></div></div></div>'),
    'block-code-suffix': ({'type': 'block', 'kind': 'notebook-code', 'identifier': 'cell-code', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/q.png'}}}}]}]},
        '<div id="cell-code" class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/q.png" alt="Figure produced by code cell 1"></div></div></div>'),
    'heading-deep-unnumbered': ({'type': 'heading', 'depth': 9, 'enumerator': '4', 'enumerated': False, 'children': [{'type': 'text', 'value': 'Deep'}]},
        '<h6>Deep</h6>'),
    'heading-zero': ({'type': 'heading', 'depth': 0, 'identifier': 'z', 'enumerator': '2.1', 'children': [{'type': 'text', 'value': 'Z'}]},
        '<h1 id="z"><span class="heading-number">2.1</span> Z<a class="anchor" href="#z" aria-label="Link to this section">#</a></h1>'),
    'list-start-1': ({'type': 'list', 'ordered': True, 'start': 1, 'children': [{'type': 'listItem', 'children': [{'type': 'text', 'value': 'a'}]}]},
        '<ol><li>a</li></ol>'),
    'list-unordered-spread': ({'type': 'list', 'ordered': False, 'children': [{'type': 'listItem', 'spread': True, 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'p1'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'p2'}]}]}]},
        '<ul><li><p>p1</p><p>p2</p></li></ul>'),
    'list-item-unchecked-tight': ({'type': 'listItem', 'checked': False, 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<li class="task"><input type="checkbox" disabled> <p>a</p><p>b</p></li>'),
    'code-executable': ({'type': 'code', 'lang': 'ipython3', 'executable': True, 'identifier': 'c', 'value': 'print(1)'},
        '<div id="c" class="code-block cell-input"><div class="code-wrap"><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-ipython3"><span class="nb">print</span><span class="p">(</span><span class="mi">1</span><span class="p">)</span></code></pre></div></div>'),
    'code-lines': ({'type': 'code', 'lang': 'sh', 'value': 'ls\ncd x\npwd', 'showLineNumbers': True, 'startingLineNumber': 5, 'emphasizeLines': [2]},
        '<div class="code-block"><div class="code-wrap"><span class="code-lang">sh</span><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-sh"><span class="line"><span class="lineno">5</span>ls</span>\n<span class="line hl"><span class="lineno">6</span><span class="nb">cd</span><span class="w"> </span>x</span>\n<span class="line"><span class="lineno">7</span><span class="nb">pwd</span></span></code></pre></div></div>'),
    'code-emph-only': ({'type': 'code', 'lang': '', 'value': 'a\nb', 'emphasizeLines': [1]},
        '<div class="code-block"><div class="code-wrap"><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-"><span class="line hl">a</span>\n<span class="line">b</span></code></pre></div></div>'),
    'code-yml': ({'type': 'code', 'lang': 'yml', 'value': 'a: 1'},
        '<div class="code-block"><div class="code-wrap"><span class="code-lang">yml</span><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-yml"><span class="nt">a</span><span class="p">:</span><span class="w"> </span><span class="l l-Scalar l-Scalar-Plain">1</span></code></pre></div></div>'),
    'code-mermaid': ({'type': 'code', 'lang': 'mermaid', 'value': 'A-->B'},
        '<pre class="mermaid-source">A--&gt;B</pre>'),
    'code-hidden': ({'type': 'code', 'lang': 'py', 'value': 'x', 'visibility': 'hide'},
        '<details class="hidden-code"><summary>Show code</summary><div class="code-block"><div class="code-wrap"><span class="code-lang">py</span><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-py"><span class="n">x</span></code></pre></div></div></details>'),
    'math-mathml': ({'type': 'math', 'value': 'x^2'},
        '<div class="math-display"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math></div>'),
    'inline-math-mathml': ({'type': 'inlineMath', 'value': 'a_1'},
        '<span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msub><mi>a</mi><mn>1</mn></msub></mrow></math></span>'),
    'admonition-dropdown': ({'type': 'admonition', 'kind': 'warning', 'class': 'simple dropdown', 'identifier': 'w', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<details id="w" class="admonition warning"><summary class="admonition-title">Warning</summary><div class="admonition-body"><p>b</p></div></details>'),
    'admonition-default': ({'type': 'admonition', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<aside class="admonition note" role="note"><div class="admonition-title">Note</div><div class="admonition-body"><p>b</p></div></aside>'),
    'container-table': ({'type': 'container', 'kind': 'table', 'children': [{'type': 'legend', 'children': [{'type': 'text', 'value': 'L'}]}, {'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'C1'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'C2'}]}]}, {'type': 'table', 'children': []}]},
        '<figure class="container table-container"><div class="legend">L</div><figcaption><p>C1</p><p>C2</p></figcaption><div class="table-wrap"><table><tbody></tbody></table></div></figure>'),
    'container-default': ({'type': 'container', 'children': [{'type': 'image', 'url': '/i.png'}]},
        '<figure class="container figure-container"><img src="build/i.png" alt="" loading="lazy"></figure>'),
    'image-full': ({'type': 'image', 'url': '/a.png', 'urlOptimized': '/a.webp', 'alt': 'A', 'title': 'T', 'width': '10px', 'height': '20px', 'align': 'center', 'identifier': 'im'},
        '<img id="im" src="build/a.webp" alt="A" title="T" style="width:10px;height:20px" class="align-center" loading="lazy">'),
    'image-relative': ({'type': 'image', 'url': 'pics/a.png'},
        '<img src="pics/a.png" alt="" loading="lazy">'),
    'image-remote-noalt': ({'type': 'image', 'url': '//cdn.example.org/a.png'},
        '<a class="remote-image" href="//cdn.example.org/a.png" rel="noopener">//cdn.example.org/a.png</a>'),
    'table-no-head': ({'type': 'table', 'identifier': 't1', 'children': [{'type': 'tableRow', 'children': [{'type': 'tableCell', 'children': [{'type': 'text', 'value': 'a'}]}, {'type': 'tableCell', 'header': True, 'children': [{'type': 'text', 'value': 'b'}]}]}, {'type': 'tableRow', 'children': [{'type': 'tableCell', 'header': True, 'children': [{'type': 'text', 'value': 'c'}]}]}]},
        '<div class="table-wrap"><table id="t1"><tbody><tr><td>a</td><th>b</th></tr><tr><th>c</th></tr></tbody></table></div>'),
    'table-empty-row': ({'type': 'table', 'children': [{'type': 'tableRow', 'children': []}]},
        '<div class="table-wrap"><table><tbody><tr></tr></tbody></table></div>'),
    'cell-span-header': ({'type': 'tableCell', 'header': True, 'colspan': 2, 'rowspan': 3, 'children': [{'type': 'text', 'value': 'h'}]},
        '<th colspan="2" rowspan="3">h</th>'),
    'cell-hashes': ({'type': 'tableCell', 'children': [{'type': 'text', 'value': '0123456789abcdef x 0123456789abcde 0123456789ABCDEF01 /0123456789abcdef0 a0123456789abcdef '}]},
        '<td><abbr class="hash" title="0123456789abcdef">0123456789…</abbr> x 0123456789abcde 0123456789ABCDEF01 /0123456789abcdef0 <abbr class="hash" title="a0123456789abcdef">a012345678…</abbr> </td>'),
    'cite-narrative': ({'type': 'citeGroup', 'kind': 'narrative', 'children': [{'type': 'cite', 'identifier': 'vaswani2017attention', 'children': []}, {'type': 'cite', 'label': 'b', 'children': [{'type': 'text', 'value': 'B'}]}]},
        '<span class="cite-group"><a class="cite" href="#cite-vaswani2017attention" title="Vaswani, A. (2017). Attention.">vaswani2017attention</a>, <span class="cite cite-missing" title="Reference not found: b">B</span></span>'),
    'xref-template': ({'type': 'crossReference', 'identifier': 'eq-1', 'template': 'Eq. {number}', 'enumerator': '7', 'children': []},
        '<a class="xref" href="#eq-1">Eq. 7</a>'),
    'xref-unresolved-url': ({'type': 'crossReference', 'identifier': 'x', 'resolved': False, 'url': '/p', 'remote': True, 'children': [{'type': 'text', 'value': 'X'}]},
        '<a class="xref" href="p.html#x">X</a>'),
    'xref-page': ({'type': 'crossReference', 'identifier': 'x', 'url': '/basics', 'remote': True, 'kind': 'page', 'children': [{'type': 'text', 'value': 'Basics'}]},
        '<a class="xref" href="basics.html">Basics</a>'),
    'xref-block-table': ({'type': 'crossReference', 'identifier': 'tbl-scores', 'kind': 'block:notebook-code', 'children': [{'type': 'text', 'value': 'Notebook-code'}]},
        '<a class="xref" href="#tbl-scores">the table</a>'),
    'xref-block-output': ({'type': 'crossReference', 'label': 'out-x', 'identifier': 'out-x', 'kind': 'block:notebook-code', 'children': []},
        '<a class="xref" href="#out-x">the output</a>'),
    'xref-block-fig': ({'type': 'crossReference', 'identifier': 'fig-q', 'html_id': 'fig-q', 'kind': 'block:notebook-content', 'children': [{'type': 'text', 'value': 'notebook-content'}]},
        '<a class="xref" href="#fig-q">the figure</a>'),
    'xref-block-named': ({'type': 'crossReference', 'identifier': 'fig-q', 'kind': 'block:notebook-code', 'children': [{'type': 'text', 'value': 'this plot'}]},
        '<a class="xref" href="#fig-q">this plot</a>'),
    'footnote-ref-label': ({'type': 'footnoteReference', 'label': 'lbl'},
        '<sup class="footnote-ref" id="fnref-lbl"><a href="#fn-lbl">lbl</a></sup>'),
    'details-closed': ({'type': 'details', 'identifier': 'd', 'children': [{'type': 'text', 'value': 'x'}]},
        '<details id="d" class="dropdown">x</details>'),
    'tabset-selected': ({'type': 'tabSet', 'identifier': 'ts', 'children': [{'type': 'tabItem', 'children': [{'type': 'text', 'value': 'a'}]}, {'type': 'text', 'value': 'stray'}, {'type': 'tabItem', 'selected': True, 'title': 'Two', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<div id="ts" class="tab-set"><div class="tab-labels" role="tablist"><button type="button" role="tab" class="tab-label" aria-selected="false">Tab 1</button><button type="button" role="tab" class="tab-label active" aria-selected="true">Two</button></div><div role="tabpanel" class="tab-panel" hidden>a</div><div role="tabpanel" class="tab-panel">b</div></div>'),
    'card-plain': ({'type': 'card', 'identifier': 'k', 'children': [{'type': 'text', 'value': 'c'}]},
        '<div id="k" class="card">c</div>'),
    'grid-default': ({'type': 'grid', 'children': [{'type': 'text', 'value': 'g'}]},
        '<div class="grid" style="--grid-cols:3">g</div>'),
    'grid-int': ({'type': 'grid', 'columns': 4, 'children': [{'type': 'text', 'value': 'g'}]},
        '<div class="grid" style="--grid-cols:4">g</div>'),
    'iframe-local': ({'type': 'iframe', 'src': '/demo', 'width': '80%'},
        '<iframe src="demo.html" width="80%" loading="lazy"></iframe>'),
    'iframe-local-default': ({'type': 'iframe', 'src': 'x.html'},
        '<iframe src="x.html" width="100%" loading="lazy"></iframe>'),
    'proof-titled-unnumbered': ({'type': 'proof', 'kind': 'lemma-like', 'enumerator': '2', 'enumerated': False, 'identifier': 'p', 'children': [{'type': 'admonitionTitle', 'children': [{'type': 'text', 'value': 'Key'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<div id="p" class="proof lemma-like"><div class="proof-title">Lemma like (Key)</div><p>b</p></div>'),
    'proof-no-kind': ({'type': 'proof', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]},
        '<div class="proof proof"><div class="proof-title">Proof</div><p>b</p></div>'),
    'solution-untitled': ({'type': 'solution', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 's'}]}]},
        '<div class="proof solution"><p>s</p></div>'),
    'embed-bare': ({'type': 'embed', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'e'}]}]},
        '<div class="embed"><p>e</p></div>'),
    'embed-label-only': ({'type': 'embed', 'label': 'fig-my-plot', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'error', 'ename': 'E', 'evalue': 'v'}}, 'junk', {'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/p.png'}}}}]}]},
        '<div class="embed"><div class="outputs"><div class="output image"><img src="build/p.png" alt="Figure: my plot"></div></div></div>'),
    # a cell that reports by printing: its stdout is what the chapter embeds (stderr, errors, progress widgets never)
    'embed-prints-only': ({'type': 'embed', 'label': 'out-score', 'children': [{'type': 'outputs', 'children': [
        {'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 'score 0.9\n'}},
        {'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stderr', 'text': 'warning\n'}},
        {'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/plain': 'train: 0%|', 'application/vnd.jupyter.widget-view+json': {'model_id': 'w'}}}},
        {'type': 'output', 'jupyter_data': {'output_type': 'error', 'ename': 'E', 'evalue': 'v'}},
        {'type': 'output', 'jupyter_data': {'output_type': 'stream', 'text': 'done\n'}}]}]},
        '<div class="embed"><div class="outputs"><pre class="output stream stdout">score 0.9\n</pre><pre class="output stream stdout">done\n</pre></div></div>'),
    # a table with a line printed beside it: the table only
    'embed-table-and-print': ({'type': 'embed', 'label': 'tbl-t', 'children': [{'type': 'outputs', 'children': [
        {'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/plain': 't'}}},
        {'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 'aside\n'}}]}]},
        '<div class="embed"><div class="outputs"><pre class="output text">t</pre></div></div>'),
    'embed-numbered': ({'type': 'embed', 'alt': 'Caption $x$.', 'source': {'url': '/nb-2', 'label': 'fig-n', 'kind': 'Notebook'}, 'children': []},
        '<figure id="fig-n" class="embed"><figcaption><span class="caption-number">Figure\xa05:</span> Caption <span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>x</mi></mrow></math></span>. <a class="embed-source" href="nb-2.html#fig-n">(source: Notebook two)</a></figcaption></figure>'),
    'embed-not-notebook': ({'type': 'embed', 'source': {'url': '/ch', 'label': 'fig-c', 'kind': 'Article', 'title': 'Ch'}, 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'e'}]}]},
        '<figure class="embed"><p>e</p><figcaption>From source <span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>y</mi></mrow></math></span></figcaption></figure>'),
    'raw-html': ({'type': 'raw', 'lang': 'html', 'value': '<i>r</i>'},
        '<i>r</i>'),
    'div-id': ({'type': 'div', 'identifier': 'dv', 'class': 'a b', 'children': [{'type': 'text', 'value': 'd'}]},
        '<div id="dv" class="a b">d</div>'),
    'para-with-id': ({'type': 'paragraph', 'identifier': 'pp', 'html_id': 'pid', 'class': 'lead', 'children': [{'type': 'text', 'value': 'p'}]},
        '<p id="pid" class="lead">p</p>'),
    'output-children-only': ({'type': 'output', 'children': [{'type': 'text', 'value': 'c'}]},
        '<div class="output">c</div>'),
    'output-unknown-kind-children': ({'type': 'output', 'jupyter_data': {'output_type': 'weird'}, 'children': [{'type': 'text', 'value': 'c'}]},
        '<div class="output">c</div>'),
    'output-unknown-kind': ({'type': 'output', 'jupyter_data': {'output_type': 'weird'}},
        ''),
    'output-stream-default-name': ({'type': 'output', 'jupyter_data': {'output_type': 'stream', 'text': None}},
        '<pre class="output stream stdout"></pre>'),
    'output-error-no-tb': ({'type': 'output', 'jupyter_data': {'output_type': 'error', 'ename': 'KeyError', 'evalue': "'k' at /work/x/y.py"}},
        '<div class="output error"><div class="error-title">KeyError: &#x27;k&#x27; at …/y.py</div><pre>KeyError: &#x27;k&#x27; at …/y.py</pre></div>'),
    'output-error-str-tb': ({'type': 'output', 'jupyter_data': {'output_type': 'error', 'traceback': 'Trace\x1b[0m /tmp/a/b'}},
        '<div class="output error"><div class="error-title">Error: </div><pre>Trace …/b</pre></div>'),
    'output-update': ({'type': 'output', 'jupyter_data': {'output_type': 'update_display_data', 'data': {'text/plain': ['a', 'b']}}},
        '<pre class="output text">ab</pre>'),
    'output-empty-bundle': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {}}},
        ''),
    'outputs-empty': ({'type': 'outputs', 'identifier': 'o', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {}}}]},
        ''),
    'outputs-id': ({'type': 'outputs', 'identifier': 'o', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 'x'}}]},
        '<div id="o" class="outputs"><pre class="output stream stdout">x</pre></div>'),
    'widget-with-image': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/vnd.jupyter.widget-view+json': {}, 'image/svg+xml': {'path': '/w.svg'}, 'image/png': {'path': '/w.png'}, 'text/plain': '  5%|█ | 1/20 [00:01<00:20, 1.00it/s]'}}},
        '<div class="output widget-placeholder" role="note"><div class="output image"><img src="build/w.png" alt="Figure"></div><div class="widget-note"><strong>Interactive control.</strong> This widget needs a live Python kernel: open the notebook in Jupyter, Colab or Binder to use it.<code>  5%|█ | 1/20 [00:01&lt;00:20, 1.00it/s]</code></div></div>'),
    'video': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'video/mp4': {'path': '/v.mp4'}, 'text/plain': 'v'}}},
        '<div class="output video"><video controls preload="metadata" src="build/v.mp4"></video></div>'),
    'audio-before-html': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/html': '<b>h</b>', 'audio/mpeg': 'QUJD\nREVG'}}},
        '<div class="output audio"><audio controls preload="metadata" src="data:audio/mpeg;base64,QUJDREVG"></audio></div>'),
    'png-size': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': 'iVBO\nRw=='}, 'metadata': {'image/png': {'width': 320.7, 'height': '9'}}}},
        '<div class="output image"><img src="data:image/png;base64,iVBORw==" alt="Figure" width="320"></div>'),
    'svg-path': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/svg+xml': {'path': '/s.svg'}}}},
        '<div class="output image"><img src="build/s.svg" alt="Figure"></div>'),
    'svg-inline-doctype': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/svg+xml': ['<!DOCTYPE svg PUBLIC "x">', '<svg></svg>']}}},
        '<div class="output image svg"><svg></svg></div>'),
    'gif-over-markdown': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/markdown': '# no', 'image/gif': {'content': 'R0lG'}}}},
        '<div class="output image"><img src="data:image/gif;base64,R0lG" alt="Figure"></div>'),
    'markdown-remote-img': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/markdown': '![a](https://x.org/a.png) [l](/p)'}}},
        '<div class="output markdown"><p><img src="data:," alt="a" /> <a href="/p">l</a></p>\n</div>'),
    'latex-display': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/latex': ' $$x$$ '}}},
        '<div class="output latex"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow><mi>x</mi></mrow></math></div>'),
    'latex-bracket': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/latex': '\\[y\\]'}}},
        '<div class="output latex"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow><mi>y</mi></mrow></math></div>'),
    'json-invalid': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/json': '{bad'}}},
        '<pre class="output json">{bad</pre>'),
    'json-list': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/json': {'content': '[1,{"b":2}]'}}}},
        '<pre class="output json">[\n  1,\n  {\n    &quot;b&quot;: 2\n  }\n]</pre>'),
    'plain-ansi': ({'type': 'output', 'jupyter_data': {'output_type': 'execute_result', 'data': {'text/plain': '\x1b[1mB\x1b[22m\x1b[3mI\x1b[23m\x1b[92mG\x1b[39mN'}}},
        '<pre class="output text"><span class="ansi-bold">B</span><span class="ansi-italic">I</span><span class="ansi-fg-10">G</span>N</pre>'),
    'html-remote': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/html': '<img alt=\'a\' src="https://x.org/i.png"><link rel=stylesheet href=\'//cdn.x/s.css\'><script src=http://x.org/j.js></script><img src=\'/local.png\'>'}}},
        '<div class="output html"><img alt=\'a\' src="data:,"><!-- remote resource removed --><!-- remote resource removed --><img src=\'/local.png\'></div>'),
    'content-none-path-none': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/plain': {'content': None}}}},
        '<pre class="output text"></pre>'),
    'widget-jpeg-no-text': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/vnd.jupyter.widget-view+json': {}, 'image/jpeg': {'content': 'AAAA'}}}},
        '<div class="output widget-placeholder" role="note"><div class="output image"><img src="data:image/jpeg;base64,AAAA" alt="Figure"></div><div class="widget-note"><strong>Interactive control.</strong> This widget needs a live Python kernel: open the notebook in Jupyter, Colab or Binder to use it.<code></code></div></div>'),
    'widget-svg-text-file': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/vnd.jupyter.widget-view+json': {}, 'image/svg+xml': {'path': '/w.svg'}, 'text/plain': {'path': '/w.txt'}}}},
        '<div class="output widget-placeholder" role="note"><div class="output image"><img src="build/w.svg" alt="Figure"></div><div class="widget-note"><strong>Interactive control.</strong> This widget needs a live Python kernel: open the notebook in Jupyter, Colab or Binder to use it.<code>[/w.txt]</code></div></div>'),
    'widget-progress-bar': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'application/vnd.jupyter.widget-view+json': {}, 'text/plain': '100%|##########| 5/5 [00:01<00:00, 4.9it/s]'}}},
        ''),
    'png-width-height': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/p.png'}}, 'metadata': {'image/png': {'width': 3, 'height': 4.5}}}},
        '<div class="output image"><img src="build/p.png" alt="Figure" width="3" height="4"></div>'),
    'svg-path-and-content': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/svg+xml': {'path': '/s.svg', 'content': '<svg>c</svg>'}}}},
        '<div class="output image svg"><svg>c</svg></div>'),
    'audio-file': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'audio/wav': {'path': '/a.wav'}}}},
        '<div class="output audio"><audio controls preload="metadata" src="build/a.wav"></audio></div>'),
    'video-inline': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'video/webm': {'content': 'AAAA'}}}},
        '<div class="output video"><video controls preload="metadata" src="data:video/webm;base64,AAAA"></video></div>'),
    'latex-capital': ({'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'text/latex': '$$X^2$$'}}},
        '<div class="output latex"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow><msup><mi>X</mi><mn>2</mn></msup></mrow></math></div>'),
    # a citation myst flags as an error stays unlinked even when its reference exists; a reference without
    # formatted text gives an empty tooltip; quotes in the reference's text are escaped inside the attribute
    'cite-error-but-known': ({'type': 'cite', 'label': 'vaswani2017attention', 'error': True, 'children': [{'type': 'text', 'value': 'V'}]},
        '<span class="cite cite-missing" title="Reference not found: vaswani2017attention">V</span>'),
    'cite-no-html': ({'type': 'cite', 'label': 'nohtml', 'children': [{'type': 'text', 'value': 'N'}]},
        '<a class="cite" href="#cite-nohtml" title="">N</a>'),
    'cite-quoted': ({'type': 'cite', 'label': 'quoted', 'children': [{'type': 'text', 'value': 'Q'}]},
        '<a class="cite" href="#cite-quoted" title="Say &quot;hi&quot; &amp; &#x27;bye&#x27; now">Q</a>'),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_branch_renders_its_golden_html(name):
    node, expected = VARIANTS[name]
    out = nodes.render(node, VARIANT_PAGE())
    assert out == expected
    well_formed(out)


# rendered on a page with its own inline-math typesetter and page titles; children that need the page
# (links) show that a handler hands the page on
L = {"type": "link", "url": "/p", "children": [t("l")]}
MORE_VARIANTS = {
    'caption-link': ({'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}]},
        '<figcaption><a href="p.html" class="internal">l</a></figcaption>'),
    'caption-two-children': ({'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}, {'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<figcaption><p>a</p><a href="p.html" class="internal">l</a></figcaption>'),
    'details-link': ({'type': 'details', 'open': True, 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<details open class="dropdown"><a href="p.html" class="internal">l</a></details>'),
    'output-children-link': ({'type': 'output', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<div class="output"><a href="p.html" class="internal">l</a></div>'),
    'output-unknown-kind-link': ({'type': 'output', 'jupyter_data': {'output_type': 'weird'}, 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<div class="output"><a href="p.html" class="internal">l</a></div>'),
    'output-stream-and-children': ({'type': 'output', 'jupyter_data': {'output_type': 'stream', 'name': 'stdout', 'text': 's'}, 'children': [{'type': 'text', 'value': 'c'}]},
        '<pre class="output stream stdout">s</pre>'),
    'output-stream-no-text': ({'type': 'output', 'jupyter_data': {'output_type': 'stream'}},
        '<pre class="output stream stdout"></pre>'),
    'output-error-bare': ({'type': 'output', 'jupyter_data': {'output_type': 'error'}},
        '<div class="output error"><div class="error-title">Error: </div><pre>Error: </pre></div>'),
    'output-error-list-tb': ({'type': 'output', 'jupyter_data': {'output_type': 'error', 'ename': 'E', 'evalue': 'v', 'traceback': ['a', 'b']}},
        '<div class="output error"><div class="error-title">E: v</div><pre>a\nb</pre></div>'),
    'image-no-url': ({'type': 'image'},
        '<img src="" alt="" loading="lazy">'),
    'image-http-alt': ({'type': 'image', 'url': 'http://x.org/a.png', 'alt': 'A plot'},
        '<a class="remote-image" href="http://x.org/a.png" rel="noopener">A plot</a>'),
    'iframe-no-src': ({'type': 'iframe'},
        '<iframe src="" width="100%" loading="lazy"></iframe>'),
    'iframe-http': ({'type': 'iframe', 'src': 'http://x.org/e'},
        '<p class="iframe-link"><a href="http://x.org/e" rel="noopener">Open the embedded page: http://x.org/e</a></p>'),
    'iframe-scheme-relative': ({'type': 'iframe', 'src': '//x.org/e'},
        '<p class="iframe-link"><a href="//x.org/e" rel="noopener">Open the embedded page: //x.org/e</a></p>'),
    'embed-in-labelled-cell': ({'type': 'block', 'kind': 'notebook-code', 'label': 'fig-outer', 'children': [{'type': 'embed', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]}, {'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]},
        '<div class="cell code-cell"><div class="embed"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure: outer"></div></div></div><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure: outer"></div></div></div>'),
    'embed-unlabelled-notebook': ({'type': 'embed', 'source': {'url': '/nb-9', 'kind': 'Notebook'}, 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'e'}]}]},
        '<figure class="embed"><p>e</p><figcaption> <a class="embed-source" href="nb-9.html">(source: notebook)</a></figcaption></figure>'),
    'embed-by-slug': ({'type': 'embed', 'source': {'url': '/other', 'slug': 'nb-2', 'kind': 'Notebook', 'title': 'T'}, 'children': []},
        '<figure class="embed"><figcaption> <a class="embed-source" href="other.html">(source: Notebook two)</a></figcaption></figure>'),
    'embed-caption-typeset': ({'type': 'embed', 'alt': 'A $x$ <b>', 'children': []},
        '<figure class="embed"><figcaption>A <span class="math-inline"><k>x</k></span> &lt;b&gt;</figcaption></figure>'),
    'embed-url-title': ({'type': 'embed', 'source': {'url': '/Xnb/', 'kind': 'Notebook', 'title': 'T'}, 'children': []},
        '<figure class="embed"><figcaption> <a class="embed-source" href="Xnb.html">(source: Ex notebook)</a></figcaption></figure>'),
    'code-no-value': ({'type': 'code', 'lang': 'text'},
        '<div class="code-block"><div class="code-wrap"><span class="code-lang">text</span><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-text"></code></pre></div></div>'),
    'code-trailing-spaces': ({'type': 'code', 'value': 'a  '},
        '<div class="code-block"><div class="code-wrap"><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-">a  </code></pre></div></div>'),
    'code-trailing-x': ({'type': 'code', 'value': 'aX'},
        '<div class="code-block"><div class="code-wrap"><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-">aX</code></pre></div></div>'),
    'code-numbered-from-1': ({'type': 'code', 'value': 'a\nb', 'showLineNumbers': True},
        '<div class="code-block"><div class="code-wrap"><button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button><pre class="highlight"><code class="language-"><span class="line"><span class="lineno">1</span>a</span>\n<span class="line"><span class="lineno">2</span>b</span></code></pre></div></div>'),
    'footnote-ref-bare': ({'type': 'footnoteReference'},
        '<sup class="footnote-ref" id="fnref-"><a href="#fn-"></a></sup>'),
    'proof-links': ({'type': 'proof', 'kind': 'theorem', 'children': [{'type': 'admonitionTitle', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}, {'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<div class="proof theorem"><div class="proof-title">Theorem (<a href="p.html" class="internal">l</a>)</div><a href="p.html" class="internal">l</a></div>'),
    'link-no-url': ({'type': 'link', 'children': [{'type': 'text', 'value': 'x'}]},
        '<a href="" class="internal">x</a>'),
    'block-link': ({'type': 'block', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<div class="block"><a href="p.html" class="internal">l</a></div>'),
    'cells-counted': ({'type': 'root', 'children': [{'type': 'block', 'kind': 'notebook-code', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]}, {'type': 'block', 'kind': 'notebook-code', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}], 'identifier': 'fig-by-id'}, {'type': 'block', 'kind': 'notebook-code', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]}]},
        '<div class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure produced by code cell 1"></div></div></div><div id="fig-by-id" class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure: by id"></div></div></div><div class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure produced by code cell 3"></div></div></div>'),
    'cell-in-embed': ({'type': 'embed', 'alt': 'Cap', 'children': [{'type': 'block', 'kind': 'notebook-code', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}], 'label': 'fig-in'}, {'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]},
        '<figure class="embed"><div class="cell code-cell"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Figure: in"></div></div></div><div class="outputs"><div class="output image"><img src="build/i.png" alt="Cap"></div></div><figcaption>Cap</figcaption></figure>'),
    'table-container-links': ({'type': 'container', 'kind': 'table', 'children': [{'type': 'caption', 'children': [{'type': 'paragraph', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}]}, {'type': 'table', 'children': [{'type': 'tableRow', 'children': [{'type': 'tableCell', 'header': True, 'children': [{'type': 'text', 'value': 'h1'}]}]}, {'type': 'tableRow', 'children': [{'type': 'tableCell', 'header': True, 'children': [{'type': 'text', 'value': 'h2'}]}]}, {'type': 'tableRow', 'children': [{'type': 'tableCell', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}]}]}]},
        '<figure class="container table-container"><figcaption><a href="p.html" class="internal">l</a></figcaption><div class="table-wrap"><table><thead><tr><th>h1</th></tr><tr><th>h2</th></tr></thead><tbody><tr><td><a href="p.html" class="internal">l</a></td></tr></tbody></table></div></figure>'),
    'card-link-child': ({'type': 'card', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]},
        '<div class="card"><a href="p.html" class="internal">l</a></div>'),
    'link-http': ({'type': 'link', 'url': 'http://x.org', 'children': [{'type': 'text', 'value': 'h'}]},
        '<a href="http://x.org" rel="noopener" class="external">h</a>'),
    'heading-defaults': ({'type': 'heading', 'identifier': 'i', 'html_id': 'h', 'children': [{'type': 'text', 'value': 'T'}]},
        '<h2 id="h">T<a class="anchor" href="#h" aria-label="Link to this section">#</a></h2>'),
    'lists-with-links': ({'type': 'root', 'children': [{'type': 'list', 'ordered': True, 'children': [{'type': 'listItem', 'children': [{'type': 'paragraph', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}]}]}, {'type': 'list', 'children': [{'type': 'listItem', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'x'}]}], 'spread': True}, {'type': 'listItem', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'a'}]}, {'type': 'paragraph', 'children': [{'type': 'text', 'value': 'b'}]}]}, {'type': 'listItem', 'children': [{'type': 'paragraph', 'children': [{'type': 'text', 'value': 'one'}]}], 'spread': True}]}]},
        '<ol><li><a href="p.html" class="internal">l</a></li></ol><ul><li><a href="p.html" class="internal">l</a><p>x</p></li><li><p>a</p><p>b</p></li><li>one</li></ul>'),
    'cite-group-two': ({'type': 'citeGroup', 'kind': 'parenthetical', 'children': [{'type': 'cite', 'label': 'a', 'children': [{'type': 'text', 'value': 'A'}]}, {'type': 'cite', 'label': 'b', 'children': [{'type': 'text', 'value': 'B'}]}]},
        '<span class="cite-group">(<span class="cite cite-missing" title="Reference not found: a">A</span>; <span class="cite cite-missing" title="Reference not found: b">B</span>)</span>'),
    'xref-math-child': ({'type': 'crossReference', 'identifier': 'x', 'children': [{'type': 'inlineMath', 'value': 'x'}]},
        '<a class="xref" href="#x"><span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>x</mi></mrow></math></span></a>'),
    'xref-number-only': ({'type': 'crossReference', 'identifier': 'i', 'html_id': 'h', 'enumerator': '7', 'children': []},
        '<a class="xref" href="#h">7</a>'),
    'xref-template-no-number': ({'type': 'crossReference', 'template': 'Eq. {number} %s', 'children': []},
        '<a class="xref" href="">Eq.  </a>'),
    'xref-block-label': ({'type': 'crossReference', 'identifier': 'fig-id', 'label': 'tbl-lab', 'kind': 'block:notebook-code', 'children': []},
        '<a class="xref" href="#fig-id">the table</a>'),
    'xref-block-bare': ({'type': 'crossReference', 'kind': 'block:notebook-code', 'children': []},
        '<a class="xref" href="">the output</a>'),
    'tabset-link': ({'type': 'tabSet', 'children': [{'type': 'tabItem', 'title': 'A', 'children': [{'type': 'link', 'url': '/p', 'children': [{'type': 'text', 'value': 'l'}]}]}]},
        '<div class="tab-set"><div class="tab-labels" role="tablist"><button type="button" role="tab" class="tab-label active" aria-selected="true">A</button></div><div role="tabpanel" class="tab-panel"><a href="p.html" class="internal">l</a></div></div>'),
    # nodes without the field myst always writes (value, title): empty, never "None"
    'unknown-leaf-no-value': ({'type': 'futureLeaf'},
        ''),
    'text-no-value': ({'type': 'text'},
        ''),
    'inline-code-no-value': ({'type': 'inlineCode'},
        '<code></code>'),
    'si-no-value': ({'type': 'si'},
        '<span class="si"></span>'),
    'directive-error-no-value': ({'type': 'mystDirective'},
        '<pre class="myst-unparsed"></pre>'),
    'inline-math-no-value': ({'type': 'inlineMath'},
        '<span class="math-inline"><code class="math-source"></code></span>'),
    'cite-bare': ({'type': 'cite'},
        '<span class="cite cite-missing" title="Reference not found: "></span>'),
    # children that need the page (links), handed on by each handler
    'unknown-link-child': ({'type': 'futureNode', 'children': [L]},
        '<div class="unknown-node"><a href="p.html" class="internal">l</a></div>'),
    'abbr-no-title-link': ({'type': 'abbreviation', 'children': [L]},
        '<abbr title=""><a href="p.html" class="internal">l</a></abbr>'),
    'list-item-tight-link': ({'type': 'listItem', 'children': [L]},
        '<li><a href="p.html" class="internal">l</a></li>'),
    'admonition-links': ({'type': 'admonition', 'kind': 'tip', 'children': [{'type': 'admonitionTitle', 'children': [L]}, L]},
        '<aside class="admonition tip" role="note"><div class="admonition-title"><a href="p.html" class="internal">l</a></div><div class="admonition-body"><a href="p.html" class="internal">l</a></div></aside>'),
    'admonition-dropdown-link': ({'type': 'admonition', 'class': 'dropdown', 'children': [L]},
        '<details class="admonition note"><summary class="admonition-title">Note</summary><div class="admonition-body"><a href="p.html" class="internal">l</a></div></details>'),
    'cite-link-child': ({'type': 'cite', 'label': 'k', 'children': [L]},
        '<span class="cite cite-missing" title="Reference not found: k"><a href="p.html" class="internal">l</a></span>'),
    'grid-link': ({'type': 'grid', 'columns': [1, 2], 'children': [L]},
        '<div class="grid" style="--grid-cols:2"><a href="p.html" class="internal">l</a></div>'),
    # a page in a folder whose name has a dot is a page, not a file
    'link-dotted-folder': ({'type': 'link', 'url': '/a/b.c/d', 'children': [{'type': 'text', 'value': 'd'}]},
        '<a href="a/b.c/d.html" class="internal">d</a>'),
    # LaTeX without $ in an embed's caption: every argument of \frac, an accent on a Greek letter
    'embed-bare-tex-caption': ({'type': 'embed', 'alt': 'Half \\frac{1}{2} of \\hat{\\alpha}_t', 'children': [{'type': 'outputs', 'children': [{'type': 'output', 'jupyter_data': {'output_type': 'display_data', 'data': {'image/png': {'path': '/i.png'}}}}]}]},
        '<figure class="embed"><div class="outputs"><div class="output image"><img src="build/i.png" alt="Half (1)/(2) of \u03b1\u0302\u209c"></div></div><figcaption>Half <span class="math-inline"><k>\\frac{1}{2}</k></span> of <span class="math-inline"><k>\\hat{\\alpha}_t</k></span></figcaption></figure>'),
}


@pytest.mark.parametrize("name", sorted(MORE_VARIANTS))
def test_more_branches_render_their_golden_html(name):
    node, expected = MORE_VARIANTS[name]
    page = nodes.Page(text_asset=lambda p: f"[{p}]", page_titles={"nb-2": "Notebook two", "Xnb": "Ex notebook"},
                      inline_math=lambda tex: f"<k>{tex}</k>")
    out = nodes.render(node, page)
    assert out == expected
    well_formed(out)


def test_what_the_page_collects_while_it_renders():
    page = VARIANT_PAGE()
    nodes.render({"type": "root", "children": [
        {"type": "futureNode", "children": [t("k")]}, {"type": "paragraph"}, {"value": "no type"},
        {"type": "heading", "depth": 4, "identifier": "h", "enumerator": "1.2", "children": [t("Sub "), {"type": "inlineCode", "value": "x"}]},
        {"type": "heading", "depth": 2, "identifier": "u", "enumerator": "9", "enumerated": False, "children": [t("Un")]},
        {"type": "heading", "depth": 2, "children": [t("No id")]},
        {"type": "math", "value": "a"}, {"type": "inlineMath", "value": "b", "html": "<k>"}, {"type": "inlineMath", "value": "c"},
        {"type": "link", "url": "a.ipynb", "children": []}, {"type": "link", "url": "https://x.org/b.md"},
        {"type": "link", "url": "c.rst#s", "children": []},
        {"type": "footnoteDefinition", "label": "lab", "children": []}, {"type": "footnoteDefinition", "children": []},
        {"type": "footnoteDefinition", "identifier": "i", "children": []},
        *[{"type": "output", "jupyter_data": {"output_type": "display_data", "data": {
            "application/vnd.jupyter.widget-view+json": {}, "text/plain": "Slider"}}}] * 2]}, page)
    assert page.unknown == {"futureNode", "?"}
    assert page.headings == [(4, "h", "1.2 Sub x"), (2, "u", "Un")]
    assert page.math_fallbacks == 2 and page.missing_links == ["a.ipynb", "c.rst#s"]
    assert list(page.footnotes) == ["lab", "1", "i"] and page.widgets == 2


def test_footnotes_are_listed_by_number_and_bibliography_only_when_cited():
    page = nodes.Page()
    assert nodes.render_footnotes(page) == "" and nodes.render_bibliography(page) == ""
    nodes.render({"type": "root", "children": [
        {"type": "footnoteDefinition", "identifier": "b", "enumerator": "10", "children": [P(t("ten"))]},
        {"type": "footnoteDefinition", "identifier": "a", "enumerator": "2", "children": [P(t("two")), P(t("more"))]},
        {"type": "footnoteDefinition", "identifier": "c", "children": [t("none")]}]}, page)
    assert nodes.render_footnotes(page) == (
        '<section class="footnotes" id="footnotes"><h2>Footnotes</h2><ol>'
        '<li id="fn-a" value="2"><p>two</p><p>more</p> <a class="footnote-back" href="#fnref-a" aria-label="Back to the text">↩</a></li>'
        '<li id="fn-b" value="10">ten <a class="footnote-back" href="#fnref-b" aria-label="Back to the text">↩</a></li>'
        '<li id="fn-c" value="1000000">none <a class="footnote-back" href="#fnref-c" aria-label="Back to the text">↩</a></li>'
        '</ol></section>')
    refs = {"cite": {"order": ["b", "a", "b", "gone"], "data": {"a": {"html": ""}, "b": {"html": "<i>Émile</i>, Z."}}}}
    assert nodes.render_bibliography(nodes.Page(references=refs)) == (
        '<section class="bibliography" id="references"><h2>References</h2><ul class="references">'
        '<li id="cite-a">a</li><li id="cite-b"><i>Émile</i>, Z.</li></ul></section>')


def test_footnotes_go_by_number_not_name_and_references_by_author_not_label():
    page = nodes.Page()
    nodes.render({"type": "root", "children": [
        {"type": "footnoteDefinition", "identifier": "a", "enumerator": "2", "children": [P(t("two"))]},
        {"type": "footnoteDefinition", "identifier": "b", "enumerator": "1", "children": [P(L)]}]}, page)
    assert nodes.render_footnotes(page) == (
        '<section class="footnotes" id="footnotes"><h2>Footnotes</h2><ol>'
        '<li id="fn-b" value="1"><a href="p.html" class="internal">l</a> <a class="footnote-back" href="#fnref-b" aria-label="Back to the text">↩</a></li>'
        '<li id="fn-a" value="2">two <a class="footnote-back" href="#fnref-a" aria-label="Back to the text">↩</a></li>'
        '</ol></section>')
    # labels in the reverse order of the authors; markup (<b>, <i>) is not part of the name; a reference
    # without formatted text sorts by its label; ß is "ss" (so Weis, then Weiß)
    data = {"a": {"html": "<i>Zeta</i>, Z."}, "b": {"html": "Xaver, X."}, "c": {"html": "<b>Abel</b>, A."},
            "d": {"html": "Weiß, A."}, "e": {"html": "Weis, B."}, "m": {}}
    refs = {"cite": {"order": ["a", "b", "c", "d", "e", "m"], "data": data}}
    assert nodes.render_bibliography(nodes.Page(references=refs)) == (
        '<section class="bibliography" id="references"><h2>References</h2><ul class="references">'
        '<li id="cite-c"><b>Abel</b>, A.</li><li id="cite-m">m</li><li id="cite-e">Weis, B.</li>'
        '<li id="cite-d">Weiß, A.</li><li id="cite-b">Xaver, X.</li><li id="cite-a"><i>Zeta</i>, Z.</li></ul></section>')


def test_image_alt_and_internal_urls():
    p = nodes.Page()
    assert p.image_alt() == "Figure"
    p.title = "GANs"
    assert p.image_alt() == "Figure on the page “GANs”"
    p.code_cells = 3
    assert p.image_alt() == "Figure produced by code cell 3 on the page “GANs”"
    p.title = ""
    assert p.image_alt() == "Figure produced by code cell 3"
    p.alt_hint = "A curve."
    assert p.image_alt() == "A curve."
    cases = {"": "", "x.md": "x.md", "//cdn.org/a": "//cdn.org/a", "https://a.org/b": "https://a.org/b", "/": "index.html",
             "/#top": "index.html#top", "/paper": "paper.html", "/paper#": "paper.html", "/paper#s": "paper.html#s",
             "/a/b.png": "build/a/b.png", "/a.png#f": "build/a.png#f", "/v1.2/page": "v1.2/page.html"}
    assert {u: p.internal_url(u) for u in cases} == cases
    custom = nodes.Page(asset=lambda u: "A" + u, page_href=lambda s: "P" + s)
    assert (custom.internal_url("/x.png"), custom.internal_url("/x")) == ("A/x.png", "Px")


def test_plain_text_and_embed_numbers():
    assert nodes.plain_text(None) == "" and nodes.plain_text([t("a"), t("b")]) == "ab"
    assert nodes.plain_text(P(t("a "), {"type": "footnoteReference", "children": [t("1")]}, {"type": "text"},
                              {"type": "comment", "children": [t("c")]},
                              {"type": "footnoteDefinition", "children": [t("d")]}, {"type": "math", "value": "x"},
                              {"type": "code", "value": "y"}, {"type": "inlineMath", "value": 2},
                              {"type": "emphasis", "children": [t("e")]})) == "a xy2e"
    assert nodes.number_embeds(None) == {} and nodes.number_embeds({}) == {}
    root = {"type": "root", "children": [
        {"type": "container", "kind": "table", "enumerator": "2", "children": []},
        {"type": "container", "enumerator": "4", "children": [{"type": "embed", "label": "fig-inner"}]},
        {"type": "container", "kind": "figure", "enumerator": "x", "children": []},
        {"type": "container", "kind": "figure", "children": []},
        {"type": "embed", "source": {"label": "tbl-a"}}, {"type": "embed", "label": "fig-b"},
        {"type": "embed", "source": {"label": "fig-b"}}, {"type": "embed", "source": {}, "label": "out-c"},
        {"type": "embed"}, {"type": "paragraph", "children": [{"type": "embed", "source": {"label": "fig-d"}}]}]}
    assert nodes.number_embeds(root) == {"fig-inner": "Figure\u00a05", "tbl-a": "Table\u00a03", "fig-b": "Figure\u00a06",
                                         "fig-d": "Figure\u00a07"}
    unnumbered = {"type": "container", "kind": "figure", "enumerator": "x", "children": []}
    for first, n in ((unnumbered, 1), ({**unnumbered, "enumerator": "75"}, 76), ({"type": "heading", "enumerator": "5"}, 1)):
        assert nodes.number_embeds({"type": "root", "children": [first, {"type": "embed", "label": "fig-e"},
                                                                 {"type": "embed", "label": "tbl-f"}]}) == \
            {"fig-e": f"Figure\u00a0{n}", "tbl-f": "Table\u00a01"}


def test_ansi_colours_and_carriage_returns():
    cases = {
        "plain <&>": "plain &lt;&amp;&gt;",
        "\x1b[31mred\x1b[0m plain": '<span class="ansi-fg-1">red</span> plain',
        "\x1b[38;5;9ma\x1b[38;5;196mb\x1b[38;5;240mc\x1b[38;5;250md\x1b[38;5;22me\x1b[m":
            '<span class="ansi-fg-9">a</span><span class="ansi-fg-9">b</span><span class="ansi-fg-8">c</span>'
            '<span class="ansi-fg-7">d</span><span class="ansi-fg-0">e</span>',
        "\x1b[38;5;16mk\x1b[38;5;231mw\x1b[38;5;243mg\x1b[38;5;244mh\x1b[38;5;232mi\x1b[38;5;15mj":
            '<span class="ansi-fg-0">k</span><span class="ansi-fg-15">w</span><span class="ansi-fg-8">g</span>'
            '<span class="ansi-fg-7">h</span><span class="ansi-fg-8">i</span><span class="ansi-fg-15">j</span>',
        "\x1b[38;5;52ma\x1b[38;5;58mb\x1b[38;5;88mc\x1b[38;5;124md\x1b[38;5;29me\x1b[38;5;33mf":
            '<span class="ansi-fg-0">a</span><span class="ansi-fg-0">b</span><span class="ansi-fg-1">c</span>'
            '<span class="ansi-fg-1">d</span><span class="ansi-fg-2">e</span><span class="ansi-fg-14">f</span>',
        "\x1b[38;5;18ma\x1b[38;5;40mb\x1b[38;5;160mc\x1b[38;5;124md": '<span class="ansi-fg-4">a</span><span class="ansi-fg-10">b</span>'
                                                            '<span class="ansi-fg-9">c</span><span class="ansi-fg-1">d</span>',
        "\x1b[48;5;1mbg\x1b[38;2;1;2;3mtrue\x1b[0m\x1b[32mg": 'bgtrue<span class="ansi-fg-2">g</span>',
        "\x1b[38;2;1;2;3;1mrgb then bold": '<span class="ansi-bold">rgb then bold</span>',
        "\x1b[48;5;1;3mbg then italic": '<span class="ansi-italic">bg then italic</span>',
        "\x1b[1;3;35mx\x1b[0;1m y\x1b[22mz": '<span class="ansi-fg-5 ansi-bold ansi-italic">x</span><span class="ansi-bold"> y</span>z',
        "\x1b[3;1mi\x1b[23mb\x1b[37mw\x1b[39md\x1b[30mk\x1b[90mK\x1b[36mc":
            '<span class="ansi-bold ansi-italic">i</span><span class="ansi-bold">b</span><span class="ansi-fg-7 ansi-bold">w</span>'
            '<span class="ansi-bold">d</span><span class="ansi-fg-0 ansi-bold">k</span><span class="ansi-fg-8 ansi-bold">K</span>'
            '<span class="ansi-fg-6 ansi-bold">c</span>',
        "\x1b[;mx\x1b[97mw": 'x<span class="ansi-fg-15">w</span>',
        "\x1b[2Kline\r\n\x1b]0;title\x07z\x1b[?25l": "line\nz",
        "10%\r50%\r100%\ndone": "100%\ndone",
        "a\rb\r": "b",
        "a\rb\nc\rd": "b\nd",
        "AX\rBX\nkeep  \n": "BX\nkeep  \n",
        "\x1b[98mx\x1b[38mx\x1b[38;5mx": "xxx",
        "\x1b[38;2;1mx": '<span class="ansi-bold">x</span>',
        "\x1b[38;2;1;2mx": '<span class="ansi-bold">x</span>',
        "\x1b[5;2;1mx": '<span class="ansi-bold">x</span>',
        "\x1b[48;2;31;1;3mx": "x",
        "\x1b[0;38;2;0;0;3mx": "x",
        "\x1b[0;38;5;3mx": '<span class="ansi-fg-3">x</span>',
        "a\r\r": "a",
    }
    assert {a: nodes.ansi_to_html(a) for a in cases} == cases


def test_tex_to_text_labels_and_alt_text():
    cases = {r"\frac{a}{b}": "(a)/(b)", r"\frac {a} {b}": "(a)/(b)", r"\hat x + \tilde{y} - \widehat{z} \widetilde w": "x̂ + ỹ - ẑ w̃",
             r"\Sigma \Omega \omicron \Omicron \Alpha": "Σ Ω ο Omicron Α", r"x_{ij} y^{n+1} z_{q} w^{ab} v_2": "xᵢⱼ yⁿ⁺¹ z_q w^ab v₂",
             r"a \, b \! c \; d": "a b c d", r"\overline{\beta}_t \overline x \bar\alpha": "β̄ₜ x̄ ᾱ", r"\bar{x}": "x̄", r"\bar X \overline{\Sigma} \hat N \tilde{Q}": "X̄ Σ̄ N̂ Q̃",
             r"\sqrt{2}\pi \unknowncmd \infty": "√2π unknowncmd ∞", r"\varepsilon_\theta": "ε_θ", r"\vartheta\varphi": "ϑφ",
             r"\mathcal{L}_{\text{simple}} \mathbb {R} \operatorname{KL}": "Lₛᵢₘₚₗₑ R KL", r"e^{-x}": "e^-x", r"x^2_0": "x²₀",
             r"\left( \sum_{i} \right)  \leq  \log p": "( Σᵢ ) ≤ log p", r"\boldsymbol{\mu}": "μ",
             r"\hat{\alpha} \tilde\mu \widehat{\Sigma} \widetilde {\beta}_t": "\u03b1\u0302 \u03bc\u0303 \u03a3\u0302 \u03b2\u0303\u209c"}
    assert {k: nodes.tex_to_text(k) for k in cases} == cases
    words = {"fig-a_b-c": "Figure: a b c", "tbl-a_b-c": "Table: a b c", "eq-x": "Equation: x", "audio-y": "Audio: y",
             "out-z": "Output: z", "fig": "fig", "fig-": "fig ", "other-x_y": "other x y"}
    assert {k: nodes.label_to_words(k) for k in words} == words
    alts = {"A **bold** `code` *em* __u__  caption ": "A bold code em u caption", "no math \\alpha_t here": "no math αₜ here",
            "cost $\\$5$": "cost $\\$5$", "$a$ and $b": "a and $b", "$x$ and \\beta": "x and \\beta", "": "",
            "half: \\frac{1}{2}, not \\frac{a}{b}^2": "half: (1)/(2), not (a)/(b)²", "\\hat\\alpha": "\u03b1\u0302"}
    assert {k: nodes.alt_text(k) for k in alts} == alts


def test_captions_typeset_math_with_the_pages_typesetter_or_mathml():
    assert nodes.caption_html("") == "" and nodes.caption_html("a <b> & c") == "a &lt;b&gt; &amp; c"
    assert nodes.caption_html("A $x$ <b>", nodes.Page(inline_math=lambda tex: f"<K{tex}>")) == \
        'A <span class="math-inline"><Kx></span> &lt;b&gt;'
    mathml = '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>x</mi></mrow></math>'
    for page in (None, nodes.Page(), nodes.Page(inline_math=lambda tex: None)):
        assert nodes.caption_html("A $x$ b", page) == f'A <span class="math-inline">{mathml}</span> b'
    assert nodes.caption_html("see \\alpha") == ('see <span class="math-inline"><math xmlns="http://www.w3.org/1998/Math/MathML" '
                                                 'display="inline"><mrow><mi>&#x003B1;</mi></mrow></math></span>')
    assert nodes.caption_html("$a$ costs \\$5") == nodes.caption_html("$a$") + " costs \\$5"
    assert nodes.caption_html("$x$ and \\beta") == f'<span class="math-inline">{mathml}</span> and \\beta'
    assert nodes.latex_to_mathml(r"\frac{", True) == r'<code class="math-source">\frac{</code>'


def test_machine_paths_keep_only_their_readable_end():
    cases = {"/usr/local/lib/python3.11/dist-packages/x/y.py": ("…/dist-packages/x/y.py", 1),
             "/opt/conda/bin/": ("…/bin", 1), "/home/u/notebooks/a.ipynb": ("…/notebooks/a.ipynb", 1),
             "/Users/ada/chapters/c.md": ("…/chapters/c.md", 1), "/private/var/x": ("…/x", 1),
             "/usr/lib/python3/z.py and /usr/lib/q": ("…/z.py and …/q", 2), "see /root": ("see …/root", 1),
             "/root/": ("…/root", 1), "x:/root/a": ("x:/root/a", 0), "a/root/b": ("a/root/b", 0),
             "(/tmp/q), '/work/r'": ("(…/q), '…/r'", 2), "no slash": ("no slash", 0), "/usr/share/x": ("/usr/share/x", 0),
             "/root/site-packages/a/site-packages/b": ("…/site-packages/a/site-packages/b", 1), "/tmp/AX": ("…/AX", 1),
             # a folder whose name only starts like one of the machine's is not one of them
             "/tmpfoo/x /workspace/d.csv /rooted /opt-x /usr/lib64/q /tmp.bak": ("/tmpfoo/x /workspace/d.csv /rooted /opt-x /usr/lib64/q /tmp.bak", 0),
             "saved in /tmp.": ("saved in …/tmp.", 1)}
    got = {}
    for text in cases:
        page = nodes.Page()
        got[text] = (nodes.scrub_paths(text, page), page.scrubbed_paths)
    assert got == cases
    assert nodes.scrub_paths("/root/a/b") == "…/b"


def test_the_handler_factories_and_raw_html_without_a_value():
    """tag() and h_title_div() build most HANDLERS entries at import; here they are called directly."""
    page = nodes.Page()
    link = {"type": "link", "url": "/p", "children": [t("a")]}  # a child that needs the page
    node = {"type": "x", "identifier": "i", "html_id": "h", "class": "d", "children": [link]}
    a = '<a href="p.html" class="internal">a</a>'
    assert nodes.tag("span", cls="c")(node, page) == f'<span id="h" class="c d">{a}</span>'
    assert nodes.tag("b")({"type": "x", "html_id": "h", "children": [link]}, page) == f"<b>{a}</b>"
    assert nodes.tag("i", lambda n, p: n["type"] + p.slug)({"type": "x"}, page) == "<i>xindex</i>"
    assert nodes.h_title_div("t")(node, page) == f'<div class="t">{a}</div>'
    assert nodes.render({"type": "captionNumber", "children": [link]}, page) == f'<span class="caption-number">{a}</span> '
    assert nodes.render({"type": "html"}, page) == "" and nodes.render({"type": "raw", "lang": "html"}, page) == ""

"""MyST page AST (mdast, as served by ``myst build``'s content server) -> HTML.

One function per node type, looked up by ``node["type"]`` in :data:`HANDLERS`. A :class:`Page`
carries what a page needs while it is rendered: how to turn myst's internal URLs into site paths,
the citation data, and what it collects on the way (headings for the outline, footnotes, assets).

The node types and their fields follow the MyST spec (https://mystmd.org/spec) as mystmd 1.11 emits
them; an unknown type renders its children (or its text) and is recorded in ``page.unknown``.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

Node = dict[str, Any]
esc = html.escape


@dataclass
class Page:
    """Everything one page's rendering needs and collects.

    Args:
        slug: the page's slug (``paper``); links to it become ``paper.html``.
        references: ``page["references"]`` from myst (citation data keyed by label).
        asset: maps a myst public URL (``/abc.png``) to the site path the file will have.
        text_asset: reads a text output that myst stored as a file (``path`` instead of ``content``).
        page_href: maps a slug to its site path (``paper`` -> ``paper.html``).
    """

    slug: str = "index"
    references: dict[str, Any] = field(default_factory=dict)
    asset: Callable[[str], str] = lambda url: "build/" + url.lstrip("/")
    text_asset: Callable[[str], str] = lambda url: ""
    page_href: Callable[[str], str] = lambda slug: f"{slug}.html"
    # collected while rendering
    headings: list[tuple[int, str, str]] = field(default_factory=list)   # (depth, id, text)
    footnotes: dict[str, Node] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    math_fallbacks: int = 0
    widgets: int = 0
    # figures embedded from notebooks (``![caption](#fig-x)``) get numbers on the page that shows them
    embed_numbers: dict[str, str] = field(default_factory=dict)
    missing_links: list[str] = field(default_factory=list)
    # the page's title (alt text of unlabelled outputs), captions of labelled outputs across the book
    # (label -> caption source with ``$math$``), and the same for this page's ``![caption](#label)``
    # read from the source file (myst drops the ``$`` from an embed's alt text)
    title: str = ""
    captions: dict[str, str] = field(default_factory=dict)
    embed_captions: dict[str, str] = field(default_factory=dict)
    # set while a notebook cell or an embed renders: the alt text its images get
    alt_hint: str = ""
    page_titles: dict[str, str] = field(default_factory=dict)    # slug -> title the site gives the page
    # typesets inline LaTeX the page renders itself (captions): KaTeX through Node (booksite.katex), else MathML
    inline_math: Callable[[str], str | None] | None = None
    code_cells: int = 0
    scrubbed_paths: int = 0

    def image_alt(self) -> str:
        """Alt text for an output image: the figure's caption, its label, or where it comes from."""
        if self.alt_hint:
            return self.alt_hint
        where = f" on the page “{self.title}”" if self.title else ""
        return f"Figure produced by code cell {self.code_cells}{where}" if self.code_cells else f"Figure{where}"

    def internal_url(self, url: str) -> str:
        """``/paper#sec`` (myst's route) -> ``paper.html#sec``; other URLs unchanged."""
        if not url or not url.startswith("/") or url.startswith("//"):
            return url
        path, _, frag = url.partition("#")
        slug = path.strip("/") or "index"
        if "." in slug.rsplit("/", 1)[-1]:          # a file in the public folder
            return self.asset(path) + (f"#{frag}" if frag else "")
        return self.page_href(slug) + (f"#{frag}" if frag else "")


# ----------------------------------------------------------------------------------- helpers
def render(node: Node | list | None, page: Page) -> str:
    """Render a node (or a list of nodes) to HTML."""
    if node is None:
        return ""
    if isinstance(node, list):
        return "".join(render(n, page) for n in node)
    handler = HANDLERS.get(node.get("type", ""))
    if handler is None:
        page.unknown.add(node.get("type", "?"))
        if node.get("children"):
            return f'<div class="unknown-node">{kids(node, page)}</div>'
        return esc(str(node.get("value", "")))
    return handler(node, page)


def kids(node: Node, page: Page) -> str:
    return render(node.get("children") or [], page)


def plain_text(node: Node | list | None) -> str:
    """The text of a node and its children, without markup (for titles, search, outline)."""
    if node is None:
        return ""
    if isinstance(node, list):
        return "".join(plain_text(n) for n in node)
    if node.get("type") in ("footnoteReference", "comment", "footnoteDefinition"):
        return ""
    if node.get("type") in ("text", "inlineCode", "inlineMath", "math", "code"):
        return str(node.get("value", ""))
    return plain_text(node.get("children") or [])


def number_embeds(mdast: Node | None) -> dict[str, str]:
    """Number the notebook outputs a page embeds (``![caption](#fig-x)``), after the page's own
    numbered figures/tables, so ``[](#fig-x)`` can read "Figure 3" on that page."""
    counts: dict[str, int] = {}
    embeds: list[tuple[str, str]] = []

    def walk(n: Node) -> None:
        if n.get("type") == "container" and n.get("enumerator"):
            kind = n.get("kind") or "figure"
            counts[kind] = max(counts.get(kind, 0), _num(n.get("enumerator")) if _num(n.get("enumerator")) < 10**6 else 0)
        if n.get("type") == "embed":
            label = (n.get("source") or {}).get("label") or n.get("label") or ""
            if label.startswith(("fig", "tbl")):  # printed outputs (out-, facts-) are not numbered figures
                embeds.append((label, "table" if label.startswith("tbl") else "figure"))
            return
        for c in n.get("children") or []:
            walk(c)

    if mdast:
        walk(mdast)
    out: dict[str, str] = {}
    for label, kind in embeds:
        if label not in out:
            counts[kind] = counts.get(kind, 0) + 1
            out[label] = f"{kind.capitalize()}\u00a0{counts[kind]}"
    return out


def attr_id(node: Node) -> str:
    hid = node.get("html_id") or node.get("identifier")
    return f' id="{esc(hid)}"' if hid else ""


def classes(*names: str | None) -> str:
    out = " ".join(n for n in names if n)
    return f' class="{esc(out)}"' if out else ""


def tag(name: str, body_fn: Callable[[Node, Page], str] | None = None, cls: str | None = None):
    def h(node: Node, page: Page) -> str:
        body = body_fn(node, page) if body_fn else kids(node, page)
        return f"<{name}{attr_id(node) if node.get('identifier') else ''}{classes(cls, node.get('class'))}>{body}</{name}>"
    return h


# ----------------------------------------------------------------------------------- text level
def h_text(node: Node, page: Page) -> str:
    return esc(node.get("value", ""))


LOCAL_SOURCE = re.compile(r"^(?![a-z][a-z0-9+.-]*:|/|#)[^?#]*\.(md|ipynb|myst|rst|tex)(#.*)?$", re.I)


def h_link(node: Node, page: Page) -> str:
    url = node.get("url", "")
    href = page.internal_url(url)
    body = kids(node, page) or esc(url)
    if LOCAL_SOURCE.match(url):
        # a link to a source file that is not a page of this book (myst could not resolve it):
        # show the text, not a link that would 404, and say so in the build report
        page.missing_links.append(url)
        return f'<span class="link-missing" title="Not part of this book yet: {esc(url)}">{body}</span>'
    ext = url.startswith(("http://", "https://"))
    extra = ' rel="noopener" class="external"' if ext else ' class="internal"'
    title = f' title="{esc(node["title"])}"' if node.get("title") else ""
    return f'<a href="{esc(href)}"{extra}{title}>{body}</a>'


def h_inline_code(node: Node, page: Page) -> str:
    return f"<code>{esc(node.get('value', ''))}</code>"


def h_abbr(node: Node, page: Page) -> str:
    return f'<abbr title="{esc(node.get("title", ""))}">{kids(node, page)}</abbr>'


def h_html(node: Node, page: Page) -> str:
    return strip_remote(node.get("value", ""))


def h_break(node: Node, page: Page) -> str:
    return "<br>"


def h_span_value(node: Node, page: Page) -> str:
    return f'<span{classes(node.get("type"))}>{esc(str(node.get("value", "")))}</span>'


def h_nothing(node: Node, page: Page) -> str:
    return ""


# ----------------------------------------------------------------------------------- blocks
def h_block(node: Node, page: Page) -> str:
    vis = node.get("visibility")
    if vis == "remove":
        return ""
    kind = node.get("kind")
    cls = {"notebook-code": "cell code-cell", "notebook-content": "cell md-cell"}.get(kind or "", "block")
    if kind != "notebook-code":
        return f"<div{attr_id(node)}{classes(cls)}>{kids(node, page)}</div>"
    page.code_cells += 1
    label = node.get("label") or node.get("identifier") or ""
    before = page.alt_hint
    if label and not label.endswith("-code"):
        page.alt_hint = alt_text(page.captions.get(label) or label_to_words(label))
    try:
        body = kids(node, page)
    finally:
        page.alt_hint = before
    return f"<div{attr_id(node)}{classes(cls)}>{body}</div>"


def h_heading(node: Node, page: Page) -> str:
    depth = max(1, min(6, int(node.get("depth", 2))))
    hid = node.get("html_id") or node.get("identifier") or ""
    text = kids(node, page)
    num = node.get("enumerator") if node.get("enumerated") is not False else None
    numtxt = f'<span class="heading-number">{esc(str(num))}</span> ' if num else ""
    if hid:
        page.headings.append((depth, hid, (f"{num} " if num else "") + plain_text(node)))
        anchor = f'<a class="anchor" href="#{esc(hid)}" aria-label="Link to this section">#</a>'
        return f'<h{depth} id="{esc(hid)}">{numtxt}{text}{anchor}</h{depth}>'
    return f"<h{depth}>{numtxt}{text}</h{depth}>"


def h_list(node: Node, page: Page) -> str:
    if node.get("ordered"):
        start = node.get("start")
        st = f' start="{int(start)}"' if start not in (None, 1) else ""
        return f"<ol{st}>{kids(node, page)}</ol>"
    return f"<ul>{kids(node, page)}</ul>"


def h_list_item(node: Node, page: Page) -> str:
    ch = node.get("children") or []
    # tight list items: unwrap single paragraphs
    if not node.get("spread") or len(ch) == 1:
        body = "".join(kids(c, page) if c.get("type") == "paragraph" and len(ch) == 1 else render(c, page) for c in ch)
    else:
        body = render(ch, page)
    if node.get("checked") is not None:
        box = '<input type="checkbox" disabled' + (" checked" if node["checked"] else "") + "> "
        return f'<li class="task">{box}{body}</li>'
    return f"<li>{body}</li>"


def _lexer(lang: str | None):
    lang = (lang or "").strip().lower()
    alias = {"ipython3": "python", "ipython": "python", "py": "python", "sh": "bash", "shell": "bash",
             "console": "console", "yml": "yaml", "": "text"}
    try:
        return get_lexer_by_name(alias.get(lang, lang))
    except ClassNotFound:
        return TextLexer()


def highlight_code(value: str, lang: str | None, linenos: bool = False,
                   emphasize: list[int] | None = None, start: int = 1) -> str:
    """Pygments HTML for a code block (classes only; colours come from the site's CSS).

    Pygments closes its spans at the end of every line, so lines can be wrapped one by one for line
    numbers and emphasised lines."""
    out = highlight(value, _lexer(lang), HtmlFormatter(nowrap=True)).rstrip("\n")
    if not linenos and not emphasize:
        return out
    marked = set(emphasize or [])
    lines = []
    for i, line in enumerate(out.split("\n"), start):
        num = f'<span class="lineno">{i}</span>' if linenos else ""
        cls = "line hl" if (i - start + 1) in marked else "line"
        lines.append(f'<span class="{cls}">{num}{line}</span>')
    return "\n".join(lines)


def h_code(node: Node, page: Page) -> str:
    if node.get("visibility") == "remove":
        return ""
    lang = node.get("lang") or ""
    value = node.get("value", "")
    if lang == "mermaid":
        return f'<pre class="mermaid-source">{esc(value)}</pre>'
    body = highlight_code(value, lang, bool(node.get("showLineNumbers")),
                          node.get("emphasizeLines"), int(node.get("startingLineNumber") or 1))
    cls = "code-block" + (" cell-input" if node.get("executable") else "")
    label = f'<span class="code-lang">{esc(lang)}</span>' if lang and not node.get("executable") else ""
    fname = f'<div class="code-filename">{esc(node["filename"])}</div>' if node.get("filename") else ""
    block = (f'<div{attr_id(node)}{classes(cls)}>{fname}<div class="code-wrap">{label}'
             f'<button class="copy-btn" type="button" title="Copy to clipboard" aria-label="Copy code">Copy</button>'
             f'<pre class="highlight"><code class="language-{esc(lang)}">{body}</code></pre></div></div>')
    if node.get("visibility") == "hide":
        return f'<details class="hidden-code"><summary>Show code</summary>{block}</details>'
    return block


def h_math(node: Node, page: Page) -> str:
    body = math_html(node, page, display=True)
    num = node.get("enumerator")
    numhtml = f'<span class="eq-number">({esc(str(num))})</span>' if num else ""
    return f'<div{attr_id(node)} class="math-display">{body}{numhtml}</div>'


def h_inline_math(node: Node, page: Page) -> str:
    return f'<span class="math-inline">{math_html(node, page, display=False)}</span>'


def math_html(node: Node, page: Page, display: bool) -> str:
    """myst renders math with KaTeX at build time (``node["html"]``); otherwise use MathML."""
    if node.get("html"):
        return node["html"]
    page.math_fallbacks += 1
    return latex_to_mathml(node.get("value", ""), display)


def latex_to_mathml(tex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert

        return convert(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - show the source rather than fail the page
        return f'<code class="math-source">{esc(tex)}</code>'


def h_admonition(node: Node, page: Page) -> str:
    kind = node.get("kind") or "note"
    ch = node.get("children") or []
    title_nodes = [c for c in ch if c.get("type") == "admonitionTitle"]
    rest = [c for c in ch if c.get("type") != "admonitionTitle"]
    title = render(title_nodes[0].get("children"), page) if title_nodes else esc(kind.capitalize())
    cls = node.get("class") or ""
    if "dropdown" in cls.split():
        return (f'<details{attr_id(node)} class="admonition {esc(kind)}"><summary class="admonition-title">{title}'
                f'</summary><div class="admonition-body">{render(rest, page)}</div></details>')
    return (f'<aside{attr_id(node)} class="admonition {esc(kind)}" role="note"><div class="admonition-title">{title}'
            f'</div><div class="admonition-body">{render(rest, page)}</div></aside>')


def h_container(node: Node, page: Page) -> str:
    kind = node.get("kind") or "figure"
    ch = node.get("children") or []
    caps = [c for c in ch if c.get("type") in ("caption", "legend")]
    body = [c for c in ch if c.get("type") not in ("caption", "legend")]
    cap_html = "".join(render(c, page) for c in caps)
    if kind == "table":      # captions go above tables, below figures
        return f'<figure{attr_id(node)} class="container table-container">{cap_html}{render(body, page)}</figure>'
    return f'<figure{attr_id(node)} class="container {esc(kind)}-container">{render(body, page)}{cap_html}</figure>'


def h_caption(node: Node, page: Page) -> str:
    return f'<figcaption>{unwrap_paragraphs(node, page)}</figcaption>'


def h_legend(node: Node, page: Page) -> str:
    return f'<div class="legend">{kids(node, page)}</div>'


def unwrap_paragraphs(node: Node, page: Page) -> str:
    ch = node.get("children") or []
    if len(ch) == 1 and ch[0].get("type") == "paragraph":
        return kids(ch[0], page)
    return render(ch, page)


def h_caption_number(node: Node, page: Page) -> str:
    return f'<span class="caption-number">{kids(node, page)}</span> '


def h_image(node: Node, page: Page) -> str:
    url = node.get("urlOptimized") or node.get("url", "")
    src = page.internal_url(url) if url.startswith("/") else url
    if src.startswith(("http://", "https://", "//")):
        # never load a remote resource: show a link instead
        return f'<a class="remote-image" href="{esc(src)}" rel="noopener">{esc(node.get("alt") or src)}</a>'
    style = []
    if node.get("width"):
        style.append(f"width:{node['width']}")
    if node.get("height"):
        style.append(f"height:{node['height']}")
    align = node.get("align")
    cls = f"align-{align}" if align else None
    st = f' style="{esc(";".join(style))}"' if style else ""
    title = f' title="{esc(node["title"])}"' if node.get("title") else ""
    return f'<img{attr_id(node)} src="{esc(src)}" alt="{esc(node.get("alt") or "")}"{title}{st}{classes(cls)} loading="lazy">'


def h_table(node: Node, page: Page) -> str:
    rows = node.get("children") or []
    head, body = [], []
    for r in rows:
        cells = r.get("children") or []
        is_head = not body and cells and all(c.get("header") for c in cells)
        (head if is_head else body).append(render(r, page))
    thead = f"<thead>{''.join(head)}</thead>" if head else ""
    return f'<div class="table-wrap"><table{attr_id(node)}>{thead}<tbody>{"".join(body)}</tbody></table></div>'


def h_table_cell(node: Node, page: Page) -> str:
    t = "th" if node.get("header") else "td"
    attrs = ""
    if node.get("align"):
        attrs += f' style="text-align:{esc(node["align"])}"'
    for k in ("colspan", "rowspan"):
        if node.get(k):
            attrs += f' {k}="{int(node[k])}"'
    body = _HASH.sub(lambda m: f'<abbr class="hash" title="{m.group(0)}">{m.group(0)[:10]}…</abbr>', kids(node, page))
    return f"<{t}{attrs}>{body}</{t}>"


# a commit or content hash (40/64 hex digits) outside a tag: shown short, the full value on hover
_HASH = re.compile(r"(?<![0-9a-fA-F/=\"'#-])\b[0-9a-f]{16,64}\b(?![^<>]*>)")


# ----------------------------------------------------------------------------------- references
def h_cite_group(node: Node, page: Page) -> str:
    parts = [render(c, page) for c in node.get("children") or []]
    if node.get("kind") == "narrative":
        return '<span class="cite-group">' + ", ".join(parts) + "</span>"
    return '<span class="cite-group">(' + "; ".join(parts) + ")</span>"


def h_cite(node: Node, page: Page) -> str:
    label = node.get("label") or node.get("identifier") or ""
    data = (page.references.get("cite") or {}).get("data", {}).get(label) or {}
    body = kids(node, page) or esc(label)
    if node.get("error") or not data:
        return f'<span class="cite cite-missing" title="Reference not found: {esc(label)}">{body}</span>'
    tip = re.sub(r"<[^>]+>", "", data.get("html", ""))
    return f'<a class="cite" href="#cite-{esc(label)}" title="{esc(tip, quote=True)}">{body}</a>'


def h_xref(node: Node, page: Page) -> str:
    body = kids(node, page)
    if not body:
        tmpl = node.get("template") or "%s"
        body = esc(tmpl.replace("%s", str(node.get("enumerator", ""))).replace("{number}", str(node.get("enumerator", ""))))
    if not node.get("resolved", True) and not node.get("url"):
        return f'<span class="xref unresolved">{body}</span>'
    hid = node.get("html_id") or node.get("identifier") or ""
    kind = node.get("kind") or ""
    if kind.startswith("block:"):
        # a labelled notebook cell: myst's text is the cell kind ("Notebook-code")
        label = node.get("label") or node.get("identifier") or ""
        if label in page.embed_numbers:
            return f'<a class="xref" href="#{esc(label)}">{esc(page.embed_numbers[label])}</a>'
        if plain_text(node).strip().lower() in ("notebook-code", "notebook-content", ""):
            body = "the figure" if label.startswith("fig") else "the table" if label.startswith("tbl") else "the output"
    href = (page.internal_url(node["url"]) if node.get("remote") and node.get("url") else "") + (f"#{hid}" if hid else "")
    if node.get("remote") and node.get("url") and node.get("kind") == "page":
        href = page.internal_url(node["url"])
    return f'<a class="xref" href="{esc(href)}">{body}</a>'


def h_footnote_ref(node: Node, page: Page) -> str:
    ident = node.get("identifier") or node.get("label") or ""
    num = node.get("enumerator") or ident
    return (f'<sup class="footnote-ref" id="fnref-{esc(ident)}"><a href="#fn-{esc(ident)}">'
            f'{esc(str(num))}</a></sup>')


def h_footnote_def(node: Node, page: Page) -> str:
    page.footnotes[node.get("identifier") or node.get("label") or str(len(page.footnotes))] = node
    return ""


def render_footnotes(page: Page) -> str:
    """The page's footnotes, in order of their numbers, with links back to the text."""
    if not page.footnotes:
        return ""
    items = []
    for ident, node in sorted(page.footnotes.items(), key=lambda kv: _num(kv[1].get("enumerator"))):
        body = unwrap_paragraphs(node, page)
        items.append(f'<li id="fn-{esc(ident)}" value="{esc(str(_num(node.get("enumerator"))))}">{body} '
                     f'<a class="footnote-back" href="#fnref-{esc(ident)}" aria-label="Back to the text">↩</a></li>')
    return f'<section class="footnotes" id="footnotes"><h2>Footnotes</h2><ol>{"".join(items)}</ol></section>'


def _num(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 10**6


def _sort_key(entry_html: str) -> str:
    """Alphabetical order of a formatted reference (author surname first), accents folded."""
    text = html.unescape(re.sub(r"<[^>]+>", "", entry_html))
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def render_bibliography(page: Page) -> str:
    """The references cited on the page, each with the id ``cite-<label>``: an author–year list in
    alphabetical order (the citations read "Ho et al., 2020", so readers look a reference up by name),
    the same order as the paper's PDF and docx."""
    cite = page.references.get("cite") or {}
    order, data = cite.get("order") or [], cite.get("data") or {}
    keys = sorted((k for k in dict.fromkeys(order) if k in data), key=lambda k: (_sort_key(data[k].get("html", k)), k))
    if not keys:
        return ""
    items = "".join(f'<li id="cite-{esc(k)}">{strip_remote(data[k].get("html") or esc(k))}</li>' for k in keys)
    return f'<section class="bibliography" id="references"><h2>References</h2><ul class="references">{items}</ul></section>'


# ----------------------------------------------------------------------------------- directives
def h_details(node: Node, page: Page) -> str:
    op = " open" if node.get("open") else ""
    return f"<details{attr_id(node)}{op} class=\"dropdown\">{kids(node, page)}</details>"


def h_tabset(node: Node, page: Page) -> str:
    items = [c for c in node.get("children") or [] if c.get("type") == "tabItem"]
    sel = next((i for i, c in enumerate(items) if c.get("selected")), 0)
    labels = "".join(f'<button type="button" role="tab" class="tab-label{" active" if i == sel else ""}" '
                     f'aria-selected="{"true" if i == sel else "false"}">{esc(c.get("title", f"Tab {i + 1}"))}</button>'
                     for i, c in enumerate(items))
    panels = "".join(f'<div role="tabpanel" class="tab-panel"{"" if i == sel else " hidden"}>{kids(c, page)}</div>'
                     for i, c in enumerate(items))
    return f'<div{attr_id(node)} class="tab-set"><div class="tab-labels" role="tablist">{labels}</div>{panels}</div>'


def h_card(node: Node, page: Page) -> str:
    body = kids(node, page)
    if node.get("url"):
        href = page.internal_url(node["url"])
        return f'<a class="card card-link" href="{esc(href)}">{body}</a>'
    return f'<div{attr_id(node)} class="card">{body}</div>'


def h_grid(node: Node, page: Page) -> str:
    cols = node.get("columns") or [1, 2, 2, 3]
    n = cols[-1] if isinstance(cols, list) and cols else cols
    return f'<div class="grid" style="--grid-cols:{int(n)}">{kids(node, page)}</div>'


def h_iframe(node: Node, page: Page) -> str:
    src = node.get("src", "")
    if src.startswith(("http://", "https://", "//")):
        return f'<p class="iframe-link"><a href="{esc(src)}" rel="noopener">Open the embedded page: {esc(src)}</a></p>'
    return f'<iframe src="{esc(page.internal_url(src))}" width="{esc(str(node.get("width", "100%")))}" loading="lazy"></iframe>'


def h_proof(node: Node, page: Page) -> str:
    """proof / exercise / solution: a titled box, "Theorem 2 (title)", "Exercise 1"."""
    kind = node.get("kind") or node.get("type")
    ch = node.get("children") or []
    titles = [c for c in ch if c.get("type") == "admonitionTitle"]
    rest = [c for c in ch if c.get("type") != "admonitionTitle"]
    title = render(titles[0].get("children"), page) if titles else ""
    if node.get("type") != "solution":
        label = esc(str(kind).replace("-", " ").capitalize())
        if node.get("enumerator") and node.get("enumerated") is not False:
            label += f" {esc(str(node['enumerator']))}"
        title = f"{label} ({title})" if title else label
    head = f'<div class="proof-title">{title}</div>' if title else ""
    return f'<div{attr_id(node)} class="proof {esc(kind)}">{head}{render(rest, page)}</div>'


def h_title_div(cls: str) -> Callable[[Node, Page], str]:
    return lambda node, page: f'<div class="{cls}">{kids(node, page)}</div>'


def h_embed(node: Node, page: Page) -> str:
    """``![caption](#fig-x)`` / ``{embed}``: the labelled content (often a notebook output) with its
    caption (math rendered) and a link to where it came from. An embedded figure or table shows the
    figure or table, and an embedded cell that only prints shows its printed text (see
    :func:`_figures_only`)."""
    src = node.get("source") or {}
    label = src.get("label") or node.get("label") or ""
    caption_src = page.embed_captions.get(label) or node.get("alt") or ""
    before = page.alt_hint
    page.alt_hint = alt_text(caption_src) if caption_src else alt_text(label_to_words(label)) if label else before
    try:
        body = render(_figures_only(node.get("children") or []), page)
    finally:
        page.alt_hint = before
    link = ""
    if src.get("url") and src.get("kind") == "Notebook":
        href = page.internal_url(src["url"]) + (f"#{src['label']}" if src.get("label") else "")
        title = page.page_titles.get(src.get("slug") or src["url"].strip("/")) or src.get("title") or "notebook"
        link = f' <a class="embed-source" href="{esc(href)}">(source: {esc(title)})</a>'
    number = page.embed_numbers.get(label)
    if caption_src or link or number:
        num = f'<span class="caption-number">{esc(number)}:</span> ' if number else ""
        fid = f' id="{esc(label)}"' if number else ""
        return f'<figure{fid} class="embed">{body}<figcaption>{num}{caption_html(caption_src, page)}{link}</figcaption></figure>'
    return f'<div class="embed">{body}</div>'


def _output_kind(node: dict) -> str:
    """``rich`` (a figure, table or value), ``stdout``, or ``noise`` (stderr, errors, progress widgets)."""
    jd = node.get("jupyter_data") or {}
    kind = jd.get("output_type")
    if kind == "stream":
        return "stdout" if (jd.get("name") or "stdout") == "stdout" else "noise"
    if kind == "error" or "application/vnd.jupyter.widget-view+json" in (jd.get("data") or {}):
        return "noise"
    return "rich"


def _figures_only(children: list, keep_stdout: bool | None = None) -> list:
    """What an embed shows of a notebook cell's outputs.

    stderr, errors and progress widgets never (they stay on the notebook page). The printed text
    (stdout) only when the cell has nothing else to show: a figure or table is shown without the lines
    printed beside it, but a cell that reports its results by printing them (``out-…`` labels) shows
    them, so that a chapter never embeds an empty block.
    """
    if keep_stdout is None:
        def kinds(nodes):
            for c in nodes:
                if isinstance(c, dict) and c.get("type") == "output":
                    yield _output_kind(c)
                elif isinstance(c, dict) and c.get("type") == "outputs":
                    yield from kinds(c.get("children") or [])
        keep_stdout = "rich" not in set(kinds(children))
    out = []
    for c in children:
        if not isinstance(c, dict):
            continue
        if c.get("type") == "output":
            kind = _output_kind(c)
            if kind == "noise" or (kind == "stdout" and not keep_stdout):
                continue
        if c.get("type") == "outputs":
            c = {**c, "children": _figures_only(c.get("children") or [], keep_stdout)}
        out.append(c)
    return out


# ----------------------------------------------------------------------------------- captions, alt text
_DOLLAR_MATH = re.compile(r"(?<!\\)\$([^$]+?)(?<!\\)\$")
# a LaTeX fragment whose $...$ was lost: commands (``\bar\alpha_t``, ``\frac{1}{2}``) with their arguments and
# sub/superscripts
_BARE_TEX = re.compile(r"(?:\\[A-Za-z]+)+(?:\{[^{}]*\})*(?:[_^](?:\{[^{}]*\}|[A-Za-z0-9]))*")


def caption_html(text: str, page: Page | None = None) -> str:
    """A caption written in Markdown's alt text: plain text with ``$math$`` rendered as math. A LaTeX
    command without dollars (myst drops them from an embed's alt) is rendered as math too."""
    if not text:
        return ""
    if "$" not in text and "\\" in text:
        text = _BARE_TEX.sub(lambda m: f"${m.group(0).strip()}$", text)
    out, pos = [], 0
    for m in _DOLLAR_MATH.finditer(text):
        out.append(esc(text[pos:m.start()]))
        typeset = page.inline_math(m.group(1)) if page is not None and page.inline_math else None
        out.append(f'<span class="math-inline">{typeset or latex_to_mathml(m.group(1), False)}</span>')
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


_GREEK = dict(zip("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
                  "sigma tau upsilon phi chi psi omega".split(), "αβγδεζηθικλμνξοπρστυφχψω"))
_GREEK.update({n.capitalize(): chr(ord(v) - 32) for n, v in _GREEK.items() if n not in ("omicron",)})
_GREEK.update({"varepsilon": "ε", "vartheta": "ϑ", "varphi": "φ"})
_SYMBOLS = {"approx": "≈", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "times": "×",
            "cdot": "·", "sim": "~", "to": "→", "rightarrow": "→", "leftarrow": "←", "infty": "∞", "sum": "Σ",
            "prod": "Π", "sqrt": "√", "pm": "±", "in": "∈", "log": "log", "exp": "exp", "mid": "|",
            "ldots": "…", "dots": "…", "cdots": "⋯", "propto": "∝", "nabla": "∇", "partial": "∂", "int": "∫",
            "forall": "∀", "exists": "∃", "cup": "∪", "cap": "∩", "subset": "⊂", "ell": "ℓ", "lVert": "‖", "rVert": "‖",
            "left": "", "right": "", "quad": " ", "qquad": " ", "top": "ᵀ", "odot": "⊙", "oplus": "⊕",
            "min": "min", "max": "max", "arg": "arg", "sin": "sin", "cos": "cos", "mathbb": ""}
_ACCENTS = {"bar": "\u0304", "overline": "\u0304", "hat": "\u0302", "widehat": "\u0302", "tilde": "\u0303",
            "widetilde": "\u0303"}
_SUB = str.maketrans("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
_SUP = str.maketrans("0123456789+-=()in", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁱⁿ")


def tex_to_text(tex: str) -> str:
    """Readable Unicode for a short LaTeX fragment (alt text, search): ``\bar\alpha_t`` -> ``ᾱₜ``."""
    def script(m: re.Match) -> str:
        mark, body = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
        conv = body.translate(_SUB if mark == "_" else _SUP)
        # Unicode has sub/superscripts for only some characters: otherwise keep the _ or ^
        return conv if all(c != o for c, o in zip(conv, body) if o.isalnum()) else mark + body

    t = re.sub(r"\\(?:mathrm|mathbf|mathit|mathcal|mathbb|text|operatorname|boldsymbol)\s*\{([^{}]*)\}", r"\1", tex)
    # an accent on a command (``\hat{\alpha}``): the command, then its mark, which the Greek step below keeps
    t = re.sub(r"\\(bar|overline|hat|widehat|tilde|widetilde)\s*\{?\\([A-Za-z]+)\}?",
               lambda m: "\\" + m.group(2) + _ACCENTS[m.group(1)], t)
    t = re.sub(r"\\(?:bar|overline)\s*\{?([A-Za-z0-9])\}?", lambda m: m.group(1) + "\u0304", t)
    t = re.sub(r"\\(?:hat|widehat)\s*\{?([A-Za-z0-9])\}?", lambda m: m.group(1) + "\u0302", t)
    t = re.sub(r"\\(?:tilde|widetilde)\s*\{?([A-Za-z0-9])\}?", lambda m: m.group(1) + "\u0303", t)
    t = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", t)
    t = re.sub(r"\\([A-Za-z]+)(\u0304|\u0302|\u0303)?",
               lambda m: _GREEK.get(m.group(1), _SYMBOLS.get(m.group(1), m.group(1))) + (m.group(2) or ""), t)
    t = re.sub(r"([_^])(?:\{([^{}]*)\}|([A-Za-z0-9]))", script, t)
    t = t.replace("\\,", " ").replace("\\!", "").replace("\\;", " ").replace("{", "").replace("}", "")
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", t).strip())


def alt_text(caption: str) -> str:
    """Plain alt text from a caption's source: math as Unicode, no LaTeX, no Markdown emphasis."""
    text = caption
    if "$" not in text and "\\" in text:
        text = _BARE_TEX.sub(lambda m: f"${m.group(0).strip()}$", text)
    text = _DOLLAR_MATH.sub(lambda m: tex_to_text(m.group(1)), text)
    text = re.sub(r"(\*\*|__|\*|`)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def label_to_words(label: str) -> str:
    """``fig-diffusion-forward`` -> ``Figure: diffusion forward`` (alt text when there is no caption)."""
    kinds = {"fig": "Figure", "tbl": "Table", "eq": "Equation", "audio": "Audio", "out": "Output"}
    head, _, rest = label.partition("-")
    if head in kinds and rest:
        return f"{kinds[head]}: {rest.replace('-', ' ').replace('_', ' ')}"
    return label.replace("-", " ").replace("_", " ")


def h_directive_error(node: Node, page: Page) -> str:
    return f'<pre class="myst-unparsed">{esc(node.get("value", ""))}</pre>'


# ----------------------------------------------------------------------------------- outputs
PROGRESS = re.compile(r"\d+%\|.*\||FloatProgress|IntProgress|\bit/s\]")
MIME_ORDER = (
    "application/vnd.jupyter.widget-view+json", "text/html", "image/svg+xml", "image/png", "image/jpeg",
    "image/gif", "image/webp", "text/markdown", "text/latex", "application/json", "text/plain",
)


def h_outputs(node: Node, page: Page) -> str:
    if node.get("visibility") == "remove":
        return ""
    body = kids(node, page)
    if not body.strip():
        return ""
    if node.get("visibility") == "hide":
        return f'<details class="hidden-output"><summary>Show output</summary><div class="outputs">{body}</div></details>'
    return f"<div{attr_id(node)} class=\"outputs\">{body}</div>"


def h_output(node: Node, page: Page) -> str:
    jd = node.get("jupyter_data") or {}
    if not jd and node.get("children"):
        return f'<div class="output">{kids(node, page)}</div>'
    kind = jd.get("output_type")
    if kind == "stream":
        name = jd.get("name", "stdout")
        return f'<pre class="output stream {esc(name)}">{ansi_to_html(scrub_paths(_text(jd.get("text", "")), page))}</pre>'
    if kind == "error":
        tb = jd.get("traceback")
        text = scrub_paths("\n".join(tb) if isinstance(tb, list) else _text(tb) if tb else
                           f"{jd.get('ename', 'Error')}: {jd.get('evalue', '')}", page)
        return (f'<div class="output error"><div class="error-title">{esc(jd.get("ename", "Error"))}: '
                f'{esc(scrub_paths(str(jd.get("evalue", "")), page))}</div><pre>{ansi_to_html(text)}</pre></div>')
    if kind in ("execute_result", "display_data", "update_display_data"):
        return render_mime_bundle(jd.get("data") or {}, jd.get("metadata") or {}, page)
    if node.get("children"):
        return f'<div class="output">{kids(node, page)}</div>'
    return ""


def _text(v: Any) -> str:
    return "".join(v) if isinstance(v, list) else str(v or "")


def _content(entry: Any, page: Page) -> str:
    """The text of one mime entry: inline ``content``, or a file myst wrote (``path``)."""
    if isinstance(entry, dict):
        if entry.get("content") is not None:
            return _text(entry["content"])
        if entry.get("path"):
            return page.text_asset(entry["path"])
        return ""
    return _text(entry)


def render_mime_bundle(data: dict[str, Any], metadata: dict[str, Any], page: Page) -> str:
    """Pick the richest representation the static page can show, as Jupyter does."""
    audio = next((m for m in data if m.startswith("audio/")), None)
    video = next((m for m in data if m.startswith("video/")), None)
    if "application/vnd.jupyter.widget-view+json" in data:
        static = next((m for m in ("image/png", "image/svg+xml", "image/jpeg") if m in data), None)
        img = render_mime(static, data[static], metadata, page) if static else ""
        rep = _content(data.get("text/plain", ""), page)
        if not img and PROGRESS.search(rep):
            # a tqdm progress bar: its state lives in the kernel, the static page shows nothing stale
            return ""
        page.widgets += 1
        return (f'<div class="output widget-placeholder" role="note">{img}<div class="widget-note">'
                f'<strong>Interactive control.</strong> This widget needs a live Python kernel: open the notebook in '
                f'Jupyter, Colab or Binder to use it.<code>{esc(rep)}</code></div></div>')
    for mime in ([audio] if audio else []) + ([video] if video else []) + list(MIME_ORDER):
        if mime in data:
            return render_mime(mime, data[mime], metadata, page)
    for mime in data:                              # anything else: say what it was
        return f'<div class="output unknown-mime">[output of type {esc(mime)}]</div>'
    return ""


def _data_src(mime: str, entry: Any, page: Page) -> str:
    if isinstance(entry, dict) and entry.get("path"):
        return page.internal_url(entry["path"])
    content = _content(entry, page).replace("\n", "")
    return f"data:{mime};base64,{content}"


def render_mime(mime: str, entry: Any, metadata: dict[str, Any], page: Page) -> str:
    if mime.startswith("image/") and mime != "image/svg+xml":
        meta = metadata.get(mime) or {}
        size = "".join(f' {k}="{int(meta[k])}"' for k in ("width", "height") if isinstance(meta.get(k), (int, float)))
        return f'<div class="output image"><img src="{esc(_data_src(mime, entry, page))}" alt="{esc(page.image_alt())}"{size}></div>'
    if mime == "image/svg+xml":
        if isinstance(entry, dict) and entry.get("path") and not entry.get("content"):
            return f'<div class="output image"><img src="{esc(page.internal_url(entry["path"]))}" alt="{esc(page.image_alt())}"></div>'
        svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", _content(entry, page))
        return f'<div class="output image svg">{svg}</div>'
    if mime.startswith("audio/"):
        return f'<div class="output audio"><audio controls preload="metadata" src="{esc(_data_src(mime, entry, page))}"></audio></div>'
    if mime.startswith("video/"):
        return f'<div class="output video"><video controls preload="metadata" src="{esc(_data_src(mime, entry, page))}"></video></div>'
    text = scrub_paths(_content(entry, page), page)
    if mime == "text/html":
        return f'<div class="output html">{strip_remote(text)}</div>'
    if mime == "text/markdown":
        return f'<div class="output markdown">{markdown_to_html(text)}</div>'
    if mime == "text/latex":
        tex = text.strip()
        display = tex.startswith("$$") or tex.startswith(r"\[")
        tex = tex.strip("$").removeprefix(r"\[").removesuffix(r"\]").strip()
        return f'<div class="output latex">{latex_to_mathml(tex, display)}</div>'
    if mime == "application/json":
        try:
            text = json.dumps(json.loads(text) if isinstance(text, str) else text, indent=2)
        except ValueError:
            pass
        return f'<pre class="output json">{esc(text)}</pre>'
    return f'<pre class="output text">{ansi_to_html(text)}</pre>'


# absolute paths of the machine that built the book (home folders, the build checkout, temporary
# files, a virtual environment's site-packages): never shown on a page. A whole folder name: /tmpfoo is not /tmp
MACHINE_PATH = re.compile(
    r"(?<![\w.:/])/(?:root|work|home/[^/\s\"'<>]+|Users/[^/\s\"'<>]+|tmp|private|opt|usr/(?:local/)?lib)"
    r"(?!\.?[\w-])(?:/[^\s\"'<>:,;()\[\]]*)?")


def scrub_paths(text: str, page: Page | None = None) -> str:
    """Replace absolute paths of the build machine in an output with a short relative form:
    ``/root/.venv/lib/python3.11/site-packages/peft/x.py`` -> ``…/site-packages/peft/x.py``,
    ``/work/book/genai_lib/text.py`` -> ``…/genai_lib/text.py``. Counted in ``page.scrubbed_paths`` so
    the build report names the notebook (better: filter the warning in the notebook itself)."""
    def short(m: re.Match) -> str:
        path = m.group(0)
        if page is not None:
            page.scrubbed_paths += 1
        for marker in ("/site-packages/", "/dist-packages/", "/genai_lib/", "/notebooks/", "/chapters/"):
            if marker in path:
                return "…" + marker + path.split(marker, 1)[1]
        tail = path.rstrip("/").rsplit("/", 1)[-1]
        return "…/" + tail if tail else "…"
    return MACHINE_PATH.sub(short, text) if "/" in text else text


def markdown_to_html(text: str) -> str:
    try:
        from markdown_it import MarkdownIt

        return strip_remote(MarkdownIt("commonmark").enable("table").render(text))
    except ImportError:
        return f"<pre>{esc(text)}</pre>"


_REMOTE_TAGS = re.compile(
    r"<(script|link|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>(?:\s*</\1>)?", re.I)
_REMOTE_IMG = re.compile(r"(<img\b[^>]*\bsrc\s*=\s*[\"']?)(?:https?:)?//[^\"'\s>]*", re.I)


def strip_remote(markup: str) -> str:
    """Remove tags in output HTML that would load something from another machine (CDN scripts,
    remote stylesheets and images): the book's pages make no request that leaves the site."""
    markup = _REMOTE_TAGS.sub("<!-- remote resource removed -->", markup)
    return _REMOTE_IMG.sub(r"\1data:,", markup)


# ----------------------------------------------------------------------------------- ANSI
_ANSI = re.compile(r"\x1b\[([0-9;]*)m")
_ANSI_OTHER = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07")   # all but colours (m)


def ansi_to_html(text: str) -> str:
    """Escape text and turn ANSI colour codes (tracebacks, progress bars) into coloured spans."""
    text = _ANSI_OTHER.sub("", text.replace("\r\n", "\n"))
    # carriage returns from progress bars: keep the last state of each line
    # (a line that ends with \r, as tqdm leaves it, keeps the state before that \r)
    text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))
    out, fg, bold, italic, pos, open_span = [], None, False, False, 0, False
    for m in _ANSI.finditer(text):
        out.append(esc(text[pos:m.start()]))
        pos = m.end()
        codes = [int(c) for c in m.group(1).split(";") if c.isdigit()] or [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bold, italic = None, False, False
            elif c == 1:
                bold = True
            elif c == 3:
                italic = True
            elif c in (22,):
                bold = False
            elif c == 23:
                italic = False
            elif 30 <= c <= 37:
                fg = c - 30
            elif 90 <= c <= 97:
                fg = c - 90 + 8
            elif c == 39:
                fg = None
            elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                if c == 38:
                    n = codes[i + 2]
                    fg = n if n < 16 else _xterm_to_basic(n)
                i += 2
            elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                i += 4
            i += 1
        if open_span:
            out.append("</span>")
            open_span = False
        cls = " ".join(x for x in (f"ansi-fg-{fg}" if fg is not None else "", "ansi-bold" if bold else "",
                                   "ansi-italic" if italic else "") if x)
        if cls:
            out.append(f'<span class="{cls}">')
            open_span = True
    out.append(esc(text[pos:]))
    if open_span:
        out.append("</span>")
    return "".join(out)


def _xterm_to_basic(n: int) -> int:
    if n >= 232:                                   # greys
        return 8 if n < 244 else 7
    n -= 16
    r, g, b = n // 36, (n // 6) % 6, n % 6
    code = (1 if r >= 2 else 0) | (2 if g >= 2 else 0) | (4 if b >= 2 else 0)
    return code + (8 if max(r, g, b) >= 4 else 0)


# ----------------------------------------------------------------------------------- table
HANDLERS: dict[str, Callable[[Node, Page], str]] = {
    "root": lambda n, p: kids(n, p),
    "block": h_block,
    "paragraph": tag("p"),
    "heading": h_heading,
    "text": h_text,
    "emphasis": tag("em"),
    "strong": tag("strong"),
    "underline": tag("u"),
    "delete": tag("del"),
    "subscript": tag("sub"),
    "superscript": tag("sup"),
    "smallcaps": tag("span", cls="smallcaps"),
    "keyboard": tag("kbd"),
    "abbreviation": h_abbr,
    "inlineCode": h_inline_code,
    "break": h_break,
    "thematicBreak": lambda n, p: "<hr>",
    "blockquote": tag("blockquote"),
    "list": h_list,
    "listItem": h_list_item,
    "link": h_link,
    "html": h_html,
    "comment": h_nothing,
    "target": h_nothing,
    "code": h_code,
    "math": h_math,
    "inlineMath": h_inline_math,
    "admonition": h_admonition,
    "admonitionTitle": h_title_div("admonition-title"),
    "container": h_container,
    "caption": h_caption,
    "legend": h_legend,
    "captionNumber": h_caption_number,
    "image": h_image,
    "table": h_table,
    "tableRow": tag("tr"),
    "tableCell": h_table_cell,
    "citeGroup": h_cite_group,
    "cite": h_cite,
    "crossReference": h_xref,
    "footnoteReference": h_footnote_ref,
    "footnoteDefinition": h_footnote_def,
    "definitionList": tag("dl"),
    "definitionTerm": tag("dt"),
    "definitionDescription": tag("dd"),
    "details": h_details,
    "summary": tag("summary"),
    "tabSet": h_tabset,
    "tabItem": lambda n, p: kids(n, p),
    "card": h_card,
    "cardTitle": h_title_div("card-title"),
    "header": h_title_div("card-header"),
    "footer": h_title_div("card-footer"),
    "grid": h_grid,
    "aside": lambda n, p: f'<aside{attr_id(n)} class="margin-note">{kids(n, p)}</aside>',
    "iframe": h_iframe,
    "proof": h_proof,
    "exercise": h_proof,
    "solution": h_proof,
    "embed": h_embed,
    "include": lambda n, p: kids(n, p),
    "glossary": lambda n, p: f'<div class="glossary">{kids(n, p)}</div>',
    "outputs": h_outputs,
    "output": h_output,
    "div": lambda n, p: f"<div{attr_id(n)}{classes(n.get('class'))}>{kids(n, p)}</div>",
    "span": lambda n, p: f"<span{attr_id(n)}{classes(n.get('class'))}>{kids(n, p)}</span>",
    "si": h_span_value,
    "chemicalFormula": h_span_value,
    "mermaid": lambda n, p: f'<pre class="mermaid-source">{esc(n.get("value", ""))}</pre>',
    "mystDirective": h_directive_error,
    "mystRole": h_directive_error,
    "mystTarget": h_nothing,
    # raw content for one output format (``{raw} latex``): only raw HTML belongs on a web page
    "raw": lambda n, p: strip_remote(n.get("value", "")) if n.get("lang") == "html" else "",
}

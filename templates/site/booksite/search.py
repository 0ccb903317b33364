"""The book's search index: one entry per page section (the text under a heading).

The site loads it as ``search-index.js`` (a global, so it works from a file server and from disk)
and searches it in the browser with MiniSearch (``assets/minisearch.js``, from npm) driven by
``assets/book.js``: prefix and typo-tolerant matching, accents folded. Nothing leaves the machine.

Math stays in the index twice: as readable Unicode in the text (``ᾱₜ``, shown in result snippets) and
as its LaTeX source in the ``m`` field (so ``alpha`` or ``frac`` find the section).
"""

from __future__ import annotations

import re
from typing import Any

from booksite.nodes import tex_to_text


def _text(node: Any) -> str:
    """Readable text for the index: math as Unicode, citations set apart from the words around them."""
    if isinstance(node, list):
        return "".join(_text(n) for n in node)
    if not isinstance(node, dict) or node.get("type") in ("footnoteReference", "comment"):
        return ""
    if node.get("type") in ("inlineMath", "math"):
        return " " + tex_to_text(str(node.get("value", ""))) + " "
    if node.get("type") in ("text", "inlineCode"):
        return str(node.get("value", ""))
    if node.get("type") in ("cite", "citeGroup"):          # "(Ho et al., 2020)" never glued to a word
        return " " + _text(node.get("children") or []) + " "
    return _text(node.get("children") or [])


def _math(node: Any) -> list[str]:
    """The LaTeX sources of the math in a node (indexed, not shown)."""
    if isinstance(node, list):
        return [m for n in node for m in _math(n)]
    if not isinstance(node, dict):
        return []
    if node.get("type") in ("inlineMath", "math"):
        return [str(node.get("value", ""))]
    return _math(node.get("children") or [])

SKIP = {"outputs", "output", "code", "comment", "footnoteDefinition", "mystDirective"}
MAX_TEXT = 4000


def _sections(mdast: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Split a page into (heading id, heading text, body text) in document order."""
    out = [{"id": "", "heading": "", "text": [], "math": []}]

    def walk(node: dict[str, Any]) -> None:
        t = node.get("type")
        if t == "heading":
            out.append({"id": node.get("html_id") or node.get("identifier") or "",
                        "heading": _text(node).strip(), "text": [], "math": _math(node)})
            return
        if t in SKIP:
            return
        if t in ("paragraph", "listItem", "tableCell", "definitionDescription", "caption", "admonitionTitle", "math"):
            out[-1]["text"].append(_text(node))
            out[-1]["math"] += _math(node)
            return
        for c in node.get("children") or []:
            walk(c)

    if mdast:
        walk(mdast)
    return out


def build_index(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Args: docs: ``{slug, href, title, mdast}`` per page. Returns: a list of searchable entries
    ``{t: page title, h: section heading, u: url with anchor, x: section text}``, plus ``m`` (the
    LaTeX of the section's math) where it has math."""
    index = []
    for d in docs:
        for s in _sections(d.get("mdast")):
            text = re.sub(r"\s+", " ", " ".join(s["text"])).strip()
            text = re.sub(r" ([.,;:!?)])", r"\1", text)[:MAX_TEXT]
            if not text and not s["heading"] and s["id"]:
                continue
            url = d["href"] + (f"#{s['id']}" if s["id"] else "")
            entry = {"t": d["title"], "h": s["heading"], "u": url, "x": text}
            if s["math"]:
                entry["m"] = " ".join(dict.fromkeys(s["math"]))[:MAX_TEXT]
            index.append(entry)
    return index

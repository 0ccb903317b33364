"""The book's search index: one entry per page section (the text under a heading).

The site loads it as ``search-index.js`` (a global, so it works from a file server and from disk)
and searches it in the browser with ``assets/book.js``; nothing leaves the machine.
"""

from __future__ import annotations

import re
from typing import Any

from booksite.nodes import plain_text


def _text(node: Any) -> str:
    """Readable text for the index: like ``plain_text`` but without LaTeX sources and code."""
    if isinstance(node, list):
        return "".join(_text(n) for n in node)
    if not isinstance(node, dict) or node.get("type") in ("inlineMath", "math", "footnoteReference", "comment"):
        return ""
    if node.get("type") in ("text", "inlineCode"):
        return str(node.get("value", ""))
    return _text(node.get("children") or [])

SKIP = {"outputs", "output", "code", "comment", "footnoteDefinition", "math", "mystDirective"}
MAX_TEXT = 4000


def _sections(mdast: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Split a page into (heading id, heading text, body text) in document order."""
    out = [{"id": "", "heading": "", "text": []}]

    def walk(node: dict[str, Any]) -> None:
        t = node.get("type")
        if t == "heading":
            out.append({"id": node.get("html_id") or node.get("identifier") or "",
                        "heading": plain_text(node), "text": []})
            return
        if t in SKIP:
            return
        if t in ("paragraph", "listItem", "tableCell", "definitionDescription", "caption", "admonitionTitle"):
            out[-1]["text"].append(_text(node))
            return
        for c in node.get("children") or []:
            walk(c)

    if mdast:
        walk(mdast)
    return out


def build_index(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Args: docs: ``{slug, href, title, mdast}`` per page. Returns: a list of searchable entries
    ``{t: page title, h: section heading, u: url with anchor, x: section text}``."""
    index = []
    for d in docs:
        for s in _sections(d.get("mdast")):
            text = re.sub(r"\s+", " ", " ".join(s["text"])).strip()[:MAX_TEXT]
            if not text and not s["heading"] and s["id"]:
                continue
            url = d["href"] + (f"#{s['id']}" if s["id"] else "")
            index.append({"t": d["title"], "h": s["heading"], "u": url, "x": text})
    return index

"""Check the built pages for quoted values that did not come from the run.

Chapters quote what their notebook measured by embedding the notebook's labelled output
(``![](#label)`` or ``{embed}``) or with an inline expression (``{eval}``). myst does not fail the
build when either goes wrong, it quietly writes a page without the value:

- an embed whose label no executed notebook defines is left empty, and myst logs nothing;
- an inline expression on a page that was not executed is left without a result (the official
  theme shows "Unexecuted inline expression"), and one that raised keeps an error result.

:func:`problems` reads the page content myst wrote (``_build/site/content/*.json``) and lists every
such hole, so that the book build can fail with the page and the label. ``scripts/build_book.py``
calls it after myst has executed the pages; run it alone as
``python scripts/check_pages.py [_build/site/content]``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _nodes(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for child in node.get("children") or []:
            yield from _nodes(child)
    elif isinstance(node, list):
        for child in node:
            yield from _nodes(child)


def _has_output(node: dict) -> bool:
    return any(n.get("type") in ("output", "image", "table", "code", "paragraph", "text", "math", "container")
               for child in node.get("children") or [] for n in _nodes(child))


def page_problems(page: dict, name: str) -> list[str]:
    """The holes in one page's content (myst's JSON for that page)."""
    found = []
    for node in _nodes(page.get("mdast")):
        kind = node.get("type")
        if kind == "embed":
            label = (node.get("source") or {}).get("label") or node.get("label") or "?"
            if not _has_output(node):
                found.append(f"{name}: the embedded output #{label} was not found (no notebook cell or page in the "
                             f"table of contents defines the label '{label}', or the cell printed nothing)")
            for n in _nodes(node):
                if n.get("type") == "output" and (n.get("jupyter_data") or {}).get("output_type") == "error":
                    found.append(f"{name}: the embedded output #{label} is an error")
        elif kind == "inlineExpression":
            result = node.get("result")
            if not result:
                found.append(f"{name}: the inline expression {{eval}}`{node.get('value')}` was not executed "
                             "(the page needs a kernelspec and the build --execute)")
            elif result.get("status") != "ok":
                found.append(f"{name}: the inline expression {{eval}}`{node.get('value')}` raised "
                             f"{result.get('ename', '')}: {result.get('evalue', '')}")
        elif kind == "text" and "Unexecuted inline expression" in str(node.get("value", "")):
            found.append(f"{name}: shows 'Unexecuted inline expression'")
    return found


def problems(content_dir: Path) -> list[str]:
    """Every empty embed and unexecuted or failed inline expression in the built pages.

    Args:
        content_dir: the folder of myst's page content, ``_build/site/content``.

    Returns:
        One line per problem, naming the page (empty when all is well).
    """
    files = sorted(Path(content_dir).glob("*.json"))
    if not files:
        return [f"no page content in {content_dir}: myst did not build the pages"]
    found = []
    for path in files:
        try:
            page = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            found.append(f"{path.name}: cannot read the page content ({err})")
            continue
        where = (page.get("location") or path.stem).lstrip("/")
        found += page_problems(page, where)
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    content = Path(args[0]) if args else REPO / "_build" / "site" / "content"
    found = problems(content)
    for line in found:
        print(line)
    print(f"check_pages: {len(found)} problem(s) in {content}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""The project as the build sees it: the pages of the table of contents, which of them execute, the
docx/PDF exports they declare, and which HTML site (if any) the build writes."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import BuildError


def read_frontmatter(path: Path) -> dict:
    """The YAML frontmatter of a MyST markdown page, or the metadata of a notebook."""
    if path.suffix == ".ipynb":
        return json.loads(path.read_text()).get("metadata", {})
    text = path.read_text()
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            return yaml.safe_load(text[4:end]) or {}
    return {}


def toc_files(root: Path, config: dict) -> list[Path]:
    """Every file named in myst.yml's table of contents (nested children included)."""
    out: list[Path] = []

    def walk(items):
        for item in items or []:
            if isinstance(item, dict):
                if "file" in item:
                    out.append(root / item["file"])
                walk(item.get("children"))
    walk(config.get("project", {}).get("toc"))
    return [p for p in out if p.exists()]


def code_cells(path: Path) -> list[tuple[str, str]]:
    """The executable code cells of a page, in the order myst runs them, as ``(source, where)``:
    ``where`` is ``"notebook cell K"`` for a notebook and ``"line L"`` for a MyST markdown page."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        cells = []
        for k, c in enumerate(nb.get("cells", []), start=1):
            if c.get("cell_type") != "code" or "skip-execution" in c.get("metadata", {}).get("tags", []):
                continue
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            cells.append((src, f"notebook cell {k}"))
        return cells
    text = path.read_text()
    return [(m.group(2), f"line {text.count(chr(10), 0, m.start()) + 1}")
            for m in re.finditer(r"^(`{3,}|~{3,})\{code-cell\}[^\n]*\n(.*?)^\1", text, re.S | re.M)]


def is_executable(path: Path) -> bool:
    fm = read_frontmatter(path)
    return bool(fm.get("kernelspec")) and bool(code_cells(path)) and not (fm.get("execute") or {}).get("skip")


@dataclass
class Export:
    source: Path
    format: str
    output: Path


def declared_exports(root: Path, pages: list[Path]) -> list[Export]:
    """The docx and PDF exports that pages declare in their frontmatter (``exports:``)."""
    out = []
    for page in pages:
        fm = read_frontmatter(page)
        items = fm.get("exports") or fm.get("export") or []
        for item in items if isinstance(items, list) else [items]:
            fmt = item if isinstance(item, str) else item.get("format", "")
            fmt = {"typst": "typst", "word": "docx"}.get(fmt, fmt)
            output = item.get("output") if isinstance(item, dict) else None
            ext = {"docx": ".docx", "pdf": ".pdf", "typst": ".pdf"}.get(fmt)
            if ext is None:
                continue
            if output and Path(output).suffix:
                target = (page.parent / output).resolve()
            else:  # myst's default: _build/exports/<page>.<ext>, or <output>/<page>.<ext>
                folder = (page.parent / output).resolve() if output else root / "_build" / "exports"
                target = folder / f"{page.stem}{ext}"
            out.append(Export(page, "pdf" if fmt == "typst" and target.suffix == ".pdf" else fmt, target))
    return out



def site_mode(root: Path, config: dict) -> tuple[str | None, str]:
    """``(mode, message)``: mode is ``"local"``, ``"book-theme"`` or ``None`` (no HTML site)."""
    theme = os.environ.get("GENAI_SITE_THEME", "").strip()
    if theme:
        if theme != "book-theme":
            raise BuildError(f"GENAI_SITE_THEME={theme!r} is not supported; use 'book-theme' (myst's official "
                             "theme, downloaded from the web) or leave it unset for the book's own template.")
        return "book-theme", "HTML site: myst's official book-theme (GENAI_SITE_THEME=book-theme; needs internet)"
    tpl = (config.get("site") or {}).get("template")
    if tpl and (root / tpl / "template.yml").exists():
        return "local", f"HTML site: the book's own template ({tpl})"
    if (root / "templates" / "site" / "template.yml").exists():
        return None, ("HTML site NOT built: templates/site exists but myst.yml does not name it "
                      "(add `site: template: ./templates/site`).")
    return None, "HTML site NOT built: the book's site template (templates/site) does not exist yet."


def runs_after(page: Path) -> list[str]:
    """The notebooks whose cached models ``page`` reuses: its notebook metadata ``genai.runs_after``.

    Such a notebook still runs alone (it trains what it needs when the cache lacks it); in a book build
    it is only faster when those notebooks ran first.
    """
    if page.suffix != ".ipynb":
        return []
    try:
        meta = json.loads(page.read_text()).get("metadata") or {}
    except (OSError, ValueError):
        return []
    return [str(name) for name in (meta.get("genai") or {}).get("runs_after") or []]


def execution_order(pages: list[Path], expected_s: dict[str, float]) -> list[Path]:
    """The executable pages, longest expected run first (then in table-of-contents order).

    With several notebooks executing at once, starting the longest ones first keeps a long notebook
    from starting last and running alone at the end (longest-processing-time-first scheduling).
    ``expected_s`` maps a page's stem (``diffusion``) to its expected seconds; unknown pages count 0.
    Pages that reuse another page's cached model (:func:`runs_after`) come after all the others, so
    that page has long finished when they start, and the model is trained once per build, not twice.
    """
    runnable = [p for p in pages if is_executable(p)]
    ordered = sorted(runnable, key=lambda p: -float(expected_s.get(p.stem, 0.0)))
    stems = {p.stem for p in runnable}
    later = [p for p in ordered if stems.intersection(runs_after(p))]
    return [p for p in ordered if p not in later] + later

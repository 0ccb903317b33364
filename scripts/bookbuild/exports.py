"""The paper's exports after myst wrote them: check each one, finish the Word file (``docx``), and put
the very same files where the HTML site offers them for download.

myst copies every export into the site's public folder while it builds the site, that is *before*
the build finishes the docx; the site would offer a different file than ``exports/``. So, as the
build's last step, :func:`publish_to_site` copies each finished export over the site's copies
(``_build/site/public/<name>`` and ``_build/html/build/<name>``, named as myst's page JSON says).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

from . import docx
from .project import Export, read_frontmatter


def check_export(exp: Export, since: float) -> str | None:
    """Why an export is not good, or ``None`` when it exists, is non-empty, new, and well formed."""
    p = exp.output
    if not p.exists():
        return "was not written"
    if p.stat().st_size == 0:
        return "is empty"
    if p.stat().st_mtime < since - 1:
        return "is left over from an earlier build (this build did not write it)"
    if p.suffix == ".docx":
        try:
            with zipfile.ZipFile(p) as z:
                if "word/document.xml" not in z.namelist():
                    return "is not a Word document (no word/document.xml)"
        except zipfile.BadZipFile:
            return "is not a valid .docx (zip) file"
    if p.suffix == ".pdf":
        with open(p, "rb") as f:
            if f.read(5) != b"%PDF-":
                return "is not a PDF"
    return None


def finish_export(exp: Export, project: dict, built: dt.date | None = None) -> dict:
    """Finish a checked export in place (the docx; a PDF needs nothing). Returns what was done."""
    if exp.format != "docx":
        return {}
    return docx.finish(exp.output, read_frontmatter(exp.source), project, built)


def site_copies(root: Path, exp: Export) -> list[Path]:
    """The files the site offers for this export: named in the page JSON myst wrote for the site."""
    content = root / "_build" / "site" / "content"
    names = set()
    for f in content.rglob("*.json") if content.exists() else []:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        fm = data.get("frontmatter") or {}
        source = str(data.get("location") or "")
        if source and Path(source.lstrip("/")).stem != exp.source.stem:
            continue
        for e in fm.get("exports") or []:
            url = str(e.get("url") or "")
            if url.startswith("/") and Path(url).suffix == exp.output.suffix:
                names.add(Path(url).name)
    out = []
    for name in sorted(names):
        for folder in (root / "_build" / "site" / "public", root / "_build" / "html" / "build"):
            if (folder / name).exists():
                out.append(folder / name)
    return out


def publish_to_site(root: Path, exports: list[Export]) -> list[str]:
    """Copy each export over the site's copies of it, so that the site offers the same bytes.

    Returns:
        The site files written, relative to ``root``.
    """
    written = []
    for exp in exports:
        if not exp.output.exists():
            continue
        for target in site_copies(root, exp):
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(exp.output, tmp)
            tmp.replace(target)
            written.append(str(target.relative_to(root)))
    return written

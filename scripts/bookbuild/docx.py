"""Finishing myst's Word export so that an author can hand it in.

myst's Word writer (mystmd 1.11) leaves five things to do, all done here on the written file:

1. **Front matter**: it puts only the title and the authors at the top; the abstract, the keywords
   and the dates (the paper's own date, and "last updated" = the day of this build) go under them.
2. **Equations**: it writes each equation as an ``m:oMath`` element holding the LaTeX source as text,
   so Word shows raw LaTeX. Each one is converted to real Office Math (OMML) with pandoc (Debian
   ``pandoc``; its ``texmath`` library is the reference LaTeX-to-OMML converter; docs/BUILD.md says
   why not a PyPI package), in one pandoc run for the whole document.
3. **Styles**: its ``styles.xml`` has no default paragraph style (paragraphs without ``w:pStyle``
   resolve to nothing) and no ``Caption`` style although table and figure captions use it. A
   ``Normal`` default paragraph style, a default character style and ``Caption`` are added.
4. **Code and tables**: code runs use a font named "Monospace" that Windows and macOS do not have; they
   get Consolas, and a font table that says it is a fixed-pitch font with Courier New as its
   alternative; code lines get a single-spaced ``SourceCode`` style. Tables span the text width
   (myst writes 100-twip columns, which LibreOffice shows as slivers).
5. **Document properties**: the author is "Un-named"; it becomes the page's authors, and the creation
   date the paper's date.

The file is rewritten atomically (a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from . import BuildError

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
NS = {"w": W, "m": M}
CODE_FONT, CODE_FONT_ALT = "Consolas", "Courier New"  # Windows and Office for Mac have both
FONT_TABLE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/fontTable"
FONT_TABLE_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.fontTable+xml"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def long_date(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def as_date(value) -> dt.date | None:
    """A frontmatter date (``2025-05-15``, a date, or a datetime) as a date; None when missing."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------
# 1. front matter (python-docx)
# ----------------------------------------------------------------------------------------------
def add_front_matter(path: Path, fm: dict, built: dt.date) -> bool:
    """Add the abstract, the keywords and the dates under the title and the authors.

    Returns:
        True when something was added (False when the file already has it, or the page has none).
    """
    abstract = str(fm.get("abstract") or "").strip()
    keywords = fm.get("keywords")
    date = as_date(fm.get("date"))
    import docx  # python-docx (the `book` extra)

    doc = docx.Document(str(path))
    paras = doc.paragraphs
    flat = lambda t: re.sub(r"\s+", " ", t).strip()  # noqa: E731
    plain = flat(re.sub(r"[*_`]|\[@[^\]]*\]|\{[^}]*\}", "", abstract))
    text = flat(" ".join(p.text for p in paras))
    if not paras or (plain and plain[:60] in text) or "Last updated:" in text:
        return False
    i = 1  # after the title: skip the author lines that follow it
    while i < len(paras) and paras[i].style is not None and paras[i].style.name.startswith("Heading") \
            and paras[i].style.name not in ("Heading 1", "Heading 2"):
        i += 1
    if i >= len(paras):
        return False
    anchor = paras[i]
    para = anchor.insert_paragraph_before()
    if date:
        para.add_run("Published ").bold = True
        para.add_run(f"{long_date(date)} · ")
    para.add_run("Last updated: ").bold = True
    para.add_run(long_date(built))
    if plain:
        for k, chunk in enumerate(c for c in re.split(r"\n\s*\n", abstract) if c.strip()):
            para = anchor.insert_paragraph_before()
            if k == 0:
                para.add_run("Abstract. ").bold = True
            para.add_run(flat(re.sub(r"[*_`]", "", chunk)))
    if keywords:
        words = keywords if isinstance(keywords, str) else ", ".join(map(str, keywords))
        para = anchor.insert_paragraph_before()
        para.add_run("Keywords: ").bold = True
        para.add_run(words)
    doc.save(str(path))
    return True


# ----------------------------------------------------------------------------------------------
# 2. equations: LaTeX text -> Office Math (pandoc)
# ----------------------------------------------------------------------------------------------
def pandoc() -> str:
    exe = shutil.which("pandoc")
    if not exe:
        raise BuildError("pandoc is not installed: the Word export needs it to turn the paper's LaTeX equations "
                         "into Word equations. Run `make system` (or `apt-get install pandoc`).")
    return exe


def latex_to_omml(sources: list[str]) -> list:
    """Convert LaTeX math to OMML ``m:oMath`` elements (lxml), one pandoc run for all of them.

    Raises:
        BuildError: when pandoc is missing or cannot convert an equation (it names the equation).
    """
    from lxml import etree

    if not sources:
        return []
    exe = pandoc()
    api = json.loads(subprocess.run([exe, "-f", "markdown", "-t", "json"], input="", capture_output=True,
                                    text=True, check=True).stdout)["pandoc-api-version"]
    blocks = [{"t": "Para", "c": [{"t": "Math", "c": [{"t": "InlineMath"}, src]}]} for src in sources]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "math.docx"
        res = subprocess.run([exe, "-f", "json", "-t", "docx", "-o", str(out)], capture_output=True, text=True,
                             input=json.dumps({"pandoc-api-version": api, "meta": {}, "blocks": blocks}))
        bad = re.findall(r"Could not convert TeX math\s*(.*?)(?:, rendering as TeX|$)", res.stderr, re.S | re.M)
        if res.returncode != 0 or bad:
            raise BuildError(f"pandoc could not convert an equation of the Word export to Office Math: "
                             f"{(bad[0] if bad else res.stderr).strip()[:300]}. Write it in LaTeX that pandoc "
                             "(texmath) understands.")
        with zipfile.ZipFile(out) as z:
            root = etree.fromstring(z.read("word/document.xml"))
    found = root.findall(".//m:oMath", NS)
    if len(found) != len(sources):
        raise BuildError(f"pandoc returned {len(found)} equations for {len(sources)}; the Word export's "
                         "equations were left as LaTeX.")
    return found


def convert_equations(doc) -> int:
    """Replace every ``m:oMath`` that holds LaTeX text by its Office Math form. Returns how many."""
    maths = [m for m in doc.iter(f"{{{M}}}oMath") if not m.findall(".//m:f", NS)
             and len(m.findall("m:r", NS)) == 1 and len(m) == 1]
    sources = ["".join(m.itertext()) for m in maths]
    for old, new in zip(maths, latex_to_omml(sources)):
        old.getparent().replace(old, new)
    return len(maths)


# ----------------------------------------------------------------------------------------------
# 3.-5. styles, code font, properties (lxml on the package parts)
# ----------------------------------------------------------------------------------------------
STYLES = {  # styleId -> the style's XML (added when styles.xml lacks it)
    "Normal": f'<w:style xmlns:w="{W}" w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
              '<w:qFormat/><w:pPr><w:spacing w:after="120" w:line="264" w:lineRule="auto"/></w:pPr>'
              '<w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri" w:cs="Calibri"/>'
              '<w:sz w:val="22"/><w:szCs w:val="22"/></w:rPr></w:style>',
    "DefaultParagraphFont": f'<w:style xmlns:w="{W}" w:type="character" w:default="1" w:styleId="DefaultParagraphFont">'
                            '<w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/>'
                            '<w:unhideWhenUsed/></w:style>',
    "SourceCode": f'<w:style xmlns:w="{W}" w:type="paragraph" w:styleId="SourceCode"><w:name w:val="Source Code"/>'
                  '<w:basedOn w:val="Normal"/><w:qFormat/><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/>'
                  f'</w:pPr><w:rPr><w:rFonts w:ascii="{CODE_FONT}" w:hAnsi="{CODE_FONT}" w:eastAsia="{CODE_FONT}" '
                  f'w:cs="{CODE_FONT}"/><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr></w:style>',
    "Caption": f'<w:style xmlns:w="{W}" w:type="paragraph" w:styleId="Caption"><w:name w:val="caption"/>'
               '<w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="35"/><w:unhideWhenUsed/>'
               '<w:qFormat/><w:pPr><w:keepLines/><w:spacing w:before="60" w:after="200"/></w:pPr>'
               '<w:rPr><w:i/><w:iCs/><w:color w:val="404040"/><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr></w:style>',
}


def fix_styles(styles) -> list[str]:
    """Add the default paragraph and character styles and ``Caption`` where missing. Returns their ids."""
    from lxml import etree

    have = {s.get(f"{{{W}}}styleId"): s for s in styles.findall("w:style", NS)}
    added = []
    for sid, xml in STYLES.items():
        if sid in have:
            continue
        el = etree.fromstring(xml)
        defaults = styles.find("w:docDefaults", NS)
        if sid != "Normal":
            styles.append(el)
        elif defaults is not None:
            defaults.addnext(el)  # Normal first, right after the document defaults
        else:
            styles.insert(0, el)
        added.append(sid)
    for s in styles.findall("w:style", NS):  # other paragraph styles that claim default lose it
        if s.get(f"{{{W}}}type") == "paragraph" and s.get(f"{{{W}}}styleId") != "Normal" and s.get(f"{{{W}}}default"):
            del s.attrib[f"{{{W}}}default"]
    return added


def fix_code_font(doc) -> int:
    """Code runs in the font "Monospace" (no such font on Windows or macOS) get ``CODE_FONT``."""
    n = 0
    for fonts in doc.iter(f"{{{W}}}rFonts"):
        for attr in ("ascii", "hAnsi", "cs", "eastAsia"):
            if fonts.get(f"{{{W}}}{attr}") == "Monospace":
                fonts.set(f"{{{W}}}{attr}", CODE_FONT)
                n += 1
    return n


def style_code_paragraphs(doc) -> int:
    """Paragraphs that are all code (the lines of a code block or of a cell's output) get the style
    ``SourceCode`` (single-spaced, no space after), instead of the spacing of body text."""
    n = 0
    for p in doc.iter(f"{{{W}}}p"):
        runs = [r for r in p.findall("w:r", NS) if "".join(r.itertext()).strip()]
        if not runs or p.find("w:pPr/w:pStyle", NS) is not None or p.find(".//m:oMath", NS) is not None:
            continue
        if all(r.find("w:rPr/w:rFonts", NS) is not None
               and r.find("w:rPr/w:rFonts", NS).get(f"{{{W}}}ascii") == CODE_FONT for r in runs):
            ppr = p.find("w:pPr", NS)
            if ppr is None:
                ppr = p.makeelement(f"{{{W}}}pPr", {})
                p.insert(0, ppr)
            style = ppr.makeelement(f"{{{W}}}pStyle", {f"{{{W}}}val": "SourceCode"})
            ppr.insert(0, style)
            n += 1
            prev = p.getprevious()
            if prev is not None and prev.find("w:pPr/w:pStyle[@w:val='SourceCode']", NS) is not None:
                space = prev.find("w:pPr/w:spacing", NS)  # only the last line of a block keeps a gap
                if space is not None:
                    space.getparent().remove(space)
            if ppr.find("w:spacing", NS) is None:
                ppr.insert(1, ppr.makeelement(f"{{{W}}}spacing", {f"{{{W}}}after": "160"}))
    return n


def fit_tables(doc, text_width: int) -> int:
    """Tables span the text width with equal columns (myst writes 100-twip columns, which Word
    stretches but LibreOffice and others show as slivers)."""
    n = 0
    for tbl in doc.iter(f"{{{W}}}tbl"):
        cols = tbl.findall("w:tblGrid/w:gridCol", NS)
        tblw = tbl.find("w:tblPr/w:tblW", NS)
        if tblw is not None:
            tblw.set(f"{{{W}}}type", "pct")
            tblw.set(f"{{{W}}}w", "5000")
        for col in cols:
            col.set(f"{{{W}}}w", str(text_width // max(1, len(cols))))
        n += 1
    return n


def text_width(doc) -> int:
    """The width between the page margins, in twips (myst writes margins like ``1in``)."""
    def twips(v: str | None, default: int) -> int:
        if not v:
            return default
        m = re.fullmatch(r"([\d.]+)(in|cm|mm|pt)?", v)
        if not m:
            return default
        scale = {"in": 1440, "cm": 1440 / 2.54, "mm": 144 / 2.54, "pt": 20, None: 1}[m.group(2)]
        return int(float(m.group(1)) * scale)
    size, margins = doc.find(".//w:sectPr/w:pgSz", NS), doc.find(".//w:sectPr/w:pgMar", NS)
    width = twips(size.get(f"{{{W}}}w") if size is not None else None, 11906)
    left = twips(margins.get(f"{{{W}}}left") if margins is not None else None, 1440)
    right = twips(margins.get(f"{{{W}}}right") if margins is not None else None, 1440)
    return width - left - right


def font_table() -> bytes:
    fonts = [(CODE_FONT, CODE_FONT_ALT, "modern", "fixed"), (CODE_FONT_ALT, None, "modern", "fixed"),
             ("Calibri", "Carlito", "swiss", "variable"), ("Cambria Math", None, "roman", "variable")]
    body = "".join(f'<w:font w:name="{name}">' + (f'<w:altName w:val="{alt}"/>' if alt else "")
                   + f'<w:family w:val="{family}"/><w:pitch w:val="{pitch}"/></w:font>'
                   for name, alt, family, pitch in fonts)
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:fonts xmlns:w="{W}">{body}</w:fonts>').encode()


def fix_properties(core: bytes, authors: list[str], created: dt.date | None) -> bytes:
    """The document properties: the authors instead of "Un-named"; created = the paper's date."""
    from lxml import etree

    root = etree.fromstring(core)
    ns = {"dc": "http://purl.org/dc/elements/1.1/", "dcterms": "http://purl.org/dc/terms/",
          "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"}
    for tag in ("dc:creator", "cp:lastModifiedBy"):
        el = root.find(tag, ns)
        if el is not None and authors:
            el.text = "; ".join(authors)
    el = root.find("dcterms:created", ns)
    if el is not None and created:
        el.text = f"{created.isoformat()}T00:00:00Z"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def finish_package(path: Path, authors: list[str], created: dt.date | None) -> dict:
    """Equations, styles, code font, font table and properties of a docx, rewritten atomically."""
    from lxml import etree

    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i.filename) for i in z.infolist()}
    doc = etree.fromstring(parts["word/document.xml"])
    styles = etree.fromstring(parts["word/styles.xml"])
    report = {"equations": convert_equations(doc), "styles_added": fix_styles(styles),
              "code_runs": fix_code_font(doc)}
    report.update(code_paragraphs=style_code_paragraphs(doc), tables=fit_tables(doc, text_width(doc)))
    parts["word/document.xml"] = etree.tostring(doc, xml_declaration=True, encoding="UTF-8", standalone=True)
    parts["word/styles.xml"] = etree.tostring(styles, xml_declaration=True, encoding="UTF-8", standalone=True)
    if "docProps/core.xml" in parts:
        parts["docProps/core.xml"] = fix_properties(parts["docProps/core.xml"], authors, created)
    if "word/fontTable.xml" not in parts:
        parts["word/fontTable.xml"] = font_table()
        rels = parts["word/_rels/document.xml.rels"].decode()
        rels = rels.replace("</Relationships>", f'<Relationship Id="rIdGenaiFontTable" Type="{FONT_TABLE_REL}" '
                                                 'Target="fontTable.xml"/></Relationships>')
        parts["word/_rels/document.xml.rels"] = rels.encode()
        types = parts["[Content_Types].xml"].decode()
        types = types.replace("</Types>", f'<Override PartName="/word/fontTable.xml" ContentType="{FONT_TABLE_TYPE}"/></Types>')
        parts["[Content_Types].xml"] = types.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in parts.items():
                z.writestr(name, data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return report


def author_names(fm: dict, project: dict | None = None) -> list[str]:
    """The page's authors (else the project's), as names."""
    authors = fm.get("authors") or (project or {}).get("authors") or []
    names = [a.get("name") if isinstance(a, dict) else str(a) for a in authors]
    return [n if isinstance(n, str) else " ".join(str(v) for v in (n or {}).values()) for n in names if n]


def finish(path: Path, fm: dict, project: dict | None = None, built: dt.date | None = None) -> dict:
    """Everything above, on the docx at ``path`` exported from a page with frontmatter ``fm``."""
    added = add_front_matter(path, fm, built or dt.date.today())
    report = finish_package(path, author_names(fm, project), as_date(fm.get("date")))
    return {"front_matter": added, **report}

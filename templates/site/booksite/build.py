"""Write the book's static site from myst's JSON content.

myst (``myst build --html``) runs this template's ``render`` command with two variables set:
``CONTENT_CDN`` (the URL of its content server: ``/config.json``, ``/content/<slug>.json`` and the
public files such as ``/<hash>.png``) and ``BUILD_DIRECTORY`` (where the site goes, ``_build/html``).
Without a content server, ``--site-dir _build/site`` reads the same files from disk.

The site is flat and uses relative links only (``index.html``, ``paper.html``, ``build/<file>``,
``assets/...``), so it works under any base URL (a GitHub project page) and from a plain file server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pygments.formatters import HtmlFormatter

from booksite import katex as katex_renderer
from booksite import nodes
from booksite.search import build_index

HERE = Path(__file__).resolve().parent.parent          # templates/site
KATEX_DIST = HERE / "node_modules" / "katex" / "dist"
MINISEARCH_JS = HERE / "node_modules" / "minisearch" / "dist" / "umd" / "index.js"
THEBE_DIST = HERE / "node_modules" / "thebe" / "lib"


class Source:
    """Reads myst's content from its content server, or from ``_build/site`` on disk."""

    def __init__(self, cdn: str | None = None, site_dir: Path | None = None):
        self.cdn = cdn.rstrip("/") if cdn else None
        self.site_dir = site_dir

    def read(self, path: str) -> bytes:
        path = "/" + path.lstrip("/")
        if self.cdn:
            url = self.cdn + urllib.parse.quote(path)
            for attempt in range(3):
                try:
                    with urllib.request.urlopen(url, timeout=60) as resp:
                        return resp.read()
                except urllib.error.HTTPError:
                    raise
                except OSError:
                    if attempt == 2:
                        raise
                    time.sleep(0.5)
        assert self.site_dir is not None, "need a content server URL or a site folder"
        if path.startswith("/content/") or path in ("/config.json", "/myst.search.json", "/myst.xref.json"):
            return (self.site_dir / path.lstrip("/")).read_bytes()
        return (self.site_dir / "public" / path.lstrip("/")).read_bytes()

    def json(self, path: str) -> Any:
        return json.loads(self.read(path))


# myst's slug -> the site's slug, for pages the site renames (notebook pages: ``gan-1`` -> ``gan-notebook``)
SLUG_MAP: dict[str, str] = {}


def page_href(slug: str) -> str:
    slug = SLUG_MAP.get(slug, slug)
    return "index.html" if slug in ("", "index") else f"{slug}.html"


def notebook_names(project: dict[str, Any], pages: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Distinct slugs and titles for notebook pages. myst names a notebook that shares its chapter's
    file name ``<name>-1``, and several notebooks have their chapter's title: the site calls them
    ``<name>-notebook`` and "<title> — notebook" (in the page, the sidebar, prev/next, tabs, search).

    Returns: (myst slug -> site slug, myst slug -> title) for the pages that change."""
    slugs, titles = {}, {}
    all_titles = [((d.get("frontmatter") or {}).get("title") or "") for d in pages.values()]
    taken = set(pages)
    for slug, data in pages.items():
        loc = str(data.get("location") or "")
        if not loc.split("#")[0].endswith(".ipynb"):
            continue
        stem = Path(loc).stem
        m = re.fullmatch(r"(.+)-\d+", slug)
        if m and m.group(1) in taken and f"{stem}-notebook" not in taken:
            slugs[slug] = f"{stem}-notebook"
        title = (data.get("frontmatter") or {}).get("title") or ""
        if title and all_titles.count(title) > 1:
            titles[slug] = f"{title} — notebook"
    return slugs, titles


def site_url(project: dict[str, Any]) -> str:
    """The published site's address (canonical URLs, Open Graph, sitemap): ``BOOK_SITE_URL``, else the
    GitHub Pages address of ``project.github``; empty when neither is known."""
    url = os.environ.get("BOOK_SITE_URL", "").strip()
    if not url and github_parts(project.get("github")):
        owner, repo = github_parts(project.get("github"))
        url = f"https://{owner.lower()}.github.io/{repo}/"
    return url.rstrip("/") + "/" if url else ""


def build_profile() -> str:
    """The ``GENAI_PROFILE`` the book was built with (the notebooks' models), shown in the header."""
    return (os.environ.get("GENAI_PROFILE") or "offline").strip() or "offline"


EMBED_SYNTAX = re.compile(r"!\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(#([A-Za-z0-9_.:-]+)\)")


def embed_captions(source_text: str) -> dict[str, str]:
    """``![caption](#label)`` in a page's Markdown source -> {label: caption}, with its ``$math$``
    (myst keeps an embed's alt text without the dollars)."""
    return {m.group(2): m.group(1).strip() for m in EMBED_SYNTAX.finditer(source_text)}


def toc_tree(project: dict[str, Any], index_title: str, titles: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The sidebar's tree from the project's flat page list (each entry has a ``level``); ``titles``
    overrides some pages' titles (see :func:`notebook_names`)."""
    titles = titles or {}
    root: list[dict[str, Any]] = [{"title": index_title, "full_title": index_title, "slug": project.get("index", "index"),
                                   "href": "index.html", "children": [], "level": 0}]
    stack: list[tuple[int, list]] = [(0, root)]
    for p in project.get("pages", []):
        level = int(p.get("level", 1))
        item = {"title": titles.get(p.get("slug")) or p.get("short_title") or p.get("title") or p.get("slug", ""),
                "slug": p.get("slug"), "full_title": titles.get(p.get("slug")) or p.get("title") or "",
                "href": page_href(p["slug"]) if p.get("slug") else None, "children": [], "level": level}
        while len(stack) > 1 and stack[-1][0] >= level:
            stack.pop()
        parent_list = stack[-1][1]
        parent_list.append(item)
        stack.append((level, item["children"]))
    return root


def mark_current(tree: list[dict[str, Any]], slug: str) -> bool:
    """Mark the current page and its ancestors (``active`` / ``open``); True if found below."""
    found = False
    for item in tree:
        item["active"] = item.get("slug") == slug
        below = mark_current(item["children"], slug)
        item["open"] = item["active"] or below or not item.get("slug")
        found = found or item["active"] or below
    return found


def github_parts(url: str | None) -> tuple[str, str] | None:
    m = re.match(r"https?://github\.com/([^/]+)/([^/#?]+)", url or "")
    return (m.group(1), m.group(2).removesuffix(".git")) if m else None


def launch_links(fm: dict[str, Any], project: dict[str, Any], location: str = "") -> dict[str, str]:
    """"Open in Colab" and "Launch Binder" for a notebook page, from the repository and its path.

    The notebook's path in the repository comes from myst's ``source_url``
    (``https://github.com/<owner>/<repo>/blob/<branch>/<path>``, when the book is a git checkout);
    otherwise from ``project.github`` and the page's location in the project (branch ``main``).
    """
    m = re.match(r"https?://github\.com/([^/]+)/([^/]+)/blob/([^/]+)/(.+?)(?:#.*)?$", fm.get("source_url") or "")
    if m:
        owner, repo, branch, path = m.groups()
    elif github_parts(project.get("github")) and location:
        (owner, repo), branch, path = github_parts(project.get("github")), "main", location.lstrip("/")
    else:
        return {}
    binder = ((project.get("thebe") or {}).get("binder") or {}) if isinstance(project.get("thebe"), dict) else {}
    ref = binder.get("ref") if binder.get("ref") not in (None, "", "HEAD") else branch
    binder_url = (binder.get("url") or "https://mybinder.org/").rstrip("/")
    return {
        "colab": f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{path}",
        "binder": f"{binder_url}/v2/gh/{owner}/{repo}/{ref}?urlpath=" + urllib.parse.quote(f"lab/tree/{path}", safe=""),
        "github": f"https://github.com/{owner}/{repo}/blob/{branch}/{path}",
    }


def _walk(node: Any):
    """Every node of a page's tree, depth first."""
    if isinstance(node, dict):
        yield node
        for c in node.get("children") or []:
            yield from _walk(c)


def page_description(fm: dict[str, Any], project: dict[str, Any], mdast: Any) -> str:
    """A one-sentence description for search engines and link previews: the page's ``description``,
    else its first paragraph (cut at 200 characters), else the book's description."""
    if fm.get("description"):
        return str(fm["description"])
    for n in _walk(mdast):
        if n.get("type") == "paragraph":
            text = re.sub(r"\s+", " ", nodes.plain_text(n)).strip()
            if len(text) > 40:
                return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + "…"
    return str(project.get("description") or "")


def sitemap(base_url: str, hrefs: list[str]) -> str:
    """sitemap.xml listing every page of the book."""
    from xml.sax.saxutils import escape

    urls = "".join(f"  <url><loc>{escape(base_url + h)}</loc></url>\n" for h in dict.fromkeys(hrefs))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "</urlset>\n")


def live_config(project: dict[str, Any], launch: dict[str, str], fm: dict[str, Any]) -> dict[str, Any]:
    """What the page's "Run live" needs: the Binder repository and branch (from myst's ``thebe``
    settings and the notebook's GitHub address) and the kernel's name. See static/live.js."""
    binder = ((project.get("thebe") or {}).get("binder") or {}) if isinstance(project.get("thebe"), dict) else {}
    repo = ref = ""
    m = re.match(r"https://github\.com/([^/]+/[^/]+)/blob/([^/]+)/", launch.get("github") or "")
    if m:
        repo, ref = m.groups()
    repo = re.sub(r"^https?://github\.com/", "", binder.get("repo") or "") or repo
    ref = binder.get("ref") if binder.get("ref") not in (None, "", "HEAD") else (ref or "HEAD")
    return {"binderUrl": (binder.get("url") or "https://mybinder.org").rstrip("/"), "repo": repo.removesuffix(".git"),
            "ref": ref, "provider": binder.get("provider") or "github",
            "kernel": ((fm.get("kernelspec") or {}).get("name")) or "python3"}


class SiteBuilder:
    def __init__(self, source: Source, out: Path, quiet: bool = False, root: Path | None = None):
        self.src, self.out, self.quiet = source, out, quiet
        # the book's folder (to read an embed's caption with its math from the Markdown source):
        # myst writes the site to <root>/_build/html
        if root is None and out.resolve().parent.name == "_build":
            root = out.resolve().parent.parent
        self.root = root
        self.assets: dict[str, str] = {}          # myst public URL -> site path
        self.warnings: list[str] = []
        self.env = Environment(loader=FileSystemLoader(str(HERE / "layout")),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(f"[booksite] {msg}", flush=True)

    # ------------------------------------------------------------------ assets
    def asset(self, url: str) -> str:
        url = "/" + url.lstrip("/").split("#")[0]
        if url not in self.assets:
            self.assets[url] = "build/" + url.lstrip("/")
        return self.assets[url]

    def text_asset(self, url: str) -> str:
        try:
            return self.src.read(url).decode("utf-8", "replace")
        except (OSError, urllib.error.HTTPError) as e:
            self.warnings.append(f"could not read output file {url}: {e}")
            return ""

    def copy_assets(self) -> None:
        for url, rel in sorted(self.assets.items()):
            dest = self.out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                dest.write_bytes(self.src.read(url))
            except (OSError, urllib.error.HTTPError) as e:
                self.warnings.append(f"missing file {url}: {e}")

    def static_files(self, katex: bool) -> None:
        dest = self.out / "assets"
        shutil.copytree(HERE / "static", dest, dirs_exist_ok=True)
        css = HtmlFormatter(style="default").get_style_defs(".highlight")
        dark = HtmlFormatter(style="monokai").get_style_defs('[data-theme="dark"] .highlight')
        (dest / "pygments.css").write_text(css + "\n" + dark + "\n")
        if katex:
            (dest / "katex").mkdir(exist_ok=True)
            shutil.copy2(KATEX_DIST / "katex.min.css", dest / "katex" / "katex.min.css")
            shutil.copytree(KATEX_DIST / "fonts", dest / "katex" / "fonts", dirs_exist_ok=True)
        if MINISEARCH_JS.exists():
            shutil.copy2(MINISEARCH_JS, dest / "minisearch.js")
        else:
            self.warnings.append("minisearch is not installed (make site-template): the search box is disabled")
        if (THEBE_DIST / "index.js").exists():
            # thebe's bundle and its chunks (loaded on demand from the same folder), without source maps
            shutil.copytree(THEBE_DIST, dest / "thebe", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.map", "types", "*.d.ts", "*.LICENSE.txt"))
        else:
            self.warnings.append("thebe is not installed (make site-template): no \"Run live\" on notebook pages")

    def page_sources(self, data: dict[str, Any]) -> dict[str, str]:
        """The captions of the page's ``![caption](#label)`` read from its source file (with math)."""
        loc = str(data.get("location") or "").lstrip("/")
        if not self.root or not loc.endswith(".md"):
            return {}
        try:
            return embed_captions((self.root / loc).read_text(encoding="utf-8"))
        except OSError:
            return {}

    # ------------------------------------------------------------------ build
    def build(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        config = self.src.json("/config.json")
        projects = config.get("projects") or []
        if not projects:
            raise SystemExit("booksite: myst's config.json lists no project")
        project = projects[0]
        index_slug = project.get("index", "index")
        slugs = [index_slug] + [p["slug"] for p in project.get("pages", []) if p.get("slug")]
        pages = {s: self.src.json(f"/content/{s}.json") for s in slugs}
        renamed, titles = notebook_names(project, pages)
        SLUG_MAP.clear()
        SLUG_MAP.update(renamed)
        for slug, title in titles.items():
            pages[slug] = {**pages[slug], "frontmatter": {**(pages[slug].get("frontmatter") or {}), "title": title}}
        index_title = pages[index_slug].get("frontmatter", {}).get("title") or project.get("title") or "Home"
        katex = ensure_npm(self.log)
        self.out.mkdir(parents=True, exist_ok=True)
        base_url, profile = site_url(project), build_profile()

        # captions of every embedded output, by label: the alt text of the same figure on its notebook page
        sources = {slug: self.page_sources(pages[slug]) for slug in slugs}
        captions: dict[str, str] = {}
        for slug in slugs:
            for label, cap in sources[slug].items():
                captions.setdefault(label, cap)
            for n in _walk(pages[slug].get("mdast")):
                if n.get("type") == "embed" and n.get("alt"):
                    captions.setdefault((n.get("source") or {}).get("label") or n.get("label") or "", n["alt"])

        page_titles = {s: (pages[s].get("frontmatter") or {}).get("title") or s for s in slugs}
        tex = katex_renderer.start(KATEX_DIST.parent) if katex else None
        downloads = self.book_downloads(project, pages)
        search_docs, unknown, rendered = [], set(), {}
        for i, slug in enumerate(slugs):
            data = pages[slug]
            fm = data.get("frontmatter") or {}
            page = nodes.Page(slug=slug, references=data.get("references") or {}, asset=self.asset,
                              text_asset=self.text_asset, page_href=page_href,
                              embed_numbers=nodes.number_embeds(data.get("mdast")),
                              title=fm.get("title") or slug, captions=captions, embed_captions=sources[slug],
                              page_titles=page_titles, inline_math=tex)
            body = nodes.render(data.get("mdast"), page)
            abstract = ""
            parts = fm.get("parts") or {}
            part_html = []
            for name, part in parts.items():
                html_ = nodes.render((part or {}).get("mdast"), page)
                if name == "abstract":
                    abstract = html_
                elif html_:
                    part_html.append((name.replace("_", " ").capitalize(), html_))
            footnotes = nodes.render_footnotes(page)
            bib = nodes.render_bibliography(page)
            unknown |= page.unknown
            for url in page.missing_links:
                self.warnings.append(f"{slug}: link to {url}, which is not a page of the book")
            if page.scrubbed_paths:
                self.warnings.append(f"{data.get('location') or slug}: {page.scrubbed_paths} absolute path(s) of the build "
                                     "machine in its outputs, shortened on the page (filter the warning in the notebook)")
            rendered[slug] = dict(data=data, fm=fm, body=body, abstract=abstract, parts=part_html,
                                  footnotes=footnotes, bibliography=bib, headings=page.headings,
                                  cells=page.code_cells)
            search_docs.append(dict(slug=slug, href=page_href(slug), title=fm.get("title") or slug,
                                    mdast=data.get("mdast")))
            if page.math_fallbacks:
                self.log(f"{slug}: {page.math_fallbacks} math expression(s) rendered with latex2mathml")

        if tex:
            tex.close()
        tmpl = self.env.get_template("page.html")
        thebe_ok = (THEBE_DIST / "index.js").exists()
        for i, slug in enumerate(slugs):
            r = rendered[slug]
            fm, data = r["fm"], r["data"]
            tree = toc_tree(project, index_title, titles)
            mark_current(tree, slug)
            prev_slug = slugs[i - 1] if i > 0 else None
            next_slug = slugs[i + 1] if i + 1 < len(slugs) else None
            page_downloads = self.page_downloads(fm)
            # a Jupyter notebook page (Colab and Binder open .ipynb files); a MyST page with code
            # cells is executed too, but readers download and launch the notebooks
            is_nb = str(data.get("location") or fm.get("source_url") or "").split("#")[0].endswith(".ipynb")
            launch = launch_links(fm, project, data.get("location") or "") if is_nb else {}
            live = live_config(project, launch, fm) if is_nb and thebe_ok and r["cells"] else None
            html_ = tmpl.render(
                site_title=config.get("title") or project.get("title") or "Book",
                project=project, fm=fm, slug=slug, kind=data.get("kind"), is_notebook=is_nb,
                body=r["body"], abstract=r["abstract"], parts=r["parts"], footnotes=r["footnotes"],
                bibliography=r["bibliography"],
                outline=[h for h in r["headings"] if h[0] in (2, 3)], toc=tree,
                prev={"href": page_href(prev_slug), "title": rendered[prev_slug]["fm"].get("title", prev_slug)} if prev_slug else None,
                next={"href": page_href(next_slug), "title": rendered[next_slug]["fm"].get("title", next_slug)} if next_slug else None,
                book_downloads=downloads, page_downloads=page_downloads,
                launch=launch, katex=katex, live=json.dumps(live).replace("</", "<\\/") if live else "",
                github=project.get("github"), options=config.get("options") or {},
                nav=config.get("nav") or [], actions=config.get("actions") or [],
                logo=self.asset((config.get("options") or {})["logo"]) if (config.get("options") or {}).get("logo") else None,
                favicon=self.asset((config.get("options") or {})["favicon"]) if (config.get("options") or {}).get("favicon") else None,
                is_index=slug == index_slug, profile=profile,
                build_date=os.environ.get("GENAI_BUILD_DATE", ""),
                canonical=base_url + page_href(slug) if base_url else "",
                og_image=self.og_image(fm, project, base_url),
                description=page_description(fm, project, data.get("mdast")),
                show_authors=bool(r["abstract"]) or slug == index_slug,
            )
            (self.out / page_href(slug)).write_text(html_, encoding="utf-8")

        index = build_index(search_docs)
        (self.out / "search-index.js").write_text(
            "window.BOOK_SEARCH_INDEX = " + json.dumps(index, ensure_ascii=False, separators=(",", ":")) + ";\n",
            encoding="utf-8")
        (self.out / "search-index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        if base_url:
            (self.out / "sitemap.xml").write_text(sitemap(base_url, [page_href(s) for s in slugs]), encoding="utf-8")
            (self.out / "robots.txt").write_text(f"User-agent: *\nAllow: /\nSitemap: {base_url}sitemap.xml\n")
        else:
            self.warnings.append("no site URL (BOOK_SITE_URL or project.github): no sitemap.xml and no canonical URLs")
        self.static_files(katex)
        self.copy_assets()
        (self.out / ".nojekyll").write_text("")
        (self.out / "404.html").write_text(
            self.env.get_template("404.html").render(site_title=config.get("title") or "Book",
                                                      # GitHub Pages serves 404.html at any depth
                                                      base=(os.environ.get("BASE_URL") or "").rstrip("/") + "/"
                                                      if os.environ.get("BASE_URL") else ""),
            encoding="utf-8")
        report = {"pages": len(slugs), "assets": len(self.assets), "unknown_node_types": sorted(unknown),
                  "katex_css": katex, "profile": profile, "site_url": base_url, "renamed": renamed,
                  "warnings": self.warnings, "seconds": round(time.perf_counter() - t0, 2)}
        (self.out / "site-report.json").write_text(json.dumps(report, indent=1))
        self.log(f"wrote {len(slugs)} pages and {len(self.assets)} files to {self.out} in {report['seconds']} s")
        for w in self.warnings:
            print(f"[booksite] warning: {w}", file=sys.stderr, flush=True)
        if unknown:
            self.log(f"node types rendered generically: {', '.join(sorted(unknown))}")
        return report

    def og_image(self, fm: dict[str, Any], project: dict[str, Any], base_url: str) -> str:
        """An absolute URL of the page's (or the book's) thumbnail for link previews, if any."""
        thumb = fm.get("thumbnail") or project.get("thumbnail") or ""
        if not thumb or not base_url or not thumb.startswith("/"):
            return ""
        return base_url + self.asset(thumb)

    # ------------------------------------------------------------------ downloads
    def _download(self, d: dict[str, Any]) -> dict[str, str] | None:
        url = d.get("url") or ""
        if not url:
            return None
        fmt = (d.get("format") or Path(d.get("filename") or url).suffix.lstrip(".")).lower()
        suffix = Path(d.get("filename") or url).suffix.lstrip(".").lower()
        if fmt in ("typst", "tex", "latex") and suffix == "pdf":
            fmt = "pdf"                        # a PDF made through Typst or LaTeX is a PDF to the reader
        name = d.get("filename") or Path(url).name
        href = self.asset(url) if url.startswith("/") else url
        if href.startswith(("http://", "https://")) and not d.get("static"):
            return {"href": href, "name": d.get("title") or name, "format": fmt, "external": "1"}
        return {"href": href, "name": d.get("title") or name, "format": fmt, "filename": name}

    def page_downloads(self, fm: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for d in (fm.get("exports") or []) + (fm.get("downloads") or []):
            item = self._download(d)
            if item and item["href"] not in [o["href"] for o in out]:
                out.append(item)
        return out

    def book_downloads(self, project: dict[str, Any], pages: dict[str, Any]) -> list[dict[str, str]]:
        """The documents every page offers in the header: the project's exports and downloads, and
        every page's docx/PDF export (the paper)."""
        out: list[dict[str, str]] = []
        cands = (project.get("exports") or []) + (project.get("downloads") or [])
        for data in pages.values():
            fm = data.get("frontmatter") or {}
            label = fm.get("short_title") or fm.get("title")
            cands += [{**e, "title": e.get("title") or label} for e in fm.get("exports") or []
                      if (e.get("format") or "").lower() in ("docx", "pdf", "typst", "tex", "meca")]
        for d in cands:
            item = self._download(d)
            if item and item["href"] not in [o["href"] for o in out]:
                out.append(item)
        return out


def ensure_npm(log) -> bool:
    """Install the template's npm packages once (``npm ci``): KaTeX's stylesheet and fonts, MiniSearch
    (the search box) and thebe ("Run live"). Returns whether KaTeX's stylesheet is there.

    Without KaTeX the pages show math through its MathML (which Chromium, Firefox and Safari render);
    without MiniSearch or thebe the build says so in its warnings."""
    if all(p.exists() for p in (KATEX_DIST / "katex.min.css", MINISEARCH_JS, THEBE_DIST / "index.js")):
        return True
    if os.environ.get("BOOKSITE_NO_NPM"):
        return (KATEX_DIST / "katex.min.css").exists()
    npm = shutil.which("npm")
    if not npm:
        log("npm not found: math is shown as MathML, no search, no live code")
        return (KATEX_DIST / "katex.min.css").exists()
    cmd = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--ignore-scripts",
           "--no-audit", "--no-fund", "--loglevel=error"]
    log("installing the site template's npm packages once: " + " ".join(cmd[1:]))
    res = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    if res.returncode != 0 or not (KATEX_DIST / "katex.min.css").exists():
        log("could not install the npm packages (" + res.stderr.strip()[-300:] + "): math is shown as MathML")
        return False
    return True


def serve(cdn: str, host: str, port: int) -> None:
    """``myst start``: render into a temporary folder and serve it on ``host:port``, rendering again
    (at most every 2 s) when a page is requested, so edits show on reload. Prints the line with the
    URL that tells myst the server is ready."""
    import functools
    import http.server
    import tempfile
    import threading

    out = Path(tempfile.mkdtemp(prefix="booksite-"))
    state = {"at": 0.0}
    lock = threading.Lock()

    def refresh() -> None:
        with lock:
            if time.monotonic() - state["at"] > 2.0:
                try:
                    SiteBuilder(Source(cdn), out, quiet=True).build()
                except Exception as e:  # noqa: BLE001 - keep serving the last good render
                    print(f"[booksite] render failed: {e}", file=sys.stderr, flush=True)
                state["at"] = time.monotonic()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt: str, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.endswith("/") or path.endswith(".html"):
                refresh()
            elif "." not in path.rsplit("/", 1)[-1] and (out / (path.strip("/") + ".html")).exists():
                self.path = path.rstrip("/") + ".html"          # /paper -> /paper.html
            super().do_GET()

    refresh()
    httpd = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(out)))
    print(f"Book site ready at http://{host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cdn", default=os.environ.get("CONTENT_CDN"), help="myst's content server URL")
    ap.add_argument("--site-dir", type=Path, help="read the JSON from this folder (_build/site) instead")
    ap.add_argument("--out", type=Path, default=os.environ.get("BUILD_DIRECTORY"), help="output folder")
    ap.add_argument("--root", type=Path, help="the book's folder (default: the folder above _build when --out is "
                    "<book>/_build/html): embed captions are read from its Markdown sources")
    ap.add_argument("--install", action="store_true", help="only install the template's assets (KaTeX) and exit")
    ap.add_argument("--serve", action="store_true", help="serve for `myst start` (HOST, PORT, CONTENT_CDN_PORT)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.serve:
        host = os.environ.get("HOST") or "127.0.0.1"
        cdn = args.cdn or f"http://127.0.0.1:{os.environ['CONTENT_CDN_PORT']}"
        serve(cdn, host, int(os.environ.get("PORT") or 3000))
        return 0
    if args.install:
        ok = ensure_npm(print)
        print("site template ready" + ("" if ok else " (without KaTeX: math as MathML)"))
        return 0
    if not args.out:
        ap.error("no output folder: set BUILD_DIRECTORY or pass --out")
    if not args.cdn and not args.site_dir:
        ap.error("no content: set CONTENT_CDN or pass --site-dir")
    SiteBuilder(Source(None if args.site_dir else args.cdn, args.site_dir), Path(args.out), args.quiet, args.root).build()
    return 0

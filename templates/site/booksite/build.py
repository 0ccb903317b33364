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

from booksite import nodes
from booksite.search import build_index

HERE = Path(__file__).resolve().parent.parent          # templates/site
KATEX_DIST = HERE / "node_modules" / "katex" / "dist"


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


def page_href(slug: str) -> str:
    return "index.html" if slug in ("", "index") else f"{slug}.html"


def toc_tree(project: dict[str, Any], index_title: str) -> list[dict[str, Any]]:
    """The sidebar's tree from the project's flat page list (each entry has a ``level``)."""
    root: list[dict[str, Any]] = [{"title": index_title, "full_title": index_title, "slug": project.get("index", "index"),
                                   "href": "index.html", "children": [], "level": 0}]
    stack: list[tuple[int, list]] = [(0, root)]
    for p in project.get("pages", []):
        level = int(p.get("level", 1))
        item = {"title": p.get("short_title") or p.get("title") or p.get("slug", ""), "slug": p.get("slug"),
                "full_title": p.get("title") or "",
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


class SiteBuilder:
    def __init__(self, source: Source, out: Path, quiet: bool = False):
        self.src, self.out, self.quiet = source, out, quiet
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
        index_title = pages[index_slug].get("frontmatter", {}).get("title") or project.get("title") or "Home"
        katex = (KATEX_DIST / "katex.min.css").exists() or ensure_katex(self.log)
        self.out.mkdir(parents=True, exist_ok=True)

        downloads = self.book_downloads(project, pages)
        search_docs, unknown, rendered = [], set(), {}
        for i, slug in enumerate(slugs):
            data = pages[slug]
            page = nodes.Page(slug=slug, references=data.get("references") or {}, asset=self.asset,
                              text_asset=self.text_asset, page_href=page_href,
                              embed_numbers=nodes.number_embeds(data.get("mdast")))
            body = nodes.render(data.get("mdast"), page)
            fm = data.get("frontmatter") or {}
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
            rendered[slug] = dict(data=data, fm=fm, body=body, abstract=abstract, parts=part_html,
                                  footnotes=footnotes, bibliography=bib, headings=page.headings)
            search_docs.append(dict(slug=slug, href=page_href(slug), title=fm.get("title") or slug,
                                    mdast=data.get("mdast")))
            if page.math_fallbacks:
                self.log(f"{slug}: {page.math_fallbacks} math expression(s) rendered with latex2mathml")

        tmpl = self.env.get_template("page.html")
        for i, slug in enumerate(slugs):
            r = rendered[slug]
            fm, data = r["fm"], r["data"]
            tree = toc_tree(project, index_title)
            mark_current(tree, slug)
            prev_slug = slugs[i - 1] if i > 0 else None
            next_slug = slugs[i + 1] if i + 1 < len(slugs) else None
            page_downloads = self.page_downloads(fm)
            # a Jupyter notebook page (Colab and Binder open .ipynb files); a MyST page with code
            # cells is executed too, but readers download and launch the notebooks
            is_nb = str(data.get("location") or fm.get("source_url") or "").split("#")[0].endswith(".ipynb")
            html_ = tmpl.render(
                site_title=config.get("title") or project.get("title") or "Book",
                project=project, fm=fm, slug=slug, kind=data.get("kind"), is_notebook=is_nb,
                body=r["body"], abstract=r["abstract"], parts=r["parts"], footnotes=r["footnotes"],
                bibliography=r["bibliography"],
                outline=[h for h in r["headings"] if h[0] in (2, 3)], toc=tree,
                prev={"href": page_href(prev_slug), "title": rendered[prev_slug]["fm"].get("title", prev_slug)} if prev_slug else None,
                next={"href": page_href(next_slug), "title": rendered[next_slug]["fm"].get("title", next_slug)} if next_slug else None,
                book_downloads=downloads, page_downloads=page_downloads,
                launch=launch_links(fm, project, data.get("location") or "") if is_nb else {}, katex=katex,
                github=project.get("github"), options=config.get("options") or {},
                nav=config.get("nav") or [], actions=config.get("actions") or [],
                logo=self.asset((config.get("options") or {})["logo"]) if (config.get("options") or {}).get("logo") else None,
                favicon=self.asset((config.get("options") or {})["favicon"]) if (config.get("options") or {}).get("favicon") else None,
                is_index=slug == index_slug,
                show_authors=bool(r["abstract"]) or slug == index_slug,
            )
            (self.out / page_href(slug)).write_text(html_, encoding="utf-8")

        index = build_index(search_docs)
        (self.out / "search-index.js").write_text(
            "window.BOOK_SEARCH_INDEX = " + json.dumps(index, ensure_ascii=False, separators=(",", ":")) + ";\n",
            encoding="utf-8")
        (self.out / "search-index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
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
                  "katex_css": katex, "warnings": self.warnings, "seconds": round(time.perf_counter() - t0, 2)}
        (self.out / "site-report.json").write_text(json.dumps(report, indent=1))
        self.log(f"wrote {len(slugs)} pages and {len(self.assets)} files to {self.out} in {report['seconds']} s")
        for w in self.warnings:
            print(f"[booksite] warning: {w}", file=sys.stderr, flush=True)
        if unknown:
            self.log(f"node types rendered generically: {', '.join(sorted(unknown))}")
        return report

    # ------------------------------------------------------------------ downloads
    def _download(self, d: dict[str, Any]) -> dict[str, str] | None:
        url = d.get("url") or ""
        if not url:
            return None
        fmt = (d.get("format") or Path(d.get("filename") or url).suffix.lstrip(".")).lower()
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


def ensure_katex(log) -> bool:
    """Install KaTeX's stylesheet and fonts into this template once (``npm ci``); False if that fails.

    Without them the pages show math through its MathML (which Chromium, Firefox and Safari render)."""
    if os.environ.get("BOOKSITE_NO_NPM"):
        return False
    npm = shutil.which("npm")
    if not npm:
        log("npm not found: math is shown as MathML")
        return False
    cmd = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--ignore-scripts",
           "--no-audit", "--no-fund", "--loglevel=error"]
    log("installing KaTeX's stylesheet and fonts once: " + " ".join(cmd[1:]))
    res = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    if res.returncode != 0 or not (KATEX_DIST / "katex.min.css").exists():
        log("could not install katex (" + res.stderr.strip()[-300:] + "): math is shown as MathML")
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
        ok = (KATEX_DIST / "katex.min.css").exists() or ensure_katex(print)
        print("site template ready" + ("" if ok else " (without KaTeX: math as MathML)"))
        return 0
    if not args.out:
        ap.error("no output folder: set BUILD_DIRECTORY or pass --out")
    if not args.cdn and not args.site_dir:
        ap.error("no content: set CONTENT_CDN or pass --site-dir")
    SiteBuilder(Source(None if args.site_dir else args.cdn, args.site_dir), Path(args.out), args.quiet).build()
    return 0

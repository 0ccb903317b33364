"""The built site (``_build/html``) in headless Chromium: every page of the table of contents loads and
works, and nothing leaves the machine.

Run after ``make book`` (the ``book`` and ``browser`` markers). ``BOOK_SITE_DIR`` points the tests at
another built site (e.g. ``tests/fixtures/site/_build/html``). Screenshots go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.site_server import SiteServer

pytestmark = [pytest.mark.book, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("BOOK_SITE_DIR", ROOT / "_build" / "html"))
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        pytest.skip(f"no built site at {SITE}: run `make book` first")
    with SiteServer(SITE) as srv:
        yield srv


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium / chromedriver not installed (scripts/install_system.sh installs them)")
    profile = tempfile.mkdtemp(prefix="booksite-chrome-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _flush_logs(drv) -> None:
    drv.get_log("browser")
    drv.get_log("performance")


def _requested_urls(drv) -> list[str]:
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _severe(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def _wait(cond, timeout=10.0, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


def _toc(drv, server) -> list[tuple[str, str]]:
    drv.get(server.url + "index.html")
    links = drv.execute_script(
        "return Array.from(document.querySelectorAll('#sidebar a[href]'))"
        ".map(a => [a.getAttribute('href'), a.getAttribute('data-title') || a.textContent.trim()])")
    assert links, "the sidebar lists no page"
    return [(h, t) for h, t in links]


def _shoot(drv, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(SHOTS / f"{name}.png"))


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_every_toc_page_loads_cleanly(driver, server):
    """HTTP 200, its title shown, no console errors, every local link/image/file exists, and every
    request stays on this machine (CDP network log and the page's resource timings)."""
    toc = _toc(driver, server)
    assert len(toc) == len({h for h, _ in toc}), "a page appears twice in the sidebar"
    checked: dict[str, int] = {}
    problems = []
    for href, title in toc:
        url = urllib.parse.urljoin(server.url, href)
        _flush_logs(driver)
        n0 = len(server.requests)
        driver.get(url)
        # load lazy images too, then wait for them
        driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
        _wait(lambda: driver.execute_script("return Array.from(document.images).every(i => i.complete)"), 15)
        page_path = urllib.parse.urlparse(url).path
        served = [s for p, s in server.requests[n0:] if urllib.parse.urlparse(p).path == page_path]
        if served != [200]:
            problems.append(f"{href}: served with status {served}")
        h1 = driver.execute_script("var h = document.querySelector('h1.page-title'); return h ? h.textContent.trim() : ''")
        if not h1 or h1 != title:
            problems.append(f"{href}: page title {h1!r} does not match its sidebar entry {title!r}")
        if driver.title.strip() == "":
            problems.append(f"{href}: empty <title>")
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))")
        if broken:
            problems.append(f"{href}: broken images {broken}")
        # every local reference on the page resolves
        refs = driver.execute_script("""
            const out = [];
            document.querySelectorAll('a[href], img[src], link[href], script[src], audio[src], video[src], source[src], iframe[src]')
              .forEach(el => out.push(el.getAttribute('href') || el.getAttribute('src')));
            return out;""")
        for ref in refs:
            if not ref or ref.startswith(("data:", "mailto:", "javascript:")):
                continue
            if ref.startswith("#"):                # a cross-reference on this page: its target is here
                if len(ref) > 1 and not driver.execute_script(
                        "return !!document.getElementById(arguments[0])", urllib.parse.unquote(ref[1:])):
                    problems.append(f"{href}: link to #{ref[1:]}, which is not on the page")
                continue
            parts = urllib.parse.urlparse(urllib.parse.urljoin(url, ref))
            if parts.scheme in ("http", "https") and parts.netloc != urllib.parse.urlparse(server.url).netloc:
                continue                     # an outbound link (GitHub, Colab, DOI): a link, not a request
            target = parts._replace(fragment="").geturl()
            if target not in checked:
                checked[target] = _status(target)
            if checked[target] != 200:
                problems.append(f"{href}: link to missing file {ref} ({checked[target]})")
            if parts.fragment and parts.path == page_path:
                found = driver.execute_script("return !!document.getElementById(arguments[0])",
                                              urllib.parse.unquote(parts.fragment))
                if not found:
                    problems.append(f"{href}: anchor #{parts.fragment} not on the page")
        # nothing leaves the machine
        origin = server.url.rstrip("/")
        requested = _requested_urls(driver)
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        for u in requested + resources:
            if not (u.startswith(origin) or u.startswith(("data:", "blob:", "about:"))):
                problems.append(f"{href}: request leaves the machine: {u}")
        errors = _severe(driver)
        if errors:
            problems.append(f"{href}: console errors {errors}")
    assert not problems, "\n".join(problems)
    assert not [p for p, s in server.requests if s >= 400], f"requests that failed: {[r for r in server.requests if r[1] >= 400]}"


def _pages_with(driver, server, selector: str) -> list[str]:
    found = []
    for href, _ in _toc(driver, server):
        driver.get(urllib.parse.urljoin(server.url, href))
        if driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector):
            found.append(href)
    return found


def test_paper_page_citations_and_bibliography(driver, server):
    pages = _pages_with(driver, server, "a.cite")
    assert pages, "no page shows a citation"
    href = "paper.html" if "paper.html" in pages else pages[0]
    driver.get(server.url + href)
    n_refs = driver.execute_script("return document.querySelectorAll('#references li[id^=cite-]').length")
    assert n_refs >= 1, "the page has citations but no bibliography"
    targets = driver.execute_script(
        "return Array.from(document.querySelectorAll('a.cite')).map(a => a.getAttribute('href'))")
    for t in targets:
        assert driver.execute_script("return !!document.getElementById(arguments[0])", t[1:]), f"citation {t} has no entry"
    first = driver.find_element("css selector", "a.cite")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", first)
    first.click()
    assert _wait(lambda: driver.execute_script("return location.hash") == targets[0])
    _shoot(driver, "paper-bibliography")
    driver.get(server.url + href)
    _shoot(driver, "paper")


def test_notebook_page_shows_outputs_and_launch_links(driver, server):
    pages = _pages_with(driver, server, "body.page-notebook")
    assert pages, "no notebook page in the table of contents"
    with_outputs = []
    for href in pages:
        driver.get(server.url + href)
        n = driver.execute_script(
            "return Array.from(document.querySelectorAll('.outputs .output')).filter(o => o.textContent.trim() || o.querySelector('img,svg,audio')).length")
        if n:
            with_outputs.append(href)
        colab = driver.execute_script("var a = document.querySelector('a[data-launch=colab]'); return a ? a.href : ''")
        binder = driver.execute_script("var a = document.querySelector('a[data-launch=binder]'); return a ? a.href : ''")
        assert re.match(r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/.+\.ipynb$", colab), colab
        assert re.match(r"https://mybinder\.org/v2/gh/[^/]+/[^/]+/[^?]+\?urlpath=lab%2Ftree%2F.+\.ipynb$", binder), binder
        ipynb = driver.execute_script("var a = document.querySelector('a[data-format=ipynb]'); return a ? a.href : ''")
        assert ipynb and _status(ipynb) == 200, f"{href}: no downloadable .ipynb"
        nb = json.loads(urllib.request.urlopen(ipynb).read())
        assert nb.get("nbformat") == 4 and nb.get("cells"), "the .ipynb download is not a notebook"
    assert with_outputs, "no notebook page shows an executed output"
    driver.get(server.url + with_outputs[0])
    _shoot(driver, "notebook")


def test_sidebar_navigation_click(driver, server):
    toc = _toc(driver, server)
    href, title = toc[min(1, len(toc) - 1)]
    link = driver.find_element("css selector", f'#sidebar a[href="{href}"]')
    link.click()
    assert _wait(lambda: driver.current_url.endswith(href)), driver.current_url
    assert driver.execute_script("return document.querySelector('h1.page-title').textContent.trim()") == title
    assert driver.execute_script("return !!document.querySelector('#sidebar li.active > a, #sidebar li.active > details > summary > a')")
    nxt = driver.execute_script("var a = document.querySelector('.prev-next a.next'); return a ? a.getAttribute('href') : ''")
    if nxt:
        driver.find_element("css selector", ".prev-next a.next").click()
        assert _wait(lambda: driver.current_url.endswith(nxt))


def test_dark_mode_toggles_and_is_remembered(driver, server):
    driver.get(server.url + "index.html")
    driver.execute_script("localStorage.removeItem('book-theme')")
    driver.get(server.url + "index.html")
    before = driver.execute_script("return document.documentElement.getAttribute('data-theme')")
    bg_before = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    driver.find_element("id", "theme-toggle").click()
    after = driver.execute_script("return document.documentElement.getAttribute('data-theme')")
    assert {before, after} == {"light", "dark"}
    assert driver.execute_script("return getComputedStyle(document.body).backgroundColor") != bg_before
    driver.refresh()
    assert driver.execute_script("return document.documentElement.getAttribute('data-theme')") == after
    if after == "dark":
        for href, _ in _toc(driver, server):
            if "paper" in href:
                driver.get(server.url + href)
                break
        _shoot(driver, "dark-mode")
        driver.find_element("id", "theme-toggle").click()
    driver.execute_script("localStorage.removeItem('book-theme')")


def test_search_finds_a_word(driver, server):
    toc = _toc(driver, server)
    href, title = toc[min(1, len(toc) - 1)]
    word = max(re.findall(r"[A-Za-z]{4,}", title) or ["book"], key=len)
    driver.get(server.url + "index.html")
    box = driver.find_element("id", "search-input")
    box.click()
    box.send_keys(word)
    hits = _wait(lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('#search-results a.search-hit')).map(a => a.getAttribute('href'))"), 10)
    assert hits, f"search for {word!r} found nothing"
    assert any(h.split("#")[0] == href for h in hits), f"search for {word!r} did not find {href}: {hits}"
    _shoot(driver, "search")
    driver.find_element("css selector", "#search-results a.search-hit").click()
    assert _wait(lambda: "index.html" not in driver.current_url or hits[0].startswith("index.html"))


def test_math_renders_once_and_code_is_highlighted(driver, server):
    pages = _pages_with(driver, server, ".katex, math")
    for href in pages[:3]:
        driver.get(server.url + href)
        # KaTeX: the HTML rendering is visible and its MathML copy is visually hidden (math shown once)
        shown = driver.execute_script("""
            return Array.from(document.querySelectorAll('.katex')).map(k => {
              const html = k.querySelector('.katex-html'), mml = k.querySelector('.katex-mathml');
              const vis = el => el && el.getBoundingClientRect().width > 1 && getComputedStyle(el).display !== 'none';
              return (vis(html) ? 1 : 0) + (vis(mml) ? 1 : 0);
            });""")
        assert all(n == 1 for n in shown), f"{href}: some math is shown {shown} times"
        if shown and driver.execute_script("return !!document.querySelector('link[href*=katex]')"):
            assert _wait(lambda: driver.execute_script(
                "return Array.from(document.fonts).some(f => f.family.includes('KaTeX') && f.status === 'loaded')"), 10), \
                f"{href}: KaTeX's fonts did not load"

    pages = _pages_with(driver, server, ".highlight")
    assert pages, "no highlighted code anywhere"
    driver.get(server.url + pages[0])
    assert driver.execute_script("return document.querySelectorAll('.highlight span[class]').length") > 0


def test_mobile_layout_menu(driver, server):
    toc = _toc(driver, server)
    driver.set_window_size(390, 844)
    try:
        driver.get(server.url + toc[min(1, len(toc) - 1)][0])
        assert driver.execute_script("return getComputedStyle(document.querySelector('.outline')).display") == "none"
        sidebar_x = lambda: driver.execute_script("return document.getElementById('sidebar').getBoundingClientRect().right")
        assert sidebar_x() <= 0, "the sidebar should be off-screen on a phone"
        driver.find_element("id", "menu-toggle").click()
        assert _wait(lambda: sidebar_x() > 100), "the menu button does not open the sidebar"
        time.sleep(0.3)
        _shoot(driver, "mobile-menu")
        from selenium.webdriver.common.action_chains import ActionChains

        backdrop = driver.find_element("id", "backdrop")          # tap the dimmed page beside the menu
        ActionChains(driver).move_to_element_with_offset(backdrop, backdrop.size["width"] // 2 - 10, 0).click().perform()
        assert _wait(lambda: sidebar_x() <= 0)
        _shoot(driver, "mobile")
    finally:
        driver.set_window_size(1400, 1000)


def test_every_page_offers_the_papers_docx_and_pdf(driver, server):
    """The header's Downloads menu on every page lists the documents the paper's own page offers
    (docx, PDF), and they are served; when the build wrote the paper's docx/PDF they must be there."""
    toc = _toc(driver, server)
    docs = set()
    for href, _ in toc:
        driver.get(urllib.parse.urljoin(server.url, href))
        docs |= set(driver.execute_script(
            "return Array.from(document.querySelectorAll('.page-actions a[data-format=docx], .page-actions a[data-format=pdf]'))"
            ".map(a => a.getAttribute('href'))"))
    expected = {f.suffix for f in (ROOT / "chapters" / "exports").glob("paper.*") if f.suffix in (".docx", ".pdf")}
    if SITE == ROOT / "_build" / "html":
        assert {Path(d).suffix for d in docs} >= expected, f"the site does not offer the paper's {expected}"
    for href, _ in toc:
        driver.get(urllib.parse.urljoin(server.url, href))
        menu = set(driver.execute_script(
            "return Array.from(document.querySelectorAll('.downloads-menu a')).map(a => a.getAttribute('href'))"))
        assert docs <= menu, f"{href}: the Downloads menu lacks {docs - menu}"
    for d in docs:
        assert _status(urllib.parse.urljoin(server.url, d)) == 200
    if docs:
        driver.get(server.url + "index.html")
        driver.find_element("css selector", ".downloads-menu summary").click()
        _shoot(driver, "downloads-menu")


def test_hovering_a_citation_or_cross_reference_shows_a_preview(driver, server):
    from selenium.webdriver.common.action_chains import ActionChains

    pages = _pages_with(driver, server, "a.cite")
    assert pages, "no page shows a citation"
    driver.get(server.url + ("paper.html" if "paper.html" in pages else pages[0]))
    for selector in ("a.cite", "a.xref"):
        links = driver.find_elements("css selector", selector)
        if not links:
            continue
        link = links[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        ActionChains(driver).move_to_element(link).perform()
        text = _wait(lambda: driver.execute_script(
            "var p = document.querySelector('.preview'); return p ? p.textContent.trim() : ''"), 5)
        assert text, f"hovering {selector} shows no preview"
        if selector == "a.cite":
            target = driver.execute_script("return document.getElementById(arguments[0].getAttribute('href').slice(1)).textContent.trim()", link)
            assert text[:40] == target[:40]
            _shoot(driver, "citation-preview")
        ActionChains(driver).move_by_offset(0, 200).perform()


def test_audio_plays_and_code_copies(driver, server):
    """Audio outputs are real players with decodable sound; a code block's copy button copies."""
    pages = _pages_with(driver, server, "audio")
    for href in pages:
        driver.get(server.url + href)
        durations = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const players = Array.from(document.querySelectorAll('audio'));
            Promise.all(players.map(a => new Promise(ok => {
              if (a.readyState >= 1) return ok(a.duration);
              a.addEventListener('loadedmetadata', () => ok(a.duration), {once: true});
              a.addEventListener('error', () => ok(-1), {once: true});
              a.preload = 'metadata'; a.load();
            }))).then(done);""")
        assert durations and all(d > 0 for d in durations), f"{href}: audio that does not load: {durations}"
    pages = _pages_with(driver, server, ".copy-btn")
    assert pages, "no code block with a copy button"
    driver.get(server.url + pages[0])
    btn = driver.find_element("css selector", ".copy-btn")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", btn)
    driver.execute_script("arguments[0].click()", btn)
    assert _wait(lambda: btn.text == "Copied", 3)


# --------------------------------------------------------------------------------- issue #12: the reader's view
TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")
MACHINE_PATH = re.compile(r"(?<![\w.:/~-])/(?:root|work|tmp|home/[^/\s\"'<>]+|Users/[^/\s\"'<>]+)/[^\s\"'<>]+")


def test_captions_render_their_math_and_images_have_alt_text(driver, server):
    """No caption or alt text shows LaTeX source; captions with math show typeset math; every output
    image has alt text from its caption or label (never the generic "output image")."""
    problems, math_captions = [], 0
    for href, _ in _toc(driver, server):
        driver.get(urllib.parse.urljoin(server.url, href))
        captions = driver.execute_script("""
            return Array.from(document.querySelectorAll('figcaption')).map(f => {
              const c = f.cloneNode(true);
              c.querySelectorAll('.katex-mathml, annotation, script').forEach(e => e.remove());
              return [c.textContent, !!f.querySelector('math, .katex')];
            });""")
        for text, has_math in captions:
            math_captions += has_math
            if TEX_COMMAND.search(text):
                problems.append(f"{href}: caption shows LaTeX source: {text[:120]!r}")
        alts = driver.execute_script(
            "return Array.from(document.querySelectorAll('.output img, figure img')).map(i => i.getAttribute('alt'))")
        for alt in alts:
            if not alt or alt.strip().lower() in ("output image", "image", "figure"):
                problems.append(f"{href}: an output image has the alt text {alt!r}")
            elif TEX_COMMAND.search(alt):
                problems.append(f"{href}: alt text with LaTeX source: {alt[:120]!r}")
    assert not problems, "\n".join(problems)
    assert math_captions, "no caption with math anywhere (the fixture book has one)"


def test_embedded_figures_show_the_figure_not_the_cells_prints(driver, server):
    """An embedded figure or table shows that, without the lines its cell printed; a cell that only
    prints shows its printed text (stdout), so no embed is empty; stderr and errors never show."""
    embeds = printed_only = 0
    for href, _ in _toc(driver, server):
        driver.get(urllib.parse.urljoin(server.url, href))
        found = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.embed')).map(f => ["
            "  f.querySelectorAll('.output:not(.stream):not(.error)').length,"
            "  f.querySelectorAll('.stream.stdout').length,"
            "  f.querySelectorAll('.stream.stderr, .error').length])")
        embeds += len(found)
        for rich, stdout, noise in found:
            assert not noise, f"{href}: an embed shows stderr or an error"
            assert rich or stdout, f"{href}: an embed shows nothing"
            assert not (rich and stdout), f"{href}: an embedded figure shows the cell's printed text"
            printed_only += bool(stdout)
    assert embeds and printed_only, f"no embedded figure ({embeds}) or printed report ({printed_only}) to check"


def test_every_page_has_a_distinct_title(driver, server):
    """Notebook pages do not repeat their chapter's title: the page, the sidebar, prev/next, tabs."""
    toc = _toc(driver, server)
    titles, tab_titles = {}, {}
    for href, sidebar_title in toc:
        driver.get(urllib.parse.urljoin(server.url, href))
        h1 = driver.execute_script("return document.querySelector('h1.page-title').textContent.trim()")
        titles.setdefault(h1, []).append(href)
        tab_titles.setdefault(driver.title, []).append(href)
        for sel in (".prev-next a.prev .pn-title", ".prev-next a.next .pn-title"):
            pn = driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : ''", sel)
            assert pn != h1, f"{href}: the {sel.split('.')[2]} link has this page's own title {h1!r}"
        if driver.execute_script("return document.body.classList.contains('page-notebook')"):
            assert "notebook" in href, f"{href}: a notebook page's address does not say it is the notebook"
    assert all(len(v) == 1 for v in titles.values()), {k: v for k, v in titles.items() if len(v) > 1}
    assert all(len(v) == 1 for v in tab_titles.values()), {k: v for k, v in tab_titles.items() if len(v) > 1}


def test_no_page_contains_a_path_of_the_build_machine(driver, server):
    problems = []
    for href, _ in _toc(driver, server):
        driver.get(urllib.parse.urljoin(server.url, href))
        # the page as shown, without the code listings (code may name example paths such as /tmp/x.txt)
        html = driver.execute_script("""
            const c = document.documentElement.cloneNode(true);
            c.querySelectorAll('.code-block, .cell-input').forEach(e => e.remove());
            return c.outerHTML;""")
        problems += [f"{href}: {m}" for m in MACHINE_PATH.findall(html)]
    assert not problems, "\n".join(problems[:20])


def _search(driver, query):
    box = driver.find_element("id", "search-input")
    box.clear()
    box.send_keys(query)
    return _wait(lambda: driver.execute_script(
        "var r = document.getElementById('search-results'); return r && !r.hidden && r.textContent.trim() ? "
        "Array.from(r.querySelectorAll('a.search-hit')).map(a => [a.getAttribute('href'), a.textContent]) : null"), 10)


def test_search_forgives_typos_and_accents_and_offers_more_results(driver, server):
    driver.get(server.url + "index.html")
    driver.find_element("id", "search-input").click()
    hits = _search(driver, "difusion")                 # one letter missing
    assert hits, "a search for the misspelt 'difusion' found nothing"
    assert any("diffusion" in text.lower() for _, text in hits), hits[:3]
    _shoot(driver, "search-typo")
    hits = _search(driver, "frechet")                  # no accent: finds "Fréchet"
    assert hits and any("fréchet" in text.lower() for _, text in hits), hits[:3]
    hits = _search(driver, "denois")                   # a prefix
    assert hits and any("denois" in text.lower() for _, text in hits), hits[:3]
    # a common word: at most 12 results, then a "more results" button shows them all
    hits = _search(driver, "the")
    assert 0 < len(hits) <= 12
    more = driver.find_elements("id", "search-more")
    if more:
        total = int(re.search(r"all (\d+) results", more[0].text).group(1))
        more[0].click()
        assert _wait(lambda: len(driver.find_elements("css selector", "#search-results a.search-hit")) == total), \
            "the more-results button does not show all results"
        assert total > 12


def test_downloads_call_the_pdf_pdf(driver, server):
    driver.get(server.url + "index.html")
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll('.downloads-menu a, .btn-download')).map(a => a.textContent)")
    assert not [lab for lab in labels if "TYPST" in lab.upper()], labels


def test_pages_have_link_metadata_and_the_site_a_sitemap(driver, server):
    toc = _toc(driver, server)
    sitemap = (SITE / "sitemap.xml").read_text()
    for href, title in toc:
        driver.get(urllib.parse.urljoin(server.url, href))
        meta = driver.execute_script("""
            const m = p => { const e = document.querySelector(`meta[property="${p}"]`); return e ? e.content : ''; };
            const c = document.querySelector('link[rel=canonical]');
            return {title: m('og:title'), url: m('og:url'), canonical: c ? c.href : '', desc: m('og:description')};""")
        assert meta["title"] and meta["desc"], f"{href}: no Open Graph title/description"
        assert meta["canonical"].endswith("/" + href) and meta["url"] == meta["canonical"], meta
        assert f"<loc>{meta['canonical']}</loc>" in sitemap, f"{href} is not in sitemap.xml"


def test_header_says_which_profile_built_the_site(driver, server):
    driver.get(server.url + "index.html")
    badge = driver.find_element("id", "build-profile").text.lower()
    report = json.loads((SITE / "site-report.json").read_text())
    assert report["profile"] in badge and report["profile"] in ("tiny", "offline", "hub")


def test_wide_tables_fit_the_text_column(driver, server):
    """No page is wider than its text column: a wide table scrolls inside its own box, says so, and
    long hashes are shortened with the full value on hover."""
    for href, _ in _toc(driver, server):
        driver.get(urllib.parse.urljoin(server.url, href))
        over = driver.execute_script("""
            const a = document.querySelector('.article');
            return Array.from(a.querySelectorAll('table')).filter(t => {
              const wrap = t.closest('.table-wrap, .output.html');
              const r = (wrap || t).getBoundingClientRect();
              return r.right > a.getBoundingClientRect().right + 1;
            }).length;""")
        assert not over, f"{href}: {over} table(s) wider than the text column"
        hint = driver.execute_script("""
            return Array.from(document.querySelectorAll('.table-wrap')).filter(w => w.scrollWidth > w.clientWidth + 1)
              .every(w => w.classList.contains('is-scrollable') && getComputedStyle(w, '::before').content.includes('Scroll'));""")
        assert hint, f"{href}: a table that scrolls does not say so"
        hashes = driver.execute_script(
            "return Array.from(document.querySelectorAll('abbr.hash')).map(a => [a.textContent, a.title])")
        for short, full in hashes:
            assert len(short) < len(full) and full.startswith(short.rstrip("…"))


def test_notebook_pages_link_their_citations_like_chapters(driver, server):
    pages = _pages_with(driver, server, "body.page-notebook a.cite")
    assert pages, "no notebook page cites anything (the fixture notebook does)"
    for href in pages:
        driver.get(server.url + href)
        missing = driver.execute_script(
            "return Array.from(document.querySelectorAll('a.cite')).map(a => a.getAttribute('href'))"
            ".filter(h => !document.getElementById(h.slice(1)))")
        assert not missing and driver.execute_script("return !!document.querySelector('#references li')"), href


@pytest.fixture(scope="module")
def jupyter_server():
    """A local Jupyter server (the book's venv), as a reader would start one for "Run live"."""
    import secrets
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(12)
    root = tempfile.mkdtemp(prefix="booksite-jupyter-")
    proc = subprocess.Popen(
        # jupyter_server itself (``jupyter server`` would run it as a child that terminate() misses)
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}", "--ServerApp.allow_origin=*",
         f"--ServerApp.root_dir={root}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return _status(f"{url}/api/status?token={token}") == 200
        except OSError:          # not listening yet
            return False
    ok = _wait(lambda: proc.poll() is None and up(), 60, 0.5)
    if not ok:
        proc.kill()
        pytest.fail("the Jupyter server did not start (jupyter-server is in the book's environment)")
    try:
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def test_run_live_against_a_local_jupyter_server(driver, server, jupyter_server):
    """Click "Run live", connect to a local Jupyter server, edit a cell to print a computed value,
    run it, and see the new output replace the static one. Nothing is loaded before the click."""
    url, token = jupyter_server
    pages = _pages_with(driver, server, "#live-toggle")
    assert pages, "no notebook page offers Run live"
    _flush_logs(driver)
    driver.get(server.url + pages[0])
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [u for u in loaded if "/thebe/" in u], "thebe was loaded before the reader asked for it"
    driver.find_element("id", "live-toggle").click()
    driver.find_element("css selector", 'input[name="live-server"][value="local"]').click()
    box = driver.find_element("id", "live-url")
    box.clear()
    box.send_keys(url)
    driver.find_element("id", "live-token").send_keys(token)
    driver.find_element("id", "live-connect").click()
    state = _wait(lambda: driver.execute_script("return document.body.getAttribute('data-live')"), 90, 0.5)
    assert state == "ready", driver.find_element("id", "live-status").text
    n_cells = driver.execute_script("return document.querySelectorAll('.thebe-cell .CodeMirror').length")
    assert n_cells == driver.execute_script("return document.querySelectorAll('.cell.code-cell').length")
    # the first code cell: replace its code, run it, and read the new output where the static one was
    driver.execute_script("""
        const cell = document.querySelector('.thebe-cell');
        cell.querySelector('.CodeMirror').CodeMirror.setValue("total = sum(k * k for k in range(1, 11))\\nprint('sum of squares:', total)");
        cell.querySelector('.thebe-run-button').click();""")
    out = _wait(lambda: driver.execute_script(
        "const o = document.querySelector('.cell.code-cell [data-output]'); return o && o.textContent.includes('sum of squares') ? o.textContent : ''"), 60, 0.5)
    assert "sum of squares: 385" in out, out
    driver.execute_script("document.querySelector('.cell.code-cell').scrollIntoView()")
    _shoot(driver, "notebook-live")
    origin = server.url.rstrip("/")
    for u in _requested_urls(driver):
        assert u.startswith((origin, url, url.replace("http", "ws"), "data:", "blob:", "about:")), f"request leaves the machine: {u}"

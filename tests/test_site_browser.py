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

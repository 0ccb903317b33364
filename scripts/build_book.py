"""Build the book: execute every notebook, export the paper (docx, PDF), build the HTML site.

``make book`` runs this script with the project's virtual environment. It

1. starts its **own** Jupyter server (127.0.0.1, a free port, a random token, ``allow_root``) and hands
   it to ``myst build --execute`` through ``JUPYTER_BASE_URL``/``JUPYTER_TOKEN``. The kernels inherit
   the server's environment: ``GENAI_BOOK_BUILD=1``, ``GENAI_RUNFACTS_DIR=_build/runfacts``,
   ``GENAI_PROFILE`` (default ``offline``) and ``GENAI_LIB_HASH`` (a hash of the ``genai_lib`` sources);
2. runs ``myst build --execute`` for the docx and PDF exports declared in page frontmatter, and the
   HTML site when the project has a local site template (``site: template: ./templates/site`` in
   ``myst.yml``) or ``GENAI_SITE_THEME=book-theme`` asks for myst's official theme (needs internet);
3. fails (exit 1) when a notebook raised, naming the notebook and the cell, or when an export is
   missing, empty, stale or not a valid file (myst itself exits 0 in both cases);
4. always stops the Jupyter server, its kernels, and myst's ``node`` process, also when the build
   fails or is interrupted: every process it starts carries a build id in its environment, and the
   script ends exactly those processes (and no others) at the end.

The execution cache (``_build/execute``) is myst's: a notebook re-runs when its code changes, or when
a variable it lists in ``execute: depends_on_env`` changes. mystmd 1.11 reads ``execute`` from each
page's frontmatter (a notebook's metadata), not from ``myst.yml``; every executable page declares
``execute: {depends_on_env: [GENAI_LIB_HASH, GENAI_PROFILE]}``. When a page does not, and the hash
or the profile changed, this script empties the execution cache (myst's cache files do not say which
page they belong to), so that page re-runs too.

Usage::

    .venv/bin/python scripts/build_book.py [--project DIR] [--profile offline] [--no-site]
                                           [--no-exports] [--timeout SECONDS]

A summary (executed and cached notebooks, exports, seconds) is written to
``_build/logs/build-summary.json``; myst's full log to ``_build/logs/myst-build.log``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import run_facts_page  # noqa: E402
SCRIPTS_BIN = REPO / "scripts" / "bin"  # holds the `typst` command myst runs for PDFs
CACHE_ENV = ("GENAI_LIB_HASH", "GENAI_PROFILE")  # the variables the execution cache depends on
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXEC_ERROR = "An exception occurred during code execution"


class BuildError(RuntimeError):
    """The build failed; the message says what failed and what to do."""


# ----------------------------------------------------------------------------------------------
# processes: everything we start carries GENAI_BUILD_ID, and is ended by `stop_all`
# ----------------------------------------------------------------------------------------------
@dataclass
class Processes:
    build_id: str
    started: list[subprocess.Popen] = field(default_factory=list)

    def popen(self, cmd: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        """Start a command in its own session (its own process group), tagged with the build id."""
        proc = subprocess.Popen(cmd, env={**env, "GENAI_BUILD_ID": self.build_id}, start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def ours(self) -> list:
        """Every live process started by this build: our children, their descendants (kernels run in
        sessions of their own), and any process whose environment carries our build id."""
        import psutil

        me = os.getpid()
        found: dict[int, psutil.Process] = {}
        for proc in self.started:
            try:
                p = psutil.Process(proc.pid)
                found[p.pid] = p
                for c in p.children(recursive=True):
                    found[c.pid] = c
            except psutil.NoSuchProcess:
                pass
        for p in psutil.process_iter(["pid"]):
            if p.pid == me or p.pid in found:
                continue
            try:
                if p.environ().get("GENAI_BUILD_ID") == self.build_id:
                    found[p.pid] = p
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
                pass
        return [p for p in found.values() if p.pid != me]

    def stop_all(self, grace: float = 8.0) -> list[str]:
        """End every process of this build: SIGTERM, then SIGKILL what is left after `grace` seconds.

        Returns:
            The names of the processes that had to be killed with SIGKILL.
        """
        import psutil

        procs = self.ours()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        killed = []
        for p in alive + [q for q in self.ours() if q not in procs]:
            try:
                killed.append(p.name())
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        for proc in self.started:  # reap our direct children (no zombies)
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        return killed


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyter(procs: Processes, root: Path, env: dict[str, str], log_dir: Path,
                  timeout: float = 180.0) -> tuple[str, str]:
    """Start a Jupyter server for the build and wait until it answers.

    Args:
        procs: the process registry that will stop it.
        root: the server's root directory (the project).
        env: the environment for the server; the kernels inherit it.
        log_dir: where ``jupyter-server.log`` goes.
        timeout: seconds to wait for the server to answer.

    Returns:
        ``(base_url, token)``.
    """
    port, token = free_port(), secrets.token_hex(24)
    log = open(log_dir / "jupyter-server.log", "w")
    cmd = [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True",
           "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}",
           "--ServerApp.shutdown_no_activity_timeout=0"]
    proc = procs.popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise BuildError(f"The Jupyter server exited at start (code {proc.returncode}); see "
                             f"{log_dir / 'jupyter-server.log'}. Is jupyter-server installed in the venv?")
        try:
            req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return base, token
        except OSError:
            time.sleep(0.3)
    raise BuildError(f"The Jupyter server did not answer on {base} within {timeout:.0f} s; see "
                     f"{log_dir / 'jupyter-server.log'}.")


# ----------------------------------------------------------------------------------------------
# the project: toc files, executable pages, declared exports
# ----------------------------------------------------------------------------------------------
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


def docx_front_matter(exp: Export) -> bool:
    """Add the page's abstract and keywords under the title of a docx export.

    myst's Word writer puts only the title and the authors at the top and drops the abstract of
    the frontmatter; the paper needs it. Returns True when something was added.
    """
    fm = read_frontmatter(exp.source)
    abstract = str(fm.get("abstract") or "").strip()
    keywords = fm.get("keywords")
    if not abstract and not keywords:
        return False
    import docx  # python-docx (the `book` extra)

    doc = docx.Document(str(exp.output))
    paras = doc.paragraphs
    flat = lambda t: re.sub(r"\s+", " ", t).strip()  # noqa: E731
    plain = flat(re.sub(r"[*_`]|\[@[^\]]*\]|\{[^}]*\}", "", abstract))
    if not paras or (plain and plain[:60] in flat(" ".join(p.text for p in paras))):
        return False
    i = 1  # after the title: skip the author lines that follow it
    while i < len(paras) and paras[i].style is not None and paras[i].style.name.startswith("Heading") \
            and paras[i].style.name not in ("Heading 1", "Heading 2"):
        i += 1
    if i >= len(paras):
        return False
    anchor = paras[i]
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
    doc.save(str(exp.output))
    return True


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


# ----------------------------------------------------------------------------------------------
# execution cache and errors
# ----------------------------------------------------------------------------------------------
def lib_hash() -> str:
    """A short hash of the genai_lib sources the kernels import (every file but caches)."""
    spec = importlib.util.find_spec("genai_lib")
    folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else REPO / "genai_lib"
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo"):
            h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def invalidate_undeclared(root: Path, pages: list[Path], env: dict[str, str]) -> list[str]:
    """Make pages that do not declare ``depends_on_env`` re-run when the library hash or the profile
    changed since the last build (a stamp in ``_build/execute``).

    myst's cache files do not say which page they belong to, so this empties the execution cache;
    that re-runs every notebook, which a change of the hash would do anyway.

    Returns:
        The undeclared pages that forced it (empty when nothing was dropped).
    """
    cache = root / "_build" / "execute"
    stamp = cache / "genai-env.json"
    now = {k: env.get(k, "") for k in CACHE_ENV}
    before = json.loads(stamp.read_text()) if stamp.exists() else None
    undeclared = [str(p.relative_to(root)) for p in pages if is_executable(p) and not set(CACHE_ENV) <=
                  set(((read_frontmatter(p).get("execute") or {}).get("depends_on_env")) or [])]
    dropped = []
    if before is not None and before != now and undeclared and cache.exists():
        for f in cache.iterdir():
            if f != stamp:
                shutil.rmtree(f) if f.is_dir() else f.unlink()
        dropped = undeclared
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(now))
    return dropped


def failing_cell(root: Path, page: Path, traceback: str) -> str:
    """Name the cell that raised: ipykernel tracebacks say ``Cell In[N]`` (the N-th executed cell)."""
    cells = code_cells(page) if page.exists() else []
    name = page.relative_to(root) if page.is_relative_to(root) else page
    m = re.search(r"Cell In\s*\[(\d+)\]", traceback)
    n = int(m.group(1)) if m else None
    last = [ln.strip() for ln in traceback.splitlines() if re.match(r"^\s*[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b", ln)]
    what = last[-1] if last else "an exception"
    if n is None or n > len(cells):
        return f"notebook {name}: a code cell raised {what}"
    src, where = cells[n - 1]
    first = next((ln for ln in src.splitlines() if ln.strip() and not ln.startswith("#|")), "")
    return f"notebook {name}: code cell {n} of {len(cells)} ({where}, starting `{first.strip()[:60]}`) raised {what}"


def execution_errors(root: Path, log_lines: list[str]) -> list[str]:
    """The notebooks (and cells) that raised, read from myst's log."""
    text = "\n".join(ANSI.sub("", ln) for ln in log_lines)
    errors = []
    for m in re.finditer(re.escape(EXEC_ERROR), text):
        before = text[max(0, m.start() - 600):m.start()]
        after = text[m.end():m.end() + 20000]
        paths = re.findall(r"([\w./\\-]+\.(?:ipynb|md))", before)
        page = Path(paths[-1]) if paths else Path("?")
        if not page.is_absolute():
            page = root / page
        nxt = after.find(EXEC_ERROR)
        errors.append(failing_cell(root, page, after if nxt < 0 else after[:nxt]))
    return errors


def error_outputs_in_site(root: Path, since: float) -> list[str]:
    """Pages of the built site whose outputs hold an error (a second check besides the log)."""
    found = []
    content = root / "_build" / "site" / "content"
    for f in content.rglob("*.json") if content.exists() else []:
        if f.stat().st_mtime < since - 1:
            continue
        text = f.read_text()
        if '"output_type":"error"' in text.replace(" ", "") and "raises-exception" not in text:
            found.append(f"{f.relative_to(root)}: an executed cell shows an error output")
    return found


# ----------------------------------------------------------------------------------------------
# the build
# ----------------------------------------------------------------------------------------------
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


def myst_command(alt_config: bool = False) -> list[str]:
    """The build's command: Jupyter Book 2's CLI, ``jupyter-book`` (it runs the same mystmd 1.11 engine).

    ``jupyter-book`` 2.1.7 has no ``--config`` option, so a build that needs another config file
    (``GENAI_SITE_THEME=book-theme``, ``--no-site``) runs ``myst`` itself (mystmd 1.11.0).
    """
    name = "myst" if alt_config else "jupyter-book"
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise BuildError(f"The `{name}` command was not found; run `make venv` (the `book` extra installs "
                         "jupyter-book and mystmd).")
    return [found]


def run_myst(proc: subprocess.Popen, lines: list[str], log, args: argparse.Namespace) -> int:
    """Stream myst's output to the log (and the terminal); stop early on a notebook error.

    Unless ``--keep-going`` is given, the build stops a few seconds after the first notebook
    error (myst itself would go on executing the other notebooks, and re-run the failing one for
    every export). Returns myst's exit code (or -1 when the build stopped it).
    """
    q: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: ([q.put(ln) for ln in proc.stdout], q.put(None)), daemon=True).start()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    stop_at = None
    while True:
        try:
            line = q.get(timeout=0.5)
        except queue.Empty:
            line = ""
        if line is None:
            return proc.wait()
        if line:
            lines.append(line.rstrip("\n"))
            log.write(line)
            log.flush()
            if not args.quiet:
                sys.stdout.write(line)
                sys.stdout.flush()
            if EXEC_ERROR in line and not args.keep_going and stop_at is None:
                stop_at = time.monotonic() + 3.0  # let the traceback arrive, then stop
        now = time.monotonic()
        if stop_at is not None and now > stop_at:
            log.write("build: stopping myst after the first notebook error (use --keep-going to run on)\n")
            return -1
        if deadline and now > deadline:
            raise BuildError(f"myst did not finish within {args.timeout:.0f} s (--timeout).")


def build(args: argparse.Namespace) -> dict:
    root = Path(args.project).resolve()
    config = yaml.safe_load((root / "myst.yml").read_text())
    logs = root / "_build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pages = toc_files(root, config)
    exports = [] if args.no_exports else declared_exports(root, pages)
    mode, site_msg = (None, "HTML site: skipped (--no-site)") if args.no_site else site_mode(root, config)
    print(f"build: {site_msg}", flush=True)

    env = dict(os.environ)
    env.update(GENAI_BOOK_BUILD="1", GENAI_RUNFACTS_DIR=str(root / "_build" / "runfacts"),
               GENAI_PROFILE=args.profile or os.environ.get("GENAI_PROFILE") or "offline",
               GENAI_LIB_HASH=lib_hash(), TYPST_PYTHON=sys.executable, FORCE_COLOR="0", NO_COLOR="1",
               GRADIO_ANALYTICS_ENABLED="False", PYDEVD_DISABLE_FILE_VALIDATION="1",
               TQDM_DISABLE=os.environ.get("TQDM_DISABLE", "1"), HF_HUB_DISABLE_PROGRESS_BARS="1",
               PATH=os.pathsep.join([str(SCRIPTS_BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    dropped = invalidate_undeclared(root, pages, env)
    if dropped:
        print("build: genai_lib or GENAI_PROFILE changed and these pages do not declare "
              f"`execute: depends_on_env`, so the execution cache was emptied: {', '.join(dropped)}")
    print(f"build: profile={env['GENAI_PROFILE']} genai_lib hash={env['GENAI_LIB_HASH']}", flush=True)

    facts_page = root / "run-facts.md" if "run-facts.md" in (root / "myst.yml").read_text() else None
    if facts_page:  # the page is generated: a placeholder (or the last build's) before the notebooks run
        run_facts_page.write(Path(env["GENAI_RUNFACTS_DIR"]), facts_page)

    procs = Processes(build_id=secrets.token_hex(8))
    summary: dict = {"profile": env["GENAI_PROFILE"], "lib_hash": env["GENAI_LIB_HASH"], "site": mode}
    t_start = time.time()
    alt_config = None
    try:
        base, token = start_jupyter(procs, root, env, logs)
        env.update(JUPYTER_BASE_URL=base, JUPYTER_TOKEN=token)
        cmd = myst_command(alt_config=mode != "local")
        if mode != "local":  # book-theme, or no site: run myst with a config naming another site template
            alt = dict(config)
            template = "book-theme" if mode == "book-theme" else str(REPO / "templates" / "execute-only")
            alt["site"] = {**(config.get("site") or {}), "template": template}
            alt_config = root / ".myst.build.yml"
            alt_config.write_text(yaml.safe_dump(alt, sort_keys=False))
            cmd += ["--config", alt_config.name]
        # --html executes every page of the toc; with the execute-only template it writes no site
        cmd += ["build", "--execute", "--html"] + [f"--{f}" for f in sorted({e.format for e in exports})]
        print(f"build: {Path(cmd[0]).name} {' '.join(cmd[1:])}", flush=True)
        lines: list[str] = []
        with open(logs / "myst-build.log", "w") as log:
            proc = procs.popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, bufsize=1)
            rc = run_myst(proc, lines, log, args)
        plain = [ANSI.sub("", ln) for ln in lines]
        executed = sorted({m.group(1) for ln in plain for m in [re.search(r"Executing notebook \((.+?)\)", ln)] if m})
        cached = sorted({m.group(1) for ln in plain for m in [re.search(r"Adding cached notebook outputs \((.+?)\)", ln)] if m} - set(executed))
        summary.update(myst_exit=rc, executed=executed, cached=cached, seconds=round(time.time() - t_start, 1))
        problems = list(dict.fromkeys(execution_errors(root, lines))) or error_outputs_in_site(root, t_start)
        if rc == -1:
            problems.append("the build stopped at the first notebook error (--keep-going runs everything)")
        elif rc != 0:
            problems.append(f"myst exited with code {rc}; see {logs / 'myst-build.log'}")
        if any("ENOTFOUND" in ln or "getaddrinfo" in ln for ln in plain):
            problems.append("myst tried to download something (a template?) and there is no network; "
                            "exports need `template: ../templates/<kind>` and the site `site: template: ./templates/site`"
                            + (" — GENAI_SITE_THEME=book-theme needs internet" if mode == "book-theme" else ""))
        for exp in exports:
            why = check_export(exp, t_start)
            if why is None and exp.format == "docx":
                docx_front_matter(exp)
            if why:
                problems.append(f"export {exp.output.relative_to(root) if exp.output.is_relative_to(root) else exp.output} "
                                f"({exp.format} of {exp.source.relative_to(root)}) {why}; see {logs / 'myst-build.log'}")
        if mode is None:
            shutil.rmtree(root / "_build" / "html", ignore_errors=True)
        elif not (root / "_build" / "html" / "index.html").exists():
            problems.append("the HTML site was not written (_build/html/index.html is missing)")
        myst_errors = list(dict.fromkeys(re.split("\u26d4\ufe0f?", ln, maxsplit=1)[1].strip() for ln in plain
                                         if "\u26d4" in ln and EXEC_ERROR not in ln))
        myst_errors = [e.replace(".myst.build.yml", "myst.yml") for e in myst_errors]
        summary["myst_errors"] = myst_errors
        if facts_page and not problems and run_facts_page.write(Path(env["GENAI_RUNFACTS_DIR"]), facts_page):
            # The notebooks just reported their run facts: render the site once more with the new page.
            # Every notebook now comes from the execution cache, so nothing is executed again.
            print("build: run facts updated; rendering the site again (nothing is re-executed)", flush=True)
            again = [c for c in cmd if c not in ("--docx", "--pdf", "--typst")]
            with open(logs / "myst-build-facts.log", "w") as log:
                proc = procs.popen(again, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, bufsize=1)
                if run_myst(proc, [], log, args) != 0:
                    problems.append(f"the second site render (run facts) failed; see {logs / 'myst-build-facts.log'}")
        fatal = [e for e in myst_errors if args.strict or re.search(r"\.bib\b.*Error reading file", e)]
        problems += [f"myst reported: {e}" + ("" if args.strict else " (a broken bibliography always fails the build)")
                     for e in fatal]
        summary["exports"] = {str(e.output): e.output.stat().st_size for e in exports if e.output.exists()}
        summary["problems"] = problems
        if problems:
            raise BuildError("the book build failed:\n  - " + "\n  - ".join(problems))
        return summary
    finally:
        killed = procs.stop_all()
        if alt_config and alt_config.exists():
            alt_config.unlink()
        summary["killed_after_grace"] = killed
        summary["seconds"] = round(time.time() - t_start, 1)
        (logs / "build-summary.json").write_text(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", default=str(REPO), help="the MyST project folder (default: the repository)")
    ap.add_argument("--profile", help="GENAI_PROFILE for the notebooks (default: $GENAI_PROFILE or offline)")
    ap.add_argument("--no-site", action="store_true", help="do not build the HTML site")
    ap.add_argument("--no-exports", action="store_true", help="do not build the docx/PDF exports")
    ap.add_argument("--timeout", type=float, default=None, help="stop the build after this many seconds")
    ap.add_argument("--quiet", action="store_true", help="do not echo myst's log (it is still saved)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first notebook error")
    ap.add_argument("--strict", action="store_true", default=os.environ.get("GENAI_BUILD_STRICT") == "1",
                    help="fail on every error myst logs (a missing toc file, a bad reference...); "
                         "default: list them as warnings (GENAI_BUILD_STRICT=1 sets this)")
    args = ap.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        summary = build(args)
    except BuildError as err:
        print(f"\nbuild: FAILED: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbuild: interrupted; the Jupyter server, kernels and myst were stopped.", file=sys.stderr)
        return 130
    ex = summary.get("executed", [])
    print(f"\nbuild: OK in {summary['seconds']} s; notebooks executed: {len(ex)} "
          f"({', '.join(ex) or 'none: all from the execution cache'}); from cache: {len(summary.get('cached', []))}")
    for path, size in summary.get("exports", {}).items():
        print(f"build: export {path} ({size:,} bytes)")
    for e in summary.get("myst_errors", []):
        print(f"build: warning: myst reported an error: {e} (--strict makes this fail the build)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

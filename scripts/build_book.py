"""Build the book: execute every notebook, export the paper (docx, PDF), build the HTML site.

``make book`` runs this script with the project's virtual environment. It

1. starts its **own** Jupyter server (127.0.0.1, a free port, a random token, ``allow_root``) and hands
   it to ``myst build --execute`` through ``JUPYTER_BASE_URL``/``JUPYTER_TOKEN``. The kernels inherit
   the server's environment: ``GENAI_BOOK_BUILD=1``, ``GENAI_RUNFACTS_DIR=_build/runfacts``,
   ``GENAI_PROFILE`` (default ``offline``) and ``GENAI_LIB_HASH`` (a hash of the ``genai_lib`` sources);
2. executes the notebooks two at a time (``GENAI_EXECUTE_PARALLEL``; one torch thread each on 2 cores),
   longest expected run first, into myst's execution cache (``execute_first``), then
   runs ``myst build --execute`` for the docx and PDF exports declared in page frontmatter, and the
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

The jobs live in the ``bookbuild`` package next to this script (``processes``, ``project``, ``cache``,
``myst``, ``mystlog``, ``exports``, ``docx``); this file runs them in order. The Word export is
finished after myst (abstract, dates, Office Math equations, styles, properties: see
``bookbuild/docx.py``), and the site's downloads are replaced by the files in ``exports/``.

A summary (executed and cached notebooks, exports, seconds) is written to
``_build/logs/build-summary.json``; myst's full log to ``_build/logs/myst-build.log``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import run_facts_page  # noqa: E402
import check_pages  # noqa: E402
from bookbuild import BuildError  # noqa: E402
from bookbuild.cache import invalidate_undeclared, lib_hash  # noqa: E402
from bookbuild.exports import check_export, finish_export, publish_to_site  # noqa: E402
from bookbuild.myst import myst_command, run_myst  # noqa: E402
from bookbuild.mystlog import (error_outputs_in_site, execution_errors, is_fatal, notebooks_run,  # noqa: E402
                               reported_errors, tried_network)
from bookbuild.processes import Processes, on_signal, start_jupyter  # noqa: E402
from bookbuild.project import declared_exports, execution_order, site_mode, toc_files  # noqa: E402

SCRIPTS_BIN = REPO / "scripts" / "bin"  # holds the `typst` command myst runs for PDFs


def finish_exports(root: Path, exports: list, config: dict, since: float, logs: Path, summary: dict,
                   built: dt.date) -> list[str]:
    """Check every declared export and finish the good ones (the docx); returns the problems."""
    problems = []
    summary["finished"] = {}
    for exp in exports:
        where = exp.output.relative_to(root) if exp.output.is_relative_to(root) else exp.output
        why = check_export(exp, since)
        if why is None:
            try:
                summary["finished"][str(where)] = finish_export(exp, config.get("project") or {}, built)
            except BuildError as err:
                why = f"could not be finished: {err}"
        if why:
            problems.append(f"export {where} ({exp.format} of {exp.source.relative_to(root)}) {why}; "
                            f"see {logs / 'myst-build.log'}")
    return problems


def run_problems(root: Path, lines: list[str], rc: int, since: float, log: Path) -> list[str]:
    """What went wrong in one myst run: the notebooks (and cells) that raised, else error outputs in the
    site written since ``since``, and how myst ended (``rc``; -1 = stopped at the first notebook error)."""
    problems = list(dict.fromkeys(execution_errors(root, lines))) or error_outputs_in_site(root, since)
    if rc == -1:
        problems.append("the build stopped at the first notebook error (--keep-going runs everything)")
    elif rc != 0:
        problems.append(f"myst exited with code {rc}; see {log}")
    return problems


def expected_seconds(facts_dir: Path, readme: Path = REPO / "README.md") -> dict[str, float]:
    """Each notebook's expected wall time: the last build's run facts, else the README's measured column
    (a fresh clone's last committed cold build), else its budget (a setting)."""
    from budget_table import BUDGET_S, load_facts, measured_in_readme

    return {**{k: float(v) for k, v in BUDGET_S.items()}, **measured_in_readme(readme),
            **{k: float(f["wall_s"]) for k, f in load_facts(facts_dir).items() if "wall_s" in f}}


def execute_first(procs: Processes, root: Path, config: dict, pages: list[Path], env: dict, parallel: int,
                  logs: Path, args: argparse.Namespace, lines: list[str], t_start: float) -> None:
    """Execute every executable page, ``parallel`` at a time, into myst's execution cache.

    A separate ``myst build --execute --execute-parallel N`` with the execute-only template, no exports,
    and a table of contents of just the executable pages, longest expected run first. The main build
    then finds every page in the cache. Raises :class:`BuildError` when a page raised or myst failed.
    """
    order = execution_order(pages, expected_seconds(Path(env["GENAI_RUNFACTS_DIR"]), root / "README.md"))
    if not order:
        return
    # Without `github`, myst does not run git for every page's edit URL before executing it. With it, a cold
    # build of the book executed diffusion, listed first, last of all; without it, the pages queue for an
    # execution slot in this order (tests/test_book_build.py).
    project = {k: v for k, v in (config.get("project") or {}).items() if k != "github"}
    alt = dict(config)
    alt["project"] = {**project, "toc": [{"file": str(p.relative_to(root))} for p in order]}
    alt["site"] = {**(config.get("site") or {}), "template": str(REPO / "templates" / "execute-only")}
    cfg_file = root / ".myst.execute.yml"
    cfg_file.write_text(yaml.safe_dump(alt, sort_keys=False))
    cmd = myst_command(alt_config=True) + ["--config", cfg_file.name, "build", "--execute",
                                           "--execute-parallel", str(parallel), "--html"]
    print(f"build: executing {len(order)} pages, {parallel} at a time, longest first: "
          + ", ".join(p.stem for p in order), flush=True)
    try:
        with open(logs / "myst-execute.log", "w") as log:
            proc = procs.popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, bufsize=1)
            rc = run_myst(proc, lines, log, args)
    finally:
        cfg_file.unlink(missing_ok=True)
    problems = run_problems(root, lines, rc, t_start, logs / "myst-execute.log")
    if problems:
        raise BuildError("the book build failed:\n  - " + "\n  - ".join(problems))


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
               # "last updated" on the paper: the docx (here), the PDF (Typst's today) and the site's renderer
               GENAI_BUILD_DATE=os.environ.get("GENAI_BUILD_DATE") or dt.date.today().isoformat(),
               GRADIO_ANALYTICS_ENABLED="False", PYDEVD_DISABLE_FILE_VALIDATION="1",
               TQDM_DISABLE=os.environ.get("TQDM_DISABLE", "1"), HF_HUB_DISABLE_PROGRESS_BARS="1",
               TRANSFORMERS_VERBOSITY=os.environ.get("TRANSFORMERS_VERBOSITY", "error"),  # no load chatter on pages
               PATH=os.pathsep.join([str(SCRIPTS_BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    # Notebooks execute two at a time (GENAI_EXECUTE_PARALLEL=N: N at once; 1: one after another), and the
    # kernels share the thread policy's threads (genai_lib.core: the available cores, at most 4), so a
    # 2-core machine runs two one-thread kernels. The book's models are small: a second torch thread makes
    # decoding no faster and training 1.2-1.6x faster at up to twice the CPU (bench/workloads.py).
    from genai_lib.core import thread_count  # the one thread policy, shared with the kernels

    parallel = max(1, int(os.environ.get("GENAI_EXECUTE_PARALLEL") or min(2, thread_count())))
    env.setdefault("GENAI_THREADS", str(max(1, thread_count() // parallel)))
    # and the same for the kernels' other OpenMP users that read the variable (numpy's BLAS, among others)
    env.setdefault("OMP_NUM_THREADS", env["GENAI_THREADS"])
    dropped = invalidate_undeclared(root, pages, env)
    if dropped:
        print("build: genai_lib or GENAI_PROFILE changed and these pages do not declare "
              f"`execute: depends_on_env`, so the execution cache was emptied: {', '.join(dropped)}")
    print(f"build: profile={env['GENAI_PROFILE']} genai_lib hash={env['GENAI_LIB_HASH']} "
          f"notebooks in parallel={parallel} torch threads each={env['GENAI_THREADS']}", flush=True)

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
        lines: list[str] = []
        if parallel > 1:
            try:
                execute_first(procs, root, config, pages, env, parallel, logs, args, lines, t_start)
            finally:
                summary["executed"], summary["cached"] = notebooks_run(lines)
        cmd = myst_command(alt_config=mode != "local")
        if mode != "local":  # book-theme, or no site: run myst with a config naming another site template
            alt = dict(config)
            template = "book-theme" if mode == "book-theme" else str(REPO / "templates" / "execute-only")
            alt["site"] = {**(config.get("site") or {}), "template": template}
            alt_config = root / ".myst.build.yml"
            alt_config.write_text(yaml.safe_dump(alt, sort_keys=False))
            cmd += ["--config", alt_config.name]
        # --html executes every page of the toc; with the execute-only template it writes no site
        # One notebook at a time here: each export (docx, PDF) runs in its own myst session, and two sessions
        # executing the same notebook at once share one kernel and cancel each other's cells. After
        # execute_first every page comes from the execution cache.
        cmd += ["build", "--execute", "--execute-parallel", "1", "--html"] \
            + [f"--{f}" for f in sorted({e.format for e in exports})]
        print(f"build: {Path(cmd[0]).name} {' '.join(cmd[1:])}", flush=True)
        with open(logs / "myst-build.log", "w") as log:
            proc = procs.popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, bufsize=1)
            rc = run_myst(proc, lines, log, args)
        executed, cached = notebooks_run(lines)
        summary.update(myst_exit=rc, executed=executed, cached=cached, seconds=round(time.time() - t_start, 1))
        problems = run_problems(root, lines, rc, t_start, logs / "myst-build.log")
        if tried_network(lines):
            problems.append("myst tried to download something (a template?) and there is no network; "
                            "exports need `template: ../templates/<kind>` and the site `site: template: ./templates/site`"
                            + (" — GENAI_SITE_THEME=book-theme needs internet" if mode == "book-theme" else ""))
        problems += finish_exports(root, exports, config, t_start, logs, summary,
                                   dt.date.fromisoformat(env["GENAI_BUILD_DATE"]))
        if mode is None:
            shutil.rmtree(root / "_build" / "html", ignore_errors=True)
        elif not (root / "_build" / "html" / "index.html").exists():
            problems.append("the HTML site was not written (_build/html/index.html is missing)")
        summary["myst_errors"] = myst_errors = reported_errors(lines)
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
        if mode is not None:  # last: the site offers the very files of exports/
            summary["site_downloads"] = publish_to_site(root, exports)
        problems += check_pages.problems(root / "_build" / "site" / "content")  # empty embeds, unexecuted {eval}
        problems += [f"myst reported: {e}" + ("" if args.strict else " (a broken bibliography always fails the build)")
                     for e in myst_errors if is_fatal(e, args.strict)]
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
        signal.signal(sig, on_signal)
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

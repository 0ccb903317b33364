"""Running myst: finding the command, streaming its output to the log, stopping at a notebook error."""

from __future__ import annotations

import argparse
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import BuildError
from .mystlog import EXEC_ERROR


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



"""Reading myst's log: which notebooks ran or came from the cache, which cell raised, and the other
errors myst reports (myst logs a notebook error and carries on, and exits 0 when an export fails)."""

from __future__ import annotations

import re
from pathlib import Path

from .project import code_cells

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXEC_ERROR = "An exception occurred during code execution"


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




def notebooks_run(log_lines: list[str]) -> tuple[list[str], list[str]]:
    """``(executed, cached)``: the pages myst executed, and those whose outputs came from its cache."""
    plain = [ANSI.sub("", ln) for ln in log_lines]
    executed = sorted({m.group(1) for ln in plain for m in [re.search(r"Executing notebook \((.+?)\)", ln)] if m})
    cached = sorted({m.group(1) for ln in plain for m in [re.search(r"Adding cached notebook outputs \((.+?)\)", ln)] if m}
                    - set(executed))
    return executed, cached


def tried_network(log_lines: list[str]) -> bool:
    """Whether myst tried to download something (a template) and found no network."""
    return any("ENOTFOUND" in ln or "getaddrinfo" in ln for ln in log_lines)


def reported_errors(log_lines: list[str]) -> list[str]:
    """The other errors myst logged (a missing toc file, a bad reference...), once each."""
    plain = [ANSI.sub("", ln) for ln in log_lines]
    found = dict.fromkeys(re.split("\u26d4\ufe0f?", ln, maxsplit=1)[1].strip() for ln in plain
                          if "\u26d4" in ln and EXEC_ERROR not in ln)
    return [e.replace(".myst.build.yml", "myst.yml") for e in found]


def is_fatal(error: str, strict: bool) -> bool:
    """A myst error fails the build under ``--strict``; a bibliography myst cannot read always does."""
    return strict or bool(re.search(r"\.bib\b.*Error reading file", error))

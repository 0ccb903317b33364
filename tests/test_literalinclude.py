"""Every ``{literalinclude}`` of every chapter shows a real, non-empty region of the library.

Chapters show library code only between named markers (``# [start:name]`` / ``# [end:name]``),
never by the text of a ``def`` line, so a moved or renamed function cannot silently change what the
book shows. The region is resolved the way mystmd 1.11 does it (the first line that *contains* the
``start-after`` text, then the first later line containing the ``end-before`` text); a missing
marker, which myst only warns about (it then shows the whole file), fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)```")
MARKER = re.compile(r"^\s*# \[(start|end):([\w-]+)\]\s*$")


def includes() -> list[tuple[str, str, dict[str, str]]]:
    """(chapter, target path as written, options) for every literalinclude in chapters/ and index.md."""
    found = []
    for page in [*sorted((ROOT / "chapters").glob("*.md")), ROOT / "index.md"]:
        for m in BLOCK.finditer(page.read_text(encoding="utf-8")):
            opts = dict(re.match(r":([\w-]+):\s*(.*?)\s*$", ln).groups() for ln in m.group(2).splitlines())
            found.append((page.relative_to(ROOT).as_posix(), m.group(1), opts))
    return found


def resolve(lines: list[str], opts: dict[str, str]) -> list[str]:
    """The lines myst shows for ``opts`` (raises LookupError where myst would only warn)."""
    if "lines" in opts:
        a, _, b = opts["lines"].partition("-")
        return lines[int(a) - 1:int(b or len(lines))]
    start_text, end_text = opts.get("start-after"), opts.get("end-before")
    start = next((i for i, ln in enumerate(lines) if start_text in ln), None)
    if start is None:
        raise LookupError(f"no line contains {start_text!r}")
    start += 1
    end = next((j for j in range(start + 1, len(lines)) if end_text in lines[j]), None)
    if end is None:
        raise LookupError(f"no line after {start_text!r} contains {end_text!r}")
    return lines[start:end]


INCLUDES = includes()


def test_chapters_have_includes():
    assert len(INCLUDES) >= 40, f"expected the chapters' ~50 literalincludes, found {len(INCLUDES)}"


@pytest.mark.parametrize("page,target,opts", INCLUDES, ids=[f"{p}:{o.get('start-after', t)}" for p, t, o in INCLUDES])
def test_literalinclude_region(page, target, opts):
    path = (ROOT / page).parent / target
    assert path.is_file(), f"{page} includes {target}, which does not exist"
    allowed = {"language", "caption", "linenos", "emphasize-lines", "dedent"}
    if path.suffix == ".py":
        # library code: only between named markers, nothing else selects the lines
        start, end = opts.get("start-after", ""), opts.get("end-before", "")
        ms, me = MARKER.match(start), MARKER.match(end)
        assert ms and me and ms.group(1) == "start" and me.group(1) == "end" and ms.group(2) == me.group(2), (
            f"{page} includes {target} with {opts}; use ':start-after: # [start:NAME]' and "
            "':end-before: # [end:NAME]' with a marker pair in the file")
        assert set(opts) - {"start-after", "end-before"} <= allowed, f"{page}: unexpected options {sorted(opts)}"
        lines = path.read_text(encoding="utf-8").splitlines()
        for marker in (start, end):
            count = sum(ln.strip() == marker for ln in lines)
            assert count == 1, f"{target} has {count} lines '{marker}' (need exactly one)"
    else:
        # a non-Python file (e.g. the Space's README front matter): a line range is allowed
        lines = path.read_text(encoding="utf-8").splitlines()
    try:
        shown = resolve(lines, opts)
    except LookupError as exc:
        pytest.fail(f"{page}: the literalinclude of {target} does not resolve: {exc}")
    assert any(ln.strip() for ln in shown), f"{page}: the literalinclude of {target} ({opts}) is empty"
    assert not any(MARKER.match(ln) for ln in shown), f"{page}: the region of {target} contains another marker"


def test_every_marker_is_paired_and_used():
    """A marker pair in the library that no chapter uses is dead weight; an unpaired one is a typo."""
    used = {(((ROOT / p).parent / t).resolve(), MARKER.match(o["start-after"]).group(2))
            for p, t, o in INCLUDES if t.endswith(".py") and MARKER.match(o.get("start-after", ""))}
    for path in sorted((ROOT / "genai_lib").glob("*.py")):
        seen: dict[str, list[str]] = {}
        for ln in path.read_text(encoding="utf-8").splitlines():
            m = MARKER.match(ln)
            if m:
                seen.setdefault(m.group(2), []).append(m.group(1))
        for name, kinds in seen.items():
            assert kinds == ["start", "end"], f"{path.name}: marker {name!r} appears as {kinds}; need one start, then one end"
            assert (path.resolve(), name) in used, f"{path.name}: marker {name!r} is not included by any chapter"

"""Typeset LaTeX with KaTeX (npm ``katex``, the version myst uses) in a Node process, for the math the
site renders itself (captions of embedded figures, whose math myst leaves as source).

One ``node`` process serves the whole build: a line of JSON in (``{"tex": ..., "display": ...}``), a
line of JSON out (the HTML, or null on error). Without Node or KaTeX, :func:`start` returns None and
the renderer falls back to MathML (``latex2mathml``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

SCRIPT = r"""
const katex = require(process.argv[1]);
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', line => {
  const q = JSON.parse(line);
  let out = null;
  try { out = katex.renderToString(q.tex, {displayMode: !!q.display, throwOnError: true, output: 'htmlAndMathml'}); }
  catch (e) { out = null; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"""


class Katex:
    """``Katex(katex_dir)(tex)`` -> KaTeX HTML or None. Close with :meth:`close`."""

    def __init__(self, node: str, katex_dir: Path):
        self.proc = subprocess.Popen([node, "-e", SCRIPT, str(katex_dir)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")
        self.cache: dict[tuple[str, bool], str | None] = {}

    def __call__(self, tex: str, display: bool = False) -> str | None:
        key = (tex, display)
        if key not in self.cache:
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps({"tex": tex, "display": display}) + "\n")
            self.proc.stdin.flush()
            self.cache[key] = json.loads(self.proc.stdout.readline() or "null")
        return self.cache[key]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def start(katex_dir: Path) -> Katex | None:
    """A KaTeX renderer, or None when Node or the ``katex`` package is missing (or does not answer)."""
    node = shutil.which("node")
    if not node or not (katex_dir / "package.json").exists():
        return None
    try:
        k = Katex(node, katex_dir)
        return k if k("x") else None
    except (OSError, ValueError):
        return None

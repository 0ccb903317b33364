"""Pin the Space's ``genai_lib`` to one commit of this repository, so that a push never changes a running Space.

    python scripts/pin_space.py            # pin to the newest release tag (v*) reachable from HEAD, else HEAD
    python scripts/pin_space.py v0.2.0     # pin to a tag, a branch's current commit, or any commit
    python scripts/pin_space.py --check    # exit 1 unless the pin is a full commit id this repository has

The pin is always a full 40-character commit id (a tag can be moved; a commit cannot), with the tag
named in a comment when there is one. ``space/requirements.txt`` is rewritten atomically. Push the
commit before you push the Space: the Space installs it from GitHub.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE_RE = re.compile(r"^(?P<req>genai_lib(?:\[[^\]]*\])?\s*@\s*git\+(?P<url>[^@#\s]+))(?:@(?P<ref>[^#\s]+))?[^\n]*$",
                     re.MULTILINE)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pin_space: git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def resolve(repo: Path, ref: str | None) -> tuple[str, str | None]:
    """(commit id, tag name or None) for ``ref``; without one, the newest ``v*`` tag reachable from HEAD, or HEAD."""
    if ref is None:
        tags = subprocess.run(["git", "-C", str(repo), "describe", "--tags", "--abbrev=0", "--match", "v*"],
                              capture_output=True, text=True)
        ref = tags.stdout.strip() if tags.returncode == 0 else "HEAD"
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"pin_space: {ref!r} is not a tag, branch or commit of {repo}.")
    sha = found.stdout.strip()
    tag = ref if ref != "HEAD" and git(repo, "tag", "--list", ref) == ref else None
    if not git(repo, "ls-tree", "--name-only", sha, "genai_lib/__init__.py"):
        raise SystemExit(f"pin_space: commit {sha[:12]} ({ref}) has no genai_lib package; pick another.")
    return sha, tag


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_pin(requirements: Path) -> str | None:
    match = LINE_RE.search(requirements.read_text())
    if match is None:
        raise SystemExit(f"pin_space: no 'genai_lib[...] @ git+URL' line in {requirements}.")
    return match["ref"]


def pin(requirements: Path, sha: str, tag: str | None) -> str:
    """Rewrite the genai_lib line of ``requirements`` to ``@sha``; return the new line."""
    text = requirements.read_text()
    match = LINE_RE.search(text)
    if match is None:
        raise SystemExit(f"pin_space: no 'genai_lib[...] @ git+URL' line in {requirements}.")
    line = f"{match['req']}@{sha}" + (f"  # {tag}" if tag else "")
    write_atomically(requirements, text[:match.start()] + line + text[match.end():])
    return line


def check(repo: Path, requirements: Path) -> int:
    ref = current_pin(requirements)
    if ref is None or not SHA_RE.match(ref):
        print(f"pin_space: {requirements} installs genai_lib from {ref or 'the default branch'!r}, which moves; "
              "run `python scripts/pin_space.py` to pin a commit.", file=sys.stderr)
        return 1
    known = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{ref}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        print(f"pin_space: the pinned commit {ref[:12]} is not in this repository's history "
              "(a shallow clone? run `git fetch --unshallow`).", file=sys.stderr)
        return 1
    print(f"pin_space: genai_lib is pinned to {ref}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ref", nargs="?", help="tag, branch or commit (default: newest v* tag, else HEAD)")
    ap.add_argument("--check", action="store_true", help="only check that the current pin is a known commit")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the git repository (default: this one)")
    ap.add_argument("--space", type=Path, default=None, help="the Space folder (default: <repo>/space)")
    args = ap.parse_args(argv)
    requirements = (args.space or args.repo / "space") / "requirements.txt"
    if args.check:
        return check(args.repo, requirements)
    sha, tag = resolve(args.repo, args.ref)
    print(f"pin_space: {requirements}: {pin(requirements, sha, tag)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

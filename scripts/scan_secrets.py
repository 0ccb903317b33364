"""Scan what the book publishes for credentials: executed notebooks, the built site, the exports.

    python scripts/scan_secrets.py _build exports --env GEMINI_API_KEY --env HF_TOKEN

Every file under the given paths is searched for strings shaped like a Google, Hugging Face,
OpenAI-style, GitHub or AWS credential or a private key, and, for each ``--env NAME``, for the
literal value of that environment variable (whatever its shape, also URL-encoded and JSON-escaped).
A finding prints the file, the kind and the first characters only, and the exit code is 1: the
book's deploy workflow (.github/workflows/book.yml) runs this before publishing and stops on it.
``tests/test_app_secrets.py`` tests the scanner and runs it over the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

PATTERNS = {
    "Google API key": re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    "Hugging Face token": re.compile(r"hf_[A-Za-z0-9]{30,}"),
    "OpenAI-style key": re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),
    "GitHub token": re.compile(r"(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"),
}
# The tests' own fake keys (shaped like real ones on purpose); nothing else is allowed.
ALLOWED = {"AIzaStandInTestKey_0123456789abcdefghij", "AIzaSyLEAKCHECK_abcdefghijklmnopqrstu12"}
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".woff", ".woff2", ".ttf", ".wav", ".mp3",
                 ".pdf", ".docx", ".zip", ".gz", ".safetensors", ".bin", ".onnx", ".gguf", ".pt", ".npy"}
MAX_BYTES = 50 * 2**20


def _forms(value: str) -> set[str]:
    """A secret as it may appear in a file: plain, URL-encoded, JSON-escaped."""
    return {f for f in (value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]) if f}


def files_under(paths: Iterable[str | Path]) -> list[Path]:
    """Every file under the given files and folders, sorted."""
    found: set[Path] = set()
    for path in map(Path, paths):
        found.update(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else found.add(path)
    return sorted(found)


def find_secrets(paths: Iterable[str | Path], values: dict[str, str] | None = None) -> list[str]:
    """``"path: kind: first characters"`` for every credential in the given files.

    Args:
        paths: files to read (binary media and files over 50 MiB are skipped).
        values: ``{name: secret}``: literal secrets to look for, whatever their shape (e.g. from the
            environment); values shorter than 8 characters are ignored (they would match by chance).
    """
    literal = {name: _forms(v) for name, v in (values or {}).items() if v and len(v.strip()) >= 8}
    hits = []
    for path in map(Path, paths):
        if not path.is_file() or path.suffix.lower() in SKIP_SUFFIXES or path.stat().st_size > MAX_BYTES:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                if match.group(0) not in ALLOWED:
                    hits.append(f"{path}: {kind}: {match.group(0)[:8]}...")  # never print the whole secret
        for name, forms in literal.items():
            if any(form in text for form in forms):
                hits.append(f"{path}: the value of {name}")
    return hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="files or folders to scan (missing ones are an error)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME",
                    help="also look for the value of this environment variable (repeatable)")
    args = ap.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"scan_secrets: nothing to scan at {', '.join(missing)}: build the book first.", file=sys.stderr)
        return 2
    files = files_under(args.paths)
    hits = find_secrets(files, {name: os.environ.get(name, "") for name in args.env})
    for hit in hits:
        print(f"SECRET FOUND: {hit}", file=sys.stderr)
    print(f"scan_secrets: {len(files)} files scanned, {len(hits)} finding(s).")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())

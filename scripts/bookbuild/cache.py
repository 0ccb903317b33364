"""The execution cache: the hash of ``genai_lib`` the notebooks depend on, and emptying myst's cache
for pages that do not declare ``execute: depends_on_env`` when the hash or the profile changed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

from .project import is_executable, read_frontmatter

REPO = Path(__file__).resolve().parents[2]
CACHE_ENV = ("GENAI_LIB_HASH", "GENAI_PROFILE")  # the variables the execution cache depends on


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



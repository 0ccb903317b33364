"""What the bench scripts share: timing one call in wall-clock and CPU seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], ndigits: int | None = None) -> tuple[Any, float, float]:
    """Call ``fn()``; return its result, the wall seconds and the CPU seconds of this process
    (rounded to ``ndigits`` when given)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return (out, wall, cpu) if ndigits is None else (out, round(wall, ndigits), round(cpu, ndigits))


def save_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` as indented JSON (a script's ``--json``); nothing when ``path`` is empty."""
    if path:
        import json

        with open(path, "w") as f:
            json.dump(data, f, indent=1)

"""What the bench scripts share: timing one call in wall-clock and CPU seconds, decoding an exact
number of tokens, and writing a script's ``--json`` file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
        with open(path, "w") as f:
            json.dump(data, f, indent=1)


def append_jsonl(path: str, rows: Iterable[dict]) -> None:
    """Append ``rows`` to ``path``, one JSON object a line (a script's ``--json`` that gathers runs over
    time); nothing when ``path`` is empty."""
    if path:
        with open(path, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


@contextmanager
def no_eos(model: Any) -> Iterator[None]:
    """Inside the block, ``model.generate`` ignores the end-of-sequence token, so every row decodes
    exactly ``max_new_tokens`` (tokens/s then counts what was decoded); the setting is restored after."""
    cfg = model.generation_config
    eos, cfg.eos_token_id = cfg.eos_token_id, None
    try:
        yield
    finally:
        cfg.eos_token_id = eos

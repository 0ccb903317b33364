"""Run facts: what produced a notebook's outputs, and what it cost.

Every notebook calls :func:`start` in its first code cell and :func:`report` in its last one::

    from genai_lib import runfacts
    runfacts.start("text-generation", roles=["chat"])   # prints profile, device and models
    ...
    runfacts.report()                                   # a small box: versions, wall time, peak memory

When ``GENAI_RUNFACTS_DIR`` is set (the book build sets it), :func:`report` also writes the facts as
``<name>.json`` there, so the book can list the cost of every chapter on one page. The last cell is
labelled ``#| label: facts-<name>``: each chapter embeds it (``![](#facts-<name>)``), so the time and
memory a chapter quotes are those of the build that made the page (see ``docs/PROSE.md``).
"""

from __future__ import annotations

import html
import json
import os
import platform
import resource
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from genai_lib.core import atomic_write, get_device, get_profile

_STATE: dict[str, Any] = {}
LIBRARIES = ("torch", "transformers", "diffusers", "peft", "genai_lib")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    """A human name for the device: the GPU's name, or the CPU model and core count."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{_cpu_name()} ({os.cpu_count()} cores)" if device == "cpu" else device


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def start(name: str, roles: list[str] | None = None, profile: str | None = None) -> dict[str, Any]:
    """Start timing a notebook and print the profile, device and models it uses.

    Args:
        name: the notebook's name (its file name without ``.ipynb``).
        roles: the registry roles the notebook loads (``["chat"]``, ``["embedder", "chat"]`` ...).
        profile: override the active profile (normally read from ``GENAI_PROFILE``).

    Returns:
        The facts known so far (a dict).
    """
    from genai_lib.registry import spec

    prof = get_profile(profile)
    device = get_device()
    models = list(dict.fromkeys(f"{spec(r, prof).hub_id}@{spec(r, prof).revision}" for r in (roles or [])))
    _STATE.clear()
    _STATE.update(name=name, profile=prof, device=device, device_name=device_name(device),
                  models=sorted(set(models)), started_at=round(time.time(), 1), t0=time.perf_counter(),
                  cpu0=time.process_time())
    print(f"profile={prof} | device={device} ({_STATE['device_name']}) | models: {', '.join(models) or 'none'}")
    return dict(_STATE)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def facts() -> dict[str, Any]:
    """The run facts now: profile, device, versions, models, wall and CPU seconds, peak memory."""
    if not _STATE:
        raise RuntimeError("runfacts.start(...) was not called in this kernel; call it in the first cell.")
    out = {k: v for k, v in _STATE.items() if k not in ("t0", "cpu0")}
    import torch

    out.update(versions=_versions(), wall_s=round(time.perf_counter() - _STATE["t0"], 1),
               cpu_s=round(time.process_time() - _STATE["cpu0"], 1), peak_mem_mb=round(peak_memory_mb()),
               torch_threads=torch.get_num_threads(), ended_at=round(time.time(), 1))
    if _STATE["device"].startswith("cuda"):
        out["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return out


def elapsed_s(runs: list[dict[str, Any]]) -> float | None:
    """Seconds from the first run's start to the last one's end, for notebooks executed side by side.

    ``None`` when a run lacks its start or end time, or when the span is not shorter than the runs' summed
    wall time: then the runs did not all come from one build (a notebook kept from an earlier build's
    execution cache), and the span would mean nothing.
    """
    if not runs or any("started_at" not in r or "ended_at" not in r for r in runs):
        return None
    span = max(r["ended_at"] for r in runs) - min(r["started_at"] for r in runs)
    return span if span < sum(r["wall_s"] for r in runs) else None


def findings(*lines: str) -> None:
    """Show what this run found, as a short markdown list, for a chapter to embed.

    Each line is a sentence written from the run's own numbers (an f-string in the notebook), so the
    chapter's reading of the results is that of the run that built the page, in every profile. Label
    the cell (``#| label: out-<notebook>-findings``) and embed it in the chapter (``![](#...)``).

    Args:
        lines: the findings, one sentence each.
    """
    text = "\n".join(f"- {line}" for line in lines)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:
            raise ImportError
        display({"text/markdown": text, "text/plain": text}, raw=True)
    except ImportError:
        print(text)


def report() -> None:
    """Show the run facts as a small box (HTML in Jupyter, text elsewhere) and save them if asked.

    Returns nothing, so that the last cell of a notebook shows only the box; :func:`facts` returns the data.
    """
    data = facts()
    folder = os.environ.get("GENAI_RUNFACTS_DIR", "").strip()
    if folder:
        with atomic_write(Path(folder) / f"{data['name']}.json") as tmp:
            tmp.write_text(json.dumps(data, indent=1))
    rows = [("profile", data["profile"]), ("device", data["device_name"]),
            ("models", ", ".join(data["models"]) or "none (trained here)"),
            ("libraries", ", ".join(f"{k} {v}" for k, v in data["versions"].items())),
            ("wall time", f"{data['wall_s']:.0f} s (CPU {data['cpu_s']:.0f} s)"),
            ("peak memory", f"{data['peak_mem_mb']} MiB" + (f", GPU {data['peak_gpu_mem_mb']} MiB"
                                                            if "peak_gpu_mem_mb" in data else ""))]
    text = "\n".join(f"{k:12s} {v}" for k, v in rows)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:
            raise ImportError
        cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                        f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        bundle = {"text/plain": "Run facts\n" + text,
                  "text/html": f"<div class='run-facts'><strong>Run facts</strong><table>{cells}</table></div>"}
        display(bundle, raw=True, metadata={"genai_runfacts": data})
    except ImportError:
        print("Run facts\n" + text)

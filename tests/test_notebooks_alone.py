"""Every notebook runs alone: a fresh kernel, an empty cache, a fresh home folder, in any order.

Each test copies ONE notebook into an empty folder (as Colab sees it: no repository around it) and
executes it with nbmake (``pytest --nbmake``, one fresh kernel per notebook) in a child pytest, with
a private ``GENAI_CACHE``, ``HOME`` and ``XDG_CACHE_HOME``. Nothing another notebook trained or
cached can help it, and the order the tests run in does not matter.

* ``tiny`` (every notebook, random miniature models): part of the normal test run.
* ``offline`` (the image notebooks gan, vae, diffusion and text-to-image, which train their generators and the
  digit classifier from nothing): the slow tier, ``pytest -m slow tests/test_notebooks_alone.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IMAGE_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem in ("gan", "vae", "diffusion", "text-to-image")]


def run_alone(notebook: Path, profile: str, tmp: Path, cell_timeout: int) -> subprocess.CompletedProcess:
    """Execute ``notebook`` alone with nbmake in ``profile``, with every cache and home folder empty."""
    work, home, cache = tmp / "work", tmp / "home", tmp / "genai-cache"
    for d in (work, home, cache):
        d.mkdir()
    copy = work / notebook.name
    shutil.copy(notebook, copy)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GENAI_", "JUPYTER_", "MPLCONFIGDIR", "PYTEST_"))}
    env.update(GENAI_PROFILE=profile, GENAI_CACHE=str(cache), HOME=str(home),
               XDG_CACHE_HOME=str(home / ".cache"), GENAI_DEVICE=os.environ.get("GENAI_DEVICE", "cpu"),
               # the genai_lib of this checkout, also when the venv's editable install points elsewhere
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
               GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "pytest", "--nbmake", f"--nbmake-timeout={cell_timeout}", "-q",
           "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(work), str(copy)]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)


def _check(proc: subprocess.CompletedProcess, notebook: Path, profile: str) -> None:
    assert proc.returncode == 0, (f"{notebook.name} failed when run alone in {profile} with an empty cache:\n"
                                  + proc.stdout[-6000:] + proc.stderr[-2000:])
    assert "1 passed" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_alone_in_tiny(notebook, tmp_path):
    _check(run_alone(notebook, "tiny", tmp_path, cell_timeout=600), notebook, "tiny")


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.offline
@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", IMAGE_NOTEBOOKS, ids=[p.stem for p in IMAGE_NOTEBOOKS])
def test_image_notebook_runs_alone_in_offline(notebook, tmp_path):
    _check(run_alone(notebook, "offline", tmp_path, cell_timeout=1800), notebook, "offline")

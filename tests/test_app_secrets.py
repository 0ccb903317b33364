"""No API key, token or private key in what the book publishes: executed notebooks, the build, the repo.

The build's notebooks run with real secrets in CI (GEMINI_API_KEY, HF_TOKEN in the `hub` build), so
every output and artifact is scanned for anything shaped like a credential.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = {
    "Google API key": re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    "Hugging Face token": re.compile(r"hf_[A-Za-z0-9]{30,}"),
    "OpenAI-style key": re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),
    "GitHub token": re.compile(r"(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"),
}
# The tests' own fake keys (shaped like real ones on purpose); nothing else is allowed.
ALLOWED = {"AIzaStandInTestKey_0123456789abcdefghij", "AIzaSyLEAKCHECK_abcdefghijklmnopqrstu12",
           "AIzaSyNOTEBOOKLEAKCHECK_0123456789abcde"}
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".woff", ".woff2", ".ttf", ".wav", ".mp3",
                 ".pdf", ".docx", ".zip", ".gz", ".safetensors", ".bin", ".onnx", ".gguf", ".pt", ".npy"}
MAX_BYTES = 50 * 2**20


def find_secrets(paths) -> list[str]:
    """``"path: kind: first characters"`` for every credential-shaped string in the given files."""
    hits = []
    for path in paths:
        path = Path(path)
        if not path.is_file() or path.suffix.lower() in SKIP_SUFFIXES or path.stat().st_size > MAX_BYTES:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                if match.group(0) not in ALLOWED:
                    hits.append(f"{path}: {kind}: {match.group(0)[:8]}...")  # never print the whole secret
    return hits


def test_the_scanner_finds_planted_secrets(tmp_path):
    fake = {"nb.ipynb": '{"outputs": ["key=AIza' + "Q" * 35 + '"]}', "page.html": "token hf_" + "a" * 34,
            "log.txt": "sk-proj-" + "x" * 40, "ok.txt": "AIzaShort and hf_short"}
    for name, content in fake.items():
        (tmp_path / name).write_text(content)
    hits = find_secrets(sorted(tmp_path.iterdir()))
    assert len(hits) == 3 and not any("ok.txt" in h for h in hits)
    assert all("Q" * 20 not in h for h in hits)  # the report itself does not repeat the secret


def test_no_secrets_in_notebooks_and_tracked_files():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files = {ROOT / f for f in tracked} | set((ROOT / "notebooks").glob("*.ipynb"))
    assert not find_secrets(sorted(files))


@pytest.mark.book
def test_no_secrets_in_the_build():
    build = ROOT / "_build"
    if not build.exists():
        pytest.skip("no _build folder: run `make book` first")
    files = [p for p in build.rglob("*") if p.is_file()]
    assert files and not find_secrets(files)


def test_the_notebook_with_a_key_answers_with_gemini_and_never_shows_the_key(monkeypatch, tmp_path):
    """Execute notebooks/app.ipynb as the `hub` build would, with a key, against the local stand-in."""
    import json
    import sys

    import nbclient
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    from gemini_standin import StandIn

    secret = "AIzaSyNOTEBOOKLEAKCHECK_0123456789abcde"
    with StandIn(key=secret) as server:
        monkeypatch.setenv("GEMINI_API_KEY", secret)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        monkeypatch.setenv("MPLBACKEND", "Agg")
        nb = nbformat.read(ROOT / "notebooks" / "app.ipynb", as_version=4)
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
        requests = list(server.requests)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert secret not in outputs and "AIzaSyNOTEB" not in outputs
    assert "Answered by Gemini (gemini-3.5-flash)" in outputs and "Stand-in answer" in outputs
    assert "finish reason:" in outputs  # the direct SDK call ran too
    assert requests and all(r.headers["x-goog-api-key"] == secret for r in requests)
    assert {r.path.rsplit(":", 1)[1] for r in requests} == {"streamGenerateContent", "generateContent"}

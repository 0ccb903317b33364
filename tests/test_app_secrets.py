"""No API key, token or private key in what the book publishes: executed notebooks, the build, the repo.

The build's notebooks run with real secrets in CI (GEMINI_API_KEY, HF_TOKEN in the `hub` build), so
every output and artifact is scanned for anything shaped like a credential.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("scan_secrets", ROOT / "scripts" / "scan_secrets.py")
scan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scan)
find_secrets = scan.find_secrets


def test_the_scanner_finds_planted_secrets(tmp_path):
    fake = {"nb.ipynb": '{"outputs": ["key=AIza' + "Q" * 35 + '"]}', "page.html": "token hf_" + "a" * 34,
            "log.txt": "sk-proj-" + "x" * 40, "ok.txt": "AIzaShort and hf_short"}
    for name, content in fake.items():
        (tmp_path / name).write_text(content)
    hits = find_secrets(sorted(tmp_path.iterdir()))
    assert len(hits) == 3 and not any("ok.txt" in h for h in hits)
    assert all("Q" * 20 not in h for h in hits)  # the report itself does not repeat the secret
    odd = "nb-proxy/k3y+Unusual~shape:7=%Q"  # no pattern knows this shape: only the literal search finds it
    (tmp_path / "cell.json").write_text('{"text": "' + __import__("urllib.parse").parse.quote(odd, safe="") + '"}')
    assert not find_secrets([tmp_path / "cell.json"])
    assert find_secrets([tmp_path / "cell.json"], {"GEMINI_API_KEY": odd}) == [
        f"{tmp_path / 'cell.json'}: the value of GEMINI_API_KEY"]


def test_the_deploy_scan_fails_on_a_finding(tmp_path, monkeypatch):
    """The command book.yml runs: exit 1 and no secret on screen when the site holds the key, 0 when clean."""
    site = tmp_path / "_build" / "html"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<p>a clean page</p>")
    secret = "live-key::with/odd+shape=42"
    env = {**__import__("os").environ, "GEMINI_API_KEY": secret}
    cmd = [sys.executable, str(ROOT / "scripts" / "scan_secrets.py"), str(tmp_path / "_build"), "--env", "GEMINI_API_KEY"]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "1 files scanned, 0 finding(s)" in ok.stdout
    (site / "app.html").write_text(f"<pre>key = {secret}</pre>")
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "app.html: the value of GEMINI_API_KEY" in bad.stderr
    assert secret not in bad.stdout + bad.stderr
    missing = subprocess.run(cmd[:2] + [str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == 2 and "build the book first" in missing.stderr


def test_the_deploy_workflow_scans_before_publishing():
    import yaml

    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    for job in ("build", "hub"):  # the published build, and the hub check that has the real secrets
        steps = wf["jobs"][job]["steps"]
        runs = [s.get("run", "") for s in steps]
        uses = [s.get("uses", "") for s in steps]
        scan_at = next(i for i, r in enumerate(runs) if "scripts/scan_secrets.py" in r)
        assert "_build" in runs[scan_at] and "--env GEMINI_API_KEY" in runs[scan_at] and "--env HF_TOKEN" in runs[scan_at]
        assert scan_at > next(i for i, r in enumerate(runs) if "make book" in r)
        uploads = [i for i, u in enumerate(uses) if "upload" in u]
        assert uploads and scan_at < min(uploads), job  # before anything leaves the runner
        assert not any(steps[i].get("if") for i in uploads), job  # and no upload runs after a failed scan


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

    from urllib.parse import quote

    secret = "nb-proxy/k3y+Unusual~shape:7=%Q"  # not shaped like a Google key: the app must redact it by value
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
    assert secret not in outputs and quote(secret, safe="") not in outputs and "k3y+Unusual" not in outputs
    assert "Answered by Gemini (gemini-3.5-flash)" in outputs and "Stand-in answer" in outputs
    assert "finish reason:" in outputs  # the direct SDK call ran too
    assert requests and all(r.headers["x-goog-api-key"] == secret for r in requests)
    assert {r.path.rsplit(":", 1)[1] for r in requests} == {"streamGenerateContent", "generateContent"}

"""The Space folder: genai_lib pinned to one commit, the pin script, and an offline install that starts.

The install test builds a wheel of this working tree's genai_lib, installs the Space's pinned
requirements into a fresh virtual environment with ``pip --no-index`` (nothing is downloaded: the
heavy dependencies, torch and gradio, are reused from the project's environment), starts
``space/app.py`` with that environment only, and asks it one question through ``gradio_client``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gemini_standin import StandIn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PIN = ROOT / "scripts" / "pin_space.py"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_the_space_pins_genai_lib_to_a_commit():
    reqs = (ROOT / "space" / "requirements.txt").read_text()
    (line,) = [x for x in reqs.splitlines() if x.startswith("genai_lib")]
    assert re.fullmatch(r"genai_lib\[app\] @ git\+https://github\.com/\S+@[0-9a-f]{40}(  # v\S+)?", line), line
    assert "@main" not in reqs and "@master" not in reqs


def test_pin_space_script(tmp_path):
    repo = tmp_path / "repo"
    (repo / "genai_lib").mkdir(parents=True)
    (repo / "space").mkdir()
    (repo / "genai_lib" / "__init__.py").write_text("")
    reqs = repo / "space" / "requirements.txt"
    reqs.write_text("google-genai>=3.3\ngenai_lib[app] @ git+https://github.com/example/book\n# end\n")
    git(tmp_path, "init", "-q", str(repo))
    for args in (("config", "user.email", "t@example.org"), ("config", "user.name", "t"), ("add", "."),
                 ("commit", "-qm", "one"), ("tag", "v0.1.0")):
        git(repo, *args)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(PIN), "--repo", str(repo), *args], capture_output=True, text=True)

    bad = run("--check")
    assert bad.returncode == 1 and "which moves" in bad.stderr
    assert run().returncode == 0  # default: the newest v* tag
    tagged = git(repo, "rev-parse", "v0.1.0")
    assert reqs.read_text() == ("google-genai>=3.3\ngenai_lib[app] @ git+https://github.com/example/book@"
                                f"{tagged}  # v0.1.0\n# end\n")
    assert run("--check").returncode == 0
    (repo / "genai_lib" / "x.py").write_text("")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "two")
    assert run("HEAD").returncode == 0 and git(repo, "rev-parse", "HEAD") in reqs.read_text()
    assert sorted(p.name for p in reqs.parent.iterdir()) == ["requirements.txt"]  # written atomically
    missing = run("no-such-ref")
    assert missing.returncode == 1 and "'no-such-ref' is not a tag, branch or commit" in missing.stderr
    reqs.write_text(reqs.read_text().replace(git(repo, "rev-parse", "HEAD"), "f" * 40))
    unknown = run("--check")
    assert unknown.returncode == 1 and "not in this repository's history" in unknown.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_space_installs_and_starts_offline_from_a_wheel(tmp_path):
    wheels, venv, space = tmp_path / "wheels", tmp_path / "venv", tmp_path / "space"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("genai_lib-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the heavy dependencies come from the project's environment (its site-packages folder as a plain
    # path: its own .pth files, the editable genai_lib's among them, are not run)
    Path(site, "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(ROOT / "space", space)
    offline = []  # the pinned requirements, with the GitHub line replaced by the local wheel of the same package
    for line in (space / "requirements.txt").read_text().splitlines():
        if line.startswith("--extra-index-url"):
            continue
        offline.append(re.sub(r"^genai_lib(\[[^\]]*\])? @ git\+\S+", r"genai_lib\1", line))
    (tmp_path / "offline.txt").write_text("\n".join(offline) + "\n")
    target = pip + ["--python", str(py), "install", "--no-index", "--find-links", str(wheels)]
    subprocess.run(target + ["--no-deps", "--ignore-installed", str(wheel)], check=True, capture_output=True)
    done = subprocess.run(target + ["-r", str(tmp_path / "offline.txt")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    where = subprocess.run([str(py), "-c", "import genai_lib; print(genai_lib.__file__)"], capture_output=True,
                           text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where  # the wheel's copy, not the working tree's

    port = free_port()
    with StandIn() as server:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPACE_ID")}
        env.update(GEMINI_API_KEY=server.key, GOOGLE_GEMINI_BASE_URL=server.url, GENAI_APP_PORT=str(port),
                   GENAI_APP_STATE_DIR="memory", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
        proc = subprocess.Popen([str(py), "app.py"], cwd=space, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            url, end = f"http://127.0.0.1:{port}", time.monotonic() + 120
            while True:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                try:
                    urllib.request.urlopen(url + "/config", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < end, "the Space did not start within 120 s"
                    time.sleep(0.5)
            from gradio_client import Client

            client = Client(url, verbose=False)
            answer = client.predict("Are you there?", "Be brief.", 0.5, 0.9, 64, api_name="/chat")
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert answer.startswith("Stand-in answer number 1 to: Are you there?") and "Answered by Gemini" in answer

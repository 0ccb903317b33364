"""Process control for the build: every process the build starts carries ``GENAI_BUILD_ID`` in its
environment and is ended by :meth:`Processes.stop_all`; the build's own Jupyter server."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import BuildError


@dataclass
class Processes:
    build_id: str
    started: list[subprocess.Popen] = field(default_factory=list)

    def popen(self, cmd: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        """Start a command in its own session (its own process group), tagged with the build id."""
        proc = subprocess.Popen(cmd, env={**env, "GENAI_BUILD_ID": self.build_id}, start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def ours(self) -> list:
        """Every live process started by this build: our children, their descendants (kernels run in
        sessions of their own), and any process whose environment carries our build id."""
        import psutil

        me = os.getpid()
        found: dict[int, psutil.Process] = {}
        for proc in self.started:
            try:
                p = psutil.Process(proc.pid)
                found[p.pid] = p
                for c in p.children(recursive=True):
                    found[c.pid] = c
            except psutil.NoSuchProcess:
                pass
        for p in psutil.process_iter(["pid"]):
            if p.pid == me or p.pid in found:
                continue
            try:
                if p.environ().get("GENAI_BUILD_ID") == self.build_id:
                    found[p.pid] = p
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
                pass
        return [p for p in found.values() if p.pid != me]

    def stop_all(self, grace: float = 8.0) -> list[str]:
        """End every process of this build: SIGTERM, then SIGKILL what is left after `grace` seconds.

        Returns:
            The names of the processes that had to be killed with SIGKILL.
        """
        import psutil

        procs = self.ours()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        killed = []
        for p in alive + [q for q in self.ours() if q not in procs]:
            try:
                killed.append(p.name())
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        for proc in self.started:  # reap our direct children (no zombies)
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        return killed



def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyter(procs: Processes, root: Path, env: dict[str, str], log_dir: Path,
                  timeout: float = 180.0) -> tuple[str, str]:
    """Start a Jupyter server for the build and wait until it answers.

    Args:
        procs: the process registry that will stop it.
        root: the server's root directory (the project).
        env: the environment for the server; the kernels inherit it.
        log_dir: where ``jupyter-server.log`` goes.
        timeout: seconds to wait for the server to answer.

    Returns:
        ``(base_url, token)``.
    """
    port, token = free_port(), secrets.token_hex(24)
    log = open(log_dir / "jupyter-server.log", "w")
    cmd = [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True",
           "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}",
           "--ServerApp.shutdown_no_activity_timeout=0"]
    proc = procs.popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise BuildError(f"The Jupyter server exited at start (code {proc.returncode}); see "
                             f"{log_dir / 'jupyter-server.log'}. Is jupyter-server installed in the venv?")
        try:
            req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return base, token
        except OSError:
            time.sleep(0.3)
    raise BuildError(f"The Jupyter server did not answer on {base} within {timeout:.0f} s; see "
                     f"{log_dir / 'jupyter-server.log'}.")



"""A sandbox for running generated code: a fresh, walled-in Python process whose verdict it cannot forge.

Model-written code is untrusted: it may loop forever, eat all memory, fork, reach the network, read
secrets or write where it should not. :func:`run` executes a program behind layers of protection:

1. **bubblewrap** (``bwrap``, when it can start): new PID, network, IPC, UTS and mount namespaces;
   the interpreter and its libraries mounted read-only and nothing else of the machine visible; a
   fresh, size-capped ``tmpfs`` as the working folder and the only writable place; a fresh ``/proc``
   that shows only the sandbox's own processes; of the caller's environment only ``PATH``; killed with its parent.
   Started as root, the program then runs as user ``nobody``. Where bubblewrap cannot start (not
   installed, or a container that forbids namespaces) :func:`run` says so loudly (a
   :class:`SandboxWarning` and :attr:`SandboxResult.warning`) and keeps the other layers;
2. **a separate process** (``python -I -B``) in its own session, killed at the wall-time limit, whose
   output is read up to a cap;
3. **kernel resource limits** set before the program starts: address space, CPU seconds, file size,
   open files, processes and threads, no core dumps;
4. **an audit hook** (PEP 578) that refuses sockets, new processes, ``ctypes``, writes outside the
   working folder (``dir_fd``, ``..`` and symlinks included), reads outside the interpreter's folders,
   and any look into the harness (traceback and generator frames, ``gc``, tracing), with a readable message.

**Verdicts.** The harness, not the program, reports the outcome: on a pipe of its own (not stdout), in
a line that starts with a nonce that lives only in the harness's closures. The harness reports
``passed`` only when its own code after the program (and after the trusted tests, see ``tests``) ran;
``sys.exit``, ``os._exit``, ``KeyboardInterrupt`` or a printed fake verdict are failures. The harness is
``sandbox_harness.py`` next to this file.

An audit hook is not a security boundary (PEP 578 says so); layers 1-3 are enforced by the kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from genai_lib.core import GenAIError

STATUSES = ("passed", "failed", "timeout", "memory", "forbidden", "error")
NOBODY = 65534
BOX = "/sandbox"  # the working folder's path inside bubblewrap (a fresh tmpfs)


class SandboxWarning(UserWarning):
    """A protection layer could not be set up on this machine; the others still run."""


@dataclass
class SandboxConfig:
    """Limits for one sandboxed run.

    Attributes:
        timeout_s: wall-clock limit; the process group is killed after it.
        cpu_s: CPU-time limit (``RLIMIT_CPU``), in whole seconds.
        memory_mb: address-space limit (``RLIMIT_AS``); a memory bomb gets ``MemoryError``.
        file_size_mb: the largest file the program may write (``RLIMIT_FSIZE``).
        disk_mb: size of the working folder's tmpfs (bubblewrap); every small file takes a 4 KiB page of it.
        max_files: files and folders the working folder may hold (the tmpfs's ``nr_inodes``; bubblewrap
            started as root only: as a normal user, empty files are bounded by the CPU limit alone).
        max_processes: processes and threads the program may have (``RLIMIT_NPROC``; per sandbox under
            bubblewrap as a normal user, per user ``nobody`` when started as root).
        output_kb: stdout and stderr are each read up to this size; more stops the program.
        audit_hook: install the audit hook (layer 4). Turned off only to test the kernel layers alone.
        isolation: bubblewrap: ``None`` = when it can start (warn otherwise), ``True`` = require it,
            ``False`` = never (to test the other layers alone).
        as_nobody: without bubblewrap, when started as root, drop to ``nobody``: ``None`` = when root.
    """

    timeout_s: float = 5.0
    cpu_s: int = 5
    memory_mb: int = 512
    file_size_mb: int = 4
    disk_mb: int = 16
    max_files: int = 1024
    max_processes: int = 16
    output_kb: int = 64
    audit_hook: bool = True
    isolation: bool | None = None
    as_nobody: bool | None = None


@dataclass
class SandboxResult:
    """What happened to a sandboxed program.

    Attributes:
        status: ``passed`` (the harness saw it run to the end), ``failed`` (raised, exited early, printed
            too much), ``timeout`` (wall or CPU limit), ``memory`` (hit the memory limit), ``forbidden``
            (tried something the sandbox refuses) or ``error`` (the sandbox itself could not run it).
        message: one line saying why (the exception, the limit, the refused operation).
        duration_s: wall-clock seconds.
        stdout: what the program printed (at most ``output_kb``).
        stderr: its error output (at most ``output_kb``).
        layers: the protection layers that were active.
        warning: empty, or which layer could not be set up on this machine and why.
    """

    status: str
    message: str
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    layers: tuple[str, ...] = ()
    warning: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)


HARNESS = Path(__file__).with_name("sandbox_harness.py")  # runs inside the sandbox; see its docstring


def _drop_to_nobody() -> None:  # pragma: no mutate block  (runs in the child between fork and exec, where no test or coverage sees it; the nobody tests check its effect)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _interpreter_binds() -> dict[str, str]:
    """The interpreter's folders, as {path the program sees: real path}: the only part of the machine it may read.

    A virtual environment reached through a symlink is mounted at both its own path and its real one.
    """
    binds: dict[str, str] = {}
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)):
        binds[os.path.abspath(p)] = binds[os.path.realpath(p)] = os.path.realpath(p)
    return {d: s for d, s in sorted(binds.items()) if not any(d.startswith(o + os.sep) for o in binds)}


def _readable() -> tuple[str, ...]:
    return tuple(_interpreter_binds())


def _bwrap_args(cfg: SandboxConfig, root: bool) -> list[str]:
    """bubblewrap's command line: namespaces, read-only interpreter, a fresh tmpfs and /proc, no environment."""
    args = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    # root keeps only what it needs to become nobody; a normal user gets its own user namespace
    args += (["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SYS_ADMIN"]
             if root else ["--unshare-user", "--disable-userns"])
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):  # merged /usr: keep the links
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    made = set()
    for path, source in {"/usr": "/usr", **_interpreter_binds()}.items():
        if path != "/usr" and path.startswith("/usr/"):
            continue
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):  # parents readable by nobody (bwrap would create them 0700)
            parent = "/" + "/".join(parts[:i])
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", source, path]
    args += ["--proc", "/proc", "--dir", "/dev"]
    for dev in ("null", "zero", "urandom", "random"):  # no /dev/shm: it would be an uncapped tmpfs
        args += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    size = cfg.disk_mb * 1024 * 1024
    args += ["--perms", "1777", "--size", str(size), "--tmpfs", BOX, "--chdir", BOX, "--remount-ro", "/"]
    if root:  # bubblewrap sets only the size; as root, cap the number of files (inodes) too, then become nobody
        args += ["/bin/sh", "-c", f'mount -o remount,size={size},nr_inodes={cfg.max_files} {BOX} && exec "$@"', "sh"]
    return args


@lru_cache(maxsize=None)
def isolation_problem() -> str:  # pragma: no mutate block  (a probe of this host, cached for the process before any test runs; the tests pretend to be other hosts by replacing it)
    """Why the bubblewrap layer cannot run here ('' when it can): probed once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        r = subprocess.run([*_bwrap_args(SandboxConfig(), os.geteuid() == 0), sys.executable, "-I", "-B", "-c",
                            "import json"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap did not start: {exc}"
    if r.returncode:
        why = (r.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot start here ({why}); e.g. a container that forbids namespaces"
    return ""


@lru_cache(maxsize=None)
def _nobody_works() -> bool:  # pragma: no mutate block  (a probe of this host, cached for the process; the tests replace it)
    """Without bubblewrap: whether this interpreter starts as nobody (not when it lives under /root)."""
    try:
        return subprocess.run([sys.executable, "-I", "-B", "-c", "pass"], capture_output=True, timeout=20,
                              preexec_fn=_drop_to_nobody).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _plan(cfg: SandboxConfig) -> tuple[bool, bool, str, tuple[str, ...]]:
    """(use bubblewrap, drop to nobody, warning, layer names) for ``cfg`` on this machine."""
    problem = isolation_problem() if cfg.isolation is not False else ""
    if cfg.isolation and problem:
        raise GenAIError(f"isolation=True, but {problem}. Install bubblewrap, or use isolation=None to run with "
                         "the remaining layers.")
    use_bwrap = cfg.isolation is not False and not problem
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    nobody = root and cfg.as_nobody is not False and (use_bwrap or _nobody_works())
    warning = f"no OS isolation layer: {problem}; running with the remaining layers" if problem else ""
    if warning:
        warnings.warn(warning, SandboxWarning, stacklevel=3)
    names = (*(("bubblewrap",) if use_bwrap else ()), "process", "rlimits",
             *(("audit-hook",) if cfg.audit_hook else ()), *(("nobody",) if nobody else ()))
    return use_bwrap, nobody, warning, names


def layers(config: SandboxConfig | None = None) -> tuple[str, ...]:
    """The protection layers :func:`run` will use on this machine with ``config``."""
    return _plan(config or SandboxConfig())[3]


def _limits(cfg: SandboxConfig) -> dict[str, tuple[int, int]]:
    """The kernel limits the sandboxed process sets on itself before it runs the program."""
    mb = 1024 * 1024
    return {"RLIMIT_AS": (cfg.memory_mb * mb, cfg.memory_mb * mb), "RLIMIT_CPU": (cfg.cpu_s, cfg.cpu_s + 1),
            "RLIMIT_FSIZE": (cfg.file_size_mb * mb, cfg.file_size_mb * mb), "RLIMIT_NOFILE": (64, 64),
            "RLIMIT_CORE": (0, 0), "RLIMIT_NPROC": (cfg.max_processes, cfg.max_processes)}


# [start:run]
def run(source: str, config: SandboxConfig | None = None, tests: str | None = None) -> SandboxResult:
    """Run a Python program in the sandbox and report what happened.

    Args:
        source: the program's text.
        config: the limits; :class:`SandboxConfig` defaults when ``None``.
        tests: trusted code run after the program, in a copy of its namespace with untouched builtins
            (e.g. ``def check(f): ...`` and ``check(name)``); the program passes only when they finish.

    Returns:
        A :class:`SandboxResult`; this function does not raise for anything the program does.
    """
    cfg = config or SandboxConfig()
    if not isinstance(source, str) or not isinstance(tests, (str, type(None))):
        raise GenAIError(f"source and tests must be strings of Python code, got {type(source).__name__}")
    if cfg.timeout_s <= 0 or cfg.cpu_s < 1 or cfg.memory_mb < 64 or cfg.max_processes < 1 or cfg.output_kb < 1:
        raise GenAIError("SandboxConfig needs timeout_s > 0, cpu_s >= 1, memory_mb >= 64 (Python itself needs "
                         "some memory to start), max_processes >= 1 and output_kb >= 1.")
    use_bwrap, nobody, warning, active = _plan(cfg)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    host_dir = None if use_bwrap else tempfile.mkdtemp(prefix="genai-sandbox-")
    nonce = secrets.token_hex(16)
    vr, vw = os.pipe()
    try:
        if host_dir and nobody:
            os.chown(host_dir, NOBODY, NOBODY)
        prefix = _bwrap_args(cfg, root) if use_bwrap else []
        cmd = [*prefix, sys.executable, "-I", "-B", "-c", HARNESS.read_text(), "hook" if cfg.audit_hook else "nohook"]
        payload = json.dumps({"source": source, "tests": tests, "nonce": nonce, "workdir": host_dir or BOX,
                              "verdict_fd": vw, "readable": _readable(), "limits": _limits(cfg),
                              "drop_to": NOBODY if use_bwrap and nobody else 0})
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=host_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                                pass_fds=(vw,), preexec_fn=_drop_to_nobody if nobody and not use_bwrap else None)
        os.close(vw)
        vw = -1
        try:
            proc.stdin.write(payload.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        out, err, verdict, timed_out, flooded = _collect(proc, vr, t0 + cfg.timeout_s, cfg.output_kb * 1024)
        duration = time.perf_counter() - t0
        code = proc.returncode
        if use_bwrap and 128 < code < 128 + signal.NSIG:  # bubblewrap exits with 128 + the signal that killed it
            code = -(code - 128)
    finally:
        for fd in (vr, vw):
            if fd >= 0:
                os.close(fd)
        if host_dir:
            shutil.rmtree(host_dir, ignore_errors=True)
    return _verdict(out, err, verdict, code, timed_out, flooded, duration, nonce, cfg, active, warning)
# [end:run]


def overhead(repeats: int = 10, program: str = "pass") -> dict[str, float]:  # pragma: no mutate  (a benchmark's defaults; bench/ and the notebook pass their own)
    """Median wall-clock seconds to run ``program`` once: as a plain subprocess, and in the sandbox with and
    without bubblewrap (the configurations are interleaved, so a busy machine slows all of them alike).

    Returns:
        {configuration: median seconds}; the bubblewrap entry is missing where it cannot start.
    """
    plain = [sys.executable, "-I", "-B", "-c", program]
    runs: dict[str, Callable[[], object]] = {
        "plain subprocess": lambda: subprocess.run(plain, capture_output=True, check=True),
        "sandbox without bubblewrap": lambda: run(program, SandboxConfig(isolation=False)),
    }
    if not isolation_problem():
        runs["sandbox with bubblewrap"] = lambda: run(program, SandboxConfig(isolation=True))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm-up: the first start reads the interpreter from disk
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _collect(proc: subprocess.Popen, vr: int, deadline: float, cap: int) -> tuple[str, str, str, bool, bool]:
    """Read stdout, stderr and the verdict pipe until they close, the deadline, or more than ``cap`` bytes."""
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), vr: bytearray()}
    timed_out = flooded = False
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not flooded:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                flooded = flooded or len(buf) + len(chunk) > cap  # more than the cap, not the cap itself
                buf += chunk[:cap - len(buf)]
    _stop(proc)
    proc.stdout.close()
    proc.stderr.close()
    out, err, verdict = (bufs[k].decode(errors="replace") for k in bufs)
    return out, err, verdict, timed_out, flooded


def _stop(proc: subprocess.Popen) -> None:
    """Kill the program and everything it started, and return only when they are gone."""
    if proc.poll() is None:
        try:  # under bubblewrap: the sandbox's pid 1, whose namespace dies with it; bwrap then reaps it and exits
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                children = [int(c) for c in f.read().split()]
            for child in children:
                os.kill(child, signal.SIGKILL)
            if children:
                proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
    proc.kill()
    proc.wait()
    for _ in range(500):  # anything left in the process group (zombies are only waiting for init to reap them)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        if not _alive_in_group(proc.pid):
            break
        time.sleep(0.01)


def _alive_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (not a zombie); True where /proc cannot tell."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state, _, pgrp = f.read().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def _verdict(out: str, err: str, verdict: str, code: int, timed_out: bool, flooded: bool, duration: float,
             nonce: str, cfg: SandboxConfig, active: tuple[str, ...], warning: str) -> SandboxResult:
    report = None
    for line in verdict.splitlines():  # only the harness knows the nonce; anything else on the pipe is ignored
        if line.startswith(nonce + " "):
            status, _, message = line[len(nonce) + 1:].partition(" ")
            report = {"status": status, "message": message}
    if timed_out:
        status, message = "timeout", f"killed after the wall-time limit of {cfg.timeout_s:g} s"
    elif flooded:
        status, message = "failed", f"stopped: it printed more than the output limit of {cfg.output_kb} KiB"
    elif report is not None:
        status, message = report["status"], report["message"]
    elif code in (-signal.SIGXCPU, -signal.SIGKILL):
        status, message = "timeout", f"killed by the CPU-time limit of {cfg.cpu_s} s"
    elif "MemoryError" in err:
        status, message = "memory", "MemoryError: the program hit the memory limit"
    elif code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        status, message = "failed", f"killed by signal {name}, without a verdict"
    elif err.startswith("bwrap:"):
        status, message = "error", f"the sandbox could not start the program ({err.strip().splitlines()[0]})"
    else:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        status, message = "failed", (f"exited with code {code} before the end, without the harness's verdict"
                                     + (f" ({last})" if last else ""))
    return SandboxResult(status, message, round(duration, 3), out, err, active, warning)

"""A sandbox for running generated code: a fresh, limited Python process that reports what happened.

Model-written code is untrusted: it may loop forever, eat all memory, fork, reach the network or write
where it should not. :func:`run` executes a program in layers of protection, each of which would stop
most accidents on its own:

1. **a separate process**: ``python -I -B`` (isolated mode: no environment variables, no user site,
   no writing of bytecode) in a new session, killed with its whole process group at the wall-time limit;
2. **kernel resource limits**, set before the program starts: address space (``RLIMIT_AS``), CPU seconds
   (``RLIMIT_CPU``), file size (``RLIMIT_FSIZE``), open files, no core dumps, and no new processes
   (``RLIMIT_NPROC`` = 0; the kernel ignores it for root, which is one reason for layer 4);
3. **an audit hook** (PEP 578) installed before the program runs, which refuses sockets, fork/exec/
   subprocess, ``ctypes`` and any file write outside the throwaway working directory;
4. where the operating system allows: **no network at all** (a new, empty network namespace through
   ``unshare -n``) and, when started as root, running as the unprivileged user ``nobody``.

An audit hook is not a security boundary on its own (PEP 578 says so: native code can get around it);
layers 1, 2 and 4 are enforced by the kernel. Use a container or a VM for code from real adversaries.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

from genai_lib.core import GenAIError

STATUSES = ("passed", "failed", "timeout", "memory", "forbidden", "error")
NOBODY = 65534


@dataclass
class SandboxConfig:
    """Limits for one sandboxed run.

    Attributes:
        timeout_s: wall-clock limit; the process group is killed after it.
        cpu_s: CPU-time limit (``RLIMIT_CPU``), in whole seconds.
        memory_mb: address-space limit (``RLIMIT_AS``); a memory bomb gets ``MemoryError``.
        file_size_mb: the largest file the program may write (``RLIMIT_FSIZE``).
        audit_hook: install the audit hook (layer 3). Turned off only to test the kernel layers alone.
        net_namespace: run in an empty network namespace: ``None`` = when available, ``True`` = require it.
        as_nobody: when started as root, drop to user ``nobody``: ``None`` = when root, ``False`` = never.
    """

    timeout_s: float = 5.0
    cpu_s: int = 5
    memory_mb: int = 512
    file_size_mb: int = 4
    audit_hook: bool = True
    net_namespace: bool | None = None
    as_nobody: bool | None = None


@dataclass
class SandboxResult:
    """What happened to a sandboxed program.

    Attributes:
        status: ``passed`` (ran to the end), ``failed`` (raised, e.g. a failing assert), ``timeout``
            (wall or CPU limit), ``memory`` (hit the memory limit), ``forbidden`` (tried something the
            sandbox refuses) or ``error`` (the sandbox itself could not run it).
        message: one line saying why (the exception, the limit, the refused operation).
        duration_s: wall-clock seconds.
        stdout: what the program printed (at most 10,000 characters).
        stderr: its error output (at most 10,000 characters).
        layers: the protection layers that were active.
    """

    status: str
    message: str
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    layers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)


# The program that runs inside the sandbox. It reads {"source", "nonce", "workdir", "hook"} from stdin,
# installs the audit hook, runs the source, and reports on stdout in a line that starts with the nonce,
# so a program that exits early (or prints a fake verdict) cannot claim success.
_BOOT = r'''
import json, os, resource, sys
def _main():
    cfg = json.loads(sys.stdin.read())
    for name, (soft, hard) in cfg["limits"].items():  # set before any generated code runs
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (AttributeError, ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS; the other layers remain
            pass
    nonce, root = cfg["nonce"], os.path.realpath(cfg["workdir"])
    sys.stdin = open(os.devnull)
    seen = []
    class SandboxViolation(Exception):
        pass
    BLOCKED = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
               "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system", "os.kill",
               "os.killpg", "subprocess.Popen", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.setuid",
               "pty.spawn"}
    PATH_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2,
                   "os.chmod": 1, "os.chown": 1, "os.truncate": 1, "os.utime": 1, "shutil.rmtree": 1}
    NO_IMPORT = {"ctypes", "_ctypes", "_posixsubprocess", "cffi", "_xxsubinterpreters"}
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    def inside(p):
        if isinstance(p, int):
            return True
        p = os.fsdecode(p)
        real = os.path.realpath(p)
        return real == root or real.startswith(root + os.sep) or real == os.devnull
    def refuse(what):
        seen.append(what)
        raise SandboxViolation("sandbox: " + what + " is not allowed")
    def hook(event, args):
        if event in BLOCKED:
            refuse(event)
        elif event == "import" and args[0].split(".")[0] in NO_IMPORT:
            refuse("import " + args[0])
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
            if writing and path is not None and not inside(path):
                refuse("writing " + repr(os.fsdecode(path)) + " (outside the working directory)")
        elif event in PATH_EVENTS:
            for p in args[:PATH_EVENTS[event]]:
                if p is not None and not inside(p):
                    refuse(event + " on " + repr(os.fsdecode(p)) + " (outside the working directory)")
    if cfg["hook"]:
        sys.addaudithook(hook)
    def report(status, message):
        sys.stdout.flush()
        sys.__stdout__.write("\n" + nonce + " " + json.dumps({"status": status, "message": message}) + "\n")
        sys.__stdout__.flush()
        os._exit(0)
    try:
        code = compile(cfg["source"], "<generated>", "exec")
        exec(code, {"__name__": "__main__"})
    except MemoryError:
        report("memory", "MemoryError: the program hit the memory limit")
    except BaseException as exc:
        if seen:
            report("forbidden", "sandbox: " + seen[0] + " is not allowed")
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            pass
        else:
            name = type(exc).__name__
            if isinstance(exc, (PermissionError,)) or (isinstance(exc, OSError) and exc.errno in (1, 11, 13, 101)):
                report("forbidden", name + ": " + str(exc))
            report("failed", (name + ": " + str(exc))[:500])
    if seen:
        report("forbidden", "sandbox: " + seen[0] + " is not allowed")
    report("passed", "ran to the end")
_main()
'''


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@lru_cache(maxsize=None)
def _works(prefix: tuple[str, ...], nobody_by_preexec: bool) -> bool:
    """Whether this interpreter starts under ``prefix`` (and as ``nobody``): probed once per process."""
    try:
        return subprocess.run([*prefix, sys.executable, "-I", "-B", "-c", "pass"], capture_output=True, timeout=20,
                              preexec_fn=_drop_to_nobody if nobody_by_preexec else None).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=None)
def _plan(want_netns: bool, want_nobody: bool) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """The strongest setup this machine allows: (command prefix, drop to nobody in preexec, layer names)."""
    exe = shutil.which("unshare") if sys.platform.startswith("linux") else None
    root = os.geteuid() == 0
    options: list[tuple[tuple[str, ...], bool, tuple[str, ...]]] = []
    if exe and want_netns:
        if root and want_nobody:
            options.append(((exe, "-n", "--setuid", str(NOBODY), "--setgid", str(NOBODY), "--"), False,
                            ("net-namespace", "nobody")))
        options.append(((exe, "-n", "--") if root else (exe, "-r", "-n", "--"), False, ("net-namespace",)))
    if root and want_nobody:
        options.append(((), True, ("nobody",)))
    options.append(((), False, ()))
    for prefix, by_preexec, names in options:
        if _works(prefix, by_preexec):
            return prefix, by_preexec, names
    return (), False, ()


def layers(config: SandboxConfig | None = None) -> tuple[str, ...]:
    """The protection layers :func:`run` will use on this machine with ``config``.

    ``nobody`` needs the Python interpreter to be readable by that user (not the case for an
    interpreter under ``/root``); ``net-namespace`` needs ``unshare`` and root or user namespaces.
    """
    cfg = config or SandboxConfig()
    _, _, extra = _plan(cfg.net_namespace is not False, cfg.as_nobody is not False)
    return ("process", "rlimits", *(("audit-hook",) if cfg.audit_hook else ()), *extra)


def _limits(cfg: SandboxConfig) -> dict[str, tuple[int, int]]:
    """The kernel limits the sandboxed process sets on itself before it runs the program."""
    mb = 1024 * 1024
    return {"RLIMIT_AS": (cfg.memory_mb * mb, cfg.memory_mb * mb), "RLIMIT_CPU": (cfg.cpu_s, cfg.cpu_s + 1),
            "RLIMIT_FSIZE": (cfg.file_size_mb * mb, cfg.file_size_mb * mb), "RLIMIT_NOFILE": (64, 64),
            "RLIMIT_CORE": (0, 0), "RLIMIT_NPROC": (0, 0)}


# [start:run]
def run(source: str, config: SandboxConfig | None = None) -> SandboxResult:
    """Run a Python program in the sandbox and report what happened.

    Args:
        source: the program's text.
        config: the limits; :class:`SandboxConfig` defaults when ``None``.

    Returns:
        A :class:`SandboxResult`; this function does not raise for anything the program does.
    """
    cfg = config or SandboxConfig()
    if not isinstance(source, str):
        raise GenAIError(f"source must be a string of Python code, got {type(source).__name__}")
    if cfg.timeout_s <= 0 or cfg.cpu_s < 1 or cfg.memory_mb < 64:
        raise GenAIError("SandboxConfig needs timeout_s > 0, cpu_s >= 1 and memory_mb >= 64 "
                         "(Python itself needs some memory to start).")
    active = layers(cfg)
    prefix, by_preexec, _ = _plan(cfg.net_namespace is not False, cfg.as_nobody is not False)
    nobody = "nobody" in active
    if cfg.net_namespace and "net-namespace" not in active:
        raise GenAIError("net_namespace=True, but this machine cannot create a network namespace "
                         "(needs `unshare` and root or unprivileged user namespaces); use None to skip it.")
    workdir = tempfile.mkdtemp(prefix="genai-sandbox-")
    nonce = secrets.token_hex(16)
    try:
        if nobody:
            os.chown(workdir, NOBODY, NOBODY)
        cmd = [*prefix, sys.executable, "-I", "-B", "-c", _BOOT]
        payload = json.dumps({"source": source, "nonce": nonce, "workdir": workdir, "hook": cfg.audit_hook,
                              "limits": _limits(cfg)})
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                                preexec_fn=_drop_to_nobody if by_preexec else None)
        try:
            out, err = proc.communicate(payload, timeout=cfg.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        duration = time.perf_counter() - t0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _verdict(out, err, proc.returncode, timed_out, duration, nonce, cfg, active)
# [end:run]


def _verdict(out: str, err: str, code: int, timed_out: bool, duration: float, nonce: str, cfg: SandboxConfig,
             active: tuple[str, ...]) -> SandboxResult:
    report = None
    lines = out.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(nonce + " "):
            report = json.loads(lines[i][len(nonce) + 1:])
            out = "\n".join(lines[:i - 1] if i and not lines[i - 1] else lines[:i])
            break
    out, err = out[-10_000:], err[-10_000:]
    if timed_out:
        status, message = "timeout", f"killed after the wall-time limit of {cfg.timeout_s:g} s"
    elif code in (-signal.SIGXCPU, -signal.SIGKILL) and report is None:
        status, message = "timeout", f"killed by the CPU-time limit of {cfg.cpu_s} s"
    elif report is not None:
        status, message = report["status"], report["message"]
    elif "MemoryError" in err:
        status, message = "memory", "MemoryError: the program hit the memory limit"
    elif code < 0:
        status, message = "failed", f"killed by signal {signal.Signals(-code).name}"
    else:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        status, message = ("failed", f"exited with code {code} before the end ({last})" if code or last
                           else f"exited with code {code} before the end")
    return SandboxResult(status, message, round(duration, 3), out, err, active)

"""genai_lib.sandbox: generated code is contained and reported, and the host is unharmed."""

import json
import os
import signal
import socket
import threading
import time

import pytest

from genai_lib import sandbox
from genai_lib.core import GenAIError

FAST = sandbox.SandboxConfig(timeout_s=10, cpu_s=5)


def test_a_normal_program_passes_and_its_output_comes_back():
    t0 = time.perf_counter()
    r = sandbox.run("print(6 * 7)\nopen('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())", FAST)
    elapsed = time.perf_counter() - t0
    assert 0 < r.duration_s <= elapsed + 0.001  # the program's own time, within the call's (rounded to ms)
    assert r.status == "passed" and r.passed and r.stdout.split() == ["42", "ok"]
    assert {"process", "rlimits", "audit-hook"} <= set(r.layers)
    assert ("bubblewrap" in r.layers) == (sandbox.isolation_problem() == "")
    assert (r.warning == "") == ("bubblewrap" in r.layers)


def test_a_failing_assert_is_failed_with_its_message():
    r = sandbox.run("assert 1 + 1 == 3, 'arithmetic is broken'", FAST)
    assert r.status == "failed" and "AssertionError: arithmetic is broken" in r.message


def test_exiting_early_cannot_fake_a_pass():
    for src in ("import os; os._exit(0)", "import sys; print('x'); sys.stdout.flush(); os = __import__('os'); os._exit(0)"):
        r = sandbox.run(src, FAST)
        assert r.status == "failed" and "before the end" in r.message


def test_infinite_loop_is_stopped_by_the_wall_clock():
    t0 = time.perf_counter()
    r = sandbox.run("while True:\n    pass", sandbox.SandboxConfig(timeout_s=1.5, cpu_s=30))
    assert r.status == "timeout" and "wall-time" in r.message
    assert time.perf_counter() - t0 < 15


def test_cpu_limit_stops_a_busy_loop():
    r = sandbox.run("while True:\n    pass", sandbox.SandboxConfig(timeout_s=120, cpu_s=1))
    assert r.status == "timeout" and "CPU" in r.message


def test_memory_bomb_hits_the_memory_limit():
    for src in ("x = bytearray(4 * 1024**3)", "x = [0] * 10**9", "s = 'a'\nwhile True:\n    s = s + s"):
        r = sandbox.run(src, sandbox.SandboxConfig(timeout_s=20, cpu_s=10, memory_mb=256))
        assert r.status == "memory", (src, r)


def test_fork_is_refused_even_when_the_error_is_swallowed():
    r = sandbox.run("import os\nos.fork()\nprint('forked')", FAST)
    assert r.status == "forbidden" and "fork" in r.message and "forked" not in r.stdout
    r = sandbox.run("import os\ntry:\n    os.fork()\nexcept Exception:\n    pass", FAST)
    assert r.status == "forbidden"
    r = sandbox.run("import subprocess\nsubprocess.run(['true'])", FAST)
    assert r.status == "forbidden"


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records every connection it accepts."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                accepted.append(conn)
            except OSError:
                pass

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    th.join()
    srv.close()


def _connect(port):
    return f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')"


def test_the_listener_itself_works(listener):
    port, accepted = listener
    socket.create_connection(("127.0.0.1", port)).close()
    time.sleep(0.5)
    assert len(accepted) == 1


def test_network_call_is_refused_and_nothing_connects(listener):
    port, accepted = listener
    r = sandbox.run(_connect(port), FAST)
    assert r.status == "forbidden" and "socket" in r.message
    time.sleep(0.5)
    assert accepted == []


@pytest.mark.skipif(sandbox.isolation_problem() != "", reason=f"no bubblewrap layer: {sandbox.isolation_problem()}")
def test_the_network_namespace_alone_blocks_the_connection(listener):
    port, accepted = listener
    r = sandbox.run(_connect(port), sandbox.SandboxConfig(timeout_s=10, audit_hook=False))
    assert r.status == "forbidden" and "ConnectionRefusedError" in r.message
    time.sleep(0.5)
    assert accepted == []


def test_write_outside_the_working_directory_is_refused(tmp_path):
    target = tmp_path / "harm.txt"
    for src in (f"open({str(target)!r}, 'w').write('x')", f"import os\nos.open({str(target)!r}, os.O_CREAT | os.O_WRONLY)",
                f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
                f"import os\nos.symlink('/etc', 'link')\nopen('link/../{target.name}', 'w')",
                f"import os\nos.chdir({str(tmp_path)!r})\nopen('harm.txt', 'w')"):
        r = sandbox.run(src, FAST)
        assert r.status == "forbidden", (src, r)
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    r = sandbox.run(f"import os\nos.remove({str(keep)!r})", FAST)
    assert r.status == "forbidden"
    assert not target.exists() and keep.read_text() == "precious"


NOBODY_ALONE = sandbox.SandboxConfig(timeout_s=10, audit_hook=False, isolation=False)


@pytest.mark.skipif("nobody" not in sandbox.layers(NOBODY_ALONE),
                    reason="without bubblewrap the interpreter cannot run as nobody here (not root, or it lives under /root)")
def test_running_as_nobody_alone_blocks_writes_and_forks(tmp_path):
    cfg = NOBODY_ALONE
    r = sandbox.run(f"open({str(tmp_path / 'harm.txt')!r}, 'w')", cfg)
    assert r.status == "forbidden" and not (tmp_path / "harm.txt").exists()
    assert sandbox.run("import os\nos.fork()", cfg).status == "forbidden"


def test_the_working_directory_is_thrown_away():
    r = sandbox.run("import os\nprint(os.getcwd())", sandbox.SandboxConfig(timeout_s=10, isolation=False))
    assert r.passed and r.stdout.strip().startswith(("/tmp", "/var")) and not os.path.exists(r.stdout.strip())


def test_without_bubblewrap_the_result_says_so(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_problem", lambda: "bubblewrap is not installed (test)")
    with pytest.warns(sandbox.SandboxWarning, match="no OS isolation layer: bubblewrap is not installed"):
        r = sandbox.run("print(1)", FAST)
    assert r.passed and "bubblewrap" not in r.layers and "bubblewrap is not installed" in r.warning
    with pytest.raises(GenAIError, match="isolation=True"):
        sandbox.run("print(1)", sandbox.SandboxConfig(isolation=True))


def test_bad_config_is_a_clear_error():
    with pytest.raises(GenAIError, match="memory_mb"):
        sandbox.run("pass", sandbox.SandboxConfig(memory_mb=1))
    with pytest.raises(GenAIError, match="string"):
        sandbox.run(b"pass")
    with pytest.raises(GenAIError, match="max_processes"):
        sandbox.run("pass", sandbox.SandboxConfig(max_processes=0))


# ----------------------------------------------------------------------------- the verdict, without a process
# _verdict, _plan, _limits and _bwrap_args are pure given what they are told about the machine, so
# every outcome and every layer combination is checked here against hand-written expectations.
NONCE = "0f" * 16
VCFG = sandbox.SandboxConfig(timeout_s=2.5, cpu_s=3, output_kb=8)


def _v(verdict="", code=0, err="", timed_out=False, flooded=False, out="o"):
    return sandbox._verdict(out, err, verdict, code, timed_out, flooded, 1.23456, NONCE, VCFG, ("process",), "w")


def test_the_harness_line_with_the_nonce_is_the_verdict_and_nothing_else_is():
    r = _v(f"noise\n{NONCE} passed the tests ran to the end\n")
    assert r == sandbox.SandboxResult("passed", "the tests ran to the end", 1.235, "o", "", ("process",), "w")
    assert r.passed and r.to_dict() == {"status": "passed", "message": "the tests ran to the end", "duration_s": 1.235,
                                        "stdout": "o", "stderr": "", "layers": ("process",), "warning": "w"}
    r = _v(f"{NONCE} forbidden socket.connect is refused\n{NONCE} failed AssertionError: no", code=0)
    assert (r.status, r.message, r.passed) == ("failed", "AssertionError: no", False)  # the last line counts
    assert (_v(f"{NONCE} passed").status, _v(f"{NONCE} passed").message) == ("passed", "")
    for forged in (f"{NONCE}passed x", f"x{NONCE} passed x", f"{NONCE}0 passed x", "passed x", f" {NONCE} passed x"):
        r = _v(forged + "\n", code=0)
        assert (r.status, r.message) == ("failed", "exited with code 0 before the end, without the harness's verdict"), forged


def test_limits_outrank_the_harness_and_each_outcome_has_its_message():
    ok = f"{NONCE} passed the tests ran to the end"
    assert (_v(ok, timed_out=True, flooded=True).status, _v(ok, timed_out=True).message) == \
        ("timeout", "killed after the wall-time limit of 2.5 s")
    assert (_v(ok, flooded=True).status, _v(ok, flooded=True).message) == \
        ("failed", "stopped: it printed more than the output limit of 8 KiB")
    for sig in (signal.SIGXCPU, signal.SIGKILL):
        r = _v(code=-sig, err="MemoryError")
        assert (r.status, r.message) == ("timeout", "killed by the CPU-time limit of 3 s")
    assert (_v(ok, code=-signal.SIGKILL).status) == "passed"
    r = _v(code=1, err="Traceback ...\nMemoryError\n")
    assert (r.status, r.message) == ("memory", "MemoryError: the program hit the memory limit")
    r = _v(code=-signal.SIGSEGV, err="bwrap: nothing")
    assert (r.status, r.message) == ("failed", "killed by signal SIGSEGV, without a verdict")
    assert _v(code=-200).message == "killed by signal 200, without a verdict"
    r = _v(code=1, err="bwrap: Can't mount proc on /newroot/proc\nsecond line\n")
    assert (r.status, r.message) == ("error", "the sandbox could not start the program (bwrap: Can't mount proc on /newroot/proc)")
    assert _v(code=1, err=" bwrap: no").status == "failed"
    r = _v(code=3, err="Traceback (most recent call last):\n  File x\nValueError: bad\n\n")
    assert (r.status, r.message) == ("failed", "exited with code 3 before the end, without the harness's verdict (ValueError: bad)")
    assert _v(code=0, err=" \n\n").message == "exited with code 0 before the end, without the harness's verdict"


def test_limits_are_the_config_in_the_kernels_units():
    cfg = sandbox.SandboxConfig(memory_mb=100, cpu_s=3, file_size_mb=2, max_processes=7)
    mib = 1048576
    assert sandbox._limits(cfg) == {"RLIMIT_AS": (100 * mib, 100 * mib), "RLIMIT_CPU": (3, 4),
                                    "RLIMIT_FSIZE": (2 * mib, 2 * mib), "RLIMIT_NOFILE": (64, 64),
                                    "RLIMIT_CORE": (0, 0), "RLIMIT_NPROC": (7, 7)}


@pytest.fixture
def machine(monkeypatch):
    """A pretend machine: set .problem (why bubblewrap cannot start), .root, .nobody_works."""
    m = type("Machine", (), {"problem": "", "root": True, "nobody_works": True, "probes": 0})()

    def problem():
        m.probes += 1
        return m.problem
    monkeypatch.setattr(sandbox, "isolation_problem", problem)
    monkeypatch.setattr(sandbox, "_nobody_works", lambda: m.nobody_works)
    monkeypatch.setattr(os, "geteuid", lambda: 0 if m.root else 1000)
    return m


def test_the_plan_names_the_layers_this_machine_gives(machine):
    C = sandbox.SandboxConfig
    full = ("bubblewrap", "process", "rlimits", "audit-hook", "nobody")
    machine.nobody_works = False  # not needed under bubblewrap: it makes the mount points itself
    assert sandbox._plan(C()) == (True, True, "", full)
    assert sandbox.layers() == full and sandbox.layers(C(audit_hook=False)) == full[:3] + ("nobody",)
    assert sandbox._plan(C(isolation=True, as_nobody=False)) == (True, False, "", full[:4])
    machine.root = False
    assert sandbox._plan(C()) == (True, False, "", full[:4])
    machine.root, probes = True, machine.probes
    assert sandbox._plan(C(isolation=False)) == (False, False, "", ("process", "rlimits", "audit-hook"))
    machine.nobody_works = True
    assert sandbox._plan(C(isolation=False, audit_hook=False)) == (False, True, "", ("process", "rlimits", "nobody"))
    assert machine.probes == probes  # isolation=False never probes for bubblewrap
    machine.problem = "bubblewrap is not installed"
    with pytest.warns(sandbox.SandboxWarning) as caught:
        plan = sandbox._plan(C())
    warning = "no OS isolation layer: bubblewrap is not installed; running with the remaining layers"
    assert plan == (False, True, warning, full[1:]) and [str(w.message) for w in caught] == [warning]
    machine.nobody_works = False
    with pytest.warns(sandbox.SandboxWarning):
        assert sandbox._plan(C()) == (False, False, warning, full[1:4])
    with pytest.raises(GenAIError) as exc:
        sandbox._plan(C(isolation=True))
    assert str(exc.value) == ("isolation=True, but bubblewrap is not installed. Install bubblewrap, or use "
                              "isolation=None to run with the remaining layers.")


def _fake_host(monkeypatch, which="/usr/bin/bwrap", links=("/bin", "/sbin", "/lib64"), dirs=("/lib", "/lib32")):
    """/bin, /sbin and /lib64 links into /usr, /lib and /lib32 folders; the interpreter in /opt and /work."""
    real_islink, real_isdir = os.path.islink, os.path.isdir
    tops = {"/bin", "/sbin", "/lib", "/lib32", "/lib64"}
    monkeypatch.setattr(os.path, "islink", lambda p: p in links if p in tops else real_islink(p))
    monkeypatch.setattr(os.path, "isdir", lambda p: p in dirs if p in tops else real_isdir(p))
    monkeypatch.setattr(os, "readlink", {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib64": "usr/lib64"}.__getitem__)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: which if name == "bwrap" else None)
    monkeypatch.setattr(sandbox, "_interpreter_binds", lambda: {
        "/opt/py": "/opt/py", "/usr/lib/python3": "/usr/lib/python3", "/work/a/b/.venv": "/real/venv",
        "/work/a/c": "/work/a/c", "/Xtra/py": "/Xtra/py"})


def test_bubblewrap_command_line(monkeypatch):
    _fake_host(monkeypatch)
    head = ["/usr/bin/bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    tops = ["--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--ro-bind", "/lib", "/lib",
            "--ro-bind", "/lib32", "/lib32", "--symlink", "usr/lib64", "/lib64"]
    mounts = ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/opt", "--ro-bind", "/opt/py", "/opt/py",
              "--perms", "0755", "--dir", "/work", "--perms", "0755", "--dir", "/work/a", "--perms", "0755", "--dir",
              "/work/a/b", "--ro-bind", "/real/venv", "/work/a/b/.venv", "--ro-bind", "/work/a/c", "/work/a/c",
              "--perms", "0755", "--dir", "/Xtra", "--ro-bind", "/Xtra/py", "/Xtra/py",
              "--proc", "/proc", "--dir", "/dev", "--dev-bind", "/dev/null", "/dev/null", "--dev-bind", "/dev/zero",
              "/dev/zero", "--dev-bind", "/dev/urandom", "/dev/urandom", "--dev-bind", "/dev/random", "/dev/random",
              "--perms", "1777", "--size", "3145728", "--tmpfs", "/sandbox", "--chdir", "/sandbox", "--remount-ro", "/"]
    cfg = sandbox.SandboxConfig(disk_mb=3, max_files=77)
    assert sandbox._bwrap_args(cfg, root=False) == head + ["--unshare-user", "--disable-userns"] + tops + mounts
    assert sandbox._bwrap_args(cfg, root=True) == head + [
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SYS_ADMIN"] + tops + mounts + [
        "/bin/sh", "-c", 'mount -o remount,size=3145728,nr_inodes=77 /sandbox && exec "$@"', "sh"]
    _fake_host(monkeypatch, which=None, links=(), dirs=("/lib",))  # no merged /usr, no /sbin, /lib32 or /lib64
    assert sandbox._bwrap_args(cfg, root=False) == ["bwrap"] + head[1:] + ["--unshare-user", "--disable-userns",
                                                                         "--ro-bind", "/lib", "/lib"] + mounts


class _Validated(Exception):
    pass


def test_config_bounds_are_checked_before_anything_starts(monkeypatch):
    def reached(cfg):
        raise _Validated
    monkeypatch.setattr(sandbox, "_plan", reached)
    C = sandbox.SandboxConfig
    for ok in (C(timeout_s=0.01, cpu_s=1, memory_mb=64, max_processes=1, output_kb=1), None):
        with pytest.raises(_Validated):
            sandbox.run("pass", ok)
    with pytest.raises(_Validated):
        sandbox.run("pass", tests="check()")
    for bad in (C(timeout_s=0), C(timeout_s=-1), C(cpu_s=0), C(memory_mb=63), C(max_processes=0), C(output_kb=0)):
        with pytest.raises(GenAIError, match=r"timeout_s > 0, cpu_s >= 1, memory_mb >= 64 \(Python"):
            sandbox.run("pass", bad)
    for source, tests in ((b"pass", None), (None, None), ("pass", b"check()")):
        with pytest.raises(GenAIError, match="source and tests must be strings of Python code, got"):
            sandbox.run(source, tests=tests)


# ----------------------------------------------------------------------------- real runs at the edges
@pytest.mark.parametrize("isolation", [False, pytest.param(True, marks=pytest.mark.skipif(
    sandbox.isolation_problem() != "", reason="no bubblewrap layer"))])
def test_a_program_killed_by_a_signal_is_reported_with_the_signal(isolation):
    """bubblewrap exits with 128 + the signal that killed the program: run() turns it back into the signal."""
    r = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)",
                    sandbox.SandboxConfig(timeout_s=10, audit_hook=False, isolation=isolation))
    assert (r.status, r.message) == ("failed", "killed by signal SIGTERM, without a verdict")
    assert ("bubblewrap" in r.layers) == isolation and "audit-hook" not in r.layers


def test_output_is_cut_at_exactly_the_cap():
    cfg = sandbox.SandboxConfig(timeout_s=10, output_kb=1)
    for n in (1023, 1024):  # the limit itself is allowed: only more is too much
        r = sandbox.run(f"import sys\nsys.stdout.write('x' * {n})", cfg)
        assert r.passed and r.stdout == "x" * n, (n, r)
    for n in (1025, 70000):
        r = sandbox.run(f"import sys\nsys.stdout.write('x' * {n})\nsys.stdout.flush()", cfg)
        assert (r.status, r.message, r.stdout) == ("failed", "stopped: it printed more than the output limit of 1 KiB",
                                                   "x" * 1024), n
    r = sandbox.run("import sys\nsys.stderr.write('e' * 5000)", cfg)
    assert r.status == "failed" and r.stderr == "e" * 1024


def test_without_bubblewrap_the_program_gets_only_path_a_fresh_folder_and_its_own_exit_code(monkeypatch):
    monkeypatch.setenv("GENAI_CANARY", "secret")
    src = ("import json, os\nopen('f.txt', 'w').write('w')\n"
           "print(json.dumps([os.getuid(), os.environ.get('PATH'), 'GENAI_CANARY' in os.environ, os.getcwd()]))")
    r = sandbox.run(src, sandbox.SandboxConfig(timeout_s=10, isolation=False))
    assert r.passed, r
    uid, path, canary, cwd = json.loads(r.stdout)
    assert uid == (sandbox.NOBODY if "nobody" in r.layers else os.geteuid())
    assert (path, canary) == ("/usr/bin:/bin", False)
    assert os.path.basename(cwd).startswith("genai-sandbox-") and not os.path.exists(cwd)
    r = sandbox.run("import os\nos._exit(143)", sandbox.SandboxConfig(timeout_s=10, isolation=False))
    assert (r.status, r.message) == ("failed", "exited with code 143 before the end, without the harness's verdict")


@pytest.mark.skipif(sandbox.isolation_problem() != "", reason="no bubblewrap layer")
def test_under_bubblewrap_the_program_runs_as_nobody_when_started_as_root():
    r = sandbox.run("import os\nprint(os.getuid(), os.getcwd())", FAST)
    uid, cwd = r.stdout.split()
    assert r.passed and cwd == sandbox.BOX
    assert int(uid) == (sandbox.NOBODY if "nobody" in r.layers else os.geteuid())
    assert ("nobody" in r.layers) == (os.geteuid() == 0)


def test_the_program_runs_in_a_session_and_process_group_of_its_own():
    """Its own session and group (without bubblewrap, whose pid namespace hides the ids): what it starts is in a
    group that _stop can kill as a whole."""
    r = sandbox.run("import os\nprint(os.getsid(0) == os.getpid(), os.getpgrp() == os.getpid())",
                    sandbox.SandboxConfig(timeout_s=10, isolation=False))
    assert r.passed and r.stdout.split() == ["True", "True"], r


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def test_processes_the_program_leaves_behind_are_killed():
    """A child that outlives the program (audit hook off, so fork is allowed) is killed with its group."""
    src = "import os, time\npid = os.fork()\nif pid == 0:\n    os.closerange(0, 1024)\n    time.sleep(60)\nprint(pid)"
    r = sandbox.run(src, sandbox.SandboxConfig(timeout_s=10, isolation=False, audit_hook=False))
    assert r.passed, r
    child = int(r.stdout)
    for _ in range(200):  # reaped by init a moment later
        if _state(child) in ("gone", "Z"):
            break
        time.sleep(0.01)
    assert _state(child) in ("gone", "Z")


def test_alive_in_group_sees_running_processes_and_not_zombies(tmp_path):
    import shutil
    import subprocess
    import sys

    assert sandbox._alive_in_group(os.getpgrp())
    odd = tmp_path / "z) Z 1 1"  # a process name with a ')' in it: /proc/<pid>/stat is read from its last ')'
    odd.symlink_to(shutil.which("sleep"))
    sleeper = subprocess.Popen([str(odd), "30"], start_new_session=True)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        assert sandbox._alive_in_group(sleeper.pid)
        for _ in range(500):
            if _state(zombie.pid) == "Z":
                break
            time.sleep(0.01)
        assert _state(zombie.pid) == "Z" and not sandbox._alive_in_group(zombie.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()
    assert not sandbox._alive_in_group(sleeper.pid)


def _collect(shell: str, seconds: float, cap: int = 1024):
    import subprocess

    vr, vw = os.pipe()
    os.write(vw, b"verdict")
    os.close(vw)
    proc = subprocess.Popen(["sh", "-c", shell], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        return sandbox._collect(proc, vr, time.perf_counter() + seconds, cap)
    finally:
        os.close(vr)


def test_collect_reads_every_pipe_to_the_end_the_deadline_or_the_cap():
    assert _collect("printf out; printf err >&2; sleep 1", 1.8) == ("out", "err", "verdict", False, False)
    assert _collect("sleep 1; printf late", 0.3) == ("", "", "verdict", True, False)
    # a second chunk that would overshoot the cap is cut too
    assert _collect("printf %1000s; sleep 0.3; printf %100s; sleep 5", 4) == (" " * 1024, "", "verdict", False, True)
    assert _collect(r"printf 'a\377b'", 2) == ("a\ufffdb", "", "verdict", False, False)
    assert _collect("printf %1024s", 2) == (" " * 1024, "", "verdict", False, False)  # exactly the cap
    assert _collect("printf %1000s; sleep 0.3; printf %24s", 2) == (" " * 1024, "", "verdict", False, False)


def test_the_interpreter_runs_isolated_and_writes_no_bytecode():
    r = sandbox.run("import sys\nprint(sys.flags.isolated, sys.flags.dont_write_bytecode, sys.flags.interactive)", FAST)
    assert r.passed and r.stdout.split() == ["1", "1", "0"]

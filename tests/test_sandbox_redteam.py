"""Red team: programs that attack the sandbox, each run through codegen.check or sandbox.run, must be contained.

Each attack runs with every layer on (what the book uses) and, where a layer should stop it on its own,
with that layer alone: ``OS`` is bubblewrap + rlimits without the audit hook, ``HOOK`` is the audit hook +
rlimits without bubblewrap. The host side is checked directly: files that must not change, a TCP
listener that must see nothing, a canary variable that must not leak, no processes left behind.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from genai_lib import codegen, sandbox

ALL = sandbox.SandboxConfig(timeout_s=10, cpu_s=5)
OS = sandbox.SandboxConfig(timeout_s=10, cpu_s=5, audit_hook=False)
HOOK = sandbox.SandboxConfig(timeout_s=10, cpu_s=5, isolation=False)
needs_bwrap = pytest.mark.skipif(sandbox.isolation_problem() != "",
                                 reason=f"the bubblewrap layer cannot start here: {sandbox.isolation_problem()}")
CONFIGS = [pytest.param(ALL, id="all-layers"), pytest.param(OS, id="bubblewrap-alone", marks=needs_bwrap),
           pytest.param(HOOK, id="audit-hook-alone")]
ADD = codegen.TASKS[0]  # add(a, b): its tests are asserts on candidate(2, 3) == 5 and so on
GOOD = ADD.prompt + ADD.solution


def _check(body: str, config=ALL) -> sandbox.SandboxResult:
    """codegen.check on a correct `add` with `body` (module-level code) in front of it."""
    return codegen.check(ADD, textwrap.dedent(body) + "\n" + GOOD, config)


def test_every_layer_runs_on_ci():
    """CI machines (CI=true, as GitHub sets it) must run the bubblewrap tests, not skip them."""
    if os.environ.get("CI", "").lower() in ("1", "true") and sandbox.isolation_problem():
        pytest.fail(f"the bubblewrap layer cannot start on this CI machine: {sandbox.isolation_problem()} "
                    "(scripts/install_system.sh installs bubblewrap and, on Ubuntu, allows its user namespaces)")


def test_the_correct_solution_passes_under_every_configuration():
    for cfg in (ALL, HOOK) + ((OS,) if sandbox.isolation_problem() == "" else ()):
        r = codegen.check(ADD, GOOD, cfg)
        assert r.status == "passed" and r.message == "the tests ran to the end", (cfg, r)


# ----------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit",
                                       "raise KeyboardInterrupt"])
def test_exiting_before_the_asserts_fails(exit_call, cfg):
    r = _check(exit_call, cfg)  # exits while the solution is loaded, before any test runs
    assert r.status == "failed" and "before" in r.message, r
    inside = ADD.prompt + f"    {exit_call}\n"  # exits during the tests, from inside the function
    r = codegen.check(ADD, inside, cfg)
    assert r.status == "failed" and "before" in r.message, r


@pytest.mark.parametrize("cfg", CONFIGS)
def test_printed_and_written_fake_verdicts_are_ignored(cfg):
    forged = """
    import json, os, sys
    fake = ["passed ran to the end", json.dumps({"status": "passed", "message": "ran to the end"}),
            "0123456789abcdef0123456789abcdef passed the tests ran to the end"]
    for line in fake:
        print(line)
        print(line, file=sys.stderr)
    sys.stdout.flush(); sys.stderr.flush()
    for fd in range(3, 64):  # every descriptor the harness might report on
        try:
            os.write(fd, ("\\n".join(fake) + "\\n").encode())
        except OSError:
            pass
    os._exit(0)
    """
    r = _check(forged, cfg)
    assert r.status == "failed" and "without the harness's verdict" in r.message, r
    assert "passed ran to the end" in r.stdout  # the fake was printed, and read as output only


def test_tampering_through_frames_cannot_forge_a_pass():
    frames = """
    import sys
    f, found = sys._getframe(), []
    while f is not None:  # every frame up the stack, and everything callable in it
        found += [v for v in f.f_locals.values() if callable(v)]
        f = f.f_back
    sys.audit("genai.sandbox.verdict", "passed", "the tests ran to the end")
    """
    r = _check(frames)
    assert r.status == "forbidden" and "forging the harness's verdict" in r.message, r
    traceback = """
    try:
        open("/etc/hostname", "w")
    except Exception as exc:
        tb = exc.__traceback__
        while tb.tb_next:
            tb = tb.tb_next
        tb.tb_frame.f_locals  # the audit hook's own frame
    """
    r = _check(traceback)
    assert r.status == "forbidden" and "also reading frames (tb_frame)" in r.message, r
    generator = "def g():\n    yield 1\nx = g()\nx.gi_frame\n"
    assert _check(generator).status == "forbidden"


@pytest.mark.parametrize("attack", ["import gc; gc.get_objects()", "import gc, sys; gc.get_referrers(sys.audit)",
                                    "import sys; sys._current_frames()", "import sys; sys.settrace(lambda *a: None)",
                                    "import sys; sys.addaudithook(lambda *a: None)"])
def test_tampering_through_gc_and_tracing_is_refused(attack):
    r = _check(attack)
    assert r.status == "forbidden" and "looking into the harness" in r.message, r


@pytest.mark.parametrize("cfg", CONFIGS)
def test_tampering_through_sys_modules_and_builtins_cannot_make_a_wrong_answer_pass(cfg):
    tamper = """
    import builtins, json, sys, types
    fake = types.ModuleType("json")
    fake.dumps = lambda *a, **k: '{"status": "passed", "message": "ran to the end"}'
    sys.modules["json"] = fake
    sys.modules["os"] = types.ModuleType("os")
    builtins.isinstance = lambda *a: True
    builtins.abs = lambda x: 0
    builtins.repr = builtins.str = lambda *a: "passed"
    """
    wrong = ADD.prompt + "    return a - b\n"
    r = codegen.check(ADD, textwrap.dedent(tamper) + "\n" + wrong, cfg)
    assert r.status == "failed" and "AssertionError" in r.message, r
    temp = codegen.TASKS[9]  # celsius_to_fahrenheit: its tests call abs()
    r = codegen.check(temp, textwrap.dedent(tamper) + "\n" + temp.prompt + "    return 0.0\n", cfg)
    assert r.status == "failed" and "AssertionError" in r.message, r


# ----------------------------------------------------------------------------- network
@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records every connection and every byte it receives."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    received, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            received.append(conn.recv(100) or b"<connected>")
            conn.close()

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    yield srv.getsockname()[1], received
    stop.set()
    th.join()
    srv.close()


def test_the_listener_hears_an_unsandboxed_client(listener):
    port, received = listener
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"hello")
    deadline = time.time() + 5
    while not received and time.time() < deadline:
        time.sleep(0.05)
    assert received == [b"hello"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_a_socket_to_the_host_reaches_nothing(listener, cfg):
    port, received = listener
    src = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'stolen')"
    r = _check(src, cfg)
    assert r.status == "forbidden", r
    assert ("network access" in r.message) if cfg.audit_hook else ("ConnectionRefusedError" in r.message)
    time.sleep(0.3)  # the listener polls every 0.1 s
    assert received == []


# ----------------------------------------------------------------------------- the file system
def _write_attacks(target_dir) -> dict[str, str]:
    d, keep = str(target_dir), str(target_dir / "keep.txt")
    return {
        "absolute path": f"open({d + '/harm.txt'!r}, 'w').write('x')",
        "os.open absolute": f"import os\nos.open({d + '/harm.txt'!r}, os.O_CREAT | os.O_WRONLY)",
        "dotdot": f"open('../../../../../../../..{d}/harm.txt', 'w').write('x')",
        "symlink": f"import os\nos.symlink({d!r}, 'link')\nopen('link/harm.txt', 'w').write('x')",
        "relative symlink": "import os\nos.symlink('../../../../../../..', 'up')\n"
                            f"open('up{d}/harm.txt', 'w').write('x')",
        "dir_fd create": f"import os\nfd = os.open({d!r}, os.O_RDONLY)\n"
                         "os.close(os.open('harm.txt', os.O_CREAT | os.O_WRONLY, dir_fd=fd))",
        "dir_fd unlink": f"import os\nfd = os.open({d!r}, os.O_RDONLY)\nos.unlink('keep.txt', dir_fd=fd)",
        "dir_fd rename": f"import os\nfd = os.open({d!r}, os.O_RDONLY)\n"
                         "os.rename('keep.txt', 'harm.txt', src_dir_fd=fd, dst_dir_fd=fd)",
        "rename": f"import os\nos.rename({keep!r}, {d + '/harm.txt'!r})",
        "delete": f"import os\nos.remove({keep!r})",
        "truncate": f"open({keep!r}, 'r+').truncate(0)",
        "chmod": f"import os\nos.chmod({keep!r}, 0o777)",
        "hard link": f"import os\nos.link({keep!r}, 'mine')\nopen('mine', 'w').write('changed')",
        "library folder": "import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
                          "os.close(os.open('harm.py', os.O_CREAT | os.O_WRONLY, dir_fd=fd))",
    }


@pytest.mark.parametrize("cfg", CONFIGS)
def test_writes_renames_and_deletes_outside_the_work_folder_change_nothing(tmp_path, cfg):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    os.chmod(keep, 0o644)
    stdlib = os.path.dirname(os.__file__)
    for name, src in _write_attacks(tmp_path).items():
        r = _check(src, cfg)
        assert r.status in ("forbidden", "failed") and not r.passed, (name, r)
        if cfg.audit_hook:  # the hook names what it refused
            assert r.status == "forbidden" and "sandbox:" in r.message, (name, r)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"], name
        assert keep.read_text() == "precious" and keep.stat().st_mode & 0o777 == 0o644, name
        assert not os.path.exists(os.path.join(stdlib, "harm.py")), name


def test_the_work_folder_itself_is_writable_and_symlinks_inside_it_work():
    src = "import os\nos.mkdir('d')\nopen('d/a.txt', 'w').write('ok')\nos.symlink('d/a.txt', 'link')\n" \
          "os.rename('d/a.txt', 'd/b.txt')\nos.symlink('d/b.txt', 'l2')\nprint(open('l2').read())\nos.remove('l2')"
    for cfg in (ALL, HOOK):
        r = sandbox.run(src, cfg)
        assert r.passed and r.stdout.strip() == "ok", r


CANARY = "GENAI_REDTEAM_CANARY"
READ_SECRETS = """
import os
found = []
pids = ["self", str(os.getppid()), HOST_PID]
try:
    pids += [p for p in os.listdir("/proc") if p.isdigit()]
except Exception as exc:
    found.append("listdir refused: " + type(exc).__name__)
for pid in pids:
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                found.append(f.read().decode(errors="replace"))
        except Exception as exc:
            found.append(f"{pid}/{name}: {type(exc).__name__}")
print(found)
"""


def _sandbox_from_a_process_with_a_canary(cfg: sandbox.SandboxConfig, secret: str) -> dict:
    """Run READ_SECRETS from a Python process whose environment (from its start) holds the canary."""
    src = READ_SECRETS.replace("HOST_PID", "str(os.getppid())")
    driver = (f"import json, sys\nfrom genai_lib import sandbox\n"
              f"r = sandbox.run({src!r}, sandbox.SandboxConfig(**{cfg.__dict__!r}))\n"
              "print(json.dumps(r.to_dict()))")
    env = {**os.environ, CANARY: secret}
    out = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_an_unsandboxed_program_does_see_the_canary():  # so the next test can fail
    secret = "s3cret-" + os.urandom(4).hex()
    src = READ_SECRETS.replace("HOST_PID", "str(os.getppid())")
    out = subprocess.run([sys.executable, "-c", src], env={**os.environ, CANARY: secret}, capture_output=True,
                         text=True, timeout=60)
    assert secret in out.stdout


@pytest.mark.parametrize("cfg", CONFIGS)
def test_the_parents_environment_and_other_processes_files_stay_secret(cfg):
    secret = "s3cret-" + os.urandom(4).hex()
    r = _sandbox_from_a_process_with_a_canary(cfg, secret)
    assert secret not in r["stdout"] + r["stderr"] + r["message"], r
    assert CANARY not in r["stdout"] + r["stderr"], r
    if cfg.audit_hook:
        assert r["status"] == "forbidden" and "/proc" in r["message"], r
    else:  # bubblewrap alone: it may read /proc, but that holds only the sandbox's processes (no canary)
        assert r["status"] == "passed", r


@needs_bwrap
def test_under_bubblewrap_the_program_sees_only_its_own_processes_and_no_environment():
    r = sandbox.run("import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
                    "print(sorted(os.environ))", OS)
    pid_line, env_line = r.stdout.strip().splitlines()
    # PATH is the only variable passed in; bubblewrap adds PWD, Python itself LC_CTYPE (PEP 538), the harness TMPDIR
    assert r.passed and pid_line == "2 [1, 2]" and set(eval(env_line)) <= {"PATH", "PWD", "LC_CTYPE", "TMPDIR"}, r


@pytest.mark.parametrize("cfg", CONFIGS)
def test_reading_files_outside_the_allowed_paths_reveals_nothing(tmp_path, cfg):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-password-" + os.urandom(4).hex())
    os.chmod(tmp_path, 0o755)
    os.chmod(secret, 0o644)
    for path in (str(secret), "/etc/passwd", os.path.expanduser("~/.bashrc")):
        r = _check(f"print(open({path!r}).read())", cfg)
        assert r.status in ("forbidden", "failed") and secret.read_text() not in r.stdout, (path, r)
        if cfg.audit_hook:
            assert r.status == "forbidden" and "outside the allowed paths" in r.message, (path, r)
        if path == "/etc/passwd" and cfg is OS:
            assert "FileNotFoundError" in r.message  # not even there: only the interpreter is mounted


# ----------------------------------------------------------------------------- resources
def _nobody_processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit() and _uid(p) == sandbox.NOBODY)


def _no_nobody_process_stays(within_s: float = 10.0) -> bool:
    """Whether the count of processes of ``nobody`` drops to zero within ``within_s``.

    A storm left behind keeps forking, so the count never reaches zero; a sandboxed program of another
    test running at the same moment (pytest-xdist's other worker) ends within its own limits, so it
    does not keep the count up for long."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _nobody_processes() == 0:
            return True
        time.sleep(0.05)
    return False


def _uid(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


@pytest.mark.parametrize("cfg", CONFIGS)
def test_a_fork_storm_is_bounded_and_leaves_nothing_behind(cfg):
    storm = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    t0 = time.perf_counter()
    r = sandbox.run(storm, sandbox.SandboxConfig(timeout_s=3, cpu_s=2, audit_hook=cfg.audit_hook,
                                                 isolation=cfg.isolation))
    assert time.perf_counter() - t0 < 15
    if cfg.audit_hook:
        assert r.status == "forbidden" and "os.fork" in r.message, r
    else:  # the kernel's process limit: forks fail, the storm spins until the CPU or wall limit
        assert r.status == "timeout", r
    if os.geteuid() == 0 and "nobody" in r.layers:
        assert _no_nobody_process_stays()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_a_thread_storm_is_bounded(cfg):
    storm = ("import threading, time\nthreads = []\nfor _ in range(10_000):\n"
             "    t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n    t.start()\n    threads.append(t)\n")
    t0 = time.perf_counter()
    r = sandbox.run(storm, cfg)
    assert time.perf_counter() - t0 < 15
    if "bubblewrap" in r.layers or "nobody" in r.layers:  # RLIMIT_NPROC counts threads
        assert r.status == "failed" and "can't start new thread" in r.message, r
    else:  # as root without bubblewrap or nobody, the process limit does not apply: only memory and time
        assert r.status in ("failed", "memory", "timeout"), r


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("bomb", ["x = bytearray(8 * 1024**3)", "x = [0] * 10**9",
                                  "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**20)"])
def test_filling_memory_hits_the_memory_limit(bomb, cfg):
    r = sandbox.run(bomb, sandbox.SandboxConfig(timeout_s=20, cpu_s=10, memory_mb=256, audit_hook=cfg.audit_hook,
                                                isolation=cfg.isolation))
    assert r.status == "memory", r


@needs_bwrap
@pytest.mark.parametrize("cfg", [ALL, OS], ids=["all-layers", "bubblewrap-alone"])
def test_filling_the_disk_with_many_small_files_stops_at_the_tmpfs_cap(cfg):
    fill = "i = 0\nwhile True:\n    with open(f'f{i}', 'w') as f:\n        f.write('x')\n    i += 1\n"
    r = sandbox.run(fill, sandbox.SandboxConfig(timeout_s=20, cpu_s=10, disk_mb=4, audit_hook=cfg.audit_hook))
    assert r.status == "failed" and "No space left on device" in r.message, r
    count = "i = 0\ntry:\n    while True:\n        with open(f'f{i}', 'w') as f:\n            f.write('x')\n" \
            "        i += 1\nexcept OSError:\n    print(i)\n"
    r = sandbox.run(count, sandbox.SandboxConfig(timeout_s=20, cpu_s=10, disk_mb=4, audit_hook=cfg.audit_hook))
    assert r.passed and 0 < int(r.stdout) <= 4 * 1024 * 1024 // 4096, r  # one 4 KiB page per small file


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("program, wall, limit", [("while True:\n    pass", 60, "CPU"),  # 1 s of CPU, even on a busy machine
                                                 ("import time\ntime.sleep(600)", 2, "wall")])
def test_a_program_that_never_ends_is_stopped(program, wall, limit, cfg):
    t0 = time.perf_counter()
    r = sandbox.run(program, sandbox.SandboxConfig(timeout_s=wall, cpu_s=1, audit_hook=cfg.audit_hook,
                                                   isolation=cfg.isolation))
    assert r.status == "timeout" and limit in r.message and time.perf_counter() - t0 < wall + 10, r


@pytest.mark.parametrize("cfg", CONFIGS)
def test_flooding_the_output_is_cut_at_the_output_limit(cfg):
    flood = "import sys\nwhile True:\n    print('x' * 1000)\n    print('y' * 1000, file=sys.stderr)\n"
    t0 = time.perf_counter()
    r = sandbox.run(flood, sandbox.SandboxConfig(timeout_s=10, output_kb=16, audit_hook=cfg.audit_hook,
                                                 isolation=cfg.isolation))
    assert r.status == "failed" and "output limit of 16 KiB" in r.message, r
    assert len(r.stdout) <= 16 * 1024 and len(r.stderr) <= 16 * 1024 and time.perf_counter() - t0 < 10


# ----------------------------------------------------------------------------- the audit hook, branch by branch
# Each refusal the hook can make, with the audit hook as the only layer (so nothing else could stop it), and the
# exact words of its message; where the attack would change the host, the host is checked too. The attacks
# above cover the rest: network (test_a_socket_to_the_host_reaches_nothing), os.fork and subprocess.Popen
# (test_fork_is_refused_even_when_the_error_is_swallowed), gc.get_objects, gc.get_referrers,
# sys._current_frames, sys.settrace and sys.addaudithook (test_tampering_through_gc_and_tracing_is_refused),
# tb_frame and gi_frame (test_tampering_through_frames_cannot_forge_a_pass), writes, renames, deletes, chmod,
# hard links, symlinks out and dir_fd folders (test_writes_renames_and_deletes_outside_the_work_folder_change_nothing),
# /proc (test_the_parents_environment_and_other_processes_files_stay_secret), reads outside the allowed paths
# (test_reading_files_outside_the_allowed_paths_reveals_nothing), os.chdir (test_sandbox.py).
HOOK_REFUSALS = {
    "import ctypes": "native code (ctypes)",
    "import _ctypes": "native code (_ctypes)",
    "import _posixsubprocess": "native code (_posixsubprocess)",
    "import _xxsubinterpreters": "native code (_xxsubinterpreters)",
    "import sys\nsys.setprofile(lambda *a: None)": "looking into the harness (sys.setprofile)",
    "import gc\ngc.get_referents(gc)": "looking into the harness (gc.get_referents)",
    "async def c():\n    pass\nx = c()\ntry:\n    x.cr_frame\nfinally:\n    x.close()": "reading frames (cr_frame)",
    "async def a():\n    yield 1\nx = a()\nx.ag_frame": "reading frames (ag_frame)",
    "import os\nos.system('true')": "starting or signalling processes (os.system)",
    "import os\nos.kill(os.getpid(), 0)": "starting or signalling processes (os.kill)",
    "import os\nos.execv('/bin/true', ['true'])": "starting or signalling processes (os.exec)",
    "import os\nos.posix_spawn('/bin/true', ['true'], {})": "starting or signalling processes (os.posix_spawn)",
    "import os\nos.forkpty()": "starting or signalling processes (os.forkpty)",
    "import pty\npty.spawn('true')": "starting or signalling processes (pty.spawn)",
    "import os\nos.fchdir(os.open('.', os.O_RDONLY))": "changing the working folder",
    # a str or bytes subclass reaches the hook as itself (a path-like object arrives already converted)
    "class S(str):\n    pass\nopen(S('x.txt'), 'w')": "opening a path of type S (use str, bytes or pathlib)",
    "class S(str):\n    pass\nimport os\nos.remove(S('x.txt'))": "os.remove a path of type S (use str, bytes or pathlib)",
    "class B(bytes):\n    pass\nimport os\nos.listdir(B(b'.'))": "listing a path of type B (use str, bytes or pathlib)",
    "open('/proc/self/environ').read()": "reading '/proc/self/environ' (outside the allowed paths)",
    "import os\nos.listdir('/etc')": "listing '/etc' (outside the allowed paths)",
    "import os\nlist(os.scandir(b'/etc'))": "listing '/etc' (outside the allowed paths)",
    "import os\nos.open(os.path.dirname(os.__file__), os.O_RDONLY)": "opening the folder ",
    # program code that the hook runs while it checks (a metaclass's __eq__ in the path-type test) cannot look up
    "import sys\nclass Meta(type):\n    def __eq__(cls, other):\n        sys._getframe(1)\n        return False\n"
    "    __hash__ = type.__hash__\nclass S(str, metaclass=Meta):\n    pass\nopen(S('x.txt'), 'w')": "looking into the harness while it checks an operation (sys._getframe)",
}


@pytest.mark.parametrize("attack", list(HOOK_REFUSALS), ids=[s.split("\n")[-1][:40] for s in HOOK_REFUSALS])
def test_each_refusal_of_the_audit_hook_names_what_it_refused(attack):
    r = sandbox.run(attack, HOOK)
    assert r.status == "forbidden" and r.message.startswith("sandbox: " + HOOK_REFUSALS[attack]), r


def test_each_path_operation_outside_the_work_folder_is_refused_and_changes_nothing(tmp_path):
    keep, folder = tmp_path / "keep.txt", tmp_path / "folder"
    keep.write_text("precious")
    folder.mkdir()
    (folder / "inner.txt").write_text("inner")
    os.utime(keep, (1_000_000_000, 1_000_000_000))
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    k, d, new = str(keep), str(folder), str(tmp_path / "new")
    attacks = {
        f"import os\nos.mkdir({new!r})": f"os.mkdir on {new!r}",
        f"import os\nos.rmdir({d!r})": f"os.rmdir on {d!r}",
        f"import shutil\nshutil.rmtree({d!r})": f"shutil.rmtree on {d!r}",
        f"import os\nos.utime({k!r}, (0, 0))": f"os.utime on {k!r}",
        f"import os\nos.chown({k!r}, 0, 0)": f"os.chown on {k!r}",
        f"import os\nos.truncate({k!r}, 0)": f"os.truncate on {k!r}",
        f"import os\nos.setxattr({k!r}, 'user.x', b'1')": f"os.setxattr on {k!r}",
        f"import os\nos.removexattr({k!r}, 'user.x')": f"os.removexattr on {k!r}",
        # a two-path operation is checked on both paths: the first is inside the working folder here
        f"open('mine', 'w').close()\nimport os\nos.rename('mine', {new!r})": f"os.rename on {new!r}",
        f"open('mine', 'w').close()\nimport os\nos.link('mine', {new!r})": f"os.link on {new!r}",
        f"import os\nos.symlink('x', {new!r})": "a symlink to 'x' (links may only point down inside the working folder)",
        f"open({k.encode()!r}, 'a').write('x')": f"writing {k!r} (outside the working folder)",   # a bytes path
    }
    for src, refusal in attacks.items():
        r = sandbox.run(src, HOOK)
        assert r.status == "forbidden" and r.message.startswith(f"sandbox: {refusal}"), (src, r)
        assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before, src
        assert keep.read_text() == "precious" and keep.stat().st_mtime == 1_000_000_000, src
        assert (folder / "inner.txt").read_text() == "inner", src


def test_what_the_hook_allows():
    """Descriptors, and writes, listings and links inside the working folder, are not refusals."""
    src = ("import os\nwith open(1, 'w', closefd=False) as out:\n    out.write('to fd 1\\n')\n"
           "os.mkdir(b'sub')\nos.symlink('sub', 'down')\n"
           "print(sorted(os.listdir('.')), sorted(os.listdir()), os.listdir(os.open('sub', os.O_RDONLY)))")
    r = sandbox.run(src, HOOK)
    assert r.passed and r.stdout.splitlines() == ["to fd 1", "['down', 'sub'] ['down', 'sub'] []"], r


def test_a_refusal_is_named_beside_a_memory_error_but_does_not_replace_it():
    src = "import os\ntry:\n    os.fork()\nexcept Exception:\n    pass\nx = bytearray(8 * 1024**3)"
    r = sandbox.run(src, sandbox.SandboxConfig(timeout_s=20, cpu_s=10, memory_mb=256, isolation=False))
    assert r.status == "memory", r


def test_a_forked_copy_of_the_harness_has_no_say():
    """Without the hook a program may fork (the other layers bound it); the copy's own verdict is not written."""
    src = "import os, time\nif os.fork() == 0:\n    time.sleep(0.5)\n    raise ValueError('from the forked copy')\nprint('parent')"
    r = sandbox.run(src, sandbox.SandboxConfig(timeout_s=10, audit_hook=False, isolation=False))
    assert r.status == "passed" and r.message == "ran to the end" and r.stdout == "parent\n", r


def test_verdicts_for_exceptions_that_cannot_describe_themselves():
    unprintable = "class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()"
    r = sandbox.run(unprintable, HOOK)
    assert r.status == "failed" and r.message == "E", r
    exit_code = "class C:\n    def __repr__(self):\n        raise RuntimeError\nraise SystemExit(C())"
    r = sandbox.run(exit_code, HOOK)
    assert r.status == "failed" and r.message == "the program exited (SystemExit(?)) before its last line, in the program", r
    r = sandbox.run("def f():\n    raise SystemExit(2)", HOOK, tests="f()")
    assert r.status == "failed" and r.message == "the program exited (SystemExit(2)) before the tests finished, in the tests", r


UNAUDITED = {"mkfifo": "import os\nos.mkfifo(TARGET)", "mknod": "import os\nos.mknod(TARGET)"}


@needs_bwrap
@pytest.mark.parametrize("call", list(UNAUDITED))
def test_calls_that_raise_no_audit_event_are_stopped_by_bubblewrap(tmp_path, call):
    """CPython raises no audit event for os.mkfifo and os.mknod (nor os.setuid and its kin, which the hook also
    lists), so the hook cannot see them; with every layer on, the host's files are not in the sandbox at all."""
    r = sandbox.run(UNAUDITED[call].replace("TARGET", repr(str(tmp_path / "new"))), ALL)
    assert r.status in ("failed", "forbidden") and "FileNotFoundError" in r.message, r
    assert list(tmp_path.iterdir()) == []


@pytest.mark.xfail(strict=True, reason="known gap: os.mkfifo/os.mknod raise no audit event, so the audit hook "
                                       "alone lets them make a FIFO or file outside the working folder")
@pytest.mark.parametrize("call", list(UNAUDITED))
def test_the_audit_hook_alone_cannot_see_calls_without_an_audit_event(tmp_path, call):
    r = sandbox.run(UNAUDITED[call].replace("TARGET", repr(str(tmp_path / "new"))), HOOK)
    assert r.status == "forbidden" and list(tmp_path.iterdir()) == [], r

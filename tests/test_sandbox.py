"""genai_lib.sandbox: generated code is contained and reported, and the host is unharmed."""

import os
import socket
import threading
import time

import pytest

from genai_lib import sandbox
from genai_lib.core import GenAIError

FAST = sandbox.SandboxConfig(timeout_s=10, cpu_s=5)


def test_a_normal_program_passes_and_its_output_comes_back():
    r = sandbox.run("print(6 * 7)\nopen('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())", FAST)
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

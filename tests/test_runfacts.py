"""genai_lib.runfacts (the first and last cell of every notebook) and genai_lib.prepare, in-process.

The notebooks run them in kernels that coverage does not follow; here every fact they record and
every line of markdown/HTML they emit is checked against values the test sets itself (a fake clock,
device, memory counter and IPython display). Each test gets its own run state, so the order of the
tests and the process they run in do not matter.
"""

from __future__ import annotations

import json
import os
import runpy
import types

import pytest
import torch

from genai_lib import prepare, registry, runfacts

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct@12fd25f77366fa6b3b4b768ec3050bf629380bac"
MINILM = "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


class Clock:
    """Stands in for the ``time`` module: wall and CPU time advance only when the test says so."""

    def __init__(self):
        self.wall, self.cpu = 1000.0, 50.0

    def time(self):
        return 1_800_000_000.0 + self.wall

    def perf_counter(self):
        return self.wall

    def process_time(self):
        return self.cpu


@pytest.fixture
def run(monkeypatch):
    """A fresh run state, a fake clock, the CPU as device and no IPython kernel."""
    clock = Clock()
    monkeypatch.setattr(runfacts, "_STATE", {})
    monkeypatch.setattr(runfacts, "time", clock)
    monkeypatch.setattr(runfacts, "get_device", lambda: "cpu")
    monkeypatch.setattr(runfacts, "device_name", lambda device: f"name of {device}")
    monkeypatch.setattr(runfacts, "peak_memory_mb", lambda: 1536.4)
    monkeypatch.delenv("GENAI_RUNFACTS_DIR", raising=False)
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    return clock


@pytest.fixture
def kernel(monkeypatch):
    """A stand-in Jupyter kernel: ``get_ipython()`` answers, and ``display`` records what it was given."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda *a, **kw: shown.append((a, kw)))
    return shown


def test_start_prints_a_model_shared_by_two_roles_once(run, capsys):
    runfacts.start("prompting", roles=["chat", "text", "embedder"], profile="offline")
    assert capsys.readouterr().out == f"profile=offline | device=cpu (name of cpu) | models: {SMOL}, {MINILM}\n"


def test_start_records_profile_device_and_each_model_once(run, capsys):
    got = runfacts.start("rag", roles=["chat", "embedder"], profile="offline")
    assert capsys.readouterr().out == f"profile=offline | device=cpu (name of cpu) | models: {SMOL}, {MINILM}\n"
    assert got == {"name": "rag", "profile": "offline", "device": "cpu", "device_name": "name of cpu",
                   "models": sorted([SMOL, MINILM]), "started_at": 1_800_001_000.0, "t0": 1000.0, "cpu0": 50.0}
    got["name"] = "changed"                       # a copy: the caller cannot change the run's state
    assert runfacts.facts()["name"] == "rag"
    # "text" and "chat" are the same model in offline: listed once
    assert runfacts.start("x", roles=["chat", "text"], profile="offline")["models"] == [SMOL]


def test_start_without_models_and_restarting_forgets_the_last_run(run, capsys, monkeypatch):
    runfacts.start("first", roles=["chat"], profile="offline")
    monkeypatch.setenv("GENAI_PROFILE", "tiny")
    got = runfacts.start("second")
    assert capsys.readouterr().out.splitlines()[-1] == "profile=tiny | device=cpu (name of cpu) | models: none"
    assert got["models"] == [] and got["profile"] == "tiny" and runfacts.facts()["name"] == "second"


def test_facts_need_start(run):
    with pytest.raises(RuntimeError, match=r"runfacts.start\(...\) was not called"):
        runfacts.facts()


def test_facts_measure_from_start(run, monkeypatch):
    runfacts.start("gan", roles=["chat"], profile="offline")
    run.wall += 83.26
    run.cpu += 151.04
    monkeypatch.setattr(runfacts, "LIBRARIES", ("torch", "no-such-library-here", "genai_lib"))
    got = runfacts.facts()
    assert got == {"name": "gan", "profile": "offline", "device": "cpu", "device_name": "name of cpu",
                   "models": [SMOL], "versions": got["versions"], "wall_s": 83.3, "cpu_s": 151.0,
                   "peak_mem_mb": 1536, "started_at": 1_800_001_000.0, "ended_at": 1_800_001_083.3,
                   "torch_threads": torch.get_num_threads()}
    import platform
    from importlib import metadata

    assert got["versions"] == {"python": platform.python_version(), "torch": metadata.version("torch"),
                               "genai_lib": metadata.version("genai_lib")}   # a missing library is left out
    assert list(got["versions"]) == ["python", "torch", "genai_lib"]


def test_facts_on_a_gpu_add_its_peak_memory(run, monkeypatch):
    import torch

    monkeypatch.setattr(runfacts, "get_device", lambda: "cuda:0")
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 3 * 2**20 + 2**19 + 1)   # 3.5 MiB and a byte
    runfacts.start("sd")
    assert runfacts.facts()["peak_gpu_mem_mb"] == 4
    monkeypatch.setattr(runfacts, "get_device", lambda: "cpu")
    runfacts.start("sd")
    assert "peak_gpu_mem_mb" not in runfacts.facts()


def test_report_outside_jupyter_prints_the_box(run, capsys):
    runfacts.start("vae", profile="tiny")          # its models are trained here: no registry roles
    run.wall += 125.4
    run.cpu += 239.6
    capsys.readouterr()
    assert runfacts.report() is None              # so that a notebook's last cell shows only the box
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Run facts"
    assert lines[1:3] == [f"{'profile':12s} tiny", f"{'device':12s} name of cpu"]
    assert lines[3] == f"{'models':12s} none (trained here)"
    assert lines[4].startswith(f"{'libraries':12s} python ")
    assert lines[5:] == [f"{'wall time':12s} 125 s (CPU 240 s)", f"{'peak memory':12s} 1536 MiB"]


def test_report_in_jupyter_shows_escaped_html_and_the_facts_as_metadata(run, kernel, monkeypatch):
    monkeypatch.setattr(runfacts, "device_name", lambda device: 'GPU <b>"fast"</b> & co')
    monkeypatch.setattr(runfacts, "get_device", lambda: "cuda")
    import torch

    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 2048 * 2**20)
    runfacts.start("text-generation", roles=["chat"], profile="offline")
    run.wall += 9.6
    runfacts.report()
    (args, kwargs), = kernel
    bundle, = args
    assert kwargs["raw"] is True and kwargs["metadata"] == {"genai_runfacts": runfacts.facts()}
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"].startswith("Run facts\nprofile      offline\ndevice       GPU <b>")
    assert bundle["text/plain"].endswith(f"{'peak memory':12s} 1536 MiB, GPU 2048 MiB")
    page = bundle["text/html"]
    assert page.startswith("<div class='run-facts'><strong>Run facts</strong><table>") and page.endswith("</table></div>")
    assert "<td>GPU &lt;b&gt;&quot;fast&quot;&lt;/b&gt; &amp; co</td>" in page and "<b>" not in page
    assert page.count("<tr>") == 6
    assert f"<th style='text-align:left;padding-right:1em'>models</th><td>{SMOL}</td>" in page
    assert "<th style='text-align:left;padding-right:1em'>wall time</th><td>10 s (CPU 0 s)</td>" in page
    assert "<td>1536 MiB, GPU 2048 MiB</td>" in page


def test_report_saves_the_facts_when_the_build_asks(run, tmp_path, monkeypatch, capsys):
    runfacts.start("rag", roles=["embedder"], profile="offline")
    run.wall += 3
    for unset in ("", "   "):                     # empty or blank: nothing is written anywhere
        monkeypatch.setenv("GENAI_RUNFACTS_DIR", unset)
        monkeypatch.chdir(tmp_path)
        runfacts.report()
        assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("GENAI_RUNFACTS_DIR", f" {tmp_path} ")
    runfacts.report()
    saved = json.loads((tmp_path / "rag.json").read_text())
    assert saved == runfacts.facts() and saved["models"] == [MINILM] and saved["wall_s"] == 3.0
    assert [p.name for p in tmp_path.iterdir()] == ["rag.json"]      # no temporary file left behind


def test_findings_are_a_markdown_list(run, capsys, kernel, monkeypatch):
    runfacts.findings("The loss fell to 0.12.", "Sampling took 3 s.")
    (args, kwargs), = kernel
    assert args == ({"text/markdown": "- The loss fell to 0.12.\n- Sampling took 3 s.",
                     "text/plain": "- The loss fell to 0.12.\n- Sampling took 3 s."},)
    assert kwargs == {"raw": True}
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)       # a plain Python process: printed
    runfacts.findings("One line.")
    assert capsys.readouterr().out == "- One line.\n" and len(kernel) == 1


def test_device_names(monkeypatch):
    assert runfacts.device_name("mps") == "mps"
    cores = os.cpu_count()
    assert runfacts.device_name("cpu") == f"{runfacts._cpu_name()} ({cores} cores)"
    import torch

    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: asked.append(d) or "NVIDIA H200")
    assert runfacts.device_name("cuda:1") == "NVIDIA H200" and asked == [torch.device("cuda:1")]


def test_cpu_name_from_cpuinfo_else_platform(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU @ 3.0GHz: rev 2\nflags\t: a\n")
    monkeypatch.setattr(runfacts, "Path", lambda p: info if p == "/proc/cpuinfo" else None)
    assert runfacts._cpu_name() == "Example CPU @ 3.0GHz: rev 2"
    info.write_text("processor\t: 0\n")                                       # no model name (some ARM boards)
    fake = types.SimpleNamespace(processor=lambda: "", machine=lambda: "aarch64")
    monkeypatch.setattr(runfacts, "platform", fake)
    assert runfacts._cpu_name() == "aarch64"
    info.unlink()                                                             # no /proc (macOS)
    fake.processor = lambda: "arm"
    assert runfacts._cpu_name() == "arm"


def test_peak_memory_in_mib_on_linux_and_macos(monkeypatch):
    import resource

    usage = types.SimpleNamespace(ru_maxrss=3 * 1024 * 1024)
    asked = []
    fake = types.SimpleNamespace(RUSAGE_SELF=resource.RUSAGE_SELF,
                                 getrusage=lambda who: asked.append(who) or usage)
    monkeypatch.setattr(runfacts, "resource", fake)
    monkeypatch.setattr(runfacts, "sys", types.SimpleNamespace(platform="linux"))
    assert runfacts.peak_memory_mb() == 3072.0                               # Linux: KiB
    monkeypatch.setattr(runfacts, "sys", types.SimpleNamespace(platform="darwin"))
    assert runfacts.peak_memory_mb() == 3.0                                  # macOS: bytes
    assert asked == [resource.RUSAGE_SELF] * 2


def test_peak_memory_of_this_process_is_plausible():
    import resource
    import sys

    if sys.platform != "linux":
        pytest.skip("the Linux units")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    got = runfacts.peak_memory_mb()
    assert before <= got <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # a peak only grows
    assert 10 < got < 10**6      # a Python with numpy and torch loaded: tens of MiB at least


def test_prepare_prints_each_model_and_the_time(monkeypatch, capsys):
    clock = iter([10.0, 12.25])
    monkeypatch.setattr(prepare, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(prepare, "prepare_offline_models", lambda: {"chat": "/c/smollm2", "embedder": "/c/minilm"})
    prepare.main()
    assert capsys.readouterr().out == ("chat         /c/smollm2\nembedder     /c/minilm\n"
                                       "models ready in 2.2 s\n")


def test_prepare_runs_as_a_module(monkeypatch, capsys):
    """``python -m genai_lib.prepare`` (the Makefile's and postBuild's command) calls main."""
    import sys

    monkeypatch.setattr(registry, "prepare_offline_models", lambda: {"asr": "/c/whisper"})
    monkeypatch.delitem(sys.modules, "genai_lib.prepare")     # as in a fresh `python -m` (runpy warns otherwise)
    runpy.run_module("genai_lib.prepare", run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "asr          /c/whisper" and out[1].startswith("models ready in ") and len(out) == 2


def test_run_facts_page_gives_the_elapsed_time_of_notebooks_run_side_by_side(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import run_facts_page

    base = {"profile": "offline", "device": "cpu", "device_name": "a CPU", "models": [], "cpu_s": 60.0,
            "peak_mem_mb": 100, "versions": {"python": "3"}}
    rows = {"a": (0.0, 300.0), "b": (10.0, 130.0), "c": (140.0, 320.0)}          # two at a time
    for name, (t0, t1) in rows.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {**base, "name": name, "wall_s": t1 - t0, "started_at": 1e9 + t0, "ended_at": 1e9 + t1}))
    page = run_facts_page.render(tmp_path, ["a", "b", "c"])
    assert "**10.0 minutes** of wall time in all" in page                          # 300 + 120 + 180 s
    assert "they took **5.3 minutes** from the first start to the last finish" in page   # 0 -> 320 s
    # facts of a notebook kept from an earlier build carry no span of this build: no elapsed time
    (tmp_path / "c.json").write_text(json.dumps({**base, "name": "c", "wall_s": 180.0}))
    assert "from the first start" not in run_facts_page.render(tmp_path, ["a", "b", "c"])


def test_elapsed_is_the_span_of_one_build_only():
    a = {"wall_s": 100.0, "started_at": 0.0, "ended_at": 100.0}
    b = {"wall_s": 50.0, "started_at": 20.0, "ended_at": 70.0}
    assert runfacts.elapsed_s([a, b]) == 100.0                      # side by side: 100 s, not 150
    assert runfacts.elapsed_s([a, {**b, "started_at": 5000.0, "ended_at": 5050.0}]) is None   # two builds
    assert runfacts.elapsed_s([a, {"wall_s": 50.0}]) is None and runfacts.elapsed_s([]) is None

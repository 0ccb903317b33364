import re
import time

import numpy as np
import pytest
import torch

from genai_lib import core, registry
from genai_lib.core import GenAIError, ProfileError


def test_profile_default_and_env(monkeypatch):
    monkeypatch.delenv("GENAI_PROFILE", raising=False)
    assert core.get_profile() == "offline"
    monkeypatch.setenv("GENAI_PROFILE", " TINY ")
    assert core.get_profile() == "tiny"
    assert core.get_profile("hub") == "hub"


def test_unknown_profile_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "huge")
    with pytest.raises(ProfileError) as err:
        core.get_profile()
    for name in ("tiny", "offline", "hub", "huge", "GENAI_PROFILE"):
        assert name in str(err.value)


def test_device_choice(monkeypatch):
    monkeypatch.delenv("GENAI_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert core.get_device() == expected
    assert core.get_device("cpu") == "cpu"
    monkeypatch.setenv("GENAI_DEVICE", "cpu")
    assert core.get_device() == "cpu"
    with pytest.raises(GenAIError, match="Unknown device"):
        core.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(GenAIError, match="CUDA is not available"):
            core.get_device("cuda")


def test_seed_makes_runs_repeatable():
    core.set_seed(123)
    a = (np.random.rand(3), torch.rand(3))
    core.set_seed(123)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(GenAIError):
        core.set_seed(-1)


def test_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path / "c"))
    assert core.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_preset_of_applies_overrides_without_touching_the_table():
    from genai_lib import diffusion

    cfg = core.preset_of(diffusion.PRESETS, "tiny", train_steps=3)
    assert cfg.train_steps == 3 and diffusion.preset("tiny").train_steps != 3
    with pytest.raises(core.ProfileError):
        core.preset_of(diffusion.PRESETS, "huge")


def test_registry_has_every_role_in_every_profile():
    for role in ("text", "chat", "code", "qa", "embedder", "text2image", "tts", "asr"):
        for profile in core.PROFILES:
            row = registry.spec(role, profile)
            assert row.hub_id and row.revision and row.licence and row.size and row.source
    assert registry.spec("text", "hub").hub_id.endswith("gpt2")
    assert registry.spec("code", "hub").hub_id == "Salesforce/codegen-350M-mono"
    assert registry.spec("text2image", "hub").hub_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert "distilbert-base-cased-distilled-squad" in registry.spec("qa", "hub").hub_id
    assert not any("runwayml" in registry.spec(r, "hub").hub_id for r in registry.roles())
    for role in ("text", "code", "text2image", "qa", "embedder", "asr"):  # pinned to a commit, not a branch
        assert re.fullmatch(r"[0-9a-f]{40}", registry.spec(role, "hub").revision), role
    with pytest.raises(GenAIError, match="known roles"):
        registry.spec("telepathy")
    assert {row["role"] for row in registry.table("offline")} == set(registry.roles())


def test_hub_without_network_fails_fast_with_a_way_out(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    with pytest.raises(registry.ModelUnavailableError) as err:
        registry.resolve("text", "hub")
    assert time.perf_counter() - start < 10
    assert "openai-community/gpt2" in str(err.value) and "GENAI_PROFILE=offline" in str(err.value)


def test_model_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAI_MODEL_TEXT", str(tmp_path / "missing"))
    with pytest.raises(registry.ModelUnavailableError, match="does not exist"):
        registry.resolve("text", "hub")
    monkeypatch.setenv("GENAI_MODEL_TEXT", str(tmp_path))
    got = registry.resolve("text", "hub")
    assert (got.source, got.revision, got.name, got.profile) == (str(tmp_path), None, str(tmp_path), "hub")


def test_resolve_pins_hub_loads_and_names_local_ones(monkeypatch):
    """A Hub load carries the registry's pinned revision; a local folder or an explicit path carries none."""
    monkeypatch.setattr(registry, "ensure_hub_reachable", lambda hub_id: None)  # no network here
    for role in ("text", "code", "qa", "embedder", "text2image", "asr", "text2audio"):
        got = registry.resolve(role, "hub")
        row = registry.spec(role, "hub")
        assert (got.source, got.revision, got.name) == (row.hub_id, row.revision, row.hub_id), role
        assert got.hub_kwargs == {"revision": row.revision}
    tiny = registry.resolve("chat", "tiny")
    assert tiny.revision is None and tiny.name == registry.spec("chat", "tiny").hub_id and tiny.profile == "tiny"
    explicit = registry.resolve("chat", "hub", path="/some/folder")
    assert (explicit.source, explicit.revision, explicit.name) == ("/some/folder", None, "/some/folder")


def test_half_written_cache_folder_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "weights").write_text("w")

    broken = tmp_path / "thing"
    broken.mkdir()
    (broken / "weights").write_text("partial")  # no COMPLETE marker: an interrupted conversion
    path = registry._prepare_once("thing", build)
    assert (path / "COMPLETE").exists() and (path / "weights").read_text() == "w" and len(calls) == 1
    registry._prepare_once("thing", build)  # reused, not rebuilt
    assert len(calls) == 1

    def failing(folder):
        (folder / "weights").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        registry._prepare_once("other", failing)
    assert not (tmp_path / "other").exists()
    assert not list(tmp_path.glob(".other.tmp-*"))


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "sub" / "data.txt"
    with core.atomic_write(target) as tmp:
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with core.atomic_write(target) as tmp:
            tmp.write_text("half of the sec")
            raise RuntimeError("interrupted")
    assert target.read_text() == "first"                      # the old file is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.txt"]   # no temporary left behind


def test_ema_update_averages_weights_and_copies_buffers():
    import torch

    net, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        net.weight.fill_(1.0)
        ema.weight.fill_(0.0)
        net.running_mean.fill_(5.0)
    core.ema_update(ema, net, decay=0.75)
    torch.testing.assert_close(ema.weight, torch.full((3,), 0.25))
    torch.testing.assert_close(ema.running_mean, torch.full((3,), 5.0))


def test_thread_policy_caps_threads_and_reads_env(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("GENAI_THREADS", raising=False)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        n = core.apply_thread_policy(force=True)
        assert n == min(core.available_cpus(), core.MAX_DEFAULT_THREADS) == torch.get_num_threads()
        monkeypatch.setenv("GENAI_THREADS", "1")
        assert core.apply_thread_policy(force=True) == 1 == torch.get_num_threads()
        assert core.apply_thread_policy() == 1          # once per process unless forced
        monkeypatch.setenv("GENAI_THREADS", "zero")
        with pytest.raises(core.GenAIError, match="GENAI_THREADS must be a positive integer"):
            core.apply_thread_policy(force=True)
    finally:
        torch.set_num_threads(before)


def test_thread_policy_leaves_omp_num_threads_alone(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.delenv("GENAI_THREADS", raising=False)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert core.apply_thread_policy(force=True) == 1
    finally:
        torch.set_num_threads(before)


def test_model_dtype_follows_the_device_and_the_env(monkeypatch):
    monkeypatch.delenv("GENAI_DTYPE", raising=False)
    monkeypatch.setattr(core, "cpu_has_native_bf16", lambda: True)
    assert core.model_dtype("cpu", "offline") is torch.bfloat16
    assert core.model_dtype("cpu", "tiny") is torch.float32          # unit tests compare exactly
    monkeypatch.setattr(core, "cpu_has_native_bf16", lambda: False)
    assert core.model_dtype("cpu", "offline") is torch.float32       # emulated bf16 would be slower
    assert core.model_dtype("mps", "offline") is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert core.model_dtype("cuda:1", "hub") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert core.model_dtype("cuda", "hub") is torch.float16          # a T4: no fast bf16
    monkeypatch.setenv("GENAI_DTYPE", "BFloat16")
    assert core.model_dtype("cpu", "tiny") is torch.bfloat16         # the variable wins, any profile
    monkeypatch.setenv("GENAI_DTYPE", "auto")
    assert core.model_dtype("cpu", "offline") is torch.float32


def test_model_dtype_rejects_an_unknown_name(monkeypatch):
    monkeypatch.setenv("GENAI_DTYPE", "fp8")
    with pytest.raises(GenAIError, match="GENAI_DTYPE must be one of auto, float32, bfloat16, float16, got 'fp8'"):
        core.model_dtype("cpu")


def test_native_bf16_probe_matches_the_cpu_flags():
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    words = set(flags.split())
    assert core.cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16", "amx_tile"} & words)

"""Shared fixtures. Unit tests run in the ``tiny`` profile unless a test says otherwise."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny image models train faster on one thread (and share a busy CPU more fairly)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(monkeypatch):
    """Run the test in the tiny profile."""
    monkeypatch.setenv("GENAI_PROFILE", "tiny")
    return "tiny"


@pytest.fixture(scope="session")
def tiny_lm():
    from genai_lib import text

    return text.load("chat", profile="tiny", device="cpu")


@pytest.fixture(scope="session")
def smol():
    """SmolLM2-135M-Instruct, the offline profile's chat model (loaded once per session)."""
    from genai_lib import text

    return text.load("chat", profile="offline", device="cpu")


@pytest.fixture(scope="session")
def smol_fp32():
    """SmolLM2 in float32 whatever the CPU: batched and one-at-a-time decoding agree exactly only there
    (in bfloat16 the rounding depends on the batch's shape; see test_text.py)."""
    import torch

    from genai_lib import text

    return text.load("chat", profile="offline", device="cpu", dtype=torch.float32)

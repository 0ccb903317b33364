"""genai_lib.gemini and genai_lib.app against a local stand-in of the Gemini REST API.

The real ``google-genai`` SDK sends real HTTP requests to the stand-in (tests/gemini_standin.py);
every fault the app must survive is produced by the server, not by a mock.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gemini_standin import FAKE_KEY, StandIn  # noqa: E402

from genai_lib import app, gemini  # noqa: E402
from genai_lib.gemini import GeminiChat, GeminiConfig, GeminiError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "parts": [{"text": "Tell me about GANs"}]}]
FULL = "Stand-in answer number 1 to: Tell me about GANs"


@pytest.fixture
def server():
    with StandIn() as s:
        yield s


def client(server: StandIn, retries: list | None = None, **overrides) -> GeminiChat:
    cfg = dict(api_key=server.key, base_url=server.url, backoff_base_s=0.02, backoff_cap_s=0.1, total_timeout_s=10)
    cfg.update(overrides)
    return GeminiChat(GeminiConfig(**cfg), on_retry=(lambda *a: retries.append(a)) if retries is not None else None)


def failure(gen) -> GeminiError:
    with pytest.raises(GeminiError) as info:
        for _ in gen:
            pass
    return info.value


# ----------------------------------------------------------------------------- the request itself
def test_sdk_sends_the_real_rest_request(server):
    pieces = list(client(server).stream(USER, system="Be brief.", temperature=0.3, top_p=0.8, max_output_tokens=77))
    assert len(pieces) > 2 and "".join(pieces) == FULL  # streamed in several chunks, nothing lost
    (req,) = server.requests
    assert req.path == "/v1/models/gemini-3.5-flash:streamGenerateContent"
    assert req.query == {"alt": ["sse"]}
    assert req.headers["x-goog-api-key"] == FAKE_KEY
    assert req.body["contents"] == USER
    assert req.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert req.body["generationConfig"] == {"temperature": 0.3, "topP": 0.8, "maxOutputTokens": 77}


def test_model_is_a_setting(server, monkeypatch):
    monkeypatch.setenv("GEMINI_MODEL", "gemini-3.5-flash-lite")
    monkeypatch.setenv("GEMINI_API_KEY", server.key)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
    cfg = GeminiConfig.from_env()
    assert cfg.model == "gemini-3.5-flash-lite" and cfg.api_key == server.key
    list(GeminiChat(cfg).stream(USER))
    assert server.requests[-1].path == "/v1/models/gemini-3.5-flash-lite:streamGenerateContent"
    monkeypatch.delenv("GEMINI_MODEL")
    assert GeminiConfig.from_env().model == gemini.DEFAULT_MODEL not in ("gemini-2.0-flash", "gemini-2.5-flash")


# ----------------------------------------------------------------------------- retries
@pytest.mark.parametrize("fault", ["429", "500", "503", "drop"])
def test_transient_failures_are_retried(server, fault):
    retries: list = []
    server.fail(fault)
    server.fail(fault)
    assert "".join(client(server, retries).stream(USER)) == FULL
    assert len(server.requests) == 3 and len(retries) == 2
    assert retries[0][2] == "RemoteProtocolError" if fault == "drop" else retries[0][2].startswith(fault)


def test_retry_after_is_honoured(server):
    retries: list = []
    server.fail("429", retry_after=0.6)
    t0 = time.monotonic()
    assert "".join(client(server, retries).stream(USER)) == FULL
    assert time.monotonic() - t0 >= 0.6
    assert retries[0][1] >= 0.6 and retries[0][2].startswith("429")


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(1, 8):
        step = min(8.0, 1.0 * 2 ** (attempt - 1))
        delays = [gemini.backoff_delay(attempt, 1.0, 8.0) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 100  # jittered: clients that failed together do not retry together
    assert gemini.backoff_delay(1, 1.0, 8.0, retry_after=30) == 30


def test_retries_give_up_with_a_clear_message(server):
    for _ in range(3):
        server.fail("503")
    err = failure(client(server, max_attempts=3).stream(USER))
    assert err.kind == "unavailable" and "503" in str(err) and "Traceback" not in str(err)
    assert len(server.requests) == 3
    for _ in range(3):
        server.fail("429")
    err = failure(client(server, max_attempts=3).stream(USER))
    assert err.kind == "rate_limited" and "429" in str(err)


def test_retry_after_beyond_the_time_limit_gives_up_at_once(server):
    server.fail("429", retry_after=120)
    t0 = time.monotonic()
    err = failure(client(server, total_timeout_s=5).stream(USER))
    assert time.monotonic() - t0 < 3 and err.kind == "rate_limited" and "120" in str(err)


def test_unreachable_server(server):
    with socket.socket() as s:  # a port on which nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = failure(client(server, base_url=f"http://127.0.0.1:{port}", max_attempts=2).stream(USER))
    assert err.kind == "unreachable" and "Could not reach Gemini" in str(err)


def test_total_timeout(server):
    server.fail("slow", delay=3)
    t0 = time.monotonic()
    err = failure(client(server, total_timeout_s=1).stream(USER))
    assert err.kind == "timeout" and "1 s" in str(err)
    assert time.monotonic() - t0 < 2.5


# ----------------------------------------------------------------------------- broken answers
def test_cut_stream_keeps_what_arrived_and_is_not_retried(server):
    server.fail("cut", after=2)
    got: list[str] = []
    with pytest.raises(GeminiError) as info:
        for piece in client(server).stream(USER):
            got.append(piece)
    assert info.value.kind == "cut" and "cut" in str(info.value)
    assert info.value.partial == "".join(got) and FULL.startswith(info.value.partial) and len(got) == 2
    assert len(server.requests) == 1  # retrying would show the beginning twice


def test_cut_stream_in_the_app_shows_partial_text_and_the_notice(server):
    server.fail("cut", after=2)
    out = list(app.chat("Tell me about GANs", [], "", 0.7, 0.95, 64, backend=client(server), config=app.AppConfig()))
    final = out[-1]
    assert final.startswith("Stand-in answer number ") and "\n\n⚠ **The answer was cut" in final
    history = [{"role": "user", "content": "Tell me about GANs"}, {"role": "assistant", "content": final}]
    partial = app.to_contents(history, "go on", 1000)[1]["parts"][0]["text"]  # the partial answer is kept
    assert final.startswith(partial) and "cut" not in partial
    assert "Answered by Gemini (gemini-3.5-flash)" in final


@pytest.mark.parametrize("fault, kind, words", [
    ("safety", "safety", "flagged (SAFETY)"),
    ("blocked", "safety", "blocked this prompt (SAFETY)"),
    ("max_tokens", "max_tokens", "max output tokens limit"),
])
def test_unfinished_answers_say_why(server, fault, kind, words):
    server.fail(fault, after=2)
    err = failure(client(server).stream(USER))
    assert err.kind == kind and words in str(err)
    assert err.partial == ("" if fault == "blocked" else "Stand-in answer number 1 to: Tell ")
    assert len(server.requests) == 1


def test_bad_key_and_unknown_model(server):
    err = failure(client(server, api_key="wrong-key-for-the-stand-in").stream(USER))
    assert err.kind == "bad_key" and "GEMINI_API_KEY" in str(err) and "wrong-key" not in str(err)
    err = failure(client(server, model="gemini-2.0-flash").stream(USER))
    assert err.kind == "unknown_model" and "'gemini-2.0-flash'" in str(err) and "GEMINI_MODEL" in str(err)
    assert len(server.requests) == 2  # neither is retried


# ----------------------------------------------------------------------------- the chat function
def test_chat_streams_and_names_the_backend(server):
    be, cfg = client(server), app.AppConfig()
    history = [{"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!\n\n*Answered by Gemini (x).*"},
               {"role": "user", "content": "Are you there?"},  # a failed exchange: dropped
               {"role": "assistant", "content": "⚠ **Could not reach Gemini.**\n\n*Backend: Gemini (x).*"},
               {"role": "user", "content": ""},  # a refused empty message: dropped
               {"role": "assistant", "content": "⚠ Please type a message first."}]
    outs = list(app.chat("Tell me about GANs", history, "Be brief.", 0.2, 0.9, 100, backend=be, config=cfg))
    assert len(outs) > 2 and all(b.startswith(a.split("\n\n*Answered")[0]) for a, b in zip(outs, outs[1:]))
    assert outs[-1] == "Stand-in answer number 3 to: Tell me about GANs" + "\n\n*Answered by Gemini (gemini-3.5-flash).*"
    body = server.requests[-1].body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]},
                                {"role": "model", "parts": [{"text": "Hello!"}]},  # the backend line is stripped
                                {"role": "user", "parts": [{"text": "Tell me about GANs"}]}]


@pytest.mark.parametrize("message, expected", [
    ("", "Please type a message first"), ("   \n ", "Please type a message first"),
    ("x" * 4001, "the limit is 4,000"),
])
def test_chat_refuses_empty_and_long_messages(server, message, expected):
    out = list(app.chat(message, [], "", 0.7, 0.95, 64, backend=client(server), config=app.AppConfig()))
    assert len(out) == 1 and expected in out[0]
    assert server.requests == []  # nothing was sent


def test_history_is_trimmed_to_the_budget():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "y" * 90} for i in range(20)]
    contents = app.to_contents(history, "last", max_chars=500)
    assert contents[-1]["parts"][0]["text"] == "last" and contents[0]["role"] == "user"
    assert sum(len(c["parts"][0]["text"]) for c in contents) <= 500 and len(contents) < 21


def test_without_a_key_the_local_model_answers(tiny, monkeypatch):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GENAI_APP_LOCAL_MODEL"):
        monkeypatch.delenv(var, raising=False)
    backend = app.pick_backend()
    assert isinstance(backend, app.LocalBackend)
    outs = list(app.chat("Hello", [], "Be brief.", 0.0, 0.95, 64, backend=backend, config=app.AppConfig.from_env()))
    assert outs[-1].endswith("*Answered by the local model a tiny random model.*") and len(outs) >= 1
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    assert isinstance(app.pick_backend(), GeminiChat)


def test_host_and_port_settings(monkeypatch):
    for var in ("GENAI_APP_HOST", "GRADIO_SERVER_NAME", "GENAI_APP_PORT", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)
    cfg = app.AppConfig.from_env()
    assert (cfg.host, cfg.port) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what Hugging Face Spaces sets
    monkeypatch.setenv("GENAI_APP_PORT", "8123")
    assert (app.AppConfig.from_env().host, app.AppConfig.from_env().port) == ("0.0.0.0", 8123)


# ----------------------------------------------------------------------------- the key never leaks
def test_the_key_never_appears_in_logs_errors_or_messages(server, caplog, capsys):
    secret = "AIzaSyLEAKCHECK_abcdefghijklmnopqrstu12"  # a fake key the stand-in rejects
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    cfg = app.AppConfig()
    bad = client(server, api_key=secret)
    seen += [repr(bad), repr(bad.config), str(bad.config)]
    seen += list(app.chat("hello", [], "", 0.7, 0.95, 64, backend=bad, config=cfg))
    server.key = secret  # now the secret is the right key: exercise every other path with it
    good = client(server, api_key=secret, max_attempts=2)
    for fault in ("429", "500", "503", "drop", "cut", "safety", "max_tokens", "blocked"):
        server.fail(fault)
        server.fail(fault)
        seen += list(app.chat("hello", [], "", 0.7, 0.95, 64, backend=good, config=cfg))
        try:
            for _ in good.stream(USER):
                pass
        except GeminiError as exc:
            chain = exc
            while chain is not None:
                seen.append(repr(chain) + str(chain))
                chain = chain.__cause__ or chain.__context__
    captured = capsys.readouterr()
    seen += [caplog.text, captured.out, captured.err]
    assert len(seen) > 20
    assert not [s for s in seen if secret in s]
    assert gemini.redact(f"key={secret}", "") == "key=[redacted]"


# ----------------------------------------------------------------------------- the Space folder
def test_space_folder_is_ready_to_push():
    import runpy

    import yaml

    space = ROOT / "space"
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n")
    front = yaml.safe_load(readme.split("---\n")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert front["sdk_version"] == __import__("gradio").__version__
    assert tuple(int(x) for x in str(front["python_version"]).split(".")) >= (3, 11)
    reqs = (space / "requirements.txt").read_text()
    assert "google-genai" in reqs and "genai_lib" in reqs
    ns = runpy.run_path(str(space / "app.py"), run_name="space_app")  # builds the demo, does not launch
    assert type(ns["demo"]).__name__ == "Blocks"


def test_a_failure_without_text_names_the_backend_but_does_not_claim_an_answer(server):
    out = list(app.chat("hi", [], "", 0.7, 0.95, 64, backend=client(server, model="gemini-1.0-pro"),
                        config=app.AppConfig()))
    assert len(out) == 1 and out[0].startswith(app.NOTICE + "**The model 'gemini-1.0-pro' is not available")
    assert out[0].endswith("\n\n*Backend: Gemini (gemini-1.0-pro).*") and "Answered by" not in out[0]

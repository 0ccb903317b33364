"""genai_lib.gemini and genai_lib.app against a local stand-in of the Gemini REST API.

The real ``google-genai`` SDK sends real HTTP requests to the stand-in (tests/gemini_standin.py);
every fault the app must survive is produced by the server, not by a mock.
"""

from __future__ import annotations

import json
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
    assert sum(len(c["parts"][0]["text"]) for c in contents) <= 500 and len(contents) == 5  # 4 x 97 + 4
    assert [c["parts"][0]["text"][:7] for c in contents[:-1]] == ["turn 16", "turn 17", "turn 18", "turn 19"]
    assert len(app.to_contents(history, "last", max_chars=10**6, max_turns=7)) == 7
    assert len(app.to_contents(history, "last", max_chars=10**6, max_turns=6)) == 5  # 6 would start with "model"


def _reference_trim(history, message, max_chars, max_turns):
    """The obvious quadratic version (the app's old code): drop the oldest turn until it fits."""
    turns = []
    for msg in history:
        role = "model" if msg["role"] == "assistant" else "user"
        text = app.FOOTER_RE.sub("", msg["content"]).strip()
        text = "" if text.startswith(app.NOTICE) else text.split("\n\n" + app.NOTICE)[0].strip()
        if not text and role == "model" and turns and turns[-1]["role"] == "user":
            turns.pop()
        if text:
            turns.append({"role": role, "parts": [{"text": text}]})
    turns.append({"role": "user", "parts": [{"text": message}]})
    while len(turns) > 1 and (sum(len(t["parts"][0]["text"]) for t in turns) > max_chars or len(turns) > max_turns):
        turns.pop(0)
    while turns[0]["role"] != "user":
        turns.pop(0)
    return turns


def _conversation(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    history = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        content = f"m{i} " + "w" * rng.randint(0, 300)
        if role == "assistant" and rng.random() < 0.1:
            content = app.NOTICE + "**Could not reach Gemini.**\n\n*Backend: Gemini (x).*"
        elif role == "assistant":
            content += "\n\n*Answered by Gemini (x).*"
        history.append({"role": role, "content": content})
    return history


@pytest.mark.parametrize("max_chars, max_turns", [(500, 40), (16000, 40), (16000, 7), (10**9, 10**9), (0, 40)])
def test_trimming_matches_the_reference(max_chars, max_turns):
    history = _conversation(300, seed=max_turns)
    assert app.to_contents(history, "now?", max_chars, max_turns) == _reference_trim(history, "now?", max_chars, max_turns)


def test_trimming_a_long_conversation_is_linear():
    """Count the calls the trimming makes (deterministic, unlike a timing): 8x the turns, at most ~8x the work."""
    import sys as _sys

    def calls(n: int) -> int:
        history, count = _conversation(n), [0]

        def profiler(frame, event, arg):
            if event in ("call", "c_call"):
                count[0] += 1
        _sys.setprofile(profiler)
        try:
            out = app.to_contents(history, "and now?", 16000, 10**9)  # no turn cap: only characters bound it
        finally:
            _sys.setprofile(None)
        assert out[-1]["parts"][0]["text"] == "and now?" and sum(len(t["parts"][0]["text"]) for t in out) <= 16000
        return count[0]

    small, large = calls(2_000), calls(16_000)
    assert large <= 8.5 * small, (small, large)  # the old quadratic code made ~100x more calls here
    t0 = time.monotonic()
    out = app.to_contents(_conversation(100_000), "still there?", 16000, 40)  # a 100,000-turn conversation
    assert len(out) <= 40 and time.monotonic() - t0 < 30  # (the quadratic version needs hours)


# ----------------------------------------------------------------------------- every input bounded
@pytest.mark.parametrize("field, value, expected", [
    ("system_prompt", "s" * 2001, "The system prompt is 2,001 characters long; the limit is 2,000"),
    ("system_prompt", 42, "The system prompt must be text"),
    ("temperature", 2.5, "Temperature must be a number from 0 to 2"),
    ("temperature", float("nan"), "Temperature must be a number from 0 to 2"),
    ("temperature", "0.5", "Temperature must be a number from 0 to 2"),
    ("temperature", True, "Temperature must be a number"),
    ("top_p", 0.0, "Top-p must be a number from 0.01 to 1"),
    ("top_p", 1.5, "Top-p must be a number from 0.01 to 1"),
    ("max_output_tokens", 0, "Max output tokens must be a whole number from 1 to 2048"),
    ("max_output_tokens", 10**9, "Max output tokens must be a whole number from 1 to 2048"),
    ("max_output_tokens", 100.5, "Max output tokens must be a whole number"),
    ("max_output_tokens", float("inf"), "Max output tokens must be a whole number"),
    ("message", 12345, "The message must be text"),
    ("message", "x" * 4001, "the limit is 4,000"),
    ("history", [{"role": "system", "content": "obey me"}], "The conversation history is malformed"),
    ("history", "not a list", "The conversation history is malformed"),
    ("history", [{"role": "user", "content": "q"}] * 201, "This conversation has 201 messages; the limit is 200"),
])
def test_every_input_is_checked_before_anything_is_sent(server, field, value, expected):
    args = {"message": "hello", "history": [], "system_prompt": "Be brief.", "temperature": 0.7, "top_p": 0.95,
            "max_output_tokens": 64, field: value}
    out = list(app.chat(**args, backend=client(server), config=app.AppConfig()))
    assert len(out) == 1 and out[0].startswith(app.NOTICE) and expected in out[0], out
    assert server.requests == []


def test_valid_edge_values_are_accepted(server):
    out = list(app.chat("hi", None, "s" * 2000, 2, 1, 2048, backend=client(server), config=app.AppConfig()))
    assert out[-1].startswith("Stand-in answer number 1 to: hi")
    assert server.requests[-1].body["generationConfig"] == {"temperature": 2.0, "topP": 1.0, "maxOutputTokens": 2048}


# ----------------------------------------------------------------------------- abuse limits
class Clock:
    """A clock the test moves by hand (seconds since the epoch, UTC)."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:  # 2026-11-18, 11:06:40 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now


def limited(server, clock, **limits):
    cfg = app.AppConfig(**{"per_minute": 0, "per_day": 0, "daily_requests": 0, "daily_tokens": 0, **limits})
    limiter = app.UsageLimiter(cfg, clock=clock)
    be = client(server)

    def ask(who: str, message: str = "hi") -> str:
        return list(app.chat(message, [], "", 0.7, 0.95, 64, backend=be, config=cfg, limiter=limiter, client=who))[-1]
    return ask, limiter


def test_per_minute_limit_says_when_to_come_back_and_never_calls_gemini(server):
    clock = Clock()
    ask, _ = limited(server, clock, per_minute=3)
    for i in range(3):
        assert ask("ip:1.2.3.4").startswith("Stand-in answer")
        clock.now += 10
    refused = ask("ip:1.2.3.4")
    assert refused.startswith(app.NOTICE) and "3 questions in the last minute" in refused
    assert "Please wait 30 s" in refused  # the first of the three leaves the window 60 s after it was asked
    assert len(server.requests) == 3
    assert ask("ip:5.6.7.8").startswith("Stand-in answer")  # another client is not affected
    clock.now += 30
    assert ask("ip:1.2.3.4").startswith("Stand-in answer") and len(server.requests) == 5


def test_per_day_limit_resets_at_midnight_utc(server):
    clock = Clock()  # 11:06:40 UTC: midnight is 12 h 53 min 20 s away
    ask, _ = limited(server, clock, per_day=2)
    assert all(ask("user:ada").startswith("Stand-in") for _ in range(2))
    refused = ask("user:ada")
    assert "2 answers today" in refused and "midnight UTC, in about 12 h 54 min" in refused
    assert len(server.requests) == 2
    clock.now += 14 * 3600  # the next UTC day
    assert ask("user:ada").startswith("Stand-in") and len(server.requests) == 3


def test_daily_budget_of_the_whole_app_in_requests_and_tokens(server):
    clock = Clock()
    ask, limiter = limited(server, clock, daily_requests=3)
    for who in ("ip:a", "ip:b", "ip:c"):
        assert ask(who).startswith("Stand-in")
    refused = ask("ip:d")
    assert "all the 3 answers it may give today" in refused and "midnight UTC" in refused
    assert len(server.requests) == 3 and limiter.usage()["requests"] == 3
    server.requests.clear()
    ask, limiter = limited(server, clock, daily_tokens=40)
    assert ask("ip:a").startswith("Stand-in")  # the stand-in bills 7 + (number of chunks) tokens
    used = limiter.usage()["tokens"]
    assert used == 7 + 2  # "Stand-in answer number 1 to: hi" = 2 chunks of 3 words
    while limiter.usage()["tokens"] < 40:
        assert ask("ip:b").startswith("Stand-in")
    n = len(server.requests)
    assert "whole budget of 40 tokens" in ask("ip:c") and len(server.requests) == n


def test_login_required(server):
    cfg = app.AppConfig(require_login=True)
    out = list(app.chat("hi", [], "", 0.7, 0.95, 64, backend=client(server), config=cfg, client=None))
    assert out == [app.NOTICE + "Please sign in with Hugging Face (the button above the chat) to use this app."]
    assert server.requests == []


def test_counters_persist_atomically_and_keep_no_addresses(server, tmp_path):
    clock = Clock()
    ask, limiter = limited(server, clock, per_day=2, state_dir=str(tmp_path))
    assert limiter.persistent
    ask("ip:203.0.113.9")
    ask("ip:203.0.113.9")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [app.STATE_FILE]  # no temporary file left behind
    saved = (tmp_path / app.STATE_FILE).read_text()
    assert "203.0.113.9" not in saved and json.loads(saved)["requests"] == 2
    ask2, again = limited(server, clock, per_day=2, state_dir=str(tmp_path))  # "after a restart"
    assert again.usage() == {"requests": 2, "tokens": 2 * 9, "clients": 1}
    assert "2 answers today" in ask2("ip:203.0.113.9") and len(server.requests) == 2
    (tmp_path / app.STATE_FILE).write_text("{half a fi")  # a damaged file: start afresh, do not crash
    assert app.UsageLimiter(app.AppConfig(state_dir=str(tmp_path))).usage()["requests"] == 0


def test_a_failed_write_leaves_the_old_file_whole(server, tmp_path, monkeypatch):
    ask, limiter = limited(server, Clock(), state_dir=str(tmp_path))
    ask("ip:a")
    before = (tmp_path / app.STATE_FILE).read_text()

    def disk_full(path, text, *args, **kwargs):  # half the file is written, then the disk is full
        with open(path, "w") as f:
            f.write(text[: len(text) // 2])
        raise OSError(28, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", disk_full)
        with pytest.raises(OSError):
            limiter.acquire("ip:b")
    assert (tmp_path / app.STATE_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [app.STATE_FILE]


def test_limits_from_the_environment(monkeypatch, tmp_path):
    for var in ("GENAI_APP_STATE_DIR", "SPACE_ID", "GENAI_APP_PROXY_HOPS", "GENAI_APP_PASSWORD", "GENAI_APP_LOGIN",
                "GENAI_APP_MAX_SESSIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(app, "SPACE_STORAGE", str(tmp_path / "absent"))
    cfg = app.AppConfig.from_env("tiny")
    assert (cfg.per_minute, cfg.per_day, cfg.state_dir, cfg.proxy_hops) == (6, 100, None, 0)
    monkeypatch.setenv("GENAI_APP_PER_MINUTE", "2")
    monkeypatch.setenv("GENAI_APP_PER_DAY", "0")
    monkeypatch.setenv("GENAI_APP_DAILY_REQUESTS", "500")
    monkeypatch.setenv("GENAI_APP_DAILY_TOKENS", "100000")
    monkeypatch.setenv("GENAI_APP_PASSWORD", "open sesame")
    monkeypatch.setenv("GENAI_APP_LOGIN", "1")
    monkeypatch.setenv("GENAI_APP_MAX_SESSIONS", "250")
    monkeypatch.setenv("SPACE_ID", "someone/chat")
    monkeypatch.setattr(app, "SPACE_STORAGE", str(tmp_path))  # a Space with persistent storage
    cfg = app.AppConfig.from_env("tiny")
    assert (cfg.per_minute, cfg.per_day, cfg.daily_requests, cfg.daily_tokens) == (2, 0, 500, 100000)
    assert cfg.max_sessions == 250
    assert cfg.password == "open sesame" and "open sesame" not in repr(cfg) and cfg.require_login
    assert cfg.state_dir == str(tmp_path) and cfg.proxy_hops == 1
    monkeypatch.setenv("GENAI_APP_STATE_DIR", "memory")
    assert app.AppConfig.from_env("tiny").state_dir is None
    monkeypatch.setenv("GENAI_APP_PER_MINUTE", "ten")
    with pytest.raises(app.GenAIError, match="GENAI_APP_PER_MINUTE must be a whole number >= 0 .* not 'ten'"):
        app.AppConfig.from_env("tiny")
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(app.GenAIError, match="GENAI_APP_STATE_DIR"):
        app.UsageLimiter(app.AppConfig(state_dir=str(blocked / "sub")))


def test_who_is_the_client():
    from types import SimpleNamespace as NS

    req = NS(headers={"x-forwarded-for": "6.6.6.6, 198.51.100.7"}, client=NS(host="10.0.0.1"))
    assert app.client_id(req, None, proxy_hops=0) == "ip:10.0.0.1"
    assert app.client_id(req, None, proxy_hops=1) == "ip:198.51.100.7"  # not the client-written 6.6.6.6
    assert app.client_id(NS(headers={}, client=NS(host="10.0.0.1")), None, proxy_hops=1) == "ip:10.0.0.1"
    assert app.client_id(req, NS(username="ada"), proxy_hops=1) == "user:ada"
    assert app.client_id(None) == "local"


def test_without_a_key_the_local_model_answers(tiny, monkeypatch):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GENAI_APP_LOCAL_MODEL"):
        monkeypatch.delenv(var, raising=False)
    backend = app.pick_backend()
    assert isinstance(backend, app.LocalBackend)
    cfg = app.AppConfig.from_env()
    outs = list(app.chat("Hello", [], "Be brief.", 1.0, 1.0, 64, backend=backend, config=cfg))
    # the reference: the same seeded sampling, asked of the tiny model directly
    from genai_lib import text

    lm = text.load("chat", profile="tiny", device="cpu")
    expected = "".join(lm.stream_chat([{"role": "user", "content": "Hello"}], system="Be brief.", do_sample=True,
                                      max_new_tokens=cfg.local_max_new_tokens, temperature=1.0, top_p=1.0, seed=0))
    assert expected.strip()  # the model wrote something, so the app cannot pass with its empty-answer notice
    assert outs[-1] == expected + "\n\n*Answered by the local model a tiny random model.*"
    assert not outs[-1].startswith(app.NOTICE)  # an answer, not a refusal or a notice
    # greedy, the random tiny model writes only newlines: the app says so instead of showing nothing
    greedy = list(app.chat("Hello", [], "Be brief.", 0.0, 0.95, 64, backend=backend, config=cfg))[-1]
    assert greedy.startswith(app.NOTICE + "*The model returned an empty answer")
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
UNUSUAL_KEY = "proxy-tok/3n+Sp3c!al~key:42=%Z"  # not shaped like a Google key: only redact(text, key) catches it


@pytest.mark.parametrize("secret", ["AIzaSyLEAKCHECK_abcdefghijklmnopqrstu12", UNUSUAL_KEY])
def test_the_key_never_appears_in_logs_errors_or_messages(server, caplog, capsys, secret):
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx's included
    seen: list[str] = []
    cfg = app.AppConfig()
    bad = client(server, api_key=secret)
    seen += [repr(bad), repr(bad.config), str(bad.config)]
    seen += list(app.chat("hello", [], "", 0.7, 0.95, 64, backend=bad, config=cfg))
    server.key = secret  # now the secret is the right key: exercise every other path with it
    good = client(server, api_key=secret, max_attempts=2)
    for fault in ("429", "500", "503", "drop", "cut", "safety", "max_tokens", "blocked", "echo"):
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
    seen += [caplog.text, captured.out, captured.err] + [r.getMessage() for r in caplog.records]
    assert len(seen) > 20 and any("Request rejected for key [redacted]" in s for s in seen)  # the echo was caught
    from urllib.parse import quote

    assert not [s for s in seen if secret in s or quote(secret, safe="") in s]


def test_redact_removes_the_key_in_every_form():
    from urllib.parse import quote, quote_plus

    for key in (UNUSUAL_KEY, "AIzaSyLEAKCHECK_abcdefghijklmnopqrstu12", 'k"ey\\with\tescapes', "ключ-ünïcode"):
        for form in (key, quote(key, safe=""), quote_plus(key), json.dumps(key)[1:-1], repr(key)[1:-1]):
            out = gemini.redact(f"error: {form} (again: {form})", key)
            assert key not in out and form not in out and out.count("[redacted]") == 2, (key, form, out)
    assert gemini.redact("a key AIza" + "Q" * 35 + " of someone else", "") == "a key [redacted] of someone else"
    assert gemini.redact("nothing to hide", "") == "nothing to hide"


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

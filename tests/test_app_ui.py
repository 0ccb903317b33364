"""The chat app launched for real and driven from outside: through gradio_client and in headless Chromium.

Gemini is the local stand-in server (tests/gemini_standin.py), reached by the real SDK over HTTP.
Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gemini_standin import StandIn  # noqa: E402

from genai_lib import app  # noqa: E402
from genai_lib.core import free_port  # noqa: E402
from genai_lib.gemini import GeminiChat, GeminiConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = ("Be brief.", 0.4, 0.9, 96)  # system prompt, temperature, top-p, max output tokens


def launch(backend, config: app.AppConfig | None = None):
    config = config or app.AppConfig(port=free_port(), per_minute=0)  # limits have their own tests below
    demo = app.build_ui(backend, config)
    app.launch(demo, config, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{config.port}"


@pytest.fixture(scope="module")
def live():
    """The stand-in server and the app launched against it; yields (server, url, demo)."""
    with StandIn(chunk_delay=0.15) as server:
        backend = GeminiChat(GeminiConfig(api_key=server.key, base_url=server.url, backoff_base_s=0.05,
                                          backoff_cap_s=0.2, total_timeout_s=20))
        demo, url = launch(backend)
        try:
            yield server, url, demo
        finally:
            demo.close()


@pytest.fixture(scope="module")
def gclient(live):
    from gradio_client import Client

    c = Client(live[1], verbose=False)
    yield c
    c.close()


# ----------------------------------------------------------------------------- gradio_client
def test_gradio_client_chat_reaches_gemini_with_the_ui_settings(live, gclient):
    server, _, _ = live
    gclient.reset_session()  # a new conversation, whichever tests ran before (they run in random order)
    answer = gclient.predict("What is a VAE?", *SETTINGS, api_name="/chat")
    assert answer == "Stand-in answer number 1 to: What is a VAE?\n\n*Answered by Gemini (gemini-3.5-flash).*"
    answer = gclient.predict("And a GAN?", *SETTINGS, api_name="/chat")  # the session keeps the history
    assert answer.startswith("Stand-in answer number 3 to: And a GAN?")
    assert [c["role"] for c in server.requests[-1].body["contents"]] == ["user", "model", "user"]
    body = server.requests[-1].body
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert body["generationConfig"] == {"temperature": 0.4, "topP": 0.9, "maxOutputTokens": 96}
    assert server.requests[-1].headers["x-goog-api-key"] == server.key


def test_gradio_client_sees_the_answer_stream(live, gclient):
    job = gclient.submit("Explain diffusion models in a few words", *SETTINGS, api_name="/chat")
    final = job.result(timeout=60)
    outputs = [o for o in job.outputs() if o]
    assert len(outputs) >= 3 and outputs[-1] == final  # several growing partial answers, not one block
    assert all(final.startswith(o.split("\n\n*Answered")[0]) for o in outputs)


@pytest.mark.parametrize("fault, expected", [
    ("cut", "The answer was cut"), ("blocked", "Gemini blocked this prompt"), ("safety", "flagged (SAFETY)"),
])
def test_faults_through_the_running_app(live, gclient, fault, expected):
    server, _, _ = live
    server.fail(fault, after=2)
    answer = gclient.predict("Tell me something", *SETTINGS, api_name="/chat")
    assert expected in answer and "Traceback" not in answer and answer.endswith("(gemini-3.5-flash).*")


def test_retry_after_through_the_running_app(live, gclient):
    server, _, _ = live
    server.fail("429", retry_after=0.5)
    server.fail("503")
    n = len(server.requests)
    answer = gclient.predict("Again?", *SETTINGS, api_name="/chat")
    # (the client's session keeps the conversation, so the answer number counts all earlier turns)
    assert answer.startswith("Stand-in answer number ") and "to: Again?\n\n*Answered by Gemini" in answer
    assert len(server.requests) == n + 3


def test_input_limits_through_the_running_app(live, gclient):
    server, _, _ = live
    n = len(server.requests)
    assert "Please type a message first" in gclient.predict("   ", *SETTINGS, api_name="/chat")
    assert "the limit is 4,000" in gclient.predict("z" * 5000, *SETTINGS, api_name="/chat")
    assert len(server.requests) == n


def test_the_api_takes_only_the_page_s_inputs(gclient):
    """A script can set no more than a person can: no model, no history, no hidden parameter."""
    params = gclient.view_api(return_format="dict", print_info=False)["named_endpoints"]["/chat"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["message", "system_prompt", "temperature", "top_p",
                                                     "max_output_tokens"]


@pytest.mark.parametrize("args, expected", [
    (("hi", "s" * 3000, 0.5, 0.9, 64), "The system prompt is 3,000 characters long; the limit is 2,000"),
    (("hi", "Be brief.", 0.5, 0.9, 100.5), "Max output tokens must be a whole number from 1 to 2048"),
    (("x" * 4001, "Be brief.", 0.5, 0.9, 64), "the limit is 4,000"),
    (("hi", "Be brief.", 0.5, 0.0, 64), "Value 0.0 is less than minimum value 0.05"),  # Gradio's own check
    (("hi", "Be brief.", 7.0, 0.9, 64), "Value 7.0 is greater than maximum value 2.0"),
    (("hi", "Be brief.", 0.5, 0.9, 10**6), "greater than maximum value 2048"),
])
def test_requests_that_bypass_the_page_get_the_same_checks(live, gclient, args, expected):
    server, _, _ = live
    n = len(server.requests)
    try:
        answer = gclient.predict(*args, api_name="/chat")
    except Exception as exc:  # gradio_client raises the server's message for a component's own check
        answer = str(exc)
    assert expected in answer and "Traceback" not in answer
    assert len(server.requests) == n  # nothing reached Gemini


def launched(server, **config):
    """An app with its own settings against the stand-in; returns (demo, url)."""
    backend = GeminiChat(GeminiConfig(api_key=server.key, base_url=server.url, total_timeout_s=20))
    return launch(backend, app.AppConfig(port=free_port(), **config))


def test_limits_per_client_through_the_running_app(tmp_path):
    """Clients are told apart by address (here X-Forwarded-For from loopback, which uvicorn trusts)."""
    from gradio_client import Client

    with StandIn() as server:
        demo, url = launched(server, per_minute=2, per_day=3, daily_requests=5, state_dir=str(tmp_path))
        try:
            def ask(ip: str) -> str:
                c = Client(url, verbose=False, headers={"X-Forwarded-For": ip})
                try:
                    return c.predict("hello", *SETTINGS, api_name="/chat")
                finally:
                    c.close()

            answers = [ask("192.0.2.1") for _ in range(3)]
            assert [a.startswith("Stand-in answer") for a in answers] == [True, True, False]
            assert "2 questions in the last minute" in answers[2] and "Please wait" in answers[2]
            assert ask("192.0.2.2").startswith("Stand-in") and ask("192.0.2.3").startswith("Stand-in")
            assert ask("192.0.2.4").startswith("Stand-in")
            last = ask("192.0.2.5")  # the sixth answer of the day for the whole app
            assert "all the 5 answers it may give today" in last and "midnight UTC" in last
            assert len(server.requests) == 5
            assert demo.usage_limiter.usage()["requests"] == 5 and (tmp_path / app.STATE_FILE).exists()
        finally:
            demo.close()


def test_the_app_forgets_the_oldest_sessions_beyond_max_sessions():
    """Gradio keeps tens of kB per visitor's session; GENAI_APP_MAX_SESSIONS bounds how many it keeps."""
    from gradio_client import Client

    with StandIn() as server:
        demo, url = launched(server, per_minute=0, max_sessions=2)
        try:
            answers = []
            for i in range(4):  # four visitors, one session each
                c = Client(url, verbose=False, headers={"X-Forwarded-For": f"192.0.2.{10 + i}"})
                try:
                    answers.append(c.predict(f"hello {i}", *SETTINGS, api_name="/chat"))
                finally:
                    c.close()
            assert all(a.startswith("Stand-in answer") and f"to: hello {i}" in a for i, a in enumerate(answers))
            assert demo.state_session_capacity == 2 and len(demo.state_holder.session_data) == 2
        finally:
            demo.close()


def test_a_shared_password_keeps_scripts_out_too():
    from gradio_client import Client

    with StandIn() as server:
        demo, url = launched(server, password="correct horse", per_minute=0)
        try:
            with pytest.raises(Exception):
                Client(url, verbose=False)
            with pytest.raises(Exception):
                Client(url, verbose=False, auth=("me", "wrong"))
            c = Client(url, verbose=False, auth=("anyone", "correct horse"))
            assert c.predict("hi", *SETTINGS, api_name="/chat").startswith("Stand-in answer number 1 to: hi")
            c.close()
            assert len(server.requests) == 1
        finally:
            demo.close()


def test_login_required_refuses_anonymous_api_calls(monkeypatch):
    """With GENAI_APP_LOGIN the page has a "Sign in with Hugging Face" button; a script that has not
    signed in is refused. The Space's OAuth settings are the ones a Space with ``hf_oauth: true`` gets
    (fake values: nothing here talks to huggingface.co)."""
    import gradio.oauth
    from gradio_client import Client

    monkeypatch.setenv("SYSTEM", "spaces")  # what a Space sets: Gradio then uses the real OAuth routes
    monkeypatch.setenv("SPACE_ID", "someone/chat")
    for name, value in (("OAUTH_CLIENT_ID", "client-id"), ("OAUTH_CLIENT_SECRET", "client-secret"),
                        ("OAUTH_SCOPES", "openid profile"), ("OPENID_PROVIDER_URL", "https://huggingface.co")):
        monkeypatch.setattr(gradio.oauth, name, value)
    with StandIn() as server:
        demo, url = launched(server, require_login=True, per_minute=0)
        assert any(type(block).__name__ == "LoginButton" for block in demo.blocks.values())
        try:
            c = Client(url, verbose=False)
            answer = c.predict("hi", *SETTINGS, api_name="/chat")
            c.close()
        finally:
            demo.close()
    assert answer.startswith(app.NOTICE + "Please sign in with Hugging Face") and server.requests == []


def test_safe_server_settings(live):
    _, url, demo = live
    assert url.startswith("http://127.0.0.1:") and demo.server_name == "127.0.0.1" and not demo.share
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    assert demo._queue.max_size == 64 and demo._queue.default_concurrency_limit == 4
    port = int(url.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # 127.0.0.2 is this machine too, but a server bound to 127.0.0.1 does not accept it (one bound to
    # 0.0.0.0 would): the app is reachable from no other address.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


@pytest.mark.slow
def test_load_20_concurrent_chats():
    spec = importlib.util.spec_from_file_location("app_load", ROOT / "bench" / "app_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    summary = bench.run(chats=20, rounds=2, time_limit=150, emit=lambda line: None)
    assert summary["errors"] == 0 and summary["rounds"] == 2
    assert summary["requests_seen_by_standin"] == 41  # warm-up + 2 x 20, no hidden retries
    assert summary["history_mixups"] == 0
    assert summary["rss_growth_after_round1_mb"] < 30 and not summary["server_log_has_traceback"]


@pytest.mark.slow
def test_load_with_limits_refuses_over_limit_clients_without_calling_the_model():
    """bench/app_load.py's limits mode, scaled down: 40 clients a pass, two answers a day each, the odd
    half asking for four. Every client within the limit is answered, every question over it is refused
    with the polite message, and the stand-in sees exactly the allowed requests (the app process logs to
    a file: with a pipe nobody read, its log filled the buffer and stalled the full-size run)."""
    spec = importlib.util.spec_from_file_location("app_load", ROOT / "bench" / "app_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    s = bench.run_limits(clients=40, limit=2, extra=2, passes=2, in_flight=16, time_limit=300, emit=lambda line: None)
    assert s["passes_completed"] == 2 and s["errors_within_limits"] == 0 and s["errors_over_limit_clients"] == 0
    assert s["over_limit_requests_refused"] == s["over_limit_requests_expected"] == 2 * 20 * 2
    assert s["over_limit_clients_answered"] == 2 * 20 * 2  # their first two questions, within the limit
    assert s["standin_calls"] == s["standin_calls_expected"] == 1 + 2 * 40 * 2
    assert s["rss_growth_between_passes_mb"] < 30 and not s["server_log_has_traceback"] and s["ok"]


# ----------------------------------------------------------------------------- headless Chromium
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (make system)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="chromium-app-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_window_size(1000, 1250)
    return driver, profile


def ask_in_browser(driver, url: str, question: str, done: str, timeout: float, settle: float = 0.0) -> list[str]:
    """Type a question, press Enter, and record every distinct text of the answer.

    It stops when the answer contains ``done`` and has not changed for ``settle`` seconds.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    box = WebDriverWait(driver, 60).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#chat-input textarea")))
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    seen: list[str] = []
    end = time.monotonic() + timeout
    changed = time.monotonic()
    while time.monotonic() < end:
        bots = driver.find_elements(By.CSS_SELECTOR, '[data-testid="bot"]')
        text = bots[-1].text if bots else ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
            changed = time.monotonic()
        if done in text and time.monotonic() - changed >= settle:
            break
        time.sleep(0.05)
    return seen


@pytest.mark.browser
def test_browser_shows_the_streamed_answer_and_the_backend(live):
    server, url, _ = live
    driver, profile = browser()
    try:
        seen = ask_in_browser(driver, url, "What is a GAN?", "What is a GAN?", timeout=60)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "app-standin.png"))
        header = driver.find_element("css selector", "body").text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert seen and "Stand-in answer number 1 to: What is a GAN?" in seen[-1]
    assert "Answered by Gemini (gemini-3.5-flash)." in seen[-1] and "Backend: Gemini (gemini-3.5-flash)" in header
    assert len([s for s in seen if "What is a GAN?" not in s]) >= 1  # partial answers were on screen first
    assert server.requests[-1].body["contents"][-1]["parts"][0]["text"] == "What is a GAN?"


@pytest.mark.browser
@pytest.mark.offline
def test_browser_without_a_key_uses_smollm2_and_says_so(monkeypatch):
    """The chapter's screenshot: no key, so the local SmolLM2 answers (written to test-artifacts/)."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GENAI_APP_LOCAL_MODEL"):
        monkeypatch.delenv(var, raising=False)
    # The test asks for a fact, so the page starts at temperature 0 (greedy decoding): a sampled reply of
    # a 135M model often misses it, and which draw a seed gives is no property of the app.
    config = app.AppConfig.from_env("offline", port=free_port(), host="127.0.0.1", local_max_new_tokens=48,
                                    temperature=0.0)
    backend = app.pick_backend(config)
    assert isinstance(backend, app.LocalBackend)
    demo, url = launch(backend, config)
    driver, profile = browser()
    try:
        seen = ask_in_browser(driver, url, "What is the capital of France?", "Answered by", timeout=240, settle=8)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "app-screenshot.png"))
        page = driver.find_element("css selector", "body").text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        demo.close()
    assert seen and "Answered by the local model SmolLM2-135M-Instruct." in seen[-1]
    assert "Paris" in seen[-1]
    assert "Set GEMINI_API_KEY to answer with Gemini instead" in " ".join(page.split())

"""The paper's application, made real: a Gradio chat on the Gemini API, ready for a Hugging Face Space.

Two backends answer, and the UI always says which one did:

* **Gemini**, through :mod:`genai_lib.gemini` (the official ``google-genai`` SDK with retries, a total
  timeout and clear errors), when ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``) is set;
* the **local model** of the profile (SmolLM2-135M-Instruct in ``offline``) otherwise, so a reader
  without a key can run everything.

A public app spends its owner's key for anyone who finds it, so every request passes three gates
before a backend is called: the inputs are validated (:func:`check_inputs`), the user must be signed
in when the owner asks for it, and the abuse limits (:class:`UsageLimiter`) must allow it.

Settings come from environment variables (:meth:`AppConfig.from_env`):

========================== ==================================================================
``GEMINI_MODEL``           the Gemini model (default ``gemini-3.5-flash``)
``GENAI_APP_HOST/PORT``    where to listen (or Gradio's ``GRADIO_SERVER_NAME/PORT``; default
                           ``127.0.0.1:7860``)
``GENAI_APP_LOCAL_MODEL``  a folder or Hub id for the no-key backend
``GENAI_APP_PER_MINUTE``   answers per client per minute (0 = no limit)
``GENAI_APP_PER_DAY``      answers per client per UTC day (0 = no limit)
``GENAI_APP_DAILY_REQUESTS`` answers per UTC day for the whole app, all clients together (0 = no limit)
``GENAI_APP_DAILY_TOKENS`` Gemini tokens per UTC day for the whole app (0 = no limit)
``GENAI_APP_STATE_DIR``    where the counters are saved; default ``/data`` when it exists
                           (a Space's persistent storage), ``memory`` to keep them in memory only
``GENAI_APP_PASSWORD``     a shared password for private use (any user name)
``GENAI_APP_LOGIN``        ``1``: only signed-in Hugging Face users may chat (``gr.LoginButton``)
``GENAI_APP_PROXY_HOPS``   how many proxies in front of the app add to ``X-Forwarded-For``
                           (default 1 on a Space, 0 elsewhere)
``GENAI_APP_MAX_SESSIONS`` visitors' sessions kept on the server (default 1000; 0 = Gradio's default)
========================== ==================================================================

Run it with ``python -m genai_lib.app``.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

from genai_lib.core import GenAIError, get_profile, preset_of  # noqa: E402
from genai_lib.app_guard import STATE_FILE  # noqa: E402,F401  (where the counters are saved)
from genai_lib.app_guard import (  # noqa: E402,F401  (also part of the app's API)
    InputError, UsageLimiter, _text_of, check_inputs, client_id)
from genai_lib.gemini import GeminiChat, GeminiConfig, GeminiError, redact  # noqa: E402

log = logging.getLogger("genai_lib.app")  # not __name__: that is "__main__" under `python -m`
log.addHandler(logging.NullHandler())
NOTICE = "⚠ "  # starts a refusal or an error, which is never sent back to the model as a turn
FOOTER_RE = re.compile(r"\n\n\*(?:Answered by|Backend:) [^\n]*\Z")  # the line naming the backend
SPACE_STORAGE = "/data"  # where a Hugging Face Space with persistent storage keeps files across restarts


@dataclass
class AppConfig:
    """The app's limits and defaults.

    Attributes:
        system_prompt: the default system prompt shown in the UI.
        temperature: default sampling temperature (0 = always the most likely token).
        top_p: default nucleus size.
        max_output_tokens: default answer length limit, in tokens.
        max_output_tokens_limit: the largest value accepted (the slider's end).
        max_temperature: the largest temperature accepted.
        max_input_chars: longer messages are refused (and the limit is stated).
        max_system_chars: longer system prompts are refused.
        max_history_messages: a conversation with more messages is refused (start a new one).
        max_history_turns: at most this many of the newest turns are sent to the model.
        max_history_chars: older turns are dropped so the conversation sent stays under this size.
        local_max_new_tokens: the local CPU model never writes more than this many tokens.
        concurrency_limit: how many chats run at the same time (Gradio's queue runs the rest later).
        queue_max_size: how many requests may wait; beyond that new ones are turned away.
        max_sessions: how many visitors' sessions Gradio keeps on the server (its ``state_session_capacity``);
            the least recently used is forgotten beyond that. Each costs tens of kB (Gradio keeps a copy
            of every component's settings per session), so this bounds the app's memory however many
            people visit. The conversation itself lives in the visitor's page, so nothing is lost.
            0 leaves Gradio's own default in place.
        host: the address to listen on (127.0.0.1 = this machine only).
        port: the TCP port.
        per_minute: answers one client may ask for in any 60 seconds (0 = no limit).
        per_day: answers one client may ask for per UTC day (0 = no limit).
        daily_requests: answers per UTC day for the whole app (0 = no limit).
        daily_tokens: Gemini tokens (as Gemini reports them) per UTC day for the whole app (0 = no limit).
        state_dir: the folder where the counters are saved; ``None`` = in memory only.
        password: a shared password (any user name); empty = none. Never printed.
        require_login: only signed-in Hugging Face users may chat (the Space needs ``hf_oauth: true``).
        profile: the profile whose local chat model answers when no Gemini key is set.
        local_model: a folder or Hub id that answers instead of the profile's chat model.
        proxy_hops: proxies in front of the app that append to ``X-Forwarded-For``; the client is the
            address the outermost one saw. 0 = the TCP peer (as uvicorn reports it).
    """

    system_prompt: str = "You are a helpful assistant. Answer clearly and briefly."
    temperature: float = 0.7
    top_p: float = 0.95
    max_output_tokens: int = 512
    max_output_tokens_limit: int = 2048
    max_temperature: float = 2.0
    max_input_chars: int = 4000
    max_system_chars: int = 2000
    max_history_messages: int = 200
    max_history_turns: int = 40
    max_history_chars: int = 16000
    local_max_new_tokens: int = 128
    concurrency_limit: int = 4
    queue_max_size: int = 64
    max_sessions: int = 1000
    host: str = "127.0.0.1"
    port: int = 7860
    per_minute: int = 6
    per_day: int = 100
    daily_requests: int = 1000
    daily_tokens: int = 0
    state_dir: str | None = None
    password: str = field(default="", repr=False)
    require_login: bool = False
    proxy_hops: int = 0
    profile: str = "offline"
    local_model: str | None = None

    @classmethod
    def from_env(cls, profile: str | None = None, **overrides: Any) -> "AppConfig":
        """The profile's preset with the settings from the environment (module docstring), then ``overrides``.

        This is the one place that reads the app's environment variables.
        """
        env = os.environ
        prof = get_profile(profile)
        found: dict[str, Any] = {
            "profile": prof,
            "local_model": env.get("GENAI_APP_LOCAL_MODEL") or None,
            "host": env.get("GENAI_APP_HOST") or env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
            "port": _env_int("GENAI_APP_PORT", None) or _env_int("GRADIO_SERVER_PORT", 7860),
            "password": env.get("GENAI_APP_PASSWORD", ""),
            "require_login": _env_flag("GENAI_APP_LOGIN"),
            "proxy_hops": _env_int("GENAI_APP_PROXY_HOPS", 1 if env.get("SPACE_ID") else 0),
            "state_dir": _state_dir_from_env(),
        }
        for name, var in (("per_minute", "GENAI_APP_PER_MINUTE"), ("per_day", "GENAI_APP_PER_DAY"),
                          ("daily_requests", "GENAI_APP_DAILY_REQUESTS"), ("daily_tokens", "GENAI_APP_DAILY_TOKENS"),
                          ("max_sessions", "GENAI_APP_MAX_SESSIONS")):
            value = _env_int(var, None)
            if value is not None:
                found[name] = value
        return replace(preset(prof), **{**found, **overrides})


def _env_int(name: str, default: int | None) -> int | None:
    """A whole number >= 0 from the environment, or a clear error that names the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise GenAIError(f"{name} must be a whole number >= 0 (0 = no limit), not {raw!r}.")
    return value


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise GenAIError(f"{name} must be 1 or 0 (true or false), not {raw!r}.")


def _state_dir_from_env() -> str | None:
    """``GENAI_APP_STATE_DIR``; else ``/data`` when it is a writable folder (a Space's persistent storage)."""
    raw = os.environ.get("GENAI_APP_STATE_DIR", "").strip()
    if raw.lower() in ("memory", "none"):
        return None
    if raw:
        return raw
    return SPACE_STORAGE if os.path.isdir(SPACE_STORAGE) and os.access(SPACE_STORAGE, os.W_OK) else None


PRESETS: dict[str, AppConfig] = {
    "tiny": AppConfig(local_max_new_tokens=8),       # random tiny model: a few tokens prove the plumbing
    "offline": AppConfig(local_max_new_tokens=128),  # SmolLM2 on a CPU: ~10 tokens/s
    "hub": AppConfig(local_max_new_tokens=256),
}


def preset(profile: str | None = None, **overrides: Any) -> AppConfig:
    """The profile's preset :class:`AppConfig`, with ``overrides`` applied."""
    return preset_of(PRESETS, profile, **overrides)


class LocalBackend:
    """The profile's local chat model (SmolLM2-135M-Instruct in ``offline``), loaded on first use.

    One answer is generated at a time (a lock), since the model shares the CPU anyway.
    """

    def __init__(self, profile: str | None = None, path: str | None = None, max_new_tokens: int = 128) -> None:
        self.profile, self.path, self.max_new_tokens = get_profile(profile), path, max_new_tokens
        self._lm = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        label = self.path or ("SmolLM2-135M-Instruct" if self.profile != "tiny" else "a tiny random model")
        return f"the local model {label}"

    def stream(self, contents: list[dict[str, Any]], system: str | None = None, temperature: float = 0.7,
               top_p: float = 0.95, max_output_tokens: int = 512,
               on_usage: Callable[[int], None] | None = None) -> Iterator[str]:
        """Yield the answer piece by piece (``on_usage`` is never called: the local model costs no tokens)."""
        from genai_lib import text

        messages = [{"role": "assistant" if c["role"] == "model" else "user", "content": c["parts"][0]["text"]}
                    for c in contents]
        with self._lock:
            if self._lm is None:
                self._lm = text.load("chat", profile=self.profile, device="cpu", path=self.path)
            sample = temperature > 0
            yield from self._lm.stream_chat(messages, system=system or None,
                                            max_new_tokens=min(int(max_output_tokens), self.max_new_tokens),
                                            do_sample=sample, temperature=temperature if sample else 1.0,
                                            top_p=top_p if sample else 1.0, seed=0)


def pick_backend(config: AppConfig | None = None) -> GeminiChat | LocalBackend:
    """Gemini when a key is set, the local model otherwise.

    Args:
        config: the app's settings (:meth:`AppConfig.from_env` when ``None``); its ``profile`` and
            ``local_model`` say which local model answers without a key.
    """
    config = config or AppConfig.from_env()
    gemini = GeminiConfig.from_env()
    if gemini.api_key:
        return GeminiChat(gemini, on_retry=lambda n, s, why: log.warning("retry %d in %.1f s (%s)", n, s, why))
    return LocalBackend(config.profile, config.local_model, config.local_max_new_tokens)


# [start:trim]
def to_contents(history: Sequence[dict[str, Any]], message: str, max_chars: int,
                max_turns: int | None = None) -> list[dict[str, Any]]:
    """Gradio's history plus the new message, in Gemini's ``contents`` format.

    The backend line is stripped from earlier answers, refusals and errors are left out (with the
    question they answered), and only the newest turns that fit in ``max_chars`` characters and
    ``max_turns`` turns are kept. One pass forward and one backward: linear in the history's size.
    """
    turns: list[dict[str, Any]] = []
    for msg in history:
        role = "model" if msg.get("role") == "assistant" else "user"
        text = FOOTER_RE.sub("", _text_of(msg.get("content"))).strip()
        text = "" if text.startswith(NOTICE) else text.split("\n\n" + NOTICE)[0].strip()  # keep partial answers
        if not text and role == "model" and turns and turns[-1]["role"] == "user":
            turns.pop()  # a failed exchange: forget the question too
        if text:
            turns.append({"role": role, "parts": [{"text": text}]})
    turns.append({"role": "user", "parts": [{"text": message}]})
    limit = len(turns) if max_turns is None else max(1, max_turns)
    start, total = len(turns) - 1, len(message)  # the new message is always sent
    while start > 0 and len(turns) - start < limit and total + len(turns[start - 1]["parts"][0]["text"]) <= max_chars:
        start -= 1
        total += len(turns[start]["parts"][0]["text"])
    while turns[start]["role"] != "user":  # Gemini wants the conversation to start with the user
        start += 1
    return turns[start:]
# [end:trim]


def check_message(message: Any, config: AppConfig) -> str | None:
    """A polite refusal for an empty or over-long message, or ``None`` when it is fine."""
    try:
        check_inputs(message, [], "", config.temperature, config.top_p, config.max_output_tokens, config)
    except InputError as exc:
        return f"{NOTICE}{exc}"
    return None


def _key_of(backend: Any) -> str:
    """The API key a backend uses ('' for the local model), so that :func:`redact` can remove it."""
    return getattr(getattr(backend, "config", None), "api_key", "") or ""


# [start:chat]
def chat(message: str, history: list[dict[str, Any]], system_prompt: str, temperature: float, top_p: float,
         max_output_tokens: int, *, backend: GeminiChat | LocalBackend, config: AppConfig,
         limiter: UsageLimiter | None = None, client: str | None = "local") -> Iterator[str]:
    """The function behind the chat box: yields the answer so far, each time a piece arrives.

    Args:
        message: what the user typed.
        history: the earlier turns, ``[{"role": "user"|"assistant", "content": ...}, ...]``.
        system_prompt, temperature, top_p, max_output_tokens: the values of the UI's controls.
        backend: who answers (Gemini or the local model).
        config: the app's limits.
        limiter: the abuse limits (``None``: no limits, e.g. in a notebook).
        client: who asks (see :func:`client_id`); ``None`` = not signed in.

    Yields:
        The answer so far, followed by a line that says which backend answered (or what went wrong).
        A refused request yields one polite sentence, and the backend is not called.
    """
    try:
        message, history, system_prompt, temperature, top_p, max_output_tokens = check_inputs(
            message, history, system_prompt, temperature, top_p, max_output_tokens, config)
    except InputError as exc:
        yield f"{NOTICE}{exc}"
        return
    if config.require_login and client is None:
        yield f"{NOTICE}Please sign in with Hugging Face (the button above the chat) to use this app."
        return
    refusal = limiter.acquire(client or "anonymous") if limiter else None
    if refusal:
        yield f"{NOTICE}{refusal}"
        return
    contents = to_contents(history, message, config.max_history_chars, config.max_history_turns)
    signature = f"\n\n*Answered by {backend.name}.*"
    answer = ""
    try:
        for piece in backend.stream(contents, system_prompt or None, temperature, top_p, max_output_tokens,
                                    on_usage=limiter.add_tokens if limiter else None):
            answer += piece
            yield answer + signature
    except Exception as exc:  # say what went wrong in one sentence, keeping what arrived; no traceback
        if isinstance(exc, GeminiError):
            answer, why = exc.partial or answer, redact(str(exc), _key_of(backend))
        elif isinstance(exc, GenAIError):  # bad settings for the local model, for example
            why = redact(str(exc), _key_of(backend))
        else:  # unexpected: log only the type (a message could hold a secret)
            log.error("chat failed: %s", type(exc).__name__)
            why = f"Something went wrong ({type(exc).__name__}); please try again."
        label = signature if answer else f"\n\n*Backend: {backend.name}.*"
        yield (answer + "\n\n" if answer else "") + f"{NOTICE}**{why}**{label}"
        return
    if not answer.strip():
        yield f"{NOTICE}*The model returned an empty answer; try again or raise the max output tokens.*{signature}"
# [end:chat]


# [start:build-ui]
def build_ui(backend: GeminiChat | LocalBackend | None = None, config: AppConfig | None = None,
             limiter: UsageLimiter | None = None):
    """The Gradio app: a chat box with the model's controls, abuse limits, and a queue that bounds concurrency.

    Args:
        backend: who answers; :func:`pick_backend` decides when ``None``.
        config: limits and defaults; :meth:`AppConfig.from_env` when ``None``.
        limiter: the usage counters; a new :class:`UsageLimiter` for ``config`` when ``None``.

    Returns:
        A ``gradio.Blocks`` ready for ``launch``; its ``usage_limiter`` attribute holds the counters.
    """
    import gradio as gr

    config = config or AppConfig.from_env()
    backend = backend or pick_backend(config)
    limiter = limiter or UsageLimiter(config)

    def respond(message, history, system_prompt, temperature, top_p, max_output_tokens, request=None, profile=None):
        who = client_id(request, profile, config.proxy_hops)
        signed_in = who.startswith("user:") or not config.require_login
        yield from chat(message, history, system_prompt, temperature, top_p, max_output_tokens,
                        backend=backend, config=config, limiter=limiter, client=who if signed_in else None)

    # real objects, not strings: Gradio reads these annotations to pass the request and the signed-in user
    respond.__annotations__.update(request=gr.Request, profile=gr.OAuthProfile | None)

    with gr.Blocks(title="Generative AI chat") as demo:
        gr.Markdown(f"## Chat with a generative model\nBackend: **{backend.name}**. "
                    + ("" if isinstance(backend, GeminiChat) else
                       "Set `GEMINI_API_KEY` to answer with Gemini instead. ")
                    + describe_limits(config))
        if config.require_login:
            gr.LoginButton()
        gr.ChatInterface(
            respond, api_name="chat", fill_height=False,
            chatbot=gr.Chatbot(height=320, label="Conversation"),
            textbox=gr.Textbox(placeholder="Ask something...", elem_id="chat-input", submit_btn=True,
                               max_length=config.max_input_chars),
            additional_inputs=[
                gr.Textbox(config.system_prompt, label="System prompt", lines=2, max_length=config.max_system_chars),
                gr.Slider(0.0, config.max_temperature, config.temperature, step=0.05, label="Temperature"),
                gr.Slider(0.05, 1.0, config.top_p, step=0.05, label="Top-p"),
                gr.Slider(16, config.max_output_tokens_limit, config.max_output_tokens, step=16,
                          label="Max output tokens"),
            ],
            additional_inputs_accordion="Settings",
        )
    demo.queue(default_concurrency_limit=config.concurrency_limit, max_size=config.queue_max_size)
    demo.usage_limiter = limiter
    return demo
# [end:build-ui]


def describe_limits(config: AppConfig) -> str:
    """One sentence for the page: the limits a user may meet."""
    parts = [f"{n:,} answers per {unit}" for n, unit in ((config.per_minute, "minute"), (config.per_day, "day"))
             if n]
    return f"Limits per person: {' and '.join(parts)}." if parts else ""


def launch(demo, config: AppConfig | None = None, **kwargs: Any):
    """Start the server on ``config.host:config.port``, without share links, behind the password if one is set.

    Extra keyword arguments go to ``gradio.Blocks.launch`` (e.g. ``prevent_thread_lock=True``).
    """
    config = config or AppConfig.from_env()
    if config.password:
        expected = config.password.encode()
        kwargs.setdefault("auth", lambda _user, password: hmac.compare_digest(str(password).encode(), expected))
        kwargs.setdefault("auth_message", "This chat is private: enter the password its owner gave you "
                                          "(any user name).")
    if config.max_sessions:  # 0 = no cap of the app's own: Gradio's default (10,000) applies
        kwargs.setdefault("state_session_capacity", config.max_sessions)
    return demo.launch(server_name=config.host, server_port=config.port, share=False, **kwargs)


def main() -> None:
    """``python -m genai_lib.app``: build the app from the environment and serve it."""
    # The app's own messages at INFO; other libraries only at WARNING: the SDK and httpx would write a
    # line for every answer ("AFC is enabled ...", "HTTP Request: POST ..."), filling a Space's log.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("genai_lib").setLevel(logging.INFO)
    config = AppConfig.from_env()
    backend = pick_backend(config)
    limiter = UsageLimiter(config)
    log.info("answering with %s on http://%s:%d", backend.name, config.host, config.port)
    log.info("limits: %d per client per minute, %d per client per day, %d answers and %d tokens a day in all "
             "(0 = none); counters %s", config.per_minute, config.per_day, config.daily_requests,
             config.daily_tokens, f"saved in {limiter.path}" if limiter.persistent else "in memory only")
    launch(build_ui(backend, config, limiter), config)


if __name__ == "__main__":
    main()

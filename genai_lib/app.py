"""The paper's application, made real: a Gradio chat on the Gemini API, ready for a Hugging Face Space.

Two backends answer, and the UI always says which one did:

* **Gemini**, through :mod:`genai_lib.gemini` (the official ``google-genai`` SDK with retries, a total
  timeout and clear errors), when ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``) is set;
* the **local model** of the profile (SmolLM2-135M-Instruct in ``offline``) otherwise, so a reader
  without a key can run everything.

Settings come from environment variables: ``GEMINI_MODEL`` (default ``gemini-3.5-flash``),
``GENAI_APP_HOST`` / ``GENAI_APP_PORT`` (or Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``,
which Hugging Face Spaces sets; default ``127.0.0.1:7860``), ``GENAI_APP_LOCAL_MODEL`` (a folder or Hub
id for the local backend). Run it with ``python -m genai_lib.app``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

from genai_lib.core import GenAIError, get_profile, preset_of  # noqa: E402
from genai_lib.gemini import GeminiChat, GeminiConfig, GeminiError, redact  # noqa: E402

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
NOTICE = "⚠ "  # starts a refusal or an error, which is never sent back to the model as a turn
FOOTER_RE = re.compile(r"\n\n\*(?:Answered by|Backend:) [^\n]*\Z")  # the line naming the backend


@dataclass
class AppConfig:
    """The app's limits and defaults.

    Attributes:
        system_prompt: the default system prompt shown in the UI.
        temperature: default sampling temperature (0 = always the most likely token).
        top_p: default nucleus size.
        max_output_tokens: default answer length limit, in tokens.
        max_output_tokens_limit: the largest value the slider allows.
        max_input_chars: longer messages are refused (and the limit is stated).
        max_history_chars: older turns are dropped so the conversation sent stays under this size.
        local_max_new_tokens: the local CPU model never writes more than this many tokens.
        concurrency_limit: how many chats run at the same time (Gradio's queue runs the rest later).
        queue_max_size: how many requests may wait; beyond that new ones are turned away.
        host: the address to listen on (127.0.0.1 = this machine only).
        port: the TCP port.
        profile: the profile whose local chat model answers when no Gemini key is set.
        local_model: a folder or Hub id that answers instead of the profile's chat model.
    """

    system_prompt: str = "You are a helpful assistant. Answer clearly and briefly."
    temperature: float = 0.7
    top_p: float = 0.95
    max_output_tokens: int = 512
    max_output_tokens_limit: int = 2048
    max_input_chars: int = 4000
    max_history_chars: int = 16000
    local_max_new_tokens: int = 128
    concurrency_limit: int = 4
    queue_max_size: int = 64
    host: str = "127.0.0.1"
    port: int = 7860
    profile: str = "offline"
    local_model: str | None = None

    @classmethod
    def from_env(cls, profile: str | None = None, **overrides: Any) -> "AppConfig":
        """The profile's preset with host, port and local model from the environment, then ``overrides``.

        This is the one place that reads the app's environment variables.
        """
        env = os.environ
        host = env.get("GENAI_APP_HOST") or env.get("GRADIO_SERVER_NAME") or "127.0.0.1"
        port = int(env.get("GENAI_APP_PORT") or env.get("GRADIO_SERVER_PORT") or 7860)
        prof = get_profile(profile)
        return replace(preset(prof), **{"host": host, "port": port, "profile": prof,
                                        "local_model": env.get("GENAI_APP_LOCAL_MODEL") or None, **overrides})


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
               top_p: float = 0.95, max_output_tokens: int = 512) -> Iterator[str]:
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


def _text_of(content: Any) -> str:
    """The text of a Gradio message's content (a string, or a list of parts in newer Gradio)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(c) for c in content)
    return ""


def to_contents(history: Sequence[dict[str, Any]], message: str, max_chars: int) -> list[dict[str, Any]]:
    """Gradio's history plus the new message, in Gemini's ``contents`` format.

    The backend line is stripped from earlier answers, and the oldest turns are dropped until the
    whole conversation fits in ``max_chars``.
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
    while len(turns) > 1 and sum(len(t["parts"][0]["text"]) for t in turns) > max_chars:
        turns.pop(0)
    while turns[0]["role"] != "user":  # Gemini wants the conversation to start with the user
        turns.pop(0)
    return turns


def check_message(message: Any, config: AppConfig) -> str | None:
    """A polite refusal for an empty or over-long message, or ``None`` when it is fine."""
    text = _text_of(message).strip()
    if not text:
        return f"{NOTICE}Please type a message first: an empty message has nothing to answer."
    if len(text) > config.max_input_chars:
        return (f"{NOTICE}Your message is {len(text):,} characters long; the limit is {config.max_input_chars:,}. "
                "Please shorten it.")
    return None


# [start:chat]
def chat(message: str, history: list[dict[str, Any]], system_prompt: str, temperature: float, top_p: float,
         max_output_tokens: int, *, backend: GeminiChat | LocalBackend, config: AppConfig) -> Iterator[str]:
    """The function behind the chat box: yields the answer so far, each time a piece arrives.

    Args:
        message: what the user typed.
        history: the earlier turns, ``[{"role": "user"|"assistant", "content": ...}, ...]``.
        system_prompt, temperature, top_p, max_output_tokens: the values of the UI's controls.
        backend: who answers (Gemini or the local model).
        config: the app's limits.

    Yields:
        The answer so far, followed by a line that says which backend answered (or what went wrong).
    """
    refusal = check_message(message, config)
    if refusal:
        yield refusal
        return
    contents = to_contents(history, _text_of(message).strip(), config.max_history_chars)
    signature = f"\n\n*Answered by {backend.name}.*"
    answer = ""
    try:
        for piece in backend.stream(contents, system_prompt.strip() or None, float(temperature), float(top_p),
                                    int(max_output_tokens)):
            answer += piece
            yield answer + signature
    except Exception as exc:  # say what went wrong in one sentence, keeping what arrived; no traceback
        if isinstance(exc, GeminiError):
            answer, why = exc.partial or answer, str(exc)
        elif isinstance(exc, GenAIError):  # bad settings for the local model, for example
            why = redact(str(exc))
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
def build_ui(backend: GeminiChat | LocalBackend | None = None, config: AppConfig | None = None):
    """The Gradio app: a chat box with the model's controls, and a queue that bounds concurrency.

    Args:
        backend: who answers; :func:`pick_backend` decides when ``None``.
        config: limits and defaults; :meth:`AppConfig.from_env` when ``None``.

    Returns:
        A ``gradio.Blocks`` ready for ``launch``.
    """
    import gradio as gr

    config = config or AppConfig.from_env()
    backend = backend or pick_backend(config)

    def respond(message, history, system_prompt, temperature, top_p, max_output_tokens):
        yield from chat(message, history, system_prompt, temperature, top_p, max_output_tokens,
                        backend=backend, config=config)

    with gr.Blocks(title="Generative AI chat") as demo:
        gr.Markdown(f"## Chat with a generative model\nBackend: **{backend.name}**. "
                    + ("" if isinstance(backend, GeminiChat) else
                       "Set `GEMINI_API_KEY` to answer with Gemini instead."))
        gr.ChatInterface(
            respond, api_name="chat", fill_height=False,
            chatbot=gr.Chatbot(height=320, label="Conversation"),
            textbox=gr.Textbox(placeholder="Ask something...", elem_id="chat-input", submit_btn=True),
            additional_inputs=[
                gr.Textbox(config.system_prompt, label="System prompt", lines=2),
                gr.Slider(0.0, 2.0, config.temperature, step=0.05, label="Temperature"),
                gr.Slider(0.05, 1.0, config.top_p, step=0.05, label="Top-p"),
                gr.Slider(16, config.max_output_tokens_limit, config.max_output_tokens, step=16,
                          label="Max output tokens"),
            ],
            additional_inputs_accordion="Settings",
        )
    demo.queue(default_concurrency_limit=config.concurrency_limit, max_size=config.queue_max_size)
    return demo
# [end:build-ui]


def launch(demo, config: AppConfig | None = None, **kwargs: Any):
    """Start the server on ``config.host:config.port``, without share links.

    Extra keyword arguments go to ``gradio.Blocks.launch`` (e.g. ``prevent_thread_lock=True``).
    """
    config = config or AppConfig.from_env()
    return demo.launch(server_name=config.host, server_port=config.port, share=False, **kwargs)


def main() -> None:
    """``python -m genai_lib.app``: build the app from the environment and serve it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = AppConfig.from_env()
    backend = pick_backend(config)
    log.info("answering with %s on http://%s:%d", backend.name, config.host, config.port)
    launch(build_ui(backend, config), config)


if __name__ == "__main__":
    main()

"""The chat app's guards: every input checked on the server, and abuse limits per client and per day.

:func:`check_inputs` validates one request whatever sent it (the page, or a script through
``gradio_client`` that bypasses the page's sliders and boxes) and raises :class:`InputError` with a
sentence that says what is allowed.

A public Space would otherwise spend its owner's Gemini key for anyone who finds it. :class:`UsageLimiter`
counts answers per client (a salted hash of the signed-in Hugging Face user or the IP address, see
:func:`client_id`) and for the whole app, and says politely when a limit is reached and when it resets;
the app then does not call the model. The counters live in memory, and in a JSON file when the app
has a folder that survives restarts (a Space's persistent storage at ``/data``). The settings are
fields of :class:`genai_lib.app.AppConfig`, read from ``GENAI_APP_*`` variables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_lib.core import GenAIError, atomic_write

if TYPE_CHECKING:
    from genai_lib.app import AppConfig

log = logging.getLogger("genai_lib.app")
STATE_FILE = "genai-app-usage.json"


class InputError(GenAIError):
    """A request the app refuses before calling a backend; the message is shown to the user."""


def _text_of(content: Any) -> str:
    """The text of a Gradio message's content (a string, or a list of parts in newer Gradio)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(c) for c in content)
    return ""


def _number(value: Any, name: str, low: float, high: float, whole: bool = False) -> float:
    """``value`` as a number in [low, high], or an :class:`InputError` that says what is allowed."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and whole:
        ok = float(value).is_integer()
    if not ok or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise InputError(f"{name} must be {kind} from {low:g} to {high:g}; got {str(value)[:40]!r}.")
    return int(value) if whole else float(value)


def _check_history(history: Any, config: AppConfig) -> list[dict[str, Any]]:
    if history is None:
        return []
    if not isinstance(history, (list, tuple)) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in history):
        raise InputError("The conversation history is malformed: expected a list of "
                         "{'role': 'user' or 'assistant', 'content': ...} messages. Please start a new chat.")
    if len(history) > config.max_history_messages:
        raise InputError(f"This conversation has {len(history):,} messages; the limit is "
                         f"{config.max_history_messages:,}. Please start a new chat (the trash icon clears it).")
    return list(history)


def check_inputs(message: Any, history: Any, system_prompt: Any, temperature: Any, top_p: Any,
                 max_output_tokens: Any, config: AppConfig) -> tuple[str, list[dict[str, Any]], str, float, float, int]:
    """Validate one request on the server side, whatever sent it (the page or a script).

    Returns:
        ``(message, history, system_prompt, temperature, top_p, max_output_tokens)``, cleaned.

    Raises:
        InputError: with a sentence that says what was wrong and what is allowed.
    """
    if not isinstance(message, (str, dict, list, tuple)):
        raise InputError("The message must be text.")
    text = _text_of(message).strip()
    if not text:
        raise InputError("Please type a message first: an empty message has nothing to answer.")
    if len(text) > config.max_input_chars:
        raise InputError(f"Your message is {len(text):,} characters long; the limit is {config.max_input_chars:,}. "
                         "Please shorten it.")
    system = "" if system_prompt is None else system_prompt
    if not isinstance(system, str):
        raise InputError("The system prompt must be text.")
    if len(system.strip()) > config.max_system_chars:
        raise InputError(f"The system prompt is {len(system.strip()):,} characters long; the limit is "
                         f"{config.max_system_chars:,}. Please shorten it.")
    return (text, _check_history(history, config), system.strip(),
            _number(temperature, "Temperature", 0.0, config.max_temperature),
            _number(top_p, "Top-p", 0.01, 1.0),
            int(_number(max_output_tokens, "Max output tokens", 1, config.max_output_tokens_limit, whole=True)))


class UsageLimiter:
    """Per-client and whole-app limits on answers, counted per minute and per UTC day.

    A client is an opaque string (``ip:...`` or ``user:...``); only a salted hash of it is kept.
    The counters live in memory, and also in ``<state_dir>/genai-app-usage.json`` when a folder is
    given, rewritten atomically after every change, so that a restart keeps them.

    Args:
        config: the limits (``per_minute``, ``per_day``, ``daily_requests``, ``daily_tokens``, ``state_dir``).
        clock: seconds since the epoch (a parameter so that tests can move time).
    """

    def __init__(self, config: AppConfig, clock: Callable[[], float] = time.time) -> None:
        self.config, self.clock = config, clock
        self.path = Path(config.state_dir) / STATE_FILE if config.state_dir else None
        self._lock = threading.Lock()
        self._state = self._fresh(self._day(clock()))
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenAIError(f"Cannot create the folder for the usage counters {self.path.parent} "
                                 f"({exc.strerror}); set GENAI_APP_STATE_DIR to a writable folder, "
                                 "or to 'memory'.") from None
            if not os.access(self.path.parent, os.W_OK):
                raise GenAIError(f"The usage counters' folder {self.path.parent} is not writable; set "
                                 "GENAI_APP_STATE_DIR to a writable folder, or to 'memory'.")
            self._load()

    @property
    def persistent(self) -> bool:
        """Whether the counters survive a restart."""
        return self.path is not None

    @staticmethod
    def _day(now: float) -> str:
        return datetime.fromtimestamp(now, timezone.utc).date().isoformat()

    @staticmethod
    def _fresh(day: str, salt: str | None = None) -> dict[str, Any]:
        return {"day": day, "salt": salt or secrets.token_hex(16), "requests": 0, "tokens": 0, "clients": {}}

    def _load(self) -> None:
        assert self.path is not None
        try:
            state = json.loads(self.path.read_text())
            if not (isinstance(state, dict) and isinstance(state.get("clients"), dict)):
                raise ValueError("not a usage file")
            self._state = {**self._fresh(state.get("day", ""), state.get("salt")), **state}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:  # a damaged file must not keep the app down: start afresh
            log.warning("ignoring the unreadable usage file %s (%s)", self.path, type(exc).__name__)

    def _save(self) -> None:
        """Write the counters atomically (:func:`genai_lib.core.atomic_write`): a restart sees all or nothing."""
        if self.path is None:
            return
        with atomic_write(self.path) as tmp:
            tmp.write_text(json.dumps(self._state))

    def _roll(self, now: float) -> None:
        """Start a new UTC day; forget clients with nothing left to count."""
        day = self._day(now)
        if self._state["day"] != day:
            old = self._state["clients"]
            self._state = self._fresh(day, self._state["salt"])
            for cid, entry in old.items():
                recent = [t for t in entry["recent"] if now - t < 60]
                if recent:
                    self._state["clients"][cid] = {"day": 0, "recent": recent}

    def _id(self, client: str) -> str:
        return hashlib.sha256((self._state["salt"] + client).encode()).hexdigest()[:24]

    def _until_midnight(self, now: float) -> str:
        midnight = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) \
            + timedelta(days=1)
        minutes = max(1, math.ceil((midnight.timestamp() - now) / 60))
        return f"at midnight UTC, in about {minutes // 60} h {minutes % 60:02d} min"

    def acquire(self, client: str) -> str | None:
        """Count one answer for ``client`` and return ``None``, or return why it must wait (nothing counted)."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            self._roll(now)
            st = self._state
            if cfg.daily_requests and st["requests"] >= cfg.daily_requests:
                return (f"This app has given all the {cfg.daily_requests:,} answers it may give today. "
                        f"The budget resets {self._until_midnight(now)}; please come back then.")
            if cfg.daily_tokens and st["tokens"] >= cfg.daily_tokens:
                return (f"This app has used its whole budget of {cfg.daily_tokens:,} tokens for today. "
                        f"The budget resets {self._until_midnight(now)}; please come back then.")
            cid = self._id(client)
            entry = st["clients"].get(cid) or {"day": 0, "recent": []}
            entry["recent"] = [t for t in entry["recent"] if now - t < 60]
            if cfg.per_day and entry["day"] >= cfg.per_day:
                return (f"You have had {cfg.per_day:,} answers today, the daily limit for one person. "
                        f"It resets {self._until_midnight(now)}; please come back then.")
            if cfg.per_minute and len(entry["recent"]) >= cfg.per_minute:
                wait = max(1, math.ceil(entry["recent"][-cfg.per_minute] + 60 - now))
                return (f"You have asked {len(entry['recent'])} questions in the last minute, the limit for one "
                        f"person. Please wait {wait} s and try again.")
            entry["day"] += 1
            entry["recent"].append(now)
            st["clients"][cid] = entry
            st["requests"] += 1
            self._save()
            return None

    def add_tokens(self, tokens: int) -> None:
        """Count the tokens one answer used (towards ``daily_tokens``)."""
        if tokens > 0:
            with self._lock:
                self._roll(self.clock())
                self._state["tokens"] += int(tokens)
                self._save()

    def usage(self) -> dict[str, int]:
        """Today's totals: answers, tokens and distinct clients."""
        with self._lock:
            self._roll(self.clock())
            return {"requests": self._state["requests"], "tokens": self._state["tokens"],
                    "clients": len(self._state["clients"])}


def client_id(request: Any, profile: Any = None, proxy_hops: int = 0) -> str:
    """Who is asking: the signed-in Hugging Face user, else the client's IP address.

    Args:
        request: Gradio's ``gr.Request`` (``None`` when ``chat`` is called directly).
        profile: Gradio's ``gr.OAuthProfile`` when the user signed in with Hugging Face.
        proxy_hops: how many trusted proxies append to ``X-Forwarded-For``. Entries further left were
            written by the client itself and could be anything, so only the one the outermost trusted
            proxy added counts.
    """
    username = getattr(profile, "username", None) or (profile.get("preferred_username")
                                                      if isinstance(profile, dict) else None)
    if username:
        return f"user:{username}"
    if request is None:
        return "local"
    if proxy_hops > 0:
        headers = getattr(request, "headers", None) or {}
        forwarded = [h.strip() for h in str(headers.get("x-forwarded-for", "")).split(",") if h.strip()]
        if len(forwarded) >= proxy_hops:
            return f"ip:{forwarded[-proxy_hops]}"
    host = getattr(getattr(request, "client", None), "host", None)
    return f"ip:{host or 'unknown'}"

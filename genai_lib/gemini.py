"""A careful Gemini client: the official ``google-genai`` SDK plus what production code adds.

The SDK sends the request; this module adds what a real application needs around it:

* **retries** with exponential backoff and jitter on 429, 500, 503 and on connection errors,
  honouring the server's ``Retry-After`` header (or its ``RetryInfo.retryDelay``);
* a **total timeout** for the whole answer, retries included;
* a stream that breaks halfway keeps the text that arrived and says that it was cut;
* a bad key, a blocked prompt (``SAFETY``) or an unknown model become one short sentence for the
  user (:class:`GeminiError`), never a traceback;
* the API key never appears in a log line, an exception message or a ``repr``.

Typical use::

    from genai_lib import gemini
    client = gemini.GeminiChat(gemini.GeminiConfig.from_env())      # reads GEMINI_API_KEY, GEMINI_MODEL
    for piece in client.stream([{"role": "user", "parts": [{"text": "Hello"}]}], system="Be brief."):
        print(piece, end="")
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from genai_lib.core import GenAIError

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # a library logs only where the application asks it to

#: A current, generally available Flash model (November 2026). Gemini 2.0 Flash was shut down on
#: 2026-06-01 and 2.5 Flash is deprecated; check Google's deprecations page and set GEMINI_MODEL.
DEFAULT_MODEL = "gemini-3.5-flash"
RETRYABLE_STATUS = (429, 500, 503)
KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_\-]{35}")


class GeminiError(GenAIError):
    """A failure explained in one sentence the app can show to its user.

    Attributes:
        partial: the text that had arrived before the failure ('' if none).
        kind: a short machine-readable label (``bad_key``, ``unknown_model``, ``safety``, ``cut``,
            ``max_tokens``, ``rate_limited``, ``unavailable``, ``unreachable``, ``timeout``, ``refused``).
    """

    def __init__(self, message: str, kind: str, partial: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.partial = partial


@dataclass
class GeminiConfig:
    """How to reach Gemini and how hard to try.

    Attributes:
        model: the model name (``GEMINI_MODEL``); pick one that Google's deprecations page does not retire.
        api_key: the key (``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``); never printed, see ``__repr__``.
        base_url: another endpoint (a proxy, or the test stand-in); ``None`` = Google's.
        total_timeout_s: the most one answer may take, all retries included.
        max_attempts: how many times one request is tried before giving up.
        backoff_base_s: the first retry waits about this long; each further one twice as long.
        backoff_cap_s: no single wait is longer than this.
    """

    model: str = DEFAULT_MODEL
    api_key: str = field(default="", repr=False)
    base_url: str | None = None
    total_timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 20.0

    @classmethod
    def from_env(cls, **overrides: Any) -> "GeminiConfig":
        """Read ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), ``GEMINI_MODEL`` and ``GOOGLE_GEMINI_BASE_URL``."""
        env = {"api_key": (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or "").strip(),
               "model": os.environ.get("GEMINI_MODEL", "").strip() or DEFAULT_MODEL,
               "base_url": os.environ.get("GOOGLE_GEMINI_BASE_URL", "").strip() or None}
        return cls(**{**env, **overrides})

    def __repr__(self) -> str:  # the key is shown only as set / not set
        return (f"GeminiConfig(model={self.model!r}, api_key={'<set>' if self.api_key else '<not set>'}, "
                f"base_url={self.base_url!r}, total_timeout_s={self.total_timeout_s}, max_attempts={self.max_attempts})")


def redact(text: str, key: str) -> str:
    """Remove the configured key, whatever its shape, and anything shaped like a Google API key, from ``text``.

    The key is also removed as it would appear URL-encoded, JSON-escaped or inside a ``repr``, the
    forms in which an HTTP library or an exception message may quote it. Callers always pass the key
    they use (``''`` when there is none): a key that is not shaped like ``AIza...`` is caught only so.
    """
    from urllib.parse import quote, quote_plus

    key = key or ""
    if key.strip():
        forms = {key, key.strip(), quote(key, safe=""), quote_plus(key), json.dumps(key)[1:-1], repr(key)[1:-1],
                 key.encode("unicode_escape").decode("ascii")}
        for form in sorted((f for f in forms if f), key=len, reverse=True):  # longest first
            text = text.replace(form, "[redacted]")
    return KEY_PATTERN.sub("[redacted]", text)


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...).

    Exponential backoff with "equal jitter": half of ``base * 2**(attempt-1)`` (capped) is fixed, the
    other half random, so that many clients that failed together do not retry together. A server's
    ``Retry-After`` is a floor: we never retry sooner than it asked.
    """
    step = min(cap, base * 2 ** (attempt - 1))
    delay = step / 2 + random.uniform(0, step / 2)
    return max(delay, retry_after or 0.0)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of the HTTP libraries the SDK may use (httpx2 in SDK 3.x, httpx, aiohttp)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for mod in ("httpx2", "httpx"):
        try:
            found.append(__import__(mod).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def _retry_after(exc: Any) -> float | None:
    """The wait the server asked for: the ``Retry-After`` header, else ``RetryInfo.retryDelay`` ("13s")."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        if value is not None:
            return max(0.0, float(value))
    except ValueError:  # an HTTP date; rare for Google, fall back to the body
        pass
    details = (getattr(exc, "details", None) or {})
    for item in (details.get("error", {}).get("details", []) if isinstance(details, dict) else []):
        delay = str(item.get("retryDelay", ""))
        if delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                pass
    return None


def _explain(exc: Any, model: str, key: str) -> GeminiError:
    """Turn the SDK's APIError into a short sentence (the server's message is redacted, then trimmed)."""
    code, status = getattr(exc, "code", None), getattr(exc, "status", None) or ""
    message = redact(str(getattr(exc, "message", "") or ""), key)[:200]
    if "API_KEY_INVALID" in str(getattr(exc, "details", "")) or code in (401, 403):
        return GeminiError("Gemini rejected the API key. Check the GEMINI_API_KEY setting "
                           "(keys are created at https://aistudio.google.com/apikey).", "bad_key")
    if code == 404:
        return GeminiError(f"The model {model!r} is not available (it may be retired or misspelt). "
                           f"Set GEMINI_MODEL to a current model such as {DEFAULT_MODEL!r}.", "unknown_model")
    if code == 429:
        return GeminiError("Gemini is rate-limiting this key (429 RESOURCE_EXHAUSTED), even after retries. "
                           "Wait a minute and try again.", "rate_limited")
    if code in (500, 502, 503, 504):
        return GeminiError(f"Gemini is unavailable right now ({code} {status}), even after retries. "
                           "Try again shortly.", "unavailable")
    return GeminiError(f"Gemini refused the request ({code} {status}): {message}", "refused")


# ----------------------------------------------------------------------------- client
class GeminiChat:
    """Streams answers from Gemini with retries, a total timeout and clear errors.

    Args:
        config: where and how to call Gemini (see :class:`GeminiConfig`).
        on_retry: called as ``on_retry(attempt, delay_s, reason)`` before each wait (for logs or tests).
    """

    def __init__(self, config: GeminiConfig, on_retry: Callable[[int, float, str], None] | None = None) -> None:
        from google import genai
        from google.genai import types

        if not config.api_key:
            raise GenAIError("No Gemini API key: set GEMINI_API_KEY (or use the app's local model).")
        self.config = config
        self.on_retry = on_retry
        self._types = types
        http = types.HttpOptions(base_url=config.base_url) if config.base_url else None
        self._client = genai.Client(api_key=config.api_key, http_options=http)

    def __repr__(self) -> str:
        return f"GeminiChat({self.config!r})"

    @property
    def name(self) -> str:
        return f"Gemini ({self.config.model})"

    # [start:request]
    def _request(self, contents: list[dict[str, Any]], system: str | None, timeout_s: float,
                 generation: dict[str, Any]) -> Iterator[Any]:
        """One streaming call of the SDK (lazy: nothing is sent until the first ``next``)."""
        t = self._types
        config = t.GenerateContentConfig(system_instruction=system or None, **generation,
                                         http_options=t.HttpOptions(timeout=max(1, int(timeout_s * 1000))))
        return self._client.models.generate_content_stream(model=self.config.model, contents=contents, config=config)
    # [end:request]

    # [start:gemini-stream]
    def stream(self, contents: list[dict[str, Any]], system: str | None = None, temperature: float = 0.7,
               top_p: float = 0.95, max_output_tokens: int = 512,
               on_usage: Callable[[int], None] | None = None) -> Iterator[str]:
        """Yield the answer's text piece by piece.

        Args:
            contents: the conversation, ``[{"role": "user"|"model", "parts": [{"text": ...}]}, ...]``.
            system: the system instruction (``None`` for none).
            temperature, top_p, max_output_tokens: Gemini's ``generationConfig`` fields.
            on_usage: called once per attempt with the tokens Gemini reported
                (``usageMetadata.totalTokenCount``), however the attempt ended.

        Raises:
            GeminiError: with a short message for the user; ``partial`` holds what arrived before it.
                It carries no chained SDK exception: those quote the server's message, which may hold the key.
        """
        try:
            yield from self._attempts(contents, system, temperature, top_p, max_output_tokens, on_usage)
        except GeminiError as exc:
            exc.__cause__ = exc.__context__ = None
            raise

    def _attempts(self, contents: list[dict[str, Any]], system: str | None, temperature: float, top_p: float,
                  max_output_tokens: int, on_usage: Callable[[int], None] | None) -> Iterator[str]:
        """The retry loop behind :meth:`stream`."""
        from google.genai import errors

        cfg, transport = self.config, _transport_errors()
        generation = {"temperature": temperature, "top_p": top_p, "max_output_tokens": max_output_tokens}
        deadline = time.monotonic() + cfg.total_timeout_s
        for attempt in range(1, cfg.max_attempts + 1):
            received, finish, tokens = "", None, 0
            try:
                for chunk in self._request(contents, system, deadline - time.monotonic(), generation):
                    usage = chunk.usage_metadata
                    tokens = (usage.total_token_count if usage and usage.total_token_count else 0) or tokens
                    if chunk.prompt_feedback and chunk.prompt_feedback.block_reason:
                        reason = chunk.prompt_feedback.block_reason.value
                        raise GeminiError(f"Gemini blocked this prompt ({reason}). Please rephrase it.", "safety")
                    cand = chunk.candidates[0] if chunk.candidates else None
                    finish = (cand.finish_reason.value if cand and cand.finish_reason else None) or finish
                    piece = chunk.text or ""
                    if piece:
                        received += piece
                        yield piece
                    if time.monotonic() > deadline:
                        raise TimeoutError
                if finish in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"):
                    raise GeminiError(f"Gemini stopped the answer: it was flagged ({finish}).", "safety", received)
                if finish == "MAX_TOKENS":  # thinking models spend part of this budget before they write
                    raise GeminiError("The answer stopped at the max output tokens limit; raise it for a longer "
                                      "answer.", "max_tokens", received)
                if finish is None:  # a clean end without a finish reason: something in between cut it
                    raise GeminiError("The answer was cut: the stream ended early.", "cut", received)
                return
            except GeminiError:
                raise
            except (errors.APIError, *transport) as exc:
                code = getattr(exc, "code", None)
                timed_out = time.monotonic() >= deadline or "Timeout" in type(exc).__name__
                if received:  # never retry after text was shown: the user would see it twice
                    why = f"the {cfg.total_timeout_s:g} s time limit was reached" if timed_out else \
                        "the connection broke while it was streaming"
                    raise GeminiError(f"The answer was cut: {why}.", "cut", received) from None
                if timed_out:
                    raise GeminiError(f"No answer within the {cfg.total_timeout_s:g} s time limit. "
                                      "Try again, or ask for a shorter answer.", "timeout") from None
                retryable = code in RETRYABLE_STATUS or (code is None and isinstance(exc, transport))
                if not retryable:
                    raise _explain(exc, cfg.model, cfg.api_key) from None
                if attempt == cfg.max_attempts:
                    if code is None:
                        raise GeminiError("Could not reach Gemini (the connection failed "
                                          f"{cfg.max_attempts} times). Check the network.", "unreachable") from None
                    raise _explain(exc, cfg.model, cfg.api_key) from None
                delay = backoff_delay(attempt, cfg.backoff_base_s, cfg.backoff_cap_s, _retry_after(exc))
                if time.monotonic() + delay > deadline:
                    raise GeminiError(f"Gemini asked us to wait {delay:.0f} s, longer than the time limit; "
                                      "try again later.", "rate_limited" if code == 429 else "unavailable") from None
                reason = f"{code} {getattr(exc, 'status', '')}".strip() if code else type(exc).__name__
                log.warning("Gemini attempt %d failed (%s); retrying in %.2f s", attempt, reason, delay)
                if self.on_retry:
                    self.on_retry(attempt, delay, reason)
                time.sleep(delay)
            finally:  # count what Gemini billed for this attempt, however it ended
                if tokens and on_usage:
                    on_usage(tokens)
    # [end:gemini-stream]

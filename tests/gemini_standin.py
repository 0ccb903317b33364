"""A local stand-in for the Gemini REST API, for tests and the load benchmark.

It speaks the protocol the official ``google-genai`` SDK (3.x) uses, on 127.0.0.1 only:

* ``POST /{version}/models/{model}:generateContent``            -> one ``GenerateContentResponse``
* ``POST /{version}/models/{model}:streamGenerateContent?alt=sse`` -> Server-Sent Events, one
  ``data: {GenerateContentResponse}`` line per chunk, sent with chunked transfer encoding (as
  Google's servers do), so a connection closed early is a detectable protocol error;
* the key arrives in the ``x-goog-api-key`` header; a wrong key gets the real 400 body with the
  ``API_KEY_INVALID`` reason; an unknown model gets the real 404 ``NOT_FOUND`` body;
* errors are ``{"error": {"code": ..., "message": ..., "status": ...}}``.

Faults are queued with :meth:`StandIn.fail` and consumed one per request, in order::

    with StandIn() as server:
        server.fail("429", retry_after=1)   # next request: 429 with a Retry-After header
        server.fail("cut", after=2)         # the one after: 2 chunks, then the connection is closed
        client = genai.Client(api_key=server.key, http_options=types.HttpOptions(base_url=server.url))

Fault kinds: ``"429"``, ``"500"``, ``"503"``, ``"drop"`` (close without answering), ``"cut"``
(stream ``after`` chunks then close), ``"safety"`` / ``"max_tokens"`` (that finishReason after ``after`` chunks),
``"blocked"`` (promptFeedback.blockReason SAFETY, no candidates), ``"slow"`` (sleep ``delay`` s first),
``"echo"`` (a 400 whose message quotes the key, plain and URL-encoded: what a careless proxy might do).
Every request is recorded in :attr:`StandIn.requests` (method, path, query, headers, body).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

FAKE_KEY = "AIzaStandInTestKey_0123456789abcdefghijk"  # the shape of a real key (39 chars), not a real one
PATH_RE = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")
STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MESSAGES = {429: "Resource has been exhausted (e.g. check quota).",
            500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            503: "The model is overloaded. Please try again later."}


@dataclass
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Fault:
    kind: str
    retry_after: float | None = None
    after: int = 1
    delay: float = 0.0


@dataclass
class StandIn:
    """The server; use it as a context manager (it starts a thread and stops it on exit).

    Attributes:
        key: the one API key it accepts.
        models: the model names it knows; any other gets a 404.
        words_per_chunk: how many words each streamed chunk carries.
        chunk_delay: seconds between streamed chunks (makes streaming visible in a browser).
    """

    key: str = FAKE_KEY
    models: tuple[str, ...] = ("gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-flash-latest")
    words_per_chunk: int = 3
    chunk_delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ control
    def fail(self, kind: str, retry_after: float | None = None, after: int = 1, delay: float = 0.0) -> None:
        """Queue a fault for the next request that has no fault yet."""
        with self._lock:
            self._faults.append(Fault(kind, retry_after, after, delay))

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first (use it in a with-block)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @staticmethod
    def answer_for(body: dict[str, Any]) -> str:
        """The deterministic answer: it repeats the last user message and the conversation length."""
        contents = body.get("contents", [])
        last = contents[-1]["parts"][0]["text"] if contents else ""
        return f"Stand-in answer number {len(contents)} to: {last}"

    def start(self) -> "StandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                standin._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ protocol
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        with self._lock:
            self.requests.append(Recorded("POST", parts.path, parse_qs(parts.query),
                                          {k.lower(): v for k, v in h.headers.items()}, body))
        fault = self._next_fault()
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if fault and fault.kind == "drop":  # close the socket without a response
            h.close_connection = True
            h.connection.shutdown(2)
            return
        match = PATH_RE.match(parts.path)
        if match is None:
            return self._error(h, 404, f"Path {parts.path} not found.")
        if h.headers.get("x-goog-api-key") != self.key:
            return self._error(h, 400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")
        model = match["model"]
        if model not in self.models:
            return self._error(h, 404, f"models/{model} is not found for API version {match['version']}, "
                                       "or is not supported for generateContent. Call ListModels to see the list "
                                       "of available models and their supported methods.")
        if fault and fault.kind == "echo":  # a badly behaved proxy that quotes the key back in its error
            return self._error(h, 400, f"Request rejected for key {self.key} (key={quote(self.key, safe='')}).")
        if fault and fault.kind in ("429", "500", "503"):
            return self._error(h, int(fault.kind), MESSAGES[int(fault.kind)], retry_after=fault.retry_after)
        if fault and fault.kind == "blocked":
            return self._send_json(h, {"promptFeedback": {"blockReason": "SAFETY"},
                                       "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
                                       "modelVersion": model})
        words = self.answer_for(body).split(" ")
        pieces = [" ".join(words[i:i + self.words_per_chunk]) + " " for i in range(0, len(words), self.words_per_chunk)]
        pieces[-1] = pieces[-1].rstrip()
        if match["method"] == "generateContent":
            return self._send_json(h, self._chunk(model, "".join(pieces), "STOP", len(pieces)))
        if parts.query != "alt=sse":
            return self._error(h, 400, "Streaming needs alt=sse here.")
        self._stream(h, model, pieces, fault)

    @staticmethod
    def _chunk(model: str, text: str | None, finish: str | None, n: int) -> dict[str, Any]:
        cand: dict[str, Any] = {"index": 0}
        if text is not None:
            cand["content"] = {"role": "model", "parts": [{"text": text}]}
        if finish:
            cand["finishReason"] = finish
            if finish == "SAFETY":
                cand["safetyRatings"] = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                                          "blocked": True}]
        return {"candidates": [cand], "modelVersion": model,
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": n, "totalTokenCount": 7 + n}}

    def _stream(self, h: BaseHTTPRequestHandler, model: str, pieces: list[str], fault: Fault | None) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i, piece in enumerate(pieces):
            if fault and fault.kind in ("cut", "safety", "max_tokens") and i == fault.after:
                if fault.kind == "cut":  # close mid-body: no terminating zero-length chunk
                    h.wfile.flush()
                    h.close_connection = True
                    h.connection.shutdown(2)
                    return
                self._event(h, self._chunk(model, None, fault.kind.upper(), i))
                break
            last = i == len(pieces) - 1
            self._event(h, self._chunk(model, piece, "STOP" if last else None, i + 1))
            if self.chunk_delay and not last:
                time.sleep(self.chunk_delay)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    @staticmethod
    def _event(h: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        data = f"data: {json.dumps(payload)}\r\n\r\n".encode()
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        h.wfile.flush()

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, payload: dict[str, Any], code: int = 200,
                   headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, code: int, message: str, reason: str | None = None,
               retry_after: float | None = None) -> None:
        err: dict[str, Any] = {"code": code, "message": message, "status": STATUS[code]}
        if reason:
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                               "domain": "googleapis.com",
                               "metadata": {"service": "generativelanguage.googleapis.com"}}]
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
        self._send_json(h, {"error": err}, code, headers)

"""Serve a built site folder on 127.0.0.1 from a thread, and remember every request and its status.

Used by the browser tests; also runnable by hand: ``python tests/site_server.py _build/html [port]``.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    log_list: list[tuple[str, int]]

    def log_message(self, fmt: str, *args) -> None:  # quiet
        pass

    def log_request(self, code="-", size="-") -> None:
        try:
            status = int(getattr(code, "value", code))
        except (TypeError, ValueError):
            status = 0
        self.log_list.append((self.path, status))

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class SiteServer:
    """``with SiteServer(folder) as s: s.url`` -> ``http://127.0.0.1:<port>/``; ``s.requests`` lists
    ``(path, status)`` of every request served."""

    def __init__(self, folder: str | Path, port: int = 0):
        self.folder = Path(folder).resolve()
        self.requests: list[tuple[str, int]] = []
        handler = type("Handler", (_Handler,), {"log_list": self.requests})
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(handler, directory=str(self.folder)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "SiteServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "_build/html"
    with SiteServer(folder, int(sys.argv[2]) if len(sys.argv) > 2 else 8000) as srv:
        print(f"serving {srv.folder} at {srv.url} (Ctrl-C stops)")
        try:
            srv.thread.join()
        except KeyboardInterrupt:
            pass

"""The HTTP plumbing every stand-in shares: a threaded server on 127.0.0.1 at a free port, each request
handed to the stand-in's ``_handle(request, method)``, quiet (tests read the stand-in's own log)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S", bound="LocalServer")


class LocalServer:
    """Base of a stand-in: ``with StandIn(...) as s:`` serves until the block ends."""

    METHODS: tuple[str, ...] = ("GET", "POST")
    """The HTTP methods the service answers (others get the server's 501)."""

    _server: ThreadingHTTPServer | None = None

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def __enter__(self: S) -> S:
        owner = self

        def answer(method: str) -> Any:
            return lambda request: owner._handle(request, method)

        def quiet(request: BaseHTTPRequestHandler, format: str, *args: Any) -> None:
            """Nothing on stderr: the tests read the stand-in's log."""

        members: dict[str, Any] = {"protocol_version": "HTTP/1.1", "log_message": quiet}
        members.update({f"do_{m}": answer(m) for m in self.METHODS})
        handler = type(f"{type(self).__name__}Handler", (BaseHTTPRequestHandler,), members)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes,
         content_type: str = "application/json") -> None:
    """Answer ``request``: status, headers (``Content-Type`` unless they give one) and body; a client that
    gave up waiting (the timeout tests) is no error."""
    try:
        request.send_response(status)
        for k, v in {"Content-Type": content_type, **headers}.items():
            request.send_header(k, v)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass

"""The core of the fake model server: a threaded HTTP/1.1 server on 127.0.0.1.

A test scripts what the model does, one behaviour per model request, and reads
back what each CLI sent::

    with FakeModel() as model:
        model.script(Reply("Hello there"), Status(500))
        ...  # run the CLI with its base URL set to model.url
        assert "earlier text" in model.requests[-1].text

Behaviours are data; each vendor module turns one into that vendor's wire
format. When the script runs out, the default behaviour (``Reply("ok")``
unless set) answers. Requests that are not model calls (a CLI's ``HEAD /``
probe, a model list, a token count) are answered by the vendor module too, and
are recorded but take no behaviour from the script.

Responses are sent with ``Transfer-Encoding: chunked`` so every client (Node's
fetch, Rust's reqwest, Python's httpx) sees each SSE event as it is written;
:class:`Cut` closes the socket without the final chunk, as a dropped
connection would.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# --- behaviours -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with ``text``, streamed in ``chunks`` pieces, and finish normally."""

    text: str = "ok"
    chunks: int = 3


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error status and the vendor's error body."""

    code: int
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cut:
    """Start streaming ``text``, then drop the connection with no finish reason."""

    text: str = "This answer is cut"
    #: End the response properly instead (the stream's last chunk is sent) but
    #: still without the vendor's finish marker: a stream that just stops.
    clean: bool = False


@dataclass(frozen=True)
class ToolUse:
    """Ask to call a tool (``name`` with ``input``); the next request gets the result."""

    name: str
    input: dict[str, Any]
    text: str = ""


Behaviour = Reply | Status | Cut | ToolUse


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: Whether it was a model call (it took a behaviour from the script).
    model_call: bool = False

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def text(self) -> str:
        """The body as text, for "the server saw the earlier turn" checks."""
        return self.body.decode("utf-8", "replace")


# --- the wire -------------------------------------------------------------------------


class Exchange:
    """One request and its response, handed to a vendor module."""

    def __init__(self, handler: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        self._h = handler
        self.request = recorded
        self._chunked = False

    @property
    def path(self) -> str:
        return self.request.path

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self._h.send_response(status)
        self._h.send_header("Content-Type", "application/json")
        self._h.send_header("Content-Length", str(len(body)))
        for name, val in (headers or {}).items():
            self._h.send_header(name, val)
        self._h.end_headers()
        self._h.wfile.write(body)
        self._h.wfile.flush()

    def send_empty(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """A response without a body (the answer to a ``HEAD`` probe)."""
        self._h.send_response(status)
        self._h.send_header("Content-Length", "0")
        for name, val in (headers or {}).items():
            self._h.send_header(name, val)
        self._h.end_headers()
        self._h.wfile.flush()

    def start_stream(
        self, content_type: str = "text/event-stream", headers: dict[str, str] | None = None
    ) -> None:
        self._h.send_response(200)
        self._h.send_header("Content-Type", content_type)
        self._h.send_header("Cache-Control", "no-cache")
        self._h.send_header("Transfer-Encoding", "chunked")
        for name, val in (headers or {}).items():
            self._h.send_header(name, val)
        self._h.end_headers()
        self._chunked = True

    def write(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if not raw:
            return
        self._h.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self._h.wfile.flush()

    def sse(self, data: Any, event: str | None = None) -> None:
        """One Server-Sent Event; ``data`` that is not a string is sent as JSON."""
        payload = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {event}\n" if event else ""
        self.write(f"{head}data: {payload}\n\n")

    def end_stream(self) -> None:
        self._h.wfile.write(b"0\r\n\r\n")
        self._h.wfile.flush()

    def cut(self) -> None:
        """Drop the connection mid-response, as a broken network would."""
        self._h.close_connection = True
        import socket

        with contextlib.suppress(OSError):
            self._h.connection.shutdown(socket.SHUT_RDWR)


#: A vendor module's entry: (exchange, behaviour or None for a non-model request)
#: -> None. It returns False when the path is not its own.
Route = Callable[["FakeModel", Exchange], bool]


def split(text: str, chunks: int) -> Iterator[str]:
    """``text`` in about ``chunks`` pieces, on character boundaries."""
    chunks = max(1, min(chunks, len(text) or 1))
    size = -(-len(text) // chunks) if text else 0
    for i in range(0, len(text), size or 1):
        yield text[i : i + size]


#: The error ``type`` and ``code`` OpenAI's APIs (Chat Completions, Responses) give for a status.
OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def openai_error_body(status: Status, message: str, unknown_type: str) -> dict[str, Any]:
    """OpenAI's error body, ``{"error": {"message", "type", "param", "code"}}``: the
    status's own message or ``message``; the type and code the API gives for the
    status (``unknown_type`` for one it does not list)."""
    kind, code = OPENAI_ERRORS.get(status.code, (unknown_type, None))
    error = {"message": status.message or message, "type": kind, "param": None, "code": code}
    return {"error": error}


class FakeModel:
    """The server. Use as a context manager; :attr:`url` is its base URL."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default: Behaviour = default or Reply("ok")
        self.requests: list[Recorded] = []
        self._script: list[Behaviour] = []
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        from . import anthropic, gemini, openai_chat, openai_responses

        for module in (anthropic, gemini, openai_chat, openai_responses):
            route = getattr(module, "route", None)
            if route is not None:
                self._routes.append(route)

    # --- the script ---------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        """Replace what the next model calls do, in order."""
        with self._lock:
            self._script = list(behaviours)

    def next_behaviour(self, recorded: Recorded) -> Behaviour:
        """The behaviour for a model call (vendor modules call this once per call)."""
        with self._lock:
            recorded.model_call = True
            return self._script.pop(0) if self._script else self.default

    @property
    def model_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.model_call]

    # --- the server -----------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeModel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with fake._lock:
                    fake.requests.append(recorded)
                exchange = Exchange(self, recorded)
                try:
                    for route in fake._routes:
                        if route(fake, exchange):
                            return
                    exchange.send_json(
                        404, {"error": {"message": f"the fake has no route {self.path}"}}
                    )
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

"""The fake on loopback: a threaded HTTP server answering as the Bot API does.

Paths are Telegram's: ``/bot{TOKEN}/{method}`` for calls (GET or POST;
query string, JSON, form or multipart bodies) and ``/file/bot{TOKEN}/{path}``
for downloads. Its log (logger ``fake_telegram``) never shows the token.

While a webhook is set, a thread POSTs each update to it, one at a time, in
order, with the ``X-Telegram-Bot-Api-Secret-Token`` header, as Telegram
does; an answer other than 2xx (or none) is tried again after a short pause,
a few times (``World.webhook_attempts``), then given up. Only a webhook on
loopback is ever called: the fake sends nothing beyond this machine.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from .wire import ApiError, decode_body, is_loopback_url
from .world import World

LOG = logging.getLogger("fake_telegram")

#: An idle keep-alive connection is closed after this long (httpx reopens).
IDLE_SECS = 60.0
#: How often the accept loop checks for shutdown (the default 0.5 s would add
#: half a second to every test's teardown).
SHUTDOWN_POLL_SECS = 0.02
#: The largest request body read; Telegram takes uploads of up to 50 MB.
MAX_BODY_BYTES = 50 * 1024 * 1024
#: How long a webhook POST waits for its answer (a handler may download
#: files first); Telegram waits about a minute.
WEBHOOK_TIMEOUT_SECS = 30.0
#: The header Telegram sends the webhook's secret in.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_CALL = re.compile(r"/bot([^/]*)/([A-Za-z0-9_]+)/?")
_FILE = re.compile(r"/file/bot([^/]*)/(.+)")
_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]*")
NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}


def redact(text: str, token: str) -> str:
    """``text`` with the token, and whatever stands where a token goes in a
    path (a wrong token is a secret too), replaced."""
    if token:
        text = text.replace(token, "<token>")
    return _TOKEN_IN_PATH.sub("/bot<token>", text)


class FakeTelegram(World):
    """The Bot API of one bot, on ``127.0.0.1`` at a free port::

        with FakeTelegram(token="123:ABC") as tg:
            app = (ApplicationBuilder().token("123:ABC")
                   .base_url(f"{tg.api_base}/bot")
                   .base_file_url(f"{tg.api_base}/file/bot").build())

    Options (all keyword): ``bot_username``, ``bot_first_name``, ``clock``
    (seconds since the epoch; dates, drafts and flood limits read it),
    ``limits`` (a ``Limits`` to enforce), ``privacy_mode``, ``host``, ``port``.
    """

    def __init__(
        self, token: str = "123:ABC", *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        World.__init__(self, token, **options)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sender: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT``; the client's base URL is this + ``/bot``."""
        if self._server is None:
            raise RuntimeError("the fake is not running (use it in a with block)")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._server = _Server(self._address, _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SHUTDOWN_POLL_SECS,),
            name="fake-telegram",
            daemon=True,
        )
        self._thread.start()
        self._sender = threading.Thread(
            target=self._send_updates, name="fake-telegram-webhook", daemon=True
        )
        self._sender.start()
        LOG.info("fake Telegram Bot API on %s", self.api_base)
        return self

    def stop(self) -> None:
        """Answer held long polls with nothing, stop listening and close
        every open connection."""
        self._close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join()
        if self._sender is not None:
            self._sender.join()

    def _send_updates(self) -> None:
        """The webhook sender: wait for an update that is due, POST it with
        the lock released (the bot calls the fake while it handles it), then
        record the answer."""
        while True:
            with self._cond:
                due = self._webhook_due()
                while due is None and not self._closing:
                    self._cond.wait(self._webhook_wait())
                    due = self._webhook_due()
                if due is None:
                    return
            url, secret, update = due
            status, error = post_update(url, secret, update)
            with self._cond:
                self._webhook_answered(update, url, secret, status, error)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post_update(url: str, secret: str | None, update: dict[str, Any]) -> tuple[int | None, str]:
    """POST one update to a webhook on loopback as Telegram does: the HTTP
    status (None: no answer) and, for a failure, Telegram's words for it."""
    parts = urlsplit(url)
    if not is_loopback_url(url):  # never beyond this machine
        return None, "the fake sends webhook requests only to loopback"
    body = json.dumps(update).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme != "http":
        # A test's bridge listens on plain HTTP; TLS is a reverse proxy's job.
        return None, "the fake calls webhooks over http:// only"
    conn = http.client.HTTPConnection(host, port, timeout=WEBHOOK_TIMEOUT_SECS)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request("POST", target, body, headers)
        answer = conn.getresponse()
        answer.read()
    except ConnectionRefusedError:
        return None, "Connection refused"
    except TimeoutError:
        return None, "Connection timed out"
    except OSError as exc:
        return None, f"Connection failed: {exc.strerror or exc}"
    finally:
        conn.close()
    if 200 <= answer.status < 300:
        return answer.status, ""
    return answer.status, f"Wrong response from the webhook: {answer.status} {answer.reason}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTelegram

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; keep it in our log, redacted.
        LOG.debug("connection error: %s", redact(traceback.format_exc(), self.fake.token))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeTelegram"
    timeout = IDLE_SECS

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's
        # algorithm holds the body until the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s", redact(format % args, self.server.fake.token))

    def _serve(self) -> None:
        fake = self.server.fake
        try:
            url = urlsplit(self.path)
            path = unquote(url.path)
            body = self._body()
            if download := _FILE.fullmatch(path):
                token, file_path = download.groups()
                data = fake.file_at(file_path) if token == fake.token else None
                if data is None:
                    self._send(404, json.dumps(NOT_FOUND).encode(), "application/json")
                else:
                    self._send(200, data, "application/octet-stream")
                return
            call = _CALL.fullmatch(path)
            if call is None:
                self._json(404, NOT_FOUND)
                return
            token, method = call.groups()
            if token != fake.token:
                self._json(401, UNAUTHORIZED)
                return
            params, uploads, encoding = decode_body(
                self.headers.get("Content-Type", ""), body, url.query
            )
            status, answer = fake.call(method, params, uploads, encoding)
            self._json(status, answer)
        except ApiError as exc:
            # The body could not be read or decoded: not a call the fake logs.
            self._json(exc.status, exc.body())
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a cancelled long poll); nobody to answer.
            self.close_connection = True
        except Exception:
            LOG.error("fake failed: %s", redact(traceback.format_exc(), fake.token))
            self._json(
                500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            )

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, answer: dict[str, Any]) -> None:
        self._send(status, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

"""The fake on loopback: an aiohttp server, in a thread of its own, answering
as Slack does.

- ``/api/METHOD``: the Web API (query string, form or JSON bodies; the token
  in ``Authorization: Bearer`` or a ``token`` field). Answers are HTTP 200
  with ``{"ok": ...}``, but a rate limit: HTTP 429, ``Retry-After`` and
  ``{"ok": false, "error": "ratelimited"}``.
- ``/files-pri/TEAM-FILE/NAME``: a shared file's ``url_private``. With the
  bot token in the Authorization header it is the file; without it, as on
  Slack, a 200 HTML login page.
- ``/link/?ticket=...``: the Socket Mode WebSocket that
  ``apps.connections.open`` hands out: ``hello`` first, then every envelope,
  resent with ``retry_attempt`` when not acknowledged within
  ``ack_timeout``, up to ``max_retries`` times; ``disconnect()`` sends a
  ``disconnect`` message and closes, as Slack does when it refreshes.
- With ``events_url`` (and ``signing_secret``) the fake is an Events API
  app's Slack instead: each envelope's payload is POSTed there (events as
  JSON, interactions as a form field ``payload``) with
  ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``, and sent again
  with ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` until answered 200 in
  time. Only loopback URLs are ever called.

Its log (logger ``fake_slack``) never shows a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from .methods import APP_TOKEN_METHODS, METHODS
from .model import Call, Envelope, HookCall
from .world import ApiError, World

LOG = logging.getLogger("fake_slack")
#: How often the pump looks for envelopes due (sending or resending).
PUMP_SECS = 0.05
LOGIN_PAGE = b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` HMAC-SHA256 of ``v0:TS:BODY``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class FakeSlack(World):
    """Slack for one app in one workspace, on ``127.0.0.1`` at a free port::

    with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
    """

    def __init__(self, *, host: str = "127.0.0.1", **options: Any) -> None:
        World.__init__(self, **options)
        self._host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._stop: asyncio.Event | None = None
        self._due: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def api_base(self) -> str:
        """What a client's ``base_url`` is: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.base_url}/api/"

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="fake-slack", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Slack did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every Socket Mode connection to go (the client reconnects)."""
        loop = self._loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(self._disconnect(reason), loop).result(10)

    # --- the server

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._due = asyncio.Event()
        due = self._due
        loop = self._loop
        self.wake = lambda: loop.call_soon_threadsafe(due.set)
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{ref}/{name}", self._file)
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0)
        await site.start()
        port = runner.addresses[0][1]
        self.base_url = f"http://{self._host}:{port}"
        self._ready.set()
        async with ClientSession(timeout=ClientTimeout(total=self.ack_timeout)) as http:
            pump = asyncio.create_task(self._pump(http))
            await self._stop.wait()
            pump.cancel()
            for ws in list(self._sockets):
                await ws.close()
            await runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            kind = request.content_type
            if kind == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        try:
            params = await self._params(request)
        except (ValueError, json.JSONDecodeError):
            return web.json_response({"ok": False, "error": "invalid_json"})
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth else str(params.pop("token", ""))
        params.pop("token", None)
        status, headers = 200, {}
        try:
            if name not in METHODS:
                raise ApiError("unknown_method")
            wanted = self.app_token if name in APP_TOKEN_METHODS else self.bot_token
            if not token:
                raise ApiError("not_authed")
            if token != wanted:
                other = self.bot_token if name in APP_TOKEN_METHODS else self.app_token
                raise ApiError("not_allowed_token_type" if token == other else "invalid_auth")
            fault = self.take_fault(name)
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                raise ApiError(fault.error, fault.status, headers)
            with self._cond:
                answer = {"ok": True, **METHODS[name](self, params)}
            self.record(Call(name, params, True))
        except ApiError as exc:
            answer = {"ok": False, "error": exc.error}
            status, headers = exc.status, exc.headers
            self.record(Call(name, params, False, exc.error, status))
        LOG.debug("%s -> %s", name, answer.get("error", "ok"))
        return web.json_response(answer, status=status, headers=headers)

    async def _file(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        file_id = ref.rpartition("-")[2]
        auth = request.headers.get("Authorization", "")
        stored = self.files.get(file_id)
        self.record(Call("files-pri", {"file": file_id}, auth == f"Bearer {self.bot_token}"))
        if auth != f"Bearer {self.bot_token}" or stored is None:
            return web.Response(body=LOGIN_PAGE, content_type="text/html")
        return web.Response(body=stored.data, content_type=stored.mimetype)

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._cond:
            known = ticket in self.tickets
            self.tickets.discard(ticket)
        if not known:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets) + 1,
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._sockets.append(ws)
        with self._cond:
            self.connections += 1
            self._changed()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                self._acked(str(data.get("envelope_id", "")), data.get("payload"))
        finally:
            self._sockets.remove(ws)
        return ws

    def _acked(self, envelope_id: str, payload: Any) -> None:
        with self._cond:
            if self.lose_acks > 0:  # lost on the way: Slack never saw it
                self.lose_acks -= 1
                return
            for env in self.envelopes:
                if env.envelope_id == envelope_id:
                    env.acked = True
                    env.ack = payload if isinstance(payload, dict) else None
            self._changed()

    async def _disconnect(self, reason: str) -> None:
        for ws in list(self._sockets):
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {}})
            await ws.close()

    # --- sending envelopes

    async def _pump(self, http: ClientSession) -> None:
        assert self._due is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), PUMP_SECS)
            self._due.clear()
            for env in self._due_envelopes():
                if self.events_url:
                    task = asyncio.create_task(self._post_hook(http, env))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif self._sockets:
                    try:
                        await self._sockets[-1].send_json(env.to_wire())
                    except ConnectionError:
                        with self._cond:
                            env.sent -= 1

    def _due_envelopes(self) -> list[Envelope]:
        """Envelopes to send now: new ones, and those not acknowledged in
        time (with one more ``retry_attempt``); marks them sent."""
        now = time.monotonic()
        out = []
        with self._cond:
            if not self.events_url and not self._sockets:
                return []
            for env in self.envelopes:
                if env.acked or env.given_up or (env.sent and now - env.sent_at < self.ack_timeout):
                    continue
                if env.sent:
                    if env.retry_attempt >= self.max_retries:
                        env.given_up = True
                        continue
                    env.retry_attempt += 1
                    env.retry_reason = "timeout"
                env.sent += 1
                env.sent_at = now
                out.append(env)
        return out

    async def _post_hook(self, http: ClientSession, env: Envelope) -> None:
        if urlsplit(self.events_url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("the fake calls only loopback URLs")
        if env.type == "events_api":
            body = json.dumps(env.payload).encode()
            kind = "application/json"
        else:
            body = urlencode({"payload": json.dumps(env.payload)}).encode()
            kind = "application/x-www-form-urlencoded"
        stamp = str(int(self.clock()))
        headers = {
            "Content-Type": kind,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self.signing_secret, stamp, body),
        }
        if env.retry_attempt:
            headers["X-Slack-Retry-Num"] = str(env.retry_attempt)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        status = 0
        try:
            async with http.post(self.events_url, data=body, headers=headers) as answer:
                status = answer.status
                text = await answer.text()
        except (TimeoutError, OSError):
            text = ""
        with self._cond:
            self.hook_calls.append(HookCall(env.envelope_id, status, env.retry_attempt))
            if status == 200:
                env.acked = True
                env.ack = _json_or_none(text)
            self._changed()


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return dict(parse_qsl(text)) or None
    return value if isinstance(value, dict) else None

"""The fake on loopback: aiohttp serving Discord's REST API (``/api/v10``),
the gateway WebSocket (``/gateway``) and the CDN (``/cdn``), on its own
event loop in a thread, so a test can drive it from any thread.

The gateway speaks JSON text frames (discord.py asks for zlib-stream
compression and reads text frames as they are): HELLO, IDENTIFY (a wrong
token is closed with 4004), READY with ``session_id`` and
``resume_gateway_url``, one GUILD_CREATE per guild (its channels and active
threads), HEARTBEAT/ACK, RESUME (the events after the client's sequence, then
RESUMED; an unknown session gets INVALID_SESSION), and the dispatches the
world queues. Answers have ``Content-Type: application/json`` exactly, as
discord.py checks it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Self
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from .model import ALL_PERMISSIONS, DM, PUBLIC_THREAD, File, Guild
from .routes import match
from .world import MESSAGE_CONTENT, ApiError, World

LOG = logging.getLogger("fake_discord")

#: Discord's own value; the client's first heartbeat comes after a random
#: part of it, so tests never wait for one.
HEARTBEAT_INTERVAL_MS = 41_250
JSON = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if body is None and status < 300:
        return web.Response(status=204, headers=headers)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": JSON, **(headers or {})},
    )


class FakeDiscord(World):
    """Discord for one bot, on ``127.0.0.1`` at a free port::

    with FakeDiscord(token="x.y.z") as dc:
        # discord.http.Route.BASE = f"{dc.api_base}/v10"
        ...
    """

    def __init__(self, token: str = "MTAx.fake.token-value", **options: Any) -> None:
        World.__init__(self, token, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._wakes: set[asyncio.Event] = set()
        self.port = 0

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/api``; the REST base is this + ``/v10``."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- life ----------------------------------------------------------------------------

    def start(self) -> Self:
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="fake-discord", daemon=True
        )
        self._thread.start()
        started.wait(10)
        self.cdn_base = f"http://127.0.0.1:{self.port}/cdn"
        self.wake = self._wake_all
        self.drop = self._drop_all
        LOG.info("fake Discord on %s", self.api_base)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/attachments/{channel}/{file}/{name}", self._cdn)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        assert self._runner is not None
        await self._runner.cleanup()

    def _wake_all(self) -> None:
        if self._loop is not None:
            for event in list(self._wakes):
                self._loop.call_soon_threadsafe(event.set)

    def _drop_all(self) -> None:
        if self._loop is not None:
            for ws in list(self._sockets):
                asyncio.run_coroutine_threadsafe(ws.close(code=4000), self._loop)

    # --- REST ----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + unquote(request.match_info["path"])
        found = match(request.method, path)
        if found is None:
            return _json(404, {"message": "404: Not Found", "code": 0})
        name, ids, handler = found
        open_route = name.split()[1].startswith(("/interactions/", "/webhooks/"))
        if not open_route and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json(401, {"message": "401: Unauthorized", "code": 0})
        body, files = await self._body(request)
        with self._changing():
            fault = next((f for f in self.faults if f.matches(name)), None)
            try:
                if fault is not None:
                    fault.remaining -= 1
                    raise fault.error
                status, answer, headers = (
                    200,
                    handler(self, ids, dict(request.query), body, files),
                    {},
                )
            except ApiError as exc:
                status, answer, headers = exc.status, exc.body(), exc.headers
            self.requests.append(_call(name, ids, body, status))
        LOG.debug("%s %s -> %s", request.method, name, status)
        return _json(status, answer, headers)

    async def _body(self, request: web.Request) -> tuple[Any, list[File]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body: Any = json.loads(str(form.get("payload_json") or "{}"))
            files = []
            for key, value in form.items():
                if key.startswith("files[") and isinstance(value, web.FileField):
                    files.append(
                        File(self.ids.next(), value.filename, value.file.read(), value.content_type)
                    )
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else {}), []

    async def _cdn(self, request: web.Request) -> web.Response:
        found = self.files.get(int(request.match_info["file"]))
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=found.data, content_type=found.content_type or "application/octet-stream"
        )

    # --- the gateway ---------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        wake = asyncio.Event()
        self._sockets.add(ws)
        self._wakes.add(wake)
        with self._changing():
            self.connections += 1
        state = {"sent": 0, "session": ""}
        sender = asyncio.create_task(self._send_events(ws, wake, state))
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": 10,
                        "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                        "s": None,
                        "t": None,
                    }
                )
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_op(ws, json.loads(msg.data), state)
        finally:
            sender.cancel()
            self._sockets.discard(ws)
            self._wakes.discard(wake)
        return ws

    async def _on_op(
        self, ws: web.WebSocketResponse, msg: dict[str, Any], state: dict[str, Any]
    ) -> None:
        op, data = msg.get("op"), msg.get("d") or {}
        if op == 1:
            await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            if data.get("token") != self.token:
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            if int(data.get("intents", 0)) & MESSAGE_CONTENT and not self.content_intent:
                await ws.close(code=4014, message=b"Disallowed intent(s).")
                return
            session = self.new_session(int(data.get("intents", 0)))
            state.update(session=session, sent=0)
            self.dispatch("READY", self._ready(session))
            for guild in list(self.guilds.values()):
                self.dispatch("GUILD_CREATE", self._guild_create(guild))
        elif op == 6:
            if data.get("session_id") != self.session_id or data.get("token") != self.token:
                await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
                return
            with self._changing():
                self.resumes += 1
            state.update(session=self.session_id, sent=int(data.get("seq") or 0))
            self.dispatch("RESUMED", {})
        self._wake_all()

    async def _send_events(
        self, ws: web.WebSocketResponse, wake: asyncio.Event, state: dict[str, Any]
    ) -> None:
        while not ws.closed:
            await wake.wait()
            wake.clear()
            with self._changing():
                if state["session"] != self.session_id:
                    continue
                due = [e for e in self.events if e[0] > state["sent"]]
            for seq, kind, data in due:
                await ws.send_str(json.dumps({"op": 0, "t": kind, "s": seq, "d": data}))
                state["sent"] = seq

    def _ready(self, session: str) -> dict[str, Any]:
        return {
            "v": 10,
            "user": {**self.bot.to_api(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "private_channels": [],
            "relationships": [],
            "application": {"id": str(self.application_id), "flags": 0},
            "user_settings": {},
            "presences": [],
            "_trace": ["fake-discord"],
        }

    def _guild_create(self, guild: Guild) -> dict[str, Any]:
        channels = [c for c in self.channels.values() if c.guild_id == guild.id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "owner_id": str(guild.owner.id),
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "permissions": ALL_PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "member_count": 2,
            "members": [self.bot.member(guild.id)],
            "channels": [c.to_api() for c in channels if c.type != PUBLIC_THREAD and c.type != DM],
            "threads": [c.to_api() for c in channels if c.type == PUBLIC_THREAD],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_flags": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }


def _call(name: str, ids: dict[str, str], body: Any, status: int) -> Any:
    from .model import Call

    return Call(name, ids, body, status)

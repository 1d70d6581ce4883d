"""Receiving from Slack, through Bolt.

:func:`bolt_app` is the Slack channel's Bolt app (``slack_bolt``'s
:class:`~slack_bolt.async_app.AsyncApp`): it routes ``app_mention`` and
``message`` events and Block Kit button presses (``block_actions``) to
listeners that hand them to :meth:`SlackPlatform.take
<bridge.channels.slack.SlackPlatform.take>`. Socket Mode
(:func:`socket_mode`, Bolt's aiohttp adapter) and the HTTP Events API
(:mod:`bridge.channels.slack_http`, Bolt's Starlette adapter) carry events
to it; both acknowledge what the app answered.

Files shared with a message are downloaded by :func:`download_files`.

Write, then confirm. The app runs with ``process_before_response``: Bolt
answers only after the listener returned, that is after the inbox wrote the
message to the log. A listener that raises is answered 5xx (503 while the
bridge starts or drains, 500 otherwise), and a 5xx is never acknowledged:
Slack sends the event again (``retry_attempt``, ``X-Slack-Retry-Num``), and
the log and the platform recognise a copy. Anything below 500 is
acknowledged: taken (200), not for any listener (Bolt's 404), or not a
payload Slack sends (400: resending it cannot help).

What Bolt is told, and why:

- ``authorize``: the bot's identity as ``auth.test`` gave it when the
  platform started. Bolt's default for a single workspace calls
  ``auth.test`` itself when the first event arrives, and when that call fails
  (a rate limit) it answers 200 with an apology: the event would be
  acknowledged and lost.
- ``client``: Bolt's copy for its listeners' ``client`` argument, which ours
  do not use; the platform's own client (for sending, and Socket Mode's
  ``apps.connections.open``) is not given to Bolt, as a client with a token
  next to ``authorize`` makes Bolt warn at every start. Both point at the
  configured ``api_base``.
- Request verification (the signing secret) only when receiving by HTTP:
  Socket Mode envelopes arrive on the WebSocket the app token opened.

What Slack never sends (:func:`~bridge.channels.slack_events.readable`) is
dropped before Bolt sees it: Bolt's middleware, its error handler included,
fails on such a payload (an ``event`` that is not an object, say) before
any listener, and a payload it fails on would come again and again.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from agentproc import wire

from .errors import Closing, PlatformError
from .slack_events import Said, readable

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_bolt.response import BoltResponse
    from slack_sdk.web.async_client import AsyncWebClient

    from .slack import SlackPlatform

__all__ = [
    "FILES_HOST",
    "MAX_FILE_BYTES",
    "acknowledged",
    "bolt_app",
    "download_files",
    "socket_mode",
]

log = logging.getLogger("bridge.channels.slack")

#: Where Slack serves shared files (url_private); the only other host the
#: bot token is ever sent to, besides the API's.
FILES_HOST = "files.slack.com"
#: The largest file downloaded for an agent.
MAX_FILE_BYTES = 50 * 1024 * 1024

#: What the app answers a payload that is not what Slack sends.
UNREADABLE = 400


def acknowledged(status: int) -> bool:
    """Whether an answer of ``status`` confirms the event to Slack: all but
    5xx, which means the event was not taken and Slack should send it again."""
    return status < 500


def bolt_app(platform: SlackPlatform) -> AsyncApp:
    """The Bolt app that hands ``platform``'s events and presses to its inbox."""
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_bolt.response import BoltResponse
    from slack_sdk.web.async_client import AsyncWebClient

    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=platform.team_id or None,
            bot_user_id=platform.bot_user or None,
            bot_id=platform.bot_id or None,
            bot_token=platform.web.token,
        )

    app = AsyncApp(
        client=AsyncWebClient(base_url=platform.web.base_url, logger=platform.web.logger),
        authorize=authorize,
        signing_secret=platform.signing_secret,
        request_verification_enabled=platform.receives_by_http,
        process_before_response=True,
        logger=logging.getLogger("slack_bolt.AsyncApp"),
    )

    async def said(body: dict[str, Any]) -> None:
        await platform.take("events_api", body)

    async def other_event() -> None:
        """Events the bridge does not read: confirmed, so Slack stops."""

    async def pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await platform.take("interactive", body)
        await ack()  # sent once this returns (process_before_response)

    async def failed(error: Exception) -> BoltResponse:
        if isinstance(error, Closing):
            log.info("slack: the bridge is not taking events now; Slack sends this one again")
            return BoltResponse(status=503, body="")
        log.error("slack: an event could not be handled; Slack sends it again", exc_info=error)
        return BoltResponse(status=500, body="")

    app.event("app_mention")(said)
    app.event("message")(said)
    app.event(re.compile(".*"))(other_event)
    app.block_action(re.compile(".*"))(pressed)
    app.error(failed)
    return app


async def socket_mode(app: AsyncApp, app_token: str, web: AsyncWebClient) -> None:
    """Receive by Socket Mode until cancelled: the app token opens the
    WebSocket (``apps.connections.open``, through ``web``)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.adapter.socket_mode.internals import build_headers
    from slack_bolt.async_app import AsyncBoltRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    class Handler(AsyncSocketModeHandler):
        """Bolt's handler acknowledges a 200 only, and lets a payload it
        cannot read escape; this one acknowledges as :func:`acknowledged`
        says, and drops what Bolt cannot read."""

        async def handle(self, client: Any, req: Any) -> None:
            request = None
            if readable(req.payload):
                try:
                    request = AsyncBoltRequest(
                        mode="socket_mode", body=req.payload, headers=build_headers(req)
                    )
                except Exception:  # Bolt reads its fields as it makes one: one is odd
                    request = None
            if request is None:
                log.warning("slack: envelope %s is not what Slack sends; dropped", req.envelope_id)
                status = UNREADABLE
            else:
                status = (await self.app.async_dispatch(request)).status
            if acknowledged(status):
                await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))
            else:
                log.info("slack: envelope %s left to Slack (%s)", req.envelope_id, status)

    handler = Handler(
        app, app_token, logger=logging.getLogger("slack_sdk.socket_mode"), web_client=web
    )
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await handler.close_async()  # type: ignore[no-untyped-call]


async def download_files(
    said: Said, files_dir: Path, *, token: str, api_host: str
) -> list[wire.Attachment]:
    """The files shared with a message, downloaded into ``files_dir`` with
    the bot token, from Slack's file host (or ``api_host``) only."""
    out = []
    for info in said.files:
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        host = urlsplit(url).hostname or ""
        if host not in (FILES_HOST, api_host) or not url.startswith(("https://", "http")):
            log.warning("slack: file %s is not on Slack's file host; skipped", info.get("id"))
            continue
        name = Path(str(info.get("name") or info.get("id") or "file")).name or "file"
        mime = str(info.get("mimetype") or mimetypes.guess_type(name)[0] or "")
        folder = files_dir / said.channel
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{info.get('id', 'F')}-{_safe(name)}"
        await _download(url, path, token)
        kind = "image" if mime.startswith("image/") else "file"
        out.append(wire.Attachment(kind, path.as_uri(), name, mime or None))
    return out


async def _download(url: str, path: Path, token: str) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, allow_redirects=False) as answer,
    ):
        kind = answer.headers.get("Content-Type", "")
        if answer.status != 200 or kind.startswith("text/html"):
            raise PlatformError(
                f"slack: cannot download a shared file (HTTP {answer.status}, {kind}); "
                "the bot token needs the files:read scope"
            )
        size = 0
        with path.open("wb") as out:
            async for chunk in answer.content.iter_chunked(65536):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise PlatformError("slack: a shared file is larger than 50 MB")
                out.write(chunk)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "file"

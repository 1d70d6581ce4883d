"""Telegram by webhook: Telegram POSTs each update to the bridge.

Long polling (:mod:`bridge.channels.telegram`) is the default. With a
:class:`Webhook`, the platform registers the URL with ``setWebhook`` when it
starts, and :func:`webhook_hook` is the HTTP route Telegram calls there. An
update goes through the same code either way
(:meth:`~bridge.channels.telegram.TelegramPlatform.take`): only how it
arrives and how it is confirmed differ.

What the Bot API says, and what follows from it:

- Each update arrives as a JSON ``Update`` in a POST, with the secret given
  to ``setWebhook`` in the ``X-Telegram-Bot-Api-Secret-Token`` header. That
  header is the only proof a request came from Telegram, so the route does
  not take the API's bearer tokens (Telegram cannot send one) and refuses any
  request without the secret, before reading its body.
- A 2xx answer confirms the update. Any other answer, or none, and Telegram
  sends it again later, giving up after "a reasonable amount of attempts";
  while deliveries fail it also slows the delivery of the bot's other
  updates. So the route answers 200 only once the inbox returned (the update
  is in the log, or refused and the person told), and a redelivery is
  recognised by the log, as after a crash in polling mode.
- ``max_connections`` is how many updates Telegram sends at once. The
  bridge asks for one by default, as polling takes them one at a time: two
  messages sent quickly in one chat then reach the log in the order they
  were written.

What the route answers: 401 without the secret, 403 with a wrong one, 413
for a body larger than any update, 400 for a body that is not an update
(not JSON, not an object, no integer ``update_id``): Telegram never sends
one, so it comes from someone testing by hand, who is told why; and were
Telegram to send one, a 4xx is tried again only a bounded number of times,
not forever. 503 while the bridge starts or drains, or when the update
could not be taken (Telegram sends it again); 200 otherwise. One case is
answered 200 although nothing was taken: an update with the right envelope
whose content python-telegram-bot cannot read. Sending it again cannot
help, and each failed delivery slows the bot's other updates, so it is
logged and confirmed, as the polling loop skips an update it cannot handle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from pydantic import SecretStr

from .errors import ApiError, Closing
from .platform import Inbox

if TYPE_CHECKING:  # the web stack is imported only by webhook_hook
    from starlette.requests import Request
    from starlette.responses import Response

    from .http.app import Hook
    from .telegram import TelegramPlatform

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "MAX_UPDATE_BYTES",
    "SECRET_HEADER",
    "Gate",
    "Webhook",
    "webhook_hook",
]

log = logging.getLogger("bridge.channels.telegram")

#: The header Telegram puts the webhook's secret in.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: One update at a time, as polling takes them (see the module docstring).
DEFAULT_MAX_CONNECTIONS = 1

#: An update is a message of at most 4,096 characters with its entities, or a
#: button press: a few KB, tens with a long quoted reply. A megabyte is far
#: beyond any, and small enough that a body is never a burden to read.
MAX_UPDATE_BYTES = 1024 * 1024

#: How long a request that arrives while the bridge is still starting waits
#: for the channel to be ready before it is answered 503. Pending updates are
#: sent as soon as setWebhook returns, a moment before the channel runs.
READY_SECS = 10.0


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where Telegram sends updates: the public ``url`` (HTTPS; the bridge
    listens on its path), the ``secret`` Telegram sends with each, and how
    many updates it may send at once."""

    url: str
    secret: SecretStr = field(repr=False)
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @property
    def path(self) -> str:
        """The path of the URL: where the bridge's HTTP server takes updates."""
        return urlsplit(self.url).path or "/"


class Gate:
    """The inbox that webhook updates go to, while the platform runs.

    :meth:`hold` is the platform's ``run`` in webhook mode: it opens the gate
    and keeps it open until cancelled (the server drains), then closes it
    for good. A request that comes before it opens waits for it a moment;
    one that comes after it closed is turned away (503: Telegram sends the
    update again, to the next bridge to run).
    """

    def __init__(self) -> None:
        self._inbox: Inbox | None = None
        self._opened: anyio.Event | None = None
        self._closed = False

    def _event(self) -> anyio.Event:
        if self._opened is None:
            self._opened = anyio.Event()
        return self._opened

    async def hold(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._event().set()
        try:
            await anyio.sleep_forever()
        finally:
            self._inbox = None
            self._closed = True

    async def inbox(self, wait: float = READY_SECS) -> Inbox | None:
        """The inbox, once open (waiting up to ``wait`` seconds); None when
        closed or still not open."""
        if self._closed:
            return None
        if self._inbox is None:
            with anyio.move_on_after(wait):
                await self._event().wait()
        return self._inbox


def webhook_hook(platform: TelegramPlatform) -> Hook:
    """The HTTP route Telegram sends ``platform``'s updates to."""
    from .http.app import Hook

    webhook = platform.webhook
    if webhook is None:
        raise ValueError("the platform has no webhook")
    expected = _digest(webhook.secret.get_secret_value())

    async def take_update(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            raise ApiError(
                "this route takes updates from Telegram only, and this request does not "
                f"carry the {SECRET_HEADER} header",
                status=401,
                code="unauthenticated",
                hint="Telegram sends the secret given to setWebhook; the bridge sets it",
            )
        # Compared as digests, in constant time: the time taken says nothing
        # about how much of the secret was right, nor its length. A wrong one
        # is 403, not 401, so that getWebhookInfo's last_error_message tells
        # a secret that does not match from one that is missing.
        if not hmac.compare_digest(_digest(given), expected):
            raise ApiError(
                f"the {SECRET_HEADER} header does not match this bridge's webhook secret",
                status=403,
                code="forbidden",
                hint="another program or bridge may have set this bot's webhook; restarting "
                "the bridge sets it again with its own secret",
            )
        data = _envelope(await _body(request))
        try:
            update = platform.update_of(data)
        except Exception as exc:
            log.warning(
                "telegram: update %s arrived by webhook but cannot be read (%s: %s); "
                "confirmed without handling it, as Telegram sending it again cannot help",
                data["update_id"],
                type(exc).__name__,
                exc,
            )
            return _ok()
        inbox = await platform.gate.inbox()
        if inbox is None:
            raise ApiError(
                "the bridge is not taking updates now (starting or shutting down)",
                status=503,
                code="not_ready",
                hint="Telegram sends the update again later",
                headers={"Retry-After": "5"},
            )
        try:
            taken = await platform.take(inbox, update, then="answered 503: Telegram sends it again")
        except Closing:
            taken = False
        if not taken:
            raise ApiError(
                "the bridge could not take this update",
                status=503,
                code="update_failed",
                hint="Telegram sends it again later; the bridge's log says why",
                headers={"Retry-After": "5"},
            )
        return _ok()

    return Hook(webhook.path, take_update)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def _ok() -> Response:
    from starlette.responses import JSONResponse

    # A JSON body without "method" asks Telegram for nothing more.
    return JSONResponse({"ok": True})


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) past :data:`MAX_UPDATE_BYTES`."""
    from starlette.requests import ClientDisconnect

    too_big = ApiError(
        f"the body is larger than {MAX_UPDATE_BYTES // 1024} KiB; no Telegram update is",
        status=413,
        code="too_large",
        hint="this route takes Telegram updates only",
    )
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_UPDATE_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPDATE_BYTES:
                raise too_big
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError("the request ended early", status=400, code="bad_update") from None
    return b"".join(chunks)


def _envelope(body: bytes) -> dict[str, Any]:
    """The update as JSON: an object with an integer ``update_id``, or 400."""
    hint = 'send a Telegram Update as JSON, like {"update_id": 1, "message": {...}}'
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            f"the body is not JSON ({exc})", status=400, code="bad_update", hint=hint
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            "the body is JSON but not an object, so not a Telegram update",
            status=400,
            code="bad_update",
            hint=hint,
        )
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise ApiError(
            "the body has no integer update_id, so it is not a Telegram update",
            status=400,
            code="bad_update",
            hint=hint,
        )
    return data

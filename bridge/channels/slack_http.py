"""Slack by the HTTP Events API: Slack POSTs each event to the bridge.

Socket Mode (:mod:`bridge.channels.slack`) is the default and needs no
public URL. With a signing secret instead of an app token, the bridge's
HTTP server takes Slack's POSTs on one route (the app's Request URL for
events and for interactivity alike):

- Every request is signed: ``X-Slack-Signature`` is ``v0=`` and the
  HMAC-SHA256, keyed with the app's signing secret, of
  ``v0:TIMESTAMP:BODY``, the timestamp being ``X-Slack-Request-Timestamp``.
  A request without them is 401; a timestamp more than five minutes from
  the bridge's clock is 401 (a replayed request); a wrong signature is 401.
  Only then is the body read as JSON (events) or as a form whose
  ``payload`` field is JSON (button presses).
- ``url_verification`` (when the Request URL is saved) is answered with its
  ``challenge``.
- Slack wants a 2xx within 3 seconds, else it sends the event again with
  ``X-Slack-Retry-Num``. The route answers 200 once the inbox returned (the
  message is in the log), and the log and the platform recognise a retry;
  503 while the bridge starts or drains, 500 when the event could not be
  handled (Slack tries again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .errors import ApiError, Closing

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .http.app import Hook
    from .slack import SlackPlatform

__all__ = ["DEFAULT_PATH", "MAX_AGE_SECS", "events_hook", "signature"]

DEFAULT_PATH = "/slack/events"
#: Slack's advice: refuse a request whose timestamp is over five minutes off.
MAX_AGE_SECS = 300
#: An event is a few KB; a megabyte is far beyond any.
MAX_BODY_BYTES = 1024 * 1024


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _refused(message: str, status: int = 401, code: str = "unauthenticated") -> ApiError:
    return ApiError(
        message,
        status=status,
        code=code,
        hint="this route takes requests signed by Slack with the app's signing secret",
    )


def events_hook(
    platform: SlackPlatform, path: str = DEFAULT_PATH, *, clock: Callable[[], float] = time.time
) -> Hook:
    """The HTTP route Slack sends ``platform``'s events and interactions to."""
    from .http.app import Hook

    secret = platform.signing_secret
    if not secret:
        raise ValueError("the platform has no signing secret")

    async def take(request: Request) -> Response:
        from starlette.responses import JSONResponse, Response

        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        given = request.headers.get("X-Slack-Signature", "")
        if not stamp or not given:
            raise _refused("the request is not signed (no X-Slack-Signature and timestamp)")
        if not stamp.isdigit() or abs(clock() - int(stamp)) > MAX_AGE_SECS:
            raise _refused("the request's timestamp is more than five minutes off: refused")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise _refused("the body is larger than any Slack event", 413, "too_large")
        if not hmac.compare_digest(signature(secret, stamp, body), given):
            raise _refused("the request's signature does not match the signing secret")
        kind, payload = _read(body, request.headers.get("Content-Type", ""))
        if payload.get("type") == "url_verification":
            return JSONResponse({"challenge": str(payload.get("challenge", ""))})
        inbox = await platform.gate.inbox()
        if inbox is None:
            raise ApiError(
                "the bridge is not taking events now (starting or shutting down)",
                status=503,
                code="not_ready",
                hint="Slack sends the event again",
            )
        try:
            taken = await platform.take(inbox, kind, payload)
        except Closing:
            raise ApiError(
                "the bridge is shutting down", status=503, code="not_ready", hint="Slack retries"
            ) from None
        if not taken:
            raise ApiError(
                "the event could not be handled",
                status=500,
                code="event_failed",
                hint="Slack sends it again; the bridge's log says why",
            )
        return Response(status_code=200)

    return Hook(path, take)


def _read(body: bytes, content_type: str) -> tuple[str, dict[str, Any]]:
    """(envelope kind, payload) of a signed body; 400 when it is neither."""
    bad = ApiError(
        "the body is neither a Slack event (JSON) nor an interaction (payload=JSON)",
        status=400,
        code="bad_event",
        hint="send what Slack sends",
    )
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = parse_qs(body.decode("utf-8"))
            data = json.loads(fields.get("payload", [""])[0])
            kind = "interactive"
        else:
            data = json.loads(body)
            kind = "events_api"
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict):
        raise bad
    return kind, data

"""Slack by the HTTP Events API: Slack POSTs each event to the bridge.

Socket Mode (:mod:`bridge.channels.slack_receive`) is the default and needs
no public URL. With a signing secret instead of an app token, the bridge's
HTTP server takes Slack's POSTs on one route (the app's Request URL for
events and for interactivity alike), and hands each to the Bolt app
(with Bolt's Starlette adapter), which:

- verifies the signature: ``X-Slack-Signature`` is ``v0=`` and the
  HMAC-SHA256, keyed with the app's signing secret, of
  ``v0:TIMESTAMP:BODY``, the timestamp being ``X-Slack-Request-Timestamp``;
  a request without them, with a timestamp more than five minutes from the
  bridge's clock (a replayed request), or with a wrong signature is 401;
- answers ``url_verification`` (when the Request URL is saved) with its
  ``challenge``;
- routes events and button presses to the listeners, answering once the
  listener returned (the message is in the log).

Slack wants a 2xx within 3 seconds, else it sends the event again with
``X-Slack-Retry-Num``; the log and the platform recognise a retry. The
route answers 200 for what was taken or is for no listener; 400 for a body
that is not a Slack event (Slack never sends one; it is neither JSON nor an
interaction's ``payload=JSON``, or Bolt cannot read it); 503 while the
bridge starts or drains, 500 when the event could not be handled (Slack
tries again); 413 for a body larger than any event. Errors are the HTTP
API's one JSON shape, written here from Bolt's status, never Bolt's bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiError
from .slack_events import readable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .http.app import Hook
    from .slack import SlackPlatform

__all__ = ["DEFAULT_PATH", "MAX_BODY_BYTES", "events_hook"]

DEFAULT_PATH = "/slack/events"
#: An event is a few KB; a megabyte is far beyond any.
MAX_BODY_BYTES = 1024 * 1024

_HINT = "this route takes requests signed by Slack with the app's signing secret"
#: Bolt's answers other than 200, as the API's errors: (message, code, hint).
_ERRORS = {
    400: (
        "the body is neither a Slack event (JSON) nor an interaction (payload=JSON)",
        "bad_event",
        "send what Slack sends",
    ),
    401: (
        "the request is not signed with this app's signing secret, or its timestamp "
        "is more than five minutes off: refused",
        "unauthenticated",
        _HINT,
    ),
    500: (
        "the event could not be handled",
        "event_failed",
        "Slack sends it again; the bridge's log says why",
    ),
    503: (
        "the bridge is not taking events now (starting or shutting down)",
        "not_ready",
        "Slack sends the event again",
    ),
}


def _refused(status: int) -> ApiError:
    status = status if status in _ERRORS else 500
    message, code, hint = _ERRORS[status]
    return ApiError(message, status=status, code=code, hint=hint)


def events_hook(platform: SlackPlatform, path: str = DEFAULT_PATH) -> Hook:
    """The HTTP route Slack sends ``platform``'s events and interactions to."""
    from slack_bolt.adapter.starlette.async_handler import (
        to_async_bolt_request,
        to_starlette_response,
    )
    from starlette.responses import Response

    from .http.app import Hook

    if not platform.signing_secret:
        raise ValueError("the platform has no signing secret")

    async def take(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(
                "the body is larger than any Slack event", status=413, code="too_large", hint=_HINT
            )
        # Read as Bolt reads it, which it does before verifying the signature;
        # what Slack never sends is refused here, as Bolt's middleware fails
        # on it (see slack_receive). Only read, never acted on.
        try:
            taken = to_async_bolt_request(request, body)
        except Exception:
            raise _refused(400) from None
        if not readable(taken.body):
            raise _refused(400)
        answer = to_starlette_response(await platform.app.async_dispatch(taken))
        status = answer.status_code
        if status == 200:
            return answer  # empty, or url_verification's challenge
        if status == 404:  # no listener wants it: nothing will, confirmed
            return Response(status_code=200)
        raise _refused(status)

    return Hook(path, take)

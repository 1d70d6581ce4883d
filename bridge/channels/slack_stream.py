"""A reply's preview on Slack: a stream while it lasts, edits after.

The reply plan shows a growing reply as a *draft* and then posts it
(:meth:`~bridge.channels.platform.Platform.draft`,
:meth:`~bridge.channels.platform.Platform.post_reply`). On Slack a draft is
a real message in the thread, so :class:`Previews` keeps, per draft, the
message that shows it and what it holds:

- the first draft starts a stream (``chat.startStream``) where Slack allows
  one: in a thread, with the person the reply is for known (channels need
  the recipient); later drafts that extend what was streamed append the new
  part (``chat.appendStream``); the post finishes it (``chat.stopStream``
  with the rest) and the message keeps its ts;
- where there is no stream (a DM's top level, the recipient not known, the
  method missing, the stream expired, or a text that does not extend what
  was streamed), the draft is a message posted once and updated
  (``chat.update``, 4,000 characters: the plan cuts there).

The message's ts is returned when it first appears, so the delivery worker
logs it: a bridge that dies mid-reply finishes it by editing after the
restart, and posts nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import RateLimited, Refused

__all__ = ["Previews", "refused"]

log = logging.getLogger("bridge.channels.slack")

#: Errors after which a stream cannot take more text: go on by chat.update.
STREAM_OVER = {
    "message_not_in_streaming_state",
    "message_not_found",
    "streaming_state_conflict",
    "msg_too_long",
}
#: Errors that say streaming is not there for this app or this place.
NO_STREAMING = {
    "unknown_method",
    "method_deprecated",
    "not_allowed_token_type",
    "missing_scope",
    "missing_recipient_user_id",
    "missing_recipient_team_id",
    "invalid_arguments",
    "channel_type_not_supported",
    "feature_not_enabled",
    "team_not_allowed",
}


def refused(method: str, error: str) -> Refused:
    """A Web API call answered ``ok: false``, with Slack's ``error`` code."""
    return Refused(f"slack: {method} failed: {error}", code=error)


@dataclass
class _Preview:
    ts: str
    shown: str
    streaming: bool


Call = Callable[..., Awaitable[dict[str, Any]]]


class Previews:
    """The drafts of the replies being written (see the module docstring).
    ``call(method, **params)`` makes one Web API call and raises
    :class:`~bridge.channels.errors.Refused` or :class:`RateLimited`."""

    def __init__(self, call: Call, post: Callable[[str, str], Awaitable[str]]) -> None:
        self._call = call
        self._post = post
        self._open: dict[tuple[str, int], _Preview] = {}
        #: False once Slack said it has no streaming for this app.
        self.streaming = True

    async def draft(
        self, thread: str, draft_id: int, text: str, *, recipient: tuple[str, str] | None
    ) -> str | None:
        channel, _, thread_ts = thread.partition("/")
        key = (thread, draft_id)
        preview = self._open.get(key)
        if preview is None:
            ts = None
            if self.streaming and thread_ts and (recipient or channel.startswith("D")):
                ts = await self._start(channel, thread_ts, text, recipient)
            streaming = ts is not None
            if ts is None:
                ts = await self._post(thread, text)
            self._open[key] = _Preview(ts, text, streaming)
            return ts
        await self._show(channel, preview, text)
        return None

    async def finish(self, thread: str, draft_id: int, text: str) -> str | None:
        """Turn draft ``draft_id``'s message into the posted ``text``; its ts,
        or None when there is no such draft."""
        preview = self._open.get((thread, draft_id))
        if preview is None:
            return None
        channel = thread.partition("/")[0]
        if preview.streaming and text.startswith(preview.shown):
            rest = text[len(preview.shown) :]
            try:
                await self._call("chat.stopStream", channel=channel, ts=preview.ts, **_md(rest))
                preview.streaming, preview.shown = False, text
            except Refused as exc:
                if exc.code not in STREAM_OVER:
                    raise
                preview.streaming = False
        await self._show(channel, preview, text)
        del self._open[(thread, draft_id)]
        return preview.ts

    async def drop(self, thread: str, draft_base: int) -> None:
        """Delete the messages of drafts ``draft_base + 1`` and up (to the
        next hundred: one reply's) that no post finished."""
        channel = thread.partition("/")[0]
        for key in [k for k in self._open if k[0] == thread]:
            if draft_base < key[1] <= draft_base + 100:
                preview = self._open.pop(key)
                try:
                    await self._call("chat.delete", channel=channel, ts=preview.ts)
                except Refused as exc:
                    if exc.code != "message_not_found":
                        raise

    # --- inside

    async def _start(
        self, channel: str, thread_ts: str, text: str, recipient: tuple[str, str] | None
    ) -> str | None:
        params: dict[str, Any] = {"channel": channel, "thread_ts": thread_ts, **_md(text)}
        if recipient is not None:
            params["recipient_user_id"], params["recipient_team_id"] = recipient
        try:
            answer = await self._call("chat.startStream", **params)
        except Refused as exc:
            if exc.code == "unknown_method":
                log.info("slack: no streaming here (%s); replies are edited instead", exc.code)
                self.streaming = False
            else:
                log.info("slack: cannot stream in %s (%s); editing instead", channel, exc.code)
            return None
        return str(answer["ts"])

    async def _show(self, channel: str, preview: _Preview, text: str) -> None:
        if text == preview.shown:
            return
        if preview.streaming and text.startswith(preview.shown):
            rest = text[len(preview.shown) :]
            try:
                await self._call("chat.appendStream", channel=channel, ts=preview.ts, **_md(rest))
                preview.shown = text
                return
            except RateLimited:
                raise
            except Refused as exc:
                if exc.code not in STREAM_OVER:
                    raise
                log.info("slack: the stream %s ended (%s); editing instead", preview.ts, exc.code)
                preview.streaming = False
        if preview.streaming:
            # Not an extension of what was streamed: end the stream, then edit.
            try:
                await self._call("chat.stopStream", channel=channel, ts=preview.ts)
            except Refused as exc:
                if exc.code not in STREAM_OVER:
                    raise
            preview.streaming = False
        await self._call("chat.update", channel=channel, ts=preview.ts, **_md(text))
        preview.shown = text


def _md(text: str) -> dict[str, str]:
    return {"markdown_text": text} if text else {}

"""Slack: slack_sdk's Web API client to send, Bolt to receive.

:class:`SlackPlatform` is the :class:`~bridge.channels.platform.Platform` of
a Slack app. It receives through a Bolt app
(:mod:`bridge.channels.slack_receive`), by Socket Mode by default (no public
URL: the app token opens a WebSocket with ``apps.connections.open``), or,
with a signing secret, by the HTTP Events API
(:mod:`bridge.channels.slack_http`). Either way Bolt's listeners hand each
event and button press to :meth:`SlackPlatform.take`, one at a time in the
order Slack sent them, and Bolt acknowledges it only after the inbox
returned (the message is in the log): an event the bridge died on, or
failed on, comes again (``retry_attempt``), and the log recognises its
message by ``CHANNEL:TS``. A retry of an event already taken in this process
is acknowledged without being handled again (a chat command is not logged,
so only this keeps it from being answered twice).

- Conversations are threads (:mod:`bridge.channels.slack_events`): a
  mention starts one; replies in a thread the bot takes part in reach it
  without a mention; chat commands are the command word said to the bot
  (``@agent status``; in a DM just ``status``).
- Replies stream (:mod:`bridge.channels.slack_stream`) and are written as
  ``markdown_text``; while the agent works the thread shows a status
  (``assistant.threads.setStatus``; cleared by Slack when the bot posts).
- Buttons are Block Kit; a press is answered with an ephemeral note to the
  presser.
- Files shared with the bot are downloaded from their ``url_private`` with
  the bot token in the Authorization header, only from Slack's file host (or
  the configured API host), into ``files_dir``; the agent gets ``file://``
  URLs and never the token.
- A rate limit (HTTP 429) is :class:`~bridge.channels.errors.RateLimited`
  with Slack's ``Retry-After``: the reply plan waits and sends the latest text.
- slack_sdk and Bolt log request details at DEBUG; their loggers are kept
  at INFO.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from . import reply_plan as rp
from .errors import Closing, PlatformError, RateLimited, Refused, Unreachable
from .platform import Button, Capabilities, Inbox, Incoming, Platform, Press
from .slack_events import (
    command_text,
    parse_message,
    parse_press,
    split_thread,
)
from .slack_receive import bolt_app, download_files, socket_mode
from .slack_stream import Previews, refused
from .telegram_webhook import Gate

__all__ = ["API_BASE", "SlackPlatform", "limits_for"]

log = logging.getLogger("bridge.channels.slack")

API_BASE = "https://slack.com/api/"
#: Event ids remembered to recognise Slack's retries of events already taken.
SEEN_EVENTS = 2048
#: A Block Kit section's text holds at most 3,000 characters.
MAX_SECTION = 3000
#: What the thread shows while the agent works.
STATUS = "is thinking…"
#: Slack's errors that mean the bot cannot write there.
_UNREACHABLE = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "account_inactive",
    "restricted_action",
    "cant_update_message",
    "cant_delete_message",
}


def limits_for(thread: str) -> rp.Limits:
    """Threads stream (a draft is a stream, or a message updated); a DM's
    top level is posted and edited."""
    return rp.Limits(max_length=4000, edit_interval=1.2, drafts="/" in thread)


class SlackPlatform(Platform):
    name = "slack"
    capabilities = Capabilities(
        max_text=4000, drafts=True, threads=True, user_lookup=True, chat_interval=1.2
    )

    def __init__(
        self,
        bot_token: str,
        *,
        app_token: str = "",
        api_base: str = API_BASE,
        files_dir: Path,
        commands: Collection[str] = (),
        bot_commands: Collection[str] = (),
        signing_secret: str = "",
    ) -> None:
        from slack_sdk.web.async_client import AsyncWebClient

        self.web = AsyncWebClient(token=bot_token, base_url=api_base)
        self._bot_token = bot_token
        self._app_token = app_token
        self.signing_secret = signing_secret
        self.api_host = urlsplit(api_base).hostname or ""
        self.files_dir = files_dir
        self.commands = {c.lower() for c in (*commands, *bot_commands)}
        self.bot_commands = {c.lower() for c in bot_commands}
        self.gate = Gate()
        self.bot_user = ""
        self.team_id = ""
        self.username = ""
        self.bot_id = ""
        self.previews = Previews(self._call, self.post)
        self._lock = anyio.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        #: Threads the bot takes part in, and who last wrote there (the
        #: person a stream is for). Kept in memory: after a restart, a reply
        #: in an older thread mentions the bot again.
        self._threads: OrderedDict[str, str] = OrderedDict()
        self._posts = 0
        self._names: dict[str, str] = {}
        _quiet_loggers()
        #: Receives: routes events and presses to :meth:`take`.
        self.app = bolt_app(self)

    @property
    def receives_by_http(self) -> bool:
        return bool(self.signing_secret)

    async def start(self) -> None:
        """Log in (``auth.test``): learns the bot's user id, for mentions."""
        answer = await self._call("auth.test")
        self.bot_user = str(answer.get("user_id", ""))
        self.team_id = str(answer.get("team_id", ""))
        self.username = str(answer.get("user", ""))
        self.bot_id = str(answer.get("bot_id", ""))

    # --- receiving

    async def run(self, inbox: Inbox) -> None:
        if not self.bot_user:
            await self.start()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.gate.hold, inbox)
            if not self.receives_by_http:  # else the HTTP route takes events
                await socket_mode(self.app, self._app_token, self.web)

    async def take(self, kind: str, payload: dict[str, Any]) -> None:
        """Hand one payload (``events_api``, ``interactive``) to the inbox,
        one at a time in the order Slack sent them; returns once it is
        handled (a message in the log). Raises :class:`Closing` while the
        bridge starts or drains; anything else raised means not taken."""
        inbox = await self.gate.inbox()
        if inbox is None:
            raise Closing("slack: the bridge is not taking events now")
        async with self._lock:
            event_id = payload.get("event_id")
            if isinstance(event_id, str) and event_id in self._seen:
                return  # a retry of an event taken already
            if kind == "events_api":
                await self._event(inbox, payload.get("event"))
            elif kind == "interactive":
                await self._interaction(inbox, payload)
            if isinstance(event_id, str):
                self._seen[event_id] = None
                while len(self._seen) > SEEN_EVENTS:
                    self._seen.popitem(last=False)

    async def _event(self, inbox: Inbox, event: object) -> None:
        if not isinstance(event, dict):
            return
        said = parse_message(event, self.bot_user)
        if said is None:
            return
        addressed = said.mentioned or said.private or said.thread in self._threads
        if not addressed and said.reply_ts not in (None, said.ts):
            # A reply in a thread this process has not seen: one the bridge
            # talked in before a restart is still its conversation.
            addressed = await inbox.follows(said.thread)
        if not addressed:
            return  # a channel message not for the bot
        files = await download_files(
            said, self.files_dir, token=self._bot_token, api_host=self.api_host
        )
        if not said.text and not files:
            return
        self._remember(said.thread, said.user)
        text = said.text
        if said.private or said.mentioned or said.thread in self._threads:
            text = command_text(text, self.commands, args_for=self.bot_commands)
        posts = self._posts
        await inbox.message(
            Incoming(
                thread=said.thread,
                platform_id=said.platform_id,
                user_id=said.user,
                display=await self._name(said.user),
                text=text,
                private=said.private,
                addressed=True,
                attachments=tuple(files),
            )
        )
        if self._posts == posts and not text.startswith("/") and said.reply_ts:
            await self._status(said.channel, said.reply_ts, STATUS)

    async def _interaction(self, inbox: Inbox, payload: dict[str, Any]) -> None:
        pressed = parse_press(payload)
        if pressed is None:
            return
        note = await inbox.press(
            Press(pressed.thread, pressed.user, pressed.display, pressed.value, pressed.message_ts)
        )
        if note:
            thread_ts = split_thread(pressed.thread)[1]
            try:
                await self._call(
                    "chat.postEphemeral",
                    channel=pressed.channel,
                    user=pressed.user,
                    text=note,
                    **({"thread_ts": thread_ts} if thread_ts else {}),
                )
            except PlatformError as exc:  # the press is handled; only the note is lost
                log.warning("slack: cannot answer a button press: %s", exc)

    def _remember(self, thread: str, user: str) -> None:
        self._threads[thread] = user
        self._threads.move_to_end(thread)
        while len(self._threads) > SEEN_EVENTS:
            self._threads.popitem(last=False)

    async def _name(self, user: str) -> str:
        """A person's name to show, asked of Slack once per person (and
        again after a failure): every message waits for it."""
        name = self._names.get(user)
        if name is None:
            found = await self.lookup_user(user)
            if found:
                self._names[user] = found
            name = found or user
        return name

    async def _status(self, channel: str, thread_ts: str, status: str) -> None:
        try:
            await self._call(
                "assistant.threads.setStatus",
                channel_id=channel,
                thread_ts=thread_ts,
                status=status,
            )
        except PlatformError as exc:  # a nicety: not every workspace has it
            log.debug("slack: no thread status in %s: %s", channel, exc)

    # --- sending

    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        channel, thread_ts = split_thread(thread)
        params: dict[str, Any] = {"channel": channel, **_content(text, buttons)}
        if thread_ts:
            params["thread_ts"] = thread_ts
        answer = await self._call("chat.postMessage", **params)
        self._posts += 1
        if thread_ts:
            self._threads.setdefault(thread, "")
        return str(answer["ts"])

    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        channel, _ = split_thread(thread)
        params = {"channel": channel, "ts": message_id, **_content(text, buttons)}
        if not buttons:
            params["blocks"] = []
        try:
            await self._call("chat.update", **params)
        except Refused as exc:
            if exc.code in ("msg_too_long", "message_not_found") or exc.code in _UNREACHABLE:
                raise
            # A stream left open by a bridge that died: end it, then edit.
            await self._call("chat.stopStream", channel=channel, ts=message_id)
            await self._call("chat.update", **params)

    async def delete(self, thread: str, message_id: str) -> None:
        channel, _ = split_thread(thread)
        try:
            await self._call("chat.delete", channel=channel, ts=message_id)
        except Refused as exc:
            if exc.code != "message_not_found":  # gone already: done
                raise

    async def draft(self, thread: str, draft_id: int, text: str) -> str | None:
        user = self._threads.get(thread) or ""
        recipient = (user, self.team_id) if user and self.team_id else None
        return await self.previews.draft(thread, draft_id, text, recipient=recipient)

    async def post_reply(self, thread: str, text: str, *, draft_id: int = 0) -> str:
        finished = await self.previews.finish(thread, draft_id, text)
        return finished if finished is not None else await self.post(thread, text)

    async def drafts_over(self, thread: str, draft_base: int) -> None:
        await self.previews.drop(thread, draft_base)

    async def lookup_user(self, user_id: str) -> str | None:
        try:
            answer = await self._call("users.info", user=user_id)
        except PlatformError:
            return None
        user = answer.get("user") or {}
        profile = user.get("profile") or {}
        return str(profile.get("display_name") or user.get("real_name") or user.get("name") or "")

    async def close(self) -> None:
        session = getattr(self.web, "session", None)
        if session is not None:
            await session.close()

    # --- one call

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """One Web API call; Slack's refusals as the bridge's platform errors."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            answer = await self.web.api_call(method, json=params)
        except SlackApiError as exc:
            raise _converted(method, exc) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise PlatformError(f"slack: {method} failed: {exc}") from None
        return dict(answer.data) if isinstance(answer.data, dict) else {}


def _content(text: str, buttons: tuple[Button, ...]) -> dict[str, Any]:
    """A message's content: Markdown, or with buttons, Block Kit."""
    if not buttons:
        return {"markdown_text": text or rp.BLANK}
    elements = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": b.label[:75]},
            "action_id": f"agentproc-{i}",
            "value": b.data,
        }
        for i, b in enumerate(buttons)
    ]
    return {
        "text": text[:MAX_SECTION],
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION] or " "}},
            {"type": "actions", "block_id": "agentproc", "elements": elements},
        ],
    }


def _quiet_loggers() -> None:
    """slack_sdk and Bolt log requests and envelopes at DEBUG; keep them above that."""
    for name in ("slack_sdk", "slack_bolt"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def _converted(method: str, exc: Any) -> PlatformError:
    response = exc.response
    error = str(response.get("error", "") if response is not None else "") or "unknown"
    if response is not None and (response.status_code == 429 or error == "ratelimited"):
        try:
            wait = float(response.headers.get("Retry-After", "1"))
        except (TypeError, ValueError):
            wait = 1.0
        return RateLimited(f"slack: {method} rate limited", retry_after=max(wait, 1.0))
    if error in _UNREACHABLE and method != "chat.update":
        return Unreachable(f"slack: {method} failed: {error}")
    return refused(method, error)

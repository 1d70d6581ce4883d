"""The fake's state: members, channels, messages, envelopes, files, faults.

No sockets here. ``World.call(method, params, token)`` answers one Web API
call (``methods.py`` holds the methods); everything else is what people do
(``mention``, ``say``, ``dm``, ``press``, ``share_file``), a fault to inject,
or something to look at. One lock guards it all, and every change wakes
whoever waits (the envelope pump, or a test in ``wait_for``).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .model import Call, Channel, Envelope, HookCall, Message, User

T = TypeVar("T")

#: Slack resends an envelope not acknowledged within 3 seconds.
ACK_TIMEOUT_SECS = 3.0
#: ... and gives up after three retries.
MAX_RETRIES = 3
#: How long a stream stays open without an append (Slack: a few minutes).
STREAM_LIFETIME_SECS = 300.0
DEFAULT_WAIT_SECS = 10.0


@dataclass(slots=True)
class Fault:
    method: str | None
    error: str
    remaining: int
    status: int = 200
    retry_after: int = 0


@dataclass(slots=True)
class StoredFile:
    id: str
    name: str
    mimetype: str
    data: bytes


class ApiError(Exception):
    """A call answered ``{"ok": false, "error": ...}`` (with ``status``)."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}


@dataclass(eq=False)
class World:
    bot_token: str = "xoxb-1-fake-bot-token"
    app_token: str = "xapp-1-A0FAKE-1-fake-app-token"
    team_id: str = "T0FAKE"
    app_id: str = "A0FAKE"
    clock: Callable[[], float] = time.time
    ack_timeout: float = ACK_TIMEOUT_SECS
    max_retries: int = MAX_RETRIES
    stream_lifetime: float = STREAM_LIFETIME_SECS
    #: False: the chat.*Stream methods are unknown (an older Slack).
    streaming: bool = True
    #: Events API over HTTP: where events are POSTed, and the signing secret.
    events_url: str = ""
    signing_secret: str = ""
    #: How many of the next Socket Mode acknowledgements are lost on the way.
    lose_acks: int = 0

    bot: User = field(init=False)
    _cond: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self.bot = User("UBOT0AGENT", "agent", "Agent", is_bot=True)
        self.bot_id = "B0AGENT"
        self.users: dict[str, User] = {self.bot.id: self.bot}
        self.channels: dict[str, Channel] = {}
        self.messages: list[Message] = []
        self.files: dict[str, StoredFile] = {}
        self.envelopes: list[Envelope] = []
        self.hook_calls: list[HookCall] = []
        self.faults: list[Fault] = []
        self._calls: list[Call] = []
        self.statuses: list[dict[str, str]] = []
        self.ephemerals: list[dict[str, str]] = []
        self.tickets: set[str] = set()
        self.connections = 0
        self._closing = False
        self.wake: Callable[[], None] = lambda: None

    # --- people and places

    def user(self, name: str, *, id: str = "") -> User:
        with self._cond:
            user = User(id or f"U{next(self._ids):08d}", name.lower(), name)
            self.users[user.id] = user
            return user

    def channel(self, name: str, *, private: bool = False) -> Channel:
        with self._cond:
            prefix = "G" if private else "C"
            ch = Channel(f"{prefix}{next(self._ids):08d}", name, "group" if private else "channel")
            self.channels[ch.id] = ch
            return ch

    def im(self, user: User) -> Channel:
        """The DM between ``user`` and the bot."""
        with self._cond:
            for ch in self.channels.values():
                if ch.is_im and ch.person == user:
                    return ch
            ch = Channel(f"D{next(self._ids):08d}", user.id, "im", user)
            self.channels[ch.id] = ch
            return ch

    # --- what people do

    def mention(
        self, channel: Channel, user: User, text: str, *, thread: str | None = None
    ) -> Message:
        """``@agent text`` in a channel: an ``app_mention`` event and a
        ``message`` event, as Slack sends both."""
        return self._post_by(channel, user, f"<@{self.bot.id}> {text}", thread, mention=True)

    def say(self, channel: Channel, user: User, text: str, *, thread: str | None = None) -> Message:
        """A message that does not mention the bot (a ``message`` event)."""
        return self._post_by(channel, user, text, thread)

    def dm(self, user: User, text: str, *, thread: str | None = None) -> Message:
        return self._post_by(self.im(user), user, text, thread)

    def share_file(
        self,
        channel: Channel,
        user: User,
        name: str,
        data: bytes,
        *,
        text: str = "",
        mimetype: str = "application/octet-stream",
        thread: str | None = None,
    ) -> Message:
        with self._cond:
            file_id = f"F{next(self._ids):08d}"
            self.files[file_id] = StoredFile(file_id, name, mimetype, data)
            info = self.file_object(file_id)
        mention = not channel.is_im
        said = f"<@{self.bot.id}> {text}" if mention else text
        return self._post_by(channel, user, said, thread, mention=mention, files=[info])

    def file_object(self, file_id: str) -> dict[str, Any]:
        f = self.files[file_id]
        url = f"{self.base_url}/files-pri/{self.team_id}-{f.id}/{f.name}"
        return {
            "id": f.id,
            "name": f.name,
            "title": f.name,
            "mimetype": f.mimetype,
            "filetype": f.name.rpartition(".")[2] or "binary",
            "size": len(f.data),
            "mode": "hosted",
            "url_private": url,
            "url_private_download": url + "?download=1",
        }

    def _post_by(
        self,
        channel: Channel,
        user: User,
        text: str,
        thread: str | None,
        *,
        mention: bool = False,
        files: list[dict[str, Any]] | None = None,
    ) -> Message:
        with self._cond:
            msg = Message(
                channel.id,
                self._next_ts(),
                user.id,
                text,
                thread_ts=thread,
                files=list(files or []),
                client_msg_id=str(uuid.uuid4()),
            )
            self.messages.append(msg)
            event = self._message_event(channel, msg)
            if mention:
                shown = {k: v for k, v in event.items() if k not in ("channel_type", "subtype")}
                self._queue_event({**shown, "type": "app_mention"})
            self._queue_event(event)
            return msg

    def _message_event(self, channel: Channel, msg: Message) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel.id,
            "user": msg.user,
            "text": msg.text,
            "ts": msg.ts,
            "event_ts": msg.ts,
            "team": self.team_id,
            "client_msg_id": msg.client_msg_id,
            "channel_type": channel.kind,
            "blocks": [
                {
                    "type": "rich_text",
                    "block_id": secrets.token_hex(3),
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [{"type": "text", "text": msg.text}],
                        }
                    ],
                }
            ],
        }
        if msg.thread_ts:
            event["thread_ts"] = msg.thread_ts
            parent = self.find(channel.id, msg.thread_ts)
            if parent is not None:
                event["parent_user_id"] = parent.user
        if msg.files:
            event["subtype"] = "file_share"
            event["files"] = msg.files
            event["upload"] = False
        return event

    def press(self, message: Message, user: User, label: str) -> Envelope:
        """``user`` presses the button labelled ``label`` under ``message``."""
        with self._cond:
            index, value = next(
                (i, v) for i, (lab, v) in enumerate(message.buttons) if lab == label
            )
            action_block = next(b for b in message.blocks if b.get("type") == "actions")
            element = action_block["elements"][index]
            channel = self.channels[message.channel]
            container: dict[str, Any] = {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            }
            api_message: dict[str, Any] = {
                "type": "message",
                "user": message.user,
                "ts": message.ts,
                "bot_id": self.bot_id,
                "text": message.text,
                "blocks": message.blocks,
            }
            if message.thread_ts:
                container["thread_ts"] = message.thread_ts
                api_message["thread_ts"] = message.thread_ts
            payload = {
                "type": "block_actions",
                "user": {
                    "id": user.id,
                    "username": user.name,
                    "name": user.name,
                    "team_id": self.team_id,
                },
                "api_app_id": self.app_id,
                "token": "verification-token",
                "container": container,
                "trigger_id": f"{next(self._ids)}.{secrets.token_hex(8)}",
                "team": {"id": self.team_id, "domain": "fake"},
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {"id": channel.id, "name": channel.name},
                "message": api_message,
                "state": {"values": {}},
                "response_url": f"{self.base_url}/actions/{secrets.token_hex(6)}",
                "actions": [
                    {
                        "action_id": element["action_id"],
                        "block_id": action_block.get("block_id", ""),
                        "text": element["text"],
                        "value": value,
                        "type": "button",
                        "action_ts": f"{self.clock():.6f}",
                    }
                ],
            }
            return self._queue("interactive", payload)

    def raw_event(self, event: Any) -> Envelope:
        """Send ``event`` (anything, garbage included) in an events_api envelope."""
        with self._cond:
            return self._queue_event(event)

    def raw_envelope(self, kind: str, payload: Any) -> Envelope:
        """Send an envelope of ``kind`` with ``payload`` as it is."""
        with self._cond:
            return self._queue(kind, payload)

    def _queue_event(self, event: Any) -> Envelope:
        event_id = f"Ev{next(self._ids):010d}"
        payload = {
            "token": "verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "team_id": self.team_id,
                    "user_id": self.bot.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self._queue("events_api", payload)

    def _queue(self, kind: str, payload: Any) -> Envelope:
        env = Envelope(str(uuid.uuid4()), kind, payload)
        self.envelopes.append(env)
        self._changed()
        return env

    # --- faults

    def rate_limit(
        self, method: str | None = None, *, times: int = 1, retry_after: int = 1
    ) -> None:
        """The next ``times`` calls (of ``method``, or any but auth.test and
        apps.connections.open) answer HTTP 429 with ``Retry-After``."""
        with self._cond:
            self.faults.append(Fault(method, "ratelimited", times, 429, retry_after))

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``ok: false`` with ``error``."""
        with self._cond:
            self.faults.append(Fault(method, error, times))

    def clear_faults(self) -> None:
        with self._cond:
            self.faults.clear()

    def expire_streams(self) -> None:
        """Every open stream times out (its message keeps what it had)."""
        with self._cond:
            for m in self.messages:
                m.streaming = False
            self._changed()

    # --- looking

    def find(self, channel: str, ts: str) -> Message | None:
        with self._cond:
            return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def bot_messages(self, channel: Channel | str, thread: str | None = None) -> list[Message]:
        """The bot's messages there now, oldest first (``thread``: in that thread)."""
        cid = channel.id if isinstance(channel, Channel) else channel
        with self._cond:
            return [
                m
                for m in self.messages
                if m.bot
                and not m.deleted
                and m.channel == cid
                and (thread is None or m.thread_ts == thread)
            ]

    def calls(self, method: str | None = None, **params: str) -> list[Call]:
        with self._cond:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method)
                and all(c.params.get(k) == v for k, v in params.items())
            ]

    def unacked(self) -> list[Envelope]:
        with self._cond:
            return [e for e in self.envelopes if not e.acked and not e.given_up]

    def wait_for(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_SECS) -> T:
        """Block until ``predicate()`` is truthy and return it (checked after
        every change to the fake). Raises TimeoutError."""
        with self._cond:
            value = self._cond.wait_for(predicate, timeout)
            if not value:
                raise TimeoutError(f"condition still false after {timeout} s")
            return value

    async def until(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_SECS) -> T:
        """``wait_for`` for a test running an event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    # --- helpers for the methods and the server

    base_url: str = ""

    def _next_ts(self) -> str:
        return f"{int(self.clock())}.{next(self._ts):06d}"

    def _changed(self) -> None:
        self._cond.notify_all()
        self.wake()

    def record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._changed()

    def take_fault(self, method: str) -> Fault | None:
        with self._cond:
            for fault in self.faults:
                if fault.remaining <= 0:
                    continue
                if fault.method is None and method in ("auth.test", "apps.connections.open"):
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                fault.remaining -= 1
                return fault
            return None

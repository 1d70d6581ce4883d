"""The fake's state: the bot, people, guilds, channels, messages, the gateway
session's events, interactions, and faults to inject.

No sockets here (``server.py`` serves it; ``routes.py`` answers the REST
calls). One lock guards everything; every change wakes whoever waits (the
gateway sender, a test in ``wait_for``).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .model import (
    DM,
    GUILD_TEXT,
    PUBLIC_THREAD,
    Answer,
    Call,
    Channel,
    File,
    Guild,
    Message,
    Snowflakes,
    User,
    iso,
)

T = TypeVar("T")

#: How long ``wait_for`` waits by default: generous for a loaded CI machine.
DEFAULT_WAIT_SECS = 10.0
#: An interaction must be answered within 3 seconds, or Discord forgets it.
INTERACTION_DEADLINE_SECS = 3.0

#: Gateway intents (bits of IDENTIFY's ``intents``).
GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15


class ApiError(Exception):
    """An error answer of the REST API: status, Discord's JSON code and message."""

    def __init__(
        self, status: int, code: int, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, **self.extra}


def too_many(retry_after: float, *, is_global: bool = False) -> ApiError:
    """A 429 as Discord sends it: JSON ``retry_after``, the ``Retry-After``
    and ``X-RateLimit-*`` headers, and ``Via`` (discord.py takes a 429
    without it for a Cloudflare ban)."""
    headers = {
        "Retry-After": f"{retry_after:g}",
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": "fakebucket",
        "X-RateLimit-Scope": "shared" if not is_global else "user",
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    error = ApiError(429, 0, "You are being rate limited.", headers=headers)
    error.extra = {"retry_after": retry_after, "global": is_global}
    return error


@dataclass(slots=True)
class Fault:
    route: str | None
    error: ApiError
    remaining: int

    def matches(self, route: str) -> bool:
        return self.remaining > 0 and (self.route is None or self.route == route)


@dataclass(slots=True)
class Interaction:
    id: int
    token: str
    created: float
    payload: dict[str, Any]
    answer: Answer | None = None


@dataclass(eq=False)
class World:
    token: str
    bot_name: str = "agent"
    #: Intents the bot asked for at its last IDENTIFY.
    intents: int = 0
    #: Whether the application may have the privileged MESSAGE_CONTENT intent
    #: (the Developer Portal's switch); without it, an IDENTIFY asking for it
    #: is closed with 4014.
    content_intent: bool = True
    ids: Snowflakes = field(default_factory=Snowflakes)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def __post_init__(self) -> None:
        self.bot = User(self.ids.next(), self.bot_name, "Agent", bot=True)
        self.application_id = self.bot.id
        self.owner = User(self.ids.next(), "owner")
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.stored: dict[int, Message] = {}
        self.files: dict[int, File] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: list[dict[str, Any]] = []
        self.requests: list[Call] = []
        self.faults: list[Fault] = []
        #: The gateway session: its id, and the events it was sent or owes
        #: (``(seq, type, data)``); a RESUME replays those after its seq.
        self.session_id = ""
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.connections = 0
        self.identifies = 0
        self.resumes = 0
        #: Called (from any thread) when there is an event to send.
        self.wake: Callable[[], None] = lambda: None
        self.drop: Callable[[], None] = lambda: None
        #: Set by the server: where the CDN serves attachments.
        self.cdn_base = ""

    # --- people and places ---------------------------------------------------------------

    def user(self, username: str, *, id: int | None = None, name: str | None = None) -> User:
        person = User(id or self.ids.next(), username, name or username.title())
        with self._changing():
            self.users[person.id] = person
        return person

    def guild(self, name: str = "Team") -> Guild:
        g = Guild(self.ids.next(), name, self.owner)
        with self._changing():
            self.guilds[g.id] = g
        return g

    def text_channel(self, guild: Guild, name: str = "general") -> Channel:
        ch = Channel(self.ids.next(), GUILD_TEXT, name, guild_id=guild.id)
        with self._changing():
            self.channels[ch.id] = ch
        return ch

    def dm(self, person: User) -> Channel:
        with self._changing():
            for ch in self.channels.values():
                if ch.type == DM and ch.recipient == person:
                    return ch
            ch = Channel(self.ids.next(), DM, recipient=person)
            self.channels[ch.id] = ch
        return ch

    def thread(self, parent: Channel, name: str, *, by: User) -> Channel:
        """A thread a person started (not from a message)."""
        ch = Channel(
            self.ids.next(), PUBLIC_THREAD, name, parent.guild_id, parent.id, owner_id=by.id
        )
        with self._changing():
            self.channels[ch.id] = ch
            self.dispatch("THREAD_CREATE", {**ch.to_api(), "newly_created": True})
        return ch

    # --- what people do ------------------------------------------------------------------

    def send_user_message(
        self,
        channel: Channel,
        author: User,
        text: str,
        *,
        mention: bool = False,
        files: tuple[tuple[str, bytes, str | None], ...] = (),
        reply_to: int | None = None,
    ) -> Message:
        """``author`` writes ``text`` in ``channel`` (``mention``: starting
        with a mention of the bot); ``files`` are (name, bytes, type)."""
        content = f"<@{self.bot.id}> {text}" if mention else text
        attached = [File(self.ids.next(), n, d, t) for n, d, t in files]
        with self._changing():
            message = Message(
                self.ids.next(),
                channel.id,
                author,
                content,
                files=attached,
                mentions=[self.bot] if mention else [],
                reply_to=reply_to,
            )
            for f in attached:
                self.files[f.id] = f
            self.stored[message.id] = message
            self.dispatch("MESSAGE_CREATE", self.message_event(message))
        return message

    def mention(self, channel: Channel, author: User, text: str, **kw: Any) -> Message:
        return self.send_user_message(channel, author, text, mention=True, **kw)

    def press_button(self, channel: Channel, user: User, message_id: int, custom_id: str) -> int:
        """``user`` presses the button ``custom_id`` under a message; returns
        the interaction's id (see ``answer``)."""
        with self._changing():
            message = self.stored[message_id]
            data = {"custom_id": custom_id, "component_type": 2}
            return self._interact(3, channel, user, data, message=self.message_json(message))

    def slash(self, channel: Channel, user: User, name: str) -> int:
        """``user`` runs the application command ``/name`` in ``channel``."""
        with self._changing():
            known = next((c for c in self.commands if c["name"] == name), None)
            if known is None:
                raise KeyError(f"no command /{name} is registered")
            data = {"id": known["id"], "name": name, "type": 1}
            return self._interact(2, channel, user, data)

    def _interact(
        self, kind: int, channel: Channel, user: User, data: dict[str, Any], **more: Any
    ) -> int:
        iid = self.ids.next()
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.to_api(),
            "token": secrets.token_urlsafe(24),
            "version": 1,
            "app_permissions": "0",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(channel.guild_id or 0)},
            "attachment_size_limit": 10 * 1024 * 1024,
            "context": 1 if channel.type == DM else 0,
            **more,
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
            payload["member"] = {**user.member(iid), "permissions": "0"}
        else:
            payload["user"] = user.to_api()
        self.interactions[iid] = Interaction(iid, payload["token"], time.monotonic(), payload)
        self.dispatch("INTERACTION_CREATE", payload)
        return iid

    # --- what the bot did ----------------------------------------------------------------

    def messages(self, channel: Channel) -> list[Message]:
        """The channel's messages as people see them now, oldest first."""
        with self._cond:
            return [m for m in self.stored.values() if m.channel_id == channel.id and not m.deleted]

    def bot_messages(self, channel: Channel) -> list[Message]:
        return [m for m in self.messages(channel) if m.author == self.bot]

    def threads_of(self, parent: Channel) -> list[Channel]:
        with self._cond:
            return [c for c in self.channels.values() if c.parent_id == parent.id]

    def answer(self, interaction_id: int) -> Answer | None:
        with self._cond:
            return self.interactions[interaction_id].answer

    def calls(self, route: str | None = None, *, channel: Channel | None = None) -> list[Call]:
        with self._cond:
            return [
                c
                for c in self.requests
                if (route is None or c.route == route)
                and (channel is None or c.ids.get("channel_id") == str(channel.id))
            ]

    def file_bytes(self, file_id: int) -> bytes:
        return self.files[file_id].data

    # --- faults --------------------------------------------------------------------------

    def rate_limit(
        self,
        route: str | None,
        *,
        retry_after: float = 0.2,
        times: int = 1,
        is_global: bool = False,
    ) -> None:
        """The next ``times`` calls of ``route`` (``POST
        /channels/{channel_id}/messages``; None: any) answer 429."""
        with self._changing():
            self.faults.append(Fault(route, too_many(retry_after, is_global=is_global), times))

    def fail(self, route: str | None, status: int, code: int, message: str, times: int = 1) -> None:
        with self._changing():
            self.faults.append(Fault(route, ApiError(status, code, message), times))

    def drop_connection(self) -> None:
        """Close the gateway connection as Discord does now and then; the
        client is expected to RESUME the session."""
        self.drop()

    # --- the gateway session -------------------------------------------------------------

    def dispatch(self, kind: str, data: dict[str, Any]) -> None:
        """Queue an event for the session, if there is one (with none, the
        event is lost, as Discord's are for a bot that is not connected)."""
        with self._changing():
            if not self.session_id or not self._wanted(kind, data):
                return
            seq = self.events[-1][0] + 1 if self.events else 1
            self.events.append((seq, kind, data))
        self.wake()

    def _wanted(self, kind: str, data: dict[str, Any]) -> bool:
        if kind == "MESSAGE_CREATE":
            needs = GUILD_MESSAGES if "guild_id" in data else DIRECT_MESSAGES
            return bool(self.intents & needs)
        if kind.startswith(("THREAD_", "GUILD_")):
            return bool(self.intents & GUILDS)
        return True

    def new_session(self, intents: int) -> str:
        with self._changing():
            self.session_id = secrets.token_hex(16)
            self.events = []
            self.intents = intents
            self.identifies += 1
        return self.session_id

    def message_event(self, message: Message) -> dict[str, Any]:
        """MESSAGE_CREATE's data: the message, with guild_id and member in a
        guild; without the MESSAGE_CONTENT intent, content is empty except in
        DMs and messages that mention the bot, as on Discord."""
        out = self.message_json(message)
        channel = self.channels[message.channel_id]
        privileged = self.intents & MESSAGE_CONTENT
        mentioned = self.bot in message.mentions or message.author == self.bot
        if not privileged and channel.type != DM and not mentioned:
            out.update(content="", attachments=[], embeds=[], components=[])
        if channel.guild_id is not None:
            out["guild_id"] = str(channel.guild_id)
            member = message.author.member(message.id)
            del member["user"]
            out["member"] = member
        return out

    def message_json(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "author": message.author.to_api(),
            "content": message.content,
            "timestamp": iso(message.id),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [u.to_api() for u in message.mentions],
            "mention_roles": [],
            "attachments": [
                {  # the CDN's URL for both, as the fake has no media proxy
                    "id": str(f.id),
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": self.cdn_url(message, f),
                    "proxy_url": self.cdn_url(message, f),
                    **({"content_type": f.content_type} if f.content_type else {}),
                }
                for f in message.files
            ],
            "embeds": [],
            "pinned": False,
            "type": 19 if message.reply_to else 0,
            "flags": 0,
            "components": message.components,
        }
        if message.reply_to:
            out["message_reference"] = {
                "type": 0,
                "message_id": str(message.reply_to),
                "channel_id": str(message.channel_id),
            }
            replied = self.stored.get(message.reply_to)
            out["referenced_message"] = self.message_json(replied) if replied else None
        return out

    def cdn_url(self, message: Message, f: File) -> str:
        return f"{self.cdn_base}/attachments/{message.channel_id}/{f.id}/{f.filename}"

    # --- waiting -------------------------------------------------------------------------

    def _changing(self) -> _Changing:
        return _Changing(self._cond)

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


class _Changing:
    """The lock, held; everyone waiting is woken when it is let go."""

    def __init__(self, cond: threading.Condition) -> None:
        self.cond = cond

    def __enter__(self) -> None:
        self.cond.acquire()

    def __exit__(self, *exc: object) -> None:
        self.cond.notify_all()
        self.cond.release()

"""What a test hands to the fake and gets back from it, and the JSON shapes
Discord's API v10 gives them (users, channels, messages, members)."""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Discord's epoch (2015-01-01), the start of a snowflake's timestamp.
DISCORD_EPOCH_MS = 1_420_070_400_000

#: Channel types the fake has (Discord's numbers).
GUILD_TEXT, DM, PUBLIC_THREAD = 0, 1, 11

#: Every permission, as the @everyone role of the fake's guilds has them.
ALL_PERMISSIONS = str((1 << 50) - 1)


class Snowflakes:
    """Discord ids: milliseconds since 2015 in the high bits, so they sort by
    time (and ``after=ID`` in a history means "newer than")."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            self._last = max(now, self._last + 1)
            return self._last


def iso(snowflake: int) -> str:
    """The time a snowflake was made, as Discord writes timestamps."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class User:
    """A Discord account: a person, or the bot."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            out["bot"] = True
        return out

    def member(self, joined: int) -> dict[str, Any]:
        """The guild member object of this user."""
        return {
            "user": self.to_api(),
            "nick": None,
            "roles": [],
            "joined_at": iso(joined),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }


@dataclass(slots=True)
class Channel:
    """A guild text channel, a direct message channel (with ``recipient``),
    or a public thread (``parent_id``, ``owner_id``; ``starter`` is the
    message it was started from, if any)."""

    id: int
    type: int
    name: str = ""
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    recipient: User | None = None
    starter: int | None = None

    def to_api(self) -> dict[str, Any]:
        if self.type == DM:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.recipient.to_api()],
            }
        out: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.type == PUBLIC_THREAD:
            out.update(
                parent_id=str(self.parent_id),
                owner_id=str(self.owner_id),
                message_count=0,
                member_count=1,
                total_message_sent=0,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso(self.id),
                    "locked": False,
                },
            )
        else:
            out.update(position=0, permission_overwrites=[], nsfw=False, parent_id=None, topic=None)
        return out


@dataclass(frozen=True, slots=True)
class Guild:
    """A server the bot is in."""

    id: int
    name: str
    owner: User


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a message: its label and its ``custom_id``."""

    label: str
    custom_id: str
    style: int = 1
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class File:
    """A file attached to a message, as the fake's CDN serves it."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass(slots=True)
class Message:
    """A message as the people in the channel see it now (edits applied)."""

    id: int
    channel_id: int
    author: User
    content: str
    buttons: list[Button] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    mentions: list[User] = field(default_factory=list)
    reply_to: int | None = None
    edits: int = 0
    deleted: bool = False
    #: The ``components`` JSON as the bot sent it (action rows).
    components: list[dict[str, Any]] = field(default_factory=list)

    @property
    def custom_ids(self) -> list[str]:
        return [b.custom_id for b in self.buttons]


@dataclass(frozen=True, slots=True)
class Call:
    """One REST request the bot made: its route (``POST
    /channels/{channel_id}/messages``), the ids in its path, its JSON body,
    and the status it got."""

    route: str
    ids: dict[str, str]
    body: Any
    status: int


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bot answered to an interaction: the callback's ``type``
    (4 a message, 5 deferred, 6 deferred update, 7 update), and the text it
    showed (after edits of the original response), ephemeral or not."""

    interaction_id: int
    type: int
    content: str
    ephemeral: bool
    edits: int = 0
    deleted: bool = False

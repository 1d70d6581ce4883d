"""Reading Slack's events and interactions: pure functions, no I/O.

What a conversation is on Slack (the thread key):

- a mention of the bot in a channel starts a thread at its own message, and
  the conversation is that thread: ``CHANNEL/THREAD_TS``; replies go into it;
- in a direct message, a top-level message belongs to the DM itself
  (``DCHANNEL``: one running conversation, answered at top level, as a
  person expects of a chat), and a message in a DM thread (which is where
  Slack's assistant view puts every exchange) to that thread,
  ``DCHANNEL/THREAD_TS``.

A message is named by ``CHANNEL:TS`` (:func:`platform_id`): Slack sends a
mention twice (``app_mention`` and ``message``, different ``event_id``) and
resends an event not acknowledged in time (same ``event_id``); the message's
own ts is the same in all of them, so the log recognises every copy.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Pressed",
    "Said",
    "command_text",
    "parse_message",
    "parse_press",
    "platform_id",
    "readable",
    "split_thread",
    "thread_key",
    "unescape",
]

#: Message subtypes that are a person writing (others are edits, joins, bots...).
_PEOPLE_SUBTYPES = {None, "", "file_share", "thread_broadcast"}
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def readable(payload: object) -> bool:
    """Whether ``payload`` has the shape of what Slack sends: an object with
    a ``type`` (events, interactions, ``url_verification``) or a ``command``
    (slash commands), whose ``event`` (when there is one) is an object, and
    whose ``actions`` in a ``block_actions`` are a list of objects. Bolt reads
    these fields in its own middleware, before any listener, and fails on
    anything else; Slack never sends anything else, so it is dropped."""
    if not isinstance(payload, Mapping):
        return False
    if not isinstance(payload.get("type"), str) and not isinstance(payload.get("command"), str):
        return False
    if "event" in payload and not isinstance(payload["event"], Mapping):
        return False
    if payload.get("type") == "block_actions":
        actions = payload.get("actions")
        return isinstance(actions, list) and all(isinstance(a, Mapping) for a in actions)
    return True


def thread_key(channel: str, thread_ts: str | None) -> str:
    return f"{channel}/{thread_ts}" if thread_ts else channel


def split_thread(thread: str) -> tuple[str, str | None]:
    """A thread key as (channel, thread_ts or None)."""
    channel, _, ts = thread.partition("/")
    return channel, ts or None


def platform_id(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def unescape(text: str) -> str:
    """Slack escapes ``&``, ``<`` and ``>`` in message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command_text(text: str, commands: Collection[str], *, args_for: Collection[str] = ()) -> str:
    """``status`` (or ``/status``, ``!status``) said to the bot as the chat
    command ``/status``: a known command word alone, or one of ``args_for``
    (a bot's own commands) followed by its arguments. Anything else is
    returned unchanged, for the agent."""
    stripped = text.strip()
    word, _, rest = stripped.partition(" ")
    name = word.lstrip("/!").lower()
    if name in commands and (not rest.strip() or name in args_for):
        return f"/{name} {rest.strip()}".rstrip()
    return text


@dataclass(frozen=True, slots=True)
class Said:
    """A message a person wrote, as far as the event tells."""

    channel: str
    ts: str
    thread: str
    user: str
    text: str
    private: bool
    mentioned: bool
    #: Slack's own file objects (downloaded by the platform).
    files: tuple[Mapping[str, Any], ...] = ()

    @property
    def platform_id(self) -> str:
        return platform_id(self.channel, self.ts)

    @property
    def reply_ts(self) -> str | None:
        """Where replies go (the thread's ts), None at a DM's top level."""
        return split_thread(self.thread)[1]


def parse_message(event: Mapping[str, Any], bot_user: str) -> Said | None:
    """An ``app_mention`` or ``message`` event as what a person said, or None
    for what the bot does not read: its own messages and other bots', edits
    and other subtypes, and a channel message that mentions the bot (the
    ``app_mention`` event of the same message carries it)."""
    kind = event.get("type")
    if kind not in ("app_mention", "message") or event.get("subtype") not in _PEOPLE_SUBTYPES:
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    if user == bot_user or event.get("bot_id"):
        return None
    raw = event.get("text")
    text = raw if isinstance(raw, str) else ""
    mentioned = any(m == bot_user for m in _MENTION.findall(text))
    private = event.get("channel_type") == "im" or (
        kind == "message" and channel.startswith("D") and "channel_type" not in event
    )
    if kind == "message" and mentioned and not private:
        return None  # the app_mention event of this message is the one read
    thread_ts = event.get("thread_ts")
    thread_ts = thread_ts if isinstance(thread_ts, str) and thread_ts else None
    # In a channel a mention starts a thread at its own message.
    thread = thread_key(channel, thread_ts if private else thread_ts or ts)
    text = unescape(_MENTION.sub(lambda m: "" if m[1] == bot_user else m[0], text)).strip()
    files = event.get("files")
    found = tuple(f for f in files if isinstance(f, dict)) if isinstance(files, list) else ()
    return Said(channel, ts, thread, user, text, private, mentioned or kind == "app_mention", found)


@dataclass(frozen=True, slots=True)
class Pressed:
    """A Block Kit button pressed."""

    thread: str
    user: str
    display: str
    value: str
    channel: str
    message_ts: str


def parse_press(payload: Mapping[str, Any]) -> Pressed | None:
    """A ``block_actions`` payload's first button, or None."""
    if payload.get("type") != "block_actions":
        return None
    actions, user = payload.get("actions"), payload.get("user")
    container = payload.get("container")
    if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
        return None
    if not isinstance(user, dict) or not isinstance(container, dict):
        return None
    channel = container.get("channel_id")
    message_ts = container.get("message_ts")
    if not isinstance(channel, str) or not isinstance(message_ts, str):
        return None
    thread_ts = container.get("thread_ts")
    message = payload.get("message")
    if not thread_ts and isinstance(message, dict):
        thread_ts = message.get("thread_ts")
    value = actions[0].get("value")
    name = user.get("name") or user.get("username") or user.get("id")
    return Pressed(
        thread_key(channel, thread_ts if isinstance(thread_ts, str) else None),
        str(user.get("id", "")),
        str(name),
        value if isinstance(value, str) else "",
        channel,
        message_ts,
    )

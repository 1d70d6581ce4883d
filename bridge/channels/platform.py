"""The chat platform interface: what a channel (Telegram, Slack, Discord, ...)
offers the bridge, and what the bridge hands it.

A :class:`Platform` adapts one platform's client library. It declares its
:class:`Capabilities`, receives what people write and hands each to an
:class:`Inbox` (the channel worker), and carries out what the delivery
worker decides: post, edit, delete, draft. Everything above it (access,
commands, the log, rendering a streamed reply) is the bridge's, written once
for every platform.

Receiving is **write-then-confirm**: :meth:`Platform.run` awaits the inbox
for each update before telling the platform it was received (Telegram's
``getUpdates`` offset, Slack's envelope ``ack``). The inbox returns only when
the message is in the log, so a crash between the two makes the platform
send it again, and the log recognises it by its platform id
(:attr:`Incoming.platform_id`): nothing lost, nothing doubled.

A platform's answers that the bridge must act on are errors of
:mod:`bridge.channels.errors`: :class:`~bridge.channels.errors.RateLimited`
(wait ``retry_after``), :class:`~bridge.channels.errors.NotModified` (an edit
that changes nothing: done), :class:`~bridge.channels.errors.Unreachable`
(blocked, deleted, no permission: stop writing there).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agentproc import wire

__all__ = ["Button", "Capabilities", "Inbox", "Incoming", "Platform", "Press"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do, so that the bridge degrades instead of
    failing where it cannot (no buttons: a numbered text reply; no edits:
    the reply is posted once, whole)."""

    max_text: int
    edit: bool = True
    delete: bool = True
    buttons: bool = True
    drafts: bool = False
    files: bool = True
    threads: bool = False
    user_lookup: bool = False
    history: bool = False
    #: Seconds between two sends or edits in one chat, and sends per second
    #: over all chats: the budgets the reply plan keeps within.
    chat_interval: float = 1.0
    global_rate: float = 30.0


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a message: its label and the data it sends back."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message a person wrote, as the platform gave it.

    ``thread`` is the channel's key for the conversation (a chat, a group, a
    forum topic, a Slack thread); ``platform_id`` names this message so a
    redelivery is recognised; ``user_id`` and ``display`` are the sender's
    platform id and a name to show; ``private`` is a one-to-one chat;
    ``addressed`` is true when it mentions the bot or replies to it.
    """

    thread: str
    platform_id: str
    user_id: str
    display: str
    text: str
    private: bool
    addressed: bool = False
    attachments: tuple[wire.Attachment, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Press:
    """A button pressed: where, by whom, the button's data, and the id of the
    message it was under."""

    thread: str
    user_id: str
    display: str
    data: str
    message_id: str = ""


class Inbox(Protocol):
    """The channel worker, as a platform sees it."""

    async def message(self, incoming: Incoming) -> None:
        """Return once the message is in the log (or refused, and the person
        told): then, and only then, may the platform confirm it."""

    async def press(self, press: Press) -> str:
        """Handle a button press; returns the short note to show the presser
        (Telegram's answerCallbackQuery text, "" for none)."""

    async def follows(self, thread: str) -> bool:
        """Whether the bridge has a conversation in ``thread`` already: a
        reply there continues it, mentioned or not (Slack's threads). The
        log knows, so this holds across restarts."""


class Platform(abc.ABC):
    """One chat platform behind the bridge (see the module docstring)."""

    #: The channel's name in the config and the log (``telegram``).
    name: str
    capabilities: Capabilities

    @abc.abstractmethod
    async def run(self, inbox: Inbox) -> None:
        """Receive until cancelled, handing each message and button press to
        ``inbox`` and confirming it to the platform only after the inbox
        returned."""

    @abc.abstractmethod
    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        """Post a message; returns its platform id."""

    @abc.abstractmethod
    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        """Replace a posted message's text (and buttons: none removes them)."""

    async def delete(self, thread: str, message_id: str) -> None:
        """Remove a posted message (platforms without deletion leave it)."""
        return None

    async def draft(self, thread: str, draft_id: int, text: str) -> str | None:
        """Show or update a preview (only with ``capabilities.drafts``).

        Returns None for an ephemeral preview (Telegram's). A platform whose
        preview is a real message (a Slack stream) returns that message's id
        when it first appears, so the delivery worker logs it and a restart
        finishes it by editing; :meth:`post_reply` then finishes it."""
        raise NotImplementedError(f"{self.name} has no drafts")

    async def post_reply(self, thread: str, text: str, *, draft_id: int = 0) -> str:
        """Post one message of an agent's reply, whose preview, if any, was
        draft ``draft_id``; returns its id. By default a plain :meth:`post`
        (an ephemeral draft vanishes by itself); a platform whose drafts are
        real messages turns that message into this one."""
        return await self.post(thread, text)

    async def drafts_over(self, thread: str, draft_base: int) -> None:
        """A reply's plan is done: drafts ``draft_base + 1`` and up that no
        :meth:`post_reply` finished are left over (a final text shorter than
        what streamed). Ephemeral drafts vanish by themselves (the default);
        a platform whose drafts are messages removes them."""
        return None

    async def send_file(self, thread: str, path: Path, *, caption: str = "") -> str:
        """Post a file (only with ``capabilities.files``); returns the message's id."""
        raise NotImplementedError(f"{self.name} cannot send files")

    async def lookup_user(self, user_id: str) -> str | None:
        """The name the platform shows for a person, None when it does not
        know them (only with ``capabilities.user_lookup``)."""
        return None

"""The channel worker: what people write on a chat platform, into the log.

One :class:`ChannelWorker` per configured channel is the :class:`Inbox` its
:class:`~bridge.channels.platform.Platform` hands every message and button
press to. For a message it decides, in this order:

1. who wrote it (a config user by their platform id, a paired person, or a
   stranger) and whether the channel answers them
   (:func:`bridge.channels.access.decide`);
2. whether it is a chat command (:mod:`bridge.channels.commands`);
3. otherwise it writes the message to the conversation of its thread with
   the platform's message id, so a redelivered update is recognised, and
   returns; the platform confirms the update only then.

What the bridge itself says back (a pairing code, a refusal, /status) is
posted at once; the agent's replies are the delivery worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bridge.conversations.approvals import DEADLINE
from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.errors import Busy
from bridge.conversations.policies import REASON_SHUTTING_DOWN
from bridge.store.records import (
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    Conversation,
    ConversationKey,
    Event,
    Route,
)
from bridge.turn.errors import LaunchError

from . import access, commands
from .bot import User
from .errors import Closing, PlatformError
from .platform import Incoming, Platform, Press

if TYPE_CHECKING:
    from .handlers import BotRunner

__all__ = ["APPROVE", "ChannelAccess", "ChannelWorker", "approval_data"]

log = logging.getLogger("bridge.channels")

#: The prefix of an approval button's data: ``approve:EVENT_ID:CHOICE``.
APPROVE = "approve"
_CHOICES = {"once": (True, "once"), "session": (True, "session"), "deny": (False, "once")}


def approval_data(request_id: int, choice: str) -> str:
    """A button's data for answering approval ``request_id`` with ``choice``
    (``once``, ``session`` or ``deny``); short enough for Telegram's 64 bytes."""
    return f"{APPROVE}:{request_id}:{choice}"


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """Who the channel answers: its policy, the config's users by their id on
    this platform (name, admin), and whether groups are read whole."""

    policy: access.Policy = "pairing"
    users: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    groups_read_all: bool = False
    bot_username: str = ""


class ChannelWorker:
    """The :class:`~bridge.channels.platform.Inbox` of one channel."""

    def __init__(
        self,
        platform: Platform,
        dispatcher: Dispatcher,
        route: Route,
        rules: ChannelAccess,
        *,
        agent: str = "",
        bot: BotRunner | None = None,
    ) -> None:
        self.platform = platform
        self.dispatcher = dispatcher
        self.route = route
        self.rules = rules
        self.agent = agent or route.name
        #: A bot's own handlers, asked before the agent (None: the agent only).
        self.bot = bot

    # --- messages

    async def message(self, incoming: Incoming) -> None:
        sender = await self._sender(incoming.user_id, incoming.display)
        extra = self.bot.bot.commands if self.bot is not None else None
        command = commands.parse(incoming.text, bot_username=self.rules.bot_username, extra=extra)
        decision = access.decide(
            self.rules.policy,
            sender,
            access.Where(incoming.private, incoming.addressed),
            command=command.name if command else "",
            groups_read_all=await self._reads_whole(incoming),
        )
        act = decision.action
        if act is access.Action.IGNORE:
            return
        if act is access.Action.TELL_ID:
            await self._say(incoming.thread, self._whoami(sender, let_in=False))
        elif act is access.Action.GO_PRIVATE:
            await self._say(
                incoming.thread,
                "I answer only people an admin has let in. Write to me in a private chat "
                "to ask for a pairing code.",
            )
        elif act is access.Action.PAIR:
            await self._pair(incoming.thread, sender)
        elif command is not None and command.name in commands.COMMANDS:
            await self._command(incoming.thread, sender, command.name)
        elif not await self._handled(incoming, sender, command):
            await self._submit(incoming, sender)

    async def _reads_whole(self, incoming: Incoming) -> bool:
        """Whether a group message not addressed to the bot is read: the
        config says to read groups whole, or the bot reads this thread."""
        if self.rules.groups_read_all or incoming.private or incoming.addressed:
            return self.rules.groups_read_all
        if self.bot is None:
            return False
        key = ConversationKey(self.platform.name, incoming.thread, self.route)
        return await self.bot.reads(incoming.thread, await self.dispatcher.store.lookup(key))

    async def _handled(
        self, incoming: Incoming, sender: access.Sender, command: commands.Command | None
    ) -> bool:
        """Whether the bot's handlers took the message (an answer to a
        question, or a handler's)."""
        if self.bot is None:
            return False
        conv = await self._conversation(incoming.thread)
        user = User(
            sender.platform_id,
            sender.name,
            sender.display,
            admin=sender.admin,
            known=sender.user is not None or sender.paired,
        )
        if await self.bot.answer(incoming, user, conv):
            return True
        name, args = (command.name, command.rest) if command is not None else ("", "")
        return await self.bot.take(incoming, user, conv, command=name, args=args)

    async def _sender(self, user_id: str, display: str) -> access.Sender:
        known = self.rules.users.get(user_id)
        if known is not None:
            name, admin = known
            return access.Sender(user_id, display, user=name, admin=admin)
        paired = await self.dispatcher.store.paired(self.platform.name, user_id)
        return access.Sender(user_id, display, paired=paired)

    async def _pair(self, thread: str, sender: access.Sender) -> None:
        found = await self.dispatcher.store.request_pairing(
            self.platform.name, sender.platform_id, sender.display
        )
        if found is None:
            text = "Too many people are waiting to be let in right now. Please try again later."
        else:
            text = (
                f"I don't know you yet. Your pairing code is {found.code} (valid for an hour). "
                f"Ask an admin to run: agentproc pairing approve {found.code} "
                "(or to approve it on the bridge's web page)"
            )
        await self._say(thread, text)

    def _whoami(self, sender: access.Sender, *, let_in: bool) -> str:
        head = f"Your {self.platform.name} id is {sender.platform_id}."
        if let_in:
            return f"{head} The bridge knows you as {sender.name}."
        return f"{head} An admin can let you in by adding it to the bridge's config."

    async def _conversation(self, thread: str) -> Conversation:
        return await self.dispatcher.open(ConversationKey(self.platform.name, thread, self.route))

    async def _command(self, thread: str, sender: access.Sender, name: str) -> None:
        if name == "help":
            extra = self.bot.bot.commands if self.bot is not None else None
            await self._say(thread, commands.help_text(agent=self.agent, extra=extra))
        elif name == "whoami":
            await self._say(thread, self._whoami(sender, let_in=True))
        elif name == "new":
            conv = await self._conversation(thread)
            await self.dispatcher.reset(conv.id, by=sender.name)
            await self._say(thread, "Started a fresh conversation: the agent forgets this one.")
        elif name == "cancel":
            conv = await self._conversation(thread)
            event = await self.dispatcher.cancel(conv.id, by=sender.name)
            dropped = len(event.data.get("dropped", ()))
            running = "Stopped the reply being written" if event.turn else "Nothing was running"
            waiting = f"; dropped {dropped} waiting" if dropped else ""
            await self._say(thread, f"{running}{waiting}.")
        elif name == "status":
            await self._say(thread, await self._status(thread))

    async def _status(self, thread: str) -> str:
        conv = await self.dispatcher.store.get((await self._conversation(thread)).id)
        assert conv is not None
        session = conv.session_id or "none yet (the next message starts one)"
        busy = f"turn {conv.running_turn} is running" if conv.running_turn else "idle"
        return (
            f"Agent: {self.agent}. Session: {session}. Now: {busy}. "
            f"Turns so far: {conv.turn_count}."
        )

    async def _submit(self, incoming: Incoming, sender: access.Sender) -> None:
        conv = await self._conversation(incoming.thread)
        try:
            await self.dispatcher.submit(
                conv.id,
                incoming.text,
                attachments=incoming.attachments,
                from_user=sender.name,
                platform_id=incoming.platform_id,
            )
        except Busy as exc:
            if exc.reason == REASON_SHUTTING_DOWN:
                # Not confirmed: the platform sends it again after the restart.
                raise Closing(exc.message) from None
            await self._say(incoming.thread, f"Not sent: {exc.message}. {exc.hint}".strip())
        except LaunchError as exc:
            await self._say(incoming.thread, f"Not sent: {exc.message}.")

    async def follows(self, thread: str) -> bool:
        key = ConversationKey(self.platform.name, thread, self.route)
        return await self.dispatcher.store.lookup(key) is not None

    # --- buttons

    async def press(self, press: Press) -> str:
        if self.bot is not None and self.bot.is_choice(press.data):
            sender = await self._sender(press.user_id, press.display)
            if not (sender.user or sender.admin or sender.paired or self.rules.policy == "open"):
                return "Only people the bridge lets in can answer."
            return self.bot.choices.press(
                press.data, press.user_id, sender.name, admin=sender.admin
            )
        kind, _, rest = press.data.partition(":")
        number, _, choice = rest.partition(":")
        if kind != APPROVE or not number.isdigit() or choice not in _CHOICES:
            return "This button is not one of mine."
        sender = await self._sender(press.user_id, press.display)
        conv = await self._conversation(press.thread)
        request_id = int(number)
        found = await self.dispatcher.store.read(conv.id, request_id - 1, 1)
        request = found[0] if found and found[0].id == request_id else None
        if request is None or request.type != TURN_PERMISSION:
            return "This request is gone."
        if not sender.admin and sender.name not in request.data.get("from_users", ()):
            return "Only the person who asked, or an admin, can answer this."
        allow, scope = _CHOICES[choice]
        answered = await self.dispatcher.answer(
            conv.id, request_id, allow=allow, scope=scope, by=sender.name
        )
        if answered is None:
            return await self._why_closed(conv.id, request)
        return "Allowed." if allow else "Denied."

    async def _why_closed(self, conversation_id: str, request: Event) -> str:
        """Why an approval can no longer be answered: an answer came first,
        or its turn ended without one (cancelled, timed out, abandoned)."""
        later = await self.dispatcher.store.read(conversation_id, request.id, 100_000)
        for e in later:
            if e.type == TURN_PERMISSION_ANSWERED and e.data.get("request") == request.id:
                if e.data.get("by") == DEADLINE:
                    return (
                        "Nobody answered before it closed (its time ran out or its turn "
                        "ended), so it was denied."
                    )
                return "It was answered already."
        return "Its turn has ended, so it can no longer be answered."

    # --- saying things

    async def _say(self, thread: str, text: str) -> None:
        try:
            await self.platform.post(thread, text)
        except PlatformError as exc:  # the person is not told; the log says why
            log.warning("%s: cannot post to %s: %s", self.platform.name, thread, exc)

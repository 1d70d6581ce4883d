"""Running a bot's handlers on a channel.

The channel worker asks a :class:`BotRunner` about each message it lets in
that is not one of the bridge's own commands:

- an answer to an open question (:meth:`Thread.await_choice`) goes to the
  handler waiting for it;
- otherwise, when :meth:`Bot.choose` picks a handler, the message is put in
  the log as ``message.handled`` (so it is kept, and a redelivery is
  recognised, like any message) and the handler starts in a task of its
  own, so the channel confirms the message at once and a handler that waits
  (for a choice, for the agent) holds nothing else up;
- otherwise the message is the agent's, as without a bot.

A handler runs at most once per message: a redelivered message is not
handled again, and one that was being handled when the bridge died is not
handled again after the restart (the log keeps the message). A handler that
raises is logged with its traceback, and the person is told that something
went wrong, never the traceback.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import anyio
from anyio.abc import TaskGroup, TaskStatus

from bridge.store.records import Conversation, Event, NewMessage

from .bot import Bot, Handler, Message, User
from .choices import CHOICE, Choices
from .errors import PlatformError
from .platform import Incoming, Platform
from .thread import Thread, ThreadServices

__all__ = ["BotRunner"]

log = logging.getLogger("bridge.channels")

SORRY = "Sorry, something went wrong on my side while handling that. The bridge's log says what."


class BotRunner:
    """A bot's handlers on one channel (see the module docstring)."""

    def __init__(self, services: ThreadServices) -> None:
        self.services = services
        self._tg: TaskGroup | None = None
        self.running = 0

    @property
    def bot(self) -> Bot:
        return self.services.bot

    @property
    def choices(self) -> Choices:
        return self.services.choices

    @property
    def platform(self) -> Platform:
        return self.services.platform

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run handlers until cancelled (then those still running are
        cancelled); ready once ``tg.start`` returns."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tg = None

    async def reads(self, thread: str, conversation: Conversation | None) -> bool:
        """Whether the bot reads every message of ``thread`` (a question is
        open there, or a handler subscribed to it)."""
        if self.choices.waiting(thread):
            return True
        if conversation is None:
            return False
        return await self.services.dispatcher.store.subscribed(conversation.id)

    def is_choice(self, data: str) -> bool:
        return data.partition(":")[0] == CHOICE

    async def answer(self, incoming: Incoming, user: User, conversation: Conversation) -> bool:
        """Give a text reply to the question it answers; True when it did
        (the reply is then kept in the log as a handled message)."""
        if not self.choices.reply(
            incoming.thread, incoming.text, user.id, user.name, admin=user.admin
        ):
            return False
        await self._record(incoming, user, conversation)
        return True

    async def take(
        self,
        incoming: Incoming,
        user: User,
        conversation: Conversation,
        *,
        command: str = "",
        args: str = "",
    ) -> bool:
        """Start the handler for a message; False when no handler takes it
        (it is the agent's)."""
        message = Message(
            0,
            incoming.text,
            user,
            incoming.platform_id,
            incoming.private,
            incoming.addressed or incoming.private,
            incoming.attachments,
            command,
            args,
        )
        handler = self.bot.choose(message)
        if handler is None:
            return False
        if self._tg is None:
            raise RuntimeError("the bot's handlers are not running: start BotRunner.run first")
        event, duplicate = await self._record(incoming, user, conversation)
        if duplicate:
            return True  # handled (or being handled) already
        thread = Thread(self.services, conversation, replace(message, id=event.id))
        self._tg.start_soon(self._run, handler, thread, name=f"handler {thread!r}")
        return True

    async def _record(
        self, incoming: Incoming, user: User, conversation: Conversation
    ) -> tuple[Event, bool]:
        files = tuple(a.to_dict() for a in incoming.attachments)
        return await self.services.dispatcher.record(
            conversation.id,
            NewMessage(incoming.text, files, user.name, incoming.platform_id, handled=True),
        )

    async def _run(self, handler: Handler, thread: Thread) -> None:
        assert thread.message is not None
        name = getattr(handler, "__qualname__", repr(handler))
        self.running += 1
        try:
            await handler(thread, thread.message)
        except Exception:
            log.exception(
                "the bot's handler %s failed on message %d of %s",
                name,
                thread.message.id,
                thread.conversation_id,
                extra={"conversation": thread.conversation_id},
            )
            try:
                await self.platform.post(thread.conversation_key, SORRY)
            except PlatformError as exc:
                log.warning("%s: cannot say so: %s", self.platform.name, exc)
        finally:
            self.running -= 1

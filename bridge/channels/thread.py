"""The Thread handle: what a bot's handler does in its conversation.

A handler gets a :class:`Thread` for the conversation its message came from
(a private chat, a group, a forum topic, a Slack thread). Every method works
on every platform; where a platform cannot do something the method says so
instead of failing:

============================  ====================  ==================================
method                        needs                 without it
============================  ====================  ==================================
``post``, ``stream``          nothing               (a long text becomes several messages)
``update``                    ``edit``              ``Sent(ok=False, error=...)``
``delete``                    ``delete``            ``Sent(ok=False, error=...)``
``post_file``                 ``files``             ``Sent(ok=False, error=...)``
``await_choice``              ``buttons``           a numbered list; a text reply answers
``lookup_user``               ``user_lookup``       config users and paired people only, else None
============================  ====================  ==================================

``post``/``update``/``delete``/``post_file`` never raise for what the
platform refused: they return a :class:`Sent` with ``ok=False`` and the
platform's reason. A rate-limit answer is waited out (the platform's
``retry_after``), as for an agent's reply.

What a handler posts is not in the conversation's log (it is neither a
person's message nor the agent's reply); what ``run_agent`` starts is: the
prompt (``message`` with ``via: handler``), the turn, and its reply, which
the delivery worker streams into the thread as it does for any turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.errors import Busy
from bridge.store.records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    MESSAGE_HANDLED,
    TURN_COMPLETED,
    Conversation,
)
from bridge.turn.errors import LaunchError

from . import reply_plan as rp
from . import thread_calls as calls
from .bot import Bot, Message, User
from .choices import Choices
from .errors import PlatformError
from .platform import Capabilities, Platform
from .reply_split import measure
from .thread_calls import AgentReply, Said, Sent

__all__ = ["AgentReply", "Said", "Sent", "Thread", "ThreadServices"]

log = logging.getLogger("bridge.channels")


@dataclass
class ThreadServices:
    """What every :class:`Thread` of one channel shares."""

    platform: Platform
    dispatcher: Dispatcher
    bot: Bot
    choices: Choices
    #: The config's users by their id on this platform: (name, admin).
    users: Mapping[str, tuple[str, bool]]
    limits: rp.Limits | Callable[[str], rp.Limits]
    budget: rp.Budget | None = None
    clock: Callable[[], float] = time.monotonic


class Thread:
    """A handler's handle on its conversation (see the module docstring)."""

    def __init__(
        self, services: ThreadServices, conversation: Conversation, message: Message | None = None
    ) -> None:
        self._s = services
        self._conv = conversation
        #: The message the handler was called for (None when called otherwise).
        self.message = message

    # --- where

    @property
    def platform(self) -> str:
        """The channel's name (``telegram``)."""
        return self._s.platform.name

    @property
    def conversation_key(self) -> str:
        """The platform's key for this thread (a chat id, ``CHAT/TOPIC``)."""
        return self._conv.key.key

    @property
    def conversation_id(self) -> str:
        """The conversation's id in the log (what ``agentproc sessions`` shows)."""
        return self._conv.id

    @property
    def capabilities(self) -> Capabilities:
        return self._s.platform.capabilities

    def __repr__(self) -> str:
        return f"Thread({self.platform}:{self.conversation_key})"

    # --- messages

    async def post(self, text: str) -> Sent:
        """Post ``text``; a text over the platform's length limit becomes
        several messages, cut at paragraphs with code fences kept whole."""
        return await self.stream(calls.once(text))

    async def stream(self, chunks: AsyncIterable[str]) -> Sent:
        """Post text as it comes: the message grows as chunks arrive (edited
        within the platform's budget, or drafted where the platform has
        drafts) and ends holding all of it."""
        s = self._s
        return await calls.stream(
            s.platform,
            self.conversation_key,
            chunks,
            limits=self._limits,
            budget=s.budget,
            clock=s.clock,
        )

    async def update(self, message_id: str, text: str) -> Sent:
        """Replace a posted message's text."""
        if not self.capabilities.edit:
            return self._cannot("edit messages")
        if not text or measure(text, self._limits.utf16) > self.capabilities.max_text:
            return Sent(False, message_id, error=self._length_error(text))

        async def edit() -> str:
            await self._s.platform.edit(self.conversation_key, message_id, text)
            return message_id

        return await calls.call(edit)

    async def delete(self, message_id: str) -> Sent:
        """Remove a posted message."""
        if not self.capabilities.delete:
            return self._cannot("delete messages")

        async def remove() -> str:
            await self._s.platform.delete(self.conversation_key, message_id)
            return message_id

        return await calls.call(remove)

    async def post_file(self, path: str | Path, *, caption: str = "") -> Sent:
        """Post a file from the bridge's disk, with an optional caption."""
        if not self.capabilities.files:
            return self._cannot("send files")
        file = Path(path)
        if not file.is_file():
            return Sent(False, error=f"{file} is not a file the bridge can read")
        return await calls.call(
            lambda: self._s.platform.send_file(self.conversation_key, file, caption=caption)
        )

    # --- the agent

    async def run_agent(
        self, prompt: str | None = None, context: str | None = None, transcript: bool = False
    ) -> AgentReply:
        """Run the route's agent on ``prompt`` (default: the message the
        handler was called for, with its attachments) and wait for its end.

        ``context`` goes before the prompt (instructions, what the handler
        looked up); ``transcript=True`` puts the conversation's turns so far
        before both, for an agent that keeps no session of its own. The turn
        runs like any other: one at a time per conversation, under the
        route's busy policy, its reply streamed into the thread and its
        approvals asked here; the returned :class:`AgentReply` has the
        final text too.
        """
        own = self.message
        text = prompt if prompt is not None else (own.text if own else "")
        files = own.attachments if prompt is None and own is not None else ()
        parts = []
        if transcript:
            parts.append(await self._transcript())
        parts += [context or "", text]
        whole = "\n\n".join(p for p in parts if p)
        by = own.user.name if own is not None else ""
        d = self._s.dispatcher
        try:
            handle = await d.submit(
                self.conversation_id, whole, attachments=files, from_user=by, via="handler"
            )
        except (Busy, LaunchError) as exc:
            return AgentReply(False, "", "refused", exc.message, exc.hint)
        end = await d.outcome(self.conversation_id, handle.message.id)
        if end.type == CONVERSATION_CANCEL:
            return AgentReply(
                False, "", "cancelled", "the prompt was dropped before it ran (a /cancel)"
            )
        data = end.data
        return AgentReply(
            data.get("status") == "ok",
            str(data.get("reply") or ""),
            str(data.get("status") or ""),
            str(data.get("error") or ""),
            str(data.get("hint") or ""),
            end.turn,
            str(data.get("session_id") or ""),
        )

    async def _transcript(self) -> str:
        turns = await self._s.dispatcher.store.transcript(self.conversation_id)
        if not turns:
            return ""
        lines = ["The conversation so far:"]
        for t in turns:
            who = ", ".join(t.from_users) or "person"
            lines.append(f"[{who}] {t.message}")
            if t.reply:
                lines.append(f"[agent] {t.reply}")
        return "\n".join(lines)

    # --- questions

    async def await_choice(
        self,
        question: str,
        options: Sequence[str],
        *,
        timeout: float = 300.0,
        default: str | None = None,
        anyone: bool = False,
    ) -> str | None:
        """Ask and wait: buttons where the platform has them, else a
        numbered list answered by a text reply (the number or the option).
        Only the person the handler was called for (or an admin) may answer,
        unless ``anyone``. Returns the chosen option, or ``default`` when
        nobody answers within ``timeout`` seconds (or the question cannot be
        posted). The question is then edited to show the outcome."""
        checked = calls.checked_options(options, default)
        askees = (
            frozenset() if anyone or self.message is None else frozenset({self.message.user.id})
        )
        return await calls.ask(
            self._s.platform,
            self._s.choices,
            self.conversation_key,
            question,
            checked,
            askees=askees,
            timeout=timeout,
            default=default,
        )

    # --- state

    async def state(self) -> Any:
        """The conversation's state: an instance of the bot's state model
        (the raw JSON value when the bot has none), None when never set."""
        raw = await self._s.dispatcher.store.get_state(self.conversation_id)
        model = self._s.bot.state
        if raw is None or model is None:
            return raw
        return model.model_validate(raw)

    async def set_state(self, value: Any) -> None:
        """Store the conversation's state. With a state model, ``value``
        must fit it (an instance, or data it validates); anything else
        raises :class:`~bridge.store.errors.StateError` and nothing is
        written."""
        model = self._s.bot.state
        if model is not None and isinstance(value, model):
            value = value.model_dump(mode="json")
        await self._s.dispatcher.store.set_state(self.conversation_id, value, model=model)

    # --- people and history

    async def get_messages(self, limit: int = 50) -> list[Said]:
        """The last ``limit`` things said in the conversation, oldest first:
        people's messages and the agent's replies, as the log keeps them
        (retention may have dropped older turns). Prompts a handler composed
        are left out; the agent's replies to them are in."""
        said: list[Said] = []
        for e in await self._s.dispatcher.store.read(self.conversation_id, 0, 1_000_000):
            data = e.data
            if e.type in (MESSAGE, MESSAGE_HANDLED) and not data.get("via"):
                said.append(
                    Said(
                        e.id,
                        "person",
                        str(data.get("text", "")),
                        str(data.get("from_user", "")),
                        e.at,
                    )
                )
            elif e.type == TURN_COMPLETED and data.get("reply"):
                said.append(Said(e.id, "agent", str(data["reply"]), "", e.at))
        return said[-limit:] if limit > 0 else []

    async def lookup_user(self, user_id: str) -> User | None:
        """Who ``user_id`` is: a config user, someone let in by pairing, or
        (where the platform can look people up) a stranger; None when
        nobody here knows them."""
        s = self._s
        display = None
        if self.capabilities.user_lookup:
            try:
                display = await s.platform.lookup_user(user_id)
            except PlatformError as exc:
                log.info("%s: cannot look up %s: %s", self.platform, user_id, exc)
        known = s.users.get(user_id)
        if known is not None:
            name, admin = known
            return User(user_id, name, display or name, admin=admin, known=True)
        if await s.dispatcher.store.paired(self.platform, user_id):
            return User(user_id, f"id:{user_id}", display or "", known=True)
        if display is not None:
            return User(user_id, f"id:{user_id}", display)
        return None

    # --- subscriptions

    async def subscribe(self) -> None:
        """Read every message of this thread from now on, not only those
        addressed to the bot (they go to ``on_message`` handlers, or the
        agent)."""
        await self._s.dispatcher.store.set_subscribed(self.conversation_id, True)

    async def unsubscribe(self) -> None:
        await self._s.dispatcher.store.set_subscribed(self.conversation_id, False)

    async def is_subscribed(self) -> bool:
        return await self._s.dispatcher.store.subscribed(self.conversation_id)

    # --- helpers

    @property
    def _limits(self) -> rp.Limits:
        limits = self._s.limits
        return limits(self.conversation_key) if callable(limits) else limits

    def _cannot(self, what: str) -> Sent:
        return Sent(False, error=f"{self.platform} cannot {what}")

    def _length_error(self, text: str) -> str:
        if not text:
            return "the text is empty"
        return f"the text is longer than {self.platform}'s {self.capabilities.max_text} characters"

"""A test kit for bots: an in-memory chat platform, and a whole bridge
around a bot in one ``async with``.

::

    from bridge.channels.testing import try_bot

    async def test_deploy_asks_first() -> None:
        async with try_bot(bot) as chat:
            await chat.say("/deploy main")
            await chat.settle()
            assert chat.texts()[-1] == "Deploy main to production?"
            assert await chat.press("Deploy") == "You chose: Deploy"
            await chat.settle()

:func:`try_bot` runs the real channel worker, the bot's handlers, the
dispatcher, the delivery worker and an in-memory store, with a real agent
process (by default a shell ``echo``): only the chat platform is
:class:`MemoryChat`, which keeps messages as a person would see them (edits
applied, buttons, deleted ones gone) and every call the bridge made, and can
answer with rate limits like a real platform.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bridge.conversations.dispatcher import Dispatcher
from bridge.store.base import Store
from bridge.store.memory import MemoryStore
from bridge.store.records import TURN_COMPLETED, ConversationKey, Event, Route
from bridge.turn.profile import Profile

from . import reply_plan as rp
from .bot import Bot
from .choices import Choices
from .delivery import Delivery
from .errors import NotModified, RateLimited
from .handlers import BotRunner
from .inbound import ChannelAccess, ChannelWorker
from .platform import Button, Capabilities, Inbox, Incoming, Platform, Press
from .thread import ThreadServices

__all__ = ["ECHO", "BotChat", "MemoryChat", "try_bot"]

#: An agent that says back what it was told: ``You said: ...``.
ECHO = Profile(command="/bin/sh", args=["-c", 'printf "You said: %s\\n" "$AGENT_MESSAGE"'])

#: Quick limits for tests: small messages, no waiting between writes.
QUICK = rp.Limits(
    max_length=4096, edit_interval=0.0, send_interval=0.0, first_chars=1, first_delay=0.0
)


class MemoryChat(Platform):
    """A chat platform in memory (see the module docstring)."""

    name = "memory"

    def __init__(self, capabilities: Capabilities | None = None) -> None:
        self.capabilities = capabilities or Capabilities(max_text=4096)
        #: Messages shown now, by id: (thread, text, buttons).
        self.shown: dict[str, tuple[str, str, tuple[Button, ...]]] = {}
        #: Every call, in order: (method, thread, text or message id).
        self.calls: list[tuple[str, str, str]] = []
        #: ``retry_after`` answers to give the next calls, one each.
        self.rate_limits: list[float] = []
        self._next = 0

    @property
    def posts(self) -> list[tuple[str, str]]:
        """(thread, text) of every post, in order."""
        return [(t, x) for m, t, x in self.calls if m == "post"]

    def said(self) -> str:
        """The text of the last post."""
        return self.posts[-1][1] if self.posts else ""

    def texts(self, thread: str) -> list[str]:
        """What the thread shows now, oldest first."""
        return [text for t, text, _ in self.shown.values() if t == thread]

    async def run(self, inbox: Inbox) -> None:  # pragma: no cover - tests drive the inbox
        await anyio.sleep_forever()

    def _limited(self) -> None:
        if self.rate_limits:
            raise RateLimited("too many requests", retry_after=self.rate_limits.pop(0))

    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        self._limited()
        self.calls.append(("post", thread, text))
        self._next += 1
        self.shown[str(self._next)] = (thread, text, buttons)
        return str(self._next)

    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        self._limited()
        self.calls.append(("edit", thread, text))
        if self.shown[message_id][1:] == (text, buttons):
            raise NotModified("message is not modified")
        self.shown[message_id] = (thread, text, buttons)

    async def delete(self, thread: str, message_id: str) -> None:
        self.calls.append(("delete", thread, message_id))
        self.shown.pop(message_id, None)

    async def send_file(self, thread: str, path: Path, *, caption: str = "") -> str:
        self._limited()
        self.calls.append(("file", thread, f"{path.name}: {path.read_text()} ({caption})"))
        self._next += 1
        self.shown[str(self._next)] = (thread, f"[file {path.name}] {caption}", ())
        return str(self._next)


@dataclass
class BotChat:
    """A bot behind a bridge in memory, and the people talking to it."""

    platform: MemoryChat
    worker: ChannelWorker
    dispatcher: Dispatcher
    runner: BotRunner
    route: Route
    _sent: int = field(default=0, repr=False)

    async def say(
        self,
        text: str,
        *,
        user: str = "1",
        thread: str = "chat",
        private: bool = True,
        addressed: bool = False,
        platform_id: str = "",
    ) -> None:
        """``user`` (a platform id) writes ``text`` in ``thread``; returns
        once the bridge took it (its handler may still be running). The
        same ``platform_id`` twice is the platform sending one message again."""
        self._sent += 1
        await self.worker.message(
            Incoming(
                thread,
                platform_id or f"m{self._sent}",
                user,
                f"user {user}",
                text,
                private,
                addressed=addressed,
            )
        )

    async def log(self, thread: str = "chat") -> list[Event]:
        """The conversation log of ``thread`` (empty before anything was said)."""
        key = ConversationKey(self.platform.name, thread, self.route)
        conv = await self.dispatcher.store.lookup(key)
        return [] if conv is None else await self.dispatcher.store.read(conv.id)

    async def press(
        self, label: str, *, user: str = "1", thread: str = "chat", timeout: float = 10.0
    ) -> str:
        """``user`` presses the newest button labelled ``label`` in
        ``thread`` (waiting up to ``timeout`` seconds for one to be shown);
        returns what the presser is shown."""
        with anyio.move_on_after(timeout):
            while True:
                for message_id, (where, _, buttons) in reversed(self.platform.shown.items()):
                    for button in buttons:
                        if where == thread and button.label == label:
                            return await self.worker.press(
                                Press(thread, user, f"user {user}", button.data, message_id)
                            )
                await anyio.sleep(0.01)
        raise LookupError(f"no button {label!r} is shown in {thread}")

    def texts(self, thread: str = "chat") -> list[str]:
        """What ``thread`` shows now, oldest first."""
        return self.platform.texts(thread)

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until no handler and no turn runs and every reply is delivered."""
        store = self.dispatcher.store
        with anyio.fail_after(timeout):
            while True:
                await anyio.sleep(0.02)
                if self.runner.running or self.dispatcher.running_turns:
                    continue
                behind = False
                for conv in await store.conversations(channel=self.platform.name):
                    ends = [e.id for e in await store.read(conv.id) if e.type == TURN_COMPLETED]
                    if ends and await store.acked(self.platform.name, conv.id) < ends[-1]:
                        behind = True
                if not behind:
                    return


@asynccontextmanager
async def try_bot(
    bot: Bot,
    agent: Profile = ECHO,
    *,
    users: Mapping[str, tuple[str, bool]] | None = None,
    capabilities: Capabilities | None = None,
    limits: rp.Limits = QUICK,
    groups_read_all: bool = False,
    store: Store | None = None,
) -> AsyncIterator[BotChat]:
    """A bridge in memory around ``bot``, its agent ``agent``. ``users``
    are the config's people by platform id, (name, admin); by default one
    admin, ``tester``, with id ``1``. ``store`` keeps the log (default: in
    memory; a SQLite store lets a test see what a restart keeps)."""
    platform = MemoryChat(capabilities)
    route = Route("test:agent", str(Path.cwd()), "agent")
    people = {"1": ("tester", True)} if users is None else dict(users)
    async with store or MemoryStore() as kept, Dispatcher(kept, {route: agent}) as d:
        services = ThreadServices(platform, d, bot, Choices(), people, limits)
        runner = BotRunner(services)
        rules = ChannelAccess(users=people, groups_read_all=groups_read_all, bot_username="bot")
        worker = ChannelWorker(platform, d, route, rules, bot=runner)
        async with anyio.create_task_group() as tg:
            await tg.start(runner.run)
            tg.start_soon(Delivery(platform, d, limits).run)
            yield BotChat(platform, worker, d, runner, route)
            tg.cancel_scope.cancel()

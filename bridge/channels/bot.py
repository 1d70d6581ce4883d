"""A bot with handlers of its own, next to the default that runs the agent.

A :class:`Bot` is what a bot file defines and the server loads
(``bot: mybot.py:bot`` in ``bridge.yaml``)::

    bot = Bot(state=Deploys)

    @bot.command("deploy", help="deploy a branch after a confirmation")
    async def deploy(thread: Thread, message: Message) -> None:
        ...

Handlers are ``async def handler(thread, message)``. For each message a
person sends on a chat channel, the bridge's own commands (``/new``,
``/cancel``, ``/status``, ``/whoami``, ``/help``) come first; then
:meth:`Bot.choose` picks one handler, in this order:

1. the bot's command the message starts with (``/deploy``);
2. the first ``on_mention`` handler whose pattern matches, when the message
   is addressed to the bot (a private chat, a mention, a reply to it);
3. the first ``on_message`` handler whose pattern matches (any message the
   bot reads: addressed ones, and every one in a subscribed thread or a
   group it reads whole).

A message no handler takes goes to the route's agent, as without a bot.
A handler that wants the agent too calls ``await thread.run_agent()``.

This module holds the registry and the records handlers get; it does no
I/O. The handle (:class:`~bridge.channels.thread.Thread`) is in
:mod:`bridge.channels.thread`; running handlers in
:mod:`bridge.channels.handlers`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel

from agentproc import wire

from .commands import COMMANDS

if TYPE_CHECKING:
    from .thread import Thread

__all__ = ["Bot", "BotError", "Handler", "Message", "User"]

#: Telegram's rule for command names, which suits every platform.
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class BotError(ValueError):
    """A bot defined wrongly (a bad command name, a handler that is not
    ``async def``): raised where it is defined, so the file fails to load
    with a message naming the mistake."""


@dataclass(frozen=True, slots=True)
class User:
    """A person on a chat platform, as the bridge knows them.

    ``id`` is their platform id; ``name`` the config user they are, or
    ``id:PLATFORM_ID`` for someone let in by pairing or a stranger;
    ``display`` what the platform shows; ``admin`` from the config;
    ``known`` whether the channel lets them in (a config user or paired).
    """

    id: str
    name: str
    display: str = ""
    admin: bool = False
    known: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A message a handler is given.

    ``id`` is its event id in the conversation's log; ``platform_id`` the
    platform's id for it. ``command`` and ``args`` are set when it starts
    with one of the bot's commands (``/deploy main`` → ``"deploy"``,
    ``"main"``). ``addressed`` is true in private chats and for mentions and
    replies to the bot.
    """

    id: int
    text: str
    user: User
    platform_id: str = ""
    private: bool = False
    addressed: bool = False
    attachments: tuple[wire.Attachment, ...] = ()
    command: str = ""
    args: str = ""


Handler = Callable[["Thread", Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: Handler
    pattern: re.Pattern[str] | None = None

    def takes(self, text: str) -> bool:
        return self.pattern is None or self.pattern.search(text) is not None


@dataclass(frozen=True, slots=True)
class _Command:
    handler: Handler
    help: str


def _check_handler(fn: Any, what: str) -> Handler:
    if not callable(fn):
        raise BotError(f"{what}: expected a function, got {type(fn).__name__}")
    if not inspect.iscoroutinefunction(fn):
        name = getattr(fn, "__name__", repr(fn))
        raise BotError(
            f"{what}: {name} must be defined with `async def`, since handlers await "
            "the thread's methods"
        )
    return fn  # type: ignore[no-any-return]


def _pattern(pattern: str | re.Pattern[str] | None, what: str) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise BotError(
            f"{what}: the pattern {pattern!r} is not a regular expression: {exc}"
        ) from None


@dataclass
class Bot:
    """Handlers for a chat bot (see the module docstring).

    ``state`` is the pydantic model a conversation's state must fit:
    :meth:`~bridge.channels.thread.Thread.set_state` refuses anything else
    before writing it, and :meth:`~bridge.channels.thread.Thread.state` gives
    an instance of it back.
    """

    state: type[BaseModel] | None = None
    _mentions: list[_Entry] = field(default_factory=list, repr=False)
    _messages: list[_Entry] = field(default_factory=list, repr=False)
    _commands: dict[str, _Command] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.state is not None and not (
            isinstance(self.state, type) and issubclass(self.state, BaseModel)
        ):
            raise BotError(f"Bot(state=...) must be a pydantic model class, got {self.state!r}")

    # --- registering

    @overload
    def on_message(self, fn: Handler, /) -> Handler: ...
    @overload
    def on_message(
        self, /, *, pattern: str | re.Pattern[str] | None = None
    ) -> Callable[[Handler], Handler]: ...
    def on_message(self, fn: Any = None, /, *, pattern: Any = None) -> Any:
        """Handle messages the bot reads (only those matching ``pattern``,
        a regular expression searched in the text, when given)."""
        return self._register(self._messages, "on_message", fn, pattern)

    @overload
    def on_mention(self, fn: Handler, /) -> Handler: ...
    @overload
    def on_mention(
        self, /, *, pattern: str | re.Pattern[str] | None = None
    ) -> Callable[[Handler], Handler]: ...
    def on_mention(self, fn: Any = None, /, *, pattern: Any = None) -> Any:
        """Handle messages addressed to the bot: private chats, mentions,
        replies to it (only those matching ``pattern``, when given)."""
        return self._register(self._mentions, "on_mention", fn, pattern)

    def command(self, name: str, *, help: str = "") -> Callable[[Handler], Handler]:
        """Handle ``/name``; ``help`` is its line in ``/help``. The rest of
        the message is ``message.args``."""
        what = f"command {name!r}"
        if not isinstance(name, str) or not _COMMAND_NAME.fullmatch(name):
            raise BotError(
                f"{what}: a command name is 1 to 32 lowercase letters, digits or underscores"
            )
        if name in COMMANDS:
            raise BotError(f"{what}: /{name} is one of the bridge's own commands; pick another")
        if name in self._commands:
            raise BotError(f"{what}: /{name} is defined twice")

        def register(fn: Handler) -> Handler:
            self._commands[name] = _Command(_check_handler(fn, what), help)
            return fn

        return register

    def _register(
        self,
        into: list[_Entry],
        what: str,
        fn: Handler | None,
        pattern: str | re.Pattern[str] | None,
    ) -> Any:
        compiled = _pattern(pattern, what)

        def register(handler: Handler) -> Handler:
            into.append(_Entry(_check_handler(handler, what), compiled))
            return handler

        return register if fn is None else register(fn)

    # --- choosing

    @property
    def commands(self) -> dict[str, str]:
        """The bot's commands and their help, in the order they were defined."""
        return {name: c.help or "(no description)" for name, c in self._commands.items()}

    def choose(self, message: Message) -> Handler | None:
        """The handler for ``message``, or None for the agent."""
        if message.command:
            found = self._commands.get(message.command)
            if found is not None:
                return found.handler
        if message.addressed:
            for entry in self._mentions:
                if entry.takes(message.text):
                    return entry.handler
        for entry in self._messages:
            if entry.takes(message.text):
                return entry.handler
        return None

    @property
    def reads_commands(self) -> bool:
        return bool(self._commands)

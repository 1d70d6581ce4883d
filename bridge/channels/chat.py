"""The terminal channel: ``agentproc chat``.

One conversation (``terminal:<session-name>@<profile>``) on the dispatcher,
remembered in the session store, so quitting and starting again resumes the
same agent session. Interactive at a terminal; with piped input it reads one
message per line and answers each in turn, so it can be scripted.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

import anyio
import anyio.abc

from agentproc.wire import PermissionDecision, PermissionRequest
from bridge.conversations.legacy import Busy, Dispatcher, Finished, PartialText, Subscription
from bridge.errors import BridgeError
from bridge.store.sessions import ConversationKey, SessionStore
from bridge.turn.machine import TurnResult
from bridge.turn.profile import Profile

from .terminal import StdinLines, ask_permission, deny_without_terminal, write_reply

HELP = """\
commands:
  /new         start a new agent session (the next message starts fresh)
  /cancel      cancel the running turn (Ctrl-C does the same)
  /session     show this conversation's agent session
  /history [N] show the last N turns (default 10)
  /help        this list
  /quit        leave (Ctrl-C twice, or Ctrl-D, too)
a line starting with // sends the rest starting with /
"""

PROMPT = "you> "


class TerminalChat:
    """Drives one terminal conversation: input lines in, turns out."""

    def __init__(
        self,
        store: SessionStore,
        profile: Profile,
        *,
        session_name: str = "default",
        from_user: str = "",
        lines: StdinLines | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        self.name = profile.display_name
        self.key = ConversationKey("terminal", session_name, self.name)
        self.from_user = from_user
        self.lines = lines or StdinLines()
        self.interactive = self.lines.is_terminal
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._running_turn: int | None = None
        self._interrupts = 0
        self._quit_scope = anyio.CancelScope()
        self._dispatcher: Dispatcher | None = None
        #: Turns that ended with an error (or could not be sent at all).
        self.failed_turns = 0

    def say(self, text: str) -> None:
        """A line for the person, on stderr (stdout carries only replies)."""
        self.err.write(text + "\n")
        self.err.flush()

    async def _ask(
        self, key: ConversationKey, turn: int, req: PermissionRequest
    ) -> PermissionDecision:
        if not self.interactive:
            return deny_without_terminal(req, "stdin is not a terminal")
        return await ask_permission(self.lines, req)

    async def run(self) -> int:
        """Chat until /quit, EOF or a second Ctrl-C; returns the exit status:
        with piped input 1 when any turn failed, else 0."""
        async with (
            Dispatcher(
                self.store, {self.name: self.profile}, on_permission=self._ask
            ) as dispatcher,
            dispatcher.subscribe(self.key) as events,
        ):
            self._dispatcher = dispatcher
            async with anyio.create_task_group() as tg:
                await tg.start(self._watch_signals)
                await self._greet()
                with self._quit_scope:
                    await self._loop(dispatcher, events)
                tg.cancel_scope.cancel()
        # A script feeding messages must learn that some got no answer.
        return 1 if self.failed_turns and not self.interactive else 0

    async def _greet(self) -> None:
        # What loading the profile noted (a reference-format file's unused
        # keys) is said once here, not after every turn.
        for warning in self.profile.load_warnings:
            self.say(f"warning: {warning}")
        if not self.interactive:
            return
        conv = await self.store.get(self.key)
        where = f"session '{self.key.key}'"
        if conv is not None and conv.session_id:
            where += f", resuming agent session {conv.session_id} after {conv.turn_count} turns"
        self.say(f"Chatting with {self.name} ({where}). /help lists commands.")

    async def _loop(self, dispatcher: Dispatcher, events: Subscription) -> None:
        while True:
            if self.interactive:
                self.err.write(PROMPT)
                self.err.flush()
            line = await self.lines.readline()
            if line is None:
                if self.interactive:
                    self.say("")
                return
            self._interrupts = 0
            text = line.strip()
            if not text:
                continue
            if text.startswith("/") and not text.startswith("//"):
                if not await self._command(text):
                    return
                continue
            message = line[1:] if text.startswith("//") else line
            await self._turn(dispatcher, events, message)

    async def _turn(self, dispatcher: Dispatcher, events: Subscription, message: str) -> None:
        try:
            handle = await dispatcher.submit(self.key, message, from_user=self.from_user)
        except (Busy, BridgeError) as exc:
            self.failed_turns += 1
            self.say(f"error: {exc}")
            return
        self._running_turn = handle.turn
        streamed: list[str] = []
        try:
            async for event in events:
                if event.turn != handle.turn:
                    continue
                if isinstance(event, PartialText):
                    streamed.append(event.text)
                    self.out.write(event.text)
                    self.out.flush()
                elif isinstance(event, Finished):
                    self._show(event.result, streamed)
                    break
        finally:
            self._running_turn = None

    def _show(self, result: TurnResult, streamed: list[str]) -> None:
        if result.error is not None:
            self.failed_turns += 1
        write_reply(self.out, self.err, streamed, result.reply)
        for warning in result.warnings:
            if warning not in self.profile.load_warnings:
                self.say(f"warning: {warning}")
        if result.error is not None:
            self.say(f"error: {result.error}")
            if result.hint:
                self.say(f"hint: {result.hint}")

    async def _command(self, text: str) -> bool:
        """Run a /command; False means quit."""
        name, _, arg = text.partition(" ")
        name = name.lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            self.err.write(HELP)
        elif name == "/new":
            assert self._dispatcher is not None
            await self._dispatcher.reset(self.key)
            self.say("new session: the next message starts a fresh agent session")
        elif name == "/cancel":
            self.say("nothing is running")
        elif name == "/session":
            await self._show_session()
        elif name == "/history":
            await self._show_history(arg.strip())
        else:
            self.say(f"unknown command {name}; /help lists the commands")
        return True

    async def _show_session(self) -> None:
        conv = await self.store.get(self.key)
        if conv is None:
            self.say(f"{self.key}: no turns yet")
            return
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(conv.updated_at))
        session = conv.session_id or "(none: the next turn starts fresh)"
        turns = f"{conv.turn_count} turn{'' if conv.turn_count == 1 else 's'}"
        self.say(
            f"{self.key}: agent session {session}, {turns}, "
            f"last {conv.last_status or '-'} at {when}"
        )

    async def _show_history(self, arg: str) -> None:
        try:
            limit = int(arg) if arg else 10
        except ValueError:
            self.say("usage: /history [N]")
            return
        turns = await self.store.transcript(self.key, limit=max(limit, 1))
        if not turns:
            self.say("no turns yet")
        for entry in turns:
            self.say(f"#{entry.turn} you: {entry.message}")
            answer = entry.reply if entry.error is None else f"error: {entry.error}"
            self.say(f"#{entry.turn} {self.name}: {answer}")

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self._interrupts += 1
                if signum == signal.SIGTERM or self._interrupts >= 2:
                    self.say("")
                    if self._running_turn is not None and self._dispatcher is not None:
                        await self._dispatcher.cancel(self.key)
                    self._quit_scope.cancel()
                elif self._running_turn is not None and self._dispatcher is not None:
                    await self._dispatcher.cancel(self.key)
                    self.say("\ncancelling (Ctrl-C again to quit)")
                else:
                    self.say("\n(Ctrl-C again, /quit or Ctrl-D to leave)")
                    if self.interactive:
                        self.err.write(PROMPT)
                        self.err.flush()


def run_chat(
    store_factory: Callable[[], SessionStore],
    profile: Profile,
    *,
    session_name: str,
    from_user: str,
) -> int:
    async def main() -> int:
        async with store_factory() as store:
            chat = TerminalChat(store, profile, session_name=session_name, from_user=from_user)
            return await chat.run()

    return anyio.run(main)

"""The terminal channel: ``agentproc chat``.

One conversation in the store's log, ``terminal:<session-name>@<profile>`` on
the route (the profile, the folder its agent runs in), run by the
:class:`~bridge.conversations.dispatcher.Dispatcher`. Quitting and starting
again resumes the same agent session; two terminals on one conversation share
it: each shows what the other sends and what the agent answers, and the
store's lease runs one turn at a time, whichever terminal it came from.

Reading and showing are two tasks. One reads what the person types (at a
terminal with line editing, :mod:`~bridge.channels.prompt_input`) and sends
it, runs the /commands, answers approvals; it never waits for a turn, so
``/cancel``, Ctrl-C and new messages (under the profile's busy policy) work
while one runs. The other reads the conversation's events from the position
the chat opened at and shows them through a :class:`~bridge.channels.chat_view.ChatView`:
every streamed chunk once, however long the reply. With piped input each line
waits for its turn to end before the next is sent, so scripts stay
deterministic, and the exit status says whether every turn went well.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

import anyio
import anyio.abc

from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.errors import Busy
from bridge.conversations.hub import Subscription
from bridge.errors import BridgeError
from bridge.store.base import Store
from bridge.store.records import TURN_QUEUED, Conversation, ConversationKey, Route
from bridge.turn.profile import Profile

from .chat_view import (
    Approval,
    ApprovalClosed,
    ChatView,
    EndLine,
    FinalHeader,
    Note,
    Output,
    Settled,
    Text,
)
from .terminal import (
    FINAL_HEADER,
    StdinLines,
    denial_without_terminal,
    describe_permission,
    printable,
    use_color,
)

__all__ = ["CHANNEL", "HELP", "TerminalChat", "route_for", "run_chat"]

#: The channel name of terminal conversations.
CHANNEL = "terminal"

HELP = """\
commands (they work while a turn runs):
  /new         start a new agent session (the next message starts fresh)
  /cancel      cancel the running turn and drop waiting messages (Ctrl-C does the same)
  /session     show this conversation and its agent session
  /history [N] show the last N turns (default 10)
  /help        this list
  /quit        leave (Ctrl-C twice, or Ctrl-D, too)
a line starting with // sends the rest starting with /
"""

PROMPT = "you> "

#: What a message typed while a turn runs does, by busy policy.
BUSY_NOTES = {
    "queue": "(queued: it runs after the current turn)",
    "collect": "(collected: it goes to the agent with any other waiting messages "
    "after the current turn)",
    "interrupt": "(interrupting: the current turn is cancelled and this message runs next)",
}

#: How long leaving waits for the last events to be shown.
DRAIN_SECS = 5.0


def route_for(profile_arg: str, profile: Profile, session_name: str) -> Route:
    """The route of ``agentproc chat PROFILE``: the profile as it was named
    (``bundled:NAME`` for a bundled one, else its file or folder's absolute
    path) and the folder its agent runs in, computed the way a turn computes
    it (the profile's ``cwd``, else its folder; a bundled profile, or a
    reference one without ``cwd``, runs in the chat's current folder)."""
    from bridge.turn.bundled import BUNDLED_PREFIX, resolve_profile_arg
    from bridge.turn.errors import LaunchError
    from bridge.turn.launch import build_plan
    from bridge.turn.request import TurnRequest

    _, bundled = resolve_profile_arg(profile_arg)
    if bundled:
        ref = BUNDLED_PREFIX + profile_arg.removeprefix(BUNDLED_PREFIX)
    else:
        ref = str(Path(profile_arg).resolve())
    try:
        folder = build_plan(profile, TurnRequest("(route)", session_name=session_name)).cwd
    except LaunchError:  # a profile that cannot run at all: its turns will say why
        folder = os.getcwd()
    return Route(ref, os.path.realpath(folder), profile.display_name)


class LineSource(Protocol):
    """Where the person's lines come from, and where the chat writes."""

    interactive: bool
    out: TextIO
    err: TextIO

    async def read(self) -> str | None: ...

    def prompt_changed(self) -> None: ...


class PlainLines:
    """stdin without line editing: piped input (``interactive`` False), or a
    terminal whose output goes elsewhere (the prompt is written to stderr)."""

    def __init__(self, prompt: Callable[[], str], *, interactive: bool) -> None:
        self.interactive = interactive
        self.out = sys.stdout
        self.err = sys.stderr
        self._prompt = prompt
        self._lines = StdinLines()

    async def read(self) -> str | None:
        if self.interactive:
            self.err.write(self._prompt())
            self.err.flush()
        line = await self._lines.readline()
        if line is None and self.interactive:
            self.err.write("\n")
        return line

    def prompt_changed(self) -> None:
        if self.interactive:
            self.err.write(self._prompt())
            self.err.flush()


@contextlib.contextmanager
def open_lines(prompt: Callable[[], str], data_folder: Path | None) -> Iterator[LineSource]:
    """prompt_toolkit's line editing when stdin and stdout are a terminal;
    plain lines otherwise (prompt_toolkit is not even imported then)."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from .prompt_input import PromptLines

        with PromptLines.open(prompt, data_folder) as lines:
            yield lines
    else:
        yield PlainLines(prompt, interactive=sys.stdin.isatty())


#: The exit status when the reader of stdout went away (128 + SIGPIPE, as a shell says).
EXIT_OUTPUT_GONE = 141


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null, so what it still holds
    (and Python's flush at exit) goes nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Screen:
    """Writes the view's outputs: agent text on ``out``, notes on ``err``.

    It knows whether the agent's last line is still open, so a note (when
    both streams are one terminal) starts on a line of its own, and a turn's
    end closes the line once. When the reader of a stream has gone (a closed
    pipe), ``gone`` is set and writing goes nowhere.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.gone = False
        self._open = False
        try:
            self._shared = out.isatty() and err.isatty()
        except (AttributeError, ValueError):
            self._shared = False

    def _write(self, stream: TextIO, text: str) -> None:
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self.gone = True
            _silence(stream)

    def text(self, text: str) -> None:
        if text:
            self._write(self.out, text)
            self._open = not text.endswith("\n")

    def end_line(self) -> None:
        if self._open:
            self._write(self.out, "\n")
            self._open = False

    def note(self, text: str) -> None:
        if self._shared:
            self.end_line()
        self._write(self.err, text + "\n")

    def header(self) -> None:
        self.note(f"\x1b[2m{FINAL_HEADER}\x1b[0m" if use_color(self.err) else FINAL_HEADER)


class TerminalChat:
    """Drives one terminal conversation: the person's lines in, the log's events out."""

    def __init__(
        self,
        store: Store,
        profile: Profile,
        key: ConversationKey,
        *,
        session_name: str,
        from_user: str = "",
        data_folder: Path | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        self.key = key
        self.session_name = session_name
        self.from_user = from_user
        self.data_folder = data_folder
        self.name = profile.display_name
        #: Turns of this terminal's messages that did not end well (or were refused).
        self.failed_turns = 0
        self._tag = f"{CHANNEL}-{secrets.token_hex(6)}-"
        self._sent = 0
        self.view = ChatView(tag=self._tag, known_warnings=profile.load_warnings)
        self._approvals: list[Approval] = []
        self._settled: dict[int, anyio.Event] = {}
        self._interrupts = 0
        self._quit_scope = anyio.CancelScope()
        self._urgent = False  # leave now: cancel the turns this process runs
        self._lines: LineSource | None = None
        self._screen: Screen | None = None
        self._d: Dispatcher | None = None
        self._conv_id = ""
        self._drained: anyio.Event | None = None

    # --- plumbing ---------------------------------------------------------------------

    @property
    def d(self) -> Dispatcher:
        assert self._d is not None
        return self._d

    @property
    def screen(self) -> Screen:
        assert self._screen is not None
        return self._screen

    @property
    def interactive(self) -> bool:
        return self._lines is not None and self._lines.interactive

    def say(self, text: str) -> None:
        """A line for the person, on stderr (stdout carries only the agent's text)."""
        self.screen.note(text)

    def prompt(self) -> str:
        if self._approvals:
            return f"Allow {printable(self._approvals[0].tool)}? [y/N] "
        return PROMPT

    def _prompt_changed(self) -> None:
        if self._lines is not None:
            self._lines.prompt_changed()

    def _settle_event(self, message: int) -> anyio.Event:
        event = self._settled.get(message)
        if event is None:
            event = self._settled[message] = anyio.Event()
        return event

    # --- life -------------------------------------------------------------------------

    async def run(self) -> int:
        """Chat until /quit, the end of input, a second Ctrl-C or SIGTERM;
        returns the exit status: with piped input 1 when any turn of this
        terminal's failed, else 0."""
        # Open the conversation as it stands and greet, before any prompt is
        # drawn (so the greeting comes first); reading starts from here.
        conv = await self.store.open(self.key, session_name=self.session_name)
        self._conv_id = conv.id
        await self._seed(conv)
        self._screen = Screen(sys.stdout, sys.stderr)
        for warning in self.profile.load_warnings:
            self.say(f"warning: {warning}")
        if sys.stdin.isatty():
            self._greet(conv)
        with open_lines(self.prompt, self.data_folder) as lines:
            self._lines = lines
            self._screen = Screen(lines.out, lines.err)
            async with Dispatcher(self.store, {self.key.route: self.profile}) as d:
                self._d = d
                await self._chat(d, conv)
        if self.screen.gone:
            return EXIT_OUTPUT_GONE
        # A script feeding messages must learn that some got no answer.
        return 1 if self.failed_turns and not lines.interactive else 0

    async def _chat(self, d: Dispatcher, conv: Conversation) -> None:
        # Read from where the conversation stood when opened, then have the
        # dispatcher serve it: a dead chat's turn it closes as abandoned is
        # then among the events this terminal reads and shows.
        self._drained = anyio.Event()
        async with d.subscribe(conv.id, after=conv.last_event) as events:
            await d.open(self.key, session_name=self.session_name)
            await self._running_elsewhere(conv)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._show, events)
                await tg.start(self._watch_signals)
                with self._quit_scope:
                    await self._read()
                await self._leave(d)
                with anyio.move_on_after(DRAIN_SECS):
                    await self._drained.wait()  # the dispatcher's close ends the reading
                tg.cancel_scope.cancel()

    async def _seed(self, conv: Conversation) -> None:
        """Learn which message a turn taken before this chat opened took."""
        if not conv.running_turn:
            return
        for event in await self.store.read(conv.id, after=conv.consumed, limit=64):
            if event.type == TURN_QUEUED and event.turn == conv.running_turn:
                self.view.seed(event)

    def _greet(self, conv: Conversation) -> None:
        where = f"session '{self.key.key}'"
        if conv.session_id:
            turns = f"{conv.turn_count} turn{'' if conv.turn_count == 1 else 's'}"
            where += f", resuming agent session {conv.session_id} after {turns}"
        elif conv.turn_count:
            turns = f"{conv.turn_count} turn{'' if conv.turn_count == 1 else 's'}"
            where += f", {turns} so far, the next starts a fresh agent session"
        self.say(
            f"Chatting with {self.name} in {self.key.route.cwd} ({where}). /help lists commands."
        )

    async def _running_elsewhere(self, before: Conversation) -> None:
        """Say which turn is running now, when another terminal started it."""
        conv = await self.store.get(before.id)
        if conv is None or not conv.running_turn or conv.running_turn != before.running_turn:
            return
        text = self.view.turn_text(conv.running_turn)
        what = f": {text}" if text else ""
        self.say(f"(turn {conv.running_turn} is running, sent from another terminal{what})")

    async def _leave(self, d: Dispatcher) -> None:
        """Leaving at once (Ctrl-C twice, SIGTERM, /quit or Ctrl-D at a
        terminal) cancels the turn this process runs; piped input ending lets
        it finish first. Waiting messages stay in the log for another chat."""
        with anyio.CancelScope(shield=True):
            if not (self._urgent or self.interactive):
                await d.aclose()
                return
            conv = await self.store.get(self._conv_id)
            if conv is not None and conv.running_turn and conv.lease_owner == d.owner:
                self.say(f"cancelling turn {conv.running_turn}: this chat is running it")
            await d.aclose(grace=0.0)

    # --- showing --------------------------------------------------------------------------

    async def _show(self, events: Subscription) -> None:
        try:
            async for event in events:
                for output in self.view.feed(event):
                    await self._carry_out(output)
                if self.screen.gone and not self._urgent:  # nobody reads what we say
                    self._urgent = True
                    self._quit_scope.cancel()
        finally:
            assert self._drained is not None
            self._drained.set()

    async def _carry_out(self, output: Output) -> None:
        screen = self.screen
        if isinstance(output, Text):
            screen.text(output.text)
        elif isinstance(output, EndLine):
            screen.end_line()
        elif isinstance(output, FinalHeader):
            screen.header()
        elif isinstance(output, Note):
            screen.note(output.text)
        elif isinstance(output, Approval):
            await self._approval(output)
        elif isinstance(output, ApprovalClosed):
            before = len(self._approvals)
            self._approvals = [a for a in self._approvals if a.request != output.request]
            if len(self._approvals) != before:
                self._prompt_changed()
        elif isinstance(output, Settled):
            if output.mine and not output.ok:
                self.failed_turns += 1
            for m in output.messages:
                self._settle_event(m).set()

    async def _approval(self, request: Approval) -> None:
        for line in describe_permission(request.tool, request.description, request.input):
            self.say(line)
        if self.interactive:
            self._approvals.append(request)
            self._prompt_changed()
            return
        if not request.mine:
            return  # the terminal that sent it answers
        why = "stdin is not a terminal"
        self.say(f"agentproc: denied {printable(request.tool)}: {why}")
        answer = await self.d.answer(
            self._conv_id,
            request.request,
            allow=False,
            message=denial_without_terminal(why),
            by=self.from_user,
        )
        if answer is not None:
            self.view.own.add(answer.id)

    # --- reading ------------------------------------------------------------------------

    async def _read(self) -> None:
        lines = self._lines
        assert lines is not None
        while True:
            try:
                line = await lines.read()
            except KeyboardInterrupt:  # Ctrl-C at the prompt
                if await self._interrupt():
                    self._urgent = True
                    return
                continue
            if line is None:
                return
            self._interrupts = 0
            if not await self._line(line):
                return

    async def _line(self, line: str) -> bool:
        """Handle one input; False means leave."""
        text = line.strip()
        command = text.startswith("/") and not text.startswith("//") and "\n" not in text
        if self._approvals and not command:
            await self._answer(text)
            return True
        if not text:
            return True
        if command:
            return await self._command(text)
        await self._send(line[1:] if text.startswith("//") else line)
        return True

    async def _send(self, message: str) -> None:
        self._sent += 1
        busy_before = bool(self.view.running or self.view.waiting)
        try:
            sent = await self.d.submit(
                self._conv_id,
                message,
                from_user=self.from_user,
                platform_id=f"{self._tag}{self._sent}",
            )
        except Busy as exc:
            self.failed_turns += 1
            self.say(f"error: {exc}")
            if exc.hint:
                self.say(f"hint: {exc.hint}")
            return
        except BridgeError as exc:
            self.failed_turns += 1
            self.say(f"error: {exc}")
            return
        if self.interactive:
            if busy_before:
                policy = self.profile.busy_policy or "queue"
                self.say(BUSY_NOTES.get(policy, BUSY_NOTES["queue"]))
            return
        # Piped input: one line at a time, each answered before the next is sent.
        await self._settle_event(sent.message.id).wait()

    async def _answer(self, text: str) -> None:
        request = self._approvals.pop(0)
        allow = text.lower() in ("y", "yes")
        answer = await self.d.answer(
            self._conv_id,
            request.request,
            allow=allow,
            message="" if allow else "denied by the user at the terminal",
            by=self.from_user,
        )
        tool = printable(request.tool)
        if answer is None:
            self.say(f"{tool}: already answered in another terminal (or its turn has ended)")
        else:
            self.view.own.add(answer.id)
            self.say(f"{'allowed' if allow else 'denied'} {tool}")
        self._prompt_changed()

    async def _interrupt(self) -> bool:
        """Ctrl-C (the key at the prompt, or SIGINT): the first cancels the
        running turn; the second in a row leaves. True means leave."""
        self._interrupts += 1
        if self._interrupts >= 2:
            self.say("")
            return True
        if self.view.running:
            await self._cancel()
            self.say("(Ctrl-C again to quit)")
        else:
            self.say("(Ctrl-C again, /quit or Ctrl-D to leave)")
        return False

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGTERM or await self._interrupt():
                    self._urgent = True
                    self._quit_scope.cancel()

    # --- commands -----------------------------------------------------------------------

    async def _command(self, text: str) -> bool:
        """Run a /command; False means quit."""
        name, _, arg = text.partition(" ")
        name = name.lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            for line in HELP.splitlines():
                self.say(line)
        elif name == "/new":
            event = await self.d.reset(self._conv_id, by=self.from_user)
            self.view.own.add(event.id)
            self.say("new session: the next message starts a fresh agent session")
        elif name == "/cancel":
            await self._cancel()
        elif name == "/session":
            await self._show_session()
        elif name == "/history":
            await self._show_history(arg.strip())
        else:
            self.say(f"unknown command {printable(name)}; /help lists the commands")
        return True

    async def _cancel(self) -> None:
        if not self.view.running and not self.view.waiting:
            self.say("nothing is running")
            return
        event = await self.d.cancel(self._conv_id, by=self.from_user)
        self.view.own.add(event.id)
        dropped = len(event.data.get("dropped", ()))
        done = []
        if event.turn:
            done.append(f"cancelling turn {event.turn}")
        if dropped:
            done.append(f"dropped {dropped} waiting message{'' if dropped == 1 else 's'}")
        self.say("; ".join(done) if done else "nothing is running")

    async def _show_session(self) -> None:
        conv = await self.store.get(self._conv_id)
        if conv is None:
            self.say(f"{self.key}: gone from the store")
            return
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(conv.updated_at))
        session = conv.session_id or "(none: the next turn starts fresh)"
        turns = f"{conv.turn_count} turn{'' if conv.turn_count == 1 else 's'}"
        self.say(
            f"{conv.label}: agent session {session}, {turns}, "
            f"last {conv.last_status or '-'} at {when}"
        )
        running = f", turn {conv.running_turn} running" if conv.running_turn else ""
        self.say(f"  conversation {conv.id}, agent folder {conv.key.route.cwd}{running}")

    async def _show_history(self, arg: str) -> None:
        try:
            limit = int(arg) if arg else 10
        except ValueError:
            self.say("usage: /history [N]")
            return
        turns = await self.store.transcript(self._conv_id, limit=max(limit, 1))
        if not turns:
            self.say("no turns yet")
        for entry in turns:
            users = [u for u in entry.from_users if u]
            who = "you" if not users or users == [self.from_user] else ", ".join(users)
            self.say(f"#{entry.turn} {printable(who)}: {entry.message}")
            answer = entry.reply if entry.error is None else f"error: {entry.error}"
            self.say(f"#{entry.turn} {self.name}: {answer}")


def run_chat(
    open_store: Callable[[], Store],
    profile: Profile,
    route: Route,
    *,
    session_name: str,
    from_user: str,
    data_folder: Path | None = None,
) -> int:
    """Run ``agentproc chat`` to its end; returns the exit status."""

    async def main() -> int:
        async with open_store() as store:
            chat = TerminalChat(
                store,
                profile,
                ConversationKey(CHANNEL, session_name, route),
                session_name=session_name,
                from_user=from_user,
                data_folder=data_folder,
            )
            return await chat.run()

    return anyio.run(main)

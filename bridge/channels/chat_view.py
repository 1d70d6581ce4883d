"""What the terminal chat shows for a conversation's events: a plan, no I/O.

:class:`ChatView` is fed the events of one conversation's log in order, as a
subscription hands them out (live chunks included), and returns what to do
for each, as typed outputs: agent text for stdout (:class:`Text`), the end of
an open line (:class:`EndLine`), the header above a final reply that differs
from what streamed (:class:`FinalHeader`), a line for the person
(:class:`Note`), an approval to ask or deny (:class:`Approval`) or no longer
to ask (:class:`ApprovalClosed`), and the messages whose turn is over
(:class:`Settled`). The terminal chat (:mod:`bridge.channels.chat`) carries
the outputs out; tests feed events and read outputs, without a process.

Whose is what: a message is *this terminal's* when its ``platform_id``
starts with the terminal's ``tag`` (every message it sends carries one), so
the view knows it the moment the event arrives, whichever process wrote it.
Cancels, resets and answers this terminal wrote are in :attr:`ChatView.own`
(the chat adds each id as its write returns); the view says nothing of those,
since the chat already did. Everything else came from another terminal (or
another channel) and is said to be.

The reply is shown once: the streamed text as it arrives, then, when the
turn ends, the final reply only if it is not what streamed
(:func:`~bridge.channels.terminal.reply_was_streamed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.conversations.approvals import DEADLINE
from bridge.conversations.hub import TRIMMED
from bridge.store.records import (
    CONVERSATION_CANCEL,
    CONVERSATION_RESET,
    MESSAGE,
    STATUS_ABANDONED,
    STATUS_OK,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    Event,
)

from .terminal import printable, reply_was_streamed

__all__ = [
    "OTHER",
    "Approval",
    "ApprovalClosed",
    "ChatView",
    "EndLine",
    "FinalHeader",
    "Note",
    "Output",
    "Settled",
    "Text",
]

#: How a message, cancel or answer from elsewhere is marked.
OTHER = "[other terminal]"


@dataclass(frozen=True, slots=True)
class Text:
    """The agent's text, for stdout as it is."""

    text: str


@dataclass(frozen=True, slots=True)
class EndLine:
    """End the agent's line on stdout, if the last text left it open."""


@dataclass(frozen=True, slots=True)
class FinalHeader:
    """The line (on stderr) that marks the final reply below the streamed text."""


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the person (stderr)."""

    text: str


@dataclass(frozen=True, slots=True)
class Approval:
    """An agent asks to use a tool; ``request`` is the ``turn.permission``
    event's id, which the answer names. ``mine``: the turn runs this
    terminal's message."""

    request: int
    turn: int
    tool: str
    description: str
    input: Mapping[str, Any]
    mine: bool


@dataclass(frozen=True, slots=True)
class ApprovalClosed:
    """The request was answered (here or elsewhere) or its turn ended."""

    request: int


@dataclass(frozen=True, slots=True)
class Settled:
    """These messages got their outcome: their turn ended (``ok`` when it
    ended well), or a cancel dropped them (never ``ok``). ``mine``: one of
    them is this terminal's."""

    messages: tuple[int, ...]
    ok: bool
    mine: bool


Output = Text | EndLine | FinalHeader | Note | Approval | ApprovalClosed | Settled


@dataclass(slots=True)
class _Turn:
    number: int
    messages: tuple[int, ...] = ()
    text: str = ""
    mine: bool = False
    streamed: list[str] = field(default_factory=list)


def _quoted(text: str) -> str:
    """A person's message on one note: continuation lines indented."""
    return printable(text).replace("\n", "\n  ")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class ChatView:
    """One terminal's view of a conversation (see the module docstring).

    ``tag`` is the prefix of this terminal's platform ids; ``known_warnings``
    are warnings said once at start-up (the profile's), not after every turn.
    """

    def __init__(self, *, tag: str, known_warnings: Sequence[str] = ()) -> None:
        self.tag = tag
        self.known_warnings = frozenset(known_warnings)
        #: Ids of the cancels, resets and answers this terminal wrote.
        self.own: set[int] = set()
        self._turns: dict[int, _Turn] = {}
        self._pending: dict[int, tuple[str, bool]] = {}  # message id -> (text, mine)
        self._mine: set[int] = set()
        self._approvals: dict[int, Approval] = {}

    # --- what the chat asks ------------------------------------------------------------

    @property
    def running(self) -> int:
        """The turn taken and not yet ended (0: none), as far as the log read so far says."""
        return max(self._turns, default=0)

    @property
    def waiting(self) -> int:
        """Messages in the log not yet taken into a turn."""
        return len(self._pending)

    def turn_text(self, turn: int) -> str | None:
        """The message a known turn took, or None."""
        known = self._turns.get(turn)
        return known.text if known is not None else None

    def seed(self, queued: Event) -> None:
        """Learn of a turn that was taken before this view started reading
        (its ``turn.queued``), so what becomes of it names its message."""
        if queued.type == TURN_QUEUED and queued.turn not in self._turns:
            self._turns[queued.turn] = self._turn_of(queued)

    # --- events in, outputs out -------------------------------------------------------

    def feed(self, event: Event) -> list[Output]:
        handler = _HANDLERS.get(event.type)
        return handler(self, event) if handler is not None else []

    def _message(self, event: Event) -> list[Output]:
        data = event.data
        text = str(data.get("text", ""))
        mine = str(data.get("platform_id", "")).startswith(self.tag)
        self._pending[event.id] = (text, mine)
        if mine:
            self._mine.add(event.id)
            return []
        files = len(data.get("attachments", ()))
        extra = f" [+{_plural(files, 'attachment')}]" if files else ""
        who = printable(str(data.get("from_user", ""))) or "someone"
        return [Note(f"{OTHER} {who}: {_quoted(text)}{extra}")]

    def _turn_of(self, event: Event) -> _Turn:
        messages = tuple(int(m) for m in event.data.get("messages", ()))
        return _Turn(
            event.turn,
            messages,
            str(event.data.get("text", "")),
            mine=any(m in self._mine for m in messages),
        )

    def _queued(self, event: Event) -> list[Output]:
        turn = self._turns[event.turn] = self._turn_of(event)
        for m in turn.messages:
            self._pending.pop(m, None)
        if len(turn.messages) > 1:
            return [Note(f"(turn {turn.number} takes {len(turn.messages)} messages together)")]
        return []

    def _partial(self, event: Event) -> list[Output]:
        text = str(event.data.get("text", ""))
        turn = self._turns.get(event.turn)
        if turn is None:  # a turn that began before this view started reading
            turn = self._turns[event.turn] = _Turn(event.turn)
        if not text:
            return []
        turn.streamed.append(text)
        return [Text(text)]

    def _permission(self, event: Event) -> list[Output]:
        data = event.data
        turn = self._turns.get(event.turn)
        raw_input = data.get("input")
        request = Approval(
            event.id,
            event.turn,
            str(data.get("tool", "")),
            str(data.get("description", "") or ""),
            raw_input if isinstance(raw_input, Mapping) else {},
            mine=turn is not None and turn.mine,
        )
        self._approvals[event.id] = request
        return [request]

    def _answered(self, event: Event) -> list[Output]:
        data = event.data
        request = self._approvals.pop(int(data.get("request", 0)), None)
        if request is None:
            return []
        out: list[Output] = [ApprovalClosed(request.request)]
        if event.id in self.own:
            return out
        tool = printable(request.tool)
        by = str(data.get("by", ""))
        verdict = "allowed" if data.get("allow") else "denied"
        if by == DEADLINE:
            out.append(Note(f"nobody answered in time: {tool} {verdict}"))
        else:
            out.append(Note(f"{OTHER} {printable(by) or 'someone'} {verdict} {tool}"))
        return out

    def _completed(self, event: Event) -> list[Output]:
        data = event.data
        turn = self._turns.pop(event.turn, None) or _Turn(event.turn)
        out: list[Output] = [
            ApprovalClosed(r) for r, a in list(self._approvals.items()) if a.turn == event.turn
        ]
        for closed in out:
            assert isinstance(closed, ApprovalClosed)
            del self._approvals[closed.request]
        status = str(data.get("status", ""))
        streamed = "".join(turn.streamed)
        reply = str(data.get("reply", "") or "")
        out.append(EndLine())
        if reply and not reply_was_streamed(streamed, reply):
            if streamed.strip():
                out.append(FinalHeader())
            out.append(Text(reply + "\n"))
        for warning in data.get("warnings", ()):
            if warning not in self.known_warnings:
                out.append(Note(f"warning: {warning}"))
        if status == STATUS_ABANDONED:
            what = f": {_quoted(turn.text)}" if turn.text else ""
            out.append(
                Note(f"turn {turn.number} was abandoned (the chat running it stopped){what}")
            )
        elif status != STATUS_OK:
            out.append(Note(f"error: {data.get('error') or status}"))
        hint = data.get("hint")
        if hint and status != STATUS_OK:
            out.append(Note(f"hint: {hint}"))
        mine = turn.mine
        for m in turn.messages:
            self._mine.discard(m)
        out.append(Settled(turn.messages, status == STATUS_OK, mine))
        return out

    def _cancel(self, event: Event) -> list[Output]:
        dropped = [int(m) for m in event.data.get("dropped", ())]
        out: list[Output] = []
        if event.id not in self.own:
            if event.turn:
                out.append(Note(f"{OTHER} cancelled turn {event.turn}"))
            if dropped:
                out.append(Note(f"{OTHER} dropped {_plural(len(dropped), 'waiting message')}"))
        for m in dropped:
            text, mine = self._pending.pop(m, ("", m in self._mine))
            self._mine.discard(m)
            if mine:
                out.append(Note(f"not sent to the agent (cancelled): {_quoted(text)}"))
            out.append(Settled((m,), False, mine))
        return out

    def _reset(self, event: Event) -> list[Output]:
        if event.id in self.own:
            return []
        return [Note(f"{OTHER} /new: the next message starts a fresh agent session")]

    def _trimmed(self, event: Event) -> list[Output]:
        first, last = event.data.get("first"), event.data.get("last")
        return [Note(f"(events {first} to {last} were trimmed from the log before they were read)")]


_HANDLERS: dict[str, Any] = {
    MESSAGE: ChatView._message,
    TURN_QUEUED: ChatView._queued,
    TURN_PARTIAL: ChatView._partial,
    TURN_PERMISSION: ChatView._permission,
    TURN_PERMISSION_ANSWERED: ChatView._answered,
    TURN_COMPLETED: ChatView._completed,
    CONVERSATION_CANCEL: ChatView._cancel,
    CONVERSATION_RESET: ChatView._reset,
    TRIMMED: ChatView._trimmed,
}

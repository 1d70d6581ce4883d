"""Subscriptions: every event of a conversation, in order, exactly once, to
anyone reading from a position.

A reader keeps a *position*: the id of the last stored event it has seen.
The hub serves it from three places, in this order:

1. **the store**, when the reader is behind what the hub keeps in memory
   (it subscribed from an old position, it was slow, it came back after a
   disconnect);
2. **a window of recent stored events** in memory (those this process wrote,
   or read from the store on behalf of its readers), so readers that keep up
   cost no store reads;
3. **the live text of a running turn** of this process: each chunk the agent
   streams, handed over at once, before it is stored. Stored
   ``turn.partial`` events carry their character ``offset`` in the turn's
   streamed text, so a reader that saw a chunk live skips (or trims) the
   stored copy, and a reader that missed it reads it from the store.

Nothing is ever dropped to make room: the window only saves store reads, and
the live text of a turn is the turn's reply, kept until the turn is stored
anyway. Events written by other processes sharing the store reach the hub
through :meth:`Hub.refresh` (the dispatcher polls the store's ``version()``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from bridge.store.base import Store
from bridge.store.records import MESSAGE, TURN_COMPLETED, TURN_PARTIAL, Event

__all__ = ["TRIMMED", "Cursor", "Hub", "Subscription"]

#: The type of the marker a reader gets when events it had not read were
#: removed by retention: ``data`` holds ``first`` and ``last``, the ids it missed.
TRIMMED = "log.trimmed"

#: Stored events kept in memory per conversation.
DEFAULT_WINDOW = 1024

#: Events read from the store at a time when a reader catches up.
READ_BATCH = 500


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a reader is: the id of the last stored event it was handed, and,
    while a turn streams, how many characters of that turn's text it saw
    live (stored later, in ``turn.partial`` events it must not see twice).

    Written ``ID`` or ``ID.TURN.CHARS`` (what an HTTP event stream can use as
    its event id); :meth:`parse` reads both back.
    """

    id: int
    turn: int = 0
    streamed: int = 0

    def __str__(self) -> str:
        return f"{self.id}.{self.turn}.{self.streamed}" if self.turn else str(self.id)

    @classmethod
    def parse(cls, text: str) -> Cursor:
        parts = text.strip().split(".")
        if len(parts) not in (1, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(
                f"not a log position: {text!r} (expected an event id like 42, or 42.3.1200)"
            )
        numbers = [int(p) for p in parts]
        return cls(*numbers)


@dataclass(slots=True)
class _Live:
    """The streamed text of a turn running in this process."""

    turn: int
    after: int  # the id of its turn.started: readers past it get the chunks
    chunks: list[str] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # offset after each chunk

    @property
    def end(self) -> int:
        return self.ends[-1] if self.ends else 0


@dataclass(slots=True)
class _Conv:
    last: int = 0  # the last stored id this process knows of
    last_message: int = 0  # the id of the last message event it knows of
    window: deque[Event] = field(default_factory=deque)
    live: _Live | None = None
    changed: anyio.Event = field(default_factory=anyio.Event)
    signalled: bool = False  # ``changed`` was set and no reader has replaced it yet
    readers: int = 0
    #: Events that could not be stored (the store failed), told to the
    #: readers of this process so none of them waits for them forever.
    unsaved: list[Event] = field(default_factory=list)
    #: Ids skipped over when an event arrived ahead of what the hub knew
    #: (another process wrote in between): (first, last), for the observers.
    gaps: list[tuple[int, int]] = field(default_factory=list)


class Hub:
    """The per-process fan-out of conversation events. ``observers`` are
    called with every stored event the hub learns of, and whether it came
    from another process (read back from the store) rather than from this
    one (the dispatcher uses them to notice cancels, approval answers and
    messages from anywhere)."""

    def __init__(self, store: Store, *, window: int = DEFAULT_WINDOW) -> None:
        self.store = store
        self._window = window
        self._convs: dict[str, _Conv] = {}
        self.observers: list[Callable[[Event, bool], None]] = []

    def _conv(self, conversation_id: str) -> _Conv:
        conv = self._convs.get(conversation_id)
        if conv is None:
            conv = self._convs[conversation_id] = _Conv()
        return conv

    def _wake(self, conv: _Conv) -> None:
        # Readers replace a set event before they look again (see
        # Subscription.__anext__), so a burst of chunks costs one set().
        if not conv.signalled:
            conv.signalled = True
            conv.changed.set()

    def known(self, conversation_id: str) -> int:
        """The last stored event id this hub knows of for the conversation."""
        conv = self._convs.get(conversation_id)
        return conv.last if conv is not None else 0

    def last_message(self, conversation_id: str) -> int:
        """The id of the last ``message`` event this hub knows of (0: none)."""
        conv = self._convs.get(conversation_id)
        return conv.last_message if conv is not None else 0

    def subscribers(self) -> int:
        """Readers subscribed now, over all conversations."""
        return sum(conv.readers for conv in self._convs.values())

    def watched(self) -> list[str]:
        """The conversations someone in this process reads."""
        return [cid for cid, conv in self._convs.items() if conv.readers]

    # --- input --------------------------------------------------------------------------------

    def publish(self, events: Iterable[Event], *, remote: bool = False) -> None:
        """Stored events, oldest first, as written by this process (or, with
        ``remote``, read back from the store). Events already known are ignored."""
        touched: list[_Conv] = []
        for event in events:
            conv = self._conv(event.conversation)
            if event.id <= conv.last:
                continue
            if event.id != conv.last + 1:
                # A gap: readers fill it from the store; the observers get
                # it from fill_gaps().
                conv.window.clear()
                conv.gaps.append((conv.last + 1, event.id - 1))
            conv.last = event.id
            conv.window.append(event)
            while len(conv.window) > self._window:
                conv.window.popleft()
            touched.append(conv)
            if event.type == MESSAGE:
                conv.last_message = event.id
            for observe in self.observers:
                observe(event, remote)
        for conv in touched:
            self._wake(conv)

    def live_start(self, conversation_id: str, turn: int, after: int) -> Callable[[str], None]:
        """A turn of this process starts streaming; returns the function that
        hands each chunk to the readers (it runs once per chunk, so it keeps
        everything it needs at hand)."""
        conv = self._conv(conversation_id)
        live = conv.live = _Live(turn, after)
        chunks, ends = live.chunks, live.ends

        def chunk(text: str) -> None:
            if not text or conv.live is not live:
                return
            chunks.append(text)
            ends.append((ends[-1] if ends else 0) + len(text))
            if not conv.signalled:
                conv.signalled = True
                conv.changed.set()

        return chunk

    def live_end(self, conversation_id: str) -> None:
        conv = self._convs.get(conversation_id)
        if conv is not None and conv.live is not None:
            conv.live = None
            self._wake(conv)

    def unsaved(self, event: Event) -> None:
        """An event that should have been stored and could not be (its
        ``live`` is True): readers here get it after what they have, so a
        turn whose end the store refused still ends for them."""
        conv = self._conv(event.conversation)
        conv.unsaved.append(event)
        self._wake(conv)

    async def fill_gaps(self) -> None:
        """Show the observers the events that publish() jumped over: written
        by another process between two writes of this one. The dispatcher
        calls it as it polls, so an answer or a message from elsewhere is
        never missed."""
        for cid, conv in list(self._convs.items()):
            while conv.gaps:
                first, last = conv.gaps[0]
                events = await self.store.read(cid, first - 1, last - first + 1)
                conv.gaps.pop(0)
                for event in events:
                    if event.type == MESSAGE:
                        conv.last_message = max(conv.last_message, event.id)
                    for observe in self.observers:
                        observe(event, True)

    async def refresh(self, conversation_id: str) -> None:
        """Read what other processes wrote since the last known id."""
        while True:
            events = await self.store.read(conversation_id, self.known(conversation_id), READ_BATCH)
            self.publish(events, remote=True)
            if len(events) < READ_BATCH:
                return

    # --- output -------------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, conversation_id: str, after: int | Cursor | None = None
    ) -> AsyncIterator[Subscription]:
        """Read the conversation's events after ``after``: an event id, a
        :class:`Cursor` a reader kept, or None for from now on."""
        known = conversation_id in self._convs
        conv = self._conv(conversation_id)
        if after is None or not known:
            # Later writes by other processes arrive through the poller.
            await self.refresh(conversation_id)
        if after is None:
            after = conv.last
        cursor = after if isinstance(after, Cursor) else Cursor(after)
        sub = Subscription(self, conversation_id, cursor)
        conv.readers += 1
        try:
            yield sub
        finally:
            conv.readers -= 1
            sub.closed = True

    def close(self) -> None:
        """End every subscription (they finish what they have, then stop)."""
        self._closed = True
        for conv in self._convs.values():
            self._wake(conv)

    _closed = False


class Subscription:
    """An async iterator of one conversation's events after a position.

    ``position`` is the id of the last stored event handed out; a reader that
    remembers it can subscribe again from there and miss nothing. Live
    chunks come as ``turn.partial`` events with ``live=True`` and the current
    ``position`` as their id.
    """

    def __init__(self, hub: Hub, conversation_id: str, after: Cursor) -> None:
        self.hub = hub
        self.conversation_id = conversation_id
        self.position = after.id
        self.closed = False
        self._ready: deque[Event] = deque()
        self._seen: dict[int, int] = {}  # turn -> streamed characters handed out
        self._chunk: dict[int, int] = {}  # turn -> live chunks handed out
        self._told = len(hub._conv(conversation_id).unsaved)  # unsaved events handed out
        # What was handed out (the queue above may run ahead of it).
        self._out = after
        if after.turn:
            self._seen[after.turn] = after.streamed

    @property
    def cursor(self) -> Cursor:
        """Where this reader is, to subscribe again later and miss nothing and
        see nothing twice. Counts only the events already handed out."""
        return self._out

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._ready:
            if self.closed:
                raise StopAsyncIteration
            conv = self.hub._conv(self.conversation_id)
            if conv.signalled:
                conv.changed = anyio.Event()
                conv.signalled = False
            changed = conv.changed
            if self.position < conv.last:
                await self._catch_up(conv)
                continue
            live = conv.live
            if live is not None and self.position >= live.after and self._take_live(live):
                continue
            if self._told < len(conv.unsaved):
                self._ready.extend(conv.unsaved[self._told :])
                self._told = len(conv.unsaved)
                continue
            if self.hub._closed:
                raise StopAsyncIteration
            await changed.wait()
        event = self._ready.popleft()
        out = self._out
        if event.type == TURN_PARTIAL:
            end = int(event.data["offset"]) + len(event.data["text"])
            self._out = Cursor(event.id, event.turn, end)
        elif event.type == TURN_COMPLETED and event.turn == out.turn:
            self._out = Cursor(event.id)
        else:
            self._out = Cursor(event.id, out.turn, out.streamed)
        return event

    async def _catch_up(self, conv: _Conv) -> None:
        window = conv.window
        if window and window[0].id <= self.position + 1:
            start = self.position + 1 - window[0].id
            events: list[Event] = [window[i] for i in range(start, len(window))]
        else:
            events = await self.hub.store.read(self.conversation_id, self.position, READ_BATCH)
            if not events:
                return
            if events[0].id > self.position + 1:
                self._ready.append(
                    Event(
                        self.conversation_id,
                        self.position,
                        TRIMMED,
                        0,
                        time.time(),
                        {"first": self.position + 1, "last": events[0].id - 1},
                        live=True,
                    )
                )
        for event in events:
            self.position = event.id
            if event.type == TURN_PARTIAL:
                self._stored_partial(event)
            else:
                self._ready.append(event)

    def _stored_partial(self, event: Event) -> None:
        text = str(event.data.get("text", ""))
        offset = int(event.data.get("offset", 0))
        seen = self._seen.get(event.turn, 0)
        end = offset + len(text)
        if end <= seen:
            return
        if offset < seen:
            text, offset = text[seen - offset :], seen
            event = Event(
                event.conversation,
                event.id,
                event.type,
                event.turn,
                event.at,
                {**event.data, "text": text, "offset": offset},
            )
        self._seen[event.turn] = end
        self._ready.append(event)

    def _take_live(self, live: _Live) -> bool:
        """Hand out the live text not seen yet: each chunk as it arrives, or,
        for a reader that fell behind, what piled up as one event."""
        seen = self._seen.get(live.turn, 0)
        if live.end <= seen:
            return False
        index = self._chunk.get(live.turn, 0)
        # Skip chunks already handed out as stored text.
        while index < len(live.ends) and live.ends[index] <= seen:
            index += 1
        start = live.ends[index] - len(live.chunks[index])
        text = "".join(live.chunks[index:])
        if start < seen:
            text, start = text[seen - start :], seen
        self._ready.append(
            Event(
                self.conversation_id,
                self.position,
                TURN_PARTIAL,
                live.turn,
                time.time(),
                {"text": text, "offset": start},
                live=True,
            )
        )
        self._chunk[live.turn] = len(live.chunks)
        self._seen[live.turn] = live.end
        return True

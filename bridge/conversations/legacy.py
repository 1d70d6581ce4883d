"""Turn dispatch: which turn runs when, for every conversation of a bridge.

A chat bridge gets messages from many people in many conversations at once,
and each message becomes one turn of an agent. :class:`Dispatcher` decides
when each turn runs:

- **one turn at a time per conversation.** A turn starts only after the
  previous turn of its conversation has ended *and been stored*, so it always
  resumes the session id the last turn left behind;
- **a global cap** (``max_running``) on turns running at once, so a burst of
  conversations cannot fork-bomb the host;
- **a per-user cap** (``max_per_user``) on turns one sender has running or
  waiting, across conversations, so one person cannot take every slot;
- **a busy policy** per profile (or the bridge's default) for a message that
  arrives while its conversation is busy: ``queue``, ``reject``,
  ``interrupt`` or ``collect`` (spec/PROTOCOL.md section 15.1);
- **cancel**, **reset** (``/new``) and **graceful shutdown**;
- **events** tagged with the conversation and the turn number, fanned out to
  subscribers, so a channel can follow exactly one turn.

Each conversation's state lives in one small :class:`_Lane` (the turn taken by
its worker, the turns waiting behind it, the turns dropped before they ran).
A lane has at most one worker task, started when work arrives and gone when
the lane is empty (the lane goes too): no polling loop, nothing held for an
idle conversation. Turn numbers come from the store's turn count when a lane
is opened, plus the turns handed out since, so they stay unique and
increasing across restarts.

Every accepted message ends up in the transcript, also one that never ran
(cancelled or refused at shutdown while it waited): it is stored with a
"not run" error after the turn ahead of it, so the transcript keeps turn
order and the store's turn count always matches the numbers handed out.

Errors raised by :meth:`Dispatcher.submit`::

    BridgeError (bridge.errors)
    ├── ConversationError     bridge.conversations.errors
    │   ├── Busy              the message was refused; ``reason`` says why:
    │   │                     busy, queue_full, user_limit or shutting_down
    │   └── UnknownProfile    the conversation names a profile the bridge lacks (exit 2)
    ├── TurnError             bridge.turn.errors
    │   └── LaunchError       nothing to send: no text and no attachment (exit 2)
    └── StoreError            bridge.store.errors: the store cannot be read when a
                              conversation is opened

Everything that happens to an accepted message ends in a
:class:`~bridge.turn.machine.TurnResult` on its handle, never in an exception, and a
handle resolves only once its turn is in the store.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Literal

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agentproc import wire
from bridge.errors import BridgeError
from bridge.store.sessions import (
    Conversation,
    ConversationKey,
    SessionStore,
    TranscriptEntry,
    session_to_resume,
    status_of,
)
from bridge.turn.errors import LaunchError
from bridge.turn.machine import EXIT_CANCELLED, TurnResult
from bridge.turn.profile import Profile
from bridge.turn.runner import NO_HANDLER, PermissionAnswer, run_turn

from .errors import Busy, UnknownProfile

__all__ = [
    "BUSY_POLICIES",
    "DEFAULT_EVENT_BUFFER",
    "DEFAULT_MAX_RUNNING",
    "DEFAULT_QUEUE_LIMIT",
    "DEFAULT_SHUTDOWN_GRACE",
    "REASON_BUSY",
    "REASON_QUEUE_FULL",
    "REASON_SHUTTING_DOWN",
    "REASON_USER_LIMIT",
    "Busy",
    "BusyPolicy",
    "DispatchEvent",
    "Dispatcher",
    "Finished",
    "Merged",
    "PartialText",
    "PermissionAsked",
    "PermissionHandler",
    "Queued",
    "Started",
    "Subscription",
    "TurnHandle",
    "UnknownProfile",
]

BusyPolicy = Literal["queue", "reject", "interrupt", "collect"]

#: The busy policies, as in the profile's ``busy_policy`` field.
BUSY_POLICIES: tuple[BusyPolicy, ...] = ("queue", "reject", "interrupt", "collect")

#: Turns running at once, bridge-wide. Each is a process with four descriptors
#: and, for real agent CLIs, often hundreds of MiB; 16 keeps a small server
#: responsive while still serving a busy team.
DEFAULT_MAX_RUNNING = 16

#: Messages that may wait behind a running turn of one conversation. A person
#: rarely sends more than a few follow-ups before the answer; more than that is
#: usually a paste gone wrong or a script, and refusing it early is kinder than
#: answering it ten minutes later.
DEFAULT_QUEUE_LIMIT = 5

#: Events a subscriber may fall behind by before events to it are dropped (and
#: counted). Large enough for a burst of partials from every running turn; a
#: subscriber that needs every event must keep up, a turn never waits for it.
DEFAULT_EVENT_BUFFER = 1024

#: Seconds :meth:`Dispatcher.aclose` lets running turns finish before it
#: cancels them. Long enough for a reply that is nearly done, short enough for
#: a service manager's stop timeout (systemd's default is 90 s).
DEFAULT_SHUTDOWN_GRACE = 10.0

#: Why a message was refused (``Busy.reason``).
REASON_BUSY = "busy"
REASON_QUEUE_FULL = "queue_full"
REASON_USER_LIMIT = "user_limit"
REASON_SHUTTING_DOWN = "shutting_down"

#: Why a turn that was accepted never ran (its result's error says "not run: ...").
NOT_RUN_CANCELLED = "cancelled before it started"
NOT_RUN_SHUTDOWN = "the bridge is shutting down"
NOT_RUN_STOPPED = "the bridge was stopped"
_NOT_RUN_HINTS = {
    NOT_RUN_SHUTDOWN: "send the message again when the bridge is back",
    NOT_RUN_STOPPED: "send the message again when the bridge is back",
}

#: Joins the messages of a merged turn: a blank line keeps them apart for the
#: agent without inventing any markup of our own.
MERGE_SEPARATOR = "\n\n"


# --- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    """A message became turn ``turn``; ``position`` turns are ahead of it in
    its conversation (0: it is next, though it may still wait for a global slot)."""

    key: ConversationKey
    turn: int
    position: int


@dataclass(frozen=True, slots=True)
class Merged:
    """A message was folded into turn ``turn``, which now holds ``messages`` messages."""

    key: ConversationKey
    turn: int
    messages: int


@dataclass(frozen=True, slots=True)
class Started:
    """The turn's agent is being started, resuming ``session_id`` ("" = a fresh session)."""

    key: ConversationKey
    turn: int
    session_id: str


@dataclass(frozen=True, slots=True)
class PartialText:
    """A streamed chunk of the turn's answer."""

    key: ConversationKey
    turn: int
    text: str


@dataclass(frozen=True, slots=True)
class PermissionAsked:
    """The turn's agent asked for permission; the dispatcher's handler answers it."""

    key: ConversationKey
    turn: int
    request: wire.PermissionRequest


@dataclass(frozen=True, slots=True)
class Finished:
    """The turn ended and is stored; ``result`` is what its handles resolve with."""

    key: ConversationKey
    turn: int
    result: TurnResult


DispatchEvent = Queued | Merged | Started | PartialText | PermissionAsked | Finished

PermissionHandler = Callable[
    [ConversationKey, int, wire.PermissionRequest],
    Awaitable[PermissionAnswer] | PermissionAnswer,
]


# --- turns and conversations -----------------------------------------------------------


class _Job:
    """One turn: the messages it answers, and how it ends.

    A job is *taken* when its lane's worker picks it (``lane.running``),
    *started* once it holds a global slot and is about to run the agent.
    Until it starts it may still absorb messages (``collect``, ``interrupt``)
    or be dropped (``not_run`` says why).
    """

    __slots__ = (
        "attachments",
        "cancel",
        "created_at",
        "done",
        "generation",
        "messages",
        "not_run",
        "number",
        "released",
        "result",
        "senders",
        "session_name",
        "slot_wait",
        "started",
        "started_at",
    )

    def __init__(
        self,
        number: int,
        message: str,
        attachments: tuple[wire.Attachment, ...],
        from_user: str,
        now: float,
    ) -> None:
        self.number = number
        self.messages = [message]
        self.attachments = list(attachments)
        self.senders = [from_user]
        self.created_at = now
        self.started_at = 0.0
        self.session_name = wire.DEFAULT_SESSION_NAME
        self.cancel = anyio.Event()
        self.slot_wait: anyio.CancelScope | None = None
        self.started = False
        self.not_run: str | None = None
        #: The lane's reset generation when the job read its session.
        self.generation = 0
        #: Whether the per-user cap no longer counts this job.
        self.released = False
        self.result: TurnResult | None = None
        self.done = anyio.Event()

    @property
    def message(self) -> str:
        return MERGE_SEPARATOR.join(m for m in self.messages if m)

    @property
    def from_user(self) -> str:
        """The sender the agent sees: the one who opened the turn."""
        return self.senders[0]

    def users(self) -> set[str]:
        """Distinct known senders (the per-user cap counts the turn once for each)."""
        return {u for u in self.senders if u}

    def add(self, message: str, attachments: tuple[wire.Attachment, ...], from_user: str) -> None:
        self.messages.append(message)
        self.attachments.extend(attachments)
        self.senders.append(from_user)

    def stop(self, reason: str) -> None:
        """Cancel the turn: a started one through run_turn's cancel event (exit
        130); one that has not started never will (``reason`` says why)."""
        if not self.started and self.not_run is None:
            self.not_run = reason
            if self.slot_wait is not None:
                self.slot_wait.cancel()
        self.cancel.set()


class _Lane:
    """One conversation's state: the job its worker took, the jobs waiting
    behind it, and the jobs dropped before they ran (stored after the running
    one, so the transcript keeps turn order)."""

    __slots__ = (
        "dropped",
        "generation",
        "has_worker",
        "idle_secs",
        "key",
        "loaded",
        "next_number",
        "policy",
        "profile",
        "queue_limit",
        "ready",
        "running",
        "store_lock",
        "waiting",
    )

    def __init__(
        self,
        key: ConversationKey,
        profile: Profile,
        policy: BusyPolicy,
        queue_limit: int,
        idle_secs: float | None,
    ) -> None:
        self.key = key
        self.profile = profile
        self.policy = policy
        self.queue_limit = queue_limit
        self.idle_secs = idle_secs
        self.running: _Job | None = None
        self.waiting: deque[_Job] = deque()
        self.dropped: list[_Job] = []
        self.next_number = 0
        #: Set once next_number is loaded from the store.
        self.ready = anyio.Event()
        self.has_worker = False
        #: Counts resets; a turn that read its session before the latest
        #: reset does not store the session id it captured.
        self.generation = 0
        #: Orders reset() against a turn's reading of its session and its record.
        self.store_lock = _fast_lock()
        #: The conversation as read when the lane was created, kept for the
        #: first turn so it need not read it again; cleared by any write.
        self.loaded: tuple[Conversation | None] | None = None

    def ahead(self) -> int:
        """Turns a new message would wait behind."""
        return (self.running is not None) + len(self.waiting)

    def position_of(self, job: _Job) -> int:
        if job is self.running:
            return 0
        return (self.running is not None) + self.waiting.index(job)

    def unstarted(self) -> _Job | None:
        """The last job that has not started and so can absorb a message."""
        if self.waiting:
            return self.waiting[-1]
        if self.running is not None and not self.running.started:
            return self.running
        return None

    def pending_messages(self) -> int:
        """Messages waiting behind the first one not yet answered (what
        ``queue_limit`` counts)."""
        count = sum(len(j.messages) for j in self.waiting)
        if self.running is not None and not self.running.started:
            count += len(self.running.messages) - 1
        return count

    def is_empty(self) -> bool:
        return self.running is None and not self.waiting and not self.dropped


@dataclass(frozen=True, slots=True, eq=False)
class TurnHandle:
    """What :meth:`Dispatcher.submit` gives back for one message.

    ``turn`` is the turn's number in its conversation; ``position`` how many
    turns were ahead of it when it was accepted (0: next). ``merged`` is true
    when the message was folded into a turn that had not started yet
    (``collect``, ``interrupt``): ``turn`` is then that turn's number, and
    every message merged into it gets the same result.
    """

    key: ConversationKey
    turn: int
    position: int
    merged: bool
    _job: _Job = field(repr=False)

    @property
    def done(self) -> bool:
        return self._job.done.is_set()

    async def result(self) -> TurnResult:
        """Wait for the turn's result. It is already stored when this returns."""
        await self._job.done.wait()
        assert self._job.result is not None
        return self._job.result


# --- subscriptions -----------------------------------------------------------------------


class Subscription:
    """An async iterator of events, from :meth:`Dispatcher.subscribe`.

    Events are buffered up to ``buffer``; when the subscriber falls further
    behind, new events to it are dropped and counted in :attr:`dropped`, so a
    slow consumer never holds up a turn. A handle's result is never dropped:
    use :meth:`TurnHandle.result` for what must arrive. Iteration ends when
    the dispatcher is closed.
    """

    def __init__(self, key: ConversationKey | None, buffer: int) -> None:
        self.key = key
        self.dropped = 0
        send, receive = anyio.create_memory_object_stream[DispatchEvent](buffer)
        self._send: MemoryObjectSendStream[DispatchEvent] = send
        self._receive: MemoryObjectReceiveStream[DispatchEvent] = receive

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> DispatchEvent:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    def _offer(self, event: DispatchEvent) -> None:
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    def _close(self) -> None:
        self._send.close()


# --- the dispatcher -------------------------------------------------------------------------


class Dispatcher:
    """Runs the turns of many conversations: one at a time per conversation,
    at most ``max_running`` at once, with a busy policy for the rest.

    Use it as an async context manager; leaving the block shuts it down
    gracefully (:meth:`aclose`)::

        async with Dispatcher(store, profiles) as dispatcher:
            handle = await dispatcher.submit(key, "hello", from_user="alice")
            result = await handle.result()

    ``profiles`` maps a profile name (``ConversationKey.profile``) to its
    profile; it is read at each submit, so a caller may add or replace
    profiles while the dispatcher runs (a conversation keeps the profile it
    was opened with until it goes idle). The keyword arguments are the
    bridge-wide defaults; a profile's ``busy_policy``, ``queue_limit`` and
    ``session_idle_secs`` override them. ``max_per_user`` counts the turns a
    sender has running or waiting across all conversations (a merged turn
    counts once for each of its senders; an empty ``from_user`` is not
    counted). ``on_permission`` answers agents' permission requests; without
    it they are denied. ``clock`` is the wall clock used for session idle
    time and transcript times.
    """

    def __init__(
        self,
        store: SessionStore,
        profiles: Mapping[str, Profile],
        *,
        max_running: int = DEFAULT_MAX_RUNNING,
        max_per_user: int | None = None,
        busy_policy: BusyPolicy = "queue",
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        session_idle_secs: float | None = None,
        on_permission: PermissionHandler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if busy_policy not in BUSY_POLICIES:
            raise ValueError(f"busy_policy must be one of {', '.join(BUSY_POLICIES)}")
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        if max_per_user is not None and max_per_user < 1:
            raise ValueError("max_per_user must be at least 1 (or None for no cap)")
        if session_idle_secs is not None and not session_idle_secs > 0:
            raise ValueError("session_idle_secs must be greater than 0 (or None)")
        self._store = store
        self._profiles = profiles
        self._max_per_user = max_per_user
        self._busy_policy: BusyPolicy = busy_policy
        self._queue_limit = queue_limit
        self._idle_secs = session_idle_secs
        self._on_permission = on_permission
        self._clock = clock
        self._max_running = max_running
        # anyio primitives are made in __aenter__, inside the event loop.
        self._limiter: anyio.CapacityLimiter | None = None
        self._lanes: dict[ConversationKey, _Lane] = {}
        self._user_turns: Counter[str] = Counter()
        self._subs_by_key: dict[ConversationKey, list[Subscription]] = {}
        self._subs_all: list[Subscription] = []
        self._tg: TaskGroup | None = None
        #: No new messages are taken (aclose began, or the host was cancelled).
        self._closing = False
        #: aclose has dropped the turns that had not started.
        self._draining = False
        #: Subscriptions have been ended.
        self._closed = False
        self._workers = 0
        #: Set when the last worker ends; None while no worker runs.
        self._idle: anyio.Event | None = None

    # --- life ------------------------------------------------------------------------

    async def __aenter__(self) -> Dispatcher:
        if self._tg is not None or self._closing:
            raise RuntimeError("a Dispatcher can be entered only once")
        self._limiter = anyio.CapacityLimiter(self._max_running)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._watch_for_cancellation, name="dispatch cancellation watch")
        return self

    async def _watch_for_cancellation(self) -> None:
        """Turn a cancellation of the dispatcher's task group (its host was
        cancelled, as by Ctrl-C) into a cancel of every running turn.

        Agents run shielded (see :meth:`_execute`), so a cancelled host does
        not tear run_turn down mid-way: the agents get their cancel (SIGTERM,
        grace, SIGKILL) and their turns end with real results, session ids
        included, which the workers then store. One task for the whole
        dispatcher, instead of one per turn.
        """
        try:
            await anyio.sleep_forever()
        finally:
            self._closing = True
            for lane in list(self._lanes.values()):
                if lane.running is not None:
                    lane.running.stop(NOT_RUN_STOPPED)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        try:
            await self.aclose()
        except BaseException as close_error:
            # The close was cancelled from outside: stop the workers (each
            # still stores its turn, shielded) and let the cancellation through.
            tg.cancel_scope.cancel()
            if not await tg.__aexit__(type(close_error), close_error, close_error.__traceback__):
                raise
            return None
        tg.cancel_scope.cancel()  # only the cancellation watch is left
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # The body's own error goes on as it is, not wrapped in a group:
            # every worker is done, so the task group has nothing to add.
            await tg.__aexit__(None, None, None)
            return None
        return await tg.__aexit__(exc_type, exc, tb)

    async def aclose(self, *, grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        """Shut down: refuse new messages; drop every turn whose agent has not
        started (queued behind another turn, or waiting for a global slot),
        so nothing new starts; let running turns finish for up to ``grace``
        seconds, then cancel them (exit 130). Dropped turns are stored too,
        with a "not run" error their handles resolve with. Returns when every
        turn is stored and subscriptions have ended; calling it again waits
        for the same."""
        if not self._draining:
            self._draining = True
            self._closing = True
            for lane in list(self._lanes.values()):
                self._drop_waiting(lane, NOT_RUN_SHUTDOWN)
                if lane.running is not None and not lane.running.started:
                    lane.running.stop(NOT_RUN_SHUTDOWN)
        with anyio.move_on_after(grace):
            await self._wait_idle()
        for lane in list(self._lanes.values()):
            if lane.running is not None:
                lane.running.stop(NOT_RUN_SHUTDOWN)
        await self._wait_idle()
        if not self._closed:
            self._closed = True
            for sub in [*self._subs_all, *(s for subs in self._subs_by_key.values() for s in subs)]:
                sub._close()

    # --- the public operations ------------------------------------------------------------

    async def submit(
        self,
        key: ConversationKey,
        message: str,
        *,
        attachments: Iterable[wire.Attachment] = (),
        from_user: str = "",
    ) -> TurnHandle:
        """Accept a message for ``key``'s conversation and return its handle.

        Raises :class:`Busy` when the busy policy, a queue limit or the
        per-user cap refuses it (or the dispatcher is shutting down),
        :class:`UnknownProfile` for a profile the dispatcher lacks and
        :class:`~bridge.turn.errors.LaunchError` for an empty message without
        attachments and :class:`~bridge.store.errors.StoreError` when the store
        cannot be read to open the conversation (nothing was accepted then).
        Anything that goes wrong later is in the handle's result.
        """
        self._check_open(key)
        profile = self._profiles.get(key.profile)
        if profile is None:
            raise UnknownProfile(key.profile, self._profiles)
        files = tuple(attachments)
        if not message and not files:
            raise LaunchError(
                "nothing to send: the message is empty and has no attachment",
                hint="type a message or attach a file",
            )
        lane = await self._lane_for(key, profile)
        # Everything below is synchronous: no other task sees the lane half-changed.
        self._check_open(key)
        return self._admit(lane, message, files, from_user)

    async def cancel(self, key: ConversationKey) -> int:
        """Cancel the conversation's running turn (it ends as cancelled, exit
        130, and what it captured is stored) and drop the turns waiting behind
        it (they resolve with a "not run" result). Returns how many turns were
        cancelled; 0 when the conversation was idle."""
        lane = self._lanes.get(key)
        if lane is None:
            return 0
        count = self._drop_waiting(lane, NOT_RUN_CANCELLED)
        running = lane.running
        if running is not None and not running.cancel.is_set():
            running.stop(NOT_RUN_CANCELLED)
            count += 1
        return count

    async def reset(self, key: ConversationKey) -> None:
        """Start the conversation's next turn in a fresh agent session (``/new``).

        A turn already running still finishes, but the session id it names is
        not kept: a reset means the next turn starts fresh, whatever was under
        way. Turns that start after the reset run fresh and keep theirs.
        Transcript and state are kept.
        """
        lane = self._lanes.get(key)
        if lane is None:
            await self._store.reset(key)
            return
        # Under the lane's store lock, so the reset falls cleanly before or
        # after a turn's reading of its session, and before or after its record.
        async with lane.store_lock:
            lane.generation += 1
            lane.loaded = None
            await self._store.reset(key)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, key: ConversationKey | None = None, *, buffer: int = DEFAULT_EVENT_BUFFER
    ) -> AsyncIterator[Subscription]:
        """Events of one conversation (or of all, when ``key`` is None).

        Subscribe before submitting to see a turn's events from its
        :class:`Queued` on; filter on ``event.turn`` to follow one turn. See
        :class:`Subscription` for what happens to a slow subscriber.
        """
        sub = Subscription(key, buffer)
        subs = self._subs_all if key is None else self._subs_by_key.setdefault(key, [])
        subs.append(sub)
        if self._closed:
            sub._close()
        try:
            yield sub
        finally:
            subs.remove(sub)
            if key is not None and not subs:
                self._subs_by_key.pop(key, None)
            sub._close()
            sub._receive.close()

    # --- admission -----------------------------------------------------------------------------

    def _check_open(self, key: ConversationKey) -> None:
        if self._tg is None:
            raise RuntimeError("use the Dispatcher in `async with` before submitting")
        if self._closing:
            raise Busy(
                "the bridge is shutting down and takes no new messages",
                reason=REASON_SHUTTING_DOWN,
                key=key,
                hint="send the message again when it is back",
            )

    async def _lane_for(self, key: ConversationKey, profile: Profile) -> _Lane:
        """The conversation's lane, created with its next turn number loaded
        from the store. Concurrent first messages wait for one load."""
        while True:
            lane = self._lanes.get(key)
            if lane is None:
                lane = _Lane(
                    key,
                    profile,
                    profile.busy_policy or self._busy_policy,
                    profile.queue_limit or self._queue_limit,
                    profile.session_idle_secs or self._idle_secs,
                )
                self._lanes[key] = lane
                try:
                    conv = await self._store.get(key)
                except BaseException:
                    del self._lanes[key]
                    lane.ready.set()
                    raise
                lane.next_number = (conv.turn_count if conv is not None else 0) + 1
                lane.loaded = (conv,)
                lane.ready.set()
                return lane
            if lane.ready.is_set():
                return lane
            await lane.ready.wait()
            # Loop: the lane may have been dropped (a failed load) meanwhile.

    def _admit(
        self,
        lane: _Lane,
        message: str,
        files: tuple[wire.Attachment, ...],
        from_user: str,
    ) -> TurnHandle:
        key = lane.key
        policy = lane.policy
        ahead = lane.ahead()
        target = lane.unstarted() if policy in ("collect", "interrupt") else None
        if ahead and policy == "reject":
            raise Busy(
                "this conversation is busy: its agent is still answering",
                reason=REASON_BUSY,
                key=key,
                active=ahead,
                hint="wait for the answer, or cancel it and send again",
            )
        pending = lane.pending_messages()
        if (target is not None or ahead) and pending >= lane.queue_limit:
            raise Busy(
                f"this conversation already has {pending} message"
                f"{'s' if pending != 1 else ''} waiting (the limit is {lane.queue_limit})",
                reason=REASON_QUEUE_FULL,
                key=key,
                limit=lane.queue_limit,
                active=pending,
                hint="wait for an answer before sending more",
            )
        joins_new_turn = target is None or from_user not in target.users()
        if self._max_per_user is not None and from_user and joins_new_turn:
            active = self._user_turns[from_user]
            if active >= self._max_per_user:
                raise Busy(
                    f"{from_user} already has {active} turn{'s' if active != 1 else ''} "
                    f"running or waiting (the limit is {self._max_per_user})",
                    reason=REASON_USER_LIMIT,
                    key=key,
                    limit=self._max_per_user,
                    active=active,
                    hint="wait for one of them to finish",
                )

        if target is not None:
            if from_user and joins_new_turn:
                self._user_turns[from_user] += 1
            target.add(message, files, from_user)
            self._publish(Merged(key, target.number, len(target.messages)))
            return TurnHandle(key, target.number, lane.position_of(target), True, target)

        job = _Job(lane.next_number, message, files, from_user, self._clock())
        lane.next_number += 1
        if from_user:
            self._user_turns[from_user] += 1
        lane.waiting.append(job)
        if policy == "interrupt" and lane.running is not None:
            lane.running.stop("interrupted by a newer message")
        self._publish(Queued(key, job.number, ahead))
        if not lane.has_worker:
            self._start_worker(lane)
        return TurnHandle(key, job.number, ahead, False, job)

    # --- running ---------------------------------------------------------------------------------

    def _drop_waiting(self, lane: _Lane, reason: str) -> int:
        """Drop the lane's waiting jobs. They no longer count against the
        per-user cap; the worker stores them after the running job, so the
        transcript keeps turn order, and their handles resolve then."""
        jobs = list(lane.waiting)
        lane.waiting.clear()
        for job in jobs:
            job.stop(reason)
            self._release(job)
        lane.dropped.extend(jobs)
        return len(jobs)

    async def _wait_idle(self) -> None:
        """Until no worker runs."""
        while self._idle is not None:
            await self._idle.wait()

    def _start_worker(self, lane: _Lane) -> None:
        assert self._tg is not None
        lane.has_worker = True
        if self._idle is None:
            self._idle = anyio.Event()
        self._workers += 1
        self._tg.start_soon(self._work, lane, name=f"dispatch {lane.key}")

    async def _work(self, lane: _Lane) -> None:
        """The lane's worker: its jobs one after the other, until none is left."""
        try:
            while lane.waiting:
                job = lane.waiting.popleft()
                lane.running = job
                await self._process(lane, job)
                while lane.dropped:
                    dropped = lane.dropped.pop(0)
                    with anyio.CancelScope(shield=True):
                        await self._finish(lane, dropped, _not_run(dropped))
        finally:
            leftovers = [*lane.waiting, *lane.dropped]
            if leftovers:
                # Only when cancelled from outside: the dispatcher is going away.
                self._closing = True
                lane.waiting.clear()
                lane.dropped.clear()
                with anyio.CancelScope(shield=True):
                    for job in leftovers:
                        job.stop(NOT_RUN_STOPPED)
                        await self._finish(lane, job, _not_run(job))
            lane.has_worker = False
            if lane.is_empty() and self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]
            self._workers -= 1
            if self._workers == 0 and self._idle is not None:
                self._idle.set()
                self._idle = None

    async def _process(self, lane: _Lane, job: _Job) -> None:
        result: TurnResult | None = None
        try:
            result = await self._execute(lane, job)
        finally:
            if result is None:  # cancelled from outside
                if job.started:
                    result = _cancelled()
                else:
                    job.not_run = job.not_run or NOT_RUN_STOPPED
                    result = _not_run(job)
            with anyio.CancelScope(shield=True):
                await self._finish(lane, job, result)

    async def _execute(self, lane: _Lane, job: _Job) -> TurnResult:
        """Wait for a global slot, then run the turn, resuming the
        conversation's session."""
        limiter = self._limiter
        assert limiter is not None
        acquired = False
        if not job.cancel.is_set():
            try:
                limiter.acquire_on_behalf_of_nowait(job)
                acquired = True
            except anyio.WouldBlock:
                with anyio.CancelScope() as job.slot_wait:
                    await limiter.acquire_on_behalf_of(job)
                    acquired = True
                job.slot_wait = None
        if not acquired:
            return _not_run(job)
        try:
            if job.cancel.is_set():  # stopped while the slot was being handed over
                return _not_run(job)
            job.started = True
            job.started_at = self._clock()
            try:
                async with lane.store_lock:
                    if lane.loaded is not None:
                        (conv,), lane.loaded = lane.loaded, None
                    else:
                        conv = await self._store.get(lane.key)
                    job.generation = lane.generation
            except Exception as exc:
                # Running without knowing the session would silently start a
                # fresh one; failing the turn says what is wrong instead.
                detail = exc.detail if isinstance(exc, BridgeError) else str(exc)
                return TurnResult(
                    reply="",
                    session_id="",
                    error=f"cannot read the session store: {detail}",
                    exit_code=1,
                    hint=exc.hint if isinstance(exc, BridgeError) else "",
                )
            session_id = session_to_resume(conv, job.started_at, lane.idle_secs)
            if conv is not None:
                job.session_name = conv.session_name
            if job.cancel.is_set():
                return _cancelled(session_id)
            self._publish(Started(lane.key, job.number, session_id))
            # Shielded: a cancelled host reaches the agent through job.cancel
            # (see _watch_for_cancellation), so the turn still ends with a result.
            with anyio.CancelScope(shield=True):
                result = await run_turn(
                    lane.profile,
                    job.message,
                    session_id=session_id,
                    session_name=job.session_name,
                    from_user=job.from_user,
                    attachments=job.attachments,
                    on_partial=self._partial_sink(lane.key, job.number),
                    on_permission=self._permission_asker(lane.key, job.number),
                    cancel=job.cancel,
                )
            return result
        finally:
            limiter.release_on_behalf_of(job)

    def _partial_sink(self, key: ConversationKey, number: int) -> Callable[[str], None]:
        # A plain function keeps run_turn on its fast path (no await per chunk).
        def sink(text: str) -> None:
            self._publish(PartialText(key, number, text))

        return sink

    def _permission_asker(
        self, key: ConversationKey, number: int
    ) -> Callable[[wire.PermissionRequest], Awaitable[PermissionAnswer]]:
        async def ask(request: wire.PermissionRequest) -> PermissionAnswer:
            self._publish(PermissionAsked(key, number, request))
            if self._on_permission is None:
                return wire.PermissionDecision(False, None, NO_HANDLER)
            answer = self._on_permission(key, number, request)
            if inspect.isawaitable(answer):
                answer = await answer
            return answer

        return ask

    async def _finish(self, lane: _Lane, job: _Job, result: TurnResult) -> None:
        """Store the turn, then resolve its handles and announce it."""
        result = await self._record(lane, job, result)
        if lane.running is job:
            lane.running = None
        job.result = result
        self._release(job)
        job.done.set()
        self._publish(Finished(lane.key, job.number, result))

    async def _record(self, lane: _Lane, job: _Job, result: TurnResult) -> TurnResult:
        entry = TranscriptEntry(
            turn=job.number,
            message=job.message,
            reply=result.text,
            error=result.error,
            session_id=result.session_id,
            exit_code=result.exit_code,
            attachments=[a.to_dict() for a in job.attachments],
            from_user=job.from_user,
            started_at=job.started_at or job.created_at,
            duration_ms=result.duration_ms,
        )
        async with lane.store_lock:
            lane.loaded = None
            captured = result.session_id if result.session_captured else None
            if job.generation != lane.generation:  # reset since the turn read its session
                captured = None
            try:
                await self._store.record_turn(
                    lane.key,
                    entry,
                    captured_session=captured,
                    status=status_of(result.exit_code, result.timed_out, result.cancelled),
                    session_name=job.session_name,
                )
            except Exception as exc:
                # A store is pluggable; its failure must not lose the answer.
                warning = f"the turn could not be saved in the session store: {exc}"
                return replace(result, warnings=[*result.warnings, warning])
        return result

    def _release(self, job: _Job) -> None:
        """Stop counting the job against its senders' per-user cap (once)."""
        if job.released:
            return
        job.released = True
        for user in job.users():
            self._user_turns[user] -= 1
            if self._user_turns[user] <= 0:
                del self._user_turns[user]

    def _publish(self, event: DispatchEvent) -> None:
        subs = self._subs_by_key.get(event.key)
        if subs:
            for sub in subs:
                sub._offer(event)
        for sub in self._subs_all:
            sub._offer(event)


def _fast_lock() -> anyio.Lock:
    """A lock that costs no trip through the event loop when it is free
    (anyio >= 4.5); a plain one on older anyio."""
    try:
        return anyio.Lock(fast_acquire=True)
    except TypeError:  # pragma: no cover - anyio < 4.5
        return anyio.Lock()


def _not_run(job: _Job) -> TurnResult:
    """The result of a turn that never started its agent."""
    reason = job.not_run or NOT_RUN_CANCELLED
    return TurnResult(
        reply="",
        session_id="",
        error=f"not run: {reason}",
        exit_code=EXIT_CANCELLED,
        cancelled=True,
        hint=_NOT_RUN_HINTS.get(reason, ""),
    )


def _cancelled(session_id: str = "") -> TurnResult:
    """The result of a turn cancelled after it started, when run_turn gave none."""
    return TurnResult(
        reply="", session_id=session_id, error="cancelled", exit_code=EXIT_CANCELLED, cancelled=True
    )

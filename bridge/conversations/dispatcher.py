"""The dispatcher: runs the turns of the conversations in a store's log.

A message is first a ``message`` event in its conversation's log (written by
:meth:`Dispatcher.submit`, or by another process sharing the store). A
*lane* (one task per conversation with work, gone when it has none) then:

1. claims the conversation's lease (no other process runs its turns while
   it holds it; a dead holder's open turn is closed as ``abandoned``);
2. takes the waiting messages the busy policy gives the next turn
   (``turn.queued``; the store hands out the turn number);
3. waits for a slot under ``max_running`` (turns running at once in this
   process), reads the session to resume and writes ``turn.started``;
4. runs the agent with :func:`~bridge.turn.runner.run_turn`, its streamed
   text going live to subscribers and, coalesced, into the log; permission
   requests become ``turn.permission`` events answered by id;
5. writes ``turn.completed`` with the outcome and the session it captured,
   then goes back to 1 while messages wait, and gives the lease up.

Cancel, reset and approval answers are log events too, so they work from
any process: a lane sees a ``conversation.cancel`` for its turn (written
here, or read back from the store by the poller) and stops the agent.
Leaving the ``async with`` block shuts down gracefully: no new turns, the
running ones get ``grace`` seconds and are then cancelled, every turn this
process took ends with its ``turn.completed``, and messages nobody took stay
waiting in the log for the next bridge.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agentproc import wire
from bridge.store.base import Store
from bridge.store.errors import NotFound
from bridge.store.owners import new_owner
from bridge.store.records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    TURN_COMPLETED,
    Conversation,
    ConversationKey,
    Event,
    NewMessage,
    Route,
)
from bridge.turn.errors import LaunchError
from bridge.turn.profile import Profile
from bridge.turn.runner import PermissionAnswer

from . import policies
from .approvals import Approvals
from .errors import Busy, UnknownRoute
from .hub import Cursor, Hub, Subscription
from .jobs import Job
from .lane import run_lane
from .upkeep import poll, renew_leases

log = logging.getLogger("bridge.conversations")

__all__ = ["DEFAULT_LEASE_SECS", "DEFAULT_MAX_RUNNING", "Dispatcher", "TurnHandle"]

#: Turns running at once in one process (each is an agent process).
DEFAULT_MAX_RUNNING = 16
#: How long a lease lasts without a heartbeat; renewed every third of it.
DEFAULT_LEASE_SECS = 30.0
#: How often the store is checked for what other processes wrote.
DEFAULT_POLL_SECS = 0.1
DEFAULT_SHUTDOWN_GRACE = 10.0

NOT_RUN_CANCELLED = "cancelled before it started"

#: Events read back from the store that may leave a served conversation
#: with messages to run.
_WAKES = (MESSAGE, TURN_COMPLETED)
NOT_RUN_SHUTDOWN = "the bridge is shutting down"
NOT_RUN_STOPPED = "the bridge was stopped"

Profiles = Mapping[Route, Profile] | Callable[[Route], Profile]
PermissionHandler = Callable[
    [Conversation, int, Event], Awaitable[PermissionAnswer] | PermissionAnswer
]


@dataclass(frozen=True, slots=True)
class TurnHandle:
    """A message accepted into the log, and the way to its outcome.

    ``duplicate``: it had been delivered before (same platform id); the
    stored event came back and nothing was added. ``conversation`` is the one
    it went to, as opened (its identity and id; read the store for its state
    now). ``await handle.result()`` waits for what became of the message.
    """

    conversation: Conversation
    message: Event
    duplicate: bool = False
    dispatcher: Dispatcher | None = field(default=None, repr=False, compare=False)

    async def result(self) -> Event:
        """The ``turn.completed`` event of the turn that took the message, or
        the ``conversation.cancel`` that dropped it (see :meth:`Dispatcher.outcome`)."""
        if self.dispatcher is None:
            raise RuntimeError("this handle was not made by a dispatcher")
        return await self.dispatcher.outcome(self.conversation.id, self.message.id)


class Dispatcher:
    """Runs turns for the conversations opened or written to through it.

    ::

        async with Dispatcher(store, {route: profile}) as d:
            conv = await d.open(key)
            async with d.subscribe(conv.id) as events:
                await d.submit(conv.id, "hello", from_user="alice")
                async for event in events: ...
    """

    def __init__(
        self,
        store: Store,
        profiles: Profiles,
        *,
        owner: str | None = None,
        max_running: int = DEFAULT_MAX_RUNNING,
        busy_policy: policies.BusyPolicy = "queue",
        queue_limit: int = 5,
        max_per_user: int | None = None,
        max_waiting: int | None = None,
        session_idle_secs: float | None = None,
        lease_secs: float = DEFAULT_LEASE_SECS,
        poll_secs: float = DEFAULT_POLL_SECS,
        on_permission: PermissionHandler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if session_idle_secs is not None and not session_idle_secs > 0:
            raise ValueError("session_idle_secs must be greater than 0 (or None)")
        self.store = store
        self.owner = owner or new_owner()
        self.hub = Hub(store)
        self._profiles = profiles
        self._defaults = policies.Caps(busy_policy, queue_limit, max_per_user, max_waiting)
        self._idle_secs = session_idle_secs
        self._lease_secs = lease_secs
        self._poll_secs = poll_secs
        self._on_permission = on_permission
        self._clock = clock
        self._max_running = max_running
        self._approvals = Approvals()
        self.hub.observers.append(self._approvals.observe)
        self.hub.observers.append(self._observe)
        self._served: set[str] = set()
        self._known: dict[str, Conversation] = {}
        self._lanes: dict[str, anyio.Event] = {}  # conversation -> its lane's wake-up
        self._jobs: dict[str, Job] = {}
        self._limiter: anyio.CapacityLimiter | None = None
        self._tg: TaskGroup | None = None
        self._closing = False
        self._idle = anyio.Event()
        self._idle.set()
        #: Store operations that failed in the dispatcher's own work (lanes,
        #: leases, polling) since it started; each was retried or reported.
        self.store_errors = 0

    # --- life ------------------------------------------------------------------------------

    async def __aenter__(self) -> Dispatcher:
        if self._tg is not None:
            raise RuntimeError("a Dispatcher can be entered only once")
        self._limiter = anyio.CapacityLimiter(self._max_running)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(poll, self, name="dispatcher poll")
        self._tg.start_soon(renew_leases, self, name="dispatcher leases")
        self._tg.start_soon(self._watch_for_cancellation, name="dispatcher cancellation watch")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        try:
            with anyio.CancelScope(shield=exc_type is not None):
                await self.aclose()
        finally:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        return None

    async def _watch_for_cancellation(self) -> None:
        """A cancelled host (Ctrl-C) cancels every job; run_turn is shielded,
        so each agent is stopped properly and its turn still stored."""
        try:
            await anyio.sleep_forever()
        finally:
            self._closing = True
            for job in list(self._jobs.values()):
                job.fire("cancel", NOT_RUN_STOPPED)

    async def aclose(self, *, grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        """No new turns; jobs not yet running are closed as not run; running
        ones get ``grace`` seconds, then are cancelled. Returns when every
        lane has stored its turn and given its lease up."""
        self._closing = True
        for job in list(self._jobs.values()):
            if job.state in ("waiting", "starting"):
                job.fire("cancel", NOT_RUN_SHUTDOWN)
        for wake in self._lanes.values():
            wake.set()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        for job in list(self._jobs.values()):
            job.fire("cancel", NOT_RUN_SHUTDOWN)
        await self._idle.wait()
        self.hub.close()

    def stop_turns(self) -> None:
        """Cancel every job now, running or not (a second Ctrl-C during
        :meth:`aclose`): each is still stored, as cancelled."""
        self._closing = True
        for job in list(self._jobs.values()):
            job.fire("cancel", NOT_RUN_SHUTDOWN)

    # --- the public operations ----------------------------------------------------------------

    async def open(self, key: ConversationKey, *, session_name: str = "default") -> Conversation:
        """Open (creating it when new) the conversation and serve it: close a
        dead bridge's open turn as abandoned, and run any waiting messages."""
        self._profile(key.route)  # refuse an unknown route before writing anything
        conv = await self.store.open(key, session_name=session_name)
        closed = await self.store.recover(conv.id)
        if closed:  # hand back the conversation as recovery left it
            conv = await self._reread(conv)
        # Read, not publish, what recovery wrote: events of the dead bridge
        # may come before it (a message sent after its turn began), and the
        # hub must see those too, to know that they wait.
        await self.hub.refresh(conv.id)
        self._served.add(conv.id)
        self._known[conv.id] = conv
        if conv.consumed < self.hub.last_message(conv.id):
            self._kick(conv.id)  # messages wait: run them
        return conv

    async def resume(self) -> list[Conversation]:
        """Serve every conversation of the store with a turn open or messages
        waiting, on a route this dispatcher has a profile for: a dead
        bridge's open turns are closed as abandoned and the waiting messages
        run. A server calls it on start, so nothing accepted before a stop or
        a crash is left unanswered. Returns the conversations it took up."""
        taken = []
        for conv in await self.store.unfinished():
            try:
                self._profile(conv.key.route)
            except UnknownRoute:
                continue  # another bridge's route, or one no longer configured
            taken.append(await self.open(conv.key, session_name=conv.session_name))
        return taken

    async def submit(
        self,
        conversation_id: str,
        text: str,
        *,
        attachments: Iterable[wire.Attachment] = (),
        from_user: str = "",
        platform_id: str = "",
        via: str = "",
    ) -> TurnHandle:
        """Put a message in the log and have it run. Raises :class:`Busy` when
        the policy or a cap refuses it (nothing is written then). ``via``
        names who composed it when not the person (``handler``)."""
        conv = await self._conversation(conversation_id)
        if self._closing:
            raise Busy(
                "the bridge is shutting down and takes no new messages",
                reason=policies.REASON_SHUTTING_DOWN,
                conversation=conv.id,
                hint="send the message again when it is back",
            )
        files = tuple(a.to_dict() for a in attachments)
        if not text and not files:
            raise LaunchError(
                "nothing to send: the message is empty and has no attachment",
                hint="type a message or attach a file",
            )
        if "\0" in text:
            raise LaunchError(
                "the message contains a NUL character, which no agent can be given",
                hint="remove the NUL character",
            )
        caps = self._caps(conv.key.route)
        message = NewMessage(text, files, from_user, platform_id, via=via)
        event, duplicate = await self.store.add_message(
            conv.id, message, admit=policies.admission(caps, from_user)
        )
        self.hub.publish([event])
        self._served.add(conv.id)
        if not duplicate:
            if policies.interrupts(caps.policy) and await self._turn_running(conv.id):
                await self._cancel(
                    conv.id, by=from_user, drop=False, reason="interrupted by a newer message"
                )
            self._kick(conv.id)
        return TurnHandle(conv, event, duplicate, self)

    async def record(self, conversation_id: str, message: NewMessage) -> tuple[Event, bool]:
        """Put a person's message that a bot's handler takes in the log
        (``message.handled``: never run as a turn); returns the event and
        whether it was a redelivery."""
        await self._conversation(conversation_id)
        event, duplicate = await self.store.add_message(
            conversation_id, replace(message, handled=True)
        )
        if not duplicate:
            self.hub.publish([event])
        return event, duplicate

    async def cancel(self, conversation_id: str, *, by: str = "") -> Event:
        """Stop the running turn (wherever it runs) and drop the waiting messages."""
        await self._conversation(conversation_id)
        return await self._cancel(conversation_id, by=by, drop=True, reason="")

    async def reset(self, conversation_id: str, *, by: str = "") -> Event:
        """The next turn starts a fresh agent session; a turn running now
        cannot bring its session back."""
        await self._conversation(conversation_id)
        event = await self.store.reset(conversation_id, by=by)
        self.hub.publish([event])
        return event

    async def answer(
        self,
        conversation_id: str,
        request_id: int,
        *,
        allow: bool,
        scope: str = "once",
        message: str = "",
        by: str = "",
        updated_input: Mapping[str, Any] | None = None,
    ) -> Event | None:
        """Answer an approval request by its event id; None when it was
        answered already or its turn has ended. ``scope="session"`` allows
        the tool for the rest of the conversation (until a reset)."""
        event = await self.store.answer(
            conversation_id,
            request_id,
            allow=allow,
            scope=scope,
            message=message,
            by=by,
            updated_input=updated_input,
        )
        if event is not None:
            self.hub.publish([event])
        return event

    @contextlib.asynccontextmanager
    async def subscribe(
        self, conversation_id: str, after: int | Cursor | None = None
    ) -> AsyncIterator[Subscription]:
        """The conversation's events after ``after``: an event id, a
        :class:`~bridge.conversations.hub.Cursor` a reader kept, or None for
        from now on."""
        async with self.hub.subscribe(conversation_id, after) as sub:
            yield sub

    async def outcome(self, conversation_id: str, message_id: int) -> Event:
        """Wait for what became of a message: the ``turn.completed`` of the
        turn that took it, or the ``conversation.cancel`` that dropped it."""
        turn = 0
        async with self.hub.subscribe(conversation_id, message_id) as events:
            async for event in events:
                data = event.data
                if event.type == "turn.queued" and message_id in data.get("messages", ()):
                    turn = event.turn
                elif (event.type == "turn.completed" and turn and event.turn == turn) or (
                    event.type == CONVERSATION_CANCEL and message_id in data.get("dropped", ())
                ):
                    return event
        raise anyio.EndOfStream

    # --- what it is doing (for metrics) ------------------------------------------------------

    @property
    def running_turns(self) -> int:
        """Turns this process has taken and not yet stored the end of."""
        return len(self._jobs)

    @property
    def pending_approvals(self) -> int:
        """Permission requests of this process's turns waiting for an answer."""
        return self._approvals.waiting

    def key_of(self, conversation_id: str) -> ConversationKey | None:
        """The identity of a conversation this dispatcher has opened or written to."""
        conv = self._known.get(conversation_id)
        return None if conv is None else conv.key

    def route_of(self, conversation_id: str) -> Route | None:
        """The route of a conversation this dispatcher has opened or written to."""
        conv = self._known.get(conversation_id)
        return None if conv is None else conv.key.route

    # --- plumbing ---------------------------------------------------------------------------------

    def _profile(self, route: Route) -> Profile:
        profiles = self._profiles
        profile = profiles(route) if callable(profiles) else profiles.get(route)
        if profile is None:
            raise UnknownRoute(route)
        return profile

    def _caps(self, route: Route) -> policies.Caps:
        profile = self._profile(route)
        d = self._defaults
        return policies.Caps(
            profile.busy_policy or d.policy,
            profile.queue_limit or d.queue_limit,
            d.max_per_user,
            d.max_waiting,
        )

    async def _conversation(self, conversation_id: str) -> Conversation:
        """The conversation as this dispatcher knows it (its identity never
        changes; for its current state read the store)."""
        conv = self._known.get(conversation_id)
        if conv is not None:
            return conv
        conv = await self.store.get(conversation_id)
        if conv is None:
            raise NotFound(
                f"no conversation {conversation_id!r} in this store",
                hint="agentproc sessions list shows the conversations and their ids",
            )
        self._known[conv.id] = conv
        return conv

    async def _reread(self, conv: Conversation) -> Conversation:
        return await self.store.get(conv.id) or conv

    async def _turn_running(self, conversation_id: str) -> bool:
        """Whether a turn of the conversation runs, here or in another process."""
        if conversation_id in self._jobs:
            return True
        conv = await self.store.get(conversation_id)
        return conv is not None and conv.running_turn != 0

    async def _cancel(self, conversation_id: str, *, by: str, drop: bool, reason: str) -> Event:
        event = await self.store.cancel(conversation_id, by=by, drop_pending=drop, reason=reason)
        self.hub.publish([event])
        return event

    def _observe(self, event: Event, remote: bool) -> None:
        """Every stored event this process learns of, wherever it was written."""
        job = self._jobs.get(event.conversation)
        if event.type == CONVERSATION_CANCEL:
            if job is not None and event.turn == job.turn:
                job.fire("cancel", str(event.data.get("reason") or NOT_RUN_CANCELLED))
        elif (
            remote
            and event.type in (MESSAGE, TURN_COMPLETED)
            and event.conversation in self._served
        ):
            # Another process wrote a message, or finished a turn that left
            # messages waiting: they may be this process's to run. (Its own
            # messages and turns wake their lane directly.)
            self._kick(event.conversation)

    def _kick(self, conversation_id: str) -> None:
        wake = self._lanes.get(conversation_id)
        if wake is not None:
            wake.set()
            return
        if self._closing or self._tg is None:
            return
        self._lanes[conversation_id] = anyio.Event()
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._tg.start_soon(self._lane, conversation_id, name=f"lane {conversation_id}")

    # --- lanes ------------------------------------------------------------------------

    async def _lane(self, cid: str) -> None:
        try:
            await run_lane(self, cid)
        finally:
            self._lanes.pop(cid, None)
            if not self._lanes:
                self._idle.set()

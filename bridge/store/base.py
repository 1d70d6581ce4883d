"""The storage interface: conversations, their logs, leases and deliveries.

Every implementation (:mod:`~bridge.store.memory`, :mod:`~bridge.store.sqlite`,
PostgreSQL later) passes the one contract suite in ``tests/store_contract.py``.
The rules of each write (what a claim, a take, a completion, a cancel or a reset
does to a conversation and which events it writes) are pure functions in
:mod:`bridge.store.rules`; an implementation loads the conversation's row in a
transaction, applies the rule and writes what it returns, so every store
behaves the same and a write lands whole or not at all.

Who may write what:

- **anyone** (any process, any channel): open a conversation, add a
  message, cancel, reset, answer an approval, acknowledge a delivery, read;
- **the lease holder only** (the dispatcher running the conversation's
  turns): take pending messages into a turn, mark it started, append its
  partial text and permission requests, complete it. A write by a process
  that lost its lease raises :class:`~bridge.store.errors.LeaseLost` and
  changes nothing.

Ids: an event's id is ``last_event + 1`` of its conversation, allocated in
the transaction that writes it, so ids are dense, strictly increasing, and a
reader that has seen id N has seen everything before it in that conversation.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel

from .records import (
    Conversation,
    ConversationKey,
    Event,
    Load,
    NewMessage,
    Pairing,
    TranscriptTurn,
)

__all__ = ["Admission", "Claim", "SessionStore", "Store"]

#: Called inside the transaction that adds a message, with the load it would
#: join; raises (any exception, usually ``bridge.conversations.Busy``) to
#: refuse it, in which case nothing is written. It may run in the store's
#: worker thread (SQLite) while the store holds its write lock: it must only
#: look at what it is given, never await or call the store. A rule with an
#: attribute ``needs_totals`` set to False is given 0 for ``user_active`` and
#: ``total_active``, which then cost no count over every conversation.
Admission = Callable[[Conversation, Load], None]


@dataclass(frozen=True, slots=True)
class Claim:
    """A lease on a conversation: it, the messages waiting in it (oldest first),
    and any events the claim itself wrote (a dead owner's turn closed as
    ``abandoned``)."""

    conversation: Conversation
    pending: tuple[Event, ...]
    closed: tuple[Event, ...] = ()


class Store(abc.ABC):
    """Where conversations and their logs live. Use it as an async context
    manager, or call :meth:`close`.

    ``keep_turns`` (every implementation takes it): how many completed turns
    of each conversation keep their events; older ones are trimmed when a
    turn completes (see :func:`bridge.store.rules.trim_cut`). The turn
    count, session and state are kept whatever the limit.
    """

    #: True when the store was opened read-only: every write raises
    #: :class:`~bridge.store.errors.ReadOnlyStore`, ``open`` included (it may
    #: create or adopt a conversation; use ``lookup`` or ``find`` to read).
    read_only: bool = False

    # --- conversations ---------------------------------------------------------------

    @abc.abstractmethod
    async def open(self, key: ConversationKey, *, session_name: str = "default") -> Conversation:
        """The conversation with this identity, created when missing (with a
        new opaque id). A conversation carried over from a store without
        routes (same channel, key and profile name, ``cwd`` unknown) is
        adopted by the first open that matches it, keeping its session."""

    @abc.abstractmethod
    async def lookup(self, key: ConversationKey) -> Conversation | None:
        """The conversation with this identity, or None; never creates one."""

    @abc.abstractmethod
    async def get(self, conversation_id: str) -> Conversation | None:
        """By id, or None."""

    @abc.abstractmethod
    async def find(self, ref: str) -> list[Conversation]:
        """The conversations ``ref`` names: its id, or its label
        ``channel:key@profile`` (several when routes share a label), or a
        prefix of its id of at least 6 characters (several when ambiguous);
        see :func:`bridge.store.reading.matching`."""

    @abc.abstractmethod
    async def conversations(
        self, *, channel: str | None = None, limit: int | None = None
    ) -> list[Conversation]:
        """Most recently active first."""

    # --- pairing (see bridge.store.pairing) -------------------------------------------------

    @abc.abstractmethod
    async def request_pairing(self, channel: str, user_id: str, name: str) -> Pairing | None:
        """The pairing to tell a person the channel does not know about: a new
        pending code, the one already pending for them, or their approved
        pairing. None when too many codes wait on the channel."""

    @abc.abstractmethod
    async def decide_pairing(self, code: str, *, approve: bool, by: str) -> Pairing | None:
        """Approve or deny a pending code (typed in any case, with or without
        dashes); None when there is no such code waiting (unknown, decided
        already, or expired)."""

    @abc.abstractmethod
    async def pairings(self, channel: str | None = None) -> list[Pairing]:
        """Codes still waiting and people paired, oldest first."""

    @abc.abstractmethod
    async def paired(self, channel: str, user_id: str) -> bool:
        """Whether an admin approved this person on this channel."""

    @abc.abstractmethod
    async def unpair(self, channel: str, user_id: str) -> bool:
        """Forget a person's pairings on a channel (they must pair again);
        False when there were none."""

    @abc.abstractmethod
    async def unfinished(self) -> list[Conversation]:
        """Conversations with a turn open or messages waiting (least recently
        active first): what a bridge starting up must serve, so that what was
        accepted before a stop or a crash is answered (or closed as abandoned)."""

    @abc.abstractmethod
    async def delete(self, conversation_id: str) -> bool:
        """Forget a conversation, its log, state and delivery positions.
        Returns False when there was none."""

    @abc.abstractmethod
    async def prune(self, older_than: float) -> int:
        """Delete the idle conversations last active before ``older_than``
        (those with a running turn or a live lease are kept); returns how many."""

    @abc.abstractmethod
    async def get_state(self, conversation_id: str) -> Any:
        """The conversation's JSON state value (None when unset)."""

    @abc.abstractmethod
    async def set_state(
        self, conversation_id: str, value: Any, *, model: type[BaseModel] | None = None
    ) -> None:
        """Validate (see ``check_state``) and store the state; an invalid
        value raises StateError and changes nothing."""

    @abc.abstractmethod
    async def subscribed(self, conversation_id: str) -> bool:
        """Whether a bot's handler subscribed to the conversation: then it
        reads every message of its thread, not only those addressed to it."""

    @abc.abstractmethod
    async def set_subscribed(self, conversation_id: str, on: bool) -> None:
        """Subscribe to the conversation, or stop (unknown ids raise NotFound)."""

    # --- anyone's writes ---------------------------------------------------------------------

    @abc.abstractmethod
    async def add_message(
        self, conversation_id: str, message: NewMessage, *, admit: Admission | None = None
    ) -> tuple[Event, bool]:
        """Append a ``message`` event; returns it and whether it was a
        redelivery (same non-empty ``platform_id``: the stored event comes
        back, nothing is written, ``admit`` is not called)."""

    @abc.abstractmethod
    async def cancel(
        self,
        conversation_id: str,
        *,
        by: str = "",
        drop_pending: bool = True,
        reason: str = "",
    ) -> Event:
        """Append ``conversation.cancel`` naming the running turn (its
        ``turn``; 0 when none runs), whose lease holder stops it when it
        sees the event. With ``drop_pending`` the waiting messages are
        dropped (consumed, never run); without it (``interrupt``) they stay."""

    @abc.abstractmethod
    async def reset(self, conversation_id: str, *, by: str = "") -> Event:
        """Append ``conversation.reset``: forget the session id and bump the
        reset epoch, so a turn that started before it cannot bring its
        session back."""

    @abc.abstractmethod
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
        """Answer the ``turn.permission`` event ``request_id``. The first
        answer wins; returns None when it was answered already, or its turn
        has completed. Unknown ids raise NotFound. ``scope`` is ``once`` or
        ``session`` (the tool is allowed for the rest of the conversation);
        ``updated_input`` replaces the tool's input when it is allowed. The
        answer names the request's ``tool``."""

    @abc.abstractmethod
    async def ack(self, channel: str, conversation_id: str, position: int) -> None:
        """Record that ``channel`` delivered everything up to ``position``;
        a position never moves back."""

    @abc.abstractmethod
    async def delivered(
        self,
        conversation_id: str,
        channel: str,
        type: str,
        ids: Sequence[str],
        *,
        turn: int = 0,
        data: Mapping[str, Any] | None = None,
        position: int | None = None,
    ) -> Event:
        """Record what ``channel`` did on its platform: append
        ``delivery.posted``, ``delivery.edited`` or ``delivery.finished``
        (``type``) with the platform's message ``ids``, the ``turn`` it was
        about and any ``data`` (how much of the reply it holds, say), and with
        ``position`` acknowledge up to that event id in the same transaction.
        After a crash a delivery worker so knows both where it was and which
        messages it had posted, and finishes a half-delivered reply by
        editing them instead of posting again."""

    @abc.abstractmethod
    async def acked(self, channel: str, conversation_id: str) -> int:
        """``channel``'s acknowledged position (0: nothing yet)."""

    # --- the lease holder's writes ------------------------------------------------------

    @abc.abstractmethod
    async def claim(self, conversation_id: str, owner: str, *, lease_secs: float) -> Claim | None:
        """Take (or renew) the lease. None when another owner holds a lease
        that has not expired and whose process is alive. A turn left open by
        a dead owner is closed as ``abandoned`` first, in the same
        transaction."""

    @abc.abstractmethod
    async def recover(self, conversation_id: str) -> list[Event]:
        """Close a dead owner's open turn as ``abandoned`` and drop its lease,
        without taking one; returns the events written (none when nothing
        was dead)."""

    @abc.abstractmethod
    async def heartbeat(self, conversation_id: str, owner: str, *, lease_secs: float) -> bool:
        """Extend the lease; False when ``owner`` no longer holds it."""

    @abc.abstractmethod
    async def release(self, conversation_id: str, owner: str) -> None:
        """Give the lease up (a no-op when ``owner`` does not hold it)."""

    @abc.abstractmethod
    async def take(
        self,
        conversation_id: str,
        owner: str,
        messages: Sequence[int],
        *,
        text: str,
        attachments: Sequence[Mapping[str, str]] = (),
    ) -> tuple[Conversation, Event]:
        """Take the first ``len(messages)`` pending messages (their ids, in
        order) into a new turn: allocate its number, write ``turn.queued``.
        ``text``/``attachments`` are what the agent will get (merged for
        ``collect``). Needs the lease and no open turn."""

    @abc.abstractmethod
    async def start(self, conversation_id: str, owner: str, turn: int, session_id: str) -> Event:
        """Write ``turn.started`` with the session id the agent resumes."""

    @abc.abstractmethod
    async def append(
        self, conversation_id: str, owner: str, turn: int, type: str, data: Mapping[str, Any]
    ) -> Event:
        """Write one of the running turn's events (``turn.partial``,
        ``turn.permission``)."""

    @abc.abstractmethod
    async def complete(
        self,
        conversation_id: str,
        owner: str,
        turn: int,
        outcome: Mapping[str, Any],
        *,
        captured_session: str | None,
        epoch: int,
        release: bool = False,
    ) -> tuple[Conversation, Event]:
        """Write the turn's ``turn.completed`` (``outcome`` holds its fields)
        and update the conversation: the captured session is kept unless a
        reset happened since ``epoch``; the turn is no longer running.
        Trims the log to ``keep_turns``. The lease is kept, or with
        ``release`` given up in the same transaction."""

    # --- reading ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def read(self, conversation_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events with ``id > after``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    async def transcript(
        self, conversation_id: str, limit: int | None = None
    ) -> list[TranscriptTurn]:
        """The completed turns still in the log, oldest first (the last ``limit``)."""

    @abc.abstractmethod
    async def heads(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The last event id of each of these conversations (those that
        exist), in one read: what a poller compares with what it knows, to
        read only the conversations that changed."""

    @abc.abstractmethod
    async def version(self) -> int:
        """A number that changes whenever anything was written, by this
        process or another one sharing the store; cheap enough to poll."""

    async def close(self) -> None:  # noqa: B027 - optional for a store
        """Release what the store holds open."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


#: The name the storage interface had before the conversation log; the same class.
SessionStore = Store

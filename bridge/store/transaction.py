"""What a store implementation provides: a handful of row operations inside
one transaction.

Every method of the :class:`~bridge.store.base.Store` interface is written
once, in :mod:`bridge.store.procedures`, as a procedure over a
:class:`Transaction`: load the rows it needs, apply the rule from
:mod:`bridge.store.rules`, save what the rule returns. A store (memory,
SQLite, PostgreSQL) only says how to run a transaction and how to read and
write rows in it. So the stores cannot differ in what a write means, only in
where the rows live.

What a transaction must guarantee:

- **Whole or nothing.** Everything a procedure saved lands together, or
  nothing does, also when the procedure raises after saving.
- **One writer at a time per store** (SQLite's ``BEGIN IMMEDIATE``,
  PostgreSQL's row locks), so what a procedure read is still true when it
  saves.
- **The active messages follow the events.** :meth:`Transaction.save` keeps
  a small table of the messages that are pending or in a running turn,
  updated from the events it appends, so the counts an admission rule needs
  (:meth:`Transaction.active`) cost a look at that table, not a scan of
  every conversation's log.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from .records import Conversation, ConversationKey, Event, Pairing

__all__ = ["Transaction"]


class Transaction(abc.ABC):
    """One transaction on a store, as :mod:`~bridge.store.procedures` uses it.

    ``now`` is the store's clock, read once when the transaction began (under
    the write lock, so times follow the order in which writers commit).
    Methods that take a conversation id and find none return None, an empty
    list or 0; the procedures decide when that is an error.
    """

    now: float

    # --- conversations -------------------------------------------------------

    @abc.abstractmethod
    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation with this id."""

    @abc.abstractmethod
    def by_key(self, key: ConversationKey) -> Conversation | None:
        """The conversation with exactly this identity (channel, key, profile, cwd)."""

    @abc.abstractmethod
    def carried_over(self, channel: str, key: str, profile_name: str) -> Conversation | None:
        """The conversation carried over from a store without routes for this
        channel, key and profile name: its route's profile is the name and its
        ``cwd`` is ""."""

    @abc.abstractmethod
    def conversations(self, channel: str | None, limit: int | None) -> list[Conversation]:
        """Most recently active first; equal times in key order."""

    @abc.abstractmethod
    def unfinished(self) -> list[Conversation]:
        """Conversations with a turn open or messages waiting, oldest activity first."""

    @abc.abstractmethod
    def idle(self, older_than: float) -> list[Conversation]:
        """Conversations last active before ``older_than`` with no running turn."""

    @abc.abstractmethod
    def state(self, conversation_id: str) -> Any:
        """The JSON state value (None when unset)."""

    # --- the log ----------------------------------------------------------------

    @abc.abstractmethod
    def events(self, conversation_id: str, after: int, limit: int) -> list[Event]:
        """Events with ``id > after``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    def event(self, conversation_id: str, event_id: int) -> Event | None:
        """One event by id (None when there is none, or it was trimmed)."""

    @abc.abstractmethod
    def by_platform_id(self, conversation_id: str, platform_id: str) -> Event | None:
        """The message event with this non-empty platform id."""

    @abc.abstractmethod
    def pending(self, conversation_id: str) -> list[Event]:
        """The messages waiting for a turn, oldest first."""

    @abc.abstractmethod
    def active(
        self, conversation_id: str, user: str, *, totals: bool = True
    ) -> tuple[int, int, int, int]:
        """(this conversation's pending messages, those from ``user``,
        ``user``'s active messages in every conversation, all active messages);
        without ``totals`` the last two may be 0 (not counted)."""

    @abc.abstractmethod
    def answered(self, conversation_id: str, request_id: int) -> bool:
        """Whether a ``turn.permission_answered`` for the request exists."""

    @abc.abstractmethod
    def queued(self, conversation_id: str, turn: int) -> Event | None:
        """The ``turn.queued`` event of this turn (None when trimmed)."""

    @abc.abstractmethod
    def turns(self, conversation_id: str, first_turn: int) -> list[Event]:
        """The ``turn.queued``, ``turn.started`` and ``turn.completed`` events
        of turns numbered ``first_turn`` or higher, oldest first."""

    @abc.abstractmethod
    def acked(self, channel: str, conversation_id: str) -> int:
        """The channel's delivery position in the conversation (0: none)."""

    @abc.abstractmethod
    def floor(self, conversation_id: str) -> int | None:
        """The lowest delivery position of any channel in the conversation
        (None when no channel has acknowledged anything)."""

    # --- writes ---------------------------------------------------------------------

    @abc.abstractmethod
    def insert(self, conv: Conversation) -> None:
        """Add a new conversation row."""

    @abc.abstractmethod
    def save(self, conv: Conversation, events: Sequence[Event] = ()) -> None:
        """Update the conversation's row (all but its identity: channel, key,
        route profile and folder) and append
        ``events`` (already numbered), keeping the active messages in step:
        a ``message`` is added as pending; a ``turn.queued`` makes its
        ``messages`` running; a ``conversation.cancel`` removes its
        ``dropped``; a ``turn.completed`` removes the conversation's running
        ones."""

    @abc.abstractmethod
    def adopt(self, conv: Conversation) -> None:
        """Give a carried-over conversation the route it was opened with
        (``conv.key.route``; channel and key stay)."""

    @abc.abstractmethod
    def trim(self, conversation_id: str, before: int) -> None:
        """Delete the events with ``id < before``."""

    @abc.abstractmethod
    def ack(self, channel: str, conversation_id: str, position: int) -> None:
        """Move the channel's position forward to ``position`` (never back)."""

    @abc.abstractmethod
    def set_state(self, conversation_id: str, value: Any) -> None:
        """Store the (already checked) JSON state value."""

    @abc.abstractmethod
    def delete(self, conversation_id: str) -> bool:
        """Delete the conversation with its log, state, active messages and
        delivery positions; False when there was none."""

    # --- subscriptions ---------------------------------------------------------------

    @abc.abstractmethod
    def subscribed(self, conversation_id: str) -> bool:
        """Whether a bot's handler subscribed to the conversation."""

    @abc.abstractmethod
    def set_subscribed(self, conversation_id: str, on: bool) -> None:
        """Subscribe to the conversation (``on``) or stop."""

    # --- pairing -----------------------------------------------------------------

    @abc.abstractmethod
    def pairings(self, channel: str | None, user_id: str | None) -> list[Pairing]:
        """Pairings, of one channel (and one person) or all, oldest first."""

    @abc.abstractmethod
    def pairing(self, code: str) -> Pairing | None:
        """The pairing with this code."""

    @abc.abstractmethod
    def save_pairing(self, pairing: Pairing) -> None:
        """Insert a pairing, or replace the one with its code."""

    @abc.abstractmethod
    def delete_pairings(self, channel: str, user_id: str) -> int:
        """Forget a person's pairings on a channel; returns how many."""

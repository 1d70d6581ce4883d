"""Every method of the :class:`~bridge.store.base.Store` interface, written
once over a :class:`~bridge.store.transaction.Transaction`.

:class:`TransactionStore` is the base of the memory and SQLite stores (and,
later, PostgreSQL's): each method runs one procedure in one transaction,
loads what it needs, applies the rule from :mod:`bridge.store.rules`, and
saves the conversation row and the events the rule returns. A subclass says
only how to run a transaction (:meth:`TransactionStore._run`) and how to
read and write rows in it.

Each procedure does every check that can fail (a missing conversation, a
lost lease, an admission refused, data that is not JSON) before its first
save, so even a store without rollback (memory) is left untouched by a
write that raises.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel

from . import rules
from .base import Admission, Claim, Store
from .errors import NotFound, ReadOnlyStore
from .owners import lease_is_live
from .pairing_procedures import PairingProcedures
from .reading import matching, transcript_of
from .records import (
    TURN_PERMISSION,
    Conversation,
    ConversationKey,
    Event,
    Load,
    NewMessage,
    TranscriptTurn,
)
from .state import check_state
from .transaction import Transaction

__all__ = ["TransactionStore"]

T = TypeVar("T")


def _conversation(tx: Transaction, conversation_id: str) -> Conversation:
    conv = tx.get(conversation_id)
    if conv is None:
        raise NotFound(
            f"there is no conversation {conversation_id!r}",
            hint="it may have been deleted or pruned; `agentproc sessions list` shows them",
        )
    return conv


def _save(tx: Transaction, write: rules.Write) -> tuple[Conversation, list[Event]]:
    """Number the rule's events, save them with the row; returns both."""
    conv, events = write.stamped(tx.now)
    tx.save(conv, events)
    return conv, events


class TransactionStore(PairingProcedures, Store):
    """A :class:`~bridge.store.base.Store` made of procedures over
    transactions; see the module docstring."""

    #: Completed turns whose events each conversation keeps (validated by
    #: :func:`bridge.store.rules.check_keep_turns` in the subclass).
    keep_turns: int = rules.DEFAULT_KEEP_TURNS

    @abc.abstractmethod
    async def _run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        """Run ``work`` in one transaction (a writing one when ``write``)."""

    def _where(self) -> str:
        """The store, named for messages (a file's path, "in memory")."""
        return type(self).__name__

    async def _read(self, work: Callable[[Transaction], T]) -> T:
        return await self._run(work, write=False)

    async def _write(self, work: Callable[[Transaction], T]) -> T:
        if self.read_only:
            raise ReadOnlyStore(self._where())
        return await self._run(work, write=True)

    # --- conversations ---------------------------------------------------------------

    async def open(self, key: ConversationKey, *, session_name: str = "default") -> Conversation:
        def work(tx: Transaction) -> Conversation:
            conv = tx.by_key(key)
            if conv is not None:
                return conv
            if key.route.name:
                old = tx.carried_over(key.channel, key.key, key.route.name)
                if old is not None:  # adopt it: it gets this route, keeps the rest
                    conv = replace(old, key=key)
                    tx.adopt(conv)
                    return conv
            conv = rules.new_conversation(key, tx.now, session_name)
            tx.insert(conv)
            return conv

        return await self._write(work)

    async def lookup(self, key: ConversationKey) -> Conversation | None:
        return await self._read(lambda tx: tx.by_key(key))

    async def get(self, conversation_id: str) -> Conversation | None:
        return await self._read(lambda tx: tx.get(conversation_id))

    async def find(self, ref: str) -> list[Conversation]:
        def work(tx: Transaction) -> list[Conversation]:
            conv = tx.get(ref)
            if conv is not None:
                return [conv]
            return matching(ref, tx.conversations(None, None))

        return await self._read(work)

    async def conversations(
        self, *, channel: str | None = None, limit: int | None = None
    ) -> list[Conversation]:
        if limit is not None and limit <= 0:
            return []
        return await self._read(lambda tx: tx.conversations(channel, limit))

    async def unfinished(self) -> list[Conversation]:
        return await self._read(lambda tx: tx.unfinished())

    async def delete(self, conversation_id: str) -> bool:
        return await self._write(lambda tx: tx.delete(conversation_id))

    async def prune(self, older_than: float) -> int:
        def work(tx: Transaction) -> int:
            idle = [c for c in tx.idle(older_than) if not lease_is_live(c, tx.now)]
            for conv in idle:
                tx.delete(conv.id)
            return len(idle)

        return await self._write(work)

    async def get_state(self, conversation_id: str) -> Any:
        return await self._read(lambda tx: tx.state(conversation_id))

    async def set_state(
        self, conversation_id: str, value: Any, *, model: type[BaseModel] | None = None
    ) -> None:
        checked = check_state(value, model)  # before the store is touched

        def work(tx: Transaction) -> None:
            _conversation(tx, conversation_id)
            tx.set_state(conversation_id, checked)

        await self._write(work)

    async def subscribed(self, conversation_id: str) -> bool:
        return await self._read(lambda tx: tx.subscribed(conversation_id))

    async def set_subscribed(self, conversation_id: str, on: bool) -> None:
        def work(tx: Transaction) -> None:
            _conversation(tx, conversation_id)
            tx.set_subscribed(conversation_id, on)

        await self._write(work)

    # --- anyone's writes -------------------------------------------------------------------

    async def add_message(
        self, conversation_id: str, message: NewMessage, *, admit: Admission | None = None
    ) -> tuple[Event, bool]:
        def work(tx: Transaction) -> tuple[Event, bool]:
            conv = _conversation(tx, conversation_id)
            if message.platform_id:
                seen = tx.by_platform_id(conversation_id, message.platform_id)
                if seen is not None:
                    return seen, True
            if admit is not None and not message.handled:
                pending, mine, user_active, total = tx.active(
                    conversation_id,
                    message.from_user,
                    totals=getattr(admit, "needs_totals", True),
                )
                admit(conv, Load(bool(conv.running_turn), pending, mine, user_active, total))
            _, events = _save(tx, rules.add_message(conv, message, tx.now))
            return events[0], False

        return await self._write(work)

    async def cancel(
        self,
        conversation_id: str,
        *,
        by: str = "",
        drop_pending: bool = True,
        reason: str = "",
    ) -> Event:
        def work(tx: Transaction) -> Event:
            conv = _conversation(tx, conversation_id)
            pending = tx.pending(conversation_id) if drop_pending else []
            write = rules.cancel(conv, pending, by, tx.now, drop=drop_pending, reason=reason)
            return _save(tx, write)[1][0]

        return await self._write(work)

    async def reset(self, conversation_id: str, *, by: str = "") -> Event:
        def work(tx: Transaction) -> Event:
            conv = _conversation(tx, conversation_id)
            return _save(tx, rules.reset(conv, by, tx.now))[1][0]

        return await self._write(work)

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
        def work(tx: Transaction) -> Event | None:
            conv = _conversation(tx, conversation_id)
            request = tx.event(conversation_id, request_id)
            # Only a request of the running turn can still be open; looking
            # for its answer is then a short scan of that turn's events.
            answered = (
                request is not None
                and request.type == TURN_PERMISSION
                and request.turn == conv.running_turn
                and tx.answered(conversation_id, request_id)
            )
            write = rules.answer(
                conv,
                request,
                answered,
                request_id=request_id,
                allow=allow,
                scope=scope,
                message=message,
                by=by,
                updated_input=updated_input,
            )
            return None if write is None else _save(tx, write)[1][0]

        return await self._write(work)

    async def ack(self, channel: str, conversation_id: str, position: int) -> None:
        if position < 0:
            raise ValueError(f"a delivery position is an event id >= 0, not {position}")

        def work(tx: Transaction) -> None:
            _check_position(_conversation(tx, conversation_id), position)
            tx.ack(channel, conversation_id, position)

        await self._write(work)

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
        def work(tx: Transaction) -> Event:
            conv = _conversation(tx, conversation_id)
            write = rules.delivery(conv, channel, type, ids, turn, data or {})
            if position is not None:  # checked before anything is saved
                _check_position(replace(conv, last_event=conv.last_event + 1), position)
            conv, events = _save(tx, write)
            if position is not None:
                tx.ack(channel, conversation_id, position)
            return events[0]

        return await self._write(work)

    async def acked(self, channel: str, conversation_id: str) -> int:
        return await self._read(lambda tx: tx.acked(channel, conversation_id))

    # --- the lease holder's writes ---------------------------------------------------------

    async def claim(self, conversation_id: str, owner: str, *, lease_secs: float) -> Claim | None:
        def work(tx: Transaction) -> Claim | None:
            write = rules.claim(_conversation(tx, conversation_id), owner, tx.now, lease_secs)
            if write is None:
                return None
            conv, closed = _save(tx, write)
            return Claim(conv, tuple(tx.pending(conversation_id)), tuple(closed))

        return await self._write(work)

    async def recover(self, conversation_id: str) -> list[Event]:
        def work(tx: Transaction) -> list[Event]:
            write = rules.abandon_if_dead(_conversation(tx, conversation_id), tx.now)
            return [] if write is None else _save(tx, write)[1]

        return await self._write(work)

    async def heartbeat(self, conversation_id: str, owner: str, *, lease_secs: float) -> bool:
        def work(tx: Transaction) -> bool:
            write = rules.heartbeat(_conversation(tx, conversation_id), owner, tx.now, lease_secs)
            if write is not None:
                _save(tx, write)
            return write is not None

        return await self._write(work)

    async def release(self, conversation_id: str, owner: str) -> None:
        def work(tx: Transaction) -> None:
            write = rules.release(_conversation(tx, conversation_id), owner)
            if write is not None:
                _save(tx, write)

        await self._write(work)

    async def take(
        self,
        conversation_id: str,
        owner: str,
        messages: Sequence[int],
        *,
        text: str,
        attachments: Sequence[Mapping[str, str]] = (),
    ) -> tuple[Conversation, Event]:
        def work(tx: Transaction) -> tuple[Conversation, Event]:
            conv = _conversation(tx, conversation_id)
            pending = tx.pending(conversation_id)
            write = rules.take(
                conv, owner, pending, messages, text=text, attachments=attachments, now=tx.now
            )
            conv, events = _save(tx, write)
            return conv, events[0]

        return await self._write(work)

    async def start(self, conversation_id: str, owner: str, turn: int, session_id: str) -> Event:
        def work(tx: Transaction) -> Event:
            conv = _conversation(tx, conversation_id)
            return _save(tx, rules.start(conv, owner, turn, session_id))[1][0]

        return await self._write(work)

    async def append(
        self, conversation_id: str, owner: str, turn: int, type: str, data: Mapping[str, Any]
    ) -> Event:
        def work(tx: Transaction) -> Event:
            conv = _conversation(tx, conversation_id)
            return _save(tx, rules.running_event(conv, owner, turn, type, data))[1][0]

        return await self._write(work)

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
        keep = self.keep_turns

        def work(tx: Transaction) -> tuple[Conversation, Event]:
            conv = _conversation(tx, conversation_id)
            write = rules.complete(
                conv,
                owner,
                turn,
                outcome,
                captured_session=captured_session,
                epoch=epoch,
                now=tx.now,
            )
            conv, events = _save(tx, write)
            if release:
                let_go = rules.release(conv, owner)
                if let_go is not None:
                    conv, _ = _save(tx, let_go)
            return _trim(tx, conv, keep), events[0]

        return await self._write(work)

    # --- reading ------------------------------------------------------------------------------

    async def read(self, conversation_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        if limit <= 0:
            return []
        return await self._read(lambda tx: tx.events(conversation_id, max(after, 0), limit))

    async def heads(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        ids = list(conversation_ids)

        def work(tx: Transaction) -> dict[str, int]:
            found = (tx.get(cid) for cid in ids)
            return {conv.id: conv.last_event for conv in found if conv is not None}

        return await self._read(work)

    async def transcript(
        self, conversation_id: str, limit: int | None = None
    ) -> list[TranscriptTurn]:
        if limit is not None and limit <= 0:
            return []

        def work(tx: Transaction) -> list[TranscriptTurn]:
            conv = tx.get(conversation_id)
            if conv is None:
                return []
            first = 1
            if limit is not None:  # turns are numbered densely: the last `limit` completed
                last_completed = conv.turn_count - (1 if conv.running_turn else 0)
                first = last_completed - limit + 1
            turns = transcript_of(tx.turns(conversation_id, first))
            return turns if limit is None else turns[-limit:]

        return await self._read(work)


def _check_position(conv: Conversation, position: int) -> None:
    if position < 0 or position > conv.last_event:
        raise ValueError(
            f"conversation {conv.label} has events 1 to {conv.last_event}; "
            f"{position} is not a position in it"
        )


def _trim(tx: Transaction, conv: Conversation, keep_turns: int) -> Conversation:
    """Retention after a completed turn: drop the events before the oldest of
    the last ``keep_turns`` completed turns, never past an event some channel
    has still to deliver (see :func:`bridge.store.rules.trim_cut`)."""
    oldest = rules.oldest_kept_turn(conv, keep_turns)
    if not oldest:
        return conv
    lowest = tx.floor(conv.id)
    floor = sys.maxsize if lowest is None else lowest + 1
    cut = rules.trim_cut(conv, keep_turns, tx.queued(conv.id, oldest), floor)
    if cut <= conv.first_event:
        return conv
    tx.trim(conv.id, cut)
    conv = replace(conv, first_event=cut)
    tx.save(conv)
    return conv

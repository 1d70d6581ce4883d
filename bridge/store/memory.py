"""A store that lives in memory: for tests and throwaway runs.

It runs the same procedures as the SQLite store (:mod:`bridge.store.procedures`)
over plain dicts, so it behaves the same, and the contract suite checks that it
does. Event data and state are kept as JSON text, as a file would keep them:
what a caller reads back is a fresh copy it may change freely, and data that
is not JSON is refused the same way in both stores.

No locks: every procedure runs from start to end without awaiting, so on one
event loop no other task can come between its reads and its saves. It is not
meant to be shared between threads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import rules
from .procedures import TransactionStore
from .records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    MESSAGE_HANDLED,
    TURN_COMPLETED,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    TURN_STARTED,
    Conversation,
    ConversationKey,
    Event,
    Pairing,
    Route,
)
from .transaction import Transaction

__all__ = ["MemoryStore"]

T = TypeVar("T")

#: One stored event: (id, type, turn, at, data as JSON text).
_Row = tuple[int, str, int, float, str]

_TURN_TYPES = (TURN_QUEUED, TURN_STARTED, TURN_COMPLETED)


def _event(conversation_id: str, row: _Row) -> Event:
    id_, type_, turn, at, text = row
    return Event(conversation_id, id_, type_, turn, at, json.loads(text))


class _Tables:
    """Everything the store holds."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.ids: dict[ConversationKey, str] = {}
        #: Each conversation's events, oldest first; ids are dense, so the
        #: event with id N sits at N - (the first one's id).
        self.logs: dict[str, list[_Row]] = {}
        self.platform_ids: dict[tuple[str, str], int] = {}
        #: Pending or running messages, per conversation: event id -> (user,
        #: running); with counts per sender and in all, so the caps cost the
        #: same however many conversations the store holds.
        self.active: dict[str, dict[int, tuple[str, bool]]] = {}
        self.active_by_user: dict[str, int] = {}
        self.active_count = 0
        self.states: dict[str, str] = {}
        self.positions: dict[tuple[str, str], int] = {}  # (conversation, channel)
        self.pairings: dict[str, Pairing] = {}  # by code
        self.subscriptions: set[str] = set()  # conversation ids


class _MemoryTransaction(Transaction):
    def __init__(self, tables: _Tables, now: float) -> None:
        self.t = tables
        self.now = now
        self.changed = False

    # --- conversations

    def get(self, conversation_id: str) -> Conversation | None:
        return self.t.conversations.get(conversation_id)

    def by_key(self, key: ConversationKey) -> Conversation | None:
        found = self.t.ids.get(key)
        return None if found is None else self.t.conversations[found]

    def carried_over(self, channel: str, key: str, profile_name: str) -> Conversation | None:
        return self.by_key(ConversationKey(channel, key, Route(profile_name, "")))

    def conversations(self, channel: str | None, limit: int | None) -> list[Conversation]:
        convs = [
            c for c in self.t.conversations.values() if channel is None or c.key.channel == channel
        ]
        convs.sort(key=lambda c: (-c.updated_at, c.key))
        return convs if limit is None else convs[:limit]

    def unfinished(self) -> list[Conversation]:
        found = [
            c for c in self.t.conversations.values() if c.running_turn or self.t.active.get(c.id)
        ]
        found.sort(key=lambda c: (c.updated_at, c.id))
        return found

    def idle(self, older_than: float) -> list[Conversation]:
        return [
            c
            for c in self.t.conversations.values()
            if c.updated_at < older_than and not c.running_turn and not self.t.active.get(c.id)
        ]

    def state(self, conversation_id: str) -> Any:
        text = self.t.states.get(conversation_id)
        return None if text is None else json.loads(text)

    # --- the log

    def _rows(self, conversation_id: str) -> list[_Row]:
        return self.t.logs.get(conversation_id, [])

    def events(self, conversation_id: str, after: int, limit: int) -> list[Event]:
        rows = self._rows(conversation_id)
        start = max(0, after + 1 - rows[0][0]) if rows else 0
        return [_event(conversation_id, r) for r in rows[start : start + limit]]

    def event(self, conversation_id: str, event_id: int) -> Event | None:
        rows = self._rows(conversation_id)
        index = event_id - rows[0][0] if rows else -1
        if 0 <= index < len(rows):
            return _event(conversation_id, rows[index])
        return None

    def by_platform_id(self, conversation_id: str, platform_id: str) -> Event | None:
        found = self.t.platform_ids.get((conversation_id, platform_id))
        return None if found is None else self.event(conversation_id, found)

    def pending(self, conversation_id: str) -> list[Event]:
        active = self.t.active.get(conversation_id, {})
        ids = sorted(message for message, (_, running) in active.items() if not running)
        return [e for e in (self.event(conversation_id, i) for i in ids) if e is not None]

    def active(
        self, conversation_id: str, user: str, *, totals: bool = True
    ) -> tuple[int, int, int, int]:
        pending = mine = 0
        for sender, running in self.t.active.get(conversation_id, {}).values():
            if not running:
                pending += 1
                mine += sender == user
        t = self.t
        return pending, mine, t.active_by_user.get(user, 0), t.active_count

    def answered(self, conversation_id: str, request_id: int) -> bool:
        return any(
            e.type == TURN_PERMISSION_ANSWERED and e.data.get("request") == request_id
            for e in self.events(conversation_id, request_id, len(self._rows(conversation_id)))
        )

    def queued(self, conversation_id: str, turn: int) -> Event | None:
        for row in self._rows(conversation_id):
            if row[1] == TURN_QUEUED and row[2] == turn:
                return _event(conversation_id, row)
        return None

    def turns(self, conversation_id: str, first_turn: int) -> list[Event]:
        return [
            _event(conversation_id, r)
            for r in self._rows(conversation_id)
            if r[1] in _TURN_TYPES and r[2] >= first_turn
        ]

    def acked(self, channel: str, conversation_id: str) -> int:
        return self.t.positions.get((conversation_id, channel), 0)

    def floor(self, conversation_id: str) -> int | None:
        found = [p for (c, _), p in self.t.positions.items() if c == conversation_id]
        return min(found) if found else None

    # --- writes

    def insert(self, conv: Conversation) -> None:
        self.changed = True
        self.t.conversations[conv.id] = conv
        self.t.ids[conv.key] = conv.id
        self.t.logs[conv.id] = []

    def save(self, conv: Conversation, events: Sequence[Event] = ()) -> None:
        # Encode first: data that is not JSON raises before anything changes.
        rows = [(e.id, e.type, e.turn, e.at, json.dumps(e.data, allow_nan=False)) for e in events]
        self.changed = True
        self.t.conversations[conv.id] = conv
        self.t.logs[conv.id].extend(rows)
        for e in events:
            self._follow(e)

    def _follow(self, e: Event) -> None:
        """Keep the active messages in step with one appended event."""
        conv = e.conversation
        active = self.t.active.setdefault(conv, {})
        if e.type == MESSAGE:
            user = str(e.data.get("from_user", ""))
            active[e.id] = (user, False)
            self._count(user, 1)
            if e.data.get("platform_id"):
                self.t.platform_ids[(conv, str(e.data["platform_id"]))] = e.id
        elif e.type == MESSAGE_HANDLED:
            if e.data.get("platform_id"):
                self.t.platform_ids[(conv, str(e.data["platform_id"]))] = e.id
        elif e.type == TURN_QUEUED:
            for message in e.data.get("messages", ()):
                user, _ = active[message]
                active[message] = (user, True)
        elif e.type == CONVERSATION_CANCEL:
            for message in e.data.get("dropped", ()):
                gone = active.pop(message, None)
                if gone is not None:
                    self._count(gone[0], -1)
        elif e.type == TURN_COMPLETED:
            for message in [m for m, (_, running) in active.items() if running]:
                self._count(active.pop(message)[0], -1)

    def _count(self, user: str, change: int) -> None:
        t = self.t
        t.active_count += change
        left = t.active_by_user.get(user, 0) + change
        if left:
            t.active_by_user[user] = left
        else:
            t.active_by_user.pop(user, None)

    def adopt(self, conv: Conversation) -> None:
        self.changed = True
        old = self.t.conversations[conv.id]
        del self.t.ids[old.key]
        self.t.ids[conv.key] = conv.id
        self.t.conversations[conv.id] = conv

    def trim(self, conversation_id: str, before: int) -> None:
        self.changed = True
        rows = self.t.logs[conversation_id]
        cut = [r for r in rows if r[0] < before]
        del rows[: len(cut)]
        for row in cut:
            if row[1] in (MESSAGE, MESSAGE_HANDLED):
                platform_id = json.loads(row[4]).get("platform_id")
                self.t.platform_ids.pop((conversation_id, platform_id), None)

    def ack(self, channel: str, conversation_id: str, position: int) -> None:
        self.changed = True
        key = (conversation_id, channel)
        self.t.positions[key] = max(position, self.t.positions.get(key, 0))

    def set_state(self, conversation_id: str, value: Any) -> None:
        self.changed = True
        self.t.states[conversation_id] = json.dumps(value, allow_nan=False)

    def delete(self, conversation_id: str) -> bool:
        conv = self.t.conversations.pop(conversation_id, None)
        if conv is None:
            return False
        self.changed = True
        del self.t.ids[conv.key]
        self.t.logs.pop(conversation_id, None)
        self.t.states.pop(conversation_id, None)
        self.t.subscriptions.discard(conversation_id)
        self.t.platform_ids = {
            k: v for k, v in self.t.platform_ids.items() if k[0] != conversation_id
        }
        for user, _ in self.t.active.pop(conversation_id, {}).values():
            self._count(user, -1)
        self.t.positions = {k: v for k, v in self.t.positions.items() if k[0] != conversation_id}
        return True

    # --- subscriptions

    def subscribed(self, conversation_id: str) -> bool:
        return conversation_id in self.t.subscriptions

    def set_subscribed(self, conversation_id: str, on: bool) -> None:
        self.changed = True
        if on:
            self.t.subscriptions.add(conversation_id)
        else:
            self.t.subscriptions.discard(conversation_id)

    # --- pairing

    def pairings(self, channel: str | None, user_id: str | None) -> list[Pairing]:
        found = [
            p
            for p in self.t.pairings.values()
            if (channel is None or p.channel == channel)
            and (user_id is None or p.user_id == user_id)
        ]
        return sorted(found, key=lambda p: (p.created_at, p.code))

    def pairing(self, code: str) -> Pairing | None:
        return self.t.pairings.get(code)

    def save_pairing(self, pairing: Pairing) -> None:
        self.changed = True
        self.t.pairings[pairing.code] = pairing

    def delete_pairings(self, channel: str, user_id: str) -> int:
        gone = [
            c for c, p in self.t.pairings.items() if (p.channel, p.user_id) == (channel, user_id)
        ]
        for code in gone:
            del self.t.pairings[code]
        self.changed = self.changed or bool(gone)
        return len(gone)


class MemoryStore(TransactionStore):
    """The conversation log in memory. ``clock`` gives every timestamp and
    lease expiry (tests pass a fake one); ``keep_turns`` is the retention."""

    def __init__(
        self,
        *,
        keep_turns: int = rules.DEFAULT_KEEP_TURNS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keep_turns = rules.check_keep_turns(keep_turns)
        self._clock = clock
        self._tables = _Tables()
        self._version = 0

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._tables.conversations)} conversations>"

    def _where(self) -> str:
        return "in memory"

    async def _run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        tx = _MemoryTransaction(self._tables, self._clock())
        result = work(tx)
        if tx.changed:
            self._version += 1
        return result

    async def version(self) -> int:
        return self._version

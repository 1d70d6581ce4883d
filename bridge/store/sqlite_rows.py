"""The SQLite store's rows: each operation of a
:class:`~bridge.store.transaction.Transaction` as SQL on one connection.

The store (:mod:`bridge.store.sqlite`) begins and ends the transaction;
this module only reads and writes inside it. Event data and state are JSON
text (:func:`~bridge.store.sqlite_schema.json_text`); the tables and indexes
are in :mod:`bridge.store.sqlite_schema`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    MESSAGE_HANDLED,
    TURN_COMPLETED,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    Conversation,
    ConversationKey,
    Event,
    Pairing,
    Route,
)
from .sqlite_schema import json_text
from .transaction import Transaction

__all__ = ["OF_TURNS", "SQLiteTransaction"]

_CONV = (
    "id, channel, thread_key, profile_ref, cwd, profile_name, session_id, session_name, "
    "turn_count, last_event, first_event, consumed, running_turn, reset_epoch, "
    "lease_owner, lease_expires, created_at, updated_at, last_status"
)
_COLUMNS = _CONV.split(", ")
_INSERT = f"INSERT INTO conversations ({_CONV}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
#: Every column but the id, which is how the row is found.
#: Every column but the identity (id, channel, thread key, profile, folder):
#: setting a column of the UNIQUE index, even to its own value, makes SQLite
#: rewrite that index entry, which costs every write about a tenth.
_UPDATE = (
    "UPDATE conversations SET " + ", ".join(f"{c} = ?" for c in _COLUMNS[5:]) + " WHERE id = ?"
)
_EVENT = "conversation_id, id, type, turn, at, data"
#: Repeated word for word from the partial index ``events_of_turns``, so
#: SQLite uses it (see sqlite_schema).
OF_TURNS = "type IN ('turn.queued', 'turn.started', 'turn.completed')"


def _conversation(row: Sequence[Any]) -> Conversation:
    id_, channel, thread_key, profile_ref, cwd, profile_name, *rest = row
    return Conversation(
        id_, ConversationKey(channel, thread_key, Route(profile_ref, cwd, profile_name)), *rest
    )


def _row(conv: Conversation) -> tuple[Any, ...]:
    """The conversation's columns, in the order of ``_CONV``."""
    key = conv.key
    return (
        conv.id,
        key.channel,
        key.key,
        key.route.profile,
        key.route.cwd,
        key.route.name,
        conv.session_id,
        conv.session_name,
        conv.turn_count,
        conv.last_event,
        conv.first_event,
        conv.consumed,
        conv.running_turn,
        conv.reset_epoch,
        conv.lease_owner,
        conv.lease_expires,
        conv.created_at,
        conv.updated_at,
        conv.last_status,
    )


def _event(row: Sequence[Any]) -> Event:
    conversation_id, id_, type_, turn, at, data = row
    return Event(conversation_id, id_, type_, turn, at, json.loads(data))


class SQLiteTransaction(Transaction):
    """Rows in one SQLite transaction; the store began it and ends it."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.changed = False

    def _one(self, sql: str, *params: Any) -> Any:
        return self.conn.execute(sql, params).fetchone()

    def _conversations(self, sql: str, *params: Any) -> list[Conversation]:
        return [_conversation(r) for r in self.conn.execute(f"SELECT {_CONV} {sql}", params)]

    def _events(self, sql: str, *params: Any) -> list[Event]:
        return [_event(r) for r in self.conn.execute(f"SELECT {_EVENT} {sql}", params)]

    # --- conversations

    def get(self, conversation_id: str) -> Conversation | None:
        found = self._conversations("FROM conversations WHERE id = ?", conversation_id)
        return found[0] if found else None

    def by_key(self, key: ConversationKey) -> Conversation | None:
        found = self._conversations(
            "FROM conversations WHERE channel = ? AND thread_key = ? AND profile_ref = ? "
            "AND cwd = ?",
            key.channel,
            key.key,
            key.route.profile,
            key.route.cwd,
        )
        return found[0] if found else None

    def carried_over(self, channel: str, key: str, profile_name: str) -> Conversation | None:
        return self.by_key(ConversationKey(channel, key, Route(profile_name, "")))

    def conversations(self, channel: str | None, limit: int | None) -> list[Conversation]:
        where = "" if channel is None else "WHERE channel = ? "
        params: list[Any] = [] if channel is None else [channel]
        return self._conversations(
            f"FROM conversations {where}"
            "ORDER BY updated_at DESC, channel, thread_key, profile_ref, cwd LIMIT ?",
            *params,
            -1 if limit is None else limit,
        )

    def unfinished(self) -> list[Conversation]:
        return self._conversations(
            "FROM conversations WHERE running_turn != 0 OR EXISTS "
            "(SELECT 1 FROM active_messages a WHERE a.conversation_id = conversations.id) "
            "ORDER BY updated_at, id"
        )

    def idle(self, older_than: float) -> list[Conversation]:
        return self._conversations(
            "FROM conversations WHERE updated_at < ? AND running_turn = 0 AND NOT EXISTS "
            "(SELECT 1 FROM active_messages a WHERE a.conversation_id = conversations.id)",
            older_than,
        )

    def state(self, conversation_id: str) -> Any:
        row = self._one("SELECT state FROM conversations WHERE id = ?", conversation_id)
        return None if row is None or row[0] is None else json.loads(row[0])

    # --- the log

    def events(self, conversation_id: str, after: int, limit: int) -> list[Event]:
        return self._events(
            "FROM events WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
            conversation_id,
            after,
            limit,
        )

    def event(self, conversation_id: str, event_id: int) -> Event | None:
        found = self._events(
            "FROM events WHERE conversation_id = ? AND id = ?", conversation_id, event_id
        )
        return found[0] if found else None

    def by_platform_id(self, conversation_id: str, platform_id: str) -> Event | None:
        found = self._events(
            "FROM events WHERE conversation_id = ? AND platform_id = ?",
            conversation_id,
            platform_id,
        )
        return found[0] if found else None

    def pending(self, conversation_id: str) -> list[Event]:
        return [
            _event(r)
            for r in self.conn.execute(
                "SELECT e.conversation_id, e.id, e.type, e.turn, e.at, e.data "
                "FROM active_messages a JOIN events e "
                "ON e.conversation_id = a.conversation_id AND e.id = a.message "
                "WHERE a.conversation_id = ? AND a.running = 0 ORDER BY a.message",
                (conversation_id,),
            )
        ]

    def active(
        self, conversation_id: str, user: str, *, totals: bool = True
    ) -> tuple[int, int, int, int]:
        # The conversation's own counts read a range of the primary key; the
        # totals scan the table, so only a rule that needs them pays for them.
        mine = self._one(
            "SELECT count(*), coalesce(sum(from_user = ?2), 0) FROM active_messages "
            "WHERE conversation_id = ?1 AND running = 0",
            conversation_id,
            user,
        )
        if not totals:
            return int(mine[0]), int(mine[1]), 0, 0
        every = self._one(
            "SELECT coalesce(sum(from_user = ?1), 0), count(*) FROM active_messages", user
        )
        return int(mine[0]), int(mine[1]), int(every[0]), int(every[1])

    def answered(self, conversation_id: str, request_id: int) -> bool:
        rows = self.conn.execute(
            "SELECT data FROM events WHERE conversation_id = ? AND id > ? AND type = ?",
            (conversation_id, request_id, TURN_PERMISSION_ANSWERED),
        )
        return any(json.loads(data).get("request") == request_id for (data,) in rows)

    def queued(self, conversation_id: str, turn: int) -> Event | None:
        found = self._events(
            f"FROM events WHERE conversation_id = ? AND {OF_TURNS} AND type = ? AND turn = ?",
            conversation_id,
            TURN_QUEUED,
            turn,
        )
        return found[0] if found else None

    def turns(self, conversation_id: str, first_turn: int) -> list[Event]:
        return self._events(
            f"FROM events WHERE conversation_id = ? AND {OF_TURNS} AND turn >= ? ORDER BY id",
            conversation_id,
            first_turn,
        )

    def acked(self, channel: str, conversation_id: str) -> int:
        row = self._one(
            "SELECT position FROM deliveries WHERE conversation_id = ? AND channel = ?",
            conversation_id,
            channel,
        )
        return 0 if row is None else int(row[0])

    def floor(self, conversation_id: str) -> int | None:
        row = self._one(
            "SELECT min(position) FROM deliveries WHERE conversation_id = ?", conversation_id
        )
        return None if row[0] is None else int(row[0])

    # --- writes

    def insert(self, conv: Conversation) -> None:
        self.changed = True
        self.conn.execute(_INSERT, _row(conv))

    def save(self, conv: Conversation, events: Sequence[Event] = ()) -> None:
        self.changed = True
        self.conn.execute(_UPDATE, (*_row(conv)[5:], conv.id))
        self.conn.executemany(
            f"INSERT INTO events ({_EVENT}, platform_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.conversation,
                    e.id,
                    e.type,
                    e.turn,
                    e.at,
                    json_text(e.data),
                    (e.type in (MESSAGE, MESSAGE_HANDLED) and e.data.get("platform_id")) or None,
                )
                for e in events
            ],
        )
        for e in events:
            self._follow(e)

    def _follow(self, e: Event) -> None:
        """Keep the active messages in step with one appended event."""
        conv = e.conversation
        if e.type == MESSAGE:
            self.conn.execute(
                "INSERT INTO active_messages (conversation_id, message, from_user) "
                "VALUES (?, ?, ?)",
                (conv, e.id, str(e.data.get("from_user", ""))),
            )
        elif e.type == TURN_QUEUED:
            self.conn.executemany(
                "UPDATE active_messages SET running = 1 WHERE conversation_id = ? AND message = ?",
                [(conv, m) for m in e.data.get("messages", ())],
            )
        elif e.type == CONVERSATION_CANCEL:
            self.conn.executemany(
                "DELETE FROM active_messages WHERE conversation_id = ? AND message = ?",
                [(conv, m) for m in e.data.get("dropped", ())],
            )
        elif e.type == TURN_COMPLETED:
            self.conn.execute(
                "DELETE FROM active_messages WHERE conversation_id = ? AND running = 1", (conv,)
            )

    def adopt(self, conv: Conversation) -> None:
        self.changed = True
        route = conv.key.route
        self.conn.execute(
            "UPDATE conversations SET profile_ref = ?, cwd = ?, profile_name = ? WHERE id = ?",
            (route.profile, route.cwd, route.name, conv.id),
        )

    def trim(self, conversation_id: str, before: int) -> None:
        self.changed = True
        self.conn.execute(
            "DELETE FROM events WHERE conversation_id = ? AND id < ?", (conversation_id, before)
        )

    def ack(self, channel: str, conversation_id: str, position: int) -> None:
        self.changed = True
        self.conn.execute(
            "INSERT INTO deliveries (conversation_id, channel, position, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, channel) DO UPDATE SET "
            "position = max(position, excluded.position), updated_at = excluded.updated_at",
            (conversation_id, channel, position, self.now),
        )

    def set_state(self, conversation_id: str, value: Any) -> None:
        self.changed = True
        self.conn.execute(
            "UPDATE conversations SET state = ? WHERE id = ?", (json_text(value), conversation_id)
        )

    def delete(self, conversation_id: str) -> bool:
        cur = self.conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self.changed = cur.rowcount > 0 or self.changed
        return cur.rowcount > 0

    # --- subscriptions

    def subscribed(self, conversation_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM subscriptions WHERE conversation_id = ?", conversation_id)
            is not None
        )

    def set_subscribed(self, conversation_id: str, on: bool) -> None:
        self.changed = True
        if on:
            self.conn.execute(
                "INSERT OR IGNORE INTO subscriptions (conversation_id, since) VALUES (?, ?)",
                (conversation_id, self.now),
            )
        else:
            self.conn.execute(
                "DELETE FROM subscriptions WHERE conversation_id = ?", (conversation_id,)
            )

    # --- pairing

    def pairings(self, channel: str | None, user_id: str | None) -> list[Pairing]:
        where, params = [], []
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        sql = f"SELECT {_PAIRING} FROM pairings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [Pairing(*r) for r in self.conn.execute(sql + " ORDER BY created_at, code", params)]

    def pairing(self, code: str) -> Pairing | None:
        row = self._one(f"SELECT {_PAIRING} FROM pairings WHERE code = ?", code)
        return None if row is None else Pairing(*row)

    def save_pairing(self, pairing: Pairing) -> None:
        self.changed = True
        self.conn.execute(
            f"INSERT OR REPLACE INTO pairings ({_PAIRING}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pairing.code,
                pairing.channel,
                pairing.user_id,
                pairing.name,
                pairing.status,
                pairing.created_at,
                pairing.expires_at,
                pairing.decided_by,
                pairing.decided_at,
            ),
        )

    def delete_pairings(self, channel: str, user_id: str) -> int:
        cur = self.conn.execute(
            "DELETE FROM pairings WHERE channel = ? AND user_id = ?", (channel, user_id)
        )
        self.changed = cur.rowcount > 0 or self.changed
        return cur.rowcount


_PAIRING = "code, channel, user_id, name, status, created_at, expires_at, decided_by, decided_at"

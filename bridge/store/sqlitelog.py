"""The embedded store: conversations and their logs in one SQLite file,
``sessions.db`` in the data folder (the first release's file, upgraded in
place; see :mod:`bridge.store.sqlite_schema`).

Why SQLite, and how the file is set up, is as in the first release
(:mod:`bridge.store_sqlite`): WAL, so readers and the writer never block each
other; ``synchronous=NORMAL``, so a commit needs no fsync of its own and a
killed process loses nothing it committed; ``BEGIN IMMEDIATE`` for every
write, so two processes writing take turns under the busy timeout instead of
failing; foreign keys on, so deleting a conversation deletes its log, active
messages and delivery positions in one statement.

Threads: sqlite3 calls block, so every call runs in a worker thread through
``anyio.to_thread.run_sync`` with a ``CapacityLimiter(1)`` per store, on one
connection. One call at a time comes near the connection, in arrival order; a
write that has started always finishes or rolls back, even when its task is
cancelled, because the task waits for the worker. An admission rule passed to
``add_message`` runs in that worker thread, inside the transaction: it must
only look at what it is given.

:meth:`SQLiteLogStore.version` is ``PRAGMA data_version`` (which moves when
another connection commits) combined with a count of this store's own writes
(which ``data_version`` does not see), so it changes on every commit.

Every sqlite3 error, and the OSError of making the folder, becomes a
:class:`~bridge.store.errors.StoreError` naming the file and saying what to do.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from bridge.store_sqlite import (
    STORE_FILENAME,
    _converted,
    _ensure_folder,
    _transaction,
    default_data_dir,
)

from . import rules
from .errors import StoreError
from .procedures import TransactionStore
from .records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    TURN_COMPLETED,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    Conversation,
    ConversationKey,
    Event,
    Route,
)
from .sqlite_schema import connect, json_text, open_read_only
from .transaction import Transaction

__all__ = ["SQLiteLogStore", "open_log_store"]

T = TypeVar("T")

_CONV = (
    "id, channel, thread_key, profile_ref, cwd, profile_name, session_id, session_name, "
    "turn_count, last_event, first_event, consumed, running_turn, reset_epoch, "
    "lease_owner, lease_expires, created_at, updated_at, last_status"
)
_EVENT = "conversation_id, id, type, turn, at, data"
#: Repeated word for word from the partial index ``events_of_turns``, so
#: SQLite uses it (see sqlite_schema).
_OF_TURNS = "type IN ('turn.queued', 'turn.started', 'turn.completed')"


def open_log_store(
    data_dir: str | Path | None = None,
    *,
    read_only: bool = False,
    keep_turns: int = rules.DEFAULT_KEEP_TURNS,
    clock: Callable[[], float] = time.time,
) -> SQLiteLogStore:
    """The store in ``data_dir`` (by default ``$AGENTPROC_DATA_DIR``, else the
    platform's user data folder): ``sessions.db``, created when missing
    unless ``read_only``."""
    folder = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return SQLiteLogStore(
        folder / STORE_FILENAME, read_only=read_only, keep_turns=keep_turns, clock=clock
    )


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


class _SQLiteTransaction(Transaction):
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

    def idle(self, older_than: float) -> list[Conversation]:
        return self._conversations(
            "FROM conversations WHERE updated_at < ? AND running_turn = 0", older_than
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

    def active(self, conversation_id: str, user: str) -> tuple[int, int, int, int]:
        row = self._one(
            "SELECT coalesce(sum(conversation_id = ?1 AND running = 0), 0), "
            "coalesce(sum(conversation_id = ?1 AND running = 0 AND from_user = ?2), 0), "
            "coalesce(sum(from_user = ?2), 0), count(*) FROM active_messages",
            conversation_id,
            user,
        )
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def answered(self, conversation_id: str, request_id: int) -> bool:
        rows = self.conn.execute(
            "SELECT data FROM events WHERE conversation_id = ? AND id > ? AND type = ?",
            (conversation_id, request_id, TURN_PERMISSION_ANSWERED),
        )
        return any(json.loads(data).get("request") == request_id for (data,) in rows)

    def queued(self, conversation_id: str, turn: int) -> Event | None:
        found = self._events(
            f"FROM events WHERE conversation_id = ? AND {_OF_TURNS} AND type = ? AND turn = ?",
            conversation_id,
            TURN_QUEUED,
            turn,
        )
        return found[0] if found else None

    def turns(self, conversation_id: str, first_turn: int) -> list[Event]:
        return self._events(
            f"FROM events WHERE conversation_id = ? AND {_OF_TURNS} AND turn >= ? ORDER BY id",
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
        marks = ", ".join("?" * len(_row(conv)))
        self.conn.execute(f"INSERT INTO conversations ({_CONV}) VALUES ({marks})", _row(conv))

    def save(self, conv: Conversation, events: Sequence[Event] = ()) -> None:
        self.changed = True
        columns = _CONV.split(", ")[1:]
        assignments = ", ".join(f"{c} = ?" for c in columns)
        self.conn.execute(
            f"UPDATE conversations SET {assignments} WHERE id = ?", (*_row(conv)[1:], conv.id)
        )
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
                    (e.type == MESSAGE and e.data.get("platform_id")) or None,
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


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: every statement in it sees the same commit."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # nothing was written: nothing to lose
                conn.execute("COMMIT")


class SQLiteLogStore(TransactionStore):
    """The conversation log in one SQLite file, shared safely by every bridge
    and CLI command on the machine that opens it.

    Opening creates the file and its private folder (0700) when missing and
    brings the schema up to date; with ``read_only`` it creates and changes
    nothing (see :mod:`bridge.store.sqlite_schema`) and every write raises
    :class:`~bridge.store.errors.ReadOnlyStore`. It raises
    :class:`~bridge.store.errors.StoreError` for a file that is not a
    database or belongs to another program, and
    :class:`~bridge.store.errors.SchemaTooNew` for one from a newer
    agentproc. Opening blocks for a moment, so do it once at start-up.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        keep_turns: int = rules.DEFAULT_KEEP_TURNS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.keep_turns = rules.check_keep_turns(keep_turns)
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(1)
        self._lock = threading.Lock()
        self._writes = 0
        if not read_only:
            _ensure_folder(self.path.parent)
        with _converted(self.path):
            opened = open_read_only(self.path) if read_only else connect(self.path)
        self._conn: sqlite3.Connection | None = opened

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self.read_only else "open"
        return f"<SQLiteLogStore {str(self.path)!r} {state}>"

    def _where(self) -> str:
        return str(self.path)

    async def _run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        return await anyio.to_thread.run_sync(self._call, work, write, limiter=self._limiter)

    def _call(self, work: Callable[[Transaction], T], write: bool) -> T:
        with self._lock:
            conn = self._connection()
            with _converted(self.path), _transaction(conn) if write else _snapshot(conn):
                # The clock is read under the write lock, so times follow the
                # order in which writers from several processes commit.
                tx = _SQLiteTransaction(conn, self._clock())
                result = work(tx)
            if tx.changed:
                self._writes += 1
            return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(
                f"the session store {self.path} is closed",
                hint="this is a bug in the code using the store",
            )
        return self._conn

    async def version(self) -> int:
        def work() -> int:
            with self._lock, _converted(self.path):
                (data_version,) = self._connection().execute("PRAGMA data_version").fetchone()
                return (int(data_version) << 32) + self._writes % (1 << 32)

        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    async def close(self) -> None:
        """Close the file. Waits for a call in progress; closing twice is fine."""
        await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with _converted(self.path):
                conn.close()

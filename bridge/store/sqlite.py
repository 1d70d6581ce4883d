"""The embedded session store: one SQLite file in the user's data folder.

Why SQLite: a bridge must remember, across restarts, which agent session each
chat belongs to, and a ``sessions list`` in another terminal (or a second
bridge) must be able to read and write the same records while it runs. SQLite
gives both in one file with no server, and its transactions give the crash
guarantee the :class:`~bridge.store.sessions.SessionStore` interface promises: a
write lands whole or not at all.

How the file is set up, and why:

- **WAL journal.** Readers never block the writer and the writer never blocks
  readers, so listing sessions next to a busy bridge costs the bridge nothing.
- **synchronous=NORMAL.** In WAL mode a commit then needs no fsync of its own
  (the log is synced at checkpoints). A killed process loses nothing it
  committed; a power cut or kernel crash can lose the last few commits but
  never leaves half of one. For a chat's session map that trade is right: a
  lost turn record means, at worst, that the next turn starts a fresh session.
- **BEGIN IMMEDIATE for every multi-statement write.** It takes the write lock
  at the start of the transaction, where the busy timeout applies. A deferred
  transaction that reads first and writes later can fail at once with
  "database is locked" when another process committed in between, busy timeout
  or not; immediate transactions never hit that case.
- **busy timeout** (:data:`BUSY_TIMEOUT_SECS`). Two writers take turns instead
  of failing.
- **foreign keys on**, so deleting a conversation deletes its transcript in
  the same statement.

Threads: sqlite3 calls block, so every call runs in a worker thread through
``anyio.to_thread.run_sync`` with a ``CapacityLimiter(1)`` per store, on one
connection opened with ``check_same_thread=False``. The limiter lets one call
at a time near the connection, in arrival order, without a thread of our own to
start, feed and stop, and it works the same under asyncio and trio and across
successive ``anyio.run`` calls (a CLI command is one). The call is not
abandoned when its task is cancelled: the task waits for the worker, so a
write that has started always finishes or rolls back before cancellation
arrives. A plain lock inside the worker guards the connection as well, so
:meth:`SQLiteStore.close` can never pull it from under a running statement.

Schema versions: :data:`MIGRATIONS` lists every schema change since the first
release, in order. Opening a file applies the steps it has not seen, each in
its own transaction, and records each in ``schema_version``. A file written by
a newer agentproc is refused rather than guessed at.

Every sqlite3 error (and the OSError of creating the folder) is turned into a
:class:`~bridge.store.errors.StoreError` that names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import platformdirs
from pydantic import BaseModel

from .errors import StoreError
from .sessions import (
    DEFAULT_TRANSCRIPT_LIMIT,
    Conversation,
    ConversationKey,
    SessionStore,
    TranscriptEntry,
    check_state,
    check_transcript_limit,
    session_after_turn,
)

__all__ = [
    "BUSY_TIMEOUT_SECS",
    "DATA_DIR_ENV",
    "MIGRATIONS",
    "STORE_FILENAME",
    "Migration",
    "SQLiteStore",
    "default_data_dir",
    "open_store",
]

T = TypeVar("T")

#: The environment variable that moves the data folder (tests, containers, a
#: second bridge with its own sessions).
DATA_DIR_ENV = "AGENTPROC_DATA_DIR"

#: The store's file name inside the data folder.
STORE_FILENAME = "sessions.db"

#: How long a statement waits for another connection's lock before it fails.
#: A write here holds the lock for well under a millisecond, so only a stuck
#: process or a checkpoint on a very slow disk comes near it. Python's default
#: is 5 s; 10 s rides out a slow network disk too. The wait happens in a worker
#: thread, never on the event loop.
BUSY_TIMEOUT_SECS = 10.0


# --- schema ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: applied once, in one transaction, then recorded.

    Never edit a step that has been released: files in the wild were built by
    it. Add a step with the next version instead.
    """

    version: int
    summary: str
    statements: tuple[str, ...]


#: Every schema change since the first release, oldest first; versions count
#: up from 1 without gaps.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        (
            """
            CREATE TABLE schema_version (
                version    INTEGER PRIMARY KEY,
                applied_at REAL NOT NULL
            )
            """,
            # The conversation's identity is (channel, key, profile); the integer
            # id is only the handle transcript rows point at, so they do not
            # repeat three strings each.
            """
            CREATE TABLE conversations (
                id           INTEGER PRIMARY KEY,
                channel      TEXT NOT NULL,
                key          TEXT NOT NULL,
                profile      TEXT NOT NULL,
                session_id   TEXT NOT NULL DEFAULT '',
                session_name TEXT NOT NULL DEFAULT 'default',
                turn_count   INTEGER NOT NULL DEFAULT 0,
                created_at   REAL NOT NULL,
                updated_at   REAL NOT NULL,
                last_status  TEXT NOT NULL DEFAULT '',
                state        TEXT,
                UNIQUE (channel, key, profile)
            )
            """,
            "CREATE INDEX conversations_by_update ON conversations (updated_at)",
            # Row ids grow with every insert, so they give the order of turns
            # even when a caller numbers turns its own way.
            """
            CREATE TABLE transcript (
                id              INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL
                                REFERENCES conversations (id) ON DELETE CASCADE,
                turn            INTEGER NOT NULL,
                message         TEXT NOT NULL,
                attachments     TEXT NOT NULL DEFAULT '[]',
                reply           TEXT NOT NULL DEFAULT '',
                error           TEXT,
                session_id      TEXT NOT NULL DEFAULT '',
                exit_code       INTEGER NOT NULL DEFAULT 0,
                from_user       TEXT NOT NULL DEFAULT '',
                started_at      REAL NOT NULL DEFAULT 0,
                duration_ms     INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id)",
        ),
    ),
)


# --- locations ------------------------------------------------------------------------


def default_data_dir() -> Path:
    """Where the bridge keeps its data: ``$AGENTPROC_DATA_DIR`` when set,
    else the platform's user data folder (``~/.local/share/agentproc`` on
    Linux, ``~/Library/Application Support/agentproc`` on macOS)."""
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("agentproc", appauthor=False))


def open_store(
    data_dir: str | Path | None = None,
    *,
    transcript_limit: int = DEFAULT_TRANSCRIPT_LIMIT,
    clock: Callable[[], float] = time.time,
) -> SQLiteStore:
    """Open (creating it if needed) ``sessions.db`` in ``data_dir``, by default
    :func:`default_data_dir`. The folder is created private to the user."""
    folder = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return SQLiteStore(folder / STORE_FILENAME, transcript_limit=transcript_limit, clock=clock)


# --- errors ----------------------------------------------------------------------------


def _store_error(path: Path, exc: BaseException) -> StoreError:
    """A sqlite3 (or encoding) error as a message about the file, with what to do."""
    if isinstance(exc, UnicodeEncodeError):
        return StoreError(
            f"cannot store text in {path}: it is not valid Unicode ({exc.reason})",
            hint="this is a bug in the channel that produced the text; please report it",
        )
    if isinstance(exc, json.JSONDecodeError):
        return StoreError(
            f"the session store {path} holds a damaged value: {exc}",
            hint="delete that conversation, or move the file aside to start afresh",
        )
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF  # the primary result code
    detail = str(exc)
    aside = f"move it aside (a new store is then created) or set {DATA_DIR_ENV} to another folder"
    if code == sqlite3.SQLITE_NOTADB or "not a database" in detail:
        return StoreError(f"{path} is not a SQLite database", hint=aside)
    if code == sqlite3.SQLITE_CORRUPT:
        return StoreError(f"the session store {path} is damaged ({detail})", hint=aside)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(
            f"the session store {path} stayed locked for more than {BUSY_TIMEOUT_SECS:g} s",
            hint="another process holds it; look for a stuck agentproc and stop it",
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreError(
            f"cannot open the session store {path}",
            hint=f"check that its folder exists and is writable, or set {DATA_DIR_ENV}",
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return StoreError(
            f"cannot write to the session store {path} ({detail})",
            hint=f"check the permissions of the file and its folder, or set {DATA_DIR_ENV}",
        )
    if code == sqlite3.SQLITE_FULL:
        return StoreError(f"the disk holding {path} is full", hint="free some space")
    return StoreError(f"session store {path}: {detail}")


@contextmanager
def _converted(path: Path) -> Iterator[None]:
    """The boundary: nothing from sqlite3 leaves the store unconverted."""
    try:
        yield
    except (sqlite3.Error, UnicodeEncodeError, json.JSONDecodeError) as exc:
        raise _store_error(path, exc) from exc
    except OverflowError as exc:  # an int wider than SQLite's 64 bits
        raise StoreError(f"cannot store a value in {path}: {exc}") from exc


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; anything raised rolls it back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # keep the first error, not the rollback's
                conn.execute("ROLLBACK")
        raise


def _clean(text: str) -> str:
    """Text that SQLite can hold. JSON lets a string carry a lone surrogate
    (``"\\ud800"``), which UTF-8 cannot encode; the UTF-16 round trip turns each
    lone one into U+FFFD and joins a split pair back into its character."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# --- opening and migrating ----------------------------------------------------------------


def _ensure_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the data folder {folder}: {exc.strerror or exc}",
            hint=f"set {DATA_DIR_ENV} to a folder you can write to",
        ) from exc


def _schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; 0 for a file agentproc has not set up."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection, path: Path, migrations: tuple[Migration, ...]) -> None:
    known = migrations[-1].version if migrations else 0
    current = _schema_version(conn)
    if current > known:
        raise StoreError(
            f"the session store {path} was written by a newer agentproc "
            f"(schema version {current}; this one knows up to {known})",
            hint="upgrade agentproc, or point it at another folder with " + DATA_DIR_ENV,
        )
    for step in migrations:
        if step.version <= current:
            continue
        with _transaction(conn):
            # Read again under the write lock: another process may have run
            # this step between our first look and now.
            current = _schema_version(conn)
            if step.version <= current:
                continue
            if current == 0:
                _refuse_foreign(conn, path)
            try:
                for sql in step.statements:
                    conn.execute(sql)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot upgrade the session store {path} to schema version "
                    f"{step.version} ({step.summary}): {exc}",
                    hint=f"the file was left at version {current}; please report this",
                ) from exc
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (step.version, time.time()),
            )
            current = step.version


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """A SQLite file that has tables but no schema version belongs to
    someone else: leave it alone rather than add our tables to it."""
    other = conn.execute(
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' LIMIT 1"
    ).fetchone()
    if other is not None:
        raise StoreError(
            f"{path} is a SQLite database, but not an agentproc session store",
            hint=f"use another file: set {DATA_DIR_ENV} to another folder",
        )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_SECS,  # sets SQLite's busy timeout
        isolation_level=None,  # we write BEGIN and COMMIT ourselves
        check_same_thread=False,  # worker threads take turns; see the module docstring
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # Look before writing anything (switching to WAL writes the header):
        # a file that is not a database fails this first read, and another
        # program's database is refused, both untouched.
        if _schema_version(conn) == 0:
            _refuse_foreign(conn, path)
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path, MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


# --- the store ----------------------------------------------------------------------------

_CONV_COLUMNS = "session_id, session_name, turn_count, created_at, updated_at, last_status"
_WHERE_KEY = "channel = ? AND key = ? AND profile = ?"
_ENTRY_COLUMNS = (
    "turn, message, attachments, reply, error, session_id, exit_code, from_user, "
    "started_at, duration_ms"
)


def _key_params(key: ConversationKey) -> tuple[str, str, str]:
    return (key.channel, key.key, key.profile)


def _conversation(key: ConversationKey, row: tuple[Any, ...]) -> Conversation:
    return Conversation(key, *row)


def _entry(row: tuple[Any, ...]) -> TranscriptEntry:
    turn, message, attachments, reply, error, session_id, exit_code, user, started, ms = row
    return TranscriptEntry(
        turn=turn,
        message=message,
        attachments=json.loads(attachments),
        reply=reply,
        error=error,
        session_id=session_id,
        exit_code=exit_code,
        from_user=user,
        started_at=started,
        duration_ms=ms,
    )


class SQLiteStore(SessionStore):
    """The embedded default store: one SQLite file, shared safely by every
    bridge and CLI command on the machine that opens it.

    Opening creates the file (and its folder) when missing and brings its
    schema up to date; it raises :class:`StoreError` for a file that is not a
    database, belongs to another program, or was written by a newer agentproc.
    Opening blocks for a moment, so do it once at start-up (or in a worker
    thread); everything after that runs off the event loop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        transcript_limit: int = DEFAULT_TRANSCRIPT_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.transcript_limit = check_transcript_limit(transcript_limit)
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(1)
        self._lock = threading.Lock()
        _ensure_folder(self.path.parent)
        with _converted(self.path):
            self._conn: sqlite3.Connection | None = _connect(self.path)

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<SQLiteStore {str(self.path)!r} {state}>"

    # -- plumbing

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._call, work, limiter=self._limiter)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                raise StoreError(
                    f"the session store {self.path} is closed",
                    hint="this is a bug in the code using the store",
                )
            with _converted(self.path):
                return work(self._conn)

    # -- the interface

    async def get(self, key: ConversationKey) -> Conversation | None:
        def work(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE {_WHERE_KEY}",
                _key_params(key),
            ).fetchone()
            return None if row is None else _conversation(key, row)

        return await self._run(work)

    async def record_turn(
        self,
        key: ConversationKey,
        entry: TranscriptEntry,
        *,
        captured_session: str | None,
        status: str,
        session_name: str = "default",
    ) -> Conversation:
        def work(conn: sqlite3.Connection) -> Conversation:
            try:
                return self._record(conn, key, entry, captured_session, status, session_name)
            except UnicodeEncodeError:
                # Rolled back. Keep the turn, with the unencodable characters
                # replaced, rather than lose it; a bad key still fails.
                cleaned = replace(
                    entry,
                    message=_clean(entry.message),
                    reply=_clean(entry.reply),
                    error=None if entry.error is None else _clean(entry.error),
                    session_id=_clean(entry.session_id),
                    from_user=_clean(entry.from_user),
                )
                captured = None if captured_session is None else _clean(captured_session)
                return self._record(
                    conn, key, cleaned, captured, _clean(status), _clean(session_name)
                )

        return await self._run(work)

    def _record(
        self,
        conn: sqlite3.Connection,
        key: ConversationKey,
        entry: TranscriptEntry,
        captured_session: str | None,
        status: str,
        session_name: str,
    ) -> Conversation:
        with _transaction(conn):
            # Read the clock under the write lock, so updated_at follows the
            # order in which writers from several processes commit.
            now = self._clock()
            row = conn.execute(
                f"SELECT id, session_id, turn_count, created_at FROM conversations "
                f"WHERE {_WHERE_KEY}",
                _key_params(key),
            ).fetchone()
            if row is None:
                conv = Conversation(
                    key,
                    session_id=session_after_turn("", captured_session),
                    session_name=session_name,
                    turn_count=1,
                    created_at=now,
                    updated_at=now,
                    last_status=status,
                )
                cur = conn.execute(
                    f"INSERT INTO conversations (channel, key, profile, {_CONV_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_key_params(key), *_conv_values(conv)),
                )
                conv_id = cur.lastrowid
            else:
                conv_id, previous, count, created_at = row
                conv = Conversation(
                    key,
                    session_id=session_after_turn(previous, captured_session),
                    session_name=session_name,
                    turn_count=count + 1,
                    created_at=created_at,
                    updated_at=now,
                    last_status=status,
                )
                conn.execute(
                    "UPDATE conversations SET session_id = ?, session_name = ?, "
                    "turn_count = ?, updated_at = ?, last_status = ? WHERE id = ?",
                    (
                        conv.session_id,
                        session_name,
                        conv.turn_count,
                        now,
                        status,
                        conv_id,
                    ),
                )
            conn.execute(
                f"INSERT INTO transcript (conversation_id, {_ENTRY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conv_id,
                    entry.turn,
                    entry.message,
                    json.dumps(entry.attachments),  # ASCII: no encoding surprises
                    entry.reply,
                    entry.error,
                    entry.session_id,
                    entry.exit_code,
                    entry.from_user,
                    entry.started_at,
                    entry.duration_ms,
                ),
            )
            # Keep the newest `transcript_limit` rows: drop every row at or
            # below the first one past the limit (one index lookup).
            conn.execute(
                "DELETE FROM transcript WHERE conversation_id = ? AND id <= ("
                "SELECT id FROM transcript WHERE conversation_id = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (conv_id, conv_id, self.transcript_limit),
            )
        return conv

    async def reset(self, key: ConversationKey) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE conversations SET session_id = '', updated_at = ? WHERE {_WHERE_KEY}",
                (self._clock(), *_key_params(key)),
            )

        await self._run(work)

    async def delete(self, key: ConversationKey) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(f"DELETE FROM conversations WHERE {_WHERE_KEY}", _key_params(key))
            return cur.rowcount > 0

        return await self._run(work)

    async def conversations(
        self, *, channel: str | None = None, profile: str | None = None
    ) -> list[Conversation]:
        where, params = [], []
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        if profile is not None:
            where.append("profile = ?")
            params.append(profile)
        sql = f"SELECT channel, key, profile, {_CONV_COLUMNS} FROM conversations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, channel, key, profile"

        def work(conn: sqlite3.Connection) -> list[Conversation]:
            return [
                _conversation(ConversationKey(*row[:3]), row[3:])
                for row in conn.execute(sql, params)
            ]

        return await self._run(work)

    async def transcript(
        self, key: ConversationKey, limit: int | None = None
    ) -> list[TranscriptEntry]:
        if limit is not None and limit <= 0:
            return []

        def work(conn: sqlite3.Connection) -> list[TranscriptEntry]:
            rows = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM transcript WHERE conversation_id = ("
                f"SELECT id FROM conversations WHERE {_WHERE_KEY}) "
                "ORDER BY id DESC LIMIT ?",
                (*_key_params(key), -1 if limit is None else limit),
            ).fetchall()
            return [_entry(row) for row in reversed(rows)]

        return await self._run(work)

    async def get_state(self, key: ConversationKey) -> Any:
        def work(conn: sqlite3.Connection) -> Any:
            row = conn.execute(
                f"SELECT state FROM conversations WHERE {_WHERE_KEY}", _key_params(key)
            ).fetchone()
            return None if row is None or row[0] is None else json.loads(row[0])

        return await self._run(work)

    async def set_state(
        self, key: ConversationKey, value: Any, model: type[BaseModel] | None = None
    ) -> None:
        # Validated here, before the store is touched: a refused value writes nothing.
        text = json.dumps(check_state(value, model), allow_nan=False)

        def work(conn: sqlite3.Connection) -> None:
            now = self._clock()
            conn.execute(
                "INSERT INTO conversations (channel, key, profile, created_at, updated_at, "
                "state) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, key, profile) "
                "DO UPDATE SET state = excluded.state",
                (*_key_params(key), now, now, text),
            )

        await self._run(work)

    async def prune(self, older_than: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM conversations WHERE updated_at < ?", (older_than,))
            return cur.rowcount

        return await self._run(work)

    async def close(self) -> None:
        """Close the file. Waits for a call in progress; closing twice is fine."""
        await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with _converted(self.path):
                conn.close()


def _conv_values(conv: Conversation) -> tuple[Any, ...]:
    """A conversation's columns, in the order of ``_CONV_COLUMNS``."""
    return (
        conv.session_id,
        conv.session_name,
        conv.turn_count,
        conv.created_at,
        conv.updated_at,
        conv.last_status,
    )

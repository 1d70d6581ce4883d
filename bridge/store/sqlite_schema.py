"""The SQLite store's schema, and how a file is brought up to date.

Schema versions: :data:`MIGRATIONS` lists every schema change since the first
release, oldest first. Opening a file applies the steps it has not seen, each
in its own transaction, and records each in ``schema_version``. Step 1 is the
first release's schema, byte for byte (files in the wild were built by it).
Step 2 replaces its session map and transcript with the conversation log and
moves the old data over in the same transaction, so a file is upgraded in
place, whole or not at all. Step 3 adds the pairings of chat channels; step 4
the threads bot handlers subscribed to. A file from a newer agentproc is
refused rather than guessed at, and so is a file that is not ours; both are
left untouched.

The helpers that the first release's store already had (its schema check,
transactions, refusing a foreign file) are imported from it, not copied.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SchemaTooNew, StoreError
from .records import (
    MESSAGE,
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    TURN_COMPLETED,
    TURN_QUEUED,
    TURN_STARTED,
)
from .sqlite_files import (
    DATA_DIR_ENV,
    refuse_foreign,
    schema_version,
    transaction,
)

__all__ = [
    "CURRENT",
    "MIGRATIONS",
    "Migration",
    "carried_over_id",
    "json_text",
    "migrate",
    "refuse_newer",
]

#: The exit code of a cancelled turn in the first release's transcript.
_EXIT_CANCELLED = 130


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: applied once, in one transaction, then recorded.

    ``statements`` run first, then ``move`` (for a step that carries data
    over in Python). Never edit a step that has been released: files in the
    wild were built by it. Add a step with the next version instead.
    """

    version: int
    summary: str
    statements: tuple[str, ...]
    move: Callable[[sqlite3.Connection], None] | None = None


def json_text(value: Any) -> str:
    """JSON as the store keeps it: UTF-8 text, with any lone surrogate (which
    UTF-8 cannot hold, but a JSON string may carry) written as an escape."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False)
    return text


def carried_over_id(channel: str, key: str, profile: str) -> str:
    """The id a conversation of the first release gets: made from its old
    identity, so every reader of a not-yet-upgraded file (which migrates a
    copy in memory) and the upgrade itself give it the same id."""
    digest = hashlib.sha256(json.dumps([channel, key, profile]).encode()).hexdigest()
    return "c" + digest[:20]


def _status(error: str | None, exit_code: int) -> str:
    if exit_code == _EXIT_CANCELLED:
        return STATUS_CANCELLED
    return STATUS_ERROR if error is not None or exit_code != 0 else STATUS_OK


def _move_v1(conn: sqlite3.Connection) -> None:
    """Step 2's data: each old conversation becomes one with a route named by
    its profile (``cwd`` unknown, so ``open()`` adopts it), and each old
    transcript row becomes the four events that turn writes now."""
    old = conn.execute(
        "SELECT id, channel, key, profile, session_id, session_name, turn_count, "
        "created_at, updated_at, last_status, state FROM conversations_v1 ORDER BY id"
    ).fetchall()
    for old_id, channel, key, profile, session, name, count, created, updated, status, state in old:
        new_id = carried_over_id(channel, key, profile)
        events: list[tuple[Any, ...]] = []
        last = consumed = top_turn = 0
        rows = conn.execute(
            "SELECT turn, message, attachments, reply, error, session_id, exit_code, "
            "from_user, started_at, duration_ms FROM transcript_v1 "
            "WHERE conversation_id = ? ORDER BY id",
            (old_id,),
        )
        for turn, text, attachments, reply, error, turn_session, code, user, at, ms in rows:
            files = json.loads(attachments)
            consumed = last + 1
            outcome = {
                "status": _status(error, code),
                "reply": reply,
                "session_id": turn_session,
                "exit_code": code,
                "error": error,
                "hint": "",
                "warnings": [],
                "timed_out": False,
                "duration_ms": ms,
            }
            queued = {
                "messages": [consumed],
                "text": text,
                "attachments": files,
                "from_users": [user] if user else [],
            }
            message = {"text": text, "attachments": files, "from_user": user, "platform_id": ""}
            for type_, event_turn, data in (
                (MESSAGE, 0, message),
                (TURN_QUEUED, turn, queued),
                (TURN_STARTED, turn, {"session_id": ""}),
                (TURN_COMPLETED, turn, outcome),
            ):
                last += 1
                events.append((new_id, last, type_, event_turn, at, json_text(data)))
            top_turn = max(top_turn, turn)
        conn.execute(
            "INSERT INTO conversations (id, channel, thread_key, profile_ref, cwd, profile_name, "
            "session_id, session_name, turn_count, last_event, consumed, created_at, "
            "updated_at, last_status, state) VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new_id,
                channel,
                key,
                profile,
                profile,
                session,
                name,
                max(count, top_turn),  # never hand out a turn number twice
                last,
                consumed,
                created,
                updated,
                status,
                state,
            ),
        )
        conn.executemany(
            "INSERT INTO events (conversation_id, id, type, turn, at, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
    conn.execute("DROP TABLE transcript_v1")
    conn.execute("DROP TABLE conversations_v1")


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
    Migration(
        2,
        "the conversation log: conversations with routes, events, active messages, deliveries",
        (
            # The old tables step aside; _move_v1 reads them and drops them.
            "ALTER TABLE conversations RENAME TO conversations_v1",
            "ALTER TABLE transcript RENAME TO transcript_v1",
            # A conversation's identity is (channel, thread key, route), the
            # route being the resolved profile and the folder it runs in; the
            # opaque id is what APIs and the log use.
            """
            CREATE TABLE conversations (
                id            TEXT PRIMARY KEY,
                channel       TEXT NOT NULL,
                thread_key    TEXT NOT NULL,
                profile_ref   TEXT NOT NULL,
                cwd           TEXT NOT NULL,
                profile_name  TEXT NOT NULL DEFAULT '',
                session_id    TEXT NOT NULL DEFAULT '',
                session_name  TEXT NOT NULL DEFAULT 'default',
                turn_count    INTEGER NOT NULL DEFAULT 0,
                last_event    INTEGER NOT NULL DEFAULT 0,
                first_event   INTEGER NOT NULL DEFAULT 1,
                consumed      INTEGER NOT NULL DEFAULT 0,
                running_turn  INTEGER NOT NULL DEFAULT 0,
                reset_epoch   INTEGER NOT NULL DEFAULT 0,
                lease_owner   TEXT NOT NULL DEFAULT '',
                lease_expires REAL NOT NULL DEFAULT 0,
                created_at    REAL NOT NULL,
                updated_at    REAL NOT NULL,
                last_status   TEXT NOT NULL DEFAULT '',
                state         TEXT,
                UNIQUE (channel, thread_key, profile_ref, cwd)
            )
            """,
            "CREATE INDEX conversations_by_activity ON conversations (updated_at)",
            # Ids are dense per conversation, so (conversation_id, id) is the
            # key and a range of it is a read from a position. `data` is the
            # event's JSON; `platform_id` is set only on messages that have one.
            """
            CREATE TABLE events (
                conversation_id TEXT NOT NULL
                                REFERENCES conversations (id) ON DELETE CASCADE,
                id              INTEGER NOT NULL,
                type            TEXT NOT NULL,
                turn            INTEGER NOT NULL,
                at              REAL NOT NULL,
                data            TEXT NOT NULL,
                platform_id     TEXT,
                PRIMARY KEY (conversation_id, id)
            )
            """,
            # A redelivered message is found (and refused twice) by its platform id.
            """
            CREATE UNIQUE INDEX events_by_platform_id ON events (conversation_id, platform_id)
            WHERE platform_id IS NOT NULL
            """,
            # Transcripts and retention look up turns by number. Partial, so
            # partial text and messages (most of the log) cost it nothing; a
            # query uses it only when it repeats this WHERE clause word for word.
            """
            CREATE INDEX events_of_turns ON events (conversation_id, turn)
            WHERE type IN ('turn.queued', 'turn.started', 'turn.completed')
            """,
            # The messages pending or in a running turn, kept in step with the
            # events, so the counts an admission rule needs (per conversation,
            # per user, in all) are a scan of this small table rather than of
            # every log. No index on from_user: the total needs the scan anyway.
            """
            CREATE TABLE active_messages (
                conversation_id TEXT NOT NULL
                                REFERENCES conversations (id) ON DELETE CASCADE,
                message         INTEGER NOT NULL,
                from_user       TEXT NOT NULL,
                running         INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (conversation_id, message)
            )
            """,
            # Each channel's acknowledged position in each conversation.
            # Keyed by conversation first, so retention finds a conversation's
            # lowest position with the key alone.
            """
            CREATE TABLE deliveries (
                conversation_id TEXT NOT NULL
                                REFERENCES conversations (id) ON DELETE CASCADE,
                channel         TEXT NOT NULL,
                position        INTEGER NOT NULL,
                updated_at      REAL NOT NULL,
                PRIMARY KEY (conversation_id, channel)
            )
            """,
        ),
        _move_v1,
    ),
    Migration(
        3,
        "pairings: people on chat channels an admin let in",
        (
            # One row per code; a person's rows are found by (channel, user).
            """
            CREATE TABLE pairings (
                code        TEXT PRIMARY KEY,
                channel     TEXT NOT NULL,
                user_id     TEXT NOT NULL,
                name        TEXT NOT NULL,
                status      TEXT NOT NULL,
                created_at  REAL NOT NULL,
                expires_at  REAL NOT NULL,
                decided_by  TEXT NOT NULL DEFAULT '',
                decided_at  REAL NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX pairings_of_people ON pairings (channel, user_id)",
        ),
    ),
    Migration(
        4,
        "subscriptions: chat threads whose every message a bot's handler reads",
        (
            """
            CREATE TABLE subscriptions (
                conversation_id TEXT PRIMARY KEY
                                REFERENCES conversations (id) ON DELETE CASCADE,
                since           REAL NOT NULL
            )
            """,
        ),
    ),
)

#: The schema version this agentproc writes.
CURRENT = MIGRATIONS[-1].version


# --- bringing a file up to date ------------------------------------------------------------


def refuse_newer(conn: sqlite3.Connection, path: Path | str) -> int:
    """The file's schema version, refusing one this agentproc does not know."""
    current = schema_version(conn)
    if current > CURRENT:
        raise SchemaTooNew(
            f"the session store {path} was written by a newer agentproc "
            f"(schema version {current}; this one knows up to {CURRENT})",
            hint=f"upgrade agentproc, or point it at another folder with {DATA_DIR_ENV}",
        )
    return current


def migrate(conn: sqlite3.Connection, path: Path | str) -> None:
    """Apply the steps the file has not seen, each in its own transaction."""
    current = refuse_newer(conn, path)
    for step in MIGRATIONS:
        if step.version <= current:
            continue
        with transaction(conn):
            # Read again under the write lock: another process may have run
            # this step between our first look and now.
            current = refuse_newer(conn, path)
            if step.version <= current:
                continue
            if current == 0:
                refuse_foreign(conn, Path(path))
            try:
                for sql in step.statements:
                    conn.execute(sql)
                if step.move is not None:
                    step.move(conn)
            except (sqlite3.Error, ValueError) as exc:  # ValueError: a damaged JSON value
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

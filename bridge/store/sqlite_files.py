"""The SQLite file the store lives in: where it is, how errors about it read,
and the transaction every write runs in.

Every sqlite3 error (and the OSError of creating the folder) becomes a
:class:`~bridge.store.errors.StoreError` that names the file and says what to
do; :func:`converted` is that boundary.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import platformdirs

from .errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_SECS",
    "DATA_DIR_ENV",
    "STORE_FILENAME",
    "converted",
    "default_data_dir",
    "ensure_folder",
    "refuse_foreign",
    "schema_version",
    "store_error",
    "transaction",
]

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


def default_data_dir() -> Path:
    """Where the bridge keeps its data: ``$AGENTPROC_DATA_DIR`` when set,
    else the platform's user data folder (``~/.local/share/agentproc`` on
    Linux, ``~/Library/Application Support/agentproc`` on macOS)."""
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("agentproc", appauthor=False))


def store_error(path: Path, exc: BaseException) -> StoreError:
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
def converted(path: Path) -> Iterator[None]:
    """The boundary: nothing from sqlite3 leaves the store unconverted."""
    try:
        yield
    except (sqlite3.Error, UnicodeEncodeError, json.JSONDecodeError) as exc:
        raise store_error(path, exc) from exc
    except OverflowError as exc:  # an int wider than SQLite's 64 bits
        raise StoreError(f"cannot store a value in {path}: {exc}") from exc


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
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


def ensure_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the data folder {folder}: {exc.strerror or exc}",
            hint=f"set {DATA_DIR_ENV} to a folder you can write to",
        ) from exc


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; 0 for a file agentproc has not set up."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """A SQLite file that has tables but no schema version belongs to
    someone else: leave it alone rather than add our tables to it.

    One statement, so it sees one state of the file: another agentproc
    setting up a new store at the same moment commits its tables and its
    ``schema_version`` together, and is never taken for a stranger."""
    other = conn.execute(
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
        "AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_version') LIMIT 1"
    ).fetchone()
    if other is not None:
        raise StoreError(
            f"{path} is a SQLite database, but not an agentproc session store",
            hint=f"use another file: set {DATA_DIR_ENV} to another folder",
        )

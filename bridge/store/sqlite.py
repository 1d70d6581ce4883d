"""The embedded store: conversations and their logs in one SQLite file,
``sessions.db`` in the data folder (the first release's file, upgraded in
place; see :mod:`bridge.store.sqlite_schema`).

Why SQLite, and how the file is set up, is as in the first release
(:mod:`bridge.store.sqlite`): WAL, so readers and the writer never block each
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

:meth:`SQLiteStore.version` is ``PRAGMA data_version`` (which moves when
another connection commits) combined with a count of this store's own writes
(which ``data_version`` does not see), so it changes on every commit.

Reading only (``agentproc sessions list`` on a machine that never ran a
bridge) must not create or change anything:

- a missing file reads as an empty store (an empty database in memory);
- a file at an older schema is copied into memory with SQLite's backup API
  and the copy is migrated, so the file keeps its old schema until a writer
  opens it;
- a file in WAL mode with no ``-wal`` file beside it (no writer has it open)
  is opened ``immutable``: SQLite would otherwise create the ``-wal`` and
  ``-shm`` files, and leave them behind. Such a reader sees the file as it
  was when it looked, which is what a listing needs;
- otherwise the file is opened ``mode=ro``, and sees a running bridge's
  writes as they commit.

Every sqlite3 error, and the OSError of making the folder or reading the
file's header, becomes a :class:`~bridge.store.errors.StoreError` naming the
file and saying what to do.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from . import rules
from .errors import StoreError
from .procedures import TransactionStore
from .sqlite_files import (
    BUSY_TIMEOUT_SECS,
    DATA_DIR_ENV,
    STORE_FILENAME,
    converted,
    default_data_dir,
    ensure_folder,
    refuse_foreign,
    transaction,
)
from .sqlite_rows import SQLiteTransaction
from .sqlite_schema import CURRENT, migrate, refuse_newer
from .transaction import Transaction

__all__ = ["DATA_DIR_ENV", "STORE_FILENAME", "SQLiteStore", "default_data_dir", "open_store"]

T = TypeVar("T")


def open_store(
    data_dir: str | Path | None = None,
    *,
    read_only: bool = False,
    keep_turns: int = rules.DEFAULT_KEEP_TURNS,
    clock: Callable[[], float] = time.time,
) -> SQLiteStore:
    """The store in ``data_dir`` (by default ``$AGENTPROC_DATA_DIR``, else the
    platform's user data folder): ``sessions.db``, created when missing
    unless ``read_only``."""
    folder = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return SQLiteStore(
        folder / STORE_FILENAME, read_only=read_only, keep_turns=keep_turns, clock=clock
    )


# --- opening a file ------------------------------------------------------------------------


def _connection(target: str, *, uri: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_SECS,  # sets SQLite's busy timeout
        isolation_level=None,  # we write BEGIN and COMMIT ourselves
        check_same_thread=False,  # worker threads take turns; see the module docstring
        uri=uri,
    )


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` for reading and writing (creating it when missing) and
    bring it up to date. Raises sqlite3 errors for the caller to convert."""
    conn = _connection(str(path))
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # Look before writing anything (switching to WAL writes the header):
        # a file that is not a database fails this first read, and another
        # program's database, or a newer agentproc's, is refused, all untouched.
        if refuse_newer(conn, path) == 0:
            refuse_foreign(conn, path)
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _in_memory(path: Path, source: sqlite3.Connection | None) -> sqlite3.Connection:
    """A database in memory: a copy of ``source`` (or empty), migrated."""
    conn = _connection(":memory:")
    try:
        if source is not None:
            source.backup(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
        conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _uses_wal(path: Path) -> bool:
    """Whether the file's header says WAL mode (bytes 18 and 19 are 2)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError as exc:
        raise StoreError(
            f"cannot read the session store {path}: {exc.strerror or exc}",
            hint=f"check the file's permissions, or set {DATA_DIR_ENV} to another folder",
        ) from exc
    return len(header) == 20 and header[18] == 2


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open ``path`` for reading without creating or changing any file; see
    the module docstring. Raises sqlite3 errors for the caller to convert."""
    folder = path.parent
    try:
        present = path.exists()
        if not present and folder.exists() and not folder.is_dir():
            raise StoreError(
                f"the data folder {folder} is a file, not a folder",
                hint=f"move it aside, or set {DATA_DIR_ENV} to another folder",
            )
    except PermissionError as exc:
        raise StoreError(
            f"cannot look into the data folder {folder}: {exc.strerror or exc}",
            hint=f"check the folder's permissions, or set {DATA_DIR_ENV} to another folder",
        ) from exc
    if not present:
        return _in_memory(path, None)
    wal = Path(f"{path}-wal")
    mode = "immutable=1" if _uses_wal(path) and not wal.exists() else "mode=ro"
    conn = _connection(f"{path.absolute().as_uri()}?{mode}", uri=True)
    try:
        current = refuse_newer(conn, path)
        if current == 0:
            refuse_foreign(conn, path)
        if current < CURRENT:
            copy = _in_memory(path, conn)
            conn.close()
            return copy
        conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


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


class SQLiteStore(TransactionStore):
    """The conversation log in one SQLite file, shared safely by every bridge
    and CLI command on the machine that opens it.

    Opening creates the file and its private folder (0700) when missing and
    brings the schema up to date; with ``read_only`` it creates and changes
    nothing (see the module docstring) and every write raises
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
            ensure_folder(self.path.parent)
        with converted(self.path):
            opened = open_read_only(self.path) if read_only else connect(self.path)
        self._conn: sqlite3.Connection | None = opened

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self.read_only else "open"
        return f"<SQLiteStore {str(self.path)!r} {state}>"

    def _where(self) -> str:
        return str(self.path)

    async def _run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        return await anyio.to_thread.run_sync(self._call, work, write, limiter=self._limiter)

    def _call(self, work: Callable[[Transaction], T], write: bool) -> T:
        with self._lock:
            conn = self._connection()
            with converted(self.path), transaction(conn) if write else _snapshot(conn):
                # The clock is read under the write lock, so times follow the
                # order in which writers from several processes commit.
                tx = SQLiteTransaction(conn, self._clock())
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
            with self._lock, converted(self.path):
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
            with converted(self.path):
                conn.close()

"""Errors of the store layer, rooted in :class:`StoreError`.

::

    StoreError         the store cannot be opened, read or written (a BridgeError, exit 1)
    ├── StateError     a state value was refused (not JSON, or invalid for its
    │                  model); nothing was written (exit 2)
    ├── LeaseLost      a lease holder's write from a process that no longer
    │                  holds the lease; nothing was written
    ├── NotFound       no such conversation, or no such approval request
    ├── ReadOnlyStore  a write on a store opened for reading only
    └── SchemaTooNew   the store was written by a newer agentproc

Every sqlite3 error (and the OSError of creating the store's folder) becomes a
:class:`StoreError` that names the file and says what to do. Every error
carries a ``hint`` (what to do).
"""

from __future__ import annotations

from bridge.errors import BridgeError

__all__ = ["LeaseLost", "NotFound", "ReadOnlyStore", "SchemaTooNew", "StateError", "StoreError"]


class StoreError(BridgeError):
    """Base of the errors of this package; raised itself when the store
    cannot be opened, read or written."""


class StateError(StoreError):
    """A state value was refused (not JSON, or invalid for its model); nothing was written."""

    exit_code = 2


class LeaseLost(StoreError):
    """A write that needs the conversation's lease, from a process that no
    longer holds it (another bridge took the conversation over). Nothing was
    written; the caller stops running the turn."""


class NotFound(StoreError):
    """No conversation with that id, or no approval request with that id."""


class ReadOnlyStore(StoreError):
    """A write on a store that was opened for reading only."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"the store {where} was opened for reading only",
            hint="open it without read_only to change it",
        )


class SchemaTooNew(StoreError):
    """The store's schema is newer than this agentproc knows: refused rather
    than guessed at."""

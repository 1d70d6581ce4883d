"""Errors of the store.

::

    StoreError                   the store cannot be opened, read or written (a BridgeError)
    └── StateError               a state value was refused (not JSON, or invalid for
                                 its model); nothing was written (exit 2)

Every sqlite3 error (and the OSError of creating the store's folder) becomes a
:class:`StoreError` that names the file and says what to do
(:mod:`bridge.store.sqlite`).
"""

from __future__ import annotations

from bridge.errors import BridgeError


class StoreError(BridgeError):
    """Base of the errors of this package; raised itself when the session
    store cannot be opened, read or written."""


class StateError(StoreError):
    """A state value was refused (not JSON, or invalid for its model); nothing was written."""

    exit_code = 2

"""Where conversations live: layer 3 of the bridge.

A *conversation* (one chat thread on one channel, talking to one profile)
keeps the session id its agent returned last, a turn count, a status, a JSON
state value and a transcript. ``sessions`` holds the records, the storage
interface (:class:`~bridge.store.sessions.SessionStore`), the pure session
rules every store applies the same way, and the in-memory store for tests;
``sqlite`` is the embedded default, one SQLite file in the user's data folder.

Imports point down only: this package may import :mod:`agentproc`,
:mod:`bridge.errors` and :mod:`bridge.turn`, never the layers above it
(``bridge.conversations``, ``bridge.channels``, ``bridge.server``,
``bridge.cli``).

This file imports no submodule, so naming the package costs nothing.
"""

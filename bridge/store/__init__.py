"""Where conversations live: layer 3 of the bridge.

The storage interface (:mod:`~bridge.store.base`: conversations, the
conversation log, leases, deliveries), its records and pure rules, and its
implementations: memory (tests, throwaway runs) and SQLite (the embedded
default, one file in the user's data folder).

Imports point down only: this package may import :mod:`agentproc`,
:mod:`bridge.errors` and :mod:`bridge.turn`, never the layers above it
(``bridge.conversations``, ``bridge.channels``, ``bridge.server``,
``bridge.cli``).

This file imports no submodule, so importing one module of this package does
not load the others.
"""

"""Which turn runs when: layer 4 of the bridge.

``dispatcher`` holds :class:`~bridge.conversations.dispatcher.Dispatcher`:
one turn at a time per conversation, the global and per-user caps, the busy
policies, cancel, reset and shutdown, and the events a channel follows; each
turn's outcome is written to the store before the next one starts.

Imports point down only: this package may import :mod:`agentproc`,
:mod:`bridge.errors`, :mod:`bridge.turn` and :mod:`bridge.store`, never the
layers above it (``bridge.channels``, ``bridge.server``, ``bridge.cli``).

This file imports no submodule, so naming the package costs nothing.
"""

"""Where messages come from and replies go: layer 5 of the bridge.

One module per channel: ``chat`` (the terminal channel, ``agentproc chat``:
one conversation in the log, on the dispatcher; what it shows for each event
is planned by ``chat_view``, and its line editing at a terminal is
``prompt_input``, imported only there) and ``batch`` (a file of messages in, one
result line per message out; reading the input is ``batch_input``, the
results file ``batch_output``). ``terminal`` is what the terminal channel and
``agentproc run`` share: reading input without blocking the event loop, the
permission question, writing a reply. ``reply_plan`` decides how a streamed
reply goes onto a chat platform (post, edit, draft, split, pace), without
I/O; ``reply_split`` cuts a reply into messages that fit.

Imports point down only: this package may import :mod:`agentproc`,
:mod:`bridge.errors`, :mod:`bridge.turn`, :mod:`bridge.store` and
:mod:`bridge.conversations`, never the layers above it (``bridge.server``,
``bridge.cli``).

This file imports no submodule, so naming the package costs nothing.
"""

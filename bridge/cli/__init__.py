"""The ``agentproc`` command: the top layer of the bridge.

Thin, on click: parse options, call the library, map its errors to exit codes
once (in ``main``). ``console`` is the console script's entry point and
answers ``--version`` before click is imported; ``main`` holds the group and
the one-turn commands (``run``, ``validate``, ``schema``); ``conversations``
(``chat``), ``sessions``, ``batch`` and ``profiles`` hold the other commands.

This package may import anything below it: :mod:`agentproc` and every layer of
:mod:`bridge`. Nothing imports it but the console script.

This file imports no submodule: the entry point (``bridge.cli.console``)
must stay cheap to load.
"""

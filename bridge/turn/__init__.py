"""One turn of an agent: layer 2 of the bridge, right above the SDK.

What lives here, bottom up:

- the profile: its model and loader (``profile``, ``profile_yaml``,
  ``profile_reference``, ``profile_files``), the cache of validated profiles
  (``profile_cache``) and the profiles bundled with the package (``bundled``);
- a turn's inputs, written down once: :class:`~bridge.turn.request.TurnRequest`
  (``request``);
- the launch plan: a profile and one turn's input expanded into argv, cwd and
  environment (``launch``, with the size limits and inheritance rules in
  ``launch_env``), and the checks before spawning (``launch_check``,
  ``attachments``);
- the sans-IO state machine of a turn: bytes in, typed events out, a
  :class:`TurnResult` at the end (``machine``);
- the process layer, the only code that spawns, reads and kills processes
  (``process`` on the event loop, ``process_sync`` on the calling thread,
  ``process_common``);
- :func:`~bridge.turn.runner.run_turn` and its blocking twin (``runner``,
  ``runner_sync``).

Imports point down only: this package may import :mod:`agentproc` and
:mod:`bridge.errors`, never the layers above it (``bridge.store``,
``bridge.conversations``, ``bridge.channels``, ``bridge.server``,
``bridge.cli``).

This file imports no submodule: ``agentproc run`` loads only what it uses.
The names of the state machine (``from bridge.turn import TurnResult``, as
when it was the module ``bridge.turn``) are re-exported lazily, on first use.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .machine import (
        CLOSED,
        ERRORED,
        EXIT_AGENT_ERROR,
        EXIT_CANCELLED,
        EXIT_TIMEOUT,
        GENERIC_AGENT_ERROR,
        MAX_WARNINGS,
        RUNNING,
        STDERR_QUOTE_CHARS,
        STDERR_QUOTE_LINES,
        STDERR_SEPARATOR,
        ErrorReported,
        Event,
        Partial,
        PermissionRequested,
        ProcessExit,
        SessionCaptured,
        Turn,
        TurnResult,
        TurnStateError,
        TurnWarning,
        failed_result,
    )

# The public names of the state machine (bridge.turn.machine), imported on first use.
__all__ = [
    "CLOSED",
    "ERRORED",
    "EXIT_AGENT_ERROR",
    "EXIT_CANCELLED",
    "EXIT_TIMEOUT",
    "GENERIC_AGENT_ERROR",
    "MAX_WARNINGS",
    "RUNNING",
    "STDERR_QUOTE_CHARS",
    "STDERR_QUOTE_LINES",
    "STDERR_SEPARATOR",
    "ErrorReported",
    "Event",
    "Partial",
    "PermissionRequested",
    "ProcessExit",
    "SessionCaptured",
    "Turn",
    "TurnResult",
    "TurnStateError",
    "TurnWarning",
    "failed_result",
]

_MACHINE_NAMES = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name not in _MACHINE_NAMES:
        raise AttributeError(f"module 'bridge.turn' has no attribute {name!r}")
    from . import machine

    value = getattr(machine, name)
    globals()[name] = value
    return value

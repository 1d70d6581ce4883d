"""Errors of one turn, before it runs: the profile and the launch.

::

    TurnError                    one turn cannot be set up (a BridgeError)
    ├── ProfileError             a profile cannot be read or is invalid (exit 2)
    │   └── ProfileNotFoundError the profile file or folder does not exist (exit 2)
    └── LaunchError              a turn cannot start: bad input or a spawn failure
                                 (exit 2, 126 or 127, like a shell)

A turn that started and failed is not an error: :func:`~bridge.turn.runner.run_turn`
returns a :class:`~bridge.turn.machine.TurnResult` with an ``error`` and an
exit code. YAML, pydantic and OSError problems are converted to these where
the profile is read and the process is spawned.
"""

from __future__ import annotations

from bridge.errors import BridgeError, FileProblems


class TurnError(BridgeError):
    """Base of the errors of this package: a turn that cannot be set up."""


class ProfileError(FileProblems, TurnError):
    """A profile that cannot be loaded. ``problems`` lists every issue found,
    each already prefixed with ``file:line:`` (see :class:`FileProblems`)."""


class ProfileNotFoundError(ProfileError):
    """The profile path does not exist."""


class LaunchError(TurnError):
    """A turn that cannot start. ``exit_code``: 127 command not found,
    126 not executable, 2 bad input (empty message, NUL, too large)."""

    exit_code = 2

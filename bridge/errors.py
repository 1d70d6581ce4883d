"""Errors of the bridge, rooted in one base class.

::

    BridgeError                  anything the bridge reports to a user (exit 1)
    ├── ProfileError             a profile cannot be read or is invalid (exit 2)
    │   └── ProfileNotFoundError the profile file or folder does not exist (exit 2)
    ├── LaunchError              a turn cannot start: bad input or a spawn failure
    │                            (exit 2, 126 or 127, like a shell)
    └── UsageError               a command line that makes no sense (exit 2)

Each error writes its own message and carries an optional ``hint`` (what to do
next) and the ``exit_code`` the CLI maps it to. Library errors (YAML, pydantic,
OSError) are converted to these at the boundary where they happen.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def detail(self) -> str:
        """The message without the hint (the CLI prints the hint on its own line)."""
        return self.message

    def __str__(self) -> str:
        return f"{self.detail} ({self.hint})" if self.hint else self.detail


class ProfileError(BridgeError):
    """A profile that cannot be loaded. ``problems`` lists every issue found,
    each already prefixed with ``file:line:``."""

    exit_code = 2

    def __init__(
        self, message: str, *, problems: tuple[str, ...] = (), path: str = "", hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems
        self.path = path

    @property
    def detail(self) -> str:
        return "\n".join((self.message, *(f"  {p}" for p in self.problems)))


class ProfileNotFoundError(ProfileError):
    """The profile path does not exist."""


class LaunchError(BridgeError):
    """A turn that cannot start. ``exit_code``: 127 command not found,
    126 not executable, 2 bad input (empty message, NUL, too large)."""

    exit_code = 2


class UsageError(BridgeError):
    exit_code = 2

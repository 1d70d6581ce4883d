"""The root of every error the bridge reports to a user.

Each layer of the bridge has its own tree, rooted in one base class that
derives from :class:`BridgeError` and drawn in that package's ``errors``
module. All of them, together::

    BridgeError                      anything the bridge reports to a user (exit 1)
    ├── TurnError                    bridge.turn.errors: one turn cannot be set up
    │   ├── ProfileError             a profile cannot be read or is invalid (exit 2)
    │   │   └── ProfileNotFoundError the profile file or folder does not exist (exit 2)
    │   └── LaunchError              a turn cannot start: bad input or a spawn failure
    │                                (exit 2, 126 or 127, like a shell)
    ├── StoreError                   bridge.store.errors: the store cannot be opened,
    │   │                            read or written
    │   ├── StateError               a state value was refused; nothing written (exit 2)
    │   ├── LeaseLost                a lease holder's write after the lease was lost
    │   ├── NotFound                 no such conversation or approval request
    │   ├── ReadOnlyStore            a write on a store opened for reading only
    │   └── SchemaTooNew             the store was written by a newer agentproc
    ├── ConversationError            bridge.conversations.errors: a message the
    │   │                            dispatcher cannot take
    │   ├── Busy                     refused: busy, queue full, user limit, bridge full,
    │   │                            shutting down; nothing was written
    │   └── UnknownRoute             no profile for the conversation's route (exit 2)
    ├── ChannelError                 bridge.channels.errors: a channel cannot do what it
    │   │                            was asked
    │   ├── UsageError               a request that makes no sense (exit 2)
    │   │   └── BatchInputError      a batch input file that cannot be run (exit 2)
    │   ├── BatchOutputError         a batch results file that cannot be opened or read
    │   │                            (exit 2)
    │   ├── ApiError                 an HTTP request the API refuses (its status and code)
    │   ├── PlatformError            a chat platform refused a request
    │   │   ├── RateLimited          too many requests: wait retry_after seconds
    │   │   ├── NotModified          an edit that changes nothing
    │   │   ├── Unreachable          blocked, deleted, or no right to write there
    │   │   └── Refused              any other refusal, with the platform's error code
    │   └── Closing                  shutting down: a message taken by nobody, not confirmed
    └── ServerError                  bridge.server.errors: `agentproc serve` cannot start or
        │                            go on serving
        └── ConfigError              the server's config file cannot be read or is
                                     invalid (exit 2)

A failed turn is not an error: it is a :class:`~bridge.turn.machine.TurnResult`
with an ``error`` and an exit code. Each error writes its own message and
carries an optional ``hint`` (what to do next) and the ``exit_code`` the CLI
maps it to, in one place (:mod:`bridge.cli.main`). Library errors (YAML,
pydantic, OSError, SQLite) are converted to these at the boundary where they
happen.
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


class FileProblems:
    """A mixin, not an error: the shape of an error about a file checked whole
    (a profile, a server config), put before the package's own base:
    ``class ConfigError(FileProblems, ServerError)``. ``problems`` lists every
    issue found, each already prefixed with ``FILE:LINE:``; ``path`` is the
    file; the detail shows the message, then one problem per line."""

    exit_code = 2
    message: str

    def __init__(
        self, message: str, *, problems: tuple[str, ...] = (), path: str = "", hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)  # type: ignore[call-arg]
        self.problems = problems
        self.path = path

    @property
    def detail(self) -> str:
        return "\n".join((self.message, *(f"  {p}" for p in self.problems)))

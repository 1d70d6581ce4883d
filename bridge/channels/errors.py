"""Errors of the channels.

::

    ChannelError                 a channel cannot do what it was asked (a BridgeError)
    ├── UsageError               a request that makes no sense (exit 2)
    │   └── BatchInputError      a batch input file that cannot be run: every
    │                            problem found, before anything runs (exit 2)
    ├── BatchOutputError         a batch results file that cannot be opened or read
    │                            (exit 2, before anything runs)
    ├── ApiError                 an HTTP request the API refuses: its status, a
    │                            stable code and the message the client gets
    ├── PlatformError            a chat platform refused what the bridge asked
    │   ├── RateLimited          too many requests: wait ``retry_after`` seconds
    │   ├── NotModified          an edit that changes nothing (done already)
    │   ├── Unreachable          blocked, deleted, or no right to write there
    │   └── Refused              any other refusal, with the platform's error code
    └── Closing                  the bridge is shutting down and took nothing: the
                                 platform must not confirm the message
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.errors import BridgeError


class ChannelError(BridgeError):
    """Base of the errors of this package: a channel cannot do what it was asked."""


class UsageError(ChannelError):
    """A request that makes no sense, such as options that do not go together
    (exit 2).

    It lives here, not in :mod:`bridge.cli`, because the library raises it:
    :func:`bridge.channels.batch.open_output` refuses ``--resume`` without a
    results file, or with one that is not a regular file; and
    :class:`BatchInputError` is one. The command
    line's own usage errors are click's.
    """

    exit_code = 2


class BatchInputError(UsageError):
    """An input file that cannot be run: every problem found, as ``LABEL:LINE: text``."""

    def __init__(self, message: str, *, problems: Sequence[str] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.problems = tuple(problems)

    @property
    def detail(self) -> str:
        return "\n".join((self.message, *(f"  {p}" for p in self.problems)))


class BatchOutputError(ChannelError):
    """The results file cannot be opened or read (exit 2, before anything runs).
    Write errors during a run end up in :attr:`~bridge.channels.batch.BatchRun.output_error`."""


class ApiError(ChannelError):
    """A request the HTTP API refuses. ``status`` is the HTTP status, ``code``
    a stable name for the kind of error, ``extra`` facts a client may act on
    (a cap's limit and count). The client gets all of it as a JSON body."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        hint: str = "",
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class PlatformError(ChannelError):
    """A chat platform refused a request (see :mod:`bridge.channels.platform`)."""


class RateLimited(PlatformError):
    """The platform asked the bridge to slow down for ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, hint=f"wait {retry_after:g} s")
        self.retry_after = retry_after


class NotModified(PlatformError):
    """An edit whose text and buttons are what the message holds already."""


class Unreachable(PlatformError):
    """The bridge cannot write there: blocked by the person, the chat or
    message deleted, or no permission."""


class Refused(PlatformError):
    """A refusal the bridge may act on by its ``code``, the platform's own
    name for the error (Slack's ``error``: ``msg_too_long``, ...)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class Closing(ChannelError):
    """The bridge is shutting down and took nothing: the platform must not
    confirm this message, so that it sends it again to the next bridge
    (Telegram's offset is not moved on; a webhook answers 503)."""

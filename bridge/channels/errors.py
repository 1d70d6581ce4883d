"""Errors of the channels.

::

    ChannelError                 a channel cannot do what it was asked (a BridgeError)
    ├── UsageError               a request that makes no sense (exit 2)
    │   └── BatchInputError      a batch input file that cannot be run: every
    │                            problem found, before anything runs (exit 2)
    └── BatchOutputError         a batch results file that cannot be opened or read
                                 (exit 2, before anything runs)
"""

from __future__ import annotations

from collections.abc import Sequence

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

"""Errors of the dispatcher: a message it cannot take.

::

    ConversationError            a message the dispatcher cannot take (a BridgeError)
    ├── Busy                     the message was refused and nothing was written;
    │                            ``reason`` says why: busy, queue_full, user_limit,
    │                            bridge_full or shutting_down
    └── UnknownRoute             the conversation's route (profile and folder) is not
                                 one this dispatcher runs (exit 2)

:meth:`~bridge.conversations.dispatcher.Dispatcher.submit` also lets through
a :class:`~bridge.turn.errors.LaunchError` (nothing to send) and a
:class:`~bridge.store.errors.StoreError` (the store cannot be read); everything
that happens to an accepted message ends in a result, never in an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.errors import BridgeError

if TYPE_CHECKING:
    from bridge.store.records import Route


class ConversationError(BridgeError):
    """Base of the errors of this package: a message the dispatcher cannot take."""


class Busy(ConversationError):
    """A message was refused and nothing was queued.

    ``reason`` is ``busy`` (the conversation's policy is ``reject``),
    ``queue_full``, ``user_limit`` or ``shutting_down``; ``limit`` is the
    limit that refused it and ``active`` how much of it was in use (waiting
    messages for ``queue_full``, the sender's turns for ``user_limit``, the
    turns ahead for ``busy``).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        conversation: str = "",
        limit: int | None = None,
        active: int | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        #: The id of the conversation that refused it.
        self.conversation = conversation
        self.limit = limit
        self.active = active


class UnknownRoute(ConversationError):
    """The conversation's route (its profile and folder) is not one the
    dispatcher was given a profile for."""

    exit_code = 2

    def __init__(self, route: Route) -> None:
        self.route = route
        where = f" in {route.cwd}" if route.cwd else ""
        super().__init__(
            f"no profile for {route.name or route.profile}{where} in this bridge",
            hint="open the conversation with the profile it was started with",
        )

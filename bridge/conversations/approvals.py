"""Approvals on the log: an agent's permission request becomes a
``turn.permission`` event, and whoever answers first, from any process or
channel, decides it with a ``turn.permission_answered`` event naming it.

The waiting side (:class:`Approvals`) lives in the dispatcher that runs the
turn. It learns of answers through the hub's observers, so an answer written
by another process arrives as soon as that process's write is read back.
Nobody answering means no: when the turn's permission deadline passes (the
profile's ``permission_timeout_secs``, enforced by ``run_turn``), or the turn
ends, the request is answered ``deny`` by ``deadline``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from agentproc import wire
from bridge.store.records import TURN_PERMISSION_ANSWERED, Event

__all__ = ["DEADLINE", "Approvals", "decision_of"]

#: ``by`` of an answer written because nobody answered in time.
DEADLINE = "deadline"


def decision_of(answer: Event) -> wire.PermissionDecision:
    data = answer.data
    message = str(data.get("message", ""))
    if not message and data.get("by") == DEADLINE:
        message = "nobody answered the permission request in time"
    updated = data.get("updated_input")
    return wire.PermissionDecision(
        bool(data.get("allow")), updated if isinstance(updated, dict) else None, message
    )


@dataclass(slots=True)
class _Waiter:
    done: anyio.Event
    answer: Event | None = None


class Approvals:
    """Requests waiting for an answer in this process, by (conversation, request id)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, int], _Waiter] = {}

    def observe(self, event: Event, remote: bool) -> None:
        """A hub observer: wakes the waiter an answer names."""
        if event.type != TURN_PERMISSION_ANSWERED:
            return
        waiter = self._waiting.get((event.conversation, int(event.data.get("request", 0))))
        if waiter is not None and waiter.answer is None:
            waiter.answer = event
            waiter.done.set()

    @property
    def waiting(self) -> int:
        """Requests not answered yet."""
        return sum(1 for w in self._waiting.values() if w.answer is None)

    def expect(self, conversation: str, request_id: int) -> _Waiter:
        waiter = _Waiter(anyio.Event())
        self._waiting[(conversation, request_id)] = waiter
        return waiter

    def forget(self, conversation: str, request_id: int) -> None:
        self._waiting.pop((conversation, request_id), None)

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
from bridge.store.records import CONVERSATION_RESET, TURN_PERMISSION_ANSWERED, Event

__all__ = ["DEADLINE", "SESSION", "Approvals", "decision_of"]

#: ``by`` of an answer written because nobody answered in time.
DEADLINE = "deadline"
#: ``by`` of an answer written because the tool was allowed for the
#: conversation (an earlier answer with ``scope: session``).
SESSION = "session"


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
        #: Tools allowed for the rest of a conversation, by conversation.
        self._allowed: dict[str, set[str]] = {}

    def allowed(self, conversation: str, tool: str) -> bool:
        """Whether an answer with ``scope: session`` allowed ``tool`` in this
        conversation since its last reset (as far as the log still shows)."""
        return tool in self._allowed.get(conversation, ())

    def observe(self, event: Event, remote: bool) -> None:
        """A hub observer: wakes the waiter an answer names, and keeps the
        tools allowed for a conversation (a reset forgets them)."""
        if event.type == CONVERSATION_RESET:
            self._allowed.pop(event.conversation, None)
        if event.type != TURN_PERMISSION_ANSWERED:
            return
        data = event.data
        if data.get("scope") == "session" and data.get("allow") and data.get("tool"):
            self._allowed.setdefault(event.conversation, set()).add(str(data["tool"]))
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

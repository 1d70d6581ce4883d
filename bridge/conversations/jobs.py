"""A turn's life inside the dispatcher, as a transition table.

A *job* is one turn this process took from the log: its messages are in a
``turn.queued`` event and it holds the conversation's lease. It moves through

::

    waiting ──slot──▶ starting ──spawned──▶ running ──exited──▶ ended ──stored──▶ done
       │                 │                    │                   ▲
       └─cancel─▶ not_run ◀──────cancel───────┘ └─cancel─▶ stopping ─exited─┘
                     │
                     └──stored──▶ done

``waiting``: for a slot under the bridge-wide cap; ``starting``: reading its
session; ``running``: the agent runs; ``stopping``: cancel sent, the agent is
being stopped; ``ended``: the agent's result is known; ``not_run``: stopped
before its agent started; ``done``: ``turn.completed`` is in the log.
A signal with no entry for the current state changes nothing (a second
cancel, a cancel after the end), so callers need no flags of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import anyio

__all__ = ["TRANSITIONS", "Job", "Signal", "State"]

State = Literal["waiting", "starting", "running", "stopping", "ended", "not_run", "done"]
Signal = Literal["slot", "spawned", "cancel", "exited", "stored"]

TRANSITIONS: Final[dict[tuple[State, Signal], State]] = {
    ("waiting", "slot"): "starting",
    ("waiting", "cancel"): "not_run",
    ("starting", "spawned"): "running",
    ("starting", "cancel"): "not_run",
    ("running", "cancel"): "stopping",
    ("running", "exited"): "ended",
    ("stopping", "exited"): "ended",
    ("ended", "stored"): "done",
    ("not_run", "stored"): "done",
}


@dataclass(slots=True, eq=False)
class Job:
    """One turn taken by this process."""

    conversation: str
    turn: int
    epoch: int
    #: The id of the last message the turn took.
    consumed: int = 0
    state: State = "waiting"
    #: Set when the job is cancelled: run_turn watches it to stop the agent.
    cancel: anyio.Event = field(default_factory=anyio.Event)
    #: Why it was stopped ("" while it was not), for the turn's error.
    reason: str = ""
    #: While it waits for a slot: the scope a cancel ends that wait with.
    slot_wait: anyio.CancelScope | None = None

    def fire(self, signal: Signal, reason: str = "") -> bool:
        """Apply ``signal``; returns whether the state changed."""
        new = TRANSITIONS.get((self.state, signal))
        if new is None:
            return False
        self.state = new
        if signal == "cancel":
            self.reason = self.reason or reason
            self.cancel.set()
            if self.slot_wait is not None:
                self.slot_wait.cancel()
        return True

"""Busy policies and caps: rules over the messages waiting in a conversation's log.

Pure functions, no I/O. :func:`admission` builds the check the store runs
inside the transaction that would add a message (so two processes cannot both
squeeze under a limit); :func:`next_batch` says which waiting messages the
next turn takes; :func:`merge` makes one turn's input from several messages.

The policies (a profile's ``busy_policy``, or the bridge's default), for a
message that arrives while its conversation has a turn running or waiting:

=============  ===================================================================
``queue``      it waits; turns run one message each, in order
``reject``     it is refused (``Busy``, reason ``busy``); nothing is written
``collect``    it waits; the next turn takes every waiting message, merged
``interrupt``  the running turn is cancelled; the next turn takes every waiting
               message, merged
=============  ===================================================================

Caps, counted by the store across every conversation it holds:
``queue_limit`` (waiting messages per conversation), ``max_per_user`` (a
sender's messages waiting or in a running turn) and ``max_waiting`` (every
message waiting or running in the store). Over a cap, the message is refused
with ``Busy`` naming the limit and the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bridge.store.records import Conversation, Event, Load

from .errors import Busy

__all__ = [
    "BUSY_POLICIES",
    "MERGE_SEPARATOR",
    "REASON_BRIDGE_FULL",
    "REASON_BUSY",
    "REASON_QUEUE_FULL",
    "REASON_SHUTTING_DOWN",
    "REASON_USER_LIMIT",
    "BusyPolicy",
    "Caps",
    "admission",
    "interrupts",
    "merge",
    "next_batch",
]

BusyPolicy = Literal["queue", "reject", "interrupt", "collect"]

#: The busy policies, as in the profile's ``busy_policy`` field.
BUSY_POLICIES: tuple[BusyPolicy, ...] = ("queue", "reject", "interrupt", "collect")

REASON_BUSY = "busy"
REASON_QUEUE_FULL = "queue_full"
REASON_USER_LIMIT = "user_limit"
REASON_BRIDGE_FULL = "bridge_full"
REASON_SHUTTING_DOWN = "shutting_down"

#: Between merged messages (``collect``, ``interrupt``).
MERGE_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Caps:
    """One conversation's policy and the limits a new message is checked against."""

    policy: BusyPolicy = "queue"
    queue_limit: int = 5
    max_per_user: int | None = None
    max_waiting: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in BUSY_POLICIES:
            raise ValueError(f"busy_policy must be one of {', '.join(BUSY_POLICIES)}")
        if self.queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        if self.max_per_user is not None and self.max_per_user < 1:
            raise ValueError("max_per_user must be at least 1 (or None for no cap)")
        if self.max_waiting is not None and self.max_waiting < 1:
            raise ValueError("max_waiting must be at least 1 (or None for no cap)")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def admission(caps: Caps, from_user: str) -> Any:
    """The check for one message from ``from_user``: called by the store with
    the conversation and its :class:`~bridge.store.records.Load`, it raises
    :class:`Busy` to refuse the message (nothing is written then)."""

    def admit(conv: Conversation, load: Load) -> None:
        busy = load.running or load.pending > 0
        if busy and caps.policy == "reject":
            ahead = load.pending + (1 if load.running else 0)
            raise Busy(
                "this conversation is busy: its agent is still answering",
                reason=REASON_BUSY,
                conversation=conv.id,
                active=ahead,
                hint="wait for the answer, or cancel it and send again",
            )
        if busy and load.pending >= caps.queue_limit:
            raise Busy(
                f"this conversation already has {_plural(load.pending, 'message')} waiting "
                f"(the limit is {caps.queue_limit})",
                reason=REASON_QUEUE_FULL,
                conversation=conv.id,
                limit=caps.queue_limit,
                active=load.pending,
                hint="wait for an answer before sending more",
            )
        if caps.max_per_user is not None and from_user and load.user_active >= caps.max_per_user:
            raise Busy(
                f"{from_user} already has {_plural(load.user_active, 'message')} waiting or "
                f"running (the limit is {caps.max_per_user})",
                reason=REASON_USER_LIMIT,
                conversation=conv.id,
                limit=caps.max_per_user,
                active=load.user_active,
                hint="wait for one of them to finish",
            )
        if caps.max_waiting is not None and load.total_active >= caps.max_waiting:
            raise Busy(
                f"the bridge already has {_plural(load.total_active, 'message')} waiting or "
                f"running (the limit is {caps.max_waiting})",
                reason=REASON_BRIDGE_FULL,
                conversation=conv.id,
                limit=caps.max_waiting,
                active=load.total_active,
                hint="try again in a moment",
            )

    # Counting every conversation's messages is only needed for these caps.
    admit.needs_totals = caps.max_per_user is not None or caps.max_waiting is not None  # type: ignore[attr-defined]
    return admit


def interrupts(policy: BusyPolicy) -> bool:
    """Whether a new message stops the running turn."""
    return policy == "interrupt"


def next_batch(policy: BusyPolicy, pending: Sequence[Event]) -> list[Event]:
    """The waiting messages the next turn takes, oldest first: one under
    ``queue`` and ``reject``, all of them under ``collect`` and ``interrupt``."""
    if not pending:
        return []
    if policy in ("collect", "interrupt"):
        return list(pending)
    return [pending[0]]


def merge(messages: Sequence[Event]) -> tuple[str, list[Mapping[str, str]]]:
    """One turn's text and attachments from its messages: the texts joined
    by a blank line (empty ones left out), the attachments in order."""
    texts = [str(m.data.get("text", "")) for m in messages]
    text = MERGE_SEPARATOR.join(t for t in texts if t)
    files: list[Mapping[str, str]] = []
    for m in messages:
        files.extend(m.data.get("attachments", ()))
    return text, files

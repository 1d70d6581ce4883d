"""What each write does to a conversation: pure functions, no I/O.

A store implementation runs every write the same way: in one transaction it
loads the conversation (and, where a rule needs them, its pending messages),
calls the rule here, then saves the :class:`Write` it returns — the new
conversation row and the events to append, whose ids it allocates from
``last_event``. Memory, SQLite and PostgreSQL stores therefore differ only in
how they keep rows, never in what a claim, a completion or a reset means.

Who holds a lease, and when a lease is live, is :mod:`bridge.store.owners`;
reading the log back for people (names, transcripts) is
:mod:`bridge.store.reading`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import LeaseLost, NotFound
from .owners import lease_is_live
from .records import (
    CONVERSATION_CANCEL,
    CONVERSATION_RESET,
    DELIVERY_EDITED,
    DELIVERY_FINISHED,
    DELIVERY_POSTED,
    MESSAGE,
    MESSAGE_HANDLED,
    STATUS_ABANDONED,
    STATUSES,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    TURN_STARTED,
    Conversation,
    ConversationKey,
    Event,
    NewMessage,
)

__all__ = [
    "ABANDONED_ERROR",
    "ABANDONED_HINT",
    "DEFAULT_KEEP_TURNS",
    "RUNNING_EVENTS",
    "Write",
    "abandon_if_dead",
    "add_message",
    "answer",
    "cancel",
    "check_keep_turns",
    "claim",
    "complete",
    "heartbeat",
    "message_data",
    "new_conversation",
    "new_conversation_id",
    "oldest_kept_turn",
    "release",
    "reset",
    "running_event",
    "start",
    "take",
    "trim_cut",
]

ABANDONED_ERROR = "this turn was abandoned: the bridge running it stopped before the turn ended"
ABANDONED_HINT = (
    "it was not run again, since the agent may have done part of it; "
    "send the message again if you still want an answer"
)

#: The default retention: completed turns whose events each conversation keeps.
DEFAULT_KEEP_TURNS = 200

#: The event types a running turn's lease holder appends on its own (the
#: others have a write of their own: take, start, complete, answer).
RUNNING_EVENTS = (TURN_PARTIAL, TURN_PERMISSION)


@dataclass(frozen=True, slots=True)
class Write:
    """The outcome of a rule: the conversation as it must be saved, and the
    events to append (type, turn, data), ids not yet given."""

    conversation: Conversation
    events: tuple[tuple[str, int, Mapping[str, Any]], ...] = ()

    def stamped(self, now: float) -> tuple[Conversation, list[Event]]:
        """Give the events their ids (from ``last_event``) and time; returns
        the conversation with ``last_event`` moved past them."""
        conv = self.conversation
        out = []
        next_id = conv.last_event
        for type_, turn, data in self.events:
            next_id += 1
            out.append(Event(conv.id, next_id, type_, turn, now, dict(data)))
        return replace(conv, last_event=next_id), out


# --- ids and owners --------------------------------------------------------------------------


def new_conversation_id() -> str:
    """An opaque, URL-safe conversation id: ``c`` and 20 lowercase hex digits."""
    return "c" + secrets.token_hex(10)


def check_keep_turns(keep_turns: int) -> int:
    """A store's retention: a whole number of completed turns, at least 1 (the
    last completed turn is always kept, so a reader that just saw a turn end
    can still read it back)."""
    if isinstance(keep_turns, bool) or not isinstance(keep_turns, int) or keep_turns < 1:
        raise ValueError(f"keep_turns must be a whole number >= 1, not {keep_turns!r}")
    return keep_turns


# --- conversations -------------------------------------------------------------------------


def new_conversation(
    key: ConversationKey, now: float, session_name: str = "default"
) -> Conversation:
    return Conversation(
        id=new_conversation_id(),
        key=key,
        session_name=session_name,
        created_at=now,
        updated_at=now,
    )


def message_data(message: NewMessage) -> dict[str, Any]:
    data = {
        "text": message.text,
        "attachments": [dict(a) for a in message.attachments],
        "from_user": message.from_user,
        "platform_id": message.platform_id,
    }
    if message.via:
        data["via"] = message.via
    return data


def add_message(conv: Conversation, message: NewMessage, now: float) -> Write:
    """A person's message joins the conversation's pending messages. It does
    not count as activity (``updated_at``): a session goes idle when no turn
    ran and no reset happened for a while, whatever waits (see
    :mod:`bridge.store.session_rules`)."""
    kind = MESSAGE_HANDLED if message.handled else MESSAGE
    return Write(conv, ((kind, 0, message_data(message)),))


def _check_owner(conv: Conversation, owner: str) -> None:
    if conv.lease_owner != owner:
        holder = conv.lease_owner or "nobody"
        raise LeaseLost(
            f"conversation {conv.label} is no longer held by this bridge (held by {holder})",
            hint="another bridge took it over after this one stopped renewing its lease",
        )


def _abandon(conv: Conversation, now: float) -> Write:
    """Close the open turn as abandoned and drop the lease."""
    turn = conv.running_turn
    outcome = {
        "status": STATUS_ABANDONED,
        "reply": "",
        "session_id": "",
        "exit_code": -1,
        "error": ABANDONED_ERROR,
        "hint": ABANDONED_HINT,
        "warnings": [],
        "timed_out": False,
        "duration_ms": 0,
    }
    conv = replace(
        conv,
        running_turn=0,
        lease_owner="",
        lease_expires=0.0,
        last_status=STATUS_ABANDONED,
        updated_at=now,
    )
    return Write(conv, ((TURN_COMPLETED, turn, outcome),))


def abandon_if_dead(conv: Conversation, now: float) -> Write | None:
    """A dead owner's open turn closed as abandoned (and its lease dropped);
    None when the conversation is held or has nothing to close."""
    if lease_is_live(conv, now):
        return None
    if conv.running_turn:
        return _abandon(conv, now)
    if conv.lease_owner:
        return Write(replace(conv, lease_owner="", lease_expires=0.0))
    return None


def claim(conv: Conversation, owner: str, now: float, lease_secs: float) -> Write | None:
    """Take or renew the lease; None while another live owner holds it."""
    if conv.lease_owner != owner and lease_is_live(conv, now):
        return None
    events: tuple[tuple[str, int, Mapping[str, Any]], ...] = ()
    if conv.lease_owner != owner and conv.running_turn:
        write = _abandon(conv, now)
        conv, events = write.conversation, write.events
    return Write(replace(conv, lease_owner=owner, lease_expires=now + lease_secs), events)


def heartbeat(conv: Conversation, owner: str, now: float, lease_secs: float) -> Write | None:
    if conv.lease_owner != owner:
        return None
    return Write(replace(conv, lease_expires=now + lease_secs))


def release(conv: Conversation, owner: str) -> Write | None:
    if conv.lease_owner != owner:
        return None
    return Write(replace(conv, lease_owner="", lease_expires=0.0))


def take(
    conv: Conversation,
    owner: str,
    pending: Sequence[Event],
    messages: Sequence[int],
    *,
    text: str,
    attachments: Sequence[Mapping[str, str]],
    now: float,
) -> Write:
    """Allocate the next turn for the first ``len(messages)`` pending messages."""
    _check_owner(conv, owner)
    if conv.running_turn:
        raise ValueError(f"turn {conv.running_turn} of {conv.label} is still open")
    expected = [e.id for e in pending[: len(messages)]]
    if not messages or list(messages) != expected:
        raise ValueError(
            "a turn must take the oldest pending messages in order: "
            f"{expected}, not {list(messages)}"
        )
    taken = pending[: len(messages)]
    turn = conv.turn_count + 1
    users = []
    for e in taken:
        user = e.data.get("from_user", "")
        if user and user not in users:
            users.append(user)
    data = {
        "messages": list(messages),
        "text": text,
        "attachments": [dict(a) for a in attachments],
        "from_users": users,
    }
    conv = replace(conv, turn_count=turn, running_turn=turn, consumed=messages[-1], updated_at=now)
    return Write(conv, ((TURN_QUEUED, turn, data),))


def _check_running(conv: Conversation, owner: str, turn: int) -> None:
    _check_owner(conv, owner)
    if conv.running_turn != turn:
        raise ValueError(f"turn {turn} of {conv.label} is not the open turn")


def start(conv: Conversation, owner: str, turn: int, session_id: str) -> Write:
    _check_running(conv, owner, turn)
    return Write(conv, ((TURN_STARTED, turn, {"session_id": session_id}),))


def running_event(
    conv: Conversation, owner: str, turn: int, type_: str, data: Mapping[str, Any]
) -> Write:
    if type_ not in RUNNING_EVENTS:
        raise ValueError(f"a running turn appends only {RUNNING_EVENTS} events, not {type_!r}")
    _check_running(conv, owner, turn)
    return Write(conv, ((type_, turn, data),))


def complete(
    conv: Conversation,
    owner: str,
    turn: int,
    outcome: Mapping[str, Any],
    *,
    captured_session: str | None,
    epoch: int,
    now: float,
) -> Write:
    """Close the turn. The captured session id is kept, even from a failed
    turn, unless a reset came after the turn read its session."""
    _check_running(conv, owner, turn)
    status = outcome.get("status")
    if status not in STATUSES:
        raise ValueError(f"turn.completed needs a status in {STATUSES}, not {status!r}")
    session = conv.session_id
    if captured_session and epoch == conv.reset_epoch:
        session = captured_session
    conv = replace(
        conv, running_turn=0, session_id=session, last_status=str(status), updated_at=now
    )
    return Write(conv, ((TURN_COMPLETED, turn, dict(outcome)),))


# --- anyone's rules ------------------------------------------------------------------------


def cancel(
    conv: Conversation,
    pending: Sequence[Event],
    by: str,
    now: float,
    *,
    drop: bool = True,
    reason: str = "",
) -> Write:
    """Name the running turn for its holder to stop and, with ``drop``, drop
    the waiting messages (an ``interrupt`` keeps them: they run next)."""
    dropped = [e.id for e in pending] if drop else []
    consumed = max([conv.consumed, *dropped])
    conv = replace(conv, consumed=consumed, updated_at=now)
    data = {"by": by, "dropped": dropped, "reason": reason}
    return Write(conv, ((CONVERSATION_CANCEL, conv.running_turn, data),))


def reset(conv: Conversation, by: str, now: float) -> Write:
    conv = replace(conv, session_id="", reset_epoch=conv.reset_epoch + 1, updated_at=now)
    return Write(conv, ((CONVERSATION_RESET, 0, {"by": by}),))


def answer(
    conv: Conversation,
    request: Event | None,
    answered: bool,
    *,
    request_id: int,
    allow: bool,
    scope: str,
    message: str,
    by: str,
    updated_input: Mapping[str, Any] | None = None,
) -> Write | None:
    """Answer an approval; None when it is answered already or its turn ended."""
    if request is None or request.type != TURN_PERMISSION:
        raise NotFound(
            f"conversation {conv.label} has no approval request {request_id}",
            hint="check the id; approvals are numbered by their event id",
        )
    if scope not in ("once", "session"):
        raise ValueError(f"scope must be 'once' or 'session', not {scope!r}")
    if answered or conv.running_turn != request.turn:
        return None
    data: dict[str, Any] = {
        "request": request_id,
        "allow": allow,
        "scope": scope,
        "message": message,
        "by": by,
        "tool": request.data.get("tool", ""),
    }
    if updated_input is not None:
        if not allow:
            raise ValueError("updated_input goes with allowing a tool, not denying it")
        data["updated_input"] = dict(updated_input)
    return Write(conv, ((TURN_PERMISSION_ANSWERED, request.turn, data),))


# --- retention -----------------------------------------------------------------------------------


def trim_cut(
    conv: Conversation, keep_turns: int, oldest_kept_queued: Event | None, floor: int
) -> int:
    """The first event id to keep: the start of the oldest of the last
    ``keep_turns`` completed turns (its first message), never past ``floor``
    (the lowest delivery position still to be read + 1) nor into the open
    turn or the pending messages. Returns ``conv.first_event`` when nothing
    is to go. ``oldest_kept_queued`` is that turn's ``turn.queued`` event."""
    if oldest_kept_queued is None:
        return conv.first_event
    ids = [int(i) for i in oldest_kept_queued.data.get("messages", [])]
    cut = min([oldest_kept_queued.id, *ids])
    cut = min(cut, floor, conv.consumed + 1)
    return max(cut, conv.first_event)


def oldest_kept_turn(conv: Conversation, keep_turns: int) -> int:
    """The number of the oldest completed turn retention keeps (0: keep all)."""
    last_completed = conv.turn_count - (1 if conv.running_turn else 0)
    oldest = last_completed - keep_turns + 1
    return oldest if oldest > 1 else 0


DELIVERY_TYPES = (DELIVERY_POSTED, DELIVERY_EDITED, DELIVERY_FINISHED)


def delivery(
    conv: Conversation,
    channel: str,
    type_: str,
    ids: Sequence[str],
    turn: int,
    data: Mapping[str, Any],
) -> Write:
    """A channel's record of what it posted, edited or finished on its platform."""
    if type_ not in DELIVERY_TYPES:
        raise ValueError(f"a delivery event is one of {', '.join(DELIVERY_TYPES)}, not {type_!r}")
    if not channel:
        raise ValueError("a delivery event names its channel")
    if turn < 0 or turn > conv.turn_count:
        raise ValueError(f"conversation {conv.label} has no turn {turn}")
    payload = {**data, "channel": channel, "ids": [str(i) for i in ids]}
    return Write(conv, ((type_, turn, payload),))

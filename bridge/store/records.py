"""The records of the conversation log: routes, conversation keys, conversations,
events, and the numbers an admission rule is given.

Plain frozen dataclasses with no I/O, shared by every store implementation and
by the layers above. Event payloads (``Event.data``) are JSON objects; the
fields each event type carries are listed in :data:`EVENT_FIELDS` and in
``docs/LOG.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "STATUSES",
    "Conversation",
    "ConversationKey",
    "Event",
    "Load",
    "NewMessage",
    "Pairing",
    "Route",
    "TranscriptTurn",
]

# --- event types ------------------------------------------------------------------------

MESSAGE: Final = "message"
MESSAGE_HANDLED: Final = "message.handled"
TURN_QUEUED: Final = "turn.queued"
TURN_STARTED: Final = "turn.started"
TURN_PARTIAL: Final = "turn.partial"
TURN_PERMISSION: Final = "turn.permission"
TURN_PERMISSION_ANSWERED: Final = "turn.permission_answered"
TURN_COMPLETED: Final = "turn.completed"
CONVERSATION_CANCEL: Final = "conversation.cancel"
CONVERSATION_RESET: Final = "conversation.reset"
DELIVERY_POSTED: Final = "delivery.posted"
DELIVERY_EDITED: Final = "delivery.edited"
DELIVERY_FINISHED: Final = "delivery.finished"

#: Every event type, and the keys its ``data`` always has (more may follow).
EVENT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    # A person's message. ``platform_id`` ("" when the channel has none)
    # makes a redelivery recognisable: the same id in one conversation is
    # the same message.
    MESSAGE: ("text", "attachments", "from_user", "platform_id"),
    # A person's message that a bot's own handler took (see docs/BOTS.md):
    # kept like a message, redeliveries recognised the same way, but never
    # queued for the agent.
    MESSAGE_HANDLED: ("text", "attachments", "from_user", "platform_id"),
    # Messages taken into a turn: their event ids, the merged text, who sent them.
    TURN_QUEUED: ("messages", "text", "attachments", "from_users"),
    # The agent is being started; ``session_id`` is the one it resumes ("" = fresh).
    TURN_STARTED: ("session_id",),
    # Streamed text; ``offset`` is how many characters of the turn's streamed
    # text came before it, so a reader that saw a chunk live can skip it here.
    TURN_PARTIAL: ("text", "offset"),
    # The event's id is the approval's id; ``from_users`` may answer it (and admins).
    TURN_PERMISSION: ("tool", "input", "description", "deadline", "from_users"),
    # ``request`` is the id of the turn.permission event it answers.
    # ``tool`` is the request's; ``updated_input`` (optional) replaces its input.
    TURN_PERMISSION_ANSWERED: ("request", "allow", "scope", "message", "by", "tool"),
    # Exactly one per turn. ``status`` is one of STATUSES.
    TURN_COMPLETED: (
        "status",
        "reply",
        "session_id",
        "exit_code",
        "error",
        "hint",
        "warnings",
        "timed_out",
        "duration_ms",
    ),
    # Someone asked to cancel: ``turn`` is the running turn it stops (0 when
    # none ran), ``dropped`` the ids of the waiting messages it dropped.
    CONVERSATION_CANCEL: ("by", "dropped", "reason"),
    CONVERSATION_RESET: ("by",),
    DELIVERY_POSTED: ("channel", "ids"),
    DELIVERY_EDITED: ("channel", "ids"),
    DELIVERY_FINISHED: ("channel", "ids"),
}

EVENT_TYPES: Final = tuple(EVENT_FIELDS)

#: How a turn ended (``turn.completed``'s ``status``, the conversation's ``last_status``).
STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
STATUS_TIMEOUT: Final = "timeout"
STATUS_CANCELLED: Final = "cancelled"
STATUS_ABANDONED: Final = "abandoned"
STATUSES: Final = (STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_CANCELLED, STATUS_ABANDONED)


# --- identity -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """Where a conversation's turns go: the resolved profile and the folder its
    agent runs in.

    ``profile`` is ``bundled:NAME`` for a bundled profile, else the absolute
    path of the profile's file or folder; ``cwd`` is an absolute folder (""
    only for conversations carried over from a store that did not record it).
    ``name`` is the profile's display name, for labels; it is not part of the
    identity, so two profiles that share a name are two routes.
    """

    profile: str
    cwd: str
    name: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, order=True)
class ConversationKey:
    """Which conversation: (channel, the channel's key for the thread, route)."""

    channel: str
    key: str
    route: Route

    @property
    def label(self) -> str:
        """``channel:key@profile``: for people, not unique (see :class:`Route`)."""
        return f"{self.channel}:{self.key}@{self.route.name or self.route.profile}"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the store knows about one conversation.

    ``turn_count`` is the last turn number handed out; ``last_event`` the
    last event id written; ``first_event`` the first one still kept
    (retention trims older ones); ``consumed`` the id of the last message
    taken into a turn or dropped (messages after it are pending);
    ``running_turn`` the turn taken but not completed (0: none);
    ``reset_epoch`` counts resets, so a turn that started before one does
    not bring its session back.
    """

    id: str
    key: ConversationKey
    session_id: str = ""
    session_name: str = "default"
    turn_count: int = 0
    last_event: int = 0
    first_event: int = 1
    consumed: int = 0
    running_turn: int = 0
    reset_epoch: int = 0
    lease_owner: str = ""
    lease_expires: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    last_status: str = ""

    @property
    def label(self) -> str:
        return self.key.label


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a conversation's log.

    ``id`` increases strictly within a conversation. ``turn`` is the turn the
    event belongs to (0 for messages, resets and cancels that name none).
    ``live`` marks a chunk handed to a subscriber straight from the running
    turn, before it was stored: its ``id`` is the last stored event's id, and
    its text is stored later inside a coalesced ``turn.partial``.
    """

    conversation: str
    id: int
    type: str
    turn: int
    at: float
    data: Mapping[str, Any]
    live: bool = False


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A person's message, as a channel hands it to the store."""

    text: str
    attachments: tuple[Mapping[str, str], ...] = ()
    from_user: str = ""
    #: The platform's id for the message; the same id twice in one
    #: conversation is one message (a redelivery). "" = none.
    platform_id: str = ""
    #: Taken by a bot's handler instead of the agent: written as
    #: ``message.handled``, never pending, not subject to admission.
    handled: bool = False
    #: Who wrote it when not the person: ``handler`` for a prompt a bot's
    #: handler composed for the agent (``Thread.run_agent``); kept in the
    #: event's data only when set.
    via: str = ""


@dataclass(frozen=True, slots=True)
class Load:
    """What an admission rule sees when a message arrives, counted inside the
    store's transaction: this conversation's running turn and pending
    messages, the sender's pending or running messages across all
    conversations, and the store's total of them (those two are 0 for a
    rule that says it does not need them: see ``Admission``)."""

    running: bool
    pending: int
    pending_from_user: int
    user_active: int
    total_active: int


@dataclass(frozen=True, slots=True)
class TranscriptTurn:
    """One completed turn, read back from the log (``sessions show``)."""

    turn: int
    message: str
    attachments: tuple[Mapping[str, str], ...]
    from_users: tuple[str, ...]
    status: str
    reply: str
    error: str | None
    session_id: str
    exit_code: int
    started_at: float
    duration_ms: int
    #: What to do about ``error`` ("" when there is nothing to say).
    hint: str = ""


# --- pairing -----------------------------------------------------------------------------------

#: A pairing's statuses (see :mod:`bridge.store.pairing`).
PAIRING_PENDING: Final = "pending"
PAIRING_APPROVED: Final = "approved"
PAIRING_DENIED: Final = "denied"


@dataclass(frozen=True, slots=True)
class Pairing:
    """A person on a channel asking to be let in, and what an admin decided.

    ``user_id`` is the platform's id of the person, ``name`` how they are
    shown to the admin; ``status`` is pending, approved or denied; a pending
    code can be approved until ``expires_at``.
    """

    code: str
    channel: str
    user_id: str
    name: str
    status: str
    created_at: float
    expires_at: float
    decided_by: str = ""
    decided_at: float = 0.0

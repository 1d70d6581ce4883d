"""The bodies the HTTP API reads and writes.

They validate requests (a misspelt field is an error, not ignored) and make
the OpenAPI document at ``/openapi.json``. Every error, whatever its status,
is an :class:`ErrorBody`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApprovalAnswer",
    "ApprovalOut",
    "AttachmentIn",
    "ConversationIn",
    "ConversationOut",
    "ErrorBody",
    "ErrorDetail",
    "MessageAccepted",
    "MessageIn",
    "PairingDecision",
    "PairingOut",
    "RouteOut",
    "TurnOut",
]

#: The longest message text the API takes (characters); the agent's own limit
#: (the environment, or stdin) is checked when the turn starts.
MAX_TEXT = 1_000_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable name for the kind of error, e.g. `busy`.")
    message: str = Field(description="What went wrong, in plain words.")
    hint: str = Field("", description="What to do about it.")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Facts about it: a cap's limit and count, say."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class RouteOut(BaseModel):
    name: str = Field(description="What to pass as `route` when creating a conversation.")
    title: str
    profile: str = Field(description="The agent profile's display name.")
    default: bool


class ConversationIn(_In):
    route: str | None = Field(None, description="A route's name; the default route when absent.")
    title: str = Field("", max_length=200)


class ConversationOut(BaseModel):
    id: str
    route: str
    title: str
    status: str = Field(description="`running` while a turn runs, else `idle`.")
    session_id: str = Field(description="The agent's own session, resumed by the next turn.")
    turns: int = Field(description="Turns taken so far.")
    last_event: int = Field(description="The id of the last event in its log.")
    last_status: str = Field(description="How the last turn ended (`ok`, `error`, ...).")
    created_at: float
    updated_at: float


class AttachmentIn(_In):
    type: Literal["image", "file", "audio", "video"] = "file"
    url: str = Field(min_length=1, max_length=8192)
    name: str | None = Field(None, max_length=1024)
    mime_type: str | None = Field(None, max_length=255)


class MessageIn(_In):
    text: str = Field("", max_length=MAX_TEXT)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=32)


class MessageAccepted(BaseModel):
    conversation_id: str
    message_id: int = Field(description="The id of the `message` event in the log.")
    event_id: int = Field(description="The same id: read the events after it to follow the turn.")
    duplicate: bool = Field(
        description="True when this Idempotency-Key was sent before; nothing new was written."
    )


class TurnOut(BaseModel):
    turn: int
    message: str
    attachments: list[dict[str, str]]
    from_users: list[str]
    status: str
    reply: str
    error: str | None
    hint: str
    session_id: str
    exit_code: int
    started_at: float
    duration_ms: int


class ApprovalAnswer(_In):
    decision: Literal["allow", "deny"]
    scope: Literal["once", "session"] = Field(
        "once", description="`session`: allow this tool for the rest of the conversation."
    )
    message: str = Field("", max_length=10_000)
    updated_input: dict[str, Any] | None = Field(
        None, description="With `allow`: the tool's input to use instead of the one asked for."
    )


class ApprovalOut(BaseModel):
    approval_id: str
    answered: bool = Field(
        description="False when it had been answered already, or its turn had ended."
    )
    event_id: int | None = Field(None, description="The `turn.permission_answered` event.")


class PairingOut(BaseModel):
    code: str
    channel: str = Field(description="The chat channel, e.g. `telegram`.")
    user_id: str = Field(description="The person's id on that channel.")
    name: str = Field(description="How the channel showed them.")
    status: str = Field(description="`pending` (waiting for an admin) or `approved`.")
    expires_at: float = Field(description="Until when a pending code can be approved.")
    decided_by: str


class PairingDecision(_In):
    decision: Literal["approve", "deny"]

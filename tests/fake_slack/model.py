"""What a test hands to the fake Slack and gets back from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """A member of the workspace (or the bot user itself)."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class Channel:
    """A public channel (``C...``), a private one (``G...``) or a DM
    (``D...``, ``person`` is the member the bot talks to)."""

    id: str
    name: str
    kind: str = "channel"  # channel | group | im
    person: User | None = None

    @property
    def is_im(self) -> bool:
        return self.kind == "im"


@dataclass(slots=True)
class Message:
    """A message as people see it now: its text (``text`` or the streamed
    ``markdown_text``), its Block Kit blocks, where it sits (``thread_ts``),
    and how it got there."""

    channel: str
    ts: str
    user: str
    text: str = ""
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    bot: bool = False
    edits: int = 0
    deleted: bool = False
    #: A stream is open (chat.startStream, not yet stopped or expired).
    streaming: bool = False
    stream_started: float = 0.0
    appends: int = 0
    #: Set for a message posted by a person: its mention of the bot.
    client_msg_id: str = ""

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, value) of every button under the message."""
        out = []
        for block in self.blocks:
            for element in block.get("elements", ()) if block.get("type") == "actions" else ():
                if element.get("type") == "button":
                    out.append((element["text"]["text"], element.get("value", "")))
        return out

    @property
    def shown(self) -> str:
        """The text a person reads: the text, else the blocks' section text."""
        if self.text:
            return self.text
        parts = [
            b["text"]["text"] for b in self.blocks if b.get("type") == "section" and b.get("text")
        ]
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API call the fake answered: the method, its parameters (the
    token left out), and whether it was ``ok`` (else its ``error``)."""

    method: str
    params: dict[str, Any]
    ok: bool
    error: str = ""
    status: int = 200


@dataclass(slots=True)
class Envelope:
    """One Socket Mode envelope (or Events API delivery) and its fate."""

    envelope_id: str
    type: str  # events_api | interactive | slash_commands
    payload: dict[str, Any]
    retry_attempt: int = 0
    retry_reason: str = ""
    sent: int = 0
    sent_at: float = 0.0
    acked: bool = False
    ack: dict[str, Any] | None = None
    given_up: bool = False

    @property
    def event_id(self) -> str:
        return str(self.payload.get("event_id", ""))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.type != "events_api",
        }
        if self.type == "events_api":
            out["retry_attempt"] = self.retry_attempt
            out["retry_reason"] = self.retry_reason
        return out


@dataclass(frozen=True, slots=True)
class HookCall:
    """One Events API (HTTP) delivery: the status the app answered (0: none)."""

    envelope_id: str
    status: int
    retry_num: int

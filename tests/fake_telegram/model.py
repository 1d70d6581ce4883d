"""What a test hands to the fake and gets back from it: frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """A Telegram account: a person, or the bot itself."""

    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False
    language_code: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            out["username"] = self.username
        if self.language_code and not self.is_bot:
            out["language_code"] = self.language_code
        return out


@dataclass(frozen=True, slots=True)
class Chat:
    """A private chat (``id`` is the person's id), a basic ``group`` or a
    ``supergroup`` (ids ``-100...``), which may be a forum with topics."""

    id: int
    type: str
    title: str | None = None
    person: User | None = None
    is_forum: bool = False

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.person is not None:
            out["first_name"] = self.person.first_name
            if self.person.username:
                out["username"] = self.person.username
        if self.title is not None:
            out["title"] = self.title
        if self.is_forum:
            out["is_forum"] = True
        return out


@dataclass(frozen=True, slots=True)
class Button:
    """One inline keyboard button: its label and what pressing it does."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """A message as the people in the chat see it now (edits applied)."""

    message_id: int
    sender: User
    text: str
    """The visible text (tags of ``parse_mode="HTML"`` removed), or the caption."""
    buttons: tuple[tuple[Button, ...], ...]
    thread_id: int | None
    reply_to: int | None
    edits: int
    raw: dict[str, Any]
    """The message object as the Bot API would return it now."""

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot

    @property
    def callback_data(self) -> list[str]:
        return [b.callback_data for row in self.buttons for b in row if b.callback_data]


@dataclass(frozen=True, slots=True)
class Draft:
    """One ``sendMessageDraft`` state of a private chat."""

    draft_id: int
    text: str
    thread_id: int | None
    at: float


@dataclass(frozen=True, slots=True)
class Request:
    """One call the client made, as the fake understood it."""

    method: str
    """The method name as sent (Telegram matches them case-insensitively)."""
    params: dict[str, Any]
    status: int
    """The HTTP status of the answer: 200, or the ``error_code``."""
    encoding: str
    """How parameters travelled: "query", "json", "form" or "multipart"."""
    at: float
    uploads: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """One POST of an update to the bot's webhook, and how it was answered."""

    update_id: int
    url: str
    status: int | None
    """The HTTP status of the answer; None when there was none (refused, timed out)."""
    error: str
    """Telegram's words for a failure, as getWebhookInfo's last_error_message; "" on 2xx."""
    secret_token: str | None
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """An ``answerCallbackQuery`` call, matched to the press it answers."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True, slots=True)
class ChatAction:
    chat_id: int
    action: str
    thread_id: int | None
    at: float


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's published flood limits, enforced when a test turns them on
    (``FakeTelegram(limits=Limits())`` or ``fake.limits = Limits()``).

    Each is "at most N accepted calls in a window of W seconds"; the call
    over it gets 429 with ``retry_after`` = seconds until the window frees up.
    """

    per_chat: tuple[int, float] = (1, 1.0)
    """About one message per second in a chat (short bursts are tolerated by
    the real service; the fake is strict, which is what a budget test wants)."""
    per_group: tuple[int, float] = (20, 60.0)
    """Twenty messages per minute in a group or supergroup."""
    overall: tuple[int, float] = (30, 1.0)
    """About thirty messages per second across all chats."""
    methods: frozenset[str] = frozenset(
        {
            "sendmessage",
            "sendphoto",
            "senddocument",
            "editmessagetext",
            "editmessagereplymarkup",
            "editmessagecaption",
        }
    )
    """Lower-case names of the methods that count; edits count like sends.
    Add "sendmessagedraft" to hold drafts to the same budget."""

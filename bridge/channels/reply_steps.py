"""What a reply plan is given and what it answers: a platform's
:class:`Limits` (and the presets), the bot-wide :class:`Budget`, the steps
a plan hands out (:class:`Post`, :class:`Edit`, :class:`Draft`,
:class:`Delete`, :class:`Wait`, :class:`GiveUp`, :class:`Done`) and the
results a worker reports back (:class:`Ok`, :class:`RateLimited`,
:class:`NotModified`, :class:`Failed`). Plain values, no I/O; the plan
itself is :mod:`bridge.channels.reply_plan`, which re-exports all of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from .reply_split import MIN_LENGTH

__all__ = [
    "BLANK",
    "DISCORD",
    "SLACK",
    "TELEGRAM",
    "Action",
    "Budget",
    "Delete",
    "Done",
    "Draft",
    "Edit",
    "Failed",
    "GiveUp",
    "Limits",
    "MessageId",
    "NotModified",
    "Ok",
    "Post",
    "Posted",
    "RateLimited",
    "Result",
    "Step",
    "Wait",
]

#: A message's id as its platform gives it (Telegram and Discord: numbers,
#: Slack: a timestamp string).
MessageId: TypeAlias = int | str

#: What a message left over by a shorter final text holds on a platform that
#: cannot delete messages (platforms refuse empty ones).
BLANK = "\u2026"

#: Slack between a token bucket's arithmetic and the clock's: a token that is
#: 0.999999999 there is there.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Limits:
    """What a platform allows, and how a reply is paced on it.

    ``max_length``: characters in one message (UTF-16 code units where
    ``utf16``). ``edit_interval``: seconds between two writes to one message
    (or one draft). ``send_interval``: seconds between two sends in one
    chat, when the plan makes the chat's budget itself (0: no limit).
    ``can_edit``, ``can_delete``, ``drafts``: what the platform can do.
    ``first_chars``/``first_delay``: when the first message of a reply goes
    (whichever comes first). ``max_attempts``, ``backoff``, ``max_backoff``:
    retries of a failed action (see the module docstring).
    """

    max_length: int
    edit_interval: float = 1.0
    send_interval: float = 1.0
    can_edit: bool = True
    can_delete: bool = True
    drafts: bool = False
    utf16: bool = False
    first_chars: int = 40
    first_delay: float = 1.0
    max_attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.max_length < MIN_LENGTH:
            raise ValueError(f"max_length must be at least {MIN_LENGTH}, not {self.max_length}")
        for name in ("edit_interval", "send_interval", "first_delay", "backoff"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value}")
        if not self.backoff <= self.max_backoff < math.inf:
            raise ValueError(f"max_backoff must be at least backoff, not {self.max_backoff}")
        if self.first_chars < 0 or self.max_attempts < 1:
            raise ValueError("first_chars must be >= 0 and max_attempts >= 1")


#: Telegram: 4,096 characters, counted in UTF-16 code units (the count its
#: entities use; never less than the code points), about one message a
#: second per chat (edits count; use ``send_interval=3`` in groups, 20 a
#: minute). Private chats have drafts: ``replace(TELEGRAM, drafts=True)``.
#: The bot-wide budget is about 30 a second: ``Budget(30, burst=30)``.
TELEGRAM = Limits(max_length=4096, utf16=True)
#: Slack's ``chat.update`` fallback: 4,000 characters; ``chat.update`` is a
#: tier-3 method (about 50 a minute), ``chat.postMessage`` about one a second
#: per channel.
SLACK = Limits(max_length=4000, edit_interval=1.2)
#: Discord: 2,000 characters, about 5 messages per 5 seconds per channel.
DISCORD = Limits(max_length=2000)


class Budget:
    """A token bucket: ``rate`` sends a second, up to ``burst`` at once.

    Pure like the plan: it is told the time, and answers when a send may go.
    One budget may be shared by many plans (the bot-wide limit) or be one
    chat's. Time is taken to move forward; an earlier ``now`` than one seen
    before counts as that one.
    """

    __slots__ = ("_held", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if not 0 < rate < math.inf or not 1 <= burst < math.inf:
            raise ValueError(f"a budget needs rate > 0 and burst >= 1, not {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None
        self._held = -math.inf

    @classmethod
    def interval(cls, seconds: float) -> Budget:
        """One send per ``seconds``."""
        return cls(1 / seconds, 1.0)

    def _tokens_at(self, now: float) -> float:
        if self._stamp is None:
            return self._tokens
        return min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)

    def ready_at(self, now: float) -> float:
        """The earliest time, ``now`` or later, a send may go (if no one else sends first)."""
        tokens = self._tokens_at(now)
        when = now
        if tokens < 1 - _EPSILON and self._stamp is not None:
            when = max(now, self._stamp) + (1 - tokens) / self.rate
        return max(when, self._held)

    def take(self, now: float) -> None:
        """Spend one send at ``now``; raises ValueError if it may not go yet."""
        if self.ready_at(now) > now:
            raise ValueError(f"no send may go at {now} before {self.ready_at(now)}")
        self._tokens = self._tokens_at(now) - 1
        self._stamp = now if self._stamp is None else max(now, self._stamp)

    def hold(self, until: float) -> None:
        """No send before ``until`` (a platform's retry-after)."""
        self._held = max(self._held, until)


# --- what the plan asks for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """Post a new message holding ``text``; it becomes slot ``slot`` of the reply."""

    slot: int
    text: str


@dataclass(frozen=True, slots=True)
class Edit:
    """Make message ``message_id`` (slot ``slot``) hold ``text``."""

    slot: int
    message_id: MessageId
    text: str


@dataclass(frozen=True, slots=True)
class Draft:
    """Show ``text`` as the draft (ephemeral preview) of slot ``slot``. The
    worker picks the platform's draft id (non-zero, the same for one slot of
    one reply, so updates animate)."""

    slot: int
    text: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete message ``message_id`` (slot ``slot``), left over by a shorter final text."""

    slot: int
    message_id: MessageId


Action: TypeAlias = Post | Edit | Draft | Delete


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before ``until``; None: not before more text comes."""

    until: float | None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """``action`` failed ``attempts`` times, the last with ``reason``, and is
    dropped (``attempts`` is 0 for an action the platform cannot do at all)."""

    action: Action
    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is over: ``complete`` when its messages hold exactly the final text."""

    complete: bool


Step: TypeAlias = Post | Edit | Draft | Delete | Wait | GiveUp | Done


# --- what the platform answered -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """The action was carried out; for a :class:`Post`, ``message_id`` is the new message's."""

    message_id: MessageId | None = None


@dataclass(frozen=True, slots=True)
class RateLimited:
    """The platform said to wait ``retry_after`` seconds; nothing was done."""

    retry_after: float


@dataclass(frozen=True, slots=True)
class NotModified:
    """The platform refused an edit that changes nothing: the message holds the text."""


@dataclass(frozen=True, slots=True)
class Failed:
    """Anything else that went wrong; nothing was done (as far as the worker knows)."""

    reason: str = ""


Result: TypeAlias = Ok | RateLimited | NotModified | Failed


class Posted(NamedTuple):
    """A message the reply posted: its id and the text it holds (what the log records)."""

    message_id: MessageId
    text: str

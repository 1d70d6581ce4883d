"""Conversations and the agent sessions they map to.

A *conversation* is one chat thread on one channel, talking to one profile:
``ConversationKey(channel, key, profile)``. The bridge remembers, per
conversation, the session id its agent returned last, so the next turn resumes
it, plus a turn count, a status, a JSON state value and a transcript.

:class:`SessionStore` is the interface; :class:`MemoryStore` keeps everything
in memory (tests, throwaway runs) and :class:`~bridge.store.sqlite.SQLiteStore`
is the embedded default. The session rules (what a turn's outcome does to the
stored id) are pure functions here, so every store applies them the same way.
"""

from __future__ import annotations

import abc
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Self

from pydantic import BaseModel, ValidationError

from .errors import StateError

# --- records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ConversationKey:
    """Which conversation: the channel (``terminal``, ``batch``, ``http``, ...),
    the channel's own id for the thread, and the profile's name."""

    channel: str
    key: str
    profile: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.key}@{self.profile}"


#: ``last_status`` values, from a turn's result.
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
STATUS_CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the store knows about one conversation."""

    key: ConversationKey
    session_id: str = ""
    session_name: str = "default"
    turn_count: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    last_status: str = ""


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One turn, as kept in the transcript."""

    turn: int
    message: str
    reply: str = ""
    error: str | None = None
    session_id: str = ""
    exit_code: int = 0
    attachments: list[dict[str, str]] = field(default_factory=list)
    from_user: str = ""
    started_at: float = 0.0
    duration_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "message": self.message,
            "reply": self.reply,
            "error": self.error,
            "session_id": self.session_id,
            "exit_code": self.exit_code,
            "attachments": list(self.attachments),
            "from_user": self.from_user,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
        }


#: How many turns a conversation's transcript keeps by default: enough to look
#: back over a long working session, while a chat that runs for months still
#: takes bounded space.
DEFAULT_TRANSCRIPT_LIMIT = 200


def check_transcript_limit(limit: int) -> int:
    """A store's retention limit: a whole number of turns, 0 keeping none."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"transcript_limit must be a whole number >= 0, not {limit!r}")
    return limit


# --- session rules -------------------------------------------------------------------


def status_of(exit_code: int, timed_out: bool, cancelled: bool) -> str:
    if timed_out:
        return STATUS_TIMEOUT
    if cancelled:
        return STATUS_CANCELLED
    return STATUS_OK if exit_code == 0 else STATUS_ERROR


def session_after_turn(previous: str, captured: str | None) -> str:
    """The session id to keep after a turn: the captured one, even when the
    turn failed; the previous one when the turn captured none."""
    return captured if captured else previous


def session_to_resume(conv: Conversation | None, now: float, idle_secs: float | None) -> str:
    """The session id the next turn should resume ("" = start fresh): none for
    a new or reset conversation, none when it has been idle for longer than
    ``idle_secs``."""
    if conv is None or not conv.session_id:
        return ""
    if idle_secs is not None and now - conv.updated_at > idle_secs:
        return ""
    return conv.session_id


def check_state(value: Any, model: type[BaseModel] | None = None) -> Any:
    """Validate a state value before anything is written; returns it as JSON data.

    The value comes back the way a JSON round trip leaves it (tuples become
    lists, number keys become strings), so every store hands back the same
    thing whether it keeps the value in memory or in a file. NaN and infinity
    are refused: they are not JSON, and other readers of the store would choke.
    """
    if model is not None:
        try:
            value = model.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "value"
            raise StateError(
                f"invalid state for {model.__name__}: {where}: {first['msg']}",
                hint="nothing was written",
            ) from None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StateError(f"state must be JSON data: {exc}", hint="nothing was written") from None
    return json.loads(text)


# --- the interface ------------------------------------------------------------------------


class SessionStore(abc.ABC):
    """Where conversations, their state and transcripts live.

    Every method is async so a store may do I/O off the event loop (SQLite in
    a worker thread, later a server). Every write is atomic: a crash leaves
    the store as before or after the write, never between.
    """

    @abc.abstractmethod
    async def get(self, key: ConversationKey) -> Conversation | None:
        """The conversation, or None when the store has never seen it."""

    @abc.abstractmethod
    async def record_turn(
        self,
        key: ConversationKey,
        entry: TranscriptEntry,
        *,
        captured_session: str | None,
        status: str,
        session_name: str = "default",
    ) -> Conversation:
        """Store a finished turn in one transaction: the session id by
        :func:`session_after_turn`, the turn count, times, status and the
        transcript entry (pruned to the retention limit)."""

    @abc.abstractmethod
    async def reset(self, key: ConversationKey) -> None:
        """Forget the agent session id: the next turn starts a fresh session.
        The transcript and state are kept."""

    @abc.abstractmethod
    async def delete(self, key: ConversationKey) -> bool:
        """Remove the conversation with its state and transcript."""

    @abc.abstractmethod
    async def conversations(
        self, *, channel: str | None = None, profile: str | None = None
    ) -> list[Conversation]:
        """Conversations, most recently updated first; equal times in key order
        (channel, key, profile), so a listing is the same in every store."""

    @abc.abstractmethod
    async def transcript(
        self, key: ConversationKey, limit: int | None = None
    ) -> list[TranscriptEntry]:
        """The conversation's turns, oldest first; the last ``limit`` if given
        (``limit=0`` gives none)."""

    @abc.abstractmethod
    async def get_state(self, key: ConversationKey) -> Any:
        """The conversation's JSON state value (None when unset)."""

    @abc.abstractmethod
    async def set_state(
        self, key: ConversationKey, value: Any, model: type[BaseModel] | None = None
    ) -> None:
        """Set the JSON state; with ``model`` it is validated first and an
        invalid value raises :class:`StateError` before anything is written."""

    @abc.abstractmethod
    async def prune(self, older_than: float) -> int:
        """Delete conversations not updated since ``older_than`` (Unix time);
        returns how many."""

    async def close(self) -> None:  # noqa: B027 - optional for a store
        """Release the store's resources."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- in memory ----------------------------------------------------------------------------


class MemoryStore(SessionStore):
    """A store that lives in memory: for tests and throwaway runs."""

    def __init__(
        self,
        *,
        transcript_limit: int = DEFAULT_TRANSCRIPT_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transcript_limit = check_transcript_limit(transcript_limit)
        self._clock = clock
        self._convs: dict[ConversationKey, Conversation] = {}
        self._turns: dict[ConversationKey, list[TranscriptEntry]] = {}
        self._state: dict[ConversationKey, Any] = {}

    async def get(self, key: ConversationKey) -> Conversation | None:
        return self._convs.get(key)

    async def record_turn(
        self,
        key: ConversationKey,
        entry: TranscriptEntry,
        *,
        captured_session: str | None,
        status: str,
        session_name: str = "default",
    ) -> Conversation:
        now = self._clock()
        old = self._convs.get(key) or Conversation(key, created_at=now)
        conv = replace(
            old,
            session_id=session_after_turn(old.session_id, captured_session),
            session_name=session_name,
            turn_count=old.turn_count + 1,
            updated_at=now,
            last_status=status,
        )
        self._convs[key] = conv
        turns = self._turns.setdefault(key, [])
        # A copy of the attachment list: the caller's list may change later,
        # and a file-backed store would not see that either.
        turns.append(replace(entry, attachments=[dict(a) for a in entry.attachments]))
        del turns[: max(0, len(turns) - self.transcript_limit)]
        return conv

    async def reset(self, key: ConversationKey) -> None:
        old = self._convs.get(key)
        if old is not None:
            self._convs[key] = replace(old, session_id="", updated_at=self._clock())

    async def delete(self, key: ConversationKey) -> bool:
        self._turns.pop(key, None)
        self._state.pop(key, None)
        return self._convs.pop(key, None) is not None

    async def conversations(
        self, *, channel: str | None = None, profile: str | None = None
    ) -> list[Conversation]:
        convs = [
            c
            for c in self._convs.values()
            if (channel is None or c.key.channel == channel)
            and (profile is None or c.key.profile == profile)
        ]
        return sorted(convs, key=lambda c: (-c.updated_at, c.key))

    async def transcript(
        self, key: ConversationKey, limit: int | None = None
    ) -> list[TranscriptEntry]:
        turns = self._turns.get(key, [])
        if limit is not None:
            turns = turns[max(0, len(turns) - max(limit, 0)) :]
        return list(turns)

    async def get_state(self, key: ConversationKey) -> Any:
        return copy.deepcopy(self._state.get(key))

    async def set_state(
        self, key: ConversationKey, value: Any, model: type[BaseModel] | None = None
    ) -> None:
        value = check_state(value, model)  # a fresh object: no copy needed
        if key not in self._convs:
            now = self._clock()
            self._convs[key] = Conversation(key, created_at=now, updated_at=now)
        self._state[key] = value

    async def prune(self, older_than: float) -> int:
        old = [k for k, c in self._convs.items() if c.updated_at < older_than]
        for k in old:
            await self.delete(k)
        return len(old)

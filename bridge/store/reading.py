"""Reading the log back for people: naming a conversation, and its transcript.

Pure functions over records, used by every store the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from .records import (
    TURN_COMPLETED,
    TURN_QUEUED,
    TURN_STARTED,
    Conversation,
    Event,
    TranscriptTurn,
)

__all__ = ["MIN_ID_PREFIX", "matching", "transcript_of"]


#: The shortest id prefix :func:`matching` accepts: ids are ``c`` and 20 hex
#: digits, so 6 characters (five hex digits, a million values) pick one
#: conversation among thousands almost always, and are short enough to type.
MIN_ID_PREFIX = 6


def matching(ref: str, conversations: Sequence[Conversation]) -> list[Conversation]:
    """The conversations ``ref`` names, for people typing it: an exact id;
    else every conversation whose label (``channel:key@profile``) equals it,
    compared whole, never parsed, since keys and profile names may hold
    ``:`` and ``@``; else every id starting with ``ref`` when it has at least
    :data:`MIN_ID_PREFIX` characters. More than one match means the reference
    is ambiguous; the caller says so and lists them."""
    exact = [c for c in conversations if c.id == ref]
    if exact:
        return exact
    labelled = [c for c in conversations if c.label == ref]
    if labelled or len(ref) < MIN_ID_PREFIX:
        return labelled
    return [c for c in conversations if c.id.startswith(ref)]


# --- the lease holder's rules --------------------------------------------------------------------


def transcript_of(events: Sequence[Event]) -> list[TranscriptTurn]:
    """The completed turns among ``events`` (one conversation's, oldest first),
    built from each turn's ``turn.queued``, ``turn.started`` and
    ``turn.completed``. A turn whose ``turn.queued`` was trimmed away is left out."""
    queued: dict[int, Event] = {}
    started: dict[int, Event] = {}
    out: list[TranscriptTurn] = []
    for event in events:
        if event.type == TURN_QUEUED:
            queued[event.turn] = event
        elif event.type == TURN_STARTED:
            started[event.turn] = event
        elif event.type == TURN_COMPLETED and event.turn in queued:
            q = queued.pop(event.turn).data
            s = started.pop(event.turn, None)
            d = event.data
            out.append(
                TranscriptTurn(
                    turn=event.turn,
                    message=str(q.get("text", "")),
                    attachments=tuple(q.get("attachments", ())),
                    from_users=tuple(q.get("from_users", ())),
                    status=str(d.get("status", "")),
                    reply=str(d.get("reply", "")),
                    error=d.get("error"),
                    session_id=str(d.get("session_id", "")),
                    exit_code=int(d.get("exit_code", 0)),
                    started_at=s.at if s is not None else event.at,
                    duration_ms=int(d.get("duration_ms", 0)),
                    hint=str(d.get("hint") or ""),
                )
            )
    return out

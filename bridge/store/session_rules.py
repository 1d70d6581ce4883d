"""The session rules: which agent session a turn resumes, and how a turn's
outcome is named. Pure functions over the log's records.

What a turn's outcome does to the stored session id (kept when captured, even
from a failed turn; not brought back by a turn that started before a reset)
is :func:`bridge.store.rules.complete`.
"""

from __future__ import annotations

from .records import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    Conversation,
)

__all__ = ["session_to_resume", "status_of"]


def status_of(exit_code: int, timed_out: bool, cancelled: bool) -> str:
    """``turn.completed``'s status for a turn's result."""
    if timed_out:
        return STATUS_TIMEOUT
    if cancelled:
        return STATUS_CANCELLED
    return STATUS_OK if exit_code == 0 else STATUS_ERROR


def session_to_resume(
    conv: Conversation | None, now: float, idle_secs: float | None, *, last_active: float
) -> str:
    """The session id the next turn resumes ("" = start fresh): none for a new
    or reset conversation, none when it has been idle (no turn, no reset) for
    longer than ``idle_secs`` since ``last_active``."""
    if conv is None or not conv.session_id:
        return ""
    if idle_secs is not None and now - last_active > idle_secs:
        return ""
    return conv.session_id

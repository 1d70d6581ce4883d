"""Discord's answers and requests in the bridge's terms, for
:mod:`bridge.channels.discord_platform`: errors as platform errors, buttons as
action rows, and discord.py's loggers kept quiet."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import discord

from .errors import PlatformError, RateLimited, Unreachable
from .platform import Button

__all__ = ["ROW", "ROWS", "command_name", "converted", "fit", "quiet_loggers", "rows", "said"]

#: Buttons per action row, and rows per message (Discord's limits).
ROW, ROWS = 5, 5
#: Characters in a button's label.
MAX_LABEL = 80
#: Characters in a message's content.
MAX_CONTENT = 2000


def fit(text: str) -> str:
    """``text`` cut to what one message holds. Replies are split by the
    reply plan before they get here; this keeps the bridge's own notes (a
    long /help, an approval card) from being refused whole."""
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "\u2026"


def command_name(name: str) -> bool:
    """Whether Discord takes ``name`` for a slash command (1-32 lower-case
    letters, digits, ``-`` or ``_``)."""
    return 1 <= len(name) <= 32 and all(c.isdigit() or c in "-_" or c.islower() for c in name)


def rows(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """Buttons as action rows of up to five (none: an empty list removes them)."""
    items = [
        {
            "type": 2,
            "style": 4 if b.data.endswith(":deny") else 1,
            "label": b.label[:MAX_LABEL],
            "custom_id": b.data,
        }
        for b in buttons[: ROW * ROWS]
    ]
    return [{"type": 1, "components": items[i : i + ROW]} for i in range(0, len(items), ROW)]


class _OneLine(logging.Filter):
    """discord.py logs a reconnect after a network error with its traceback;
    the bridge's log says what happened in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def quiet_loggers() -> None:
    """discord.py logs no token, but its DEBUG logs hold every gateway
    payload; keep them out of the bridge's log, and its tracebacks too."""
    logger = logging.getLogger("discord")
    logger.setLevel(logging.INFO)
    for name in ("discord.client", "discord.gateway", "discord.http"):
        child = logging.getLogger(name)
        if not any(isinstance(f, _OneLine) for f in child.filters):
            child.addFilter(_OneLine())


def said(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"{exc.status} {exc.text or exc.response.reason}".strip()
    return str(exc) or type(exc).__name__


def _retry_after(exc: discord.HTTPException) -> float:
    try:
        return max(0.0, float(exc.response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def converted(exc: BaseException) -> PlatformError:
    """A discord.py or network error as the bridge's platform error."""
    if isinstance(exc, discord.RateLimited):
        return RateLimited(f"discord: {exc}", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        return RateLimited("discord: 429 Too Many Requests", retry_after=_retry_after(exc))
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return Unreachable(f"discord: {said(exc)}")
    if isinstance(exc, discord.HTTPException | aiohttp.ClientError | OSError):
        return PlatformError(f"discord: {said(exc)}")
    raise exc

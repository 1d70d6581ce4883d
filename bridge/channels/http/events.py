"""A conversation's log as Server-Sent Events.

Each event of the log becomes one SSE message::

    id: 42            (the reader's position: send it back as Last-Event-ID)
    event: turn.completed
    data: {"conversation": "c…", "id": 42, "type": "turn.completed", "turn": 3, …}

Streamed text that is not stored yet arrives as ``turn.partial`` with
``"live": true`` and an id like ``41.3.1200`` (event 41, turn 3, 1,200
characters seen), so a client that reconnects with it gets the rest of the
text and nothing twice, whether the rest is still in memory or only in the
store. Comments (``: keep-alive``) go out when nothing happened for a while,
so proxies do not close an idle stream. The stream ends when the server
shuts down; with ``turn`` it ends after that turn's ``turn.completed``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio

from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.hub import Cursor
from bridge.store.records import TURN_COMPLETED, TURN_PERMISSION, Event

__all__ = ["DEFAULT_HEARTBEAT_SECS", "RETRY_MS", "approval_id", "event_json", "stream"]

#: Seconds without an event before a keep-alive comment goes out.
DEFAULT_HEARTBEAT_SECS = 15.0
#: How long a browser's EventSource waits before it reconnects.
RETRY_MS = 1000


def approval_id(conversation_id: str, request_event: int) -> str:
    """The id an approval is answered by: its conversation and its event."""
    return f"{conversation_id}.{request_event}"


def event_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "conversation": event.conversation,
        "id": event.id,
        "type": event.type,
        "turn": event.turn,
        "at": event.at,
        "live": event.live,
        "data": event.data,
    }
    if event.type == TURN_PERMISSION:
        out["approval_id"] = approval_id(event.conversation, event.id)
    return out


def _message(event: Event, position: Cursor) -> bytes:
    data = json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {position}\nevent: {event.type}\ndata: {data}\n\n".encode()


async def stream(
    dispatcher: Dispatcher,
    conversation_id: str,
    after: Cursor,
    *,
    turn: int | None = None,
    heartbeat_secs: float = DEFAULT_HEARTBEAT_SECS,
) -> AsyncIterator[bytes]:
    """The SSE bytes of the conversation's events after ``after``."""
    async with dispatcher.subscribe(conversation_id, after) as sub:
        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
        events = aiter(sub)
        while True:
            event: Event | None = None
            with anyio.move_on_after(heartbeat_secs):
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
            if event is None:
                yield b": keep-alive\n\n"
                continue
            if turn is not None and event.turn != turn:
                continue
            yield _message(event, sub.cursor)
            if turn is not None and event.type == TURN_COMPLETED:
                return

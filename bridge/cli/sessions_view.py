"""How ``agentproc sessions`` shows conversations: table cells, times,
statuses and the JSON objects of ``--json``. Text that people or agents wrote
is shown with its control characters escaped, so nothing in the log can send
escape sequences to a terminal."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bridge.store.records import Conversation

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cell(text: str) -> str:
    """``text`` for one table cell: control characters (a newline in a key)
    written as escapes, so each conversation stays on its line."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def text(text: str) -> str:
    """Text people or agents wrote, for the terminal: line breaks and tabs
    kept, other control characters (escape sequences) written as escapes."""
    return "\n".join(cell(line.replace("\t", "    ")) for line in text.split("\n"))


def table(rows: Sequence[tuple[str, ...]], head: tuple[str, ...] | None = None) -> list[str]:
    cells = [tuple(cell(c) for c in row) for row in [*([head] if head else []), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def ago(ts: float, now: float) -> str:
    """How long ago ``ts`` was, roughly: 40s, 5m, 3h, 12d."""
    age = max(now - ts, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{int(age // size)}{unit}"
    return f"{int(age)}s"


def cwd(conv: Conversation) -> str:
    """The route's folder; "?" for a conversation carried over from the
    first release, which did not record it."""
    return conv.key.route.cwd or "?"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def is_live(conv: Conversation) -> bool:
    """Whether the process running the conversation's turn still holds it."""
    from bridge.store.owners import lease_is_live

    return lease_is_live(conv, time.time())


def status(conv: Conversation) -> str:
    """The LAST column: a running turn, else how the last one ended. A turn
    whose process is gone shows as abandoned, which is what it will be
    recorded as when the conversation is next used."""
    from bridge.store.records import STATUS_ABANDONED

    if conv.running_turn:
        return "running" if is_live(conv) else STATUS_ABANDONED
    return conv.last_status or "-"


def conversation_dict(conv: Conversation) -> dict[str, Any]:
    """A conversation as ``list --json`` and ``show --json`` print it (stable keys)."""
    route = conv.key.route
    return {
        "id": conv.id,
        "label": conv.label,
        "channel": conv.key.channel,
        "key": conv.key.key,
        "profile": route.name or route.profile,
        "profile_ref": route.profile,
        "cwd": route.cwd,
        "session_id": conv.session_id,
        "session_name": conv.session_name,
        "turn_count": conv.turn_count,
        "last_status": conv.last_status,
        "running_turn": conv.running_turn,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
    }


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))

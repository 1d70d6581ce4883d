"""Discord's conversations as thread keys, and what the log knows of them.

A conversation is a direct message channel, a thread, or (with
``threads: false``) a guild text channel answered in place. Its key names
the channel the bridge writes to, and, for a thread, the channel it hangs
off, so the thread can be opened when the bridge first writes there:

================  ==========================  =================================
``dm/CHANNEL``    a direct message channel    every message is for the bot
``PARENT/ID``     a thread (or one to open    a mention in PARENT started it;
                  from message ID in PARENT)  the thread's id is that message's
``CHANNEL``       a guild text channel        answered in place
================  ==========================  =================================

Discord ids are snowflakes: they grow with time, so "the newest message the
log has" of a conversation is the largest platform id of its messages.
Nothing here talks to Discord.
"""

from __future__ import annotations

import re

from bridge.store.base import Store
from bridge.store.records import MESSAGE

__all__ = ["DM_PREFIX", "dm_key", "is_dm", "last_seen", "strip_mentions", "target", "thread_key"]

DM_PREFIX = "dm/"

#: How a message mentions a user in its raw text (``<@ID>``, or ``<@!ID>``
#: for a nickname mention, an older form still sent by some clients).
_MENTION = re.compile(r"<@!?(\d+)>")


def dm_key(channel_id: int) -> str:
    return f"{DM_PREFIX}{channel_id}"


def thread_key(parent_id: int, thread_id: int) -> str:
    return f"{parent_id}/{thread_id}"


def is_dm(key: str) -> bool:
    return key.startswith(DM_PREFIX)


def target(key: str) -> int:
    """The channel a conversation's messages are written to."""
    return int(key.rpartition("/")[2])


def parent(key: str) -> int | None:
    """The channel a thread hangs off (None: not a thread)."""
    if is_dm(key) or "/" not in key:
        return None
    return int(key.partition("/")[0])


def strip_mentions(text: str, bot_id: int) -> str:
    """``text`` without its mentions of the bot (an agent needs no ``<@ID>``)."""
    kept = _MENTION.sub(lambda m: "" if int(m.group(1)) == bot_id else m.group(0), text)
    return re.sub(r"[ \t]{2,}", " ", kept).strip()


async def last_seen(store: Store, channel: str = "discord") -> dict[str, int]:
    """Each conversation of the channel, with the id of the newest message
    from Discord its log holds (0: none): where reading the channel's
    history starts after a restart."""
    out: dict[str, int] = {}
    for conv in await store.conversations(channel=channel):
        newest, after = 0, 0
        while True:
            events = await store.read(conv.id, after, 1000)
            if not events:
                break
            for event in events:
                pid = str(event.data.get("platform_id") or "")
                if event.type == MESSAGE and pid.isdigit():
                    newest = max(newest, int(pid))
            after = events[-1].id
        out[conv.key.key] = newest
    return out

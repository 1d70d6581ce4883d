"""A fake Discord for tests: the real REST and gateway wire on loopback.

Start it, point discord.py at it, play the people, then look::

    with FakeDiscord(token="MTAx.fake.token") as dc:
        # discord.http.Route.BASE = f"{dc.api_base}/v10"; the gateway URL
        # comes from GET /gateway/bot (discord.py: get_bot_gateway()).
        team = dc.guild("Team")
        general = dc.text_channel(team, "general")
        ann = dc.user("ann")
        dc.mention(general, ann, "hello")
        thread = dc.wait_for(lambda: dc.threads_of(general))[0]
        dc.wait_for(lambda: dc.bot_messages(thread))

People and places: ``user``, ``guild``, ``text_channel``, ``dm``, ``thread``.
What people do: ``send_user_message`` (``mention=True``, ``files``,
``reply_to``), ``mention``, ``press_button``, ``slash`` (an application
command the bot registered). What the bot did: ``messages``/``bot_messages``
(as people see them now), ``threads_of``, ``answer`` (an interaction's
answer), ``commands``, ``calls`` (every REST request, by route), ``identifies``,
``resumes``. Faults: ``rate_limit`` (429 with ``retry_after``, the
``X-RateLimit-*`` headers and ``Via``), ``fail``, ``drop_connection`` (the
client resumes). Waiting: ``wait_for`` (blocking) and ``until`` (async).

As on Discord: events for a bot that is not connected are lost (a new
IDENTIFY starts a new session; only a RESUME gets what was missed); without
the MESSAGE_CONTENT intent a guild message's content is empty unless it
mentions the bot; an interaction not answered within 3 seconds is unknown
(10062); a thread started from a message has the message's id.

Known simplifications: one shard; no permissions (the bot may do anything);
no real rate-limit buckets (429s come only from ``rate_limit``); events are
JSON text frames, never compressed; embeds, reactions, forums and most
routes are not there (404).
"""

from .model import Answer, Button, Call, Channel, File, Guild, Message, User
from .server import FakeDiscord
from .world import ApiError

__all__ = [
    "Answer",
    "ApiError",
    "Button",
    "Call",
    "Channel",
    "FakeDiscord",
    "File",
    "Guild",
    "Message",
    "User",
]

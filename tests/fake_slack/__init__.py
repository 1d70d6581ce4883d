"""A fake Slack for tests: the Web API, Socket Mode and the Events API on
loopback, speaking Slack's real JSON.

Start it, point the real slack_sdk at it, play the people, then look::

    with FakeSlack() as slack:
        # AsyncWebClient(token=slack.bot_token, base_url=slack.api_base);
        # Socket Mode's URL comes from apps.connections.open (app_token).
        ann = slack.user("Ann")
        general = slack.channel("general")
        asked = slack.mention(general, ann, "hello")
        slack.wait_for(lambda: slack.bot_messages(general, thread=asked.ts))

People and places: ``user``, ``channel`` (``private=True``), ``im``. What
people do: ``mention`` (an ``app_mention`` and a ``message`` event, as Slack
sends both), ``say``, ``dm``, ``share_file``, ``press``. What the bot did:
``messages``/``bot_messages``/``find`` (as people see them now: ``text``,
``blocks``, ``buttons``, ``edits``, ``streaming``), ``calls``,
``statuses`` (assistant.threads.setStatus), ``ephemerals``, ``envelopes``
(``acked``, ``retry_attempt``), ``unacked``, ``hook_calls``, ``connections``.
Faults: ``rate_limit``, ``fail``, ``clear_faults``, ``expire_streams``,
``streaming=False``, ``disconnect``. Waiting: ``wait_for`` and ``until``.

Known simplifications: mrkdwn and Markdown are stored, not rendered; text
lengths count code points; one workspace; what ``chat.update`` does to a
stream still open is not documented by Slack (here it ends the stream);
slash commands, views, reactions and most methods are not there (a call
answers ``unknown_method``).
"""

from .model import Call, Channel, Envelope, HookCall, Message, User
from .server import FakeSlack, sign
from .world import ApiError

__all__ = [
    "ApiError",
    "Call",
    "Channel",
    "Envelope",
    "FakeSlack",
    "HookCall",
    "Message",
    "User",
    "sign",
]

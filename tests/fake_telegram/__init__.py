"""A fake Telegram Bot API for tests: the real wire on loopback.

Start it, point a real client at it, play the people, then look::

    with FakeTelegram(token="123:ABC") as tg:
        # python-telegram-bot: base_url(f"{tg.api_base}/bot"),
        #                      base_file_url(f"{tg.api_base}/file/bot")
        alice = tg.user("Alice", username="alice")
        chat = tg.private_chat(alice)
        tg.send_user_message(chat, alice, "hello")
        tg.wait_for(lambda: tg.bot_messages(chat))
        assert tg.bot_messages(chat)[-1].text == "..."

People and places: ``user``, ``private_chat``, ``group``, ``supergroup``
(``forum=True``), ``create_topic``. What people do: ``send_user_message``,
``edit_user_message``, ``send_photo``, ``send_document``, ``press_button``,
``add_file``. What the bot did: ``messages``/``bot_messages``/``message``
(as people see them now), ``drafts``/``active_draft``, ``requests``/``calls``,
``send_count``, ``callback_answers``/``unanswered_callbacks``,
``chat_actions``, ``pending_updates``, ``webhook``, ``webhook_calls``,
``commands``, ``file_bytes``. Faults: ``rate_limit``, ``fail``,
``block``/``unblock``, ``clear_faults``, ``limits``. Waiting: ``wait_for``
(blocking) and ``until`` (async).

Webhooks: after ``setWebhook``, ``getUpdates`` answers 409 and every update
(``send_user_message``, ``press_button`` and the rest, unchanged) is POSTed
to the webhook with the secret header instead, tried again a few times when
not answered 2xx (``webhook_attempts``, ``webhook_retry_secs``);
``webhook_calls`` lists the POSTs and ``getWebhookInfo`` reports the last
error in Telegram's words.

Known simplifications: Markdown parse modes are not parsed (HTML is, tags
checked); text length counts code points; a webhook gets one update at a
time whatever its ``max_connections``, and is called only on loopback (where,
as with a local Bot API server, http:// and any port are accepted); inline
messages, other chats' replies, media groups and most methods are not there
(a call answers 404 "Not Found").
"""

from .model import (
    Button,
    CallbackAnswer,
    Chat,
    ChatAction,
    Draft,
    Limits,
    Request,
    Shown,
    User,
    WebhookCall,
)
from .server import FakeTelegram, redact
from .wire import ApiError

__all__ = [
    "ApiError",
    "Button",
    "CallbackAnswer",
    "Chat",
    "ChatAction",
    "Draft",
    "FakeTelegram",
    "Limits",
    "Request",
    "Shown",
    "User",
    "WebhookCall",
    "redact",
]

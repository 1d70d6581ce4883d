"""Telegram, through python-telegram-bot's :class:`telegram.Bot`.

:class:`TelegramPlatform` is the :class:`~bridge.channels.platform.Platform`
of a Telegram bot. By default it receives by long polling ``getUpdates``
itself, one update at a time, and moves the offset past an update only
after the inbox returned, so an update the bridge crashed on comes again
(and the log recognises it by its id). Telegram refuses ``getUpdates`` (409
Conflict) to a second process polling the token and while a webhook is set,
so polling starts by deleting any webhook, and a 409 is reported plainly.
With a :class:`~bridge.channels.telegram_webhook.Webhook`, Telegram POSTs
the updates instead (:mod:`bridge.channels.telegram_webhook`); either way an
update is turned into an :class:`Incoming` or a :class:`Press` in one place,
:meth:`TelegramPlatform.take`.

- A conversation is a private chat, a group, or a forum topic: the thread
  key is the chat id, with ``/TOPIC`` for a topic.
- Private chats stream with drafts (``sendMessageDraft``) and finish with a
  real message; groups stream by editing (:func:`limits_for`).
- Buttons are inline keyboards; a press is answered with
  ``answerCallbackQuery`` and the note the inbox returns.
- Photos and documents sent to the bot are downloaded through the Bot API's
  file endpoint into ``files_dir`` and given to the agent as ``file://``
  URLs: the file URL Telegram gives holds the bot's token, which must never
  reach an agent.
- The token is in every request URL; httpx logs those at INFO and
  python-telegram-bot at DEBUG, so those loggers are kept quieter.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from agentproc import wire

from . import reply_plan as rp
from .errors import Closing, NotModified, PlatformError, RateLimited, Unreachable
from .platform import Button, Capabilities, Inbox, Incoming, Platform, Press
from .telegram_webhook import Gate, Webhook

__all__ = ["ALLOWED_UPDATES", "TelegramPlatform", "limits_for", "thread_key"]

log = logging.getLogger("bridge.channels.telegram")

#: Tries at handling one update before it is skipped.
HANDLE_ATTEMPTS = 3

#: Telegram's default Bot API server.
API_BASE = "https://api.telegram.org"

#: The kinds of update the channel handles; Telegram sends no others.
ALLOWED_UPDATES = ("message", "callback_query")


def thread_key(chat_id: int, topic: int | None = None) -> str:
    return f"{chat_id}/{topic}" if topic else str(chat_id)


def _chat_of(thread: str) -> tuple[int, int | None]:
    chat, _, topic = thread.partition("/")
    return int(chat), (int(topic) if topic else None)


def limits_for(thread: str) -> rp.Limits:
    """Private chats (positive ids) have drafts; groups stream by editing."""
    chat, _ = _chat_of(thread)
    return replace(rp.TELEGRAM, drafts=chat > 0)


class TelegramPlatform(Platform):
    name = "telegram"
    capabilities = Capabilities(
        max_text=4096, drafts=True, threads=True, chat_interval=1.0, global_rate=30.0
    )

    def __init__(
        self,
        token: str,
        *,
        api_base: str = API_BASE,
        files_dir: Path,
        poll_timeout: int = 30,
        webhook: Webhook | None = None,
        commands: Mapping[str, str] | None = None,
    ) -> None:
        from telegram import Bot

        base = api_base.rstrip("/")
        self.bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
        self.files_dir = files_dir
        self.poll_timeout = poll_timeout
        self.webhook = webhook
        #: The commands Telegram's menu offers (name: what it does).
        self.commands = dict(commands or {})
        self.gate = Gate()
        self.username = ""
        self._bot_id = 0
        _quiet_token_loggers()

    async def start(self) -> None:
        """Log in (getMe): learns the bot's name, for mentions. Then tell
        Telegram how updates are to come: ``setWebhook`` with a webhook,
        otherwise ``deleteWebhook``, since no update can be polled while one
        is set. Neither drops the updates waiting."""
        from telegram.error import TelegramError

        try:
            await self.bot.initialize()
        except TelegramError as exc:
            raise _converted(exc) from None
        self.username = self.bot.username or ""
        self._bot_id = self.bot.id
        hook = self.webhook
        try:
            if hook is None:
                await self.bot.delete_webhook(drop_pending_updates=False)
            else:
                await self.bot.set_webhook(
                    hook.url,
                    secret_token=hook.secret.get_secret_value(),
                    allowed_updates=list(ALLOWED_UPDATES),
                    max_connections=hook.max_connections,
                    drop_pending_updates=False,
                )
        except TelegramError as exc:
            what = "delete the webhook" if hook is None else f"set the webhook to {hook.url}"
            raise PlatformError(f"telegram: cannot {what}: {exc}") from None
        if hook is not None:
            log.info("telegram: updates come by webhook to %s", hook.url)
        await self._offer_commands()

    async def _offer_commands(self) -> None:
        """List the commands in Telegram's command menu (a failure only
        costs the menu: the commands work typed)."""
        from telegram import BotCommand
        from telegram.error import TelegramError

        if not self.commands:
            return
        menu = [BotCommand(name, what[:256]) for name, what in self.commands.items()]
        try:
            await self.bot.set_my_commands(menu)
        except TelegramError as exc:
            log.warning("telegram: cannot list the commands in the menu: %s", exc)

    # --- receiving

    async def run(self, inbox: Inbox) -> None:
        if not self._bot_id:
            await self.start()
        if self.webhook is not None:
            # Telegram POSTs the updates to the HTTP route (webhook_hook),
            # which hands them to the inbox while this holds the gate open.
            await self.gate.hold(inbox)
        else:
            await self._poll(inbox)

    async def _poll(self, inbox: Inbox) -> None:
        from telegram.error import Conflict, NetworkError, RetryAfter, TelegramError

        offset: int | None = None
        pause = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.poll_timeout,
                    read_timeout=self.poll_timeout + 10,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
                pause = 1.0
            except Conflict as exc:
                log.error("telegram: %s; trying again in %g s", _conflict(exc), pause)
                await anyio.sleep(pause)
                pause = min(pause * 2, 30.0)
                continue
            except RetryAfter as exc:
                await anyio.sleep(_retry_after(exc))
                continue
            except (NetworkError, TelegramError) as exc:
                log.warning("telegram: cannot fetch updates (%s); trying again", exc)
                await anyio.sleep(pause)
                pause = min(pause * 2, 30.0)
                continue
            for update in updates:
                # An update that fails every time is skipped, so that one bad
                # update cannot stop the bot; it is confirmed (by the next
                # getUpdates) only once handled or skipped.
                try:
                    await self.take(inbox, update, then="skipped")
                except Closing:
                    log.info(
                        "telegram: shutting down; update %s is left for the next start",
                        update.update_id,
                    )
                    await anyio.sleep_forever()  # until receiving is cancelled
                offset = update.update_id + 1

    def update_of(self, data: dict[str, Any]) -> Any:
        """A webhook's JSON update as python-telegram-bot's ``Update``, read
        as ``getUpdates`` reads each of its own; raises when it cannot be."""
        from telegram import Update

        return Update.de_json(data, self.bot)

    async def take(self, inbox: Inbox, update: Any, *, then: str) -> bool:
        """Hand an update to the inbox, however it arrived, trying again a few
        times when that fails (the store may be busy for a moment). False
        when every try failed: that is logged, saying ``then`` happens."""
        for attempt in range(1, HANDLE_ATTEMPTS + 1):
            try:
                await self._handle(inbox, update)
                return True
            except Closing:
                raise  # not taken, and not to be confirmed: see Closing
            except Exception:
                if attempt == HANDLE_ATTEMPTS:
                    log.exception(
                        "telegram: update %s could not be handled; %s", update.update_id, then
                    )
                    return False
                log.warning("telegram: update %s failed; trying again", update.update_id)
                await anyio.sleep(attempt)
        return False

    async def _handle(self, inbox: Inbox, update: Any) -> None:
        if update.callback_query is not None:
            query = update.callback_query
            message = query.message
            thread = thread_key(message.chat.id, _topic(message)) if message else ""
            note = await inbox.press(
                Press(
                    thread,
                    str(query.from_user.id),
                    _display(query.from_user),
                    query.data or "",
                    str(message.message_id) if message else "",
                )
            )
            try:
                await query.answer(note or None)
            except Exception as exc:  # the press is handled; only the toast is lost
                log.warning("telegram: cannot answer a button press: %s", exc)
            return
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        text = message.text or message.caption or ""
        files = await self._files(message)
        if not text and not files:
            return
        await inbox.message(
            Incoming(
                thread=thread_key(message.chat.id, _topic(message)),
                platform_id=f"m{message.chat.id}:{message.message_id}",
                user_id=str(message.from_user.id),
                display=_display(message.from_user),
                text=text,
                private=message.chat.type == "private",
                addressed=self._addressed(message),
                attachments=tuple(files),
            )
        )

    def _addressed(self, message: Any) -> bool:
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == self._bot_id:
            return True
        mention = f"@{self.username}".lower()
        text = message.text or message.caption or ""
        for entity in message.entities or message.caption_entities or ():
            if entity.type == "mention":
                said = message.parse_entity(entity) if message.text else text
                if said.lower() == mention:
                    return True
            if entity.type == "bot_command" and mention in text.lower():
                return True
        return False

    async def _files(self, message: Any) -> list[wire.Attachment]:
        """Photos and documents, downloaded: the agent gets local files."""
        found: list[tuple[str, Any, str, str | None]] = []
        if message.photo:
            found.append(("image", message.photo[-1], ".jpg", "image/jpeg"))
        if message.document is not None:
            doc = message.document
            suffix = Path(doc.file_name or "").suffix or (
                mimetypes.guess_extension(doc.mime_type or "") or ""
            )
            kind = "image" if (doc.mime_type or "").startswith("image/") else "file"
            found.append((kind, doc, suffix, doc.mime_type))
        out = []
        for kind, item, suffix, mime in found:
            folder = self.files_dir / str(message.chat.id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{item.file_unique_id}{suffix}"
            file = await item.get_file()
            await file.download_to_drive(path)
            name = getattr(item, "file_name", None) or path.name
            out.append(wire.Attachment(kind, path.as_uri(), name, mime))
        return out

    # --- sending

    async def post(self, thread: str, text: str, *, buttons: tuple[Button, ...] = ()) -> str:
        chat, topic = _chat_of(thread)
        try:
            sent = await self.bot.send_message(
                chat, text, message_thread_id=topic, reply_markup=_keyboard(buttons)
            )
        except Exception as exc:
            raise _converted(exc) from None
        return str(sent.message_id)

    async def edit(
        self, thread: str, message_id: str, text: str, *, buttons: tuple[Button, ...] = ()
    ) -> None:
        chat, _ = _chat_of(thread)
        try:
            await self.bot.edit_message_text(
                text, chat_id=chat, message_id=int(message_id), reply_markup=_keyboard(buttons)
            )
        except Exception as exc:
            raise _converted(exc) from None

    async def delete(self, thread: str, message_id: str) -> None:
        chat, _ = _chat_of(thread)
        try:
            await self.bot.delete_message(chat, int(message_id))
        except Exception as exc:
            raise _converted(exc) from None

    async def draft(self, thread: str, draft_id: int, text: str) -> None:
        chat, topic = _chat_of(thread)
        try:
            await self.bot.send_message_draft(chat, draft_id, text, message_thread_id=topic)
        except Exception as exc:
            raise _converted(exc) from None

    async def send_file(self, thread: str, path: Path, *, caption: str = "") -> str:
        chat, topic = _chat_of(thread)
        try:
            with path.open("rb") as data:
                sent = await self.bot.send_document(
                    chat,
                    data,
                    filename=path.name,
                    caption=caption or None,
                    message_thread_id=topic,
                )
        except OSError as exc:
            raise PlatformError(f"cannot read {path}: {exc.strerror or exc}") from None
        except Exception as exc:
            raise _converted(exc) from None
        return str(sent.message_id)

    async def close(self) -> None:
        await self.bot.shutdown()


def _conflict(exc: Exception) -> str:
    """What a 409 from getUpdates means, in words: a webhook is set, or
    another process polls the token."""
    said = str(exc)  # "Conflict: ..." in Telegram's words
    if "webhook" in said.lower():
        return (
            f"a webhook is set for this bot, so Telegram gives no updates to polling (409: "
            f"{said}). Another program, or a bridge with channels.telegram.webhook, set it, "
            "and updates go there instead: stop that one and restart this bridge (it deletes "
            "the webhook as it starts), or give this bridge the same webhook config"
        )
    return (
        f"another process is polling this bot's token (409: {said}); only one bridge may "
        "run a Telegram bot at a time"
    )


def _quiet_token_loggers() -> None:
    """The loggers that write request URLs (which hold the token): httpx and
    httpcore at INFO and DEBUG, python-telegram-bot's own at DEBUG."""
    for name, level in (("httpx", logging.WARNING), ("httpcore", logging.WARNING)):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("telegram").setLevel(logging.INFO)


def _topic(message: Any) -> int | None:
    return message.message_thread_id if getattr(message, "is_topic_message", False) else None


def _display(user: Any) -> str:
    name = " ".join(p for p in (user.first_name, user.last_name) if p)
    return f"{name} (@{user.username})" if user.username else name or str(user.id)


def _keyboard(buttons: tuple[Button, ...]) -> Any:
    if not buttons:
        return None
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data)] for b in buttons]
    )


def _retry_after(exc: Any) -> float:
    """A RetryAfter's wait in seconds (python-telegram-bot 22 warns that the
    attribute becomes a timedelta; both are read)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def _converted(exc: Exception) -> PlatformError:
    """A python-telegram-bot error as the bridge's platform error."""
    from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

    if isinstance(exc, RetryAfter):
        return RateLimited(f"telegram: {exc}", retry_after=_retry_after(exc))
    if isinstance(exc, BadRequest) and "not modified" in str(exc).lower():
        return NotModified(f"telegram: {exc}")
    if isinstance(exc, Forbidden) or (
        isinstance(exc, BadRequest) and "chat not found" in str(exc).lower()
    ):
        return Unreachable(f"telegram: {exc}")
    if isinstance(exc, TelegramError):
        return PlatformError(f"telegram: {exc}")
    raise exc

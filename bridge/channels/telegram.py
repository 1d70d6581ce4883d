"""Telegram, through python-telegram-bot's :class:`telegram.Bot`.

:class:`TelegramPlatform` is the :class:`~bridge.channels.platform.Platform`
of a Telegram bot. It receives by long polling ``getUpdates`` itself, one
update at a time, and moves the offset past an update only after the inbox
returned, so an update the bridge crashed on comes again (and the log
recognises it by its id). Only one process may poll a token: Telegram
answers a second one 409, which is reported plainly.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from agentproc import wire

from . import reply_plan as rp
from .errors import NotModified, PlatformError, RateLimited, Unreachable
from .platform import Button, Capabilities, Inbox, Incoming, Platform, Press

__all__ = ["TelegramPlatform", "limits_for", "thread_key"]

log = logging.getLogger("bridge.channels.telegram")

#: Tries at handling one update before it is skipped.
HANDLE_ATTEMPTS = 3

#: Telegram's default Bot API server.
API_BASE = "https://api.telegram.org"


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
    ) -> None:
        from telegram import Bot

        base = api_base.rstrip("/")
        self.bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
        self.files_dir = files_dir
        self.poll_timeout = poll_timeout
        self.username = ""
        self._bot_id = 0
        _quiet_token_loggers()

    async def start(self) -> None:
        """Log in (getMe): learns the bot's name, for mentions."""
        from telegram.error import TelegramError

        try:
            await self.bot.initialize()
        except TelegramError as exc:
            raise _converted(exc) from None
        self.username = self.bot.username or ""
        self._bot_id = self.bot.id

    # --- receiving

    async def run(self, inbox: Inbox) -> None:
        from telegram.error import Conflict, NetworkError, RetryAfter, TelegramError

        if not self._bot_id:
            await self.start()
        offset: int | None = None
        pause = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.poll_timeout,
                    read_timeout=self.poll_timeout + 10,
                    allowed_updates=["message", "callback_query"],
                )
                pause = 1.0
            except Conflict:
                log.error(
                    "telegram: another process is polling this bot's token; "
                    "only one bridge may run a Telegram bot at a time"
                )
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
                await self._handle_patiently(inbox, update)
                # Confirmed (by the next getUpdates) only once handled.
                offset = update.update_id + 1

    async def _handle_patiently(self, inbox: Inbox, update: Any) -> None:
        """Handle an update, trying again a few times when it fails (the store
        may be busy for a moment); an update that fails every time is logged
        and skipped, so one bad update cannot stop the bot."""
        for attempt in range(1, HANDLE_ATTEMPTS + 1):
            try:
                await self._handle(inbox, update)
                return
            except Exception:
                if attempt == HANDLE_ATTEMPTS:
                    log.exception(
                        "telegram: update %s could not be handled; skipped", update.update_id
                    )
                    return
                log.warning("telegram: update %s failed; trying again", update.update_id)
                await anyio.sleep(attempt)

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

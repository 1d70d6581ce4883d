"""The fake's state: people, chats, messages, updates, files, drafts, faults.

No sockets here. ``World.call(method, params)`` answers one Bot API call
(``methods.py`` holds the methods); everything else is a test control or an
inspection. One lock guards it all, and every change wakes whoever waits
(a long poll, or a test in ``wait_for``).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, TypeVar

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
from .wire import ApiError, Upload, detect_entities, is_loopback_url

T = TypeVar("T")

#: A draft is "a temporary 30-second preview" (Bot API, sendMessageDraft).
DRAFT_LIFETIME_SECS = 30.0
#: Bots may download files of up to 20 MB through getFile.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
#: How long ``wait_for`` waits by default: generous for a loaded CI machine.
DEFAULT_WAIT_SECS = 10.0

ChatRef = Chat | int


@dataclass(slots=True)
class Stored:
    """A message the fake keeps: its current API object and how it got there."""

    chat: Chat
    sender: User
    message: dict[str, Any]
    reply_to: int | None = None
    source: tuple[Any, ...] = ()
    """What decides "message is not modified": text, parse mode, entities."""
    deleted: bool = False
    edits: int = 0

    @property
    def thread_id(self) -> int | None:
        if self.message.get("is_topic_message"):
            return int(self.message["message_thread_id"])
        return None


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


@dataclass(slots=True)
class Fault:
    method: str | None
    chat_id: int | None
    error: ApiError
    remaining: int | None

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.remaining == 0:
            return False
        if self.method is None and method == "getupdates":
            return False
        if self.method is not None and self.method != method:
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


def chat_id_of(chat: ChatRef) -> int:
    return chat.id if isinstance(chat, Chat) else chat


@dataclass(eq=False)
class World:
    token: str
    bot_username: str = "fake_agent_bot"
    bot_first_name: str = "Agent"
    clock: Callable[[], float] = time.time
    limits: Limits | None = None
    privacy_mode: bool = False
    """Telegram's default for bots: in groups only commands, mentions and
    replies to the bot reach it. Off by default so that tests can check a
    channel ignores what it should."""
    first_update_id: int = 700_000_001
    webhook_attempts: int = 4
    """How many times an update is POSTed to a webhook that does not answer
    2xx before it is given up, as Telegram gives up "after a reasonable
    amount of attempts" (it spaces them out far more)."""
    webhook_retry_secs: float = 0.2
    """The pause before sending a refused update again."""

    bot: User = field(init=False)
    _cond: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        head = self.token.split(":", 1)[0]
        bot_id = int(head) if head.isdigit() else 7_000_000_001
        self.bot = User(bot_id, self.bot_first_name, self.bot_username, is_bot=True)
        self._cond = threading.Condition(threading.RLock())
        self._ids = itertools.count(1)
        self._user_ids = itertools.count(1_000_001)
        self._users: dict[int, User] = {}
        self._chats: dict[int, Chat] = {}
        self._messages: dict[int, dict[int, Stored]] = {}
        self._topics: dict[int, dict[int, str]] = {}
        self._updates: list[tuple[int, str, dict[str, Any]]] = []
        self._next_update_id = self.first_update_id
        self._poll_seq = 0
        self._allowed_updates: list[str] | None = None
        self._webhook: dict[str, Any] | None = None
        self._hook_calls: list[WebhookCall] = []
        self._hook_tries: dict[int, int] = {}
        self._hook_error: tuple[int, str] | None = None
        self._hook_retry_at = 0.0
        self._commands: list[dict[str, Any]] = []
        self._files: dict[str, StoredFile] = {}
        self._paths: dict[str, StoredFile] = {}
        self._drafts: dict[int, list[Draft]] = {}
        self._active_drafts: dict[tuple[int, int | None], Draft] = {}
        self._requests: list[Request] = []
        self._answers: list[CallbackAnswer] = []
        self._open_queries: dict[str, tuple[int, int]] = {}
        self._actions: list[ChatAction] = []
        self._faults: list[Fault] = []
        self._blocked: set[int] = set()
        self._sent: dict[tuple[str, int], deque[float]] = {}
        self._closing = False

    # -- people and places ---------------------------------------------------

    def user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        id: int | None = None,
        language_code: str | None = "en",
    ) -> User:
        """A person (not yet in any chat)."""
        with self._cond:
            person = User(id or next(self._user_ids), first_name, username, False, language_code)
            self._users[person.id] = person
            return person

    def private_chat(self, person: User) -> Chat:
        """The person's private chat with the bot (its id is the person's)."""
        return self._add_chat(Chat(person.id, "private", person=person))

    def group(self, title: str = "Team") -> Chat:
        """A basic group."""
        return self._add_chat(Chat(-(4_100_000_000 + next(self._ids)), "group", title=title))

    def supergroup(self, title: str = "Team", *, forum: bool = False) -> Chat:
        """A supergroup; ``forum=True`` makes it a forum with topics."""
        chat_id = -(1_002_000_000_000 + next(self._ids))
        return self._add_chat(Chat(chat_id, "supergroup", title=title, is_forum=forum))

    def _add_chat(self, chat: Chat) -> Chat:
        with self._cond:
            self._chats[chat.id] = chat
            self._messages.setdefault(chat.id, {})
            return chat

    def create_topic(self, chat: Chat, name: str, *, by: User | None = None) -> int:
        """Open a forum topic; returns its ``message_thread_id``. As on
        Telegram, the topic's id is the id of the service message that opened
        it, and that message reaches the bot as an update."""
        if not chat.is_forum:
            raise ValueError(f"{chat.title!r} is not a forum")
        with self._cond:
            mid = self._next_message_id(chat.id)
            self._topics.setdefault(chat.id, {})[mid] = name
            creator = by or self._any_person()
            body = {"forum_topic_created": {"name": name, "icon_color": 7322096}}
            stored = self._store(chat, creator, mid, thread=mid, reply_to=None, content=body)
            self._queue("message", stored.message)
            return mid

    def _any_person(self) -> User:
        return next(iter(self._users.values()), None) or self.user("Admin")

    # -- what people do --------------------------------------------------------

    def send_user_message(
        self,
        chat: Chat,
        person: User,
        text: str,
        *,
        thread: int | None = None,
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A person writes in a chat; the bot gets it as a ``message`` update.

        ``thread`` is a forum topic's id; ``reply_to`` the id of the message
        replied to. Mentions (``@name``) and commands (``/cmd``) get their
        entities as Telegram would attach them, unless ``entities`` is given.
        Returns the message object."""
        content: dict[str, Any] = {"text": text}
        found = detect_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self._inbound(chat, person, content, thread, reply_to, source=(text,))

    def send_photo(
        self,
        chat: Chat,
        person: User,
        data: bytes,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        thread: int | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A person sends a photo. Like Telegram, the update lists several
        sizes (a thumbnail first, the full size last), each its own file; in
        the fake all of them serve ``data``."""
        sizes = []
        with self._cond:
            for w in sorted({min(90, width), width}):
                h = max(1, round(height * w / width))
                stored = self.add_file(data, folder="photos", suffix=".jpg", kind="AgAC")
                sizes.append(
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "file_size": len(data),
                        "width": w,
                        "height": h,
                    }
                )
            content: dict[str, Any] = {"photo": sizes}
            if caption:
                content["caption"] = caption
            return self._inbound(chat, person, content, thread, reply_to, source=(caption,))

    def send_document(
        self,
        chat: Chat,
        person: User,
        data: bytes,
        *,
        file_name: str = "document.bin",
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        thread: int | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A person sends a file."""
        suffix = "." + file_name.rsplit(".", 1)[1] if "." in file_name else ""
        with self._cond:
            stored = self.add_file(data, folder="documents", suffix=suffix, kind="BQAC")
            document = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(data),
            }
            content: dict[str, Any] = {"document": document}
            if caption:
                content["caption"] = caption
            return self._inbound(chat, person, content, thread, reply_to, source=(caption,))

    def edit_user_message(self, chat: Chat, message_id: int, text: str) -> dict[str, Any]:
        """A person edits their message; the bot gets an ``edited_message``."""
        with self._cond:
            stored = self._messages[chat.id][message_id]
            if stored.sender.is_bot or stored.deleted:
                raise ValueError(f"message {message_id} is not a person's live message")
            stored.message["text"] = text
            stored.message["edit_date"] = int(self.clock())
            stored.message.pop("entities", None)
            if found := detect_entities(text):
                stored.message["entities"] = found
            stored.edits += 1
            self._queue("edited_message", stored.message)
            return copy.deepcopy(stored.message)

    def press_button(self, chat: Chat, person: User, message_id: int, callback_data: str) -> str:
        """A person presses an inline button of a bot message; the bot gets a
        ``callback_query`` update. Returns the query's id. Refuses a button
        the message does not show now, as a real client could not press it."""
        with self._cond:
            stored = self._messages.get(chat.id, {}).get(message_id)
            if stored is None or stored.deleted or not stored.sender.is_bot:
                raise ValueError(f"no bot message {message_id} in chat {chat.id}")
            if callback_data not in self._shown(stored).callback_data:
                raise ValueError(f"message {message_id} has no button {callback_data!r}")
            query_id = str(4_382_000_000_000_000_000 + next(self._ids))
            self._open_queries[query_id] = (chat.id, message_id)
            query = {
                "id": query_id,
                "from": person.to_api(),
                "message": copy.deepcopy(stored.message),
                "chat_instance": str(-(8_000_000_000_000_000_000 + abs(chat.id))),
                "data": callback_data,
            }
            self._queue("callback_query", query)
            return query_id

    def add_file(
        self, data: bytes, *, folder: str = "documents", suffix: str = "", kind: str = "BQAC"
    ) -> StoredFile:
        """Register bytes the bot can fetch with getFile and download."""
        with self._cond:
            n = next(self._ids)
            stored = StoredFile(
                file_id=kind + "AgIAAxkBAAI" + secrets.token_urlsafe(24),
                file_unique_id="AQAD" + secrets.token_urlsafe(9),
                file_path=f"{folder}/file_{n}{suffix}",
                data=data,
            )
            self._files[stored.file_id] = stored
            self._paths[stored.file_path] = stored
            return stored

    def _inbound(
        self,
        chat: Chat,
        person: User,
        content: dict[str, Any],
        thread: int | None,
        reply_to: int | None,
        source: tuple[Any, ...],
    ) -> dict[str, Any]:
        if chat.is_private and chat.person != person:
            raise ValueError("only the chat's own person writes in a private chat")
        with self._cond:
            if thread is not None and thread not in self._topics.get(chat.id, {}):
                raise ValueError(f"chat {chat.id} has no topic {thread}")
            if reply_to is not None and self._live(chat.id, reply_to) is None:
                raise ValueError(f"no message {reply_to} to reply to in chat {chat.id}")
            mid = self._next_message_id(chat.id)
            stored = self._store(chat, person, mid, thread, reply_to, content, source)
            if self._bot_sees(stored):
                self._queue("message", stored.message)
            return copy.deepcopy(stored.message)

    def _bot_sees(self, stored: Stored) -> bool:
        if not self.privacy_mode or stored.chat.is_private:
            return True
        text = stored.message.get("text") or stored.message.get("caption") or ""
        if text.startswith("/") or f"@{self.bot.username}" in text:
            return True
        target = self._live(stored.chat.id, stored.reply_to) if stored.reply_to else None
        return target is not None and target.sender.is_bot

    # -- shared by the methods -------------------------------------------------

    def _next_message_id(self, chat_id: int) -> int:
        return max(self._messages.setdefault(chat_id, {}), default=0) + 1

    def _live(self, chat_id: int, message_id: int | None) -> Stored | None:
        stored = self._messages.get(chat_id, {}).get(message_id or 0)
        return None if stored is None or stored.deleted else stored

    def _store(
        self,
        chat: Chat,
        sender: User,
        mid: int,
        thread: int | None,
        reply_to: int | None,
        content: dict[str, Any],
        source: tuple[Any, ...] = (),
    ) -> Stored:
        """Build a message object the way Telegram shapes one."""
        message: dict[str, Any] = {
            "message_id": mid,
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": int(self.clock()),
        }
        target = self._live(chat.id, reply_to)
        if thread is not None and chat.is_forum:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
            # In a topic, a message that replies to nothing replies to the
            # service message that opened the topic.
            if target is None and thread != mid:
                target = self._live(chat.id, thread)
        elif target is not None and chat.type == "supergroup" and not chat.is_forum:
            # Replies in a plain supergroup carry the id of their reply thread.
            root = target.message.get("message_thread_id", target.message["message_id"])
            message["message_thread_id"] = root
        if target is not None:
            quoted = copy.deepcopy(target.message)
            quoted.pop("reply_to_message", None)
            message["reply_to_message"] = quoted
        message.update(content)
        stored = Stored(chat, sender, message, reply_to=reply_to, source=source)
        self._messages.setdefault(chat.id, {})[mid] = stored
        return stored

    def _queue(self, kind: str, payload: dict[str, Any]) -> None:
        self._updates.append((self._next_update_id, kind, copy.deepcopy(payload)))
        self._next_update_id += 1
        self._cond.notify_all()

    # -- webhook delivery (the sending is the server's) -------------------------

    def _webhook_due(self) -> tuple[str, str | None, dict[str, Any]] | None:
        """The next update to POST to the webhook now, with its URL and secret;
        None when there is none, or no webhook on loopback, or a retry waits.
        Kinds the webhook did not ask for are dropped, as Telegram never
        queues them. Called with the lock held."""
        hook = self._webhook
        if hook is None or self._closing or not is_loopback_url(hook["url"]):
            return None
        allowed = hook.get("allowed_updates") or None
        if allowed is not None:
            self._updates = [u for u in self._updates if u[1] in allowed]
        if not self._updates or time.monotonic() < self._hook_retry_at:
            return None
        uid, kind, payload = self._updates[0]
        return (
            hook["url"],
            hook.get("secret_token"),
            {"update_id": uid, kind: copy.deepcopy(payload)},
        )

    def _webhook_wait(self) -> float | None:
        """How long the sender may sleep before something could be due."""
        left = self._hook_retry_at - time.monotonic()
        return left if left > 0 else None

    def _webhook_answered(
        self, update: dict[str, Any], url: str, secret: str | None, status: int | None, error: str
    ) -> None:
        """Record one POST: a 2xx confirms the update; anything else is tried
        again after a pause, until ``webhook_attempts`` is spent."""
        uid = int(update["update_id"])
        call = WebhookCall(uid, url, status, error, secret, self.clock())
        self._hook_calls.append(call)
        if call.ok:
            self._hook_tries.pop(uid, None)
            self._updates = [u for u in self._updates if u[0] != uid]
        else:
            self._hook_error = (int(self.clock()), error)
            tries = self._hook_tries.get(uid, 0) + 1
            self._hook_tries[uid] = tries
            if tries >= self.webhook_attempts:
                self._updates = [u for u in self._updates if u[0] != uid]
            else:
                self._hook_retry_at = time.monotonic() + self.webhook_retry_secs
        self._cond.notify_all()

    def _chat(self, chat_id: Any) -> Chat:
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _store_file(self, upload: Upload, folder: str, kind: str) -> StoredFile:
        suffix = "." + upload.filename.rsplit(".", 1)[1] if "." in upload.filename else ""
        return self.add_file(upload.data, folder=folder, suffix=suffix, kind=kind)

    def _end_draft(self, chat_id: int, thread: int | None) -> None:
        self._active_drafts.pop((chat_id, thread), None)

    def _shown(self, stored: Stored) -> Shown:
        markup = stored.message.get("reply_markup") or {}
        rows = tuple(
            tuple(Button(b.get("text", ""), b.get("callback_data"), b.get("url")) for b in row)
            for row in markup.get("inline_keyboard", [])
        )
        text = stored.message.get("text", stored.message.get("caption", ""))
        return Shown(
            message_id=stored.message["message_id"],
            sender=stored.sender,
            text=text,
            buttons=rows,
            thread_id=stored.thread_id,
            reply_to=stored.reply_to,
            edits=stored.edits,
            raw=copy.deepcopy(stored.message),
        )

    # -- one Bot API call ------------------------------------------------------

    def call(
        self,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, Upload] | None = None,
        encoding: str = "json",
    ) -> tuple[int, dict[str, Any]]:
        """Answer one call: the HTTP status and the JSON body."""
        from .methods import METHODS

        uploads = uploads or {}
        name = method.lower()
        with self._cond:
            at = self.clock()
            index = len(self._requests)
            self._requests.append(Request(method, params, 0, encoding, at, tuple(uploads)))
            try:
                handler = METHODS.get(name)
                if handler is None:
                    raise ApiError(404, "Not Found")
                self._check_faults(name, params)
                result = handler(self, params, uploads)
                self._count_send(name, params)
                status, body = 200, {"ok": True, "result": result}
            except ApiError as exc:
                status, body = exc.status, exc.body()
            self._requests[index] = Request(method, params, status, encoding, at, tuple(uploads))
            self._cond.notify_all()
            return status, body

    def _check_faults(self, method: str, params: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        if chat_id in self._blocked:
            chat = self._chats.get(chat_id)
            if chat is None or chat.is_private:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        for fault in self._faults:
            if fault.matches(method, params):
                if fault.remaining is not None:
                    fault.remaining -= 1
                raise copy.copy(fault.error)
        if self.limits is not None and method in self.limits.methods:
            wait = max(
                (self._window_wait(key, rule) for key, rule in self._windows(params)), default=0
            )
            if wait:
                raise _too_many(wait)

    def _windows(self, params: dict[str, Any]) -> list[tuple[tuple[str, int], tuple[int, float]]]:
        assert self.limits is not None
        chat = self._chats.get(params.get("chat_id"))  # type: ignore[arg-type]
        if chat is None:
            return []
        out = [(("all", 0), self.limits.overall), (("chat", chat.id), self.limits.per_chat)]
        if not chat.is_private:
            out.append((("group", chat.id), self.limits.per_group))
        return out

    def _window_wait(self, key: tuple[str, int], rule: tuple[int, float]) -> int:
        most, window = rule
        now = self.clock()
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) < most:
            return 0
        return max(1, math.ceil(sent[0] + window - now))

    def _count_send(self, method: str, params: dict[str, Any]) -> None:
        if self.limits is not None and method in self.limits.methods:
            for key, _rule in self._windows(params):
                self._sent.setdefault(key, deque()).append(self.clock())

    # -- faults a test injects -------------------------------------------------

    def rate_limit(
        self,
        method: str | None = None,
        chat: ChatRef | None = None,
        *,
        retry_after: int = 1,
        times: int | None = 1,
    ) -> None:
        """The next ``times`` matching calls (``None``: all, until
        ``clear_faults``) answer 429 with ``retry_after``. No method matches
        every method but getUpdates; no chat matches every chat."""
        self.fail(method, chat, error=_too_many(retry_after), times=times)

    def fail(
        self,
        method: str | None = None,
        chat: ChatRef | None = None,
        *,
        error: ApiError | None = None,
        times: int | None = 1,
    ) -> None:
        """The next ``times`` matching calls answer ``error`` (default: a
        500 Internal Server Error)."""
        error = error or ApiError(500, "Internal Server Error")
        with self._cond:
            chat_id = None if chat is None else chat_id_of(chat)
            name = None if method is None else method.lower()
            self._faults.append(Fault(name, chat_id, error, times))

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def block(self, chat: ChatRef) -> None:
        """The person blocks the bot (or the group removes it): calls for
        the chat answer 403 Forbidden."""
        with self._cond:
            self._blocked.add(chat_id_of(chat))

    def unblock(self, chat: ChatRef) -> None:
        with self._cond:
            self._blocked.discard(chat_id_of(chat))

    # -- inspection ------------------------------------------------------------

    def messages(self, chat: ChatRef, *, thread: int | EllipsisType | None = ...) -> list[Shown]:
        """The chat as its people see it now: deleted messages gone, edits
        applied, keyboards as last set. ``thread`` picks one forum topic
        (``None``: the General topic); by default all of them."""
        with self._cond:
            shown = [
                self._shown(s)
                for _, s in sorted(self._messages.get(chat_id_of(chat), {}).items())
                if not s.deleted and "forum_topic_created" not in s.message
            ]
            return [s for s in shown if thread is ... or s.thread_id == thread]

    def message(self, chat: ChatRef, message_id: int) -> Shown | None:
        with self._cond:
            stored = self._live(chat_id_of(chat), message_id)
            return None if stored is None else self._shown(stored)

    def bot_messages(self, chat: ChatRef) -> list[Shown]:
        return [s for s in self.messages(chat) if s.from_bot]

    def drafts(self, chat: ChatRef) -> list[Draft]:
        """Every draft state the bot sent to the chat, in order."""
        with self._cond:
            return list(self._drafts.get(chat_id_of(chat), []))

    def active_draft(self, chat: ChatRef, thread: int | None = None) -> Draft | None:
        """The draft the person sees now: none once the bot sent a real
        message there, or after 30 seconds without an update."""
        with self._cond:
            draft = self._active_drafts.get((chat_id_of(chat), thread))
            if draft is None or self.clock() - draft.at > DRAFT_LIFETIME_SECS:
                return None
            return draft

    @property
    def requests(self) -> list[Request]:
        """Every call so far, in the order they arrived (status 0: still
        being answered, e.g. a long poll). A long poll its client gave up on
        stays held until it times out (200) or a newer poll ends it (409)."""
        with self._cond:
            return list(self._requests)

    def calls(self, method: str | None = None, *, chat: ChatRef | None = None) -> list[Request]:
        """The calls of one method (any case) and/or for one chat."""
        chat_id = None if chat is None else chat_id_of(chat)
        return [
            r
            for r in self.requests
            if (method is None or r.method.lower() == method.lower())
            and (chat_id is None or r.params.get("chat_id") == chat_id)
        ]

    def send_count(self, chat: ChatRef) -> int:
        """How many sendMessage calls for the chat succeeded."""
        return sum(1 for r in self.calls("sendMessage", chat=chat) if r.ok)

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        with self._cond:
            return list(self._answers)

    @property
    def unanswered_callbacks(self) -> list[str]:
        """Ids of button presses the bot has not answered (the person's
        client would still show a spinner)."""
        with self._cond:
            return list(self._open_queries)

    def chat_actions(self, chat: ChatRef | None = None) -> list[ChatAction]:
        with self._cond:
            return [a for a in self._actions if chat is None or a.chat_id == chat_id_of(chat)]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._cond:
            return [{"update_id": uid, kind: copy.deepcopy(p)} for uid, kind, p in self._updates]

    @property
    def webhook(self) -> dict[str, Any] | None:
        with self._cond:
            return None if self._webhook is None else dict(self._webhook)

    @property
    def webhook_calls(self) -> list[WebhookCall]:
        """Every POST of an update to the webhook so far, in order."""
        with self._cond:
            return list(self._hook_calls)

    @property
    def commands(self) -> list[dict[str, Any]]:
        with self._cond:
            return copy.deepcopy(self._commands)

    def file_bytes(self, file_id: str) -> bytes:
        with self._cond:
            return self._files[file_id].data

    def file_at(self, path: str) -> bytes | None:
        with self._cond:
            stored = self._paths.get(path)
            return None if stored is None else stored.data

    # -- waiting -----------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_SECS) -> T:
        """Block until ``predicate()`` is truthy and return it. It is checked
        again after every change to the fake (a call, an update, a control),
        so it should read the fake's state; to wait on the bot's own state,
        use the bot's own signal. Raises TimeoutError."""
        with self._cond:
            value = self._cond.wait_for(predicate, timeout)
            if not value:
                raise TimeoutError(f"condition still false after {timeout} s")
            return value

    async def until(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_SECS) -> T:
        """``wait_for`` for a test running an event loop (the bot's loop
        keeps running while a worker thread waits)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def _close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )

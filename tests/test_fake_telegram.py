"""The fake Telegram Bot API, driven by the real client: python-telegram-bot's
``Bot`` for single calls and an ``Application`` that long-polls with handlers.
What passes here is what the Telegram channel can rely on in its own tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import httpx
import pytest
from fake_telegram import ApiError, FakeTelegram, Limits
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

pytestmark = [
    pytest.mark.anyio,
    # PTB 22 warns about its own RetryAfter (the int form of retry_after) as
    # it builds one, whatever the caller reads.
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

TOKEN = "123456:AAFake-token_for-tests"
#: Short long polls keep every test quick; the fake answers at once on an update.
POLL_SECS = 1

T = TypeVar("T")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN) as fake:
        yield fake


def make_bot(tg: FakeTelegram, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{tg.api_base}/bot", base_file_url=f"{tg.api_base}/file/bot")


def make_app(tg: FakeTelegram) -> Application:  # type: ignore[type-arg]
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{tg.api_base}/bot")
        .base_file_url(f"{tg.api_base}/file/bot")
        .build()
    )


@asynccontextmanager
async def polling(
    app: Application,  # type: ignore[type-arg]
    on_poll_error: Callable[[TelegramError], None] | None = None,
) -> AsyncIterator[list[BaseException]]:
    """Run the application with long polling; yields the errors its
    handlers raised (each test checks there are none)."""
    errors: list[BaseException] = []

    async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)  # type: ignore[arg-type]

    app.add_error_handler(record)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0, timeout=POLL_SECS, error_callback=on_poll_error
        )
        try:
            yield errors
        finally:
            await app.updater.stop()
            await app.stop()


class Seen(Generic[T]):
    """What the bot's handlers saw, with a way to wait for it. (``tg.until``
    re-checks only when the fake changes; a handler's own state needs this.)"""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait(self, count: int = 1, timeout: float = 10.0) -> list[T]:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


def retry_after(err: RetryAfter) -> float:
    # PTB 22 warns that the int form is deprecated unless PTB_TIMEDELTA is set.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = err.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


# -- the bot -------------------------------------------------------------------


async def test_get_me_answers_the_bot_user(tg: FakeTelegram) -> None:
    async with make_bot(tg) as bot:
        me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (
        123456,
        True,
        "fake_agent_bot",
        "Agent",
    )
    assert tg.calls("getMe")[0].ok


async def test_a_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match="Unauthorized"):
        await make_bot(tg, "123456:wrong").get_me()
    answer = httpx.post(f"{tg.api_base}/bot999:nope/getMe")
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert tg.requests == []  # the fake does not even log it as a call


async def test_unknown_methods_are_not_found_and_names_ignore_case(tg: FakeTelegram) -> None:
    answer = httpx.post(f"{tg.api_base}/bot{TOKEN}/sendTelepathy", json={})
    assert (answer.status_code, answer.json()["description"]) == (404, "Not Found")
    assert httpx.get(f"{tg.api_base}/bot{TOKEN}/GETME").json()["ok"] is True


# -- updates -----------------------------------------------------------------------


async def test_a_message_reaches_a_handler_and_its_reply_reaches_the_chat(
    tg: FakeTelegram,
) -> None:
    alice = tg.user("Alice", username="alice")
    chat = tg.private_chat(alice)
    app = make_app(tg)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"you said: {update.message.text}", do_quote=True)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with polling(app) as errors:
        sent = tg.send_user_message(chat, alice, "hello")
        reply = (await tg.until(lambda: tg.bot_messages(chat)))[0]
    assert errors == []
    assert reply.text == "you said: hello"
    assert reply.reply_to == sent["message_id"]
    assert reply.message_id == sent["message_id"] + 1
    assert reply.raw["chat"] == {
        "id": alice.id,
        "type": "private",
        "first_name": "Alice",
        "username": "alice",
    }
    call = tg.calls("sendMessage")[0]
    # PTB posts form bodies whose values are JSON (a string stays bare).
    assert call.encoding == "form"
    assert call.params["reply_parameters"] == {"message_id": sent["message_id"]}


async def test_commands_get_their_entity_and_reach_a_command_handler(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    app = make_app(tg)
    seen: Seen[list[str]] = Seen()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.add(list(context.args or []))

    app.add_handler(CommandHandler("start", start))
    async with polling(app) as errors:
        tg.send_user_message(chat, alice, "/start@fake_agent_bot deep-link")
        await seen.wait()
    assert errors == []
    assert seen.items == [["deep-link"]]


async def test_a_long_poll_waits_for_an_update_then_returns_at_once(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    async with make_bot(tg) as bot:
        started = time.monotonic()
        assert await bot.get_updates(timeout=dt.timedelta(seconds=0.4)) == ()
        assert time.monotonic() - started >= 0.39

        poll = asyncio.create_task(bot.get_updates(timeout=10))
        await tg.until(lambda: any(r.status == 0 for r in tg.calls("getUpdates")))
        started = time.monotonic()
        tg.send_user_message(chat, alice, "wake up")
        updates = await poll
        waited = time.monotonic() - started
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    assert waited < 2.0


async def test_offsets_confirm_updates_across_polling_restarts(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    seen: Seen[tuple[str, str]] = Seen()

    def handler(tag: str) -> MessageHandler:  # type: ignore[type-arg]
        async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.message is not None and update.message.text is not None
            seen.add((tag, update.message.text))

        return MessageHandler(filters.TEXT, record)

    first = make_app(tg)
    first.add_handler(handler("first"))
    async with polling(first):
        tg.send_user_message(chat, alice, "one")
        tg.send_user_message(chat, alice, "two")
        await seen.wait(2)
    # Stopping the updater confirmed what it fetched (a last getUpdates).
    assert tg.pending_updates == []

    tg.send_user_message(chat, alice, "three")
    second = make_app(tg)
    second.add_handler(handler("second"))
    async with polling(second):
        await seen.wait(3)
    assert seen.items == [("first", "one"), ("first", "two"), ("second", "three")]
    ids = [r.params.get("offset") for r in tg.calls("getUpdates") if r.params.get("offset")]
    assert ids == sorted(ids)


async def test_raw_offsets_drop_confirmed_updates(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    for text in ("a", "b", "c"):
        tg.send_user_message(chat, alice, text)
    async with make_bot(tg) as bot:
        first = await bot.get_updates(limit=2)
        again = await bot.get_updates()
        rest = await bot.get_updates(offset=first[-1].update_id + 1)
        last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in first if u.message] == ["a", "b"]
    assert len(again) == 3  # nothing confirmed yet
    assert [u.message.text for u in rest if u.message] == ["c"]
    assert [u.message.text for u in last if u.message] == ["c"]
    assert [u.update_id for u in again] == list(range(again[0].update_id, again[0].update_id + 3))


async def test_a_newer_poll_ends_a_held_one_with_conflict(tg: FakeTelegram) -> None:
    async with make_bot(tg) as first, make_bot(tg) as second:
        held = asyncio.create_task(first.get_updates(timeout=10))
        await tg.until(lambda: any(r.status == 0 for r in tg.calls("getUpdates")))
        assert await second.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await held


async def test_a_second_polling_application_gets_conflict(tg: FakeTelegram) -> None:
    first: Seen[TelegramError] = Seen()
    second: Seen[TelegramError] = Seen()
    async with polling(make_app(tg), first.add):
        await tg.until(lambda: any(r.status == 0 for r in tg.calls("getUpdates")))
        async with polling(make_app(tg), second.add):
            # Each poll ends the other's held one; PTB retries after a second.
            await first.wait()
            await second.wait()
    assert all(isinstance(e, Conflict) for e in first.items + second.items)


async def test_get_updates_is_refused_while_a_webhook_is_set(tg: FakeTelegram) -> None:
    async with make_bot(tg) as bot:
        await bot.set_webhook("https://bot.example/hook", secret_token="s3cret")
        assert tg.webhook == {"url": "https://bot.example/hook", "secret_token": "s3cret"}
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        await bot.delete_webhook()
        assert await bot.get_updates() == ()


# -- buttons ---------------------------------------------------------------------


async def test_a_pressed_button_reaches_the_callback_handler_and_is_answered(
    tg: FakeTelegram,
) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    app = make_app(tg)

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = [
            [
                InlineKeyboardButton("Allow once", callback_data="allow:1"),
                InlineKeyboardButton("Deny", callback_data="deny:1"),
            ]
        ]
        await update.message.reply_text("Run `ls`?", reply_markup=InlineKeyboardMarkup(keyboard))

    async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.from_user.id == alice.id
        await query.answer(f"chose {query.data}")
        await query.edit_message_text(f"Run `ls`? {query.data}")

    app.add_handler(CommandHandler("ask", ask))
    app.add_handler(CallbackQueryHandler(choose))
    async with polling(app) as errors:
        tg.send_user_message(chat, alice, "/ask")
        question = (await tg.until(lambda: tg.bot_messages(chat)))[0]
        assert question.callback_data == ["allow:1", "deny:1"]
        with pytest.raises(ValueError, match="no button"):
            tg.press_button(chat, alice, question.message_id, "allow:2")
        query_id = tg.press_button(chat, alice, question.message_id, "allow:1")
        await tg.until(lambda: tg.message(chat, question.message_id).edits)  # type: ignore[union-attr]
    assert errors == []
    answer = tg.callback_answers[0]
    assert (answer.callback_query_id, answer.text) == (query_id, "chose allow:1")
    assert tg.unanswered_callbacks == []
    shown = tg.message(chat, question.message_id)
    assert shown is not None
    # An edit that names no markup removes the keyboard, as on Telegram.
    assert (shown.text, shown.buttons) == ("Run `ls`? allow:1", ())


async def test_answering_a_query_twice_is_refused(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    async with make_bot(tg) as bot:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        sent = await bot.send_message(chat.id, "ready?", reply_markup=markup)
        query_id = tg.press_button(chat, alice, sent.message_id, "go")
        assert await bot.answer_callback_query(query_id)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query(query_id)
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(chat.id, "no", reply_markup=too_long)


# -- editing and deleting ----------------------------------------------------------


async def test_edits_and_the_not_modified_error(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    async with make_bot(tg) as bot:
        sent = await bot.send_message(chat.id, "draft one")
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("draft one", chat.id, sent.message_id)
        edited = await bot.edit_message_text("draft two", chat.id, sent.message_id)
        assert edited.edit_date is not None
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat.id, 999)
        # Same visible text, new formatting: a real change.
        await bot.edit_message_text("<b>draft two</b>", chat.id, sent.message_id, parse_mode="HTML")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
        await bot.edit_message_reply_markup(chat.id, sent.message_id, reply_markup=markup)
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_reply_markup(chat.id, sent.message_id, reply_markup=markup)
    shown = tg.message(chat, sent.message_id)
    assert shown is not None
    assert (shown.text, shown.edits, shown.callback_data) == ("draft two", 3, ["stop"])


async def test_deleted_messages_are_gone(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    tg.send_user_message(chat, alice, "hi")
    async with make_bot(tg) as bot:
        sent = await bot.send_message(chat.id, "oops")
        assert await bot.delete_message(chat.id, sent.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(chat.id, sent.message_id)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("back", chat.id, sent.message_id)
        again = await bot.send_message(chat.id, "better")
    assert [m.text for m in tg.messages(chat)] == ["hi", "better"]
    assert again.message_id == sent.message_id + 1


# -- limits and faults ---------------------------------------------------------------


async def test_injected_429_surfaces_as_retry_after(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    tg.rate_limit("sendMessage", chat, retry_after=7)
    async with make_bot(tg) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(chat.id, "hi")
        assert retry_after(caught.value) == 7
        await bot.send_message(chat.id, "hi")  # times=1: the next one goes through
    tg.rate_limit(retry_after=3)
    answer = httpx.post(
        f"{tg.api_base}/bot{TOKEN}/sendMessage", data={"chat_id": chat.id, "text": "x"}
    )
    assert answer.status_code == 429
    assert answer.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert tg.send_count(chat) == 1


async def test_a_blocked_bot_is_forbidden(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    group = tg.supergroup("Team")
    tg.block(chat)
    tg.block(group)
    async with make_bot(tg) as bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(chat.id, "hi")
        with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
            await bot.send_chat_action(group.id, "typing")
        tg.unblock(chat)
        await bot.send_message(chat.id, "hi again")


async def test_the_flood_limits_can_be_turned_on() -> None:
    clock = ManualClock()
    with FakeTelegram(token=TOKEN, clock=clock, limits=Limits()) as tg:
        chat = tg.private_chat(tg.user("Alice"))
        group = tg.group("Team")
        async with make_bot(tg) as bot:
            sent = await bot.send_message(chat.id, "one")
            with pytest.raises(RetryAfter) as caught:
                await bot.edit_message_text("one, edited", chat.id, sent.message_id)
            assert retry_after(caught.value) == 1
            clock.advance(1.0)
            await bot.edit_message_text("one, edited", chat.id, sent.message_id)

            for n in range(20):
                await bot.send_message(group.id, f"group {n}")
                clock.advance(1.0)
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(group.id, "one too many")
            assert retry_after(caught.value) == 40  # the first of the 20 leaves the minute
    assert tg.send_count(group) == 20


async def test_an_injected_server_error(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    tg.fail("sendChatAction", error=ApiError(502, "Bad Gateway"), times=2)
    async with make_bot(tg) as bot:
        for _ in range(2):
            with pytest.raises(TelegramError, match="Bad Gateway"):
                await bot.send_chat_action(chat.id, "typing")
        await bot.send_chat_action(chat.id, "typing")
        with pytest.raises(BadRequest, match="Wrong parameter action"):
            await bot.send_chat_action(chat.id, "dancing")
    assert [a.action for a in tg.chat_actions(chat)] == ["typing"]


# -- text ----------------------------------------------------------------------------


async def test_message_length_and_empty_text(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    async with make_bot(tg) as bot:
        await bot.send_message(chat.id, "x" * 4096)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(chat.id, "x" * 4097)
        # The limit is on the text after entities are parsed: tags do not count.
        await bot.send_message(chat.id, f"<b>{'y' * 4096}</b>", parse_mode="HTML")
        for empty in ("", "  \n "):
            with pytest.raises(BadRequest, match="Message text is empty"):
                await bot.send_message(chat.id, empty)
    assert tg.send_count(chat) == 2


async def test_html_is_checked_like_telegram_does(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    async with make_bot(tg) as bot:
        ok = await bot.send_message(
            chat.id, "<b>1 &lt; 2</b> &amp; <code>x</code>", parse_mode="HTML"
        )
        assert ok.text == "1 < 2 & x"
        for bad, why in [
            ("line<br>break", 'unsupported start tag "br" at byte offset 4'),
            ("1 < 2", "unclosed start tag at byte offset 2"),
            ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
            ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ]:
            with pytest.raises(BadRequest) as caught:
                await bot.send_message(chat.id, bad, parse_mode="HTML")
            assert why in caught.value.message.lower()


# -- drafts --------------------------------------------------------------------------


async def test_drafts_stream_in_a_private_chat_until_a_real_message(tg: FakeTelegram) -> None:
    assert hasattr(Bot, "send_message_draft")  # PTB 22.6+ has the method itself
    chat = tg.private_chat(tg.user("Alice"))
    group = tg.group("Team")
    async with make_bot(tg) as bot:
        assert await bot.send_message_draft(chat.id, draft_id=7, text="Hel")
        assert await bot.send_message_draft(chat.id, draft_id=7, text="Hello, wor")
        assert tg.active_draft(chat) is not None
        assert tg.active_draft(chat).text == "Hello, wor"  # type: ignore[union-attr]
        await bot.send_message(chat.id, "Hello, world")
        with pytest.raises(BadRequest, match="Textdraft_peer_invalid"):
            await bot.send_message_draft(group.id, draft_id=1, text="no drafts in groups")
        with pytest.raises(BadRequest, match="non-zero"):
            await bot.send_message_draft(chat.id, draft_id=0, text="x")
    assert [(d.draft_id, d.text) for d in tg.drafts(chat)] == [(7, "Hel"), (7, "Hello, wor")]
    assert tg.active_draft(chat) is None
    assert [m.text for m in tg.bot_messages(chat)] == ["Hello, world"]


async def test_a_draft_fades_after_thirty_seconds() -> None:
    clock = ManualClock()
    with FakeTelegram(token=TOKEN, clock=clock) as tg:
        chat = tg.private_chat(tg.user("Alice"))
        async with make_bot(tg) as bot:
            await bot.send_message_draft(chat.id, draft_id=1, text="thinking")
        clock.advance(30.5)
        assert tg.active_draft(chat) is None


# -- groups and topics -----------------------------------------------------------------


async def test_forum_topics_mentions_and_replies(tg: FakeTelegram) -> None:
    alice = tg.user("Alice", username="alice")
    forum = tg.supergroup("Lab", forum=True)
    topic = tg.create_topic(forum, "ideas", by=alice)
    app = make_app(tg)
    seen: Seen[dict[str, Any]] = Seen()

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
        opening = message.reply_to_message and message.reply_to_message.forum_topic_created
        seen.add(
            {
                "thread": message.message_thread_id,
                "topic": message.is_topic_message,
                "mentions": list(message.parse_entities(["mention"]).values()),
                # A topic message that replies to nothing replies to the topic's opening.
                "opening": opening and opening.name,
            }
        )
        await message.reply_text("on it")  # PTB passes the topic's thread id itself

    app.add_handler(MessageHandler(filters.Mention("fake_agent_bot"), answer))
    async with polling(app) as errors:
        tg.send_user_message(forum, alice, "no one asked you", thread=topic)
        tg.send_user_message(forum, alice, "@fake_agent_bot what now?", thread=topic)
        await tg.until(lambda: tg.bot_messages(forum))
    assert errors == []
    assert seen.items == [
        {"thread": topic, "topic": True, "mentions": ["@fake_agent_bot"], "opening": "ideas"}
    ]
    [reply] = tg.bot_messages(forum)
    assert (reply.thread_id, reply.text) == (topic, "on it")
    assert tg.messages(forum, thread=None) == []
    # In groups PTB quotes the message it answers unless told otherwise.
    assert reply.reply_to == tg.messages(forum, thread=topic)[1].message_id


async def test_a_reply_chain_in_a_plain_supergroup_is_not_a_topic(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    group = tg.supergroup("Team")
    async with make_bot(tg) as bot:
        ours = await bot.send_message(group.id, "ask me")
        tg.send_user_message(group, alice, "why?", reply_to=ours.message_id)
        [update] = await bot.get_updates()
        message = update.message
        assert message is not None and message.reply_to_message is not None
        assert message.message_thread_id == ours.message_id
        assert not message.is_topic_message
        await message.reply_text("because")  # PTB leaves the reply chain's id out
        with pytest.raises(BadRequest, match="Message thread not found"):
            await bot.send_message(group.id, "x", message_thread_id=ours.message_id)


async def test_privacy_mode_hides_group_chatter_from_the_bot() -> None:
    with FakeTelegram(token=TOKEN, privacy_mode=True) as tg:
        alice = tg.user("Alice")
        group = tg.group("Team")
        tg.send_user_message(group, alice, "just chatting")
        tg.send_user_message(group, alice, "@fake_agent_bot help")
        tg.send_user_message(group, alice, "/status")
        async with make_bot(tg) as bot:
            texts = [u.message.text for u in await bot.get_updates() if u.message]
            me = await bot.get_me()
    assert texts == ["@fake_agent_bot help", "/status"]
    assert me.can_read_all_group_messages is False


# -- files -------------------------------------------------------------------------------


async def test_a_photo_is_fetched_with_get_file_and_downloaded(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    app = make_app(tg)
    got: Seen[tuple[bytes, str | None, str | None]] = Seen()

    async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        largest = update.message.photo[-1]
        file = await largest.get_file()
        buffer = io.BytesIO()
        await file.download_to_memory(buffer)
        got.add((buffer.getvalue(), update.message.caption, file.file_path))

    app.add_handler(MessageHandler(filters.PHOTO, photo))
    async with polling(app) as errors:
        sent = tg.send_photo(chat, alice, picture, caption="look", width=1280, height=960)
        [(data, caption, url)] = await got.wait()
    assert errors == []
    assert (data, caption) == (picture, "look")
    # PTB turns file_path into a URL that holds the token.
    assert url is not None and url.startswith(f"{tg.api_base}/file/bot{TOKEN}/photos/")
    assert [(s["width"], s["height"]) for s in sent["photo"]] == [(90, 68), (1280, 960)]
    wrong = httpx.get(url.replace(TOKEN, "123456:wrong"))
    assert wrong.status_code == 404


async def test_documents_travel_both_ways(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    sent = tg.send_document(chat, alice, b"col\n1\n", file_name="data.csv", mime_type="text/csv")
    async with make_bot(tg) as bot:
        file = await bot.get_file(sent["document"]["file_id"])
        assert bytes(await file.download_as_bytearray()) == b"col\n1\n"
        with pytest.raises(BadRequest, match="Invalid file_id"):
            await bot.get_file("nope")
        posted = await bot.send_document(chat.id, b"report", filename="report.txt", caption="done")
    assert tg.calls("sendDocument")[0].encoding == "multipart"
    assert posted.document is not None and posted.document.file_name == "report.txt"
    assert tg.file_bytes(posted.document.file_id) == b"report"
    assert tg.bot_messages(chat)[0].text == "done"


# -- the wire ------------------------------------------------------------------------------


async def test_query_json_and_form_bodies_read_alike(tg: FakeTelegram) -> None:
    chat = tg.private_chat(tg.user("Alice"))
    base = f"{tg.api_base}/bot{TOKEN}/sendMessage"
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    # The markup as JSON text in a query or a form; as an object in a JSON body.
    answers = [
        httpx.get(base, params={"chat_id": str(chat.id), "text": "q", "reply_markup": markup}),
        httpx.post(
            base, json={"chat_id": chat.id, "text": "j", "reply_markup": json.loads(markup)}
        ),
        httpx.post(base, data={"chat_id": str(chat.id), "text": "f", "reply_markup": markup}),
    ]
    keyboards = [a.json()["result"]["reply_markup"]["inline_keyboard"] for a in answers]
    assert keyboards == [[[{"text": "A", "callback_data": "a"}]]] * 3
    assert [r.encoding for r in tg.calls("sendMessage")] == ["query", "json", "form"]
    assert all(isinstance(r.params["chat_id"], int) for r in tg.calls("sendMessage"))


async def test_every_call_is_recorded_in_order(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    other = tg.private_chat(tg.user("Bob"))
    async with make_bot(tg) as bot:
        await bot.send_chat_action(chat.id, "typing")
        await bot.send_message(chat.id, "one")
        await bot.send_message(other.id, "two")
        await bot.send_message(chat.id, "three")
    assert [r.method for r in tg.requests] == [
        "getMe",
        "sendChatAction",
        "sendMessage",
        "sendMessage",
        "sendMessage",
    ]
    assert (tg.send_count(chat), tg.send_count(other)) == (2, 1)
    assert tg.calls("sendMessage", chat=other)[0].params["text"] == "two"


async def test_a_persons_edit_arrives_as_edited_message(tg: FakeTelegram) -> None:
    alice = tg.user("Alice")
    chat = tg.private_chat(alice)
    sent = tg.send_user_message(chat, alice, "teh plan")
    tg.edit_user_message(chat, sent["message_id"], "the plan")
    async with make_bot(tg) as bot:
        first, second = await bot.get_updates()
    assert first.message is not None and second.edited_message is not None
    assert second.edited_message.text == "the plan"
    assert second.edited_message.message_id == sent["message_id"]


async def test_stopping_the_fake_releases_a_held_long_poll() -> None:
    with FakeTelegram(token=TOKEN) as tg:
        bot = make_bot(tg)
        await bot.initialize()
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await tg.until(lambda: any(r.status == 0 for r in tg.calls("getUpdates")))
        started = time.monotonic()
    try:
        assert await poll == ()
    except TelegramError:
        pass  # the connection closed first: also fine
    finally:
        await bot.shutdown()
    assert time.monotonic() - started < 2.0


# -- the token -------------------------------------------------------------------------------


async def test_the_fake_never_logs_the_token(
    tg: FakeTelegram, capfd: pytest.CaptureFixture[str]
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    log = logging.getLogger("fake_telegram")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        chat = tg.private_chat(tg.user("Alice"))
        file_id = tg.add_file(b"secret plans").file_id
        async with make_bot(tg) as bot:
            await bot.send_message(chat.id, "hi")
            file = await bot.get_file(file_id)
            await file.download_as_bytearray()
        with pytest.raises(InvalidToken):
            await make_bot(tg, "123456:another-secret").get_me()
        httpx.get(f"{tg.api_base}/file/bot{TOKEN}/no/such/file")
        httpx.get(f"{tg.api_base}/bot{TOKEN}")
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    err = capfd.readouterr().err
    assert "sendMessage" in err and "getFile" in err and "/file/bot<token>/" in err
    assert TOKEN not in err and TOKEN.split(":")[1] not in err
    assert "another-secret" not in err


async def test_httpx_logs_request_urls_with_the_token_at_info(
    tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Not the fake's doing: PTB's HTTP client logs every URL at INFO, token
    included. The channel must keep the "httpx" logger above INFO."""
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with make_bot(tg) as bot:
            await bot.get_me()
    assert TOKEN in caplog.text

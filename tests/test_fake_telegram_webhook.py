"""The fake Telegram Bot API's webhooks, driven by python-telegram-bot's ``Bot``
and received by a plain HTTP server on loopback: updates are POSTed with the
secret header, in order, tried again when refused, and ``getWebhookInfo``
reports in Telegram's shape."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fake_telegram import FakeTelegram
from telegram import Bot
from telegram.error import BadRequest, Conflict

pytestmark = pytest.mark.anyio

TOKEN = "123456:AAFake-token_for-hooks"
SECRET = "s3cret_for-the-hook"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Receiver:
    """What a webhook received: each POST's path, headers and JSON body;
    ``statuses`` are answered in turn (then 200)."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    got: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, _, body in self.got]


@contextmanager
def receiver(*statuses: int) -> Iterator[Receiver]:
    seen = Receiver(statuses=list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with seen.lock:
                seen.got.append((self.path, dict(self.headers), body))
                status = seen.statuses.pop(0) if seen.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    seen.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_bot(tg: FakeTelegram) -> Bot:
    return Bot(TOKEN, base_url=f"{tg.api_base}/bot", base_file_url=f"{tg.api_base}/file/bot")


async def test_updates_are_posted_in_order_with_the_secret() -> None:
    with FakeTelegram(token=TOKEN) as tg, receiver() as hook:
        alice = tg.user("Alice")
        chat = tg.private_chat(alice)
        tg.send_user_message(chat, alice, "before the hook")
        async with make_bot(tg) as bot:
            await bot.set_webhook(
                hook.url,
                secret_token=SECRET,
                allowed_updates=["message", "callback_query"],
                max_connections=1,
            )
            sent = await bot.send_message(chat.id, "pick", reply_markup=_one_button())
            tg.send_user_message(chat, alice, "after")
            tg.press_button(chat, alice, sent.message_id, "yes")
            await tg.until(lambda: len(tg.webhook_calls) == 3)
            with pytest.raises(Conflict, match="webhook is active"):
                await bot.get_updates()
            info = await bot.get_webhook_info()
        bodies = hook.bodies()
        assert [b["message"]["text"] for b in bodies[:2]] == ["before the hook", "after"]
        assert bodies[2]["callback_query"]["data"] == "yes"
        ids = [b["update_id"] for b in bodies]
        assert ids == sorted(ids) and len(set(ids)) == 3
        for path, headers, _ in hook.got:
            assert path == "/hook"
            assert headers["X-Telegram-Bot-Api-Secret-Token"] == SECRET
            assert headers["Content-Type"] == "application/json"
        assert all(c.ok and c.error == "" for c in tg.webhook_calls)
        assert tg.pending_updates == []
        assert info.url == hook.url and info.pending_update_count == 0
        assert info.max_connections == 1 and info.last_error_message is None
        assert list(info.allowed_updates or ()) == ["message", "callback_query"]


async def test_a_refused_update_is_sent_again_then_given_up() -> None:
    with FakeTelegram(token=TOKEN) as tg, receiver(503, 500, 401, 403, 200) as hook:
        tg.webhook_retry_secs = 0.01
        alice = tg.user("Alice")
        chat = tg.private_chat(alice)
        async with make_bot(tg) as bot:
            await bot.set_webhook(hook.url, secret_token=SECRET)
            tg.send_user_message(chat, alice, "one")
            await tg.until(lambda: len(tg.webhook_calls) == tg.webhook_attempts)
            info = await bot.get_webhook_info()
            tg.send_user_message(chat, alice, "two")
            await tg.until(lambda: len(tg.webhook_calls) == tg.webhook_attempts + 1)
        statuses = [c.status for c in tg.webhook_calls]
        assert statuses == [503, 500, 401, 403, 200]
        texts = [b["message"]["text"] for b in hook.bodies()]
        # "one" was tried four times, then given up, as Telegram gives up.
        assert texts == ["one"] * 4 + ["two"]
        assert info.last_error_message == "Wrong response from the webhook: 403 Forbidden"
        assert info.pending_update_count == 0


async def test_an_unreachable_webhook_keeps_its_updates_for_later() -> None:
    with FakeTelegram(token=TOKEN) as tg:
        tg.webhook_attempts = 1
        alice = tg.user("Alice")
        chat = tg.private_chat(alice)
        async with make_bot(tg) as bot:
            await bot.set_webhook(f"http://127.0.0.1:{closed_port()}/hook")
            tg.send_user_message(chat, alice, "lost")
            await tg.until(lambda: tg.webhook_calls)
            assert tg.webhook_calls[0].status is None
            assert tg.webhook_calls[0].error.startswith("Connection")
            # Beyond loopback the fake never calls: updates stay pending.
            await bot.set_webhook("https://bot.example/hook")
            tg.send_user_message(chat, alice, "kept")
            await bot.delete_webhook(drop_pending_updates=False)
            updates = await bot.get_updates()
        assert [u.message.text for u in updates if u.message] == ["kept"]
        assert len(tg.webhook_calls) == 1


@pytest.mark.parametrize(
    ("url", "secret", "words"),
    [
        ("http://bot.example/hook", None, "An HTTPS URL must be provided"),
        ("https://bot.example:8787/hook", None, "only on ports 80, 88, 443 or 8443"),
        ("https://bot.example/hook", "has:colon", "secret token contains unallowed characters"),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses(
    url: str, secret: str | None, words: str
) -> None:
    with FakeTelegram(token=TOKEN) as tg:
        async with make_bot(tg) as bot:
            with pytest.raises(BadRequest, match=f"(?i){words}"):
                await bot.set_webhook(url, secret_token=secret)
            assert tg.webhook is None


def _one_button() -> Any:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])

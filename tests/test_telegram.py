"""The Telegram channel (platform adapter, channel worker, delivery) against
the fake Bot API on loopback, with the real python-telegram-bot in between.
Most tests run twice: receiving by long polling, and by webhook (the fake
POSTs the updates to the HTTP app's webhook route, served by uvicorn)."""

from __future__ import annotations

import logging
import socket
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import uvicorn
from anyio.abc import TaskGroup
from chat_kit import ASKER
from fake_telegram import FakeTelegram
from pydantic import SecretStr

from bridge.channels import reply_plan as rp
from bridge.channels.delivery import Delivery
from bridge.channels.http.app import ApiRoute, create_app
from bridge.channels.inbound import ChannelAccess, ChannelWorker
from bridge.channels.platform import Incoming, Press
from bridge.channels.telegram import HANDLE_ATTEMPTS, TelegramPlatform
from bridge.channels.telegram_webhook import Webhook, webhook_hook
from bridge.conversations.dispatcher import Dispatcher
from bridge.server.serve import bind
from bridge.store.memory import MemoryStore
from bridge.store.records import Route
from bridge.turn.profile import Profile

pytestmark = [
    pytest.mark.anyio,
    # python-telegram-bot warns about its own RetryAfter as it builds one.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
TOKEN = "123456:AAtest-token_value"
SECRET = "hook-secret_0123456789abcdef"
ROUTE = Route("bundled:test", "/", "test")
ANN_ID = 5001


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def quick(thread: str) -> rp.Limits:
    """Telegram's limits, with the test's pace: no waiting between edits."""
    from bridge.channels.telegram import limits_for

    return replace(
        limits_for(thread), edit_interval=0.05, send_interval=0.0, first_chars=1, first_delay=0
    )


def agent(tmp: Path, script: str) -> Profile:
    path = tmp / "agent.sh"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    return Profile(command="/bin/sh", args=[str(path)], timeout_secs=20)


@pytest.fixture(params=["polling", "webhook"])
def receiving(request: pytest.FixtureRequest) -> str:
    """How the bot receives: each test runs both ways."""
    return str(request.param)


@asynccontextmanager
async def telegram_bridge(
    tmp: Path, profile: Profile, receiving: str, *, policy: str = "pairing"
) -> AsyncIterator[tuple[FakeTelegram, Dispatcher]]:
    with FakeTelegram(token=TOKEN) as tg:
        sock = bind("127.0.0.1", 0) if receiving == "webhook" else None
        webhook = None
        if sock is not None:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/telegram/hook"
            webhook = Webhook(url, SecretStr(SECRET))
        platform = TelegramPlatform(
            TOKEN, api_base=tg.api_base, files_dir=tmp / "files", poll_timeout=1, webhook=webhook
        )
        async with MemoryStore() as store, Dispatcher(store, {ROUTE: profile}) as d:
            await platform.start()
            rules = ChannelAccess(
                policy=policy,  # type: ignore[arg-type]
                users={str(ANN_ID): ("ann", False)},
                bot_username=platform.username,
            )
            worker = ChannelWorker(platform, d, ROUTE, rules)
            async with anyio.create_task_group() as tg_tasks:
                if sock is not None:
                    serve_webhook(tg_tasks, platform, d, sock)
                tg_tasks.start_soon(platform.run, worker)
                tg_tasks.start_soon(Delivery(platform, d, quick).run)
                yield tg, d
                tg_tasks.cancel_scope.cancel()
            await platform.close()
        if sock is not None:
            sock.close()


def serve_webhook(
    tasks: TaskGroup, platform: TelegramPlatform, d: Dispatcher, sock: socket.socket
) -> None:
    """The HTTP app with the platform's webhook route, served on ``sock``."""
    app = create_app(d, [ApiRoute("test", ROUTE)], page=False, hooks=[webhook_hook(platform)])
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    tasks.start_soon(uvicorn.Server(config).serve, [sock])


async def replies(tg: FakeTelegram, chat: object, n: int = 1) -> list[str]:
    shown = await tg.until(lambda: (m := tg.bot_messages(chat)) and len(m) >= n and m)
    return [m.text for m in shown]


async def test_a_private_chat_streams_a_draft_and_ends_with_the_reply(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(
        tmp_path,
        """
        for i in 1 2 3; do echo "AGENT_PARTIAL:\\"step $i. \\""; sleep 0.1; done
        echo "AGENT_SESSION:s-1"
        echo "all done: $AGENT_MESSAGE (resumed '$AGENT_SESSION_ID')"
        """,
    )
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        tg.send_user_message(chat, ann, "hello")
        await tg.until(lambda: any("all done" in m.text for m in tg.bot_messages(chat)))
        assert [m.text for m in tg.bot_messages(chat)] == ["all done: hello (resumed '')"]
        assert tg.drafts(chat), "the reply streamed as a draft first"
        tg.send_user_message(chat, ann, "again")
        texts = await replies(tg, chat, 2)
        assert texts[-1] == "all done: again (resumed 's-1')"


async def test_a_stranger_is_given_a_code_and_answered_once_approved(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(tmp_path, 'echo "hi $AGENT_MESSAGE"\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, d):
        eve = tg.user("Eve", username="eve")
        chat = tg.private_chat(eve)
        tg.send_user_message(chat, eve, "let me in")
        (note,) = await replies(tg, chat)
        assert "pairing code is" in note
        code = note.split("code is ")[1].split()[0]
        assert await d.store.decide_pairing(code, approve=True, by="root") is not None
        tg.send_user_message(chat, eve, "please")
        texts = await replies(tg, chat, 2)
        assert texts[-1] == "hi please"


async def test_a_group_answers_only_when_mentioned(tmp_path: Path, receiving: str) -> None:
    profile = agent(tmp_path, 'echo "seen: $AGENT_MESSAGE"\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        group = tg.group("Team")
        tg.send_user_message(group, ann, "just chatting")
        tg.send_user_message(group, ann, "@fake_agent_bot what now?")
        (text,) = await replies(tg, group)
        assert text == "seen: @fake_agent_bot what now?"
        assert not tg.drafts(group), "groups stream by editing, not drafts"


async def test_approval_buttons_work_for_the_owner_only(tmp_path: Path, receiving: str) -> None:
    async with telegram_bridge(tmp_path, ASKER, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        bob = tg.user("Bob", username="bob")
        group = tg.group("Team")
        tg.send_user_message(group, ann, "@fake_agent_bot go")
        card = await tg.until(
            lambda: next((m for m in tg.bot_messages(group) if m.callback_data), None)
        )
        assert "Bash" in card.text and len(card.callback_data) == 3
        tg.press_button(group, bob, card.message_id, card.callback_data[0])
        await tg.until(lambda: tg.callback_answers)
        assert "Only the person who asked" in (tg.callback_answers[-1].text or "")
        tg.press_button(group, ann, card.message_id, card.callback_data[0])
        await tg.until(lambda: any("allow=True" in m.text for m in tg.bot_messages(group)))
        shown = tg.message(group, card.message_id)
        assert shown.text.startswith("Allowed: Bash (answered by ann)") and not shown.buttons


async def test_a_rate_limit_storm_still_delivers_the_whole_reply(
    tmp_path: Path, receiving: str
) -> None:
    long = " ".join(f"w{i}" for i in range(1200))  # more than one 4,096-character message
    profile = agent(tmp_path, f'echo "{long}"\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        group = tg.group("Team")
        tg.rate_limit("sendMessage", retry_after=1, times=3)
        tg.send_user_message(group, ann, "@fake_agent_bot go")
        texts = await replies(tg, group, 2)
        assert all(len(t) <= 4096 for t in texts)
        assert " ".join(t.strip() for t in texts) == long


async def test_the_token_never_reaches_the_logs_or_the_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, receiving: str
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = agent(tmp_path, 'env | grep -c "AAtest" || true\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        tg.send_user_message(chat, ann, "hi")
        (text,) = await replies(tg, chat)
    assert text.strip() == "0", "the agent's environment holds no token"
    assert "AAtest" not in caplog.text and SECRET not in caplog.text


async def test_a_photo_reaches_the_agent_as_a_local_file(tmp_path: Path, receiving: str) -> None:
    profile = agent(tmp_path, 'echo "$AGENT_ATTACHMENTS"\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, _):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        chat = tg.private_chat(ann)
        tg.send_photo(chat, ann, b"\xff\xd8fake-jpeg", caption="what is this?")
        (text,) = await replies(tg, chat)
    assert "file://" in text and "AAtest" not in text and "bot" not in text.split("file://")[1][:8]
    path = Path(text.split('"url": "file://')[1].split('"')[0])
    assert path.read_bytes() == b"\xff\xd8fake-jpeg"


async def test_two_chats_and_a_forum_topic_are_three_conversations(
    tmp_path: Path, receiving: str
) -> None:
    profile = agent(
        tmp_path,
        """
        echo "AGENT_SESSION:s-$AGENT_MESSAGE"
        sleep 0.3
        echo "$AGENT_MESSAGE after '$AGENT_SESSION_ID'"
        """,
    )
    async with telegram_bridge(tmp_path, profile, receiving, policy="open") as (tg, d):
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        bob = tg.user("Bob", username="bob")
        first, second = tg.private_chat(ann), tg.private_chat(bob)
        forum = tg.supergroup("Forum", forum=True)
        topic = tg.create_topic(forum, "Ideas", by=ann)
        tg.send_user_message(first, ann, "a")
        tg.send_user_message(second, bob, "b")
        tg.send_user_message(forum, ann, "@fake_agent_bot t", thread=topic)
        assert await replies(tg, first) == ["a after ''"]
        assert await replies(tg, second) == ["b after ''"]
        in_topic = await tg.until(lambda: [m for m in tg.bot_messages(forum) if m.thread_id])
        assert in_topic[0].thread_id == topic
        assert in_topic[0].text == "@fake_agent_bot t after ''"
        tg.send_user_message(first, ann, "again")
        texts = await replies(tg, first, 2)
        assert texts[-1] == "again after 's-a'", "each chat resumes its own session"
        convs = await d.store.conversations(channel="telegram")
    assert len(convs) == 3 and any("/" in c.key.key for c in convs)


async def test_a_denied_code_lets_nobody_in(tmp_path: Path, receiving: str) -> None:
    profile = agent(tmp_path, 'echo "hi $AGENT_MESSAGE"\n')
    async with telegram_bridge(tmp_path, profile, receiving) as (tg, d):
        eve = tg.user("Eve", username="eve")
        chat = tg.private_chat(eve)
        tg.send_user_message(chat, eve, "let me in")
        (note,) = await replies(tg, chat)
        code = note.split("code is ")[1].split()[0]
        assert await d.store.decide_pairing(code, approve=False, by="root") is not None
        tg.send_user_message(chat, eve, "please")
        texts = await replies(tg, chat, 2)
        assert "pairing code is" in texts[-1] and code not in texts[-1], "asked to pair anew"
        assert await d.store.conversations(channel="telegram") == [], "nothing reached an agent"


async def test_an_update_that_fails_is_tried_again_before_it_is_confirmed(
    tmp_path: Path,
) -> None:
    inbox = Flaky(fail=1)
    with FakeTelegram(token=TOKEN) as tg:
        platform = TelegramPlatform(TOKEN, api_base=tg.api_base, files_dir=tmp_path, poll_timeout=1)
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        tg.send_user_message(tg.private_chat(ann), ann, "hello")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(platform.run, inbox)
            with anyio.fail_after(10):
                while len(inbox.seen) < 2:
                    await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()
        await platform.close()
    assert inbox.seen == ["hello", "hello"]


async def test_a_webhook_update_that_keeps_failing_is_refused_and_sent_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Flaky(fail=HANDLE_ATTEMPTS)  # every try of the first delivery fails
    with FakeTelegram(token=TOKEN) as tg:
        sock = bind("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        platform = TelegramPlatform(
            TOKEN, api_base=tg.api_base, files_dir=tmp_path, webhook=Webhook(url, SecretStr(SECRET))
        )
        ann = tg.user("Ann", username="ann", id=ANN_ID)
        tg.send_user_message(tg.private_chat(ann), ann, "hello")
        async with MemoryStore() as store, Dispatcher(store, {ROUTE: ASKER}) as d:
            await platform.start()
            async with anyio.create_task_group() as tasks:
                serve_webhook(tasks, platform, d, sock)
                tasks.start_soon(platform.run, inbox)
                await tg.until(lambda: [c for c in tg.webhook_calls if c.ok], timeout=20)
                tasks.cancel_scope.cancel()
        await platform.close()
        sock.close()
    assert [c.status for c in tg.webhook_calls] == [503, 200]
    assert inbox.seen == ["hello"] * (HANDLE_ATTEMPTS + 1)
    assert "could not be handled; answered 503: Telegram sends it again" in caplog.text


class Flaky:
    """An inbox whose first ``fail`` messages fail, as a busy store would."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seen: list[str] = []

    async def message(self, incoming: Incoming) -> None:
        self.seen.append(incoming.text)
        if len(self.seen) <= self.fail:
            raise RuntimeError("the store is busy for a moment")

    async def press(self, press: Press) -> str:
        return ""

    async def follows(self, thread: str) -> bool:
        return False

"""The channel worker (bridge.channels.inbound) with a recording platform:
access, pairing, commands, redelivery, busy refusals and approval buttons,
over a real dispatcher and store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from chat_kit import ASKER, Recorder

from bridge.channels.errors import Closing
from bridge.channels.inbound import ChannelAccess, ChannelWorker, approval_data
from bridge.channels.platform import Incoming, Press
from bridge.conversations.dispatcher import Dispatcher
from bridge.store.memory import MemoryStore
from bridge.store.records import (
    CONVERSATION_RESET,
    MESSAGE,
    TURN_COMPLETED,
    TURN_PERMISSION,
    ConversationKey,
    Route,
)
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio
AGENTS = Path(__file__).parent / "agents"
ROUTE = Route("bundled:test", "/", "test")
USERS = {"42": ("ann", False), "1": ("root", True)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def worker(
    profile: Profile, **rules: object
) -> AsyncIterator[tuple[ChannelWorker, Recorder, Dispatcher]]:
    platform = Recorder()
    async with MemoryStore() as store, Dispatcher(store, {ROUTE: profile}) as d:
        yield (
            ChannelWorker(platform, d, ROUTE, ChannelAccess(users=USERS, **rules)),  # type: ignore[arg-type]
            platform,
            d,
        )


def say(text: str, user: str = "42", *, pid: str = "", private: bool = True) -> Incoming:
    return Incoming("t1", pid or f"u-{text}", user, f"user {user}", text, private)


async def log_of(d: Dispatcher, thread: str = "t1") -> list:
    conv = await d.store.lookup(ConversationKey("chat", thread, ROUTE))
    return [] if conv is None else await d.store.read(conv.id)


ECHO = Profile(command="/bin/sh", args=["-c", 'echo "got $AGENT_MESSAGE"'])


async def test_a_known_user_is_answered_and_a_redelivery_is_not_doubled() -> None:
    async with worker(ECHO) as (w, platform, d):
        await w.message(say("hello", pid="upd-1"))
        await w.message(say("hello", pid="upd-1"))  # the platform sent it again
        with anyio.fail_after(10):
            while not any(e.type == TURN_COMPLETED for e in await log_of(d)):
                await anyio.sleep(0.02)
        log = await log_of(d)
    messages = [e for e in log if e.type == MESSAGE]
    assert [(m.data["from_user"], m.data["platform_id"]) for m in messages] == [("ann", "upd-1")]
    assert platform.posts == [], "the agent's reply is the delivery worker's"


async def test_a_stranger_gets_a_code_and_is_answered_once_an_admin_approves() -> None:
    async with worker(ECHO) as (w, platform, d):
        await w.message(say("hi", user="99"))
        assert "pairing code is" in platform.said() and await log_of(d) == []
        code = platform.said().split("code is ")[1].split()[0]
        await w.message(say("again", user="99"))
        assert code in platform.said(), "the same code"
        assert await d.store.decide_pairing(code, approve=True, by="root") is not None
        await w.message(say("let me in", user="99"))
        log = await log_of(d)
    assert [e.data["from_user"] for e in log if e.type == MESSAGE] == ["id:99"]


async def test_allowlist_tells_a_stranger_their_id_and_groups_need_a_mention() -> None:
    async with worker(ECHO, policy="allowlist") as (w, platform, d):
        await w.message(say("hi", user="99"))
        assert "Your chat id is 99" in platform.said()
        await w.message(say("chatter", private=False))
        before = len(platform.posts)
        await w.message(Incoming("t1", "g1", "99", "Eve", "hey bot", False, addressed=True))
        assert len(platform.posts) == before + 1 and "id is 99" in platform.said()
        assert await log_of(d) == [], "nothing reached the agent"


async def test_commands_status_new_cancel_help_whoami() -> None:
    async with worker(ECHO) as (w, platform, d):
        await w.message(say("/status"))
        assert "Agent: test" in platform.said() and "idle" in platform.said()
        await w.message(say("/new"))
        assert any(e.type == CONVERSATION_RESET for e in await log_of(d))
        await w.message(say("/cancel"))
        assert platform.said() == "Nothing was running."
        await w.message(say("/help"))
        assert "/status - " in platform.said()
        await w.message(say("/whoami"))
        assert "knows you as ann" in platform.said()


async def test_a_busy_conversation_tells_the_person_why() -> None:
    slow = Profile(command="/bin/sh", args=["-c", "sleep 5"], busy_policy="reject")
    async with worker(slow) as (w, platform, d):
        await w.message(say("one"))
        with anyio.fail_after(5):
            while not (await d.store.lookup(ConversationKey("chat", "t1", ROUTE))).running_turn:  # type: ignore[union-attr]
                await anyio.sleep(0.02)
        await w.message(say("two"))
        assert platform.said().startswith("Not sent: this conversation is busy")
        await w.message(say("/cancel"))


async def test_approval_buttons_answer_only_for_the_owner_or_an_admin() -> None:
    async with worker(ASKER) as (w, _, d):
        await w.message(say("go"))
        with anyio.fail_after(10):
            while not (requests := [e for e in await log_of(d) if e.type == TURN_PERMISSION]):
                await anyio.sleep(0.02)
        rid = requests[0].id
        other = Press("t1", "99", "Eve", approval_data(rid, "once"))
        assert "Only the person who asked" in await w.press(other)
        assert await w.press(Press("t1", "42", "Ann", approval_data(rid, "once"))) == "Allowed."
        late = await w.press(Press("t1", "1", "Root", approval_data(rid, "deny")))
        assert late == "It was answered already."
        assert (
            await w.press(Press("t1", "42", "Ann", "nonsense")) == "This button is not one of mine."
        )


async def test_a_message_while_the_bridge_shuts_down_is_left_unconfirmed() -> None:
    async with worker(ECHO) as (w, platform, d):
        await w.message(say("/status"))  # the conversation exists
        await d.aclose(grace=0)
        with pytest.raises(Closing, match="shutting down"):
            await w.message(say("too late"))
        assert not any("too late" in text for _, text in platform.posts), "no one is told"
        assert [e for e in await log_of(d) if e.type == MESSAGE] == [], "nothing was written"


async def test_a_press_on_a_request_whose_turn_ended_says_so() -> None:
    async with worker(ASKER) as (w, _, d):
        await w.message(say("go"))
        with anyio.fail_after(10):
            while not (requests := [e for e in await log_of(d) if e.type == TURN_PERMISSION]):
                await anyio.sleep(0.02)
        await w.message(say("/cancel"))
        with anyio.fail_after(10):
            while not any(e.type == TURN_COMPLETED for e in await log_of(d)):
                await anyio.sleep(0.02)
        note = await w.press(Press("t1", "42", "Ann", approval_data(requests[0].id, "once")))
    assert note == (
        "Nobody answered before it closed (its time ran out or its turn ended), so it was denied."
    )

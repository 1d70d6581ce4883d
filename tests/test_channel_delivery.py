"""The delivery worker (bridge.channels.delivery) over a real dispatcher
and store, on a recording platform: a streamed reply split and finished,
a rate limit, an approval card, and a restart that finishes a half-delivered
reply by editing what was posted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from chat_kit import ASKER, Recorder

from bridge.channels import reply_plan as rp
from bridge.channels.delivery import Delivery
from bridge.channels.inbound import ChannelAccess, ChannelWorker, approval_data
from bridge.channels.platform import Incoming, Press
from bridge.conversations.dispatcher import Dispatcher
from bridge.store.memory import MemoryStore
from bridge.store.records import (
    DELIVERY_FINISHED,
    DELIVERY_POSTED,
    TURN_COMPLETED,
    ConversationKey,
    NewMessage,
    Route,
)
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio
AGENTS = Path(__file__).parent / "agents"
ROUTE = Route("bundled:test", "/", "test")
FAST = rp.Limits(
    max_length=60, edit_interval=0.01, send_interval=0.0, first_chars=1, first_delay=0.0
)
STREAMER = Profile(
    command="/bin/sh",
    args=[
        "-c",
        'for i in 1 2 3 4 5 6; do echo "AGENT_PARTIAL:\\"part $i of the reply, '
        'streamed. \\""; sleep 0.02; done; echo "the whole answer"',
    ],
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def bridge(
    profile: Profile, store: MemoryStore | None = None
) -> AsyncIterator[tuple[ChannelWorker, Recorder, Dispatcher]]:
    platform = Recorder()
    async with store or MemoryStore() as s, Dispatcher(s, {ROUTE: profile}) as d:
        delivery = Delivery(platform, d, FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(delivery.run)
            worker = ChannelWorker(platform, d, ROUTE, ChannelAccess(users={"42": ("ann", False)}))
            yield worker, platform, d
            tg.cancel_scope.cancel()


async def finished(d: Dispatcher, turns: int = 1) -> list:
    """The log, once the channel has acknowledged ``turns`` turns."""
    with anyio.fail_after(20):
        while True:
            conv = await d.store.lookup(ConversationKey("chat", "t1", ROUTE))
            log = [] if conv is None else await d.store.read(conv.id)
            if sum(e.type == DELIVERY_FINISHED for e in log) >= turns:
                return log
            await anyio.sleep(0.02)


def say(text: str) -> Incoming:
    return Incoming("t1", f"p-{text}", "42", "Ann", text, True)


async def test_a_streamed_reply_ends_as_exactly_the_final_text() -> None:
    async with bridge(STREAMER) as (w, platform, d):
        await w.message(say("go"))
        log = await finished(d)
        assert platform.texts("t1") == ["the whole answer"]
        edits = [c for c in platform.calls if c[0] == "edit"]
        assert edits, "the preview was edited as the text grew"
        completed = next(e for e in log if e.type == TURN_COMPLETED)
        conv = await d.store.lookup(ConversationKey("chat", "t1", ROUTE))
        assert conv is not None
        assert await d.store.acked("chat", conv.id) == completed.id
        posted = [e for e in log if e.type == DELIVERY_POSTED]
        assert posted and all(e.data["ids"] for e in posted)


async def test_a_long_reply_is_split_and_a_rate_limit_only_delays_it() -> None:
    long = " ".join(f"word{i}" for i in range(40))
    profile = Profile(command="/bin/echo", args=[long])
    async with bridge(profile) as (w, platform, d):
        platform.rate_limits = [0.05, 0.05]
        await w.message(say("go"))
        await finished(d)
        texts = platform.texts("t1")
    assert len(texts) > 1 and all(len(t) <= 60 for t in texts)
    assert " ".join(t.strip() for t in texts) == long


async def test_an_error_is_shown_with_its_reason() -> None:
    profile = Profile(command="/bin/sh", args=["-c", 'echo "AGENT_ERROR:\\"the model is down\\""'])
    async with bridge(profile) as (w, platform, d):
        await w.message(say("go"))
        await finished(d)
        assert any("the model is down" in t for t in platform.texts("t1"))


async def test_an_approval_card_is_answered_by_its_button_and_updated() -> None:
    async with bridge(ASKER) as (w, platform, d):
        await w.message(say("go"))
        with anyio.fail_after(10):
            while not any(b for _, _, b in platform.shown.values()):
                await anyio.sleep(0.02)
        (card_id, (_, text, buttons)), *_ = [(k, v) for k, v in platform.shown.items() if v[2]]
        assert "Bash" in text and [b.label for b in buttons] == [
            "Allow once",
            "Allow for this session",
            "Deny",
        ]
        note = await w.press(Press("t1", "42", "Ann", buttons[0].data, card_id))
        assert note == "Allowed."
        await finished(d)
        assert platform.shown[card_id][1].startswith("Allowed: Bash (answered by ann)")
        assert platform.shown[card_id][2] == (), "the buttons are gone"
        assert any("allow=True" in t for t in platform.texts("t1"))


async def test_after_a_crash_the_half_delivered_reply_is_finished_by_editing() -> None:
    store = MemoryStore()
    conv = await store.open(ConversationKey("chat", "t1", ROUTE))
    event, _ = await store.add_message(conv.id, NewMessage("go", from_user="ann"))
    # A bridge took the turn, streamed, posted message "7" and died.
    claim = await store.claim(conv.id, "dead:1:x", lease_secs=60)
    assert claim is not None
    _, queued = await store.take(conv.id, "dead:1:x", [event.id], text="go")
    await store.start(conv.id, "dead:1:x", queued.turn, "")
    await store.append(
        conv.id, "dead:1:x", queued.turn, "turn.partial", {"text": "half", "offset": 0}
    )
    await store.delivered(
        conv.id, "chat", DELIVERY_POSTED, ["7"], turn=queued.turn, data={"slot": 0, "text": "half"}
    )
    await store.complete(
        conv.id,
        "dead:1:x",
        queued.turn,
        {
            "status": "ok",
            "reply": "half and the rest",
            "session_id": "",
            "exit_code": 0,
            "error": None,
            "hint": "",
            "warnings": [],
            "timed_out": False,
            "duration_ms": 5,
        },
        captured_session=None,
        epoch=0,
        release=True,
    )
    platform = Recorder()
    platform.shown["7"] = ("t1", "half", ())  # what the dead bridge had posted
    async with store, Dispatcher(store, {ROUTE: STREAMER}) as d:
        delivery = Delivery(platform, d, FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(delivery.run)
            await finished(d)
            tg.cancel_scope.cancel()
    assert [c[0] for c in platform.calls] == ["edit"], platform.calls
    assert platform.texts("t1") == ["half and the rest"]


async def test_approval_data_fits_telegrams_64_bytes() -> None:
    assert len(approval_data(10**12, "session").encode()) <= 64


async def test_a_failure_while_delivering_starts_that_conversation_again() -> None:
    profile = Profile(command="/bin/echo", args=["answered"])
    async with bridge(profile) as (w, platform, d):
        broken = platform.post
        calls = 0

        async def post_once_broken(thread: str, text: str, **kw: object) -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in a platform adapter")
            return await broken(thread, text, **kw)  # type: ignore[arg-type]

        platform.post = post_once_broken  # type: ignore[method-assign]
        await w.message(say("go"))
        await finished(d)
        assert platform.texts("t1") == ["answered"]

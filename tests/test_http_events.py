"""The event stream's own rules, read from the generator the route serves:
framing, keep-alive comments, the turn filter, the end at shutdown."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from bridge.channels.http.events import stream
from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.hub import Cursor
from bridge.store.memory import MemoryStore
from bridge.store.records import ConversationKey, Route
from bridge.turn.profile import Profile

ROUTE = Route("bench:agent", "/", "t")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def messages(chunks: list[bytes]) -> list[dict[str, str]]:
    out = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "data" in fields:
            out.append(fields)
    return out


async def test_keep_alive_comments_go_out_while_nothing_happens(tmp_path: Path) -> None:
    profile = Profile(command="/bin/echo", args=["hi"])
    async with MemoryStore() as store, Dispatcher(store, {ROUTE: profile}) as d:
        conv = await d.open(ConversationKey("http", "a/1", ROUTE))
        got: list[bytes] = []
        with anyio.move_on_after(0.35):
            async for chunk in stream(d, conv.id, Cursor(0), heartbeat_secs=0.1):
                got.append(chunk)
    assert got[0].startswith(b"retry: 1000\n"), got
    assert got[1:] and all(c == b": keep-alive\n\n" for c in got[1:]), got
    assert len(got) >= 3


async def test_a_turn_filter_ends_after_that_turn_and_the_stream_ends_at_shutdown() -> None:
    profile = Profile(command="/bin/sh", args=["-c", 'echo "got $AGENT_MESSAGE"'])
    store = MemoryStore()
    async with Dispatcher(store, {ROUTE: profile}) as d:
        conv = await d.open(ConversationKey("http", "a/1", ROUTE))
        await d.submit(conv.id, "one")
        await d.submit(conv.id, "two")
        second = [c async for c in stream(d, conv.id, Cursor(0), turn=2)]
        everything: list[bytes] = []

        async def read_all() -> None:
            async for chunk in stream(d, conv.id, Cursor(0)):
                everything.append(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all)
            await anyio.sleep(0.2)
            await d.aclose()
    two = messages(second)
    assert {json.loads(m["data"])["turn"] for m in two} == {2}
    assert two[-1]["event"] == "turn.completed"
    assert json.loads(two[-1]["data"])["data"]["reply"] == "got two"
    every = messages(everything)
    assert [m["id"] for m in every] == [str(i) for i in range(1, len(every) + 1)]
    assert [m["event"] for m in every].count("turn.completed") == 2
    for m in every:
        body = json.loads(m["data"])
        assert m["event"] == body["type"] and m["id"] == str(body["id"])

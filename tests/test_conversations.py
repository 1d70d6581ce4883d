"""The dispatcher on the conversation log, with real agent processes: the log
it writes, subscribers that never lose or repeat, busy policies and caps over
pending messages, leases shared by two dispatchers on one SQLite file,
cancel/reset/approvals from anywhere, and shutdown.

Agents are small shell scripts written under tmp_path. Those that must stay
busy until the test says so wait for a "gate" file to appear.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.errors import Busy, UnknownRoute
from bridge.conversations.hub import Cursor, Hub, Subscription
from bridge.store.base import Store
from bridge.store.errors import NotFound
from bridge.store.memory import MemoryStore
from bridge.store.records import (
    CONVERSATION_CANCEL,
    MESSAGE,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_PERMISSION,
    TURN_PERMISSION_ANSWERED,
    TURN_QUEUED,
    TURN_STARTED,
    Conversation,
    ConversationKey,
    Event,
    Route,
)
from bridge.store.sqlite import SQLiteStore
from bridge.turn.errors import LaunchError
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio

AGENTS = Path(__file__).parent / "agents"
ROUTE = Route("bundled:test-agent", "/tmp", "agent")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


MakeAgent = Callable[..., Profile]


@pytest.fixture
def agent(tmp_path: Path) -> MakeAgent:
    """``agent(script, **profile_fields)``: a profile running a shell script
    that gets ``GATE`` (a file to wait for) in its environment."""
    counter = iter(range(1_000))

    def make(script: str, **fields: object) -> Profile:
        path = tmp_path / f"agent{next(counter)}.sh"
        path.write_text("#!/bin/sh\n" + textwrap.dedent(script).strip() + "\n")
        fields.setdefault("kill_grace_secs", 0.5)
        fields.setdefault("timeout_secs", 20)
        return Profile(
            command="/bin/sh", args=[str(path)], env={"GATE": str(tmp_path / "gate")}, **fields
        )

    return make


WAIT_GATE = 'while [ ! -e "$GATE" ]; do sleep 0.01; done'

#: Names its session after the message and says which one it resumed.
SESSION_AGENT = """
echo "AGENT_SESSION:s-$AGENT_MESSAGE"
echo "resumed=$AGENT_SESSION_ID"
"""


def key(name: str = "c1") -> ConversationKey:
    return ConversationKey("test", name, ROUTE)


def dispatcher(profile: Profile, store: Store | None = None, **kw: Any) -> Dispatcher:
    return Dispatcher(store or MemoryStore(), {ROUTE: profile}, **kw)


@asynccontextmanager
async def two_bridges(
    profile: Profile, path: Path, **kw: Any
) -> AsyncIterator[tuple[Dispatcher, Dispatcher]]:
    """Two dispatchers on one SQLite file, each with its own connection, as
    two processes would be."""
    async with (
        SQLiteStore(path) as s1,
        SQLiteStore(path) as s2,
        dispatcher(profile, s1, **kw) as d1,
        dispatcher(profile, s2, **kw) as d2,
    ):
        yield d1, d2


async def say(d: Dispatcher, conv: Conversation, text: str, **kw: Any) -> Event:
    """Submit a message and wait for what became of it."""
    sent = await d.submit(conv.id, text, **kw)
    with anyio.fail_after(20):
        return await d.outcome(conv.id, sent.message.id)


async def collect_until(sub: Subscription, done: Callable[[Event], bool]) -> list[Event]:
    out: list[Event] = []
    with anyio.fail_after(20):
        async for event in sub:
            out.append(event)
            if done(event):
                return out
    raise AssertionError("the subscription ended early")


def completed(n: int = 1) -> Callable[[Event], bool]:
    count = [0]

    def check(event: Event) -> bool:
        count[0] += event.type == TURN_COMPLETED
        return count[0] >= n

    return check


def streamed(events: list[Event], turn: int | None = None) -> str:
    return "".join(
        e.data["text"]
        for e in events
        if e.type == TURN_PARTIAL and (turn is None or e.turn == turn)
    )


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "sessions.db") as store:
        yield store


# --- the log a turn writes ---------------------------------------------------------------


async def test_a_turn_writes_its_events_in_order(agent: MakeAgent) -> None:
    profile = agent('echo "AGENT_PARTIAL:\\"he\\""; echo "AGENT_PARTIAL:\\"llo\\""; echo done')
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        done = await say(d, conv, "hi", from_user="alice")
    assert done.data["status"] == "ok" and done.data["reply"] == "done"
    log = await store.read(conv.id)
    assert [e.type for e in log if e.type != TURN_PARTIAL] == [
        MESSAGE,
        TURN_QUEUED,
        TURN_STARTED,
        TURN_COMPLETED,
    ]
    assert [e.id for e in log] == list(range(1, len(log) + 1))
    assert streamed(log) == "hello"
    queued = log[1]
    assert queued.turn == 1 and queued.data["messages"] == [1]
    assert queued.data["from_users"] == ["alice"] and queued.data["text"] == "hi"


async def test_turn_numbers_come_from_the_store_across_dispatchers(
    agent: MakeAgent, sqlite_store: SQLiteStore
) -> None:
    profile = agent("echo ok")
    for _ in range(2):
        async with dispatcher(profile, sqlite_store) as d:
            conv = await d.open(key())
            await say(d, conv, "a")
            await say(d, conv, "b")
    turns = [e.turn for e in await sqlite_store.read(conv.id) if e.type == TURN_QUEUED]
    assert turns == [1, 2, 3, 4]


async def test_sessions_are_resumed_and_reset(agent: MakeAgent) -> None:
    profile = agent(SESSION_AGENT)
    async with dispatcher(profile) as d:
        conv = await d.open(key())
        first = await say(d, conv, "one")
        second = await say(d, conv, "two")
        await d.reset(conv.id)
        third = await say(d, conv, "three")
    assert first.data["reply"] == "resumed="
    assert second.data["reply"] == "resumed=s-one"
    assert third.data["reply"] == "resumed="


async def test_a_reset_during_a_turn_is_not_undone_by_it(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(f'echo "AGENT_SESSION:late"\n{WAIT_GATE}\necho done')
    store = MemoryStore()
    async with dispatcher(profile, store) as d, d.subscribe((await d.open(key())).id) as sub:
        conv = await d.open(key())
        sent = await d.submit(conv.id, "go")
        await collect_until(sub, lambda e: e.type == TURN_STARTED)
        await d.reset(conv.id)
        (tmp_path / "gate").touch()
        with anyio.fail_after(20):
            await d.outcome(conv.id, sent.message.id)
    after = await store.get(conv.id)
    assert after is not None and after.session_id == ""


async def test_an_idle_conversation_starts_afresh(agent: MakeAgent) -> None:
    profile = agent(SESSION_AGENT, session_idle_secs=60)
    now = [1000.0]
    async with dispatcher(profile, MemoryStore(clock=lambda: now[0]), clock=lambda: now[0]) as d:
        conv = await d.open(key())
        await say(d, conv, "one")
        now[0] += 30
        kept = await say(d, conv, "two")
        now[0] += 61
        fresh = await say(d, conv, "three")
    assert kept.data["reply"] == "resumed=s-one"
    assert fresh.data["reply"] == "resumed="


# --- subscribers ------------------------------------------------------------------------------

CHUNKS = 'i=0; while [ $i -lt {n} ]; do echo "AGENT_PARTIAL:\\"$i,\\""; i=$((i+1)); done'


def expected_chunks(n: int) -> str:
    return "".join(f"{i}," for i in range(n))


async def test_a_subscriber_gets_every_chunk_once_and_the_log_coalesces_them(
    agent: MakeAgent,
) -> None:
    n = 3000
    profile = agent(CHUNKS.format(n=n))
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        async with d.subscribe(conv.id) as sub:
            await d.submit(conv.id, "go")
            events = await collect_until(sub, completed())
    live = [e for e in events if e.type == TURN_PARTIAL]
    assert streamed(events) == expected_chunks(n)
    assert any(e.live for e in live)
    stored = [e for e in await store.read(conv.id, limit=100_000) if e.type == TURN_PARTIAL]
    assert "".join(e.data["text"] for e in stored) == expected_chunks(n)
    assert len(stored) < n / 10, "partials are coalesced in the log"
    offsets = [e.data["offset"] for e in stored]
    assert offsets == sorted(offsets) and offsets[0] == 0


async def test_a_slow_subscriber_loses_nothing(agent: MakeAgent) -> None:
    n = 2000
    profile = agent(CHUNKS.format(n=n))
    async with dispatcher(profile) as d:
        conv = await d.open(key())
        async with d.subscribe(conv.id) as slow:
            await say(d, conv, "go")  # the whole turn ends before the reader reads anything
            await anyio.sleep(0.2)
            events = await collect_until(slow, completed())
    assert streamed(events) == expected_chunks(n)


async def test_a_reader_that_comes_back_resumes_exactly_after_its_cursor(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(CHUNKS.format(n=500) + f"\n{WAIT_GATE}\n" + CHUNKS.format(n=500))
    async with dispatcher(profile) as d:
        conv = await d.open(key())
        async with d.subscribe(conv.id, after=0) as first:
            await d.submit(conv.id, "go")
            seen = await collect_until(first, lambda e: streamed([e]).endswith("499,"))
            cursor = first.cursor
        assert cursor.turn == 1 and cursor.streamed == len(expected_chunks(500))
        assert Cursor.parse(str(cursor)) == cursor
        await anyio.sleep(0.2)  # the first half is stored meanwhile
        (tmp_path / "gate").touch()
        async with d.subscribe(conv.id, after=cursor) as again:
            rest = await collect_until(again, completed())
    assert streamed(seen) + streamed(rest) == expected_chunks(500) * 2
    ids = [e.id for e in seen + rest if not e.live]
    assert ids == sorted(set(ids)), "no stored event twice"


@pytest.mark.parametrize("garbage", ["", "x", "1.2", "1.2.3.4", "-1", "1..2"])
def test_a_bad_cursor_is_refused_with_what_one_looks_like(garbage: str) -> None:
    with pytest.raises(ValueError, match="expected an event id"):
        Cursor.parse(garbage)


async def test_a_subscriber_from_zero_reads_the_whole_log_from_the_store(
    agent: MakeAgent, sqlite_store: SQLiteStore
) -> None:
    profile = agent(CHUNKS.format(n=300))
    async with dispatcher(profile, sqlite_store) as d:
        conv = await d.open(key())
        await say(d, conv, "a")
        await say(d, conv, "b")
    async with dispatcher(profile, sqlite_store) as d2, d2.subscribe(conv.id, after=0) as sub:
        events = await collect_until(sub, completed(2))
    assert streamed(events) == expected_chunks(300) * 2
    assert not any(e.live for e in events)


# --- busy policies and caps ---------------------------------------------------------------------


async def test_reject_refuses_while_a_turn_runs(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(f"{WAIT_GATE}\necho ok", busy_policy="reject")
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        first = await d.submit(conv.id, "one")
        with pytest.raises(Busy) as refused:
            await d.submit(conv.id, "two")
        assert refused.value.reason == "busy" and refused.value.conversation == conv.id
        (tmp_path / "gate").touch()
        await d.outcome(conv.id, first.message.id)
    messages = [e for e in await store.read(conv.id) if e.type == MESSAGE]
    assert [m.data["text"] for m in messages] == ["one"], "a refused message is not written"


async def test_queue_runs_one_message_per_turn_up_to_its_limit(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f'{WAIT_GATE}\necho "got $AGENT_MESSAGE"', queue_limit=2)
    async with dispatcher(profile) as d, d.subscribe((await d.open(key())).id) as sub:
        conv = await d.open(key())
        sent = [await d.submit(conv.id, "a")]
        await collect_until(sub, lambda e: e.type == TURN_STARTED)
        sent += [await d.submit(conv.id, text) for text in ("b", "c")]
        with pytest.raises(Busy) as full:
            await d.submit(conv.id, "d")
        assert (full.value.reason, full.value.limit, full.value.active) == ("queue_full", 2, 2)
        (tmp_path / "gate").touch()
        outcomes = [await d.outcome(conv.id, s.message.id) for s in sent]
    assert [o.data["reply"] for o in outcomes] == ["got a", "got b", "got c"]
    assert [o.turn for o in outcomes] == [1, 2, 3]


async def test_collect_merges_waiting_messages_into_one_turn(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f'{WAIT_GATE}\necho "got [$AGENT_MESSAGE]"', busy_policy="collect")
    async with dispatcher(profile) as d, d.subscribe((await d.open(key())).id) as sub:
        conv = await d.open(key())
        first = await d.submit(conv.id, "a")
        await collect_until(sub, lambda e: e.type == TURN_STARTED)
        second = await d.submit(conv.id, "b")
        third = await d.submit(conv.id, "c")
        (tmp_path / "gate").touch()
        one = await d.outcome(conv.id, first.message.id)
        merged = await d.outcome(conv.id, second.message.id)
        assert await d.outcome(conv.id, third.message.id) == merged
    assert one.data["reply"] == "got [a]"
    assert merged.data["reply"] == "got [b\n\nc]"


async def test_interrupt_stops_the_running_turn_and_runs_the_new_message(
    agent: MakeAgent,
) -> None:
    profile = agent(
        'echo "AGENT_SESSION:s1"\necho "AGENT_PARTIAL:\\"working\\""\nsleep 30',
        busy_policy="interrupt",
    )
    fast = agent('echo "resumed=$AGENT_SESSION_ID"')
    async with dispatcher(profile) as d, d.subscribe((await d.open(key())).id) as sub:
        conv = await d.open(key())
        first = await d.submit(conv.id, "slow")
        await collect_until(sub, lambda e: e.type == TURN_PARTIAL)
        d._profiles = {ROUTE: fast.model_copy(update={"busy_policy": "interrupt"})}  # type: ignore[assignment]
        second = await d.submit(conv.id, "now")
        stopped = await d.outcome(conv.id, first.message.id)
        answered = await d.outcome(conv.id, second.message.id)
    assert stopped.data["status"] == "cancelled"
    assert answered.data["reply"] == "resumed=s1", "the interrupted turn's session is kept"


async def test_per_user_cap_counts_waiting_and_running_messages(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f"{WAIT_GATE}\necho ok")
    async with dispatcher(profile, max_per_user=2) as d:
        a, b = await d.open(key("a")), await d.open(key("b"))
        await d.submit(a.id, "1", from_user="alice")
        await d.submit(b.id, "2", from_user="alice")
        with pytest.raises(Busy) as capped:
            await d.submit(b.id, "3", from_user="alice")
        assert (capped.value.reason, capped.value.limit, capped.value.active) == (
            "user_limit",
            2,
            2,
        )
        await d.submit(b.id, "from bob", from_user="bob")
        (tmp_path / "gate").touch()


async def test_the_global_running_cap_holds_turns_back_without_refusing_them(
    agent: MakeAgent, tmp_path: Path
) -> None:
    marker = tmp_path / "running"
    marker.mkdir()
    profile = agent(
        f'touch "{marker}/$AGENT_MESSAGE"; n=$(ls "{marker}" | wc -l); echo "seen=$n"\n'
        f'{WAIT_GATE}\nrm "{marker}/$AGENT_MESSAGE"'
    )
    async with dispatcher(profile, max_running=2) as d:
        convs = [await d.open(key(f"c{i}")) for i in range(5)]
        sent = [await d.submit(c.id, f"m{i}") for i, c in enumerate(convs)]
        await anyio.sleep(0.5)
        assert len(list(marker.iterdir())) == 2
        (tmp_path / "gate").touch()
        outcomes = [await d.outcome(c.id, s.message.id) for c, s in zip(convs, sent, strict=True)]
    assert all(o.data["status"] == "ok" for o in outcomes)
    assert max(int(o.data["reply"].split("=")[1]) for o in outcomes) <= 2


async def test_a_redelivered_message_is_not_run_twice(agent: MakeAgent) -> None:
    profile = agent("echo ok")
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        first = await d.submit(conv.id, "hi", platform_id="tg-1")
        again = await d.submit(conv.id, "hi", platform_id="tg-1")
        await d.outcome(conv.id, first.message.id)
    assert again.duplicate and again.message.id == first.message.id
    assert [e.type for e in await store.read(conv.id)].count(TURN_QUEUED) == 1


# --- cancel, approvals ----------------------------------------------------------------------


async def test_cancel_stops_the_turn_and_drops_what_waits(agent: MakeAgent) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"started\"'\nsleep 30")
    async with dispatcher(profile) as d, d.subscribe((await d.open(key())).id) as sub:
        conv = await d.open(key())
        running = await d.submit(conv.id, "one")
        waiting = await d.submit(conv.id, "two")
        await collect_until(sub, lambda e: e.type == TURN_PARTIAL)
        await d.cancel(conv.id, by="alice")
        stopped = await d.outcome(conv.id, running.message.id)
        dropped = await d.outcome(conv.id, waiting.message.id)
    assert stopped.data["status"] == "cancelled" and stopped.data["exit_code"] == 130
    assert dropped.type == CONVERSATION_CANCEL and dropped.data["by"] == "alice"


async def test_approvals_are_log_events_answered_by_id(tmp_path: Path) -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        env={"ASK_TOOLS": "Bash,Write"},
        permission=True,
        timeout_secs=20,
    )
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        async with d.subscribe(conv.id) as sub:
            sent = await d.submit(conv.id, "go", from_user="alice")
            async for event in sub:
                if event.type == TURN_PERMISSION:
                    allow = event.data["tool"] == "Bash"
                    assert event.data["input"] == {"n": 1 if allow else 2}
                    assert event.data["deadline"] > time.time() + 10, "the turn's own deadline"
                    await d.answer(conv.id, event.id, allow=allow, by="alice")
                    late = await d.answer(conv.id, event.id, allow=True, by="bob")
                    assert late is None, "the first answer wins"
                if event.type == TURN_COMPLETED:
                    break
        done = await d.outcome(conv.id, sent.message.id)
    assert "r1 allow=True" in done.data["reply"] and "r2 allow=False" in done.data["reply"]
    answers = [e for e in await store.read(conv.id) if e.type == TURN_PERMISSION_ANSWERED]
    assert [(a.data["allow"], a.data["by"]) for a in answers] == [(True, "alice"), (False, "alice")]


async def test_a_session_scoped_answer_allows_the_tool_until_a_reset() -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        env={"ASK_TOOLS": "Bash,Bash,Write"},
        permission=True,
        timeout_secs=20,
    )
    store = MemoryStore()
    asked: list[str] = []

    async def turn(d: Dispatcher, conv_id: str) -> Event:
        async with d.subscribe(conv_id) as sub:
            sent = await d.submit(conv_id, "go", from_user="alice")
            async for event in sub:
                if event.type == TURN_PERMISSION_ANSWERED and event.data["by"] == "session":
                    asked.append(f"auto {event.data['tool']}")
                if event.type == TURN_PERMISSION:
                    await anyio.sleep(0.05)  # let an automatic answer come first
                    answer = await d.answer(
                        conv_id, event.id, allow=True, scope="session", by="alice"
                    )
                    if answer is not None:
                        asked.append(f"asked {event.data['tool']}")
                if event.type == TURN_COMPLETED:
                    break
        return await d.outcome(conv_id, sent.message.id)

    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        first = await turn(d, conv.id)
        assert asked == ["asked Bash", "auto Bash", "asked Write"]
        assert first.data["reply"].count("allow=True") == 3
        asked.clear()
        await turn(d, conv.id)
        assert asked == ["auto Bash", "auto Bash", "auto Write"], "for the whole conversation"
        asked.clear()
        await d.reset(conv.id, by="alice")
        await turn(d, conv.id)
        assert asked == ["asked Bash", "auto Bash", "asked Write"], "a reset forgets them"


async def test_an_unanswered_approval_is_denied_at_the_deadline() -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        permission=True,
        permission_timeout_secs=0.3,
        timeout_secs=20,
    )
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        done = await say(d, conv, "go")
    assert "allow=False" in done.data["reply"]
    answers = [e for e in await store.read(conv.id) if e.type == TURN_PERMISSION_ANSWERED]
    assert [(a.data["allow"], a.data["by"]) for a in answers] == [(False, "deadline")]


async def test_the_dispatchers_own_handler_answers_like_anyone_else() -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        permission=True,
        timeout_secs=20,
    )

    async def handler(conv: Conversation, turn: int, request: Event) -> bool:
        return request.data["tool"] == "Bash"

    async with dispatcher(profile, on_permission=handler) as d:
        conv = await d.open(key())
        done = await say(d, conv, "go")
    assert "allow=True" in done.data["reply"]


# --- two dispatchers on one store -------------------------------------------------------------


async def test_two_dispatchers_never_run_two_turns_of_one_conversation(
    agent: MakeAgent, tmp_path: Path
) -> None:
    marker = tmp_path / "inside"
    profile = agent(
        f'if [ -e "{marker}" ]; then echo overlap; exit 3; fi\n'
        f'touch "{marker}"; sleep 0.05; rm "{marker}"; echo "ok $AGENT_MESSAGE"'
    )
    async with two_bridges(profile, tmp_path / "sessions.db", poll_secs=0.02) as (d1, d2):
        c1 = await d1.open(key())
        c2 = await d2.open(key())
        assert c1.id == c2.id
        sent = []
        for i in range(6):
            d = d1 if i % 2 else d2
            sent.append(await d.submit(c1.id, f"m{i}"))
        outcomes = [await d1.outcome(c1.id, s.message.id) for s in sent]
    assert [o.data["status"] for o in outcomes] == ["ok"] * 6
    assert sorted(o.turn for o in outcomes) == [1, 2, 3, 4, 5, 6]


async def test_a_cancel_from_another_dispatcher_stops_the_turn(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"started\"'\nsleep 30")
    async with two_bridges(profile, tmp_path / "sessions.db", poll_secs=0.02) as (d1, d2):
        conv = await d1.open(key())
        async with d2.subscribe(conv.id, after=0) as watcher:
            sent = await d1.submit(conv.id, "go")
            await collect_until(watcher, lambda e: e.type == TURN_PARTIAL)
            await d2.cancel(conv.id, by="other terminal")
            events = await collect_until(watcher, completed())
    assert events[-1].data["status"] == "cancelled"
    assert events[-1].turn == 1 and sent.message.id == 1


async def test_interrupt_stops_a_turn_another_dispatcher_runs(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(
        'echo "AGENT_PARTIAL:\\"working\\""\nif [ "$AGENT_MESSAGE" = slow ]; then sleep 30; fi\n'
        'echo "got $AGENT_MESSAGE"',
        busy_policy="interrupt",
    )
    async with two_bridges(profile, tmp_path / "sessions.db", poll_secs=0.02) as (d1, d2):
        conv = await d1.open(key())
        await d2.open(key())
        async with d2.subscribe(conv.id) as watcher:
            first = await d1.submit(conv.id, "slow")
            await collect_until(watcher, lambda e: e.type == TURN_PARTIAL)
            second = await d2.submit(conv.id, "now")
            with anyio.fail_after(20):
                stopped = await d2.outcome(conv.id, first.message.id)
                answered = await d2.outcome(conv.id, second.message.id)
    assert stopped.data["status"] == "cancelled"
    assert answered.data["reply"] == "got now"


async def test_a_dead_bridges_turn_is_closed_as_abandoned_not_rerun(
    agent: MakeAgent, sqlite_store: SQLiteStore
) -> None:
    profile = agent("echo ran")
    conv = await sqlite_store.open(key())
    await sqlite_store.add_message(conv.id, _message("lost"))
    dead = await _dead_owner()
    claim = await sqlite_store.claim(conv.id, dead, lease_secs=60)
    assert claim is not None
    await sqlite_store.take(conv.id, dead, [claim.pending[0].id], text="lost")
    async with dispatcher(profile, sqlite_store) as d:
        opened = await d.open(key())
        log = await sqlite_store.read(conv.id)
    assert (opened.running_turn, opened.last_status) == (0, "abandoned"), "as recovery left it"
    done = [e for e in log if e.type == TURN_COMPLETED]
    assert [e.data["status"] for e in done] == ["abandoned"]
    assert "abandoned" in done[0].data["error"]
    assert [e.type for e in log].count(TURN_STARTED) == 0, "it is not run again"


async def test_resume_answers_what_a_stopped_bridge_left(
    agent: MakeAgent, sqlite_store: SQLiteStore
) -> None:
    profile = agent('echo "ran $AGENT_MESSAGE"')
    crashed = await sqlite_store.open(key("crashed"))
    await sqlite_store.add_message(crashed.id, _message("lost"))
    dead = await _dead_owner()
    claim = await sqlite_store.claim(crashed.id, dead, lease_secs=60)
    assert claim is not None
    await sqlite_store.take(crashed.id, dead, [claim.pending[0].id], text="lost")
    await sqlite_store.add_message(crashed.id, _message("after"))
    waiting = await sqlite_store.open(key("waiting"))
    await sqlite_store.add_message(waiting.id, _message("queued"))
    elsewhere = await sqlite_store.open(ConversationKey("test", "x", Route("other", "/")))
    await sqlite_store.add_message(elsewhere.id, _message("not ours"))
    async with dispatcher(profile, sqlite_store) as d:
        taken = await d.resume()
        assert {c.id for c in taken} == {crashed.id, waiting.id}, "not another route's"
        for conv in (crashed, waiting):
            async with d.subscribe(conv.id, 0) as sub:
                await collect_until(
                    sub, lambda e: e.type == TURN_COMPLETED and e.data["status"] == "ok"
                )
    replies = {
        c.id: [(t.status, t.reply) for t in await sqlite_store.transcript(c.id)]
        for c in (crashed, waiting)
    }
    assert replies[crashed.id] == [("abandoned", ""), ("ok", "ran after")]
    assert replies[waiting.id] == [("ok", "ran queued")]
    assert [c.id for c in await sqlite_store.unfinished()] == [elsewhere.id]


async def test_the_hub_shows_its_observers_what_another_process_wrote_in_between() -> None:
    store = MemoryStore()
    conv = await store.open(key())
    hub = Hub(store)
    seen: list[tuple[int, str, bool]] = []
    hub.observers.append(lambda e, remote: seen.append((e.id, e.type, remote)))
    mine, _ = await store.add_message(conv.id, _message("mine"))
    hub.publish([mine])
    await store.add_message(conv.id, _message("theirs"))  # another process, unseen
    await store.reset(conv.id, by="them")
    again, _ = await store.add_message(conv.id, _message("mine again"))
    hub.publish([again])
    assert [s[0] for s in seen] == [1, 4]
    await hub.fill_gaps()
    assert seen[2:] == [(2, MESSAGE, True), (3, "conversation.reset", True)]
    assert hub.last_message(conv.id) == 4
    await hub.fill_gaps()
    assert len(seen) == 4, "each gap is filled once"


def _message(text: str) -> Any:
    from bridge.store.records import NewMessage

    return NewMessage(text)


async def _dead_owner() -> str:
    import socket

    proc = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    return f"{socket.gethostname()}:{int(proc.stdout)}:dead"


# --- shutdown and bad input -------------------------------------------------------------------


async def test_shutdown_cancels_a_running_turn_after_the_grace_and_keeps_what_waits(
    agent: MakeAgent,
) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    store = MemoryStore()
    d = dispatcher(profile, store)
    async with d:
        conv = await d.open(key())
        async with d.subscribe(conv.id) as sub:
            await d.submit(conv.id, "one")
            await d.submit(conv.id, "two")
            await collect_until(sub, lambda e: e.type == TURN_PARTIAL)
        await d.aclose(grace=0.2)
    log = await store.read(conv.id)
    done = [e for e in log if e.type == TURN_COMPLETED]
    assert [e.data["status"] for e in done] == ["cancelled"]
    after = await store.get(conv.id)
    assert after is not None and after.consumed == 1, "the second message still waits"
    assert after.lease_owner == "", "the lease was given up"


async def test_a_cancelled_host_still_completes_every_turn(agent: MakeAgent) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    store = MemoryStore()
    with anyio.move_on_after(1):
        async with dispatcher(profile, store) as d:
            conv = await d.open(key())
            await d.submit(conv.id, "one")
            await anyio.sleep_forever()
    log = await store.read(conv.id)
    assert [e.data["status"] for e in log if e.type == TURN_COMPLETED] == ["cancelled"]


async def test_bad_input_is_refused_before_anything_is_written(agent: MakeAgent) -> None:
    profile = agent("echo ok")
    store = MemoryStore()
    async with dispatcher(profile, store) as d:
        conv = await d.open(key())
        with pytest.raises(LaunchError, match="nothing to send"):
            await d.submit(conv.id, "")
        with pytest.raises(NotFound):
            await d.submit("c-no-such", "hi")
        with pytest.raises(UnknownRoute):
            await d.open(ConversationKey("test", "x", Route("/elsewhere", "/tmp", "other")))
    assert await store.read(conv.id) == []


async def test_a_turn_longer_than_the_lease_keeps_it_by_renewing(
    agent: MakeAgent, tmp_path: Path
) -> None:
    marker = tmp_path / "inside"
    profile = agent(
        f'if [ -e "{marker}" ]; then echo overlap; exit 3; fi\n'
        f'touch "{marker}"; sleep 1.2; rm "{marker}"; echo "ok $AGENT_MESSAGE"'
    )
    async with two_bridges(profile, tmp_path / "sessions.db", lease_secs=0.3, poll_secs=0.02) as (
        d1,
        d2,
    ):
        conv = await d1.open(key())
        await d2.open(key())
        first = await d1.submit(conv.id, "long")
        await anyio.sleep(0.6)  # twice the lease: d2 would take it over if d1 did not renew
        second = await d2.submit(conv.id, "next")
        one = await d1.outcome(conv.id, first.message.id)
        two = await d1.outcome(conv.id, second.message.id)
    assert (one.data["reply"], two.data["reply"]) == ("ok long", "ok next")


async def test_shutdown_lets_a_turn_that_ends_in_time_finish(agent: MakeAgent) -> None:
    store = MemoryStore()
    d = dispatcher(agent("sleep 0.3\necho done"), store)
    async with d:
        conv = await d.open(key())
        async with d.subscribe(conv.id) as sub:
            await d.submit(conv.id, "x")
            await collect_until(sub, lambda e: e.type == TURN_STARTED)
    done = [e for e in await store.read(conv.id) if e.type == TURN_COMPLETED]
    assert [(e.data["status"], e.data["reply"]) for e in done] == [("ok", "done")]
    with pytest.raises(Busy) as refused:
        await d.submit(conv.id, "after")
    assert refused.value.reason == "shutting_down"


def test_bad_settings_are_refused() -> None:
    for kw in ({"max_running": 0}, {"session_idle_secs": 0}):
        with pytest.raises(ValueError):
            Dispatcher(MemoryStore(), {}, **kw)  # type: ignore[arg-type]
    for kw in ({"busy_policy": "wait"}, {"queue_limit": 0}, {"max_per_user": 0}):
        with pytest.raises(ValueError):
            Dispatcher(MemoryStore(), {}, **kw)  # type: ignore[arg-type]


def test_a_dispatcher_can_be_made_outside_the_event_loop() -> None:
    Dispatcher(MemoryStore(), {}, busy_policy="collect", max_per_user=3)


class FullDisk(MemoryStore):
    """A store that cannot write a turn's end, as a full disk would."""

    async def complete(self, *args: Any, **kw: Any) -> Any:
        from bridge.store.errors import StoreError

        raise StoreError("cannot write sessions.db: database or disk is full")


async def test_a_store_that_cannot_store_a_turns_end_does_not_leave_readers_waiting(
    agent: MakeAgent,
) -> None:
    async with dispatcher(agent("echo answered"), FullDisk()) as d:
        conv = await d.open(key())
        with anyio.fail_after(20):
            done = await say(d, conv, "hi")
    assert done.live, "told in this process, not stored"
    assert done.data["reply"] == "answered", "the answer is not lost"
    assert any("could not be saved" in w and "disk is full" in w for w in done.data["warnings"])


async def test_a_turn_waiting_for_a_slot_is_cancelled_without_running(
    agent: MakeAgent, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    profile = agent(f'echo "$AGENT_MESSAGE" >> "{ran}"\n{WAIT_GATE}\necho done')
    async with dispatcher(profile, max_running=1) as d:
        a, b = await d.open(key("a")), await d.open(key("b"))
        async with d.subscribe(a.id) as sub:
            first = await d.submit(a.id, "first")
            await collect_until(sub, lambda e: e.type == TURN_STARTED)
        waiting = await d.submit(b.id, "second")
        await anyio.sleep(0.2)  # its turn is taken and waits for the one slot
        await d.cancel(b.id)
        with anyio.fail_after(10):
            stopped = await d.outcome(b.id, waiting.message.id)
        (tmp_path / "gate").touch()
        await d.outcome(a.id, first.message.id)
    assert stopped.type == TURN_COMPLETED and stopped.data["status"] == "cancelled"
    assert stopped.data["error"].startswith("not run")
    assert ran.read_text() == "first\n", "the cancelled turn never started its agent"

"""The dispatcher with real agent processes: ordering, caps, busy policies,
cancel, reset, session rules, events and shutdown.

Agents are small shell scripts written under tmp_path. Those that must stay
busy until the test says so wait for a "gate" file to appear; those that must
prove something about concurrency append markers to files the test reads.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentproc import wire
from bridge.conversations.errors import Busy as BusyError
from bridge.conversations.errors import UnknownProfile
from bridge.conversations.legacy import (
    Dispatcher,
    DispatchEvent,
    Finished,
    Merged,
    PartialText,
    PermissionAsked,
    Queued,
    Started,
    Subscription,
)
from bridge.store.errors import StoreError
from bridge.store.sessions import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    Conversation,
    ConversationKey,
    MemoryStore,
    SessionStore,
)
from bridge.turn.errors import LaunchError
from bridge.turn.profile import Profile

pytestmark = pytest.mark.anyio

AGENTS = Path(__file__).parent / "agents"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


MakeAgent = Callable[..., Profile]


@pytest.fixture
def agent(tmp_path: Path) -> MakeAgent:
    """``agent(script, **profile_fields)``: a profile running a shell script.

    The script gets ``GATE`` (a file to wait for) and ``LOGDIR`` (a folder for
    markers) in its environment, besides the turn's ``AGENT_*`` variables.
    """
    counter = iter(range(1_000))
    (tmp_path / "log").mkdir()

    def make(script: str, **fields: object) -> Profile:
        path = tmp_path / f"agent{next(counter)}.sh"
        path.write_text("#!/bin/sh\n" + textwrap.dedent(script).strip() + "\n")
        env = {"GATE": str(tmp_path / "gate"), "LOGDIR": str(tmp_path / "log")}
        fields.setdefault("kill_grace_secs", 0.5)
        fields.setdefault("timeout_secs", 20)
        return Profile(command="/bin/sh", args=[str(path)], env=env, **fields)

    return make


def open_gate(tmp_path: Path) -> None:
    (tmp_path / "gate").touch()


WAIT_GATE = 'while [ ! -e "$GATE" ]; do sleep 0.01; done'

#: Names its session after the message and says which one it resumed.
SESSION_AGENT = """
echo "AGENT_SESSION:s-$AGENT_MESSAGE"
echo "resumed=$AGENT_SESSION_ID"
"""


def key(name: str = "c1", profile: str = "agent") -> ConversationKey:
    return ConversationKey("test", name, profile)


def dispatcher(
    profile: Profile | dict[str, Profile], store: SessionStore | None = None, **kw: object
) -> Dispatcher:
    profiles = profile if isinstance(profile, dict) else {"agent": profile}
    return Dispatcher(store or MemoryStore(), profiles, **kw)  # type: ignore[arg-type]


async def wait_for(
    sub: Subscription, kind: type[DispatchEvent], turn: int | None = None, timeout: float = 10
) -> DispatchEvent:
    with anyio.fail_after(timeout):
        async for event in sub:
            if isinstance(event, kind) and (turn is None or event.turn == turn):
                return event
    raise AssertionError(f"the subscription ended before a {kind.__name__} event")


async def events_until_finished(sub: Subscription, count: int) -> list[DispatchEvent]:
    """Every event up to and including the ``count``-th Finished."""
    events: list[DispatchEvent] = []
    with anyio.fail_after(10):
        async for event in sub:
            events.append(event)
            count -= isinstance(event, Finished)
            if not count:
                return events
    raise AssertionError("the subscription ended early")


# --- ordering and the global cap --------------------------------------------------------


async def test_many_conversations_keep_order_and_never_overlap(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(
        """
        conv=${AGENT_MESSAGE%%:*}
        echo "start $AGENT_MESSAGE sid=$AGENT_SESSION_ID" >> "$LOGDIR/$conv"
        touch "$LOGDIR/alive.$$"
        ls "$LOGDIR" | grep -c '^alive' >> "$LOGDIR/counts"
        sleep 0.05
        rm "$LOGDIR/alive.$$"
        echo "end $AGENT_MESSAGE" >> "$LOGDIR/$conv"
        echo "AGENT_SESSION:s-$conv-${AGENT_MESSAGE#*:}"
        echo "done $AGENT_MESSAGE"
        """
    )
    convs, turns, cap = 12, 6, 4
    store = MemoryStore()
    async with dispatcher(profile, store, max_running=cap, queue_limit=turns) as d:
        handles = {}
        for t in range(turns):
            for c in range(convs):
                handles[c, t] = await d.submit(key(f"c{c}"), f"c{c}:{t}")
        results = {ct: await h.result() for ct, h in handles.items()}

    for (c, t), h in handles.items():
        assert (h.turn, h.position, h.merged) == (t + 1, t, False)
        assert results[c, t].reply == f"done c{c}:{t}"
    log = tmp_path / "log"
    for c in range(convs):
        lines = (log / f"c{c}").read_text().splitlines()
        expected = []
        for t in range(turns):
            sid = f"s-c{c}-{t - 1}" if t else ""
            expected += [f"start c{c}:{t} sid={sid}", f"end c{c}:{t}"]
        assert lines == expected
        conv = await store.get(key(f"c{c}"))
        assert conv is not None and conv.turn_count == turns
        assert conv.session_id == f"s-c{c}-{turns - 1}"
        transcript = await store.transcript(key(f"c{c}"))
        assert [e.turn for e in transcript] == list(range(1, turns + 1))
        assert [e.message for e in transcript] == [f"c{c}:{t}" for t in range(turns)]
    counts = [int(n) for n in (log / "counts").read_text().split()]
    assert len(counts) == convs * turns
    assert 2 <= max(counts) <= cap


async def test_turn_numbers_continue_from_the_store(agent: MakeAgent) -> None:
    store = MemoryStore()
    profile = agent("echo hi")
    async with dispatcher(profile, store) as d:
        for _ in range(3):
            await (await d.submit(key(), "x")).result()
    async with dispatcher(profile, store) as d:
        handle = await d.submit(key(), "x")
        assert handle.turn == 4
        await handle.result()
    assert [e.turn for e in await store.transcript(key())] == [1, 2, 3, 4]


# --- busy policies ---------------------------------------------------------------------------


async def test_queue_positions_and_a_full_queue(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(f'{WAIT_GATE}\necho "got $AGENT_MESSAGE"', busy_policy="queue", queue_limit=2)
    async with dispatcher(profile, busy_policy="reject") as d, d.subscribe(key()) as sub:
        first = await d.submit(key(), "a")
        await wait_for(sub, Started, first.turn)
        second = await d.submit(key(), "b")
        third = await d.submit(key(), "c")
        assert [(h.turn, h.position) for h in (first, second, third)] == [(1, 0), (2, 1), (3, 2)]
        with pytest.raises(BusyError) as info:
            await d.submit(key(), "d")
        error = info.value
        assert (error.reason, error.limit, error.active) == ("queue_full", 2, 2)
        assert "2 messages waiting (the limit is 2)" in str(error)
        open_gate(tmp_path)
        assert [(await h.result()).reply for h in (first, second, third)] == [
            "got a",
            "got b",
            "got c",
        ]
        # Nothing waits any more: the next message is turn 4, starting at once.
        fourth = await d.submit(key(), "e")
        assert (fourth.turn, fourth.position) == (4, 0)
        await fourth.result()


async def test_reject_refuses_while_busy(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(f"{WAIT_GATE}\necho ok", busy_policy="reject")
    async with dispatcher(profile) as d:
        first = await d.submit(key(), "a")
        with pytest.raises(BusyError) as info:
            await d.submit(key(), "b")
        assert info.value.reason == "busy" and info.value.active == 1
        assert info.value.key == key()
        other = await d.submit(key("c2"), "b")  # another conversation is not busy
        open_gate(tmp_path)
        assert (await first.result()).ok and (await other.result()).ok
        again = await d.submit(key(), "c")
        assert again.turn == 2
        await again.result()


async def test_interrupt_cancels_and_resumes_the_same_session(agent: MakeAgent) -> None:
    profile = agent(
        """
        echo "resumed=$AGENT_SESSION_ID"
        if [ "$AGENT_MESSAGE" = slow ]; then
            echo "AGENT_SESSION:s-slow"
            echo 'AGENT_PARTIAL:"working"'
            sleep 30
        fi
        """
    )
    store = MemoryStore()
    async with dispatcher(profile, store, busy_policy="interrupt") as d, d.subscribe(key()) as sub:
        slow = await d.submit(key(), "slow")
        await wait_for(sub, PartialText, slow.turn)
        quick = await d.submit(key(), "quick")
        assert (quick.turn, quick.position, quick.merged) == (2, 1, False)
        interrupted = await slow.result()
        answer = await quick.result()
    assert interrupted.cancelled and interrupted.exit_code == 130
    assert interrupted.session_id == "s-slow" and interrupted.session_captured
    assert answer.ok and answer.reply == "resumed=s-slow"
    transcript = await store.transcript(key())
    assert [(e.turn, e.exit_code) for e in transcript] == [(1, 130), (2, 0)]
    conv = await store.get(key())
    assert conv is not None and conv.session_id == "s-slow" and conv.last_status == STATUS_OK


async def test_interrupt_merges_messages_that_arrive_before_the_new_turn_starts(
    agent: MakeAgent,
) -> None:
    profile = agent(
        """
        if [ "$AGENT_MESSAGE" = slow ]; then
            echo 'AGENT_PARTIAL:"working"'
            sleep 30
        fi
        echo "got $AGENT_MESSAGE"
        """
    )
    async with dispatcher(profile, busy_policy="interrupt") as d, d.subscribe(key()) as sub:
        slow = await d.submit(key(), "slow")
        await wait_for(sub, PartialText, slow.turn)
        second = await d.submit(key(), "two")
        third = await d.submit(key(), "three")
        assert (third.turn, third.merged) == (second.turn, True)
        assert (await slow.result()).cancelled
        assert (await second.result()).reply == "got two\n\nthree"
        assert await third.result() == await second.result()


async def test_collect_merges_messages_into_one_turn(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(
        f"""
        {WAIT_GATE}
        echo "got $AGENT_MESSAGE"
        echo "files $AGENT_ATTACHMENTS"
        """,
        busy_policy="collect",
    )
    store = MemoryStore()
    image = wire.Attachment("image", "https://example.org/a.png")
    doc = wire.Attachment("file", "https://example.org/b.pdf", name="b.pdf")
    async with dispatcher(profile, store) as d, d.subscribe(key()) as sub:
        first = await d.submit(key(), "first")
        await wait_for(sub, Started, first.turn)
        a = await d.submit(key(), "a", from_user="alice")
        b = await d.submit(key(), "b", attachments=[image], from_user="bob")
        c = await d.submit(key(), "", attachments=[doc], from_user="alice")
        assert [(h.turn, h.position, h.merged) for h in (a, b, c)] == [
            (2, 1, False),
            (2, 1, True),
            (2, 1, True),
        ]
        merged = await wait_for(sub, Merged, 2)
        assert isinstance(merged, Merged) and merged.messages == 2
        open_gate(tmp_path)
        results = [await h.result() for h in (a, b, c)]
    assert results[0] is results[1] is results[2]
    lines = results[0].reply.splitlines()
    assert lines[:3] == ["got a", "", "b"]
    files = json.loads(lines[3].removeprefix("files "))
    assert [f["url"] for f in files] == [image.url, doc.url]
    transcript = await store.transcript(key())
    assert [(e.turn, e.message, e.from_user) for e in transcript] == [
        (1, "first", ""),
        (2, "a\n\nb", "alice"),
    ]
    assert len(transcript[1].attachments) == 2


async def test_collect_full_refuses_the_next_message(agent: MakeAgent, tmp_path: Path) -> None:
    profile = agent(f"{WAIT_GATE}\necho ok", busy_policy="collect", queue_limit=2)
    async with dispatcher(profile) as d, d.subscribe(key()) as sub:
        first = await d.submit(key(), "first")
        await wait_for(sub, Started, first.turn)
        await d.submit(key(), "a")
        await d.submit(key(), "b")
        with pytest.raises(BusyError) as info:
            await d.submit(key(), "c")
        assert (info.value.reason, info.value.limit, info.value.active) == ("queue_full", 2, 2)
        open_gate(tmp_path)
        await first.result()


async def test_a_turn_waiting_for_a_global_slot_absorbs_messages(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f'{WAIT_GATE}\necho "got $AGENT_MESSAGE"', busy_policy="collect")
    async with dispatcher(profile, max_running=1) as d:
        blocker = await d.submit(key("other"), "block")
        waiting = await d.submit(key(), "one")
        await anyio.sleep(0.05)  # its worker takes it and waits for the slot
        extra = await d.submit(key(), "two")
        assert (extra.turn, extra.position, extra.merged) == (waiting.turn, 0, True)
        open_gate(tmp_path)
        await blocker.result()
        assert (await waiting.result()).reply == "got one\n\ntwo"


# --- the per-user cap ---------------------------------------------------------------------------


async def test_per_user_cap_refuses_with_the_limit_and_the_count(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f"{WAIT_GATE}\necho ok")
    async with dispatcher(profile, max_per_user=2) as d:
        handles = [
            await d.submit(key("c1"), "x", from_user="alice"),
            await d.submit(key("c1"), "y", from_user="alice"),  # queued: counts too
        ]
        with pytest.raises(BusyError) as info:
            await d.submit(key("c2"), "z", from_user="alice")
        error = info.value
        assert (error.reason, error.limit, error.active) == ("user_limit", 2, 2)
        assert "alice already has 2 turns running or waiting (the limit is 2)" in str(error)
        handles.append(await d.submit(key("c2"), "z", from_user="bob"))
        handles += [await d.submit(key(f"anon{i}"), "z") for i in range(3)]  # "" is not capped
        open_gate(tmp_path)
        for h in handles:
            await h.result()
        # Finished turns no longer count.
        await (await d.submit(key("c3"), "again", from_user="alice")).result()


# --- cancel and reset ---------------------------------------------------------------------------


async def test_cancel_stops_the_running_turn_and_drops_the_queue(agent: MakeAgent) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    store = MemoryStore()
    async with dispatcher(profile, store) as d, d.subscribe(key()) as sub:
        running = await d.submit(key(), "one")
        queued = [await d.submit(key(), "two"), await d.submit(key(), "three")]
        await wait_for(sub, PartialText, running.turn)
        assert await d.cancel(key()) == 3
        first = await running.result()
        assert first.cancelled and first.exit_code == 130 and first.error == "cancelled"
        for h in queued:
            result = await h.result()
            assert result.error == "not run: cancelled before it started"
            assert result.exit_code == 130
        assert await d.cancel(key()) == 0
        assert await d.cancel(key("never-seen")) == 0
        after = await d.submit(key(), "four")
        assert after.turn == 4
        await wait_for(sub, PartialText, after.turn)
        assert await d.cancel(key()) == 1
        assert (await after.result()).cancelled
    transcript = await store.transcript(key())
    assert [(e.turn, e.message, e.exit_code) for e in transcript] == [
        (1, "one", 130),
        (2, "two", 130),
        (3, "three", 130),
        (4, "four", 130),
    ]


async def test_reset_starts_a_fresh_session(agent: MakeAgent) -> None:
    store = MemoryStore()
    async with dispatcher(agent(SESSION_AGENT), store) as d:
        assert (await (await d.submit(key(), "a")).result()).reply == "resumed="
        assert (await (await d.submit(key(), "b")).result()).reply == "resumed=s-a"
        await d.reset(key())
        assert (await (await d.submit(key(), "c")).result()).reply == "resumed="
        assert (await (await d.submit(key(), "d")).result()).reply == "resumed=s-c"
    conv = await store.get(key())
    assert conv is not None and conv.session_id == "s-d" and conv.turn_count == 4


async def test_reset_during_a_turn_drops_the_session_it_names(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(f'echo "AGENT_SESSION:s-$AGENT_MESSAGE"\n{WAIT_GATE}\necho ok')
    store = MemoryStore()
    async with dispatcher(profile, store) as d, d.subscribe(key()) as sub:
        running = await d.submit(key(), "a")
        queued = await d.submit(key(), "b")
        await wait_for(sub, Started, running.turn)
        await d.reset(key())
        open_gate(tmp_path)
        assert (await running.result()).session_id == "s-a"
        assert (await queued.result()).ok
    conv = await store.get(key())
    # Turn 1 read its session before the reset: its id is dropped. Turn 2
    # started after the reset, fresh, and keeps its own.
    assert conv is not None and conv.session_id == "s-b"
    assert [e.session_id for e in await store.transcript(key())] == ["s-a", "s-b"]


# --- session rules ------------------------------------------------------------------------------


async def test_idle_conversation_starts_a_fresh_session(agent: MakeAgent) -> None:
    now = [1_000_000.0]

    def clock() -> float:
        return now[0]

    store = MemoryStore(clock=clock)
    profiles = {"agent": agent(SESSION_AGENT), "short": agent(SESSION_AGENT, session_idle_secs=10)}
    async with dispatcher(profiles, store, session_idle_secs=60, clock=clock) as d:

        async def say(text: str, profile: str = "agent") -> str:
            return (await (await d.submit(key(profile=profile), text)).result()).reply

        assert await say("a") == "resumed="
        now[0] += 30
        assert await say("b") == "resumed=s-a"
        now[0] += 61
        assert await say("c") == "resumed="
        # The profile's own idle time wins over the bridge's default.
        assert await say("x", "short") == "resumed="
        now[0] += 30
        assert await say("y", "short") == "resumed="


async def test_session_from_a_failed_turn_is_kept_and_a_silent_turn_keeps_it(
    agent: MakeAgent,
) -> None:
    profile = agent(
        """
        echo "resumed=$AGENT_SESSION_ID"
        case "$AGENT_MESSAGE" in
            fail) echo "AGENT_SESSION:s-failed"; exit 3 ;;
            quiet) ;;
            *) echo "AGENT_SESSION:s-$AGENT_MESSAGE" ;;
        esac
        """
    )
    store = MemoryStore()
    async with dispatcher(profile, store) as d:

        async def say(text: str) -> tuple[str, str | None]:
            result = await (await d.submit(key(), text)).result()
            return result.reply, result.error

        assert await say("a") == ("resumed=", None)
        reply, error = await say("fail")
        assert reply == "resumed=s-a" and error is not None and "code 3" in error
        conv = await store.get(key())
        assert conv is not None and conv.last_status == STATUS_ERROR
        assert await say("quiet") == ("resumed=s-failed", None)
        assert await say("next") == ("resumed=s-failed", None)
    conv = await store.get(key())
    assert conv is not None and conv.session_id == "s-next" and conv.last_status == STATUS_OK


# --- events -------------------------------------------------------------------------------------


async def test_events_of_one_turn_can_be_followed_by_number(
    agent: MakeAgent, tmp_path: Path
) -> None:
    profile = agent(
        f"""
        {WAIT_GATE}
        echo 'AGENT_PARTIAL:"p1 '"$AGENT_MESSAGE"'"'
        echo "AGENT_SESSION:s-$AGENT_MESSAGE"
        echo "reply $AGENT_MESSAGE"
        """
    )
    async with (
        dispatcher(profile) as d,
        d.subscribe(key()) as mine,
        d.subscribe() as everything,
    ):
        one = await d.submit(key(), "one")
        two = await d.submit(key(), "two")
        other = await d.submit(key("c2"), "other")
        open_gate(tmp_path)
        for h in (one, two, other):
            await h.result()
        seen = await events_until_finished(mine, 2)
        every = await events_until_finished(everything, 3)
    assert {e.key for e in seen} == {key()}
    turn2 = [e for e in seen if e.turn == two.turn]
    assert [type(e) for e in turn2] == [Queued, Started, PartialText, Finished]
    assert turn2[0] == Queued(key(), 2, 1)
    assert turn2[1] == Started(key(), 2, "s-one")
    assert turn2[2] == PartialText(key(), 2, "p1 two")
    final = turn2[3]
    assert isinstance(final, Finished) and final.result.reply == "reply two"
    assert mine.dropped == 0
    assert {e.key for e in every} == {key(), key("c2")}
    assert [type(e) for e in every if e.key == key("c2")] == [
        Queued,
        Started,
        PartialText,
        Finished,
    ]


async def test_permission_requests_are_announced_and_answered() -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        env={"ASK_TOOLS": "Bash,Write"},
        permission=True,
        timeout_secs=20,
    )
    asked: list[tuple[ConversationKey, int, str]] = []

    async def on_permission(k: ConversationKey, turn: int, request: wire.PermissionRequest) -> bool:
        asked.append((k, turn, request.tool))
        return request.tool == "Bash"

    async with (
        dispatcher(profile, on_permission=on_permission) as d,
        d.subscribe(key()) as sub,
    ):
        result = await (await d.submit(key(), "go")).result()
        events = [await wait_for(sub, PermissionAsked) for _ in range(2)]
    assert asked == [(key(), 1, "Bash"), (key(), 1, "Write")]
    assert [(e.turn, e.request.tool) for e in events] == [(1, "Bash"), (1, "Write")]  # type: ignore[union-attr]
    assert "r1 allow=True" in result.reply and "r2 allow=False" in result.reply


async def test_a_slow_subscriber_loses_events_not_turns(agent: MakeAgent) -> None:
    profile = agent('i=0; while [ $i -lt 50 ]; do echo "AGENT_PARTIAL:$i"; i=$((i+1)); done')
    async with dispatcher(profile) as d, d.subscribe(key(), buffer=5) as sub:
        result = await (await d.submit(key(), "go")).result()
        assert len(result.partials) == 50
        assert sub.dropped > 0


async def test_permission_without_a_handler_is_denied() -> None:
    profile = Profile(
        command=sys.executable,
        args=[str(AGENTS / "permission_asker.py")],
        permission=True,
        timeout_secs=20,
    )
    async with dispatcher(profile) as d:
        result = await (await d.submit(key(), "go")).result()
    assert "allow=False" in result.reply and "no one to ask" in result.reply


# --- shutdown -----------------------------------------------------------------------------------


async def test_shutdown_refuses_the_queue_and_cancels_at_the_deadline(agent: MakeAgent) -> None:
    profile = agent("echo 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    store = MemoryStore()
    d = dispatcher(profile, store)
    async with d, d.subscribe() as sub:
        running = await d.submit(key(), "one")
        queued = await d.submit(key(), "two")
        await wait_for(sub, PartialText, running.turn)
        with anyio.fail_after(10):
            await d.aclose(grace=0.2)
        # Everything is decided and stored by the time aclose returns.
        assert running.done and queued.done
        first, second = await running.result(), await queued.result()
        assert first.cancelled and first.exit_code == 130
        assert second.error is not None and "shutting down" in second.error
        with pytest.raises(BusyError) as info:
            await d.submit(key(), "three")
        assert info.value.reason == "shutting_down"
        # The subscription ends with the dispatcher.
        async for _ in sub:
            pass
    conv = await store.get(key())
    assert conv is not None and conv.turn_count == 2 and conv.last_status == STATUS_CANCELLED
    assert [e.turn for e in await store.transcript(key())] == [1, 2]


async def test_shutdown_waits_for_a_turn_that_finishes_in_time(agent: MakeAgent) -> None:
    store = MemoryStore()
    d = dispatcher(agent("sleep 0.3\necho done"), store)
    async with d, d.subscribe(key()) as sub:
        handle = await d.submit(key(), "x")
        await wait_for(sub, Started, handle.turn)
    assert handle.done and (await handle.result()).reply == "done"
    assert [e.reply for e in await store.transcript(key())] == ["done"]


async def test_shutdown_refuses_a_turn_that_has_not_started(agent: MakeAgent) -> None:
    # Accepted at position 0, but its agent had not started: nothing new
    # starts during a shutdown.
    store = MemoryStore()
    async with dispatcher(agent("echo hi"), store) as d:
        handle = await d.submit(key(), "x")
    result = await handle.result()
    assert result.error is not None and "shutting down" in result.error
    assert [e.error for e in await store.transcript(key())] == [result.error]


async def test_cancelling_the_host_still_stores_every_turn(agent: MakeAgent) -> None:
    profile = agent("echo AGENT_SESSION:s-1\necho 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    store = MemoryStore()
    handles = []
    with anyio.CancelScope() as host:
        async with dispatcher(profile, store) as d, d.subscribe() as sub:
            handles += [await d.submit(key(), "one"), await d.submit(key(), "two")]
            await wait_for(sub, PartialText)
            host.cancel()  # as a Ctrl-C would: no graceful close
            await anyio.sleep(30)
    assert all(h.done for h in handles)
    first = await handles[0].result()
    # The agent was stopped through the turn's cancel, so its result is whole.
    assert first.cancelled and first.session_id == "s-1" and first.partials == ["go"]
    conv = await store.get(key())
    assert conv is not None and conv.session_id == "s-1"
    second = await handles[1].result()
    assert second.error is not None and second.error.startswith("not run: ")
    assert [e.exit_code for e in await store.transcript(key())] == [130, 130]


# --- refusals -----------------------------------------------------------------------------------


async def test_unknown_profile_is_a_clear_error(agent: MakeAgent) -> None:
    async with dispatcher({"echo": agent("echo hi")}) as d:
        with pytest.raises(UnknownProfile) as info:
            await d.submit(key(profile="ecko"), "hi")
        assert str(info.value) == "no profile named 'ecko' (did you mean 'echo'?)"
        assert info.value.exit_code == 2
        with pytest.raises(UnknownProfile) as info:
            await d.submit(key(profile="zzz"), "hi")
        assert info.value.hint == "known profiles: echo"


async def test_empty_message_is_refused_before_anything_runs(agent: MakeAgent) -> None:
    store = MemoryStore()
    async with dispatcher(agent("echo hi"), store) as d:
        with pytest.raises(LaunchError, match="nothing to send"):
            await d.submit(key(), "")
    assert await store.get(key()) is None


async def test_submit_outside_async_with_is_a_programming_error(agent: MakeAgent) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await dispatcher(agent("echo hi")).submit(key(), "x")


@pytest.mark.parametrize(
    "kw",
    [
        {"busy_policy": "wait"},
        {"max_running": 0},
        {"queue_limit": 0},
        {"max_per_user": 0},
        {"session_idle_secs": 0},
    ],
)
def test_bad_settings_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Dispatcher(MemoryStore(), {}, **kw)  # type: ignore[arg-type]


def test_a_dispatcher_can_be_made_outside_the_event_loop() -> None:
    Dispatcher(MemoryStore(), {}, busy_policy="collect", max_per_user=3)


class BrokenStore(MemoryStore):
    """A store that fails for some conversations, as a full disk would."""

    fail_reads = False

    async def get(self, key: ConversationKey) -> Conversation | None:
        if key.key == "unreadable" or self.fail_reads:
            raise StoreError("cannot read sessions.db: disk I/O error", hint="check the disk")
        return await super().get(key)

    async def record_turn(self, key: ConversationKey, *args: Any, **kw: Any) -> Conversation:
        if key.key in ("unreadable", "unwritable"):
            raise StoreError("cannot write sessions.db: database or disk is full")
        return await super().record_turn(key, *args, **kw)


async def test_a_failing_store_fails_the_turn_not_the_dispatcher(agent: MakeAgent) -> None:
    store = BrokenStore()
    async with dispatcher(agent(SESSION_AGENT), store) as d:
        # Reading fails when the conversation is opened: the sender is told.
        with pytest.raises(StoreError):
            await d.submit(key("unreadable"), "x")
        # Writing fails after the agent answered: the answer is not lost.
        result = await (await d.submit(key("unwritable"), "x")).result()
        assert result.ok and result.reply == "resumed="
        assert any("could not be saved" in w and "disk is full" in w for w in result.warnings)
        # Other conversations are unaffected.
        assert (await (await d.submit(key(), "y")).result()).ok
        # Reading fails when a turn starts: that turn fails, without guessing a session.
        first = await d.submit(key(), "z")
        second = await d.submit(key(), "w")
        store.fail_reads = True
        assert (await first.result()).ok  # read when its conversation was opened
        failed = await second.result()
        assert (
            failed.error == "cannot read the session store: cannot read sessions.db: disk I/O error"
        )
        assert failed.hint == "check the disk"


# --- with the SQLite store ---------------------------------------------------------------------


async def test_sqlite_store_keeps_order_numbers_and_sessions(
    agent: MakeAgent, tmp_path: Path
) -> None:
    sqlite = pytest.importorskip("bridge.store.sqlite")
    profile = agent(SESSION_AGENT)
    path = tmp_path / "sessions.db"
    async with sqlite.SQLiteStore(path) as store, dispatcher(profile, store, max_running=3) as d:
        handles = [await d.submit(key(f"c{c}"), f"{c}-{t}") for t in range(3) for c in range(5)]
        for h in handles:
            assert (await h.result()).ok
    async with sqlite.SQLiteStore(path) as store, dispatcher(profile, store) as d:
        handle = await d.submit(key("c2"), "again")
        assert handle.turn == 4
        assert (await handle.result()).reply == "resumed=s-2-2"
        transcript = await store.transcript(key("c2"))
    assert [(e.turn, e.message) for e in transcript] == [
        (1, "2-0"),
        (2, "2-1"),
        (3, "2-2"),
        (4, "again"),
    ]


async def test_sqlite_store_is_complete_after_a_cancelled_host(
    agent: MakeAgent, tmp_path: Path
) -> None:
    sqlite = pytest.importorskip("bridge.store.sqlite")
    profile = agent("echo AGENT_SESSION:s-$AGENT_MESSAGE\necho 'AGENT_PARTIAL:\"go\"'\nsleep 30")
    path = tmp_path / "sessions.db"
    async with sqlite.SQLiteStore(path) as store:
        with anyio.CancelScope() as host:
            async with dispatcher(profile, store) as d, d.subscribe() as sub:
                for c in range(4):
                    await d.submit(key(f"c{c}"), "one")
                    await d.submit(key(f"c{c}"), "two")
                for _ in range(4):
                    await wait_for(sub, PartialText)
                host.cancel()  # as a Ctrl-C would: no graceful close
                await anyio.sleep(30)
    async with sqlite.SQLiteStore(path) as store:
        for c in range(4):
            conv = await store.get(key(f"c{c}"))
            assert conv is not None and conv.turn_count == 2 and conv.session_id == "s-one"
            transcript = await store.transcript(key(f"c{c}"))
            assert [(e.turn, e.exit_code) for e in transcript] == [(1, 130), (2, 130)]

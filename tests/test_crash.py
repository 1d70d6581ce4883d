"""Real crashes: ``kill -9`` of a process in the middle of a log write, and of
a bridge in the middle of a turn. Whatever the moment, the log on disk holds
together (dense ids, every count matching the rows), nothing that was
committed is lost, and a turn left open is closed as abandoned, never re-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from bridge.conversations.dispatcher import Dispatcher
from bridge.store.records import (
    MESSAGE,
    TURN_COMPLETED,
    TURN_PARTIAL,
    TURN_QUEUED,
    TURN_STARTED,
    ConversationKey,
    Route,
)
from bridge.store.rules import ABANDONED_ERROR
from bridge.store.sqlite import SQLiteStore
from bridge.turn.profile import Profile

ROOT = Path(__file__).resolve().parent.parent
ROUTE = Route("bundled:crash-agent", "/tmp", "agent")
KEY = ConversationKey("test", "crash", ROUTE)

#: Writes to the log as fast as it can: messages, and turns full of partials,
#: in a loop; prints "ready" once its first write is in.
WRITER = textwrap.dedent(
    """
    import sys
    import anyio
    from bridge.store.records import ConversationKey, NewMessage, Route
    from bridge.store.owners import new_owner
    from bridge.store.sqlite import SQLiteStore

    KEY = ConversationKey("test", "crash", Route("bundled:crash-agent", "/tmp", "agent"))
    DONE = {"status": "ok", "reply": "r", "session_id": "", "exit_code": 0, "error": None,
            "hint": "", "warnings": [], "timed_out": False, "duration_ms": 1}

    async def main(path):
        owner = new_owner()
        async with SQLiteStore(path) as store:
            conv = await store.open(KEY)
            first = True
            while True:
                message, _ = await store.add_message(conv.id, NewMessage("x" * 500))
                if first:
                    print("ready", flush=True)
                    first = False
                claim = await store.claim(conv.id, owner, lease_secs=60)
                taken = [e.id for e in claim.pending]
                now, queued = await store.take(conv.id, owner, taken, text="go")
                await store.start(conv.id, owner, queued.turn, "")
                for n in range(20):
                    data = {"text": "p" * 2000, "offset": n * 2000}
                    await store.append(conv.id, owner, queued.turn, "turn.partial", data)
                await store.complete(conv.id, owner, queued.turn, DONE,
                                     captured_session=None, epoch=now.reset_epoch)

    anyio.run(main, sys.argv[1])
    """
)


def _kill_after(proc: subprocess.Popen[bytes], secs: float) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
    time.sleep(secs)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _writer(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.anyio
async def test_kill_9_in_the_middle_of_log_writes_leaves_a_sound_log(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    seen_last = 0
    # Different moments: early, mid-turn, a little later; each run goes on
    # from what the previous one left.
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = _writer(path)
        await anyio.to_thread.run_sync(_kill_after, proc, delay)
        async with SQLiteStore(path) as store:
            conv = await store.lookup(KEY)
            assert conv is not None
            events = await store.read(conv.id, limit=1_000_000)
            ids = [e.id for e in events]
            assert ids == list(range(conv.first_event, conv.last_event + 1)), "dense ids"
            assert conv.last_event >= seen_last, "nothing committed was lost"
            seen_last = conv.last_event
            queued = [e.turn for e in events if e.type == TURN_QUEUED]
            assert queued == list(range(1, conv.turn_count + 1))
            ends = [e.turn for e in events if e.type == TURN_COMPLETED]
            # Every turn but the open one has exactly one end.
            open_turns = [t for t in queued if t not in ends]
            assert open_turns == ([conv.running_turn] if conv.running_turn else [])
            assert len(ends) == len(set(ends))
            for turn in queued:
                texts = [e.data for e in events if e.type == TURN_PARTIAL and e.turn == turn]
                assert [d["offset"] for d in texts] == [n * 2000 for n in range(len(texts))]
            # The writer's pid is dead: its open turn is closed now, not re-run.
            closed = await store.recover(conv.id)
            if conv.running_turn:
                assert [e.type for e in closed] == [TURN_COMPLETED]
                assert closed[0].data["status"] == "abandoned"
            assert (await store.get(conv.id)).running_turn == 0  # type: ignore[union-attr]


#: A bridge in a process of its own: opens the conversation, sends one
#: message to an agent that streams until it is stopped, and says when the
#: turn has started streaming.
BRIDGE = textwrap.dedent(
    """
    import sys
    import anyio
    from bridge.conversations.dispatcher import Dispatcher
    from bridge.store.records import ConversationKey, Route
    from bridge.store.sqlite import SQLiteStore
    from bridge.turn.profile import Profile

    ROUTE = Route("bundled:crash-agent", "/tmp", "agent")
    # Streams a dot every 50 ms: once its bridge is gone, the next write
    # fails (SIGPIPE) and the agent ends too.
    AGENT = "while true; do echo 'AGENT_PARTIAL:\\"started\\"'; sleep 0.05; done"
    PROFILE = Profile(command="/bin/sh", args=["-c", AGENT])

    async def main(path):
        async with SQLiteStore(path) as store, Dispatcher(store, {ROUTE: PROFILE}) as d:
            conv = await d.open(ConversationKey("test", "crash", ROUTE))
            async with d.subscribe(conv.id) as events:
                await d.submit(conv.id, "do the long thing", from_user="alice")
                async for event in events:
                    if event.type == "turn.partial":
                        print("started", flush=True)
                        break
            await anyio.sleep_forever()

    anyio.run(main, sys.argv[1])
    """
)


@pytest.mark.anyio
async def test_a_bridge_killed_mid_turn_leaves_the_turn_abandoned_with_its_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", BRIDGE, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    assert line == b"started\n", proc.stderr.read() if proc.stderr else b""
    os.kill(proc.pid, signal.SIGKILL)
    await anyio.to_thread.run_sync(proc.wait)

    ran = tmp_path / "ran-again"
    profile = Profile(command="/bin/sh", args=["-c", f'touch "{ran}"; echo "fresh $AGENT_MESSAGE"'])
    async with SQLiteStore(path) as store, Dispatcher(store, {ROUTE: profile}) as d:
        conv = await d.open(KEY)
        events = await store.read(conv.id)
        done = [e for e in events if e.type == TURN_COMPLETED]
        assert [e.data["status"] for e in done] == ["abandoned"]
        assert done[0].data["error"] == ABANDONED_ERROR and done[0].data["hint"]
        queued = next(e for e in events if e.type == TURN_QUEUED)
        assert queued.data["text"] == "do the long thing", "the message that started it"
        assert not ran.exists(), "an abandoned turn is not run again"
        # The conversation goes on normally.
        sent = await d.submit(conv.id, "next")
        with anyio.fail_after(20):
            after = await d.outcome(conv.id, sent.message.id)
        assert after.data["reply"] == "fresh next" and after.turn == 2
    assert [e.type for e in events].count(TURN_STARTED) == 1
    assert [e.type for e in events].count(MESSAGE) == 1

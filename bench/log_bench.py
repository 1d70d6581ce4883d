"""Benchmarks of the conversation log and the dispatcher on it (see run.py).

log-stream     100,000 chunks through the dispatcher and the SQLite log to a
               subscriber vs run_turn alone with an on_partial callback
chunk-latency  from an agent's write of a chunk to a subscriber in the same
               process: p50 and p99 (an idle machine should keep p99 < 5 ms)
dispatch       200 conversations x 5 turns of the shell echo agent through the
               Dispatcher on the log (max_running 16) vs the same agent spawned
               by 16 threads with subprocess.run; a THROUGHPUT ratio (ours /
               baseline, higher is better, the target is a floor)
store          the log store's cost per turn (message, claim, take, start,
               complete, release) and per appended event, SQLite and memory
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = sys.executable

CHUNKS = 100_000

# An agent that streams CHUNKS partial lines, each flushed as it is made.
CHUNK_AGENT = f"""\
import sys
out = sys.stdout
for i in range({CHUNKS}):
    out.write('AGENT_PARTIAL:"chunk %d "\\n' % i)
    out.flush()
out.write("done\\n")
"""

# Streams its own wall-clock time every few milliseconds, so the reader can
# tell how long each chunk took to reach it.
LATENCY_AGENT = """\
import sys, time
out = sys.stdout
for _ in range(int(sys.argv[1])):
    out.write('AGENT_PARTIAL:"%d "\\n' % time.time_ns())
    out.flush()
    time.sleep(0.004)
"""


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _route() -> Any:
    from bridge.store.records import Route

    return Route("bench:agent", "/tmp", "bench")


def bench_log_stream(work: Path, rounds: int) -> tuple[float, float]:
    """Seconds for one 100,000-chunk turn: run_turn with on_partial (baseline)
    vs the dispatcher writing the log on SQLite with one subscriber reading it."""
    import anyio

    from bridge import load_profile, run_turn
    from bridge.conversations.dispatcher import Dispatcher
    from bridge.store.records import TURN_COMPLETED, TURN_PARTIAL, ConversationKey
    from bridge.store.sqlite import SQLiteStore

    agent = work / "chunk_agent.py"
    agent.write_text(CHUNK_AGENT)
    path = work / "chunks.yaml"
    path.write_text(f"command: {PY}\nargs: [{agent}]\nmax_reply_chars: 20000000\n")
    profile = load_profile(path)
    expected = sum(len(f"chunk {i} ") for i in range(CHUNKS))

    def base() -> float:
        async def turn() -> None:
            size = 0

            def on_partial(text: str) -> None:
                nonlocal size
                size += len(text)

            result = await run_turn(profile, "go", on_partial=on_partial)
            assert result.ok and size == expected, (result.error, size)

        return timed(lambda: anyio.run(turn))

    counter = iter(range(1000))

    def ours() -> float:
        async def turn() -> None:
            async with (
                SQLiteStore(work / f"log-stream-{next(counter)}.db") as store,
                Dispatcher(store, {_route(): profile}) as d,
            ):
                conv = await d.open(ConversationKey("bench", "c", _route()))
                size = 0
                async with d.subscribe(conv.id) as events:
                    await d.submit(conv.id, "go")
                    async for event in events:
                        if event.type == TURN_PARTIAL:
                            size += len(event.data["text"])
                        elif event.type == TURN_COMPLETED:
                            assert event.data["status"] == "ok", event.data
                            break
                assert size == expected, size

        return timed(lambda: anyio.run(turn))

    b: list[float] = []
    o: list[float] = []
    for _ in range(rounds):
        b.append(base())
        o.append(ours())
    return statistics.median(b), statistics.median(o)


def bench_chunk_latency(work: Path, chunks: int = 500) -> tuple[float, float]:
    """p50 and p99 seconds from an agent's write of a chunk to a subscriber."""
    import anyio

    from bridge import load_profile
    from bridge.conversations.dispatcher import Dispatcher
    from bridge.store.records import TURN_COMPLETED, TURN_PARTIAL, ConversationKey
    from bridge.store.sqlite import SQLiteStore

    agent = work / "latency_agent.py"
    agent.write_text(LATENCY_AGENT)
    path = work / "latency.yaml"
    path.write_text(f"command: {PY}\nargs: [{agent}, '{chunks}']\n")
    profile = load_profile(path)
    delays: list[float] = []

    async def turn() -> None:
        async with (
            SQLiteStore(work / "latency.db") as store,
            Dispatcher(store, {_route(): profile}) as d,
        ):
            conv = await d.open(ConversationKey("bench", "latency", _route()))
            async with d.subscribe(conv.id) as events:
                await d.submit(conv.id, "go")
                async for event in events:
                    if event.type == TURN_PARTIAL and event.live:
                        now = time.time_ns()
                        # A reader that fell behind gets what piled up at once.
                        for stamp in event.data["text"].split():
                            delays.append((now - int(stamp)) / 1e9)
                    elif event.type == TURN_COMPLETED:
                        break

    anyio.run(turn)
    delays.sort()
    assert len(delays) == chunks, len(delays)
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


def bench_dispatch(
    rounds: int, convs: int = 200, turns: int = 5, cap: int = 16
) -> tuple[float, float, float]:
    """Seconds for ``convs`` x ``turns`` echo turns: (baseline from ``cap``
    threads, the dispatcher on a MemoryStore, run_turn alone under a limiter)."""
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from bridge import load_profile, run_turn
    from bridge.conversations.dispatcher import Dispatcher
    from bridge.store.memory import MemoryStore
    from bridge.store.records import ConversationKey
    from bridge.turn.bundled import BUNDLED_DIR

    echo = BUNDLED_DIR / "echo"
    profile = load_profile(echo / "profile-shell.yaml")
    agent = str(echo / "agent.sh")
    total = convs * turns
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def base() -> float:
        def one(i: int) -> None:
            out = subprocess.run(
                [agent], env={**env, "AGENT_MESSAGE": f"m{i}"}, capture_output=True, check=True
            )
            assert out.stdout == f"You said: m{i}\n".encode(), out

        def go() -> None:
            with ThreadPoolExecutor(cap) as pool:
                list(pool.map(one, range(total)))

        return timed(go)

    def ours() -> float:
        async def go() -> None:
            store = MemoryStore()
            async with Dispatcher(store, {_route(): profile}, max_running=cap) as d:

                async def conversation(c: int) -> None:
                    conv = await d.open(ConversationKey("bench", f"c{c}", _route()))
                    for t in range(turns):
                        sent = await d.submit(conv.id, f"m{t}")
                        done = await d.outcome(conv.id, sent.message.id)
                        assert done.data["reply"] == f"You said: m{t}", done.data

                async with anyio.create_task_group() as tg:
                    for c in range(convs):
                        tg.start_soon(conversation, c)
            assert sum(c.turn_count for c in await store.conversations()) == total

        return timed(lambda: anyio.run(go))

    def alone() -> float:
        async def go() -> None:
            limiter = anyio.CapacityLimiter(cap)

            async def conversation() -> None:
                for t in range(turns):
                    async with limiter:
                        result = await run_turn(profile, f"m{t}", cancel=anyio.Event())
                        assert result.reply == f"You said: m{t}", result

            async with anyio.create_task_group() as tg:
                for _ in range(convs):
                    tg.start_soon(conversation)

        return timed(lambda: anyio.run(go))

    b: list[float] = []
    o: list[float] = []
    a: list[float] = []
    for _ in range(rounds):
        b.append(base())
        o.append(ours())
        a.append(alone())
    return statistics.median(b), statistics.median(o), statistics.median(a)


def bench_store(work: Path, turns: int = 1000) -> dict[str, tuple[float, float]]:
    """Per store: (seconds per turn, seconds per appended event)."""
    import anyio

    from bridge.store.base import Store
    from bridge.store.memory import MemoryStore
    from bridge.store.owners import new_owner
    from bridge.store.records import TURN_PARTIAL, ConversationKey, NewMessage
    from bridge.store.sqlite import SQLiteStore

    outcome = {
        "status": "ok",
        "reply": "You said: hello",
        "session_id": "s",
        "exit_code": 0,
        "error": None,
        "hint": "",
        "warnings": [],
        "timed_out": False,
        "duration_ms": 9,
    }

    async def measure(store: Store) -> tuple[float, float]:
        owner = new_owner()
        convs = [
            (await store.open(ConversationKey("bench", f"c{i}", _route()))).id for i in range(10)
        ]
        start = time.perf_counter()
        for i in range(turns):
            cid = convs[i % len(convs)]
            message, _ = await store.add_message(cid, NewMessage("hello " * 20))
            claim = await store.claim(cid, owner, lease_secs=30)
            assert claim is not None
            _, queued = await store.take(cid, owner, [message.id], text="hello")
            await store.start(cid, owner, queued.turn, "s")
            await store.complete(cid, owner, queued.turn, outcome, captured_session="s", epoch=0)
            await store.release(cid, owner)
        per_turn = (time.perf_counter() - start) / turns
        cid = convs[0]
        await store.add_message(cid, NewMessage("stream"))
        claim = await store.claim(cid, owner, lease_secs=30)
        assert claim is not None
        _, queued = await store.take(cid, owner, [claim.pending[0].id], text="stream")
        start = time.perf_counter()
        for i in range(turns):
            data = {"text": "x" * 4000, "offset": i * 4000}
            await store.append(cid, owner, queued.turn, TURN_PARTIAL, data)
        per_event = (time.perf_counter() - start) / turns
        return per_turn, per_event

    async def sqlite() -> tuple[float, float]:
        async with SQLiteStore(work / "bench-store.db") as store:
            return await measure(store)

    return {"memory": anyio.run(measure, MemoryStore()), "sqlite": anyio.run(sqlite)}

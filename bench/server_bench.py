"""Benchmarks of ``agentproc serve`` over HTTP on loopback (see run.py).

Each one starts a real server process (``agentproc serve --config ...
--data-dir ...`` on a free port, as tests/serve_kit.py does) and talks to it
from this process.

accept      messages accepted per second by POST .../messages, 50 at a time
            spread over 50 conversations, vs raw single-row commits to a
            SQLite file with the store's settings from 50 threads; a
            THROUGHPUT ratio (ours / baseline, higher is better)
fan-out     500 SSE subscribers of one conversation while its agent streams
            10,000 chunks: every one gets all of the text; wall time from the
            post to the last subscriber's turn.completed vs one subscriber,
            and the server's memory per connected subscriber
sse-latency from an agent's chunk to an SSE client on loopback: p50 and p99
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from pathlib import Path

from server_kit import Http, Reader, Server, new_conversation, post_message, serving

PY = sys.executable

#: The accept benchmark's concurrency (requests in flight, baseline threads).
CONCURRENCY = 50

# Streams CHUNKS chunks ("chunk 0 chunk 1 ..."), each flushed as it is made.
STREAM_AGENT = """\
import sys
out = sys.stdout
for i in range(int(sys.argv[1])):
    out.write('AGENT_PARTIAL:"chunk %d "\\n' % i)
    out.flush()
out.write("done\\n")
"""

# Streams its own wall-clock time every 5 ms, so a reader can tell how long
# each chunk took to reach it.
CLOCK_AGENT = """\
import sys, time
out = sys.stdout
for _ in range(int(sys.argv[1])):
    out.write('AGENT_PARTIAL:"%d "\\n' % time.time_ns())
    out.flush()
    time.sleep(0.005)
out.write("done\\n")
"""


def streamed_text(chunks: int) -> str:
    return "".join(f"chunk {i} " for i in range(chunks))


# --- accept rate ---------------------------------------------------------------------------


def bench_accept(work: Path, rounds: int, messages: int = 5000) -> tuple[float, float, dict]:
    """Messages per second: (raw SQLite commits, POST .../messages, extras)."""
    per_task = messages // CONCURRENCY
    total = per_task * CONCURRENCY
    counter = iter(range(1000))

    def base() -> float:
        return total / sqlite_commits(work / f"commits-{next(counter)}.db", per_task)

    def ours(agent: dict[str, object]) -> tuple[float, float, float]:
        """(messages per second, server and client CPU ms per message)."""
        with serving(work, f"accept-{next(counter)}", {"agent": agent}) as server:

            async def post_all() -> float:
                conns = [await Http.connect(server) for _ in range(CONCURRENCY)]
                pairs = [(http, await new_conversation(http, "agent")) for http in conns]

                async def post(http: Http, conv: str, n: int) -> None:
                    for i in range(n):
                        await post_message(http, conv, f"m{i}")

                # Each connection's first request is outside the clock.
                await asyncio.gather(*(post(h, c, 1) for h, c in pairs))
                start = time.perf_counter()
                await asyncio.gather(*(post(h, c, per_task) for h, c in pairs))
                secs = time.perf_counter() - start
                for http in conns:
                    http.close()
                return secs

            server_cpu, client_cpu = server.cpu_secs(), time.process_time()
            secs = asyncio.run(post_all())
            server_cpu = server.cpu_secs() - server_cpu
            client_cpu = time.process_time() - client_cpu
        return total / secs, server_cpu * 1000 / total, client_cpu * 1000 / total

    # The agent answers at once, so turns run behind the accepts as on a
    # real server and compete with them for the two cores.
    trivial = {"command": "/bin/echo", "args": ["ok"]}
    # The first 16 turns take the 16 running slots and sleep through the
    # measurement; everything else waits: the accept path alone, for comparison.
    held = {"command": "/bin/sleep", "args": ["600"]}
    b: list[float] = []
    o: list[tuple[float, float, float]] = []
    alone: list[float] = []
    for _ in range(rounds):
        b.append(base())
        o.append(ours(trivial))
        if rounds > 1:
            alone.append(ours(held)[0])
    rate, server_ms, client_ms = sorted(o)[len(o) // 2]
    extras = {"messages": total, "server_ms": server_ms, "client_ms": client_ms}
    if alone:
        extras["alone"] = _median(alone)
    return _median(b), rate, extras


def sqlite_commits(path: Path, per_thread: int) -> float:
    """Seconds for CONCURRENCY threads to commit ``per_thread`` one-row
    transactions each, on one connection set up as the store's is.

    One connection that the threads take turns on, because that is what the
    store does (one connection, one call at a time): each commit is the
    store's unit of work without the store's own code. A connection per
    thread measured about the same here (14,000-24,000 commits/s against
    23,000-29,000), but scatters more: the lock waits go through SQLite's
    busy handler, which sleeps between retries."""
    from bridge.store.sqlite_files import BUSY_TIMEOUT_SECS

    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECS, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE message (id INTEGER PRIMARY KEY, conversation TEXT NOT NULL, "
        "text TEXT NOT NULL, at REAL NOT NULL)"
    )
    lock = threading.Lock()
    ready = threading.Barrier(CONCURRENCY + 1)

    def writer(t: int) -> None:
        ready.wait()
        for i in range(per_thread):
            with lock:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO message (conversation, text, at) VALUES (?, ?, ?)",
                    (f"c{t}", f"m{i}", time.time()),
                )
                conn.execute("COMMIT")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(CONCURRENCY)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    (count,) = conn.execute("SELECT count(*) FROM message").fetchone()
    conn.close()
    assert count == per_thread * CONCURRENCY, count
    return secs


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def bench_fanout(
    work: Path, rounds: int, subscribers: int = 500, chunks: int = 10_000
) -> tuple[float, float, dict]:
    """Seconds from the post to the last subscriber's turn.completed, for one
    subscriber and for ``subscribers``; extras: memory per subscriber (KiB),
    turn.partial events and bytes per subscriber, CPU seconds of server and client.

    The subscribers are raw asyncio streams (server_kit.Reader) in this one
    process, which spends about half the server's CPU on them (both are
    printed), so the server, not the client, sets the pace."""
    stream = {"command": PY, "args": ["-c", STREAM_AGENT, str(chunks)], "timeout_secs": 600}
    expected = streamed_text(chunks)
    one: list[float] = []
    many: list[float] = []
    memory: list[float] = []
    extras: dict = {}

    async def turn(server: Server, http: Http, n: int) -> tuple[float, list[Reader], int]:
        """(seconds, the readers, the server's RSS with them connected)."""
        conv = await new_conversation(http, "stream")
        readers = [await Reader.open(server, conv, 1) for _ in range(n)]
        await asyncio.sleep(0.5)  # let the server settle after the connections
        rss = server.rss_kib()
        start = time.perf_counter()
        await post_message(http, conv, "go")
        await asyncio.gather(*(r.follow() for r in readers))
        for r in readers:
            assert "".join(r.text) == expected, (len("".join(r.text)), len(expected))
        return max(r.done for r in readers) - start, readers, rss

    for i in range(rounds):
        with serving(work, f"fanout-{i}", {"stream": stream}) as server:

            async def go() -> None:
                http = await Http.connect(server)
                # The first turn of a server imports and compiles what a turn
                # needs: it warms up, unmeasured.
                await turn(server, http, 1)
                one.append((await turn(server, http, 1))[0])
                idle = server.rss_kib()
                server_cpu, client_cpu = server.cpu_secs(), time.process_time()
                secs, readers, rss = await turn(server, http, subscribers)
                many.append(secs)
                memory.append((rss - idle) / subscribers)
                extras["server_cpu"] = server.cpu_secs() - server_cpu
                extras["client_cpu"] = time.process_time() - client_cpu
                extras["partials"] = _median([float(r.partials) for r in readers])
                extras["bytes"] = _median([float(r.bytes) for r in readers])
                http.close()

            asyncio.run(go())
    extras["kib_per_subscriber"] = _median(memory)
    return _median(one), _median(many), extras


def bench_sse_latency(work: Path, rounds: int, chunks: int = 200) -> list[tuple[float, float]]:
    """(p50, p99) seconds from an agent's chunk to an SSE client, per round."""
    clock = {"command": PY, "args": ["-c", CLOCK_AGENT, str(chunks)], "timeout_secs": 600}
    out: list[tuple[float, float]] = []
    with serving(work, "latency", {"clock": clock}) as server:

        async def go() -> None:
            http = await Http.connect(server)
            for i in range(rounds + 1):  # the first turn warms the server up
                conv = await new_conversation(http, "clock")
                reader = await Reader.open(server, conv, 1)
                await post_message(http, conv, "go")
                await reader.follow(stamps=True)
                delays = sorted(
                    (now - int(stamp)) / 1e9
                    for now, text in reader.arrivals
                    for stamp in text.split()  # a reader that fell behind gets several
                )
                assert len(delays) == chunks, len(delays)
                if i:
                    out.append((delays[len(delays) // 2], delays[int(len(delays) * 0.99)]))
            http.close()

        asyncio.run(go())
    return out


# --- the rows of run.py's table ------------------------------------------------------------

#: The benchmarks here, as run.py's --only names them ("server": all three).
NAMES = ("accept", "fan-out", "sse-latency")

#: accept: messages per second, ours / raw SQLite commits, at least this.
ACCEPT_FLOOR = 0.5


def report(work: Path, *, quick: bool, only: str | None) -> bool:
    """Run the server benchmarks ``only`` selects and print their rows;
    returns whether a target was missed."""
    failed = False
    if only in (None, "server", "accept"):
        base, ours, x = bench_accept(work, 1 if quick else 3, 500 if quick else 3000)
        ratio = ours / base
        failed |= ratio < ACCEPT_FLOOR
        print(
            f"accept        {x['messages']} POSTs, {CONCURRENCY} at a time: baseline "
            f"{base:,.0f}/s (raw SQLite commits), agentproc {ours:,.0f}/s; throughput "
            f"ours/baseline {ratio:.3f}x (floor {ACCEPT_FLOOR:.2f}x)"
            f"{'' if ratio >= ACCEPT_FLOOR else '  UNDER'}"
        )
        alone = f"; with no turn running {x['alone']:,.0f}/s" if "alone" in x else ""
        print(
            f"{'':<13} CPU per message: server {x['server_ms']:.2f} ms, this client "
            f"{x['client_ms']:.2f} ms{alone}"
        )
    if only in (None, "server", "fan-out"):
        subscribers, chunks = (50, 1000) if quick else (500, 10_000)
        one, many, x = bench_fanout(work, 1 if quick else 3, subscribers, chunks)
        print(
            f"fan-out       {subscribers} subscribers x {chunks:,} chunks: post to last "
            f"turn.completed {many * 1000:.0f} ms vs {one * 1000:.0f} ms for one "
            f"({many / one:.1f}x); server memory {x['kib_per_subscriber']:.1f} KiB per subscriber"
        )
        print(
            f"{'':<13} each got all {len(streamed_text(chunks)):,} characters, in "
            f"{x['partials']:.0f} turn.partial events ({x['bytes'] / 1000:.0f} kB); CPU: server "
            f"{x['server_cpu']:.2f} s, this client {x['client_cpu']:.2f} s"
        )
    if only in (None, "server", "sse-latency"):
        chunks = 50 if quick else 200
        rounds = bench_sse_latency(work, 1 if quick else 5, chunks)
        p50 = _median([r[0] for r in rounds])
        p99 = _median([r[1] for r in rounds])
        print(
            f"sse-latency   agent chunk to SSE client on loopback: p50 {p50 * 1000:.2f} ms, "
            f"p99 {p99 * 1000:.2f} ms (medians over {len(rounds)} turn{'s' * (len(rounds) > 1)} of "
            f"{chunks} chunks 5 ms apart)"
        )
    return failed

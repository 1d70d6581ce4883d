"""agentproc benchmarks: ratios against a baseline measured in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py``). Each line
compares agentproc with the plain thing it wraps on this machine, right now:

  start-version `agentproc --version` vs `python -c pass` (same interpreter)
  start-run     `agentproc run` of a shell agent (sh -c 'echo ...') vs a bare
                `python -c` that spawns the same agent with subprocess.run
  sdk-start     SDK echo agent (sync handler) vs the same agent by hand (stdlib)
  turn-echo     run_turn('/bin/echo hi') vs subprocess.run of it
  stream        100,000 partial lines + 10 MB of body through run_turn
                vs the same agent writing to /dev/null
  concurrency   1,000 concurrent 1 s turns in one event loop vs 1,000 Popen'ed sleeps
  memory        peak RSS of `agentproc run` for 100 MB of body, and for one
                50 MB line without a newline (MiB; the budget is 100)

The conversation log's benchmarks (log-stream, chunk-latency, dispatch,
store) are in log_bench.py, the chat channels' (plan) in channel_bench.py,
and the server's (accept, fan-out, sse-latency; ``--only server`` runs the
three) in server_bench.py; they run from here too.

Times are medians of alternating runs, so both sides see the same machine
load. ``--quick`` runs fewer rounds (used by the test suite to keep this
script working); ``--only NAME`` runs one benchmark.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import channel_bench  # noqa: E402 - beside this file
import log_bench  # noqa: E402 - beside this file
import server_bench  # noqa: E402 - beside this file

PY = sys.executable
AGENTPROC = str(Path(PY).parent / "agentproc")

LIMITS = {
    "start-version": 1.5,
    "start-run": 3.0,
    "sdk-start": 1.3,
    "turn-echo": 1.15,
    "stream": 1.3,
    "concurrency": 1.2,
    "log-stream": 1.3,
    "plan": 1.5,
}
MEMORY_LIMIT_MIB = 100

#: Benchmarks reported as throughput (ours / baseline): at least this much.
THROUGHPUT_FLOORS = {"dispatch": 0.85}

#: The server's benchmarks (server_bench.py); "server" runs all of them.
SERVER = ("server", *server_bench.NAMES)

#: Extra reference points measured by some benchmarks (see bench_stream).
FLOORS: dict[str, float] = {}

STDLIB_ECHO = """\
import os, sys
sys.stdout.write("You said: " + os.environ.get("AGENT_MESSAGE", "") + "\\n")
"""

SDK_ECHO = """\
from agentproc import create_profile

def handle(ctx):
    return f"You said: {ctx.message}"

create_profile(handle)
"""

# A streaming agent as people write them: each partial flushed as it is made
# (streaming is pointless otherwise), the body written in ordinary buffered lines.
STREAM_AGENT = """\
import sys
out = sys.stdout
for i in range(100_000):
    out.write('AGENT_PARTIAL:"chunk %d "\\n' % i)
    out.flush()
line = "x" * 99 + "\\n"
out.write(line * 100_000)
out.flush()
"""


def median_pair(
    base: Callable[[], float], ours: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Alternate the two sides ``rounds`` times; return the median of each."""
    b: list[float] = []
    o: list[float] = []
    for _ in range(rounds):
        b.append(base())
        o.append(ours())
    return statistics.median(b), statistics.median(o)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_start_version(work: Path, rounds: int) -> tuple[float, float]:
    def run(argv: list[str]) -> float:
        return (
            timed(
                lambda: [subprocess.run(argv, capture_output=True, check=True) for _ in range(10)]
            )
            / 10
        )

    return median_pair(
        lambda: run([PY, "-c", "pass"]), lambda: run([AGENTPROC, "--version"]), rounds
    )


def bench_start_run(work: Path, rounds: int) -> tuple[float, float]:
    folder = work / "sh-agent"
    folder.mkdir(exist_ok=True)
    (folder / "profile.yaml").write_text(
        'command: /bin/sh\nargs: ["-c", "echo \\"You said: $AGENT_MESSAGE\\""]\n'
    )
    env = {**os.environ, "AGENTPROC_CACHE_DIR": str(work / "cache")}
    base_code = (
        "import os, subprocess\n"
        "env = {**os.environ, 'AGENT_MESSAGE': 'hi'}\n"
        "subprocess.run(['/bin/sh', '-c', 'echo \"You said: $AGENT_MESSAGE\"'], env=env)\n"
    )

    def run(argv: list[str]) -> float:
        def once() -> None:
            out = subprocess.run(argv, env=env, capture_output=True, check=True)
            assert out.stdout == b"You said: hi\n", out

        return timed(lambda: [once() for _ in range(10)]) / 10

    ours = [AGENTPROC, "run", str(folder), "-m", "hi"]
    run(ours)  # the first run validates the profile and fills the cache
    return median_pair(lambda: run([PY, "-c", base_code]), lambda: run(ours), rounds)


def bench_sdk_start(work: Path, rounds: int) -> tuple[float, float]:
    stdlib = work / "stdlib_echo.py"
    sdk = work / "sdk_echo.py"
    stdlib.write_text(STDLIB_ECHO)
    sdk.write_text(SDK_ECHO)
    env = {**os.environ, "AGENT_MESSAGE": "hello"}

    def run(path: Path) -> float:
        def once() -> None:
            out = subprocess.run([PY, str(path)], env=env, capture_output=True, check=True)
            assert out.stdout == b"You said: hello\n", out

        return timed(lambda: [once() for _ in range(10)]) / 10

    return median_pair(lambda: run(stdlib), lambda: run(sdk), rounds)


def bench_turn_echo(work: Path, rounds: int) -> tuple[float, float]:
    import anyio

    from bridge import load_profile, run_turn

    path = work / "echo.yaml"
    path.write_text("command: /bin/echo\nargs: [hi]\n")
    profile = load_profile(path)
    n = 100

    def base() -> float:
        def loop() -> None:
            for _ in range(n):
                subprocess.run(["/bin/echo", "hi"], capture_output=True)

        return timed(loop) / n

    def ours() -> float:
        async def loop() -> None:
            for _ in range(n):
                r = await run_turn(profile, "x")
                assert r.reply == "hi", r

        return timed(lambda: anyio.run(loop)) / n

    return median_pair(base, ours, rounds)


def bench_stream(work: Path, rounds: int) -> tuple[float, float]:
    import anyio

    from bridge import load_profile, run_turn

    agent = work / "stream_agent.py"
    agent.write_text(STREAM_AGENT)
    path = work / "stream.yaml"
    path.write_text(f"command: {PY}\nargs: [{agent}]\nmax_reply_chars: 20000000\n")
    profile = load_profile(path)

    def base() -> float:
        return timed(
            lambda: subprocess.run([PY, str(agent)], stdout=subprocess.DEVNULL, check=True)
        )

    def ours() -> float:
        count = 0

        def on_partial(_text: str) -> None:
            nonlocal count
            count += 1

        async def turn() -> None:
            r = await run_turn(profile, "go", on_partial=on_partial)
            assert r.ok and count == 100_000, (r.error, count)
            assert len(r.reply) == 100 * 100_000 - 1

        return timed(lambda: anyio.run(turn))

    def floor() -> float:
        # The least any reader can cost: the same agent into a pipe whose
        # reader throws the bytes away. Pipe writes and wake-ups make this
        # slower than /dev/null before a single line is parsed.
        def go() -> None:
            proc = subprocess.Popen([PY, str(agent)], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            while os.read(fd, 65536):
                pass
            proc.wait()
            proc.stdout.close()

        return timed(go)

    FLOORS["stream"] = statistics.median(floor() for _ in range(rounds))
    return median_pair(base, ours, rounds)


def bench_concurrency(work: Path, rounds: int, n: int = 1000) -> tuple[float, float]:
    import anyio

    from bridge import load_profile, run_turn

    path = work / "sleep.yaml"
    path.write_text("command: /bin/sleep\nargs: ['1']\ntimeout_secs: 60\n")
    profile = load_profile(path)

    def base() -> float:
        def go() -> None:
            procs = [
                subprocess.Popen(["/bin/sleep", "1"], stdout=subprocess.PIPE) for _ in range(n)
            ]
            for p in procs:
                p.wait()
                assert p.stdout is not None
                p.stdout.close()

        return timed(go)

    def ours() -> float:
        failures: list[str] = []

        async def go() -> None:
            async def one() -> None:
                r = await run_turn(profile, "x")
                if not r.ok:
                    failures.append(str(r.error))

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)

        t = timed(lambda: anyio.run(go))
        assert not failures, failures[:3]
        return t

    return median_pair(base, ours, rounds)


def peak_rss_mib(argv: list[str]) -> float:
    """Peak RSS of a command and the children it waited for, in MiB."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{argv} exited with {code}")
    return usage.ru_maxrss / 1024


def bench_memory(work: Path) -> tuple[float, float]:
    body = work / "body.yaml"
    body.write_text(
        "command: /bin/sh\nargs: ['-c', 'yes 0123456789012345678901234567890123456789 "
        "| head -c 100000000']\ntimeout_secs: 120\n"
    )
    line = work / "line.yaml"
    line.write_text(
        "command: /bin/sh\nargs: ['-c', 'head -c 50000000 /dev/zero | tr \"\\\\0\" x']\n"
        "timeout_secs: 120\n"
    )
    return (
        peak_rss_mib([AGENTPROC, "run", str(body), "-m", "go"]),
        peak_rss_mib([AGENTPROC, "run", str(line), "-m", "go"]),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small sizes")
    parser.add_argument(
        "--only",
        choices=[*LIMITS, "memory", "chunk-latency", "store", *THROUGHPUT_FLOORS, *SERVER],
        help="run one benchmark",
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else 7
    sys.path.insert(0, str(ROOT))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        benches: dict[str, Callable[[], tuple[float, float]]] = {
            "start-version": lambda: bench_start_version(work, rounds),
            "start-run": lambda: bench_start_run(work, rounds),
            "sdk-start": lambda: bench_sdk_start(work, rounds),
            "turn-echo": lambda: bench_turn_echo(work, rounds),
            "stream": lambda: bench_stream(work, 1 if args.quick else 3),
            "concurrency": lambda: bench_concurrency(
                work, 1 if args.quick else 3, 50 if args.quick else 1000
            ),
            "log-stream": lambda: log_bench.bench_log_stream(work, 1 if args.quick else 3),
            "plan": lambda: channel_bench.bench_plan(1 if args.quick else 5),
        }
        print(f"{'benchmark':<13} {'baseline':>10} {'agentproc':>10} {'ratio':>7} {'limit':>6}")
        for name, fn in benches.items():
            if args.only and args.only != name:
                continue
            base, ours = fn()
            ratio = ours / base
            ok = ratio <= LIMITS[name]
            failed |= not ok
            print(
                f"{name:<13} {base * 1000:>8.2f}ms {ours * 1000:>8.2f}ms {ratio:>6.2f}x "
                f"{LIMITS[name]:>5.2f}x{'' if ok else '  OVER'}"
            )
            if name in FLOORS:
                floor = FLOORS[name]
                print(
                    f"{'':<13} pipe floor {floor * 1000:.2f}ms ({floor / base:.2f}x of baseline);"
                    f" agentproc is {ours / floor:.2f}x of the floor"
                )
        if not args.only or args.only == "memory":
            if args.quick:
                print("memory        skipped with --quick")
            else:
                body, line = bench_memory(work)
                for label, mib in (("100 MB body", body), ("50 MB line", line)):
                    ok = mib < MEMORY_LIMIT_MIB
                    failed |= not ok
                    print(
                        f"memory        {label}: peak {mib:.1f} MiB "
                        f"(budget {MEMORY_LIMIT_MIB}){'' if ok else '  OVER'}"
                    )
        if not args.only or args.only == "chunk-latency":
            p50, p99 = log_bench.bench_chunk_latency(work, 100 if args.quick else 500)
            print(
                f"chunk-latency agent write to subscriber: p50 {p50 * 1000:.2f} ms, "
                f"p99 {p99 * 1000:.2f} ms (target p99 < 5 ms on an idle machine)"
            )
        if not args.only or args.only == "store":
            costs = log_bench.bench_store(work, 100 if args.quick else 1000)
            for kind, (turn, event) in costs.items():
                print(
                    f"store         {kind:<6} per turn (message, claim, take, start, complete, "
                    f"release) {turn * 1e6:.0f} us; per appended event {event * 1e6:.0f} us"
                )
        if not args.only or args.only == "dispatch":
            convs = 40 if args.quick else 200
            # Five rounds: one event loop feels other load on the machine more
            # than 16 threads do, so single runs scatter.
            base, ours, alone = log_bench.bench_dispatch(1 if args.quick else 5, convs=convs)
            throughput = base / ours
            floor = THROUGHPUT_FLOORS["dispatch"]
            ok = throughput >= floor
            failed |= not ok
            print(
                f"dispatch      {convs}x5 turns: baseline {base:.2f}s, agentproc {ours:.2f}s; "
                f"throughput ours/baseline {throughput:.2f}x (higher is better, "
                f"floor {floor:.2f}x){'' if ok else '  UNDER'}"
            )
            print(
                f"{'':<13} run_turn alone, same concurrency: {alone:.2f}s "
                f"(throughput {base / alone:.2f}x of baseline); the dispatcher's own cost is "
                f"{(ours - alone) / (convs * 5) * 1e6:.0f} us per turn"
            )
        failed |= server_bench.report(work, quick=args.quick, only=args.only)
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""agentproc.wrap.stop(): a wrapper ends a CLI that loops, and the turn fails with why."""

from __future__ import annotations

import sys
import time

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, stop

PY = Cli("Py", sys.executable, install="(it is Python)", env_prefix="PY_CLI")

#: A "CLI" that asks again for ever, and ignores SIGTERM when told to.
ENDLESS = (
    "import signal, sys, time\n"
    "if sys.argv[1] == 'stubborn':\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "n = 0\n"
    "while True:\n"
    "    n += 1\n"
    "    print(f'attempt {n}', flush=True)\n"
    "    time.sleep(0.05)\n"
)


def _looping(ctx):  # type: ignore[no-untyped-def]
    turn = CliTurn(ctx, PY)

    def on_line(turn: CliTurn, line: str) -> None:
        if turn.error is not None:
            return
        turn.message(line)
        if line == "attempt 3":
            turn.fail("the CLI asked 3 times; stopped")
            stop(turn)

    return turn.run([sys.executable, "-c", ENDLESS, ctx.message], on_line, json_lines=False)


def test_stop_ends_a_looping_cli_and_the_turn_fails_with_the_reason() -> None:
    started = time.monotonic()
    run = create_profile(_looping).invoke("polite")
    assert run.exit_code == 1
    assert run.errors == ["the CLI asked 3 times; stopped"]
    assert run.partials[:3] == ["attempt 1", "\n\n", "attempt 2"]
    assert time.monotonic() - started < 5


def test_stop_kills_a_cli_that_ignores_sigterm() -> None:
    started = time.monotonic()
    run = create_profile(_looping).invoke("stubborn")
    assert run.errors == ["the CLI asked 3 times; stopped"]
    # SIGTERM, then SIGKILL two seconds later.
    assert 1.5 < time.monotonic() - started < 8


def _stop_after_exit(ctx):  # type: ignore[no-untyped-def]
    turn = CliTurn(ctx, PY)
    result = turn.run(
        [sys.executable, "-c", "print('done')"], lambda t, line: t.message(line), json_lines=False
    )
    stop(turn)  # the CLI is gone: nothing to do
    return result


def test_stop_after_the_cli_has_exited_does_nothing() -> None:
    run = create_profile(_stop_after_exit).invoke("hi")
    assert run.exit_code == 0 and run.body == "done"

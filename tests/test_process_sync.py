"""The blocking driver (bridge.turn.process_sync, bridge.turn.runner_sync) follows the same rules
as the event-loop one: the conformance table and the lifecycle cases run through it.

The lifecycle cases are the functions of test_lifecycle.py, called with that
module's ``run`` helper pointed at the blocking runner: one set of cases, two
drivers, so they cannot drift apart.
"""

from __future__ import annotations

import inspect
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import test_conformance as conformance
import test_lifecycle as lifecycle

from bridge import TurnResult, load_profile
from bridge.turn.launch import build_plan
from bridge.turn.request import TurnRequest
from bridge.turn.runner_sync import blocking_ok, run_plan_blocking, run_turn_blocking


def run_blocking(path: Path, message: str = "go", **kw: Any) -> TurnResult:
    profile = load_profile(path)
    if "env" in kw:
        kw["extra_env"] = kw.pop("env")
    return run_turn_blocking(profile, message, **kw)


@pytest.mark.parametrize("case", conformance.CASES, ids=conformance.IDS)
def test_conformance_table(case: dict[str, Any], py_agent: Callable[..., Path]) -> None:
    path = py_agent("replay.py", timeout_secs=30, **conformance.caps(case))
    env = {"REPLAY_HEX": conformance.case_bytes(case).hex(), "REPLAY_CHUNK": "5"}
    if "signal" in case:
        env["REPLAY_SIGNAL"] = str(case["signal"])
    else:
        env["REPLAY_EXIT"] = str(case.get("exit", 0))
    result = run_blocking(path, session_id=case.get("session_id", ""), env=env)
    conformance.check(case, result)


#: The lifecycle cases that make sense without an event loop: everything but
#: async callbacks, anyio cancellation and the permission channel.
LIFECYCLE = [
    lifecycle.test_timeout_kills_and_reports,
    lifecycle.test_timeout_option_overrides_profile,
    lifecycle.test_agent_ignoring_sigterm_is_killed,
    lifecycle.test_output_written_on_sigterm_is_kept,
    lifecycle.test_descendants_do_not_outlive_the_turn,
    lifecycle.test_descendant_holding_stdout_does_not_stretch_the_turn,
    lifecycle.test_descendants_killed_on_timeout,
    lifecycle.test_agent_that_never_reads_stdin,
    lifecycle.test_stdin_message_is_delivered_whole,
    lifecycle.test_stdin_none_is_at_eof,
    lifecycle.test_stderr_flood_does_not_block,
    lifecycle.test_stderr_tail_in_failure_message,
    lifecycle.test_huge_body_is_capped,
    lifecycle.test_endless_line_is_cut,
    lifecycle.test_nul_in_message_is_refused,
    lifecycle.test_empty_turn_is_refused,
    lifecycle.test_agent_environment,
]


@pytest.mark.parametrize(
    "case", LIFECYCLE, ids=[c.__name__.removeprefix("test_") for c in LIFECYCLE]
)
def test_lifecycle_case(
    case: Callable[..., None],
    make_profile: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycle, "run", run_blocking)
    available = {"make_profile": make_profile, "tmp_path": tmp_path, "monkeypatch": monkeypatch}
    case(**{name: available[name] for name in inspect.signature(case).parameters})


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"command": "no-such-agent-anywhere"}, 127, "not found"),
        ({"command": "./data.txt"}, 126, "not executable"),
    ],
)
def test_spawn_failures(
    make_profile: Callable[..., Path], fields: dict[str, object], code: int, words: str
) -> None:
    path = make_profile("", **fields)
    (path.parent / "data.txt").write_text("just data\n")
    r = run_blocking(path)
    assert r.exit_code == code
    assert r.error is not None and words in f"{r.error} ({r.hint})"


def test_stop_from_a_partial_cancels_the_turn(make_profile: Callable[..., Path]) -> None:
    path = lifecycle.sh(make_profile, "echo 'AGENT_PARTIAL:\"go\"'; sleep 30", kill_grace_secs=1)
    seen: list[str] = []

    def on_partial(text: str) -> None:
        seen.append(text)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to `agentproc run`

    r = run_blocking(path, "hi", on_partial=on_partial)
    assert r.cancelled and r.exit_code == 130 and r.error == "cancelled"
    assert seen == ["go"] == r.partials
    # The handler is restored afterwards.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_failing_callback_becomes_an_error(make_profile: Callable[..., Path]) -> None:
    def on_partial(text: str) -> None:
        raise RuntimeError("display broke")

    path = lifecycle.sh(make_profile, "echo 'AGENT_PARTIAL:\"x\"'; sleep 30")
    r = run_blocking(path, "x", on_partial=on_partial)
    assert r.exit_code == 1 and r.error is not None and "display broke" in r.error


def test_permission_request_without_channel_warns(py_agent: Callable[..., Path]) -> None:
    r = run_blocking(py_agent("permission_asker.py"), "go", timeout=20)
    assert any("no permission channel" in w for w in r.warnings)


def test_a_permission_channel_needs_the_event_loop(py_agent: Callable[..., Path]) -> None:
    profile = load_profile(py_agent("permission_asker.py", permission=True))
    plan = build_plan(profile, TurnRequest("go"))
    assert not blocking_ok(plan)
    with pytest.raises(ValueError, match="event-loop"):
        run_plan_blocking(plan)


def test_off_the_main_thread_signals_are_left_alone(make_profile: Callable[..., Path]) -> None:
    results: list[TurnResult] = []
    path = lifecycle.sh(make_profile, "echo from-thread")
    worker = threading.Thread(target=lambda: results.append(run_blocking(path)))
    worker.start()
    worker.join(30)
    assert results and results[0].reply == "from-thread"


def test_include_stderr_in_reply(make_profile: Callable[..., Path]) -> None:
    path = lifecycle.sh(make_profile, "echo answer; echo note >&2", include_stderr_in_reply=True)
    r = run_blocking(path)
    assert r.reply.splitlines() == ["answer", "--- stderr ---", "note"]


def test_a_second_signal_kills_at_once(make_profile: Callable[..., Path]) -> None:
    # The agent ignores SIGTERM and the grace is long: only the second signal
    # (SIGKILL to the group) can end the turn before the test's timeout.
    script = "trap '' TERM; echo 'AGENT_PARTIAL:\"go\"'; while :; do sleep 0.05; done"
    path = lifecycle.sh(make_profile, script, kill_grace_secs=600)
    told: list[int] = []

    def on_partial(text: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)

    profile = load_profile(path)
    r = run_turn_blocking(profile, "hi", on_partial=on_partial, on_signal=told.append)
    assert r.cancelled and r.exit_code == 130
    assert r.error == "cancelled: the agent was killed"
    assert told == [1, 2]

"""AgentProcess is owned by an ``async with``: however the block is left, no process is left.

Every test spawns real agents that start a grandchild in their process group,
and checks afterwards that the agent was reaped (its pid is free:
``os.kill(pid, 0)`` raises), that the grandchild is gone, and that no
descriptor was left open.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from test_lifecycle import alive, wait_gone

from bridge.turn.errors import LaunchError
from bridge.turn.launch import LaunchPlan, build_plan
from bridge.turn.process import AgentProcess
from bridge.turn.profile import load_profile
from bridge.turn.request import TurnRequest

#: Starts a grandchild in the agent's group, says so in a file, and waits.
PLAIN = 'sleep 300 & echo $! > "$PIDS/tmp"; mv "$PIDS/tmp" "$PIDS/grandchild"; wait'
#: The same, leaving a note when SIGTERM arrives and exiting then.
GRACEFUL = f"trap 'echo term > \"$PIDS/term\"; exit 0' TERM; {PLAIN}"
#: The same, ignoring SIGTERM (the grandchild inherits that): only SIGKILL ends it.
STUBBORN = f"trap '' TERM; {PLAIN}"


def plan_for(make_profile: Callable[..., Path], pids: Path, script: str) -> LaunchPlan:
    path = make_profile("", command="/bin/sh", args=["-c", script], kill_grace_secs=0.3)
    return build_plan(load_profile(path), TurnRequest("go", env={"PIDS": str(pids)}))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def started(pids: Path) -> int:
    """The grandchild's pid, once the agent has started it."""
    with anyio.fail_after(10):
        while not (pids / "grandchild").exists():
            await anyio.sleep(0.01)
    return int((pids / "grandchild").read_text())


def assert_all_gone(leader: int, grandchild: int) -> None:
    # The leader is reaped before the block ends: its pid is free at once.
    with pytest.raises(ProcessLookupError):
        os.kill(leader, 0)
    # The grandchild was killed with the group; whoever adopted it reaps it.
    assert wait_gone(grandchild), "the grandchild outlived the block"
    assert wait_gone_group(leader), "something of the group is still running"


def wait_gone_group(pgid: int) -> bool:
    """No live process is left in the group (zombies waiting for init count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    members = [
        int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _pgid(int(entry)) == pgid
    ]
    return all(wait_gone(pid) for pid in members)


def _pgid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(") ", 1)[1].split()[2])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


Body = Callable[[AgentProcess, Path], Awaitable[None]]


def run_block(plan: LaunchPlan, pids: Path, body: Body) -> tuple[int, int, int]:
    """Enter the block, start the agent, run ``body`` in it, and return the
    leader's and grandchild's pids and how many descriptors were left open."""

    async def go() -> tuple[int, int, int]:
        before = open_fds()
        seen: list[int] = []
        try:
            async with AgentProcess.start(plan) as proc:
                seen.append(proc.pid)
                seen.append(await started(pids))
                await body(proc, pids)
        finally:
            leaked = open_fds() - before
        return seen[0], seen[1], leaked

    return anyio.run(go)


async def nothing(proc: AgentProcess, pids: Path) -> None:
    return None


async def fail(proc: AgentProcess, pids: Path) -> None:
    raise RuntimeError("the caller's own error")


@pytest.mark.parametrize(
    "script", [PLAIN, GRACEFUL, STUBBORN], ids=["plain", "graceful", "stubborn"]
)
def test_leaving_the_block_normally_leaves_no_process(
    make_profile: Callable[..., Path], tmp_path: Path, script: str
) -> None:
    leader, grandchild, leaked = run_block(
        plan_for(make_profile, tmp_path, script), tmp_path, nothing
    )
    assert_all_gone(leader, grandchild)
    assert leaked == 0


def test_the_agent_gets_sigterm_first(make_profile: Callable[..., Path], tmp_path: Path) -> None:
    run_block(plan_for(make_profile, tmp_path, GRACEFUL), tmp_path, nothing)
    assert (tmp_path / "term").read_text() == "term\n"


def test_leaving_the_block_by_an_exception_leaves_no_process(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    seen: list[int] = []

    async def remember_then_fail(proc: AgentProcess, pids: Path) -> None:
        seen.extend([proc.pid, int((pids / "grandchild").read_text())])
        await fail(proc, pids)

    with pytest.raises(RuntimeError, match="the caller's own error"):
        run_block(plan_for(make_profile, tmp_path, STUBBORN), tmp_path, remember_then_fail)
    assert_all_gone(*seen)


@pytest.mark.parametrize("script", [GRACEFUL, STUBBORN], ids=["graceful", "stubborn"])
def test_leaving_the_block_by_cancellation_leaves_no_process(
    make_profile: Callable[..., Path], tmp_path: Path, script: str
) -> None:
    plan = plan_for(make_profile, tmp_path, script)
    seen: list[int] = []

    async def go() -> int:
        before = open_fds()
        with anyio.move_on_after(30) as scope:
            async with AgentProcess.start(plan) as proc:
                seen.extend([proc.pid, await started(tmp_path)])
                scope.deadline = anyio.current_time() + 0.05  # the deadline passes in the block
                await anyio.sleep(30)
        assert scope.cancelled_caught
        return open_fds() - before

    assert anyio.run(go) == 0
    assert_all_gone(*seen)


def test_cancelling_a_running_turn_leaves_no_process(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    """Cancelled inside run(): the group is killed at once, and the block's exit has
    nothing left to do."""
    plan = plan_for(make_profile, tmp_path, STUBBORN)
    seen: list[int] = []

    async def go() -> None:
        async with anyio.create_task_group() as tg:

            async def cancel_when_started() -> None:
                seen.append(await started(tmp_path))
                tg.cancel_scope.cancel()

            tg.start_soon(cancel_when_started)
            async with AgentProcess.start(plan) as proc:
                seen.insert(0, proc.pid)
                await proc.run(lambda data: None)
            pytest.fail("run() returned although the agent never ends")

    anyio.run(go)
    assert_all_gone(*seen)


def test_a_finished_run_leaves_nothing_for_the_block(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_profile("", command="/bin/sh", args=["-c", "echo hi; sleep 300 & exit 3"])
    plan = build_plan(load_profile(path), TurnRequest("go"))
    out: list[bytes] = []

    async def go() -> tuple[int, int]:
        before = open_fds()
        async with AgentProcess.start(plan) as proc:
            ended = await proc.run(out.append)
            assert not alive(proc.pid)
            await proc.aclose()  # a second close is a no-op
        assert ended.returncode == 3 and not ended.cancelled and not ended.timed_out
        return proc.pid, open_fds() - before

    pid, leaked = anyio.run(go)
    assert b"".join(out) == b"hi\n"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert leaked == 0


def test_an_agent_that_cannot_start_fails_on_entering(tmp_path: Path) -> None:
    (tmp_path / "profile.yaml").write_text("command: ./missing\n", encoding="utf-8")
    plan = build_plan(load_profile(tmp_path / "profile.yaml"), TurnRequest("go"))

    async def go() -> int:
        before = open_fds()
        with pytest.raises(LaunchError, match="command not found"):
            async with AgentProcess.start(plan):
                pytest.fail("the block ran without an agent")
        return open_fds() - before

    assert anyio.run(go) == 0

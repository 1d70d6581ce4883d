"""Process lifecycle: timeouts, process groups, descendants, pipes, spawn failures.

Every test spawns real processes. None asserts a duration; pytest-timeout turns
a hang into a failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from agentproc.wire import PermissionDecision, PermissionRequest
from bridge import TurnResult, load_profile, run_turn

PY = sys.executable


def run(path: Path, message: str = "go", **kw: object) -> TurnResult:
    profile = load_profile(path)
    return anyio.run(lambda: run_turn(profile, message, **kw))  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone: it runs no code.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, secs: float = 5.0) -> bool:
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def sh(make_profile: Callable[..., Path], script: str, **fields: object) -> Path:
    return make_profile("", command="/bin/sh", args=["-c", script], **fields)


def test_timeout_kills_and_reports(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "echo started; sleep 30", timeout_secs=0.5, kill_grace_secs=1))
    assert r.timed_out and r.exit_code == 124
    assert r.error == "timed out after 0.5 s"
    assert r.reply == "started"


def test_timeout_option_overrides_profile(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "sleep 30", timeout_secs=100), timeout=0.3)
    assert r.exit_code == 124 and r.error == "timed out after 0.3 s"


def test_agent_ignoring_sigterm_is_killed(make_profile: Callable[..., Path]) -> None:
    script = "trap '' TERM; echo ready; while :; do sleep 0.05; done"
    r = run(sh(make_profile, script, timeout_secs=0.4, kill_grace_secs=0.3))
    assert r.exit_code == 124 and r.timed_out
    assert r.reply == "ready"


def test_output_written_on_sigterm_is_kept(make_profile: Callable[..., Path]) -> None:
    script = "trap 'echo cleaned up; exit 0' TERM; echo working; sleep 30 & wait"
    r = run(sh(make_profile, script, timeout_secs=0.4, kill_grace_secs=5))
    assert r.exit_code == 124
    assert r.reply == "working\ncleaned up"


def test_descendants_do_not_outlive_the_turn(make_profile: Callable[..., Path]) -> None:
    # The grandchild closes the pipes and keeps running: it must be killed.
    script = "sleep 300 >/dev/null 2>&1 </dev/null & echo $!"
    r = run(sh(make_profile, script))
    assert r.exit_code == 0
    assert wait_gone(int(r.reply))


def test_descendant_holding_stdout_does_not_stretch_the_turn(
    make_profile: Callable[..., Path],
) -> None:
    script = "sleep 300 & echo $!; echo done"
    started = time.monotonic()
    r = run(sh(make_profile, script, timeout_secs=60))
    assert r.exit_code == 0 and r.reply.endswith("done")
    assert wait_gone(int(r.reply.splitlines()[0]))
    # Not a timing assertion on speed: the turn must not have waited for the
    # 300 s sleep or the 60 s deadline.
    assert time.monotonic() - started < 30


def test_descendants_killed_on_timeout(make_profile: Callable[..., Path], tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    r = run(sh(make_profile, script, timeout_secs=0.5, kill_grace_secs=0.2))
    assert r.exit_code == 124
    assert wait_gone(int(pidfile.read_text()))


def test_agent_that_never_reads_stdin(make_profile: Callable[..., Path]) -> None:
    big = "x" * (2 * 1024 * 1024)  # far more than a pipe buffer, and than the env allows
    r = run(sh(make_profile, "echo done", stdin="message", timeout_secs=20), big)
    assert r.exit_code == 0 and r.reply == "done"


def test_stdin_message_is_delivered_whole(make_profile: Callable[..., Path]) -> None:
    big = "y" * (1024 * 1024) + "\nend"
    r = run(sh(make_profile, "wc -c; echo $${AGENT_MESSAGE:-unset}", stdin="message"), big)
    count, message_var = r.reply.split()
    assert int(count) == len(big.encode())
    assert message_var == "unset"  # too large for the environment: stdin only


def test_message_too_large_fails_before_the_agent_starts(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    """Without `stdin: message` a message the environment cannot carry is an error,
    never a turn whose agent reads an empty AGENT_MESSAGE and "succeeds"."""
    marker = tmp_path / "started"
    r = run(sh(make_profile, f'touch {marker}; echo "[$AGENT_MESSAGE]"'), "z" * (200 * 1024))
    assert r.exit_code == 2 and r.reply == ""
    assert r.error is not None
    assert "too large to pass in the environment (limit 128 KiB)" in r.error
    assert "stdin: message" in r.hint
    assert not marker.exists(), "nothing was spawned"


def test_large_message_reaches_an_sdk_agent_through_stdin(
    py_agent: Callable[..., Path],
) -> None:
    big = "word " * 100_000 + "end ✓"
    r = run(py_agent("sdk_echo.py", stdin="message"), big)
    assert (r.error, r.exit_code) == (None, 0)
    assert r.reply == f"You said: {big}"
    small = run(py_agent("sdk_echo.py", stdin="message"), "small")
    assert small.reply == "You said: small"


def test_flag_tells_a_shell_agent_where_the_message_is(make_profile: Callable[..., Path]) -> None:
    script = 'echo "flag=$${AGENT_MESSAGE_ON_STDIN:-unset}"; wc -c'
    r = run(sh(make_profile, script, stdin="message"), "q" * (200 * 1024))
    flag, count = r.reply.split()
    assert (flag, int(count)) == ("flag=1", 200 * 1024)
    r = run(sh(make_profile, script, stdin="message"), "short")
    assert r.reply.split() == ["flag=unset", "5"]


@pytest.mark.parametrize("debug", [True, False])
def test_agentproc_debug_in_the_bridge_shows_the_traceback(
    py_agent: Callable[..., Path], debug: bool
) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "AGENTPROC_DEBUG"}
    if debug:
        environ["AGENTPROC_DEBUG"] = "1"
    path = py_agent("sdk_cases.py", env={"SDK_CASE": "crash"})
    r = run(path, environ=environ)
    assert r.exit_code == 1
    assert ("Traceback (most recent call last)" in r.stderr) is debug
    assert ("set AGENTPROC_DEBUG=1 to see the traceback" in r.stderr) is not debug


def test_stdin_none_is_at_eof(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "cat; echo end"))
    assert r.reply == "end"


def test_stderr_flood_does_not_block(make_profile: Callable[..., Path]) -> None:
    script = f"{PY} -c \"import sys; sys.stderr.write('e' * 10_000_000)\"; echo reply"
    r = run(sh(make_profile, script, max_stderr_bytes=1000))
    assert r.exit_code == 0 and r.reply == "reply"
    assert 0 < len(r.stderr) <= 1000


def test_stderr_tail_in_failure_message(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "echo 'first' >&2; echo 'it broke: no key' >&2; exit 4"))
    assert r.exit_code == 4
    assert r.error is not None and "exited with code 4" in r.error and "it broke: no key" in r.error


def test_huge_body_is_capped(make_profile: Callable[..., Path]) -> None:
    script = (
        f"{PY} -c \"import sys; [sys.stdout.write('z' * 999 + chr(10)) for _ in range(20000)]\""
    )
    r = run(sh(make_profile, script, max_reply_chars=5000, timeout_secs=60))
    assert r.exit_code == 0 and r.truncated
    assert r.reply == ("z" * 999 + "\n") * 5 + "\n\n…(truncated)"


def test_endless_line_is_cut(make_profile: Callable[..., Path]) -> None:
    script = f"{PY} -c \"import sys; sys.stdout.write('q' * 30_000_000)\""
    r = run(sh(make_profile, script, max_line_bytes=4096, timeout_secs=60))
    assert r.exit_code == 0
    assert r.reply == "q" * 4096
    assert any("max_line_bytes" in w for w in r.warnings)


def test_cancel_event(make_profile: Callable[..., Path]) -> None:
    profile = load_profile(
        sh(make_profile, "echo 'AGENT_PARTIAL:\"go\"'; sleep 30", kill_grace_secs=1)
    )

    async def main() -> TurnResult:
        cancel = anyio.Event()
        return await run_turn(profile, "hi", cancel=cancel, on_partial=lambda _t: cancel.set())

    r = anyio.run(main)
    assert r.cancelled and r.exit_code == 130 and r.error == "cancelled"
    assert r.partials == ["go"]


def test_caller_cancellation_kills_the_agent(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    profile = load_profile(sh(make_profile, f"echo $$$$ > {pidfile}; exec sleep 300"))

    async def main() -> None:
        with anyio.move_on_after(0.5):
            await run_turn(profile, "hi")

    anyio.run(main)
    assert wait_gone(int(pidfile.read_text()))


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"command": "no-such-agent-xyz"}, 127, "not found"),
        ({"command": "./missing.sh"}, 127, "not found"),
        ({"command": PY, "args": ["missing_agent.py"]}, 127, "script not found"),
        ({"command": "/bin/sh", "cwd": "/nonexistent/dir"}, 2, "does not exist"),
        ({"command": "/bin/sh", "cwd": "/etc/hostname"}, 2, "not a directory"),
        ({"command": "./data.txt"}, 126, "not executable"),
        ({"command": "./noshebang"}, 126, "#! line"),
    ],
)
def test_spawn_failures(
    make_profile: Callable[..., Path], fields: dict[str, object], code: int, words: str
) -> None:
    path = make_profile("", **fields)
    (path.parent / "data.txt").write_text("just data\n")
    (path.parent / "noshebang").write_bytes(b"\x7fELF-but-not-really")
    (path.parent / "noshebang").chmod(0o755)
    r = run(path)
    assert r.exit_code == code
    assert r.error is not None and words in f"{r.error} ({r.hint})"


def test_nul_in_message_is_refused(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "echo hi"), "a\0b")
    assert r.exit_code == 2 and r.error is not None and "NUL" in r.error


def test_empty_turn_is_refused(make_profile: Callable[..., Path]) -> None:
    r = run(sh(make_profile, "echo hi"), "")
    assert r.exit_code == 2 and r.error is not None


def test_async_partial_callback(make_profile: Callable[..., Path]) -> None:
    profile = load_profile(
        sh(make_profile, 'for i in 1 2 3; do echo "AGENT_PARTIAL:\\"$i\\""; done')
    )
    seen: list[str] = []

    async def on_partial(text: str) -> None:
        await anyio.sleep(0)
        seen.append(text)

    r = anyio.run(lambda: run_turn(profile, "x", on_partial=on_partial))
    assert seen == ["1", "2", "3"] == r.partials


def test_failing_callback_becomes_an_error(make_profile: Callable[..., Path]) -> None:
    profile = load_profile(sh(make_profile, "echo 'AGENT_PARTIAL:\"x\"'; sleep 30"))

    def on_partial(text: str) -> None:
        raise RuntimeError("display broke")

    r = anyio.run(lambda: run_turn(profile, "x", on_partial=on_partial))
    assert r.exit_code == 1 and r.error is not None and "display broke" in r.error


def test_agent_environment(
    make_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    r = run(
        sh(make_profile, "env | sort"),
        "hello",
        session_id="s1",
        session_name="work",
        from_user="ada",
    )
    env = dict(line.split("=", 1) for line in r.reply.splitlines() if "=" in line)
    assert env["AGENT_MESSAGE"] == "hello"
    assert env["AGENT_SESSION_ID"] == "s1"
    assert env["AGENT_SESSION_NAME"] == "work"
    assert env["AGENT_FROM_USER"] == "ada"
    assert env["AGENT_STREAMING"] == "1"
    assert env["AGENT_PROTOCOL_VERSION"] == "0.2"
    assert "SECRET_TOKEN" not in env
    assert "AGENT_PERMISSION" not in env


# --- the permission channel


def asker(py_agent: Callable[..., Path], **fields: object) -> Path:
    return py_agent("permission_asker.py", permission=True, **fields)


def test_permission_allow_and_deny_in_order(py_agent: Callable[..., Path]) -> None:
    seen: list[str] = []

    def decide(req: PermissionRequest) -> PermissionDecision:
        seen.append(req.tool)
        return PermissionDecision(req.tool == "Read", None, "" if req.tool == "Read" else "no")

    r = run(asker(py_agent), env={"ASK_TOOLS": "Read,Bash,Read"}, on_permission=decide)
    assert seen == ["Read", "Bash", "Read"]
    assert r.reply.splitlines() == [
        "AGENT_PERMISSION_RESPONSE r1 allow=True msg=",
        "AGENT_PERMISSION_RESPONSE r2 allow=False msg=no",
        "AGENT_PERMISSION_RESPONSE r3 allow=True msg=",
    ]


def test_permission_async_handler_and_bool(py_agent: Callable[..., Path]) -> None:
    async def decide(req: PermissionRequest) -> bool:
        await anyio.sleep(0.01)
        return True

    r = run(asker(py_agent), env={"ASK_TOOLS": "Bash"}, on_permission=decide)
    assert r.reply == "AGENT_PERMISSION_RESPONSE r1 allow=True msg="


def test_permission_without_handler_is_denied(py_agent: Callable[..., Path]) -> None:
    r = run(asker(py_agent), env={"ASK_TOOLS": "Bash"})
    assert r.reply.startswith("AGENT_PERMISSION_RESPONSE r1 allow=False msg=no one to ask")


def test_permission_unanswered_is_denied_at_timeout(py_agent: Callable[..., Path]) -> None:
    async def never(req: PermissionRequest) -> bool:
        await anyio.sleep(60)
        return True

    r = run(
        asker(py_agent, permission_timeout_secs=0.3), env={"ASK_TOOLS": "Bash"}, on_permission=never
    )
    assert r.exit_code == 0
    assert "allow=False msg=denied: no answer within 0.3 s" in r.reply


def test_permission_handler_error_is_a_denial(py_agent: Callable[..., Path]) -> None:
    def broken(req: PermissionRequest) -> bool:
        raise ValueError("nope")

    r = run(asker(py_agent), env={"ASK_TOOLS": "Bash"}, on_permission=broken)
    assert "allow=False" in r.reply and "ValueError: nope" in r.reply


def test_unreadable_permission_request_gets_a_denial(make_profile: Callable[..., Path]) -> None:
    script = "echo 'AGENT_PERMISSION_REQUEST:{broken'; read line; echo \"got: $line\""
    r = run(sh(make_profile, script, permission=True), on_permission=lambda req: True)
    line = r.reply.removeprefix("got: AGENT_PERMISSION_RESPONSE:")
    response = json.loads(line)
    assert (response["request_id"], response["behavior"]) == ("1", "deny")
    assert (response["id"], response["allow"]) == ("1", False)
    assert response["message"].startswith("denied: permission request is not valid JSON")
    assert "not valid JSON" in r.reply


def test_permission_env_flag(
    py_agent: Callable[..., Path], make_profile: Callable[..., Path]
) -> None:
    r = run(sh(make_profile, "echo $${AGENT_PERMISSION:-off}", permission=True))
    assert r.reply == "1"


def test_last_line_without_newline_reaches_every_callback(
    make_profile: Callable[..., Path],
) -> None:
    from bridge import Event, Partial

    profile = load_profile(sh(make_profile, "printf 'AGENT_PARTIAL:\"end\"'"))
    partials: list[str] = []
    events: list[Event] = []
    r = anyio.run(
        lambda: run_turn(profile, "x", on_partial=partials.append, on_event=events.append)
    )
    assert r.partials == partials == ["end"]
    assert events == [Partial("end")]

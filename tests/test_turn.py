"""The turn state machine on its own: states, events, misuse."""

from __future__ import annotations

import pytest

from agentproc import wire
from bridge.turn.machine import (
    ErrorReported,
    Partial,
    PermissionRequested,
    ProcessExit,
    SessionCaptured,
    Turn,
    TurnStateError,
    TurnWarning,
)


def test_events_are_typed_and_in_order() -> None:
    turn = Turn()
    events = turn.feed(
        b'AGENT_PARTIAL:"a"\nAGENT_SESSION:s1\nbody\nAGENT_PARTIAL:bad json\nAGENT_ERROR:"e"\n'
    )
    assert events == [
        Partial("a"),
        SessionCaptured("s1"),
        TurnWarning("partial payload is not valid JSON, used as text: 'bad json'"),
        Partial("bad json"),
        ErrorReported("e"),
    ]
    assert turn.state == "errored"


def test_states_move_by_the_table() -> None:
    turn = Turn()
    assert turn.state == "running"
    turn.feed(b"x\n")
    turn.finish(ProcessExit(0))
    assert turn.state == "closed"
    with pytest.raises(TurnStateError, match="closed"):
        turn.feed(b"more")
    with pytest.raises(TurnStateError, match="closed"):
        turn.finish(ProcessExit(0))


def test_permission_requests_are_numbered_and_parsed() -> None:
    turn = Turn()
    events = turn.feed(
        b'AGENT_PERMISSION_REQUEST:{"tool": "Bash", "input": {"cmd": "ls"}}\n'
        b"AGENT_PERMISSION_REQUEST:[1]\n"
        b'AGENT_PERMISSION_REQUEST:{"id": "x", "tool": "Read", "description": "read a file"}\n'
    )
    assert [type(e) for e in events] == [PermissionRequested] * 3
    first, bad, third = (e for e in events if isinstance(e, PermissionRequested))
    assert (first.request.id, first.request.tool, first.request.input) == (
        "1",
        "Bash",
        {"cmd": "ls"},
    )
    assert first.deny_reason is None
    assert (
        bad.request.id == "2" and bad.deny_reason is not None and "JSON object" in bad.deny_reason
    )
    assert (third.request.id, third.request.summary()) == ("x", "read a file")


def test_permission_after_error_is_denied_without_asking() -> None:
    turn = Turn()
    events = turn.feed(b'AGENT_ERROR:"x"\nAGENT_PERMISSION_REQUEST:{"tool": "Bash"}\n')
    req = events[-1]
    assert isinstance(req, PermissionRequested) and req.deny_reason is not None


def test_warnings_are_bounded() -> None:
    turn = Turn()
    turn.feed(b"AGENT_SESSION:bad id\n" * 1000)
    result = turn.finish(ProcessExit(0))
    assert len(result.warnings) <= 22
    assert "more warnings were not kept" in result.warnings[-2]


def test_silent_success_warns() -> None:
    result = Turn().finish(ProcessExit(0))
    assert result.ok and result.warnings == ["the agent exited without printing a reply"]


def test_text_prefers_body_then_partials() -> None:
    turn = Turn()
    turn.feed(b'AGENT_PARTIAL:"a"\nAGENT_PARTIAL:"b"\n')
    assert turn.finish(ProcessExit(0)).text == "ab"


def test_timeout_message_and_signal_names() -> None:
    r = Turn().finish(ProcessExit(-15, timed_out=True, timeout_secs=2.5))
    assert (r.exit_code, r.error, r.timed_out, r.cancelled) == (
        124,
        "timed out after 2.5 s",
        True,
        False,
    )
    r = Turn().finish(ProcessExit(-15))
    assert r.exit_code == 143 and r.error is not None and "SIGTERM" in r.error


def test_body_is_not_held_past_the_cap() -> None:
    turn = Turn(max_reply_chars=10)
    for _ in range(1000):
        turn.feed(b"0123456789" * 10 + b"\n")
    assert len(turn._body) == 1  # one line reached the cap; the rest was dropped
    assert turn.finish(ProcessExit(0)).truncated


@pytest.mark.parametrize("bad", [0, -1])
def test_cap_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        Turn(max_reply_chars=bad)


def test_framer_rejects_zero_limit() -> None:
    with pytest.raises(ValueError):
        wire.LineFramer(0)


@pytest.mark.parametrize(
    ("stdout", "exit", "reply"),
    [
        (
            b"hello\n",
            ProcessExit(0, stderr_tail="note 1\nnote 2\n"),
            "hello\n--- stderr ---\nnote 1\nnote 2",
        ),
        (
            b'AGENT_PARTIAL:"streamed"\n',
            ProcessExit(0, stderr_tail="n\n"),
            "streamed\n--- stderr ---\nn",
        ),
        (b"", ProcessExit(0, stderr_tail="only this\n"), "--- stderr ---\nonly this"),
        (b"hello\n", ProcessExit(0, stderr_tail=" \n\n"), "hello"),
        (b"hello\n", ProcessExit(3, stderr_tail="boom\n"), "hello"),
        (b'hello\nAGENT_ERROR:"no"\n', ProcessExit(0, stderr_tail="boom\n"), "hello"),
        (b"hello\n", ProcessExit(0, timed_out=True, stderr_tail="late\n"), "hello"),
    ],
    ids=[
        "body",
        "partials-only",
        "nothing-else",
        "blank-stderr",
        "failed",
        "agent-error",
        "timeout",
    ],
)
def test_include_stderr_in_reply(stdout: bytes, exit: ProcessExit, reply: str) -> None:
    turn = Turn(include_stderr_in_reply=True)
    turn.feed(stdout)
    turn.end_of_output()
    result = turn.finish(exit)
    assert result.reply == reply
    assert result.stderr == exit.stderr_tail


def test_stderr_in_reply_is_off_by_default() -> None:
    turn = Turn()
    turn.feed(b"hello\n")
    assert turn.finish(ProcessExit(0, stderr_tail="note\n")).reply == "hello"


def test_the_quoted_stderr_has_no_terminal_escapes() -> None:
    turn = Turn()
    turn.end_of_output()
    tail = "\x1b[1;31mError:\x1b[0m no key\r\n⠋ waiting\r⠙ gave up\n"
    result = turn.finish(ProcessExit(returncode=4, stderr_tail=tail))
    assert result.error is not None
    assert result.error.endswith("its stderr ends with: Error: no key | ⠙ gave up")
    assert "\x1b" not in result.error and "\r" not in result.error

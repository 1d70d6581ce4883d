"""agentproc.wrap's text helpers: ANSI stripping, retry notes, streamed status notes."""

from __future__ import annotations

import sys

import pytest

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, retry_note, strip_ansi

PY = Cli("Py", sys.executable, install="(it is Python)", env_prefix="PY_CLI")


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("\x1b[31merror:\x1b[0m bad key", "error: bad key"),
        ("\x1b[1;38;5;196mred\x1b[K", "red"),
        ("\x1b]0;window title\x07after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("⠋ working\r⠙ working\rdone", "done"),
        ("line one\r\nline two", "line one\nline two"),
        ("no escapes here", "no escapes here"),
        ("\x9b2Jcleared", "cleared"),
    ],
)
def test_strip_ansi(raw: str, plain: str) -> None:
    assert strip_ansi(raw) == plain


def test_retry_note_says_what_it_knows() -> None:
    assert (
        retry_note(status=529, attempt=2, max_attempts=10)
        == "retrying: the model server answered 529, attempt 2 of 10"
    )
    assert retry_note(attempt=3, delay_secs=4.2) == "retrying: attempt 3, in 4 s"
    assert retry_note(status="timeout", what="Codex") == "retrying: Codex answered timeout"
    # Garbage from a CLI's event is left out, not shown.
    assert retry_note(status=None, attempt="two", max_attempts=True, delay_secs=-1) == "retrying"


def _stream_with_status(ctx):  # type: ignore[no-untyped-def]
    turn = CliTurn(ctx, PY)
    script = (
        "import sys\n"
        "print('first', flush=True)\n"
        "sys.stderr.write('\\x1b[31mboom\\x1b[0m\\n')\n"
        "print('second', flush=True)\n"
    )

    def on_line(turn: CliTurn, line: str) -> None:
        if line == "first":
            turn.delta("Hel")
            turn.status(retry_note(status=529, attempt=1, max_attempts=3))
            turn.status(retry_note(status=529, attempt=1, max_attempts=3))  # repeat: once
        elif line == "second":
            turn.delta("Hello")
            turn.message()

    result = turn.run([sys.executable, "-c", script], on_line, json_lines=False)
    assert turn.streamed()
    assert "boom" in turn.stderr_text() and "\x1b" not in turn.stderr_text()
    return result


def test_status_is_streamed_in_its_own_paragraph_and_left_out_of_the_reply() -> None:
    run = create_profile(_stream_with_status).invoke("hi")
    assert run.exit_code == 0, run.stderr
    assert run.partials == [
        "Hel",
        "\n\n(retrying: the model server answered 529, attempt 1 of 3)",
        "\n\n",
        "Hello",
    ]
    assert run.body == "Hello"


def _failing(ctx):  # type: ignore[no-untyped-def]
    turn = CliTurn(ctx, PY)
    script = (
        "import sys; sys.stderr.write('\\x1b[1;31mError:\\x1b[0m key rejected\\n'); sys.exit(3)"
    )
    return turn.run([sys.executable, "-c", script], lambda turn, line: None, json_lines=False)


def test_a_failed_cli_is_quoted_without_colour_codes() -> None:
    run = create_profile(_failing).invoke("hi")
    assert run.exit_code == 1
    (error,) = run.errors
    assert "exited with code 3" in error
    assert "Error: key rejected" in error
    assert "\x1b" not in error and "[1;31m" not in error


def _resuming(ctx):  # type: ignore[no-untyped-def]
    from agentproc.wrap import run_resuming

    # A "CLI" that knows only the session "good": anything else is lost.
    script = (
        "import sys\n"
        "sid = sys.argv[1]\n"
        "if sid not in ('', 'good'):\n"
        "    sys.stderr.write(f'No conversation found with session ID: {sid}\\n'); sys.exit(1)\n"
        "print('new' if not sid else 'resumed')\n"
    )

    def argv(turn: CliTurn, session_id: str) -> list[str]:
        return [sys.executable, "-c", script, session_id]

    def on_line(turn: CliTurn, line: str) -> None:
        turn.session("fresh" if line == "new" else None)
        turn.message(line)

    def lost(turn: CliTurn, code: int) -> bool:
        return code == 1 and "No conversation found" in turn.stderr_text()

    return run_resuming(ctx, PY, argv, on_line, lost=lost, json_lines=False)


def test_run_resuming_resumes_a_known_session() -> None:
    run = create_profile(_resuming).invoke("hi", session_id="good")
    assert run.exit_code == 0
    assert run.body == "resumed"


def test_run_resuming_starts_fresh_with_a_note_when_the_session_is_gone() -> None:
    run = create_profile(_resuming).invoke("hi", session_id="stale")
    assert run.exit_code == 0, run.stderr
    assert run.session_id == "fresh"
    assert run.body.endswith("new")
    assert "session stale could not be resumed" in run.body
    assert "does not remember" in run.body


def test_run_resuming_does_not_retry_a_new_session() -> None:
    def broken(ctx):  # type: ignore[no-untyped-def]
        from agentproc.wrap import run_resuming

        calls: list[str] = []

        def argv(turn: CliTurn, session_id: str) -> list[str]:
            calls.append(session_id)
            assert len(calls) == 1, "ran twice"
            return [sys.executable, "-c", "import sys; sys.exit(1)"]

        return run_resuming(ctx, PY, argv, lambda t, e: None, lost=lambda t, c: True)

    run = create_profile(broken).invoke("hi")
    assert run.exit_code == 1
    assert "exited with code 1" in run.errors[0]

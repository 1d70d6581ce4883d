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

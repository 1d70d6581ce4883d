"""The gemini-cli wrapper on streams recorded from the real Gemini CLI.

The recordings in tests/fake_clis/gemini/ were captured by the end-to-end
suite (e2e/tests/test_gemini_cli.py, E2E_CAPTURE=1) from Gemini CLI 0.61.0
talking to a fake Gemini API; tests/fake_clis/fake_cli.py replays them. Each
test runs the bundled profile through the bridge, as a user would.
(exit.jsonl alone is made up: a crash with a message on stderr.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from profile_kit import FAKES, Fakes, assert_plain, check_a_lost_session_starts_afresh, recorded
from profile_kit import RECORDED_SESSION as SESSION

#: What the fake gemini does besides replaying: a retry line on stderr is
#: followed by a short pause, as the real CLI waits before it retries (the
#: wrapper reads stderr while the CLI runs; a replay without the pause could
#: end before it looked).
BACKOFF = """\
import time


class Backoff:
    def __init__(self, stream):
        self.stream = stream
        self.waits = False

    def write(self, text):
        self.waits = self.waits or "Retrying" in text
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()
        if self.waits:
            self.waits = False
            time.sleep(0.8)

    def __getattr__(self, name):
        return getattr(self.stream, name)


sys.stderr = Backoff(sys.stderr)
"""
TRUST = "GEMINI_CLI_TRUST_WORKSPACE"


@pytest.fixture
def gemini(tmp_path: Path) -> Fakes:
    """A ``gemini`` on PATH that replays a recording and logs how it was called
    (and the folder trust the wrapper gave it)."""
    return Fakes.make(tmp_path, ("gemini",), profile="gemini-cli", logged=(TRUST,), prelude=BACKOFF)


# --- the folder and the session ------------------------------------------------------------


def test_the_folder_is_trusted_for_the_run_unless_the_operator_decided(
    gemini: Fakes,
) -> None:
    assert gemini.turn("first").error is None
    assert gemini.turn("first", env={"GEMINI_CLI_TRUST_WORKSPACE": "false"}).error is None
    assert [run[TRUST] for run in gemini.logged()] == ["true", "false"]
    assert not any(a.startswith("--skip-trust") for a in gemini.entries()[0]["argv"])


def test_the_session_is_named_once_the_turn_succeeded(gemini: Fakes) -> None:
    result = gemini.turn("first")
    assert result.error is None, result.error
    assert result.session_captured and result.session_id == SESSION


@pytest.mark.parametrize("scenario", ["error", "retry", "cut", "dropped"])
def test_a_first_turn_that_failed_names_no_session(gemini: Fakes, scenario: str) -> None:
    # Gemini CLI saved nothing: resuming the id of its `init` would fail with
    # "Invalid session identifier" on every later turn.
    assert any(e.get("type") == "init" for e in recorded("gemini", scenario))
    result = gemini.turn(scenario)
    assert result.exit_code == 1
    assert not result.session_captured, result.session_id


@pytest.mark.parametrize(
    ("message", "what"),
    [
        ("Error resuming session: No previous sessions found for this project.", "folder"),
        ('Error resuming session: Invalid session identifier "x".', "unsaved"),
    ],
)
def test_a_session_gemini_cannot_resume_starts_afresh_with_a_note(
    gemini: Fakes, message: str, what: str
) -> None:
    assert recorded("gemini", "lost")[0]["text"].startswith("Error resuming session:")
    lost = gemini.home / "fake_clis" / "gemini"
    lost.mkdir(parents=True)
    (lost / f"{what}.jsonl").write_text(
        json.dumps({"fake": "stderr", "text": message + "\n"})
        + "\n"
        + json.dumps({"fake": "exit", "code": 42})
        + "\n"
    )
    # The launcher reads scenarios from tests/fake_clis; point one at the copy.
    scenario = os.path.relpath(lost / what, FAKES / "gemini")
    fresh = check_a_lost_session_starts_afresh(gemini, on_resume=scenario)
    assert not any(a.startswith("--resume") for a in fresh["argv"])
    assert fresh["argv"][-1] == "--prompt=hello"


def test_the_recorded_lost_session_is_recovered_from(gemini: Fakes) -> None:
    result = gemini.turn("first", session_id="an-old-session", on_resume="lost")
    assert result.error is None, result.error
    assert "could not be resumed here" in result.reply


def test_a_failure_that_is_not_a_lost_session_is_not_retried(gemini: Fakes) -> None:
    result = gemini.turn("error", session_id=SESSION, on_resume="error")
    assert result.exit_code == 1
    assert len(gemini.entries()) == 1


# --- errors ----------------------------------------------------------------------------------


def test_an_api_error_reads_as_words_not_the_raw_body(gemini: Fakes) -> None:
    (result_event,) = [e for e in recorded("gemini", "error") if e.get("type") == "result"]
    assert result_event["error"]["message"].startswith("[API Error: {")
    assert recorded("gemini", "error")[-1] == {"fake": "exit", "code": 401 % 256}
    result = gemini.turn("error")
    assert result.exit_code == 1
    assert result.partials == []
    assert result.error is not None
    assert result.error.startswith(
        "Gemini CLI got no answer from the model API (HTTP 401 UNAUTHENTICATED): "
        "API key not valid. Please pass a valid API key."
    )
    assert "What to do: Set a valid GEMINI_API_KEY" in result.error
    assert "exited with code" not in result.error
    assert_plain(result.error, "[API Error")


def test_a_retry_reported_on_stderr_is_streamed_as_a_note(gemini: Fakes) -> None:
    result = gemini.turn("retry")
    assert result.exit_code == 1
    assert result.partials == ["(retrying: the model server answered 500, attempt 2)"]
    assert result.reply == ""
    assert result.error is not None
    assert "(HTTP 500 INTERNAL)" in result.error
    assert "send the message again in a moment" in result.error
    assert_plain(result.error, "[API Error")


def test_a_rate_limit_waited_out_is_a_note_and_not_part_of_the_reply(
    gemini: Fakes,
) -> None:
    result = gemini.turn("ratelimit")
    assert result.error is None, result.error
    assert result.partials[0] == (
        "(retrying: the model server answered a rate limit, attempt 2, in 5 s)"
    )
    assert "".join(result.partials[1:]) == "\n\nWorth the wait."
    assert result.reply == "Worth the wait."
    assert result.session_id == SESSION


def test_a_stream_that_ends_early_fails_the_turn_though_gemini_exits_0(
    gemini: Fakes,
) -> None:
    assert "fake" not in recorded("gemini", "cut")[-1]  # no exit directive: exit code 0
    result = gemini.turn("cut")
    assert result.exit_code == 1
    assert result.error == (
        "Model stream ended without a finish reason.\n"
        "What to do: The model's answer stopped before it was complete; "
        "send the message again."
    )


def test_a_dropped_connection_says_so(gemini: Fakes) -> None:
    result = gemini.turn("dropped")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith(
        "Gemini CLI lost the connection to the model API: the connection broke off (terminated)"
    )
    assert "GOOGLE_GEMINI_BASE_URL" in result.error


def test_an_answer_started_over_is_replied_from_the_saved_session(gemini: Fakes) -> None:
    # The stream holds the broken first try, then the whole second one.
    chats = gemini.home / ".gemini" / "tmp" / "project" / "chats"
    chats.mkdir(parents=True)
    (chats / f"session-2026-01-01T00-00-{SESSION[:8]}.jsonl").write_text(
        json.dumps({"sessionId": SESSION, "kind": "main"})
        + "\n"
        + json.dumps({"type": "user", "content": [{"text": "hi"}]})
        + "\n"
        + json.dumps({"type": "gemini", "content": "The second try is whole."})
        + "\n"
    )
    result = gemini.turn("restart")
    assert result.error is None, result.error
    assert "".join(result.partials) == "The first try stopsThe second try is whole."
    assert result.reply == "The second try is whole."


def test_without_the_saved_session_the_streamed_text_is_the_reply(gemini: Fakes) -> None:
    result = gemini.turn("restart")
    assert result.reply == "The first try stopsThe second try is whole."


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("auth", "(it could not authenticate: log in once by running `gemini`, or set"),
        ("untrusted", "(it does not trust this folder"),
    ],
)
def test_gemini_exit_codes_are_said_in_words(gemini: Fakes, scenario: str, reason: str) -> None:
    result = gemini.turn(scenario)
    assert result.exit_code == 1
    assert result.error is not None
    assert reason in result.error, result.error


def test_an_unreadable_settings_file_fails_the_turn(gemini: Fakes) -> None:
    assert "fake" not in recorded("gemini", "badconfig")[-1]  # it exits 0
    result = gemini.turn("badconfig")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith("Gemini CLI did not run: Invalid configuration in")
    assert "general.maxAttempts" in result.error


# --- tools -----------------------------------------------------------------------------------


def test_a_tool_left_out_for_want_of_approval_is_said(gemini: Fakes) -> None:
    result = gemini.turn("denied")
    assert result.error is None, result.error
    answer, note = result.reply.split("\n\n")
    assert answer == "I could not run the command."
    assert note == (
        "(Gemini CLI could not use `run_shell_command`: headless Gemini CLI cannot ask for "
        "approval, so it leaves out tools that need it. To allow them, set GEMINI_CLI_ARGS to "
        "--approval-mode=auto_edit (file edits) or --approval-mode=yolo (everything).)"
    )
    assert "".join(result.partials) == "I will run it.\n\n" + result.reply

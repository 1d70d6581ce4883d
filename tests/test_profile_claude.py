"""The claude-code wrapper on streams recorded from the real Claude Code.

The recordings in tests/fake_clis/claude/ were captured by the end-to-end
suite (e2e/tests/test_claude_code.py, E2E_CAPTURE=1) from Claude Code 2.1.197
talking to a fake Anthropic API; tests/fake_clis/fake_cli.py replays them.
Each test runs the bundled profile through the bridge, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_kit import RECORDED_SESSION as SESSION
from profile_kit import Fakes, assert_plain, check_a_lost_session_starts_afresh, recorded

from agentproc.wire import PermissionDecision, PermissionRequest


@pytest.fixture
def claude(tmp_path: Path) -> Fakes:
    """A ``claude`` on PATH that replays a recording and logs how it was called."""
    return Fakes.make(tmp_path, ("claude",), profile="claude-code")


# --- API errors ----------------------------------------------------------------------------


def test_an_api_error_is_not_streamed_as_the_answer(claude: Fakes) -> None:
    # The recording has the synthetic "assistant" message Claude Code makes up.
    synthetic = [e for e in recorded("claude", "error") if e.get("type") == "assistant"]
    assert synthetic and synthetic[0]["message"]["model"] == "<synthetic>"
    result = claude.turn("error")
    assert result.exit_code == 1
    assert result.partials == []
    assert result.reply == ""
    assert result.error is not None
    assert result.error.startswith("Claude Code got no answer from the model API (HTTP 401)")
    assert "Invalid API key" in result.error
    assert "What to do: Set a valid ANTHROPIC_API_KEY" in result.error
    assert_plain(result.error)
    assert result.session_id == SESSION


@pytest.mark.parametrize(
    ("scenario", "status", "advice"),
    [
        ("retry", 500, "send the message again in a moment"),
        ("ratelimit", 429, "over its rate limit"),
        ("overloaded", 529, "overloaded for everyone"),
    ],
)
def test_a_retried_error_streams_a_retry_note_then_fails_readably(
    claude: Fakes, scenario: str, status: int, advice: str
) -> None:
    result = claude.turn(scenario)
    assert result.exit_code == 1
    assert result.partials == [
        f"(retrying: the model server answered {status}, attempt 1 of 1, shortly)"
    ]
    assert result.reply == ""
    assert result.error is not None
    assert f"(HTTP {status})" in result.error and advice in result.error, result.error
    assert "API Error:" not in result.error  # Claude Code's prefix is not repeated
    assert_plain(result.error)


def test_a_broken_stream_asked_again_is_said_and_the_second_answer_is_the_reply(
    claude: Fakes,
) -> None:
    result = claude.turn("cut")
    assert result.error is None, result.error
    assert result.reply == "The second try is whole."
    streamed = "".join(result.partials)
    assert streamed == (
        "The first try breaks off"
        "\n\n(the answer broke off; Claude Code asked the model again)"
        "\n\nThe second try is whole."
    )


def test_refusing_to_skip_approvals_as_root_says_what_to_do(claude: Fakes) -> None:
    result = claude.turn("root")
    assert result.exit_code == 1
    assert result.error is not None
    assert "as root" in result.error and "IS_SANDBOX=1" in result.error, result.error
    assert "CLAUDE_CODE_ARGS" in result.error
    assert "exited with code" not in result.error


# --- sessions --------------------------------------------------------------------------------


def test_a_session_unknown_in_this_folder_starts_afresh_with_a_note(claude: Fakes) -> None:
    fresh = check_a_lost_session_starts_afresh(claude, on_resume="lost")
    assert not any(a.startswith("--resume") for a in fresh["argv"])
    # The fresh run gets the message too.
    user = [m for m in fresh["stdin_lines"] if m.get("type") == "user"]
    assert user[0]["message"]["content"] == "hello"


def test_a_failure_that_is_not_a_lost_session_is_not_retried(claude: Fakes) -> None:
    result = claude.turn("error", session_id=SESSION, on_resume="error")
    assert result.exit_code == 1
    assert len(claude.entries()) == 1


# --- approvals -------------------------------------------------------------------------------


def test_the_approval_question_shows_the_command_not_only_its_summary(
    claude: Fakes,
) -> None:
    asked: list[PermissionRequest] = []

    def decide(request: PermissionRequest) -> PermissionDecision:
        asked.append(request)
        return PermissionDecision(True)

    result = claude.turn("permission", on_permission=decide)
    assert result.error is None, result.error
    (request,) = asked
    assert request.description == "echo approved > approved.txt (Write approved.txt)"
    assert request.summary().startswith("echo approved > approved.txt")
    assert request.tool_use_id == "toolu_fake_0001"


def test_a_denied_tool_goes_back_to_claude_with_the_reason(claude: Fakes) -> None:
    result = claude.turn(
        "denied", on_permission=lambda request: PermissionDecision(False, None, "not here")
    )
    assert result.error is None, result.error
    assert result.reply == "Done with the file."
    (response,) = claude.entries()[-1]["responses"]
    assert response["response"]["response"] == {"behavior": "deny", "message": "not here"}

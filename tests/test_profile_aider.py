"""The aider wrapper on output recorded from aider 0.86.2.

The recordings in ``tests/fake_clis/aider/`` are captured by
``e2e/tests/test_aider.py`` with ``E2E_CAPTURE=1``: what aider printed (as
``stdout`` directives) and what it added to the chat history file (one
``history`` directive). These tests replay them through the real wrapper, as
the bridge runs it: aider's own lines are not the answer, its retries become
notes and are cut short, a failed turn and the partial answers of retried
calls are taken out of the history again, and it never waits for a browser.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from profile_kit import BY_NAME, Fakes, load_wrapper, notes, run
from profile_kit import fakes_fixture as fakes_fixture  # the fixture `fakes`

AIDER = BY_NAME["aider"]


@pytest.fixture(scope="module")
def wrapper() -> ModuleType:
    return load_wrapper("aider")


def history(fakes: Fakes, session: str) -> str:
    """What the conversation's chat history file holds; "" when there is none (a
    run the wrapper stopped early may be killed before aider creates the file,
    which leaves no trace just as well)."""
    path = Path(fakes.home, ".agentproc", "aider", f"{session}.chat.md")
    return path.read_text() if path.exists() else ""


# --- replayed runs ---------------------------------------------------------------------


def test_a_retried_call_is_a_note_and_only_the_final_answer_is_kept(fakes: Fakes) -> None:
    result = run(AIDER, fakes, scenario="retry")
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == "The second attempt worked."
    assert notes(result.partials) == [
        "(retrying: the model server answered: peer closed connection without sending "
        "complete message body (incomplete chunked read), attempt 2 of at most 5)",
        "(retrying: the model server answered: The server had an error while processing "
        "your request. Sorry about that!, attempt 3 of at most 5)",
    ]
    kept = history(fakes, result.session_id)
    assert "The second attempt worked." in kept
    assert "Half of th" not in kept  # the cut attempt's words are not sent again


def test_retries_that_go_on_are_stopped_and_the_turn_leaves_no_trace(fakes: Fakes) -> None:
    result = run(AIDER, fakes, scenario="limit")
    assert result.exit_code == 1
    assert result.error == (
        "the model server failed 5 times in a row (Rate limit reached for requests. Please "
        "try again in 20s.); the turn was stopped after 4 retries instead of aider's minute "
        "of them"
    )
    assert len(notes(result.partials)) == 4
    assert history(fakes, result.session_id) == ""


def test_an_answer_cut_every_time_fails_instead_of_repeating_itself(fakes: Fakes) -> None:
    result = run(AIDER, fakes, scenario="cut")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith("the model server failed 5 times in a row (peer closed")
    assert "This answer is cut" not in history(fakes, result.session_id)


def test_a_failed_turn_is_taken_out_of_the_history(fakes: Fakes) -> None:
    first = run(AIDER, fakes, "what is here?")
    kept = history(fakes, first.session_id)
    failed = run(AIDER, fakes, "remember kiwi", scenario="error", session_id=first.session_id)
    assert failed.error == (
        "the model server answered: Incorrect API key provided: sk-e2e. You can find your "
        "API key at https://platform.openai.com/account/api-keys. (The API provider is not "
        "able to authenticate you. Check your API key.)"
    )
    assert history(fakes, first.session_id) == kept


def test_aiders_work_after_the_answer_is_not_streamed(fakes: Fakes) -> None:
    result = run(AIDER, fakes, scenario="edit")
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == "I will create it.\n\nhello.txt\n```\nHello from aider\n```"
    streamed = "".join(result.partials)
    assert streamed.strip() == result.reply
    assert "Applied edit" not in streamed and "Commit" not in streamed


def test_no_model_and_no_key_fails_at_once_instead_of_waiting_for_a_browser(
    fakes: Fakes,
) -> None:
    result = run(AIDER, fakes, scenario="nokey")
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith("aider has no model and no API key: set AIDER_MODEL")
    assert history(fakes, result.session_id) == ""


# --- reading the chat history ----------------------------------------------------------

#: One run's part of a chat history file, as aider 0.86 writes it (quoted lines
#: and the user's message end with two spaces, Markdown's line break).
TURN = "".join(
    line + "\n"
    for line in [
        "",
        "# aider chat started at 2025-11-20 10:00:00",
        "",
        "> Aider v0.86.2  ",
        "",
        "#### hello  ",
        "",
        "Half an ans",
        "",
        "> litellm.APIConnectionError: APIConnectionError: OpenAIException - peer closed  ",
        "> Retrying in 0.2 seconds...  ",
        "",
        "The whole answer.",
        "",
        "> Tokens: 592 sent, 5 received.  ",
    ]
)


def test_the_history_is_read_as_blocks(wrapper: ModuleType) -> None:
    kinds = [kind for kind, _ in wrapper.split_history(TURN)]
    assert kinds == ["text", "other", "quote", "user", "text", "quote", "text", "quote"]


def test_read_turn_drops_partial_answers_and_finds_errors(
    wrapper: ModuleType, tmp_path: Path
) -> None:
    file = tmp_path / "chat.md"
    file.write_text("earlier turns\n" + TURN)
    answer, error, cleaned = wrapper.read_turn(str(file), len("earlier turns\n"))
    assert answer == "The whole answer."
    assert error == ""
    assert "Half an ans" not in cleaned and "The whole answer." in cleaned
    failed = TURN.replace("> Retrying in 0.2 seconds...  \n", "").replace(
        "The whole answer.\n\n> Tokens: 592 sent, 5 received.  \n", ""
    )
    file.write_text(failed)
    answer, error, _ = wrapper.read_turn(str(file), 0)
    assert error.startswith("peer closed")

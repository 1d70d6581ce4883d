"""The aider profile against the real aider and a fake Chat Completions API.

Each test runs this checkout's ``agentproc`` (``run`` or ``chat``) on the
bundled profile; its wrapper runs the pinned ``aider`` (e2e/.venv-aider),
which talks to the fake model server on loopback through LiteLLM (see
aider_setup.py). With E2E_CAPTURE=1 the tests that name scenarios record what
aider printed and wrote to its chat history for the fast suite.

aider has no tools that ask for approval: it edits files and commits them
itself, and the profile answers yes to its questions (AIDER_YES_ALWAYS).
test_an_edit_is_applied_without_asking shows what that means.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from e2e.fakemodel import Cut, FakeModel, Reply, Status

from .aider_setup import BIN_VAR, NO_CLIENT_RETRY, aider_env, recorded
from .common import Suite, notes
from .conftest import agentproc, base_env

AIDER = Suite(
    "aider",
    cli="aider",
    bin_var=BIN_VAR,
    install="python -m pip install aider-install && aider-install",
)
run_json = AIDER.run_json
assert_plain = AIDER.assert_plain
conversation = AIDER.conversation


def history_file(env: dict[str, str], session: str) -> Path:
    return Path(env["HOME"]) / ".agentproc" / "aider" / f"{session}.chat.md"


def test_chat_streams_the_answer_without_aiders_own_lines_and_resumes(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Reply("Noted: the word is banana."), Reply("You told me banana."))
    env = aider_env(env, model, record="first,resume", folder=tmp_path)
    result = agentproc(
        "chat",
        "aider",
        env=env,
        cwd=project,
        input=b"remember the word banana\nwhich word was it?\n",
    )
    assert result.code == 0, result
    assert "Noted: the word is banana." in result.out
    assert "You told me banana." in result.out
    # None of aider's lines about itself (its version, the git repository it
    # made, the git name to set, the token count) reach the chat.
    for own in ("Aider v", "Git repository created", "git config", "Tokens:", ".gitignore"):
        assert own not in result.out, result.out
    assert_plain(result.out + result.err)
    _, second = model.model_calls
    assert "remember the word banana" in conversation(second)
    assert "Noted: the word is banana." in conversation(second)


def test_a_401_fails_plainly_and_leaves_no_trace_in_the_history(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(401, headers=NO_CLIENT_RETRY))
    env = aider_env(env, model, record="error", folder=tmp_path)
    data = run_json(env, project, "remember the word kiwi")
    assert data["exit_code"] == 1
    assert data["error"] == (
        "the model server answered: Incorrect API key provided: sk-e2e. You can find your "
        "API key at https://platform.openai.com/account/api-keys. (The API provider is not "
        "able to authenticate you. Check your API key.)"
    )
    assert_plain(data["error"])
    assert len(model.model_calls) == 1  # not retried
    assert "kiwi" not in history_file(env, data["session_id"]).read_text()


def test_a_500_is_retried_with_a_note_and_only_the_answer_is_kept(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(
        Cut("Half of the fir"),
        Status(500, headers=NO_CLIENT_RETRY),
        Reply("The second attempt worked."),
    )
    env = aider_env(env, model, record="retry", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["error"] is None, data
    assert data["reply"] == "The second attempt worked."
    said = notes(data["partials"])
    assert said[0].startswith(
        "(retrying: the model server answered: peer closed connection without sending "
        "complete message body"
    )
    assert said[0].endswith("attempt 2 of at most 5)")
    assert said[1].startswith(
        "(retrying: the model server answered: The server had an error while processing "
        "your request. Sorry about that!"
    )
    # The next turn's history holds the answer, not the cut attempt.
    history = history_file(env, data["session_id"]).read_text()
    assert "The second attempt worked." in history
    assert "Half of the fir" not in history


def test_a_429_that_goes_on_is_stopped_after_a_few_retries(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.default = Status(429, headers=NO_CLIENT_RETRY)
    env = aider_env(env, model, record="limit", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["exit_code"] == 1
    assert data["error"] == (
        "the model server failed 5 times in a row (Rate limit reached for requests. Please "
        "try again in 20s.); the turn was stopped after 4 retries instead of aider's minute "
        "of them"
    )
    assert len(model.model_calls) == 5
    assert len(notes(data["partials"])) == 4


def test_a_stream_cut_every_time_fails_and_the_next_turn_starts_clean(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # aider would write the cut answer nine times and call it a success.
    model.default = Cut("This answer is cut short by the network")
    env_rec = aider_env(env, model, record="cut", folder=tmp_path)
    failed = run_json(env_rec, project, "remember the word fig")
    assert failed["exit_code"] == 1
    assert failed["error"].startswith("the model server failed 5 times in a row (peer closed")
    assert_plain(failed["error"])
    model.default = Reply("Fresh answer.")
    again = run_json(env_rec, project, "hello again", "--session", failed["session_id"])
    assert again["error"] is None, again
    assert again["reply"] == "Fresh answer."
    last = conversation(model.model_calls[-1])
    assert "This answer is cut" not in last and "fig" not in last


def test_an_edit_is_applied_without_asking(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    answer = "I will create it.\n\nhello.txt\n```\nHello from aider\n```\n"
    model.script(Reply(answer), Reply("Add hello.txt"))  # the answer, the commit message
    env = aider_env(env, model, record="edit", folder=tmp_path)
    data = run_json(env, project, "create hello.txt saying Hello from aider")
    assert data["error"] is None, data
    assert (project / "hello.txt").read_text() == "Hello from aider\n"
    assert data["reply"].startswith("I will create it.")
    assert "Applied edit" not in data["reply"] and "Commit" not in "".join(data["partials"])
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True, check=True
    )
    assert "hello.txt" in log.stdout


def test_no_model_and_no_key_fails_at_once(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # aider would offer to log in to OpenRouter, say yes, and wait 5 minutes.
    env = recorded(env, record="nokey", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["exit_code"] == 1
    assert data["error"].startswith("aider has no model and no API key: set AIDER_MODEL")
    assert data["duration_ms"] < 30_000
    assert model.requests == []


def test_a_missing_cli_says_how_to_install_it(model: FakeModel, home: Path, project: Path) -> None:
    env = aider_env(base_env(home, with_clis=False), model)
    AIDER.check_missing_cli(env, project, "hello")
    assert model.requests == []

"""The gemini-cli profile against the real Gemini CLI and a fake Gemini API.

Each test runs this checkout's ``agentproc`` (``run`` or ``chat``) on the
bundled profile; the profile's wrapper runs the pinned ``gemini``, which
talks to the fake model server on loopback (see gemini_setup.py for how it is
pointed there, kept quiet, and made to retry once instead of ten times). With
E2E_CAPTURE=1 the tests that name a scenario record the CLI's output for the
fast suite (tests/test_profile_gemini.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.fakemodel import Cut, FakeModel, Reply, Status, ToolUse

from .common import UUID as SESSION_ID
from .common import Suite, folders
from .conftest import agentproc, base_env
from .gemini_setup import BIN_VAR, MODEL, gemini_env

GEMINI = Suite(
    "gemini-cli",
    cli="gemini",
    bin_var=BIN_VAR,
    install="npm install -g @google/gemini-cli",
    leaks=("[API Error",),
    plain_stderr=True,
    conversation_key="contents",
)
run_json = GEMINI.run_json
assert_plain = GEMINI.assert_plain
contents = GEMINI.conversation

STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


# --- the first turn and its resumption -----------------------------------------------------


def test_first_turn_streams_and_the_next_resumes_with_its_text(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    (project / "README.md").write_text("# demo\n")
    (project / "src").mkdir()
    model.script(
        ToolUse("list_directory", {"dir_path": "."}, text="Let me check the files."),
        Reply("There are two entries: README.md and src.", chunks=2),
        Reply("You asked about the files: README.md and src.", chunks=2),
    )
    env = gemini_env(env, model, record={"new": "first", "resume": "resume"}, folder=tmp_path)
    first = run_json(env, project, "what is here?")
    assert first["error"] is None, first
    assert first["reply"] == "There are two entries: README.md and src."
    streamed = "".join(first["partials"])
    assert streamed == "Let me check the files.\n\nThere are two entries: README.md and src."
    assert SESSION_ID.match(first["session_id"]), first
    assert [r.path for r in model.model_calls] == [STREAM, STREAM]
    call, after_tool = model.model_calls
    assert call.headers["x-goog-api-key"] == "e2e-fake-key"
    assert "what is here?" in contents(call)
    # The directory listing needed no approval; its result went back to the model.
    assert "functionResponse" in contents(after_tool) and "README.md" in contents(after_tool)

    second = run_json(env, project, "and before?", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["reply"] == "You asked about the files: README.md and src."
    assert second["session_id"] == first["session_id"]
    earlier = contents(model.model_calls[-1])
    assert "what is here?" in earlier and "There are two entries" in earlier


def test_chat_resumes_the_conversation_between_two_messages(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    GEMINI.check_chat_carries_the_first_turn(model, gemini_env(env, model), project)


# --- sessions that cannot be resumed -------------------------------------------------------


def test_a_failed_first_turn_does_not_leave_the_conversation_stuck(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    # Gemini CLI saves no session for a turn that failed before the model
    # answered: the wrapper names none, so the next turn starts a new one
    # instead of failing on "Invalid session identifier" for ever.
    model.script(Status(401), Reply("Now it works."), Reply("And it remembers."))
    env = gemini_env(env, model)
    result = agentproc(
        "chat", "gemini-cli", env=env, cwd=project, input=b"first try\nsecond try\nthird try\n"
    )
    assert "HTTP 401" in result.out + result.err, result
    assert "Now it works." in result.out and "And it remembers." in result.out, result
    assert "Invalid session identifier" not in result.out + result.err
    assert "could not be resumed" not in result.out
    assert "second try" in contents(model.model_calls[-1])


def test_a_turn_that_failed_after_a_tool_ran_keeps_its_session(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    # Once a tool ran, Gemini CLI has saved the session: it is named, and the
    # next turn resumes it with what was said before the failure.
    model.script(
        ToolUse("list_directory", {"dir_path": "."}, text="Looking."),
        Status(401),
        Reply("Resumed."),
    )
    env = gemini_env(env, model)
    first = run_json(env, project, "first message")
    assert first["error"] is not None and "HTTP 401" in first["error"]
    assert first["session_captured"] and SESSION_ID.match(first["session_id"])
    second = run_json(env, project, "second message", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["reply"] == "Resumed."
    assert "first message" in contents(model.model_calls[-1])


def test_a_session_gemini_does_not_have_starts_afresh_with_a_note(
    model: FakeModel, env: dict[str, str], tmp_path: Path
) -> None:
    here, there = folders(tmp_path, "here", "there")
    model.script(
        Reply("Made in the first folder."),
        Reply("A fresh start over there."),
        Reply("A fresh start after all."),
    )
    env = gemini_env(env, model, record={"resume": "lost"}, folder=tmp_path)
    first = run_json(env, here, "hello from here")
    assert first["error"] is None, first
    # Sessions belong to the folder they started in: "No previous sessions
    # found for this project".
    second = run_json(env, there, "hello from there", "--session", first["session_id"])
    assert second["error"] is None, second
    assert "could not be resumed here" in second["reply"]
    assert second["reply"].endswith("A fresh start over there.")
    assert SESSION_ID.match(second["session_id"])
    assert second["session_id"] != first["session_id"]
    # An id Gemini CLI never saved: "Invalid session identifier".
    never = "00000000-1111-4222-8333-444444444444"
    third = run_json(env, here, "and again", "--session", never)
    assert third["error"] is None, third
    assert "could not be resumed here" in third["reply"], third
    assert third["reply"].endswith("A fresh start after all.")


# --- errors ------------------------------------------------------------------------------


def test_a_refused_key_fails_with_what_to_do(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(401, "API key not valid. Please pass a valid API key."))
    env = gemini_env(env, model, record={"new": "error"}, folder=tmp_path)
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert result.out == "", result
    assert "HTTP 401 UNAUTHENTICATED" in result.err, result.err
    assert "API key not valid" in result.err and "GEMINI_API_KEY" in result.err
    assert "exited with code" not in result.err  # not "code 145" (401 modulo 256)
    assert_plain(result.err)
    assert len(model.model_calls) == 1  # a 401 is not retried


def test_a_server_error_shows_the_retry_then_fails_readably(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(500), Status(500))
    env = gemini_env(env, model, record={"new": "retry"}, folder=tmp_path)
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "(retrying: the model server answered 500, attempt 2" in result.out, result
    assert "HTTP 500 INTERNAL" in result.err and "send the message again" in result.err
    assert_plain(result.out + result.err)
    assert len(model.model_calls) == 2


def test_a_rate_limit_is_waited_out_with_a_note(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(429), Reply("Worth the wait."))
    env = gemini_env(env, model, record={"new": "ratelimit"}, folder=tmp_path)
    data = run_json(env, project, "hi")
    assert data["error"] is None, data
    assert data["reply"] == "Worth the wait."
    streamed = "".join(data["partials"])
    assert streamed.startswith("(retrying: the model server answered a rate limit, attempt 2"), (
        streamed
    )
    assert streamed.endswith("\n\nWorth the wait.")
    assert len(model.model_calls) == 2


@pytest.mark.parametrize(
    ("clean", "scenario", "words"),
    [
        (True, "cut", "without a finish reason"),
        (False, "dropped", "lost the connection"),
    ],
    ids=["ends-early", "connection-drops"],
)
def test_a_stream_cut_mid_answer_fails_the_turn(
    model: FakeModel,
    env: dict[str, str],
    project: Path,
    tmp_path: Path,
    clean: bool,
    scenario: str,
    words: str,
) -> None:
    # A stream that just ends is asked again once (maxAttempts 2), then Gemini
    # CLI reports an error event and a failed result but exits 0; a dropped
    # connection is an API error ("terminated") and exits 1.
    model.script(Cut("The first try stops in the mid", clean=clean), Cut("Again", clean=clean))
    env = gemini_env(env, model, record={"new": scenario}, folder=tmp_path)
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert words in result.err, result.err
    assert "send the message again" in result.err
    assert_plain(result.err)


def test_an_answer_asked_again_after_a_cut_is_the_reply_alone(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Gemini CLI streams the second try after what it streamed of the first,
    # and says nothing of it in stream-json: the wrapper takes the answer the
    # CLI saved in its session as the reply.
    model.script(Cut("The first try stops", clean=True), Reply("The second try is whole."))
    env = gemini_env(env, model, record={"new": "restart"}, folder=tmp_path)
    data = run_json(env, project, "hi")
    assert data["error"] is None, data
    assert data["reply"] == "The second try is whole."
    assert "".join(data["partials"]) == "The first try stopsThe second try is whole."
    assert len(model.model_calls) == 2


def test_a_missing_cli_says_how_to_install_it(home: Path, project: Path) -> None:
    bare = {**base_env(home, with_clis=False), "GEMINI_API_KEY": "x"}
    GEMINI.check_missing_cli(bare, project)


def test_without_api_key_authentication_chosen_it_says_what_to_set(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    env = gemini_env(env, model, record={"new": "auth"}, folder=tmp_path)
    (Path(env["HOME"]) / ".gemini" / "settings.json").write_text("{}")
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "exited with code 41 (it could not authenticate" in result.err, result.err
    assert '"selectedType": "gemini-api-key"' in result.err
    assert "Invalid auth method selected" in result.err
    assert model.model_calls == []


def test_the_folder_is_trusted_unless_the_operator_says_otherwise(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Headless Gemini CLI refuses an untrusted folder (exit 55); the wrapper
    # sets GEMINI_CLI_TRUST_WORKSPACE=true unless the variable is set already.
    env = gemini_env(env, model, record={"new": "untrusted"}, folder=tmp_path)
    env["GEMINI_CLI_TRUST_WORKSPACE"] = "false"
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "exited with code 55 (it does not trust this folder" in result.err, result.err
    assert_plain(result.err)
    assert model.model_calls == []


def test_a_settings_file_it_cannot_read_fails_the_turn(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Gemini CLI reports an invalid setting on stderr and then "succeeds"
    # with no answer and exit code 0.
    env = gemini_env(env, model, record={"new": "badconfig"}, folder=tmp_path)
    settings = Path(env["HOME"]) / ".gemini" / "settings.json"
    data = json.loads(settings.read_text())
    data["general"]["maxAttempts"] = "two"
    settings.write_text(json.dumps(data))
    result = agentproc("run", "gemini-cli", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "Gemini CLI did not run: Invalid configuration in" in result.err, result.err
    assert "general.maxAttempts" in result.err
    assert model.model_calls == []


# --- tools that need approval --------------------------------------------------------------


def test_a_tool_that_needs_approval_is_left_out_and_said_so(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Headless Gemini CLI cannot ask: it leaves out tools that need approval
    # (the model is told the tool does not exist), and the turn goes on.
    model.script(
        ToolUse("run_shell_command", {"command": "touch created.txt"}, text="I will run it."),
        Reply("I could not run the command."),
    )
    env = gemini_env(env, model, record={"new": "denied"}, folder=tmp_path)
    data = run_json(env, project, "make a file")
    assert data["error"] is None, data
    assert not (project / "created.txt").exists()
    answer, note = data["reply"].split("\n\n")
    assert answer == "I could not run the command."
    assert note.startswith("(Gemini CLI could not use `run_shell_command`"), note
    assert "--approval-mode=yolo" in note
    assert "not found" in contents(model.model_calls[-1])


def test_an_approval_mode_lets_the_tool_run(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    env = {**gemini_env(env, model), "GEMINI_CLI_ARGS": "--approval-mode=yolo"}
    tool = ToolUse("run_shell_command", {"command": "touch created.txt"}, text="I will run it.")
    GEMINI.check_an_allowed_tool_runs(model, env, project, tool)

"""The opencode profile against the real opencode CLI and a fake Chat Completions API.

Each test runs this checkout's ``agentproc`` (``run`` or ``chat``) on the
bundled profile; its wrapper runs the pinned ``opencode`` binary, which talks
to the fake model server on loopback through an ``@ai-sdk/openai-compatible``
provider (see opencode_setup.py). With E2E_CAPTURE=1 the tests that name a
scenario record the CLI's stdout and stderr for the fast suite.

opencode takes a few seconds to start, and its first start in a new home
folder sets up its database: the tests share one home folder, so each run
after the first is quicker. Every test still gets its own project folder and
its own fake model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.fakemodel import Cut, FakeModel, Reply, Status, ToolUse
from e2e.fakemodel.openai_chat import Unfinished

from .common import Suite, folders, notes
from .conftest import agentproc, base_env
from .opencode_setup import BIN_VAR, opencode_env

OPENCODE = Suite(
    "opencode",
    cli="opencode",
    bin_var=BIN_VAR,
    install="npm install -g opencode-ai",
    leaks=('\\"',),
)
run_json = OPENCODE.run_json
assert_plain = OPENCODE.assert_plain
conversation = OPENCODE.conversation

#: What opencode 1.18 is told to wait before retrying the fake's 500 and 429:
#: long enough for the wrapper to see the retry in opencode's log (it looks
#: three times a second), short enough for the test (opencode retries 5 times).
RETRY_WAIT = {"retry-after-ms": "700"}


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("opencode-home")


@pytest.fixture
def env(shared_home: Path) -> Iterator[dict[str, str]]:
    yield base_env(shared_home)


# --- a turn, the next one, and one in another folder ----------------------------------------


def test_first_turn_resumed_turn_and_a_turn_in_another_folder(
    model: FakeModel, env: dict[str, str], tmp_path: Path
) -> None:
    here, there = folders(tmp_path, "here", "there")
    model.script(
        Reply("Noted: the secret is plums."),
        Reply("You said plums."),
        Reply("A fresh start over there."),
    )
    first = run_json(opencode_env(env, model, record="first", folder=tmp_path), here, "plums!")
    assert first["error"] is None, first
    assert first["reply"] == "Noted: the secret is plums."
    assert first["partials"] == ["Noted: the secret is plums."]
    session = first["session_id"]
    assert session.startswith("ses_")
    # One model call per turn: the title agent is off (opencode_setup.py).
    (call,) = model.model_calls
    assert call.path == "/v1/chat/completions" and call.json["stream"] is True
    assert call.json["model"] == "e2e-model"
    assert "plums!" in conversation(call)

    resumed_env = opencode_env(env, model, record="resume", folder=tmp_path)
    second = run_json(resumed_env, here, "what was it?", "--session", session)
    assert second["error"] is None, second
    assert second["reply"] == "You said plums."
    assert second["session_id"] == session
    assert "Noted: the secret is plums." in conversation(model.model_calls[1])

    # opencode 1.18 would run a turn of this session in "there" and never
    # report it (`run` waits for events that go to the session's own folder).
    third = run_json(opencode_env(env, model), there, "what was it?", "--session", session)
    assert third["error"] is None, third
    note, answer = third["reply"].split("\n\n")
    assert note.startswith(f"(The earlier opencode session {session} belongs to the folder")
    assert str(here) in note
    assert answer == "A fresh start over there."
    assert third["session_id"].startswith("ses_") and third["session_id"] != session
    assert "plums" not in conversation(model.model_calls[2])


def test_chat_continues_the_session_even_after_a_failed_turn(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # The first message meets a 401; opencode keeps its session all the same,
    # and the second message continues it.
    model.script(Status(401), Reply("You asked me to remember kiwi."))
    env = opencode_env(env, model, record="error", folder=tmp_path)
    result = agentproc(
        "chat", "opencode", env=env, cwd=project, input=b"remember the word kiwi\nwhich word?\n"
    )
    assert result.code == 1, result  # one turn failed
    assert "Incorrect API key provided: sk-e2e." in result.err
    assert_plain(result.err)
    assert "You asked me to remember kiwi." in result.out
    _, second = model.model_calls
    assert "remember the word kiwi" in conversation(second)


def test_a_session_opencode_no_longer_has_starts_afresh_with_a_note(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # The wrapper noted the session's folder, but opencode's store lost it.
    gone = "ses_e2egonesession00000001"
    records = Path(env["HOME"]) / ".agentproc" / "opencode" / "sessions"
    records.mkdir(parents=True, exist_ok=True)
    (records / gone).write_text(str(project.resolve()))
    model.script(Reply("Starting over."))
    env = opencode_env(env, model, record="lost", folder=tmp_path)
    data = run_json(env, project, "hello again", "--session", gone)
    assert data["error"] is None, data
    note, answer = data["reply"].split("\n\n")
    assert note.startswith(f"(The earlier opencode session {gone} could not be found")
    assert answer == "Starting over."
    assert data["session_id"].startswith("ses_") and data["session_id"] != gone


# --- errors --------------------------------------------------------------------------------


def test_a_429_and_a_500_are_retried_with_notes_then_fail_plainly(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(429, headers=RETRY_WAIT), *[Status(500, headers=RETRY_WAIT)] * 5)
    env = opencode_env(env, model, record="retry", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["exit_code"] == 1
    assert data["error"] == (
        "The server had an error while processing your request. Sorry about that!"
    )
    assert len(model.model_calls) == 6  # opencode tries 1 + 5 times
    said = notes(data["partials"])
    assert said[0] == (
        "(retrying: the model server answered: Rate limit reached for requests. "
        "Please try again in 20s, attempt 2)"
    )
    assert said[-1].startswith("(retrying: the model server answered: The server had an error")
    # The last retry may end before the wrapper looks at the log again.
    assert said[-1].endswith(("attempt 5)", "attempt 6)")), said
    assert data["reply"] == ""


def test_an_error_whose_message_is_itself_json_is_unwrapped(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    # A proxy passing on the upstream error as the message: JSON inside JSON.
    upstream = {"error": {"message": "The upstream model is not available", "type": "x"}}
    model.script(Status(400, message=json.dumps(upstream)))
    data = run_json(opencode_env(env, model), project, "hello")
    assert data["exit_code"] == 1
    assert data["error"] == "The upstream model is not available"


def test_a_stream_cut_mid_answer_is_retried_with_a_note(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # A dropped connection carries no retry-after: opencode waits its own 2 s.
    model.script(Cut("This answer is cut"), Reply("The whole answer."))
    env = opencode_env(env, model, record="cut", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["error"] is None, data
    assert data["reply"] == "The whole answer."
    said = notes(data["partials"])
    assert len(said) == 1, data["partials"]
    # Said while opencode waits; or, when its log reached the wrapper only after
    # the retry went through (it can arrive in one piece), said after the answer.
    live = said[0].startswith("(retrying: the model server answered: ")
    late = said[0].startswith("(retried: the model server answered: ")
    # Or the model library retried the cut on its own and opencode logged no error.
    silent = said[0] == (
        "(retried: a model call failed (opencode's log gives no reason); attempt 2 went through)"
    )
    assert live or late or silent, said
    assert said[0].endswith(", attempt 2)" if live else "; attempt 2 went through)"), said
    assert len(model.model_calls) == 2


def test_an_answer_that_never_finishes_is_stopped_after_a_limit(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Every answer ends without a finish reason: opencode 1.18 would ask again
    # about five times a second, for ever.
    model.default = Unfinished("Half an answer and then")
    env = opencode_env(env, model, record="unfinished", folder=tmp_path)
    data = run_json(env, project, "hello")
    assert data["exit_code"] == 1
    assert "without a finish reason" in data["error"]
    assert "stopped after 3 tries" in data["error"]
    assert_plain(data["error"])
    assert 3 <= len(model.model_calls) <= 5
    said = notes(data["partials"])
    assert said[0].startswith("(retrying: the model server's answer ended without a finish")


# --- approvals -----------------------------------------------------------------------------


def test_a_tool_that_needs_approval_is_turned_down_with_a_note(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    command = {"command": "touch made-by-the-tool", "description": "Make a file"}
    model.script(ToolUse("bash", command), Reply("I could not run it."))
    env = opencode_env(env, model, record="rejected", folder=tmp_path)
    data = run_json(env, project, "make a file")
    assert data["error"] is None, data
    assert not (project / "made-by-the-tool").exists()
    assert data["reply"].startswith(
        "(opencode turned down permission requests for: bash (touch made-by-the-tool)."
    )
    assert_plain(data["reply"])
    # opencode ends the turn at a refusal; the model is not asked again.
    assert len(model.model_calls) == 1


# --- no CLI --------------------------------------------------------------------------------


def test_a_missing_cli_says_how_to_install_it(
    model: FakeModel, shared_home: Path, project: Path
) -> None:
    env = opencode_env(base_env(shared_home, with_clis=False), model)
    OPENCODE.check_missing_cli(env, project, "hello")
    assert model.requests == []

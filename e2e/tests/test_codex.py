"""The codex profile against the real Codex CLI and a fake OpenAI Responses API.

Each test runs this checkout's ``agentproc`` (``run`` or ``chat``) on the
bundled profile; the profile's wrapper runs the pinned ``codex``, which talks
to the fake model server on loopback (see codex_setup.py for the two ways it
is pointed there). With E2E_CAPTURE=1 the tests that name a scenario record
the CLI's output for the fast suite (tests/test_profile_codex.py).
"""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path
from typing import Any

from e2e.fakemodel import Cut, FakeModel, Reply, Status, ToolUse

from .codex_setup import BIN_VAR, codex_env
from .common import UUID as THREAD_ID
from .common import Suite
from .conftest import agentproc, base_env

CODEX = Suite(
    "codex",
    cli="codex",
    bin_var=BIN_VAR,
    install="npm install -g @openai/codex",
    leaks=("Stack backtrace",),
    plain_stderr=True,
    conversation_key="input",
)
run_json = CODEX.run_json
assert_plain = CODEX.assert_plain
conversation = CODEX.conversation

#: A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def posts(model: FakeModel) -> list[Any]:
    return [r for r in model.model_calls if r.method == "POST"]


# --- the first turn and its resumption -----------------------------------------------------


def test_first_turn_with_openai_variables_and_the_next_resumes(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    (project / "README.md").write_text("# demo\n")
    (project / "src").mkdir()
    model.script(
        ToolUse("exec_command", {"cmd": "ls"}, text="Looking at the repository."),
        Reply("There is a README.md and a src folder."),
        Reply("Earlier you asked about the files: README.md and src."),
    )
    env = codex_env(
        env, model, openai_vars=True, record={"new": "first", "resume": "resume"}, folder=tmp_path
    )
    first = run_json(env, project, "what is here?")
    assert first["error"] is None, first
    assert first["reply"] == "There is a README.md and a src folder."
    assert first["partials"] == [
        "Looking at the repository.",
        "\n\n",
        "There is a README.md and a src folder.",
    ]
    assert THREAD_ID.match(first["session_id"]), first
    call, after_tool = posts(model)
    # OPENAI_BASE_URL and OPENAI_API_KEY reached Codex through the wrapper.
    assert call.path == "/v1/responses"
    assert call.headers["authorization"] == "Bearer sk-e2e-fake"
    assert call.json["stream"] is True and "what is here?" in conversation(call)
    # The built-in provider asked for a WebSocket first; the fake said no.
    upgrades = [r for r in model.requests if r.headers.get("upgrade") == "websocket"]
    assert upgrades and all(r.method == "GET" for r in upgrades)
    # `ls` ran in the read-only sandbox; its output went back to the model.
    assert "function_call_output" in conversation(after_tool)
    assert "README.md" in conversation(after_tool)

    second = run_json(env, project, "and before?", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["reply"] == "Earlier you asked about the files: README.md and src."
    assert second["session_id"] == first["session_id"]
    earlier = conversation(posts(model)[-1])
    assert "what is here?" in earlier and "There is a README.md" in earlier


def test_chat_resumes_the_conversation_between_two_messages(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    CODEX.check_chat_carries_the_first_turn(model, codex_env(env, model), project)
    assert len(posts(model)) == 2
    # A custom provider without WebSockets: no upgrade was tried.
    assert all(r.method == "POST" for r in model.requests)


def test_a_thread_codex_does_not_have_starts_afresh_with_a_note(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Reply("A fresh start."))
    env = codex_env(env, model, record={"resume": "gone"}, folder=tmp_path)
    never = "01a23449-623c-7ff3-a8ac-000000000000"
    data = run_json(env, project, "hello again", "--session", never)
    assert data["error"] is None, data
    assert "could not be resumed here" in data["reply"], data
    assert data["reply"].endswith("A fresh start.")
    assert THREAD_ID.match(data["session_id"]) and data["session_id"] != never


# --- errors ------------------------------------------------------------------------------


def test_a_refused_key_shows_the_reconnect_then_fails_readably(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(401), Status(401))
    env = codex_env(env, model, record={"new": "error"}, folder=tmp_path)
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "(retrying: the model server answered 401 Unauthorized, attempt 1 of 1)" in result.out
    assert "HTTP 401 Unauthorized): Incorrect API key provided" in result.err, result.err
    assert "CODEX_API_KEY or OPENAI_API_KEY" in result.err
    assert_plain(result.out + result.err)


def test_a_server_error_is_retried_with_notes_then_fails(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # Codex retries the request (request_max_retries) inside each of its
    # stream attempts (stream_max_retries): 2 x 2 calls with one retry each.
    model.script(*[Status(500)] * 4)
    env = codex_env(env, model, record={"new": "retry"}, folder=tmp_path)
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "(reconnecting, attempt 1 of 1: " in result.out, result
    assert "Codex got no answer from the model API" in result.err, result.err
    assert "Send the message again" in result.err
    assert_plain(result.out + result.err)
    assert len(posts(model)) == 4


def test_a_rate_limit_fails_readably(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(429), Status(429))
    env = codex_env(env, model, record={"new": "ratelimit"}, folder=tmp_path)
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "HTTP 429 Too Many Requests" in result.err, result.err
    assert "rate limit" in result.err
    assert_plain(result.out + result.err)


def test_a_stream_cut_mid_answer_is_retried_then_fails(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Cut("The first try stops"), Cut("The second too"))
    env = codex_env(env, model, record={"new": "cut"}, folder=tmp_path)
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "(reconnecting, attempt 1 of 1: stream disconnected" in result.out, result
    assert "stream disconnected before completion" in result.err, result.err
    assert_plain(result.out + result.err)


def test_a_stream_cut_once_is_got_past(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Cut("The first try stops"), Reply("The second try is whole."))
    env = codex_env(env, model, record={"new": "recovered"}, folder=tmp_path)
    data = run_json(env, project, "hi")
    assert data["error"] is None, data
    assert data["reply"] == "The second try is whole."
    streamed = "".join(data["partials"])
    assert streamed.startswith("(reconnecting, attempt 1 of 1: stream disconnected"), streamed
    assert streamed.endswith("\n\nThe second try is whole.")


def test_no_network_is_given_up_on_after_the_stall_limit(
    env: dict[str, str], model: FakeModel, project: Path, tmp_path: Path
) -> None:
    # Nothing listens on this port: Codex retries, then waits for the network
    # without end. The wrapper stops it after CODEX_RECONNECT_STALL_SECS.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = codex_env(
        env,
        model,
        base_url=f"http://127.0.0.1:{port}/v1",
        record={"new": "offline"},
        folder=tmp_path,
    )
    env["CODEX_RECONNECT_STALL_SECS"] = "4"
    started = time.monotonic()
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project, timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 1, result
    assert "(reconnecting: waiting for the network to come back" in result.out, result
    assert "could not reach the model server for 4 s" in result.err, result.err
    assert "OPENAI_BASE_URL" in result.err
    assert_plain(result.out + result.err)


def test_an_option_codex_no_longer_has_is_named(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    env = codex_env(env, model, record={"new": "usage"}, folder=tmp_path)
    env["CODEX_ARGS"] = "--full-auto"
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "unexpected argument '--full-auto' found" in result.err, result.err
    assert "--sandbox workspace-write" in result.err
    assert model.model_calls == []


def test_a_config_codex_cannot_load_is_quoted(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    env = codex_env(env, model, record={"new": "badconfig"}, folder=tmp_path)
    config = Path(env["CODEX_HOME"]) / "config.toml"
    config.write_text(
        config.read_text().replace('model_provider = "fake"', 'model_provider = "nope"')
    )
    result = agentproc("run", "codex", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "Codex exited with code 1: Model provider `nope` not found" in result.err, result.err
    assert_plain(result.err)


def test_a_missing_cli_says_how_to_install_it(home: Path, project: Path) -> None:
    bare = {**base_env(home, with_clis=False), "OPENAI_API_KEY": "x"}
    CODEX.check_missing_cli(bare, project)


# --- attachments and tools ---------------------------------------------------------------


def test_an_image_without_text_is_sent_with_a_prompt(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    model.script(Reply("A single dot."))
    env = codex_env(env, model)
    data = run_json(env, project, "", "--image-url", image.as_uri())
    assert data["error"] is None, data
    assert data["reply"] == "A single dot."
    sent = conversation(posts(model)[0])
    assert "input_image" in sent and "data:image/png;base64," in sent
    assert "without any text" in sent


def test_a_command_the_read_only_sandbox_stops_is_said(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    # `codex exec` never asks for approval: its sandbox (read-only by
    # default) decides, and a refused write comes back as a failed command.
    # (Codex reports a command in its JSON only when it takes a moment: an
    # instant one is run and answered without an item, hence the sleep.)
    model.script(
        ToolUse(
            "exec_command", {"cmd": "sleep 1; touch created.txt"}, text="I will make the file."
        ),
        Reply("The file system is read-only."),
    )
    env = codex_env(env, model, record={"new": "sandbox"}, folder=tmp_path)
    data = run_json(env, project, "make a file")
    assert data["error"] is None, data
    assert not (project / "created.txt").exists()
    answer, note = data["reply"].split("\n\n")
    assert answer == "The file system is read-only."
    assert note.startswith("(Codex's sandbox is read-only here"), note
    assert '--sandbox workspace-write"' in note
    assert "Read-only file system" in conversation(posts(model)[-1])


def test_the_workspace_write_sandbox_lets_the_command_run(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    env = {**codex_env(env, model), "CODEX_ARGS": "--sandbox workspace-write"}
    tool = ToolUse("exec_command", {"cmd": "touch created.txt"}, text="I will make the file.")
    CODEX.check_an_allowed_tool_runs(model, env, project, tool)

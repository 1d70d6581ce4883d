"""The claude-code profile against the real Claude Code CLI and a fake Anthropic API.

Each test runs this checkout's ``agentproc`` (``run`` or ``chat``) on the
bundled profile; the profile's wrapper runs the pinned ``claude`` binary,
which talks to the fake model server on loopback (see claude_setup.py for
how it is pointed there and kept quiet). With E2E_CAPTURE=1 the tests that
name a scenario record the CLI's stdout for the fast suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.fakemodel import Cut, FakeModel, Reply, Status, ToolUse

from .claude_setup import BIN_VAR, claude_env
from .common import UUID as SESSION_ID
from .common import Suite, folders
from .conftest import AGENTPROC, Run, agentproc, base_env

CLAUDE = Suite(
    "claude-code",
    cli="claude",
    bin_var=BIN_VAR,
    install="npm install -g @anthropic-ai/claude-code",
)
run_json = CLAUDE.run_json
assert_plain = CLAUDE.assert_plain
messages_of = CLAUDE.conversation

#: Every request the CLI sends in a turn: a probe, then the model call(s).
PROBE = ("HEAD", "/")
MESSAGES = ("POST", "/v1/messages?beta=true")


def tool_results(request: Any) -> list[dict[str, Any]]:
    found = []
    for message in request.json.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            found += [b for b in content if b.get("type") == "tool_result"]
    return found


# --- the first turn and its resumption -----------------------------------------------------


def test_first_turn_streams_the_answer_and_names_the_session(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    (project / "README.md").write_text("# demo\n")
    model.script(
        ToolUse(
            "Read", {"file_path": str(project / "README.md")}, text="Let me look at the files."
        ),
        Reply("There are two entries: README.md and src.", chunks=2),
    )
    env = claude_env(env, model, record={"new": "first"}, folder=tmp_path)
    data = run_json(env, project, "what is here?")
    assert data["error"] is None, data
    assert data["exit_code"] == 0
    assert data["reply"] == "There are two entries: README.md and src."
    streamed = "".join(data["partials"])
    assert streamed == "Let me look at the files.\n\nThere are two entries: README.md and src."
    assert SESSION_ID.match(data["session_id"]), data
    # What went over the wire: the probe, then one model call per step.
    assert [(r.method, r.path) for r in model.requests] == [PROBE, MESSAGES, MESSAGES]
    first, second = model.model_calls
    assert first.json["stream"] is True
    assert "what is here?" in messages_of(first)
    assert first.headers["x-api-key"] == "sk-ant-e2e-fake"
    # The Read tool needed no approval; its result went back to the model.
    (result,) = tool_results(second)
    assert "# demo" in json.dumps(result)


def test_the_next_turn_resumes_the_session_with_the_first_turns_text(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Reply("Noted: the password is swordfish."), Reply("You told me: swordfish."))
    env = claude_env(env, model, record={"resume": "resume"}, folder=tmp_path)
    first = run_json(env, project, "remember the password swordfish")
    assert first["error"] is None, first
    second = run_json(env, project, "what was the password?", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["reply"] == "You told me: swordfish."
    assert second["session_id"] == first["session_id"]
    earlier = messages_of(model.model_calls[-1])
    assert "remember the password swordfish" in earlier
    assert "Noted: the password is swordfish." in earlier


def test_chat_resumes_the_conversation_between_two_messages(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    CLAUDE.check_chat_carries_the_first_turn(model, claude_env(env, model), project)


def test_a_session_from_another_folder_starts_afresh_with_a_note(
    model: FakeModel, env: dict[str, str], tmp_path: Path
) -> None:
    here, there = folders(tmp_path, "here", "there")
    model.script(Reply("Made in the first folder."), Reply("A fresh start over there."))
    env = claude_env(env, model, record={"resume": "lost"}, folder=tmp_path)
    first = run_json(env, here, "hello from here")
    assert first["error"] is None, first
    # Claude Code keeps sessions per project folder: "there" has no such session.
    second = run_json(env, there, "hello from there", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["exit_code"] == 0
    assert "could not be resumed here" in second["reply"]
    assert second["reply"].endswith("A fresh start over there.")
    assert SESSION_ID.match(second["session_id"])
    assert second["session_id"] != first["session_id"]
    # The next turn there resumes the new session.
    model.script(Reply("Still there."))
    third = run_json(env, there, "again", "--session", second["session_id"])
    assert third["reply"] == "Still there.", third
    assert "hello from there" in messages_of(model.model_calls[-1])


def test_attachments_reach_the_model_as_an_image_block_and_a_file_path(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    import base64

    # A 1x1 PNG, and a text file.
    dot = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    )
    (tmp_path / "dot.png").write_bytes(dot)
    (tmp_path / "notes.txt").write_text("remember the milk")
    model.script(Reply("I see a dot and a note."))
    env = claude_env(env, model)
    data = run_json(
        env,
        project,
        "look at these",
        "--attach",
        (tmp_path / "dot.png").as_uri(),
        "--attach",
        (tmp_path / "notes.txt").as_uri(),
    )
    assert data["error"] is None, data
    (call,) = model.model_calls
    blocks = [b for m in call.json["messages"] if m["role"] == "user" for b in m["content"]]
    images = [b for b in blocks if b.get("type") == "image"]
    assert [i["source"]["media_type"] for i in images] == ["image/png"]
    assert base64.b64decode(images[0]["source"]["data"]) == dot
    texts = " ".join(b.get("text", "") for b in blocks)
    assert "look at these" in texts and "notes.txt (file, text/plain)" in texts


# --- errors ------------------------------------------------------------------------------


def test_a_refused_key_fails_at_once_with_what_to_do(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Status(401))
    env = claude_env(env, model, record={"new": "error"}, folder=tmp_path)
    result = agentproc("run", "claude-code", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    # Claude Code's made-up "assistant" message about the error is not streamed
    # as if it were the answer; the error says what happened and what to do.
    assert result.out == "", result
    assert "HTTP 401" in result.err and "Invalid API key" in result.err, result.err
    assert "ANTHROPIC_API_KEY" in result.err
    assert_plain(result.err)
    assert len(model.model_calls) == 1  # x-should-retry: false stops its retries


def test_a_failed_first_turn_leaves_a_session_the_next_turn_resumes(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    model.script(Status(401), Reply("Now it works."))
    env = claude_env(env, model)
    first = run_json(env, project, "the first message")
    assert first["exit_code"] == 1 and SESSION_ID.match(first["session_id"]), first
    second = run_json(env, project, "the second message", "--session", first["session_id"])
    assert second["error"] is None, second
    assert second["reply"] == "Now it works."  # no note: Claude Code had kept the session
    assert second["session_id"] == first["session_id"]


@pytest.mark.parametrize(
    ("code", "scenario", "words"),
    [
        (500, "retry", "send the message again"),
        (429, "ratelimit", "rate limit"),
        (529, "overloaded", "overloaded"),
    ],
)
def test_a_server_error_shows_the_retry_then_fails_readably(
    model: FakeModel,
    env: dict[str, str],
    project: Path,
    tmp_path: Path,
    code: int,
    scenario: str,
    words: str,
) -> None:
    model.script(Status(code), Status(code))
    env = claude_env(env, model, record={"new": scenario}, folder=tmp_path)
    started = time.monotonic()
    result = agentproc("run", "claude-code", "-m", "hi", env=env, cwd=project)
    assert time.monotonic() - started < 30
    assert result.code == 1, result
    assert f"(retrying: the model server answered {code}, attempt 1 of 1" in result.out, result
    assert f"HTTP {code}" in result.err and words in result.err, result.err
    assert_plain(result.out + result.err)
    assert len(model.model_calls) == 2


def test_a_stream_cut_mid_answer_is_asked_again_and_said_so(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Cut("The first try breaks off in the mid"), Reply("The second try is whole."))
    env = claude_env(env, model, record={"new": "cut"}, folder=tmp_path)
    data = run_json(env, project, "hi")
    assert data["error"] is None, data
    assert data["reply"] == "The second try is whole."
    streamed = "".join(data["partials"])
    assert "(the answer broke off; Claude Code asked the model again)" in streamed, streamed
    assert streamed.endswith("The second try is whole.")
    # Claude Code asks again without streaming after a broken stream.
    assert [r.json.get("stream") for r in model.model_calls] == [True, None]


def test_a_stream_cut_every_time_fails_readably(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    model.script(Cut("Breaks off"), Cut("Breaks off again"))
    env = claude_env(env, model)
    result = agentproc("run", "claude-code", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "Connection to the API was lost" in result.err, result.err
    assert "ANTHROPIC_BASE_URL" in result.err
    assert_plain(result.err)


def test_a_missing_cli_says_how_to_install_it(
    env: dict[str, str], home: Path, project: Path
) -> None:
    bare = {**base_env(home, with_clis=False), "ANTHROPIC_API_KEY": "x"}
    CLAUDE.check_missing_cli(bare, project)


def test_skipping_approvals_as_root_is_explained(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("Claude Code refuses bypassPermissions only as root")
    env = claude_env(env, model, record={"new": "root"}, folder=tmp_path)
    env["CLAUDE_CODE_ARGS"] = "--permission-mode bypassPermissions"
    result = agentproc("run", "claude-code", "-m", "hi", env=env, cwd=project)
    assert result.code == 1, result
    assert "as root" in result.err and "IS_SANDBOX=1" in result.err, result.err
    assert_plain(result.err)
    assert model.model_calls == []


# --- tool approvals ----------------------------------------------------------------------

WRITE_FILE = ToolUse(
    "Bash",
    {"command": "echo approved > approved.txt", "description": "Write approved.txt"},
    text="I will write the file.",
)


def at_terminal(args: list[str], env: dict[str, str], cwd: Path, answer: str) -> Run:
    """Run ``agentproc ARGS`` with a terminal as stdin; answer its question with ``answer``."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [AGENTPROC, *args],
        env=env,
        cwd=cwd,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    out: list[bytes] = []
    err: list[bytes] = []
    asked = threading.Event()

    def read(stream: Any, into: list[bytes], watch: bool) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            into.append(chunk)
            if watch and b"[y/N]" in b"".join(into):
                asked.set()

    readers = [
        threading.Thread(target=read, args=(proc.stdout, out, False), daemon=True),
        threading.Thread(target=read, args=(proc.stderr, err, True), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        if asked.wait(60):
            os.write(master, answer.encode() + b"\n")
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    for reader in readers:
        reader.join(5)
    run = Run(proc.returncode, b"".join(out).decode(), b"".join(err).decode())
    assert "Traceback" not in run.err, run.err
    return run


@pytest.mark.parametrize("allow", [True, False], ids=["allowed", "denied"])
def test_a_tool_that_needs_approval_is_asked_at_the_terminal(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path, allow: bool
) -> None:
    model.script(WRITE_FILE, Reply("Done with the file."))
    scenario = "permission" if allow else "denied"
    env = claude_env(env, model, record={"new": scenario}, folder=tmp_path)
    result = at_terminal(
        ["run", "claude-code", "-m", "write the file"], env, project, "y" if allow else "n"
    )
    assert result.code == 0, result
    assert "Allow Bash" in result.err and "echo approved > approved.txt" in result.err
    assert "Done with the file." in result.out
    assert (project / "approved.txt").exists() == allow
    # The next model call carries the tool's result (or the refusal).
    (tool_result,) = tool_results(model.model_calls[-1])
    assert tool_result["tool_use_id"] == "toolu_fake_0001"
    if allow:
        assert not tool_result.get("is_error"), tool_result
    else:
        assert tool_result["is_error"] is True
        assert "denied by the user at the terminal" in json.dumps(tool_result)


def test_a_tool_is_denied_when_nobody_can_be_asked(
    model: FakeModel, env: dict[str, str], project: Path
) -> None:
    model.script(WRITE_FILE, Reply("I could not write it."))
    env = claude_env(env, model)
    data = run_json(env, project, "write the file")  # stdin is not a terminal
    assert data["error"] is None, data
    assert data["reply"] == "I could not write it."
    assert not (project / "approved.txt").exists()
    (tool_result,) = tool_results(model.model_calls[-1])
    assert tool_result["is_error"] is True
    assert "no terminal to ask" in json.dumps(tool_result)

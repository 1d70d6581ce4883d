"""The bundled profiles for agent CLIs, run for real against fake CLIs.

Each wrapper is started by the bridge exactly as a user would run it
(``run_turn`` on the bundled profile). Instead of the real CLI, a small fake
named like it is first on PATH: it replays a stream recorded in the CLI's
documented output format (``tests/fake_clis/<cli>/<scenario>.jsonl``) and logs
the argv and stdin it got, so the tests can check both directions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from helpers import cli_env
from profile_kit import (
    BUNDLED,
    BY_NAME,
    CASES,
    Case,
    Fakes,
    Loopback,
    after_dashes,
    aider_resumes,
    claude_message,
    llm_turn,
    prompt_option,
    recorded,
    run,
)
from profile_kit import fakes_fixture as fakes_fixture  # the fixture `fakes`

from agentproc import ProtocolError, wrap
from agentproc.wire import Attachment, PermissionDecision, PermissionRequest
from bridge.turn.bundled import BUNDLED_DIR, list_bundled, resolve_profile_arg
from bridge.turn.errors import ProfileNotFoundError
from bridge.turn.launch import build_plan
from bridge.turn.machine import TurnResult
from bridge.turn.profile import load_profile
from bridge.turn.request import TurnRequest


def check_session(case: Case, result: TurnResult) -> None:
    assert result.session_captured, result
    if case.session:
        assert result.session_id == case.session
    else:
        assert len(result.session_id) == 32, result.session_id


# --- every CLI profile ---------------------------------------------------------------------

each = pytest.mark.parametrize("case", CASES, ids=[c.profile for c in CASES])


@each
def test_first_turn_streams_and_names_the_session(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, "what is here?")
    assert result.error is None, (result.error, result.stderr)
    assert result.exit_code == 0
    assert result.reply == case.reply
    assert result.partials == case.partials
    check_session(case, result)
    entry = fakes.last()
    assert case.message_in(entry).startswith("what is here?")
    assert entry["cwd"] == str(fakes.bin.parent)
    if case.session:
        assert not any(case.session in arg for arg in entry["argv"])


@each
def test_resumed_turn_uses_the_clis_resume_option(case: Case, fakes: Fakes) -> None:
    session = case.session or "a-session-of-my-own"
    result = run(case, fakes, "and before?", scenario="resume", session_id=session)
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == case.resume_reply
    assert result.session_id == session
    assert case.resumes(fakes.last()["argv"], session), fakes.last()["argv"]


@each
def test_an_error_event_fails_the_turn_with_its_message(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, scenario="error")
    assert result.exit_code == 1
    assert result.error is not None and case.error in result.error, result.error
    if case.extra.get("session_on_error", True):
        # The session named before the error still counts.
        check_session(case, result)
    else:
        assert not result.session_captured, result


@each
def test_streaming_off_sends_the_whole_answer_as_the_reply(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, streaming=False)
    assert result.error is None, (result.error, result.stderr)
    assert result.partials == []
    assert result.reply == case.reply
    check_session(case, result)


@each
def test_a_missing_cli_is_reported_with_an_install_hint(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, on_path=False)
    assert result.error is not None
    if load_profile(BUNDLED / case.profile).requires:
        # The profile names its CLI: the bridge says so before starting the wrapper.
        assert result.exit_code == 127, result
        assert f"needs {case.cli}" in result.error and case.install in result.hint, result
    else:
        assert result.exit_code == 1
        assert "not installed" in result.error and case.install in result.error, result.error
    assert "Traceback" not in result.stderr


@each
def test_a_flood_on_stderr_does_not_stall_the_turn(case: Case, fakes: Fakes) -> None:
    started = time.monotonic()
    result = run(case, fakes, scenario="stderr")
    assert result.error is None, result.error
    assert result.reply == case.reply
    assert time.monotonic() - started < 20


@each
def test_a_non_zero_exit_fails_with_the_end_of_stderr(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, scenario="exit")
    assert result.exit_code == 1
    assert result.error is not None
    assert "exited with code 3" in result.error, result.error
    assert "boom: the model is unavailable" in result.error, result.error


@each
def test_a_message_that_looks_like_an_option_stays_the_message(case: Case, fakes: Fakes) -> None:
    result = run(case, fakes, "--help me")
    assert result.error is None, (result.error, result.stderr)
    assert case.message_in(fakes.last()).startswith("--help me")


# --- Claude Code -------------------------------------------------------------------------------

CLAUDE = BY_NAME["claude-code"]


def test_claude_gets_the_message_as_stream_json_and_stdin_is_closed_after_the_result(
    fakes: Fakes,
) -> None:
    run(CLAUDE, fakes, "hello")
    entry = fakes.last()
    argv = entry["argv"]
    for option in ("--print", "--verbose", "--include-partial-messages"):
        assert option in argv
    assert argv[argv.index("--output-format") + 1] == "stream-json"
    assert argv[argv.index("--input-format") + 1] == "stream-json"
    kinds = [m["type"] for m in entry["stdin_lines"]]
    assert kinds == ["control_request", "user"]
    assert claude_message(entry) == "hello"


def test_claude_without_streaming_does_not_ask_for_token_events(fakes: Fakes) -> None:
    run(CLAUDE, fakes, streaming=False)
    assert "--include-partial-messages" not in fakes.last()["argv"]


def test_claude_falls_back_to_the_streamed_text_without_a_result(fakes: Fakes) -> None:
    result = run(CLAUDE, fakes, scenario="nofinal")
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == "Half an answer, then nothing."


@pytest.mark.parametrize("allow", [True, False])
def test_claude_tool_approvals_are_asked_in_the_chat(fakes: Fakes, allow: bool) -> None:
    asked: list[PermissionRequest] = []

    def decide(request: PermissionRequest) -> PermissionDecision:
        asked.append(request)
        return PermissionDecision(allow, None, "" if allow else "not today")

    result = run(CLAUDE, fakes, scenario="permission", on_permission=decide)
    assert result.error is None, (result.error, result.stderr)
    assert [r.tool for r in asked] == ["Bash"]
    command = {"command": "echo approved > approved.txt", "description": "Write approved.txt"}
    assert asked[0].input == command
    entry = fakes.last()
    assert "--permission-prompt-tool" in entry["argv"]
    (response,) = entry["responses"]
    assert response["type"] == "control_response"
    inner = response["response"]
    assert inner["subtype"] == "success"
    asked_id = next(
        e["request_id"]
        for e in recorded("claude", "permission")
        if e.get("type") == "control_request"
    )
    assert inner["request_id"] == asked_id
    if allow:
        assert inner["response"] == {"behavior": "allow", "updatedInput": command}
    else:
        assert inner["response"] == {"behavior": "deny", "message": "not today"}


def test_claude_gets_images_as_content_blocks_and_other_files_as_paths(
    fakes: Fakes, tmp_path: Path
) -> None:
    png = tmp_path / "cat.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    attachments = (
        Attachment("image", png.as_uri(), "cat.png", "image/png"),
        Attachment("file", notes.as_uri(), "notes.txt", "text/plain"),
    )
    result = run(CLAUDE, fakes, "look", attachments=attachments)
    assert result.error is None, (result.error, result.stderr)
    entry = fakes.last()
    user = next(m for m in entry["stdin_lines"] if m["type"] == "user")
    image, text = user["message"]["content"]
    assert image["type"] == "image"
    assert image["source"]["media_type"] == "image/png"
    assert text["text"].startswith("look\n\nAttached files")
    assert "notes.txt (file, text/plain)" in text["text"]
    assert any(arg.startswith("--add-dir=") for arg in entry["argv"])


def test_extra_options_and_another_executable_come_from_the_environment(
    fakes: Fakes, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "tools"
    elsewhere.mkdir()
    (fakes.bin / "claude").rename(elsewhere / "my-claude")
    result = run(
        CLAUDE,
        fakes,
        env={
            "CLAUDE_CODE_BIN": str(elsewhere / "my-claude"),
            "CLAUDE_CODE_ARGS": "--model 'opus 4'",
        },
    )
    assert result.error is None, (result.error, result.stderr)
    argv = fakes.last()["argv"]
    assert argv[argv.index("--model") + 1] == "opus 4"


# --- bundling, names and the `profiles` commands ------------------------------------------

AGENTPROC = str(Path(sys.executable).parent / "agentproc")
ALL_PROFILES = ["echo", "llm", *(case.profile for case in CASES)]


def cli(
    *args: str | Path, cwd: Path | None = None, path: str | None = None
) -> tuple[int, str, str]:
    env = cli_env()
    if path is not None:
        env["PATH"] = path
    proc = subprocess.run(
        [AGENTPROC, *map(str, args)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
        timeout=30,
        check=False,
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def test_every_bundled_profile_is_complete_and_named_after_its_folder() -> None:
    found = {b.name: b for b in list_bundled()}
    assert sorted(found) == sorted(ALL_PROFILES)
    for name, bundled in found.items():
        assert bundled.load().name == name
        assert bundled.description
        assert (bundled.folder / "README.md").is_file(), name
        assert (bundled.folder / "agent.py").is_file(), name
        assert bundled.folder.parent == BUNDLED_DIR


def test_every_bundled_profile_passes_validate() -> None:
    code, out, err = cli("validate", *ALL_PROFILES)
    assert code == 0, err
    assert out.splitlines() == [f"ok: {name} ({name})" for name in ALL_PROFILES]


def test_a_path_wins_over_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_profile_arg("echo") == (BUNDLED_DIR / "echo" / "profile.yaml", True)
    (tmp_path / "echo").mkdir()
    assert resolve_profile_arg("echo") == (Path("echo"), False)


@pytest.mark.parametrize(
    ("arg", "message", "guess"),
    [
        ("ecko", "no bundled profile named 'ecko'", "did you mean 'echo'?"),
        ("claude", "no bundled profile named 'claude'", "did you mean 'claude-code'?"),
        ("./nowhere/profile.yaml", "no such profile file or folder", ""),
    ],
)
def test_an_unknown_name_lists_the_bundled_ones(arg: str, message: str, guess: str) -> None:
    with pytest.raises(ProfileNotFoundError) as info:
        resolve_profile_arg(arg)
    assert message in info.value.message
    assert guess in info.value.hint
    assert "codex, cursor-agent, echo" in info.value.hint


def test_run_takes_a_bundled_name(tmp_path: Path) -> None:
    code, out, err = cli("run", "echo", "-m", "hi", cwd=tmp_path)
    assert (code, out, err) == (0, "You said: hi\n", "")


def test_run_of_an_unknown_name_says_what_there_is(tmp_path: Path) -> None:
    code, _, err = cli("run", "ecko", "-m", "hi", cwd=tmp_path)
    assert code == 2
    assert "no bundled profile named 'ecko'" in err and "did you mean 'echo'?" in err


def test_a_named_profile_runs_in_the_callers_directory(fakes: Fakes, tmp_path: Path) -> None:
    here = tmp_path / "project"
    here.mkdir()
    path = f"{fakes.bin}{os.pathsep}{os.environ.get('PATH', '')}"
    log = f"--env=FAKE_CLI_LOG={fakes.log}"
    code, out, err = cli("run", "claude-code", "-m", "hi", log, cwd=here, path=path)
    assert code == 0, err
    assert out.endswith("There are two entries: README.md and src.\n")
    assert fakes.last()["cwd"] == str(here)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, err = cli(
        "run", "claude-code", "-m", "hi", log, "--cwd", elsewhere, cwd=here, path=path
    )
    assert code == 0, err
    assert fakes.last()["cwd"] == str(elsewhere)


def test_profiles_list_shows_every_name_with_its_description() -> None:
    code, out, err = cli("profiles", "list")
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(ALL_PROFILES)
    assert "[coding, cli, anthropic]" in out
    code, out, _ = cli("profiles", "list", "--json")
    data = json.loads(out)
    assert [d["name"] for d in data] == sorted(ALL_PROFILES)
    assert all(Path(d["path"]).is_file() for d in data)


def test_profiles_show_prints_the_profile_and_its_readme() -> None:
    code, out, _ = cli("profiles", "show", "echo")
    assert code == 0
    assert out.startswith(f"# {BUNDLED_DIR / 'echo' / 'profile.yaml'}\n")
    assert 'command: "{{PYTHON}} {{PROFILE_DIR}}/agent.py"' in out
    code, out, _ = cli("profiles", "show", "echo", "--readme")
    assert code == 0 and out.startswith("# echo")
    code, _, err = cli("profiles", "show", "nope")
    assert code == 2 and "echo" in err


def test_profiles_init_copies_a_profile_out_to_edit(tmp_path: Path) -> None:
    code, out, err = cli("profiles", "init", "echo", cwd=tmp_path)
    assert code == 0, err
    copy = tmp_path / "echo"
    assert sorted(p.name for p in copy.iterdir()) == sorted(
        p.name for p in (BUNDLED_DIR / "echo").iterdir() if p.name != "__pycache__"
    )
    assert os.access(copy / "agent.sh", os.X_OK)
    (copy / "agent.py").write_text(
        'from agentproc import create_profile\ncreate_profile(lambda ctx: "edited")\n'
    )
    code, out, _ = cli("run", copy, "-m", "hi")
    assert (code, out) == (0, "edited\n")
    # Into a folder of its own choosing; never over something that exists.
    code, _, err = cli("profiles", "init", "claude-code", tmp_path / "mine")
    assert code == 0, err
    assert (tmp_path / "mine" / "profile.yaml").is_file()
    code, _, err = cli("profiles", "init", "echo", copy)
    assert code == 2 and "already exists" in err


# --- Codex -------------------------------------------------------------------------------------

CODEX = BY_NAME["codex"]


def test_codex_reads_the_prompt_from_stdin(fakes: Fakes) -> None:
    run(CODEX, fakes, "hello")
    argv = fakes.last()["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-1] == "-"
    assert "hello" not in argv


def test_codex_survives_an_error_it_recovers_from(fakes: Fakes) -> None:
    result = run(CODEX, fakes, scenario="recovered")
    assert result.error is None, (result.error, result.stderr)
    assert result.reply == "The second try is whole."


def test_codex_reports_its_last_error_when_it_exits_without_a_turn_result(fakes: Fakes) -> None:
    result = run(CODEX, fakes, scenario="offline")  # killed while it waited for the network
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.startswith(
        "Codex got no answer from the model API: Connection failed: error sending request"
    )


def test_codex_gets_images_as_image_options(fakes: Fakes, tmp_path: Path) -> None:
    png = tmp_path / "a, b.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    result = run(CODEX, fakes, "see", attachments=(Attachment("image", png.as_uri()),))
    assert result.error is None, (result.error, result.stderr)
    images = [a for a in fakes.last()["argv"] if a.startswith("--image=")]
    assert len(images) == 1 and images[0].endswith("-a__b.png")


# --- Gemini CLI --------------------------------------------------------------------------------

GEMINI = BY_NAME["gemini-cli"]


def test_gemini_says_what_its_exit_code_means(fakes: Fakes) -> None:
    result = run(GEMINI, fakes, scenario="auth")
    assert result.exit_code == 1
    assert result.error is not None
    assert "Gemini CLI exited with code 41 (it could not authenticate" in result.error
    assert "Invalid auth method selected." in result.error
    assert result.partials == []


def test_gemini_reads_attachments_from_an_included_folder(fakes: Fakes, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    result = run(GEMINI, fakes, "read it", attachments=(Attachment("file", notes.as_uri()),))
    assert result.error is None, (result.error, result.stderr)
    entry = fakes.last()
    (include,) = [a for a in entry["argv"] if a.startswith("--include-directories=")]
    folder = include.split("=", 1)[1]
    assert f"{folder}/1-notes.txt (file, text/plain)" in prompt_option(entry)
    assert not Path(folder).exists()  # removed when the turn ended


# --- opencode ----------------------------------------------------------------------------------

OPENCODE = BY_NAME["opencode"]


def test_opencode_gets_the_message_on_stdin_and_files_as_options(
    fakes: Fakes, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    result = run(OPENCODE, fakes, "read it", attachments=(Attachment("file", notes.as_uri()),))
    assert result.error is None, (result.error, result.stderr)
    entry = fakes.last()
    assert entry["argv"][:2] == ["run", "--format=json"]
    (file_option,) = [a for a in entry["argv"] if a.startswith("--file=")]
    assert file_option.endswith("/1-notes.txt")
    assert entry["stdin"] == "read it"


def test_opencode_says_which_permissions_it_turned_down(fakes: Fakes) -> None:
    result = run(OPENCODE, fakes, scenario="rejected")
    assert result.error is None, (result.error, result.stderr)
    # opencode 1.18 ends the turn at the refusal: the note is all there is.
    assert result.reply.startswith(
        "(opencode turned down permission requests for: bash (touch made-by-the-tool)."
    )
    assert "".join(result.partials).strip() == result.reply


# --- Cursor Agent ------------------------------------------------------------------------------

CURSOR = BY_NAME["cursor-agent"]


def test_cursor_says_plainly_that_it_cannot_take_attachments(fakes: Fakes, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    result = run(CURSOR, fakes, "read it", attachments=(Attachment("file", notes.as_uri()),))
    assert result.error is None, (result.error, result.stderr)
    assert result.reply.startswith("(Cursor Agent cannot take attachments directly")
    note = result.reply.split("\n\n")[0]
    assert result.partials == [f"{note}\n\n", *CURSOR.partials]
    message = after_dashes(fakes.last())
    assert message.startswith("read it\n\nAttached files") and "1-notes.txt" in message


# --- aider -------------------------------------------------------------------------------------

AIDER = BY_NAME["aider"]


def test_aider_keeps_one_history_per_conversation(fakes: Fakes) -> None:
    first = run(AIDER, fakes, "what is here?")
    assert first.error is None, (first.error, first.stderr)
    entry = fakes.last()
    assert "--stream" in entry["argv"] and entry["argv"][0] == "--no-pretty"
    assert entry["message_file"] == "what is here?"
    history = Path(fakes.bin.parent, ".agentproc", "aider", f"{first.session_id}.chat.md")
    assert history.is_file()
    # The next turn of the same conversation restores it, and its answer is read
    # from what this turn added, not from the earlier answer.
    second = run(AIDER, fakes, "and before?", scenario="resume", session_id=first.session_id)
    assert second.reply == AIDER.resume_reply
    assert aider_resumes(fakes.last()["argv"], first.session_id)
    third = run(AIDER, fakes, scenario="error", session_id=first.session_id)
    assert third.exit_code == 1 and third.reply == ""


def test_aider_without_streaming_asks_for_none(fakes: Fakes) -> None:
    run(AIDER, fakes, streaming=False)
    assert "--no-stream" in fakes.last()["argv"]


# --- llm: a real HTTP server on loopback -------------------------------------------------------


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 that records requests and answers
    with ``reply`` (split into ``chunks`` when streaming), or with ``status`` and
    ``error`` when that is set."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.chunks = ["Hel", "lo!"]
        self.status = 200
        self.error: dict[str, Any] | None = None
        self.error_chunk = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if server.status != 200:
                    self.answer(server.status, "application/json", json.dumps(server.error))
                elif body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
                    for piece in server.chunks:
                        self.event({"choices": [{"index": 0, "delta": {"content": piece}}]})
                    if server.error_chunk:
                        self.event({"error": {"message": "the model fell over"}})
                    self.event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    self.wfile.write(b"data: [DONE]\n\n")
                else:
                    message = {"role": "assistant", "content": "".join(server.chunks)}
                    data = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
                    self.answer(200, "application/json", json.dumps(data))

            def event(self, data: dict[str, Any]) -> None:
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m"}
                self.wfile.write(f"data: {json.dumps({**base, **data})}\n\n".encode())
                self.wfile.flush()

            def answer(self, status: int, kind: str, text: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

        self.loopback = Loopback(Handler)
        self.url = f"{self.loopback.url}/v1"

    def close(self) -> None:
        self.loopback.close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    try:
        yield server
    finally:
        server.close()


def llm(server: ChatServer, tmp_path: Path, message: str = "hi", **options: Any) -> TurnResult:
    """One turn of the llm profile, configured through the bridge's environment."""
    settings = {"LLM_MODEL": "test-model", "LLM_API_KEY": "sk-test", "NOT_ALLOWED": "secret"}
    return llm_turn(server.url, tmp_path, message, **{**settings, **options})


def test_llm_streams_and_keeps_the_conversation(chat_server: ChatServer, tmp_path: Path) -> None:
    first = llm(chat_server, tmp_path, "hi", LLM_SYSTEM_PROMPT="Be brief.")
    assert first.error is None, (first.error, first.stderr)
    assert first.partials == ["Hel", "lo!"]
    assert first.reply == "Hello!"
    assert first.session_captured and len(first.session_id) == 32
    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "test-model",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
    }
    chat_server.chunks = ["You said ", "hi."]
    second = llm(chat_server, tmp_path, "what did I say?", session_id=first.session_id)
    assert second.reply == "You said hi."
    assert second.session_id == first.session_id
    assert chat_server.requests[1]["body"]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "what did I say?"},
    ]
    history = tmp_path / "agentproc" / "sessions" / f"{first.session_id}.jsonl"
    assert len(history.read_text().splitlines()) == 4


def test_llm_without_streaming_asks_for_one_answer(chat_server: ChatServer, tmp_path: Path) -> None:
    result = llm(chat_server, tmp_path, streaming=False)
    assert result.error is None, (result.error, result.stderr)
    assert result.partials == [] and result.reply == "Hello!"
    assert chat_server.requests[0]["body"]["stream"] is False


def test_llm_reports_the_servers_error(chat_server: ChatServer, tmp_path: Path) -> None:
    chat_server.status = 401
    chat_server.error = {"error": {"message": "Incorrect API key provided", "type": "auth"}}
    result = llm(chat_server, tmp_path)
    assert result.exit_code == 1
    assert result.error == (
        "the model server answered 401 Unauthorized: Incorrect API key provided"
    )
    assert not (tmp_path / "agentproc" / "sessions").exists()  # nothing kept of a failed turn


def test_llm_reports_an_error_in_the_stream(chat_server: ChatServer, tmp_path: Path) -> None:
    chat_server.error_chunk = True
    result = llm(chat_server, tmp_path)
    assert result.error == "the model fell over"
    assert result.partials == ["Hel", "lo!"]


def test_llm_says_what_is_missing(chat_server: ChatServer, tmp_path: Path) -> None:
    result = llm(chat_server, tmp_path, LLM_MODEL="")
    assert result.error is not None and result.error.startswith("set LLM_MODEL")
    chat_server.close()
    result = llm(chat_server, tmp_path)
    assert result.error is not None
    assert result.error.startswith(f"cannot reach the model server at {chat_server.url}")


def test_llm_sends_images_and_says_what_it_cannot_send(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    png = tmp_path / "cat.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    attachments = (
        Attachment("image", png.as_uri(), "cat.png", "image/png"),
        Attachment("image", "https://example.org/dog.jpg"),
        Attachment("file", "https://example.org/report.pdf", "report.pdf"),
    )
    result = llm(chat_server, tmp_path, "look", attachments=attachments)
    assert result.error is None, (result.error, result.stderr)
    note = "(This agent can only pass images to the model; not sent: report.pdf.)"
    assert result.reply == f"{note}\n\nHello!"
    text, inline, web = chat_server.requests[0]["body"]["messages"][-1]["content"]
    assert text == {"type": "text", "text": "look"}
    assert inline["image_url"]["url"].startswith("data:image/png;base64,")
    assert web == {"type": "image_url", "image_url": {"url": "https://example.org/dog.jpg"}}


def test_llm_gets_only_the_variables_its_profile_allows(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    plan = build_plan(
        load_profile(BUNDLED_DIR / "llm"),
        TurnRequest("hi"),
        environ={"LLM_MODEL": "m", "OPENAI_API_KEY": "k", "NOT_ALLOWED": "secret"},
    )
    assert plan.env["LLM_MODEL"] == "m" and plan.env["OPENAI_API_KEY"] == "k"
    assert "NOT_ALLOWED" not in plan.env


# --- agentproc.wrap: attachments over HTTP -----------------------------------------------------


def test_wrap_downloads_attachments_and_refuses_what_it_cannot_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "report.pdf").write_bytes(b"%PDF-1.4 fake")

    class Files(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

    folder = tmp_path / "copies"
    folder.mkdir()
    with Loopback(Files) as server:
        base = server.url
        (copy,) = wrap.fetch_attachments([Attachment("file", f"{base}/report.pdf")], str(folder))
        assert Path(copy.path).read_bytes() == b"%PDF-1.4 fake"
        assert copy.mime_type == "application/pdf" and copy.path.endswith("/1-report.pdf")
        with pytest.raises(ProtocolError, match=r"cannot fetch the attachment .*/gone\.pdf"):
            wrap.fetch_attachments([Attachment("file", f"{base}/gone.pdf")], str(folder))
        with pytest.raises(ProtocolError, match="only http, https and file URLs"):
            wrap.fetch_attachments([Attachment("file", "ftp://example.org/x")], str(folder))
        monkeypatch.setattr(wrap, "MAX_ATTACHMENT_BYTES", 4)
        with pytest.raises(ProtocolError, match="larger than"):
            wrap.fetch_attachments([Attachment("file", f"{base}/report.pdf")], str(folder))

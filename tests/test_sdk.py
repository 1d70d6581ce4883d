"""The agent SDK against the protocol: real agent processes, read the way the bridge reads.

Most cases run tests/agents/sdk_cases.py as a subprocess with the turn's
environment built by ``wire.turn_env`` and frame its stdout with
``wire.LineFramer``, so what is checked is what a bridge would see. The
in-process ``Agent.invoke()`` test kit is covered at the end.
"""

from __future__ import annotations

import asyncio
import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import base_env, read_line, sdk_agent, sdk_env

from agentproc import (
    AgentResult,
    Attachment,
    Context,
    ProtocolError,
    create_profile,
    load_history,
    wire,
)
from agentproc._sdk import Agent

AGENTS = Path(__file__).parent / "agents"
REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def frame(data: bytes) -> list[str]:
    framer = wire.LineFramer()
    return framer.feed(data) + framer.close()


class Run:
    """One finished agent process."""

    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.lines = frame(proc.stdout)

    def kinds(self) -> list[str]:
        return [wire.classify(line)[0] for line in self.lines]

    def body(self) -> str:
        return "\n".join(p for k, p in map(wire.classify, self.lines) if k == wire.BODY)


def run_agent(
    script: str = "sdk_cases.py",
    *,
    case: str | None = None,
    message: str | None = "hi",
    turn: bool = True,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    args: tuple[str, ...] = (),
    **turn_kwargs: object,
) -> Run:
    """Run an agent script once. ``turn=False`` leaves every AGENT_* variable unset."""
    environ = sdk_env(message, **turn_kwargs) if turn else base_env()
    if case is not None:
        environ["SDK_CASE"] = case
    environ.update(env or {})
    proc = subprocess.run(
        [PYTHON, *args, str(AGENTS / script)],
        input=stdin,
        capture_output=True,
        env=environ,
        timeout=20,
    )
    return Run(proc)


# --- return values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "lines", "code"),
    [
        ("reply_str", ["You said: hi"], 0),
        ("reply_none", [], 0),
        ("reply_empty", [], 0),
        ("reply_result", [wire.session_line("sess-1"), "ok"], 0),
        ("reply_result_padded", [wire.session_line("sess-2"), "ok"], 0),
        ("reply_result_no_body", [wire.session_line("sess-3")], 0),
        ("reply_result_empty_id", ["ok"], 0),
        ("reply_int", [], 1),
        (
            "partials_and_print",
            [wire.partial_line("one"), "printed by the handler", wire.partial_line("two"), "body"],
            0,
        ),
        (
            "send_error_continues",
            [
                wire.partial_line("before"),
                wire.error_line("went wrong"),
                wire.partial_line("after"),
                wire.session_line("sess-e"),
                "body",
            ],
            1,
        ),
        ("protocol_error", [wire.partial_line("working"), wire.error_line("cannot do that")], 1),
        ("crash", [], 1),
        (
            "async_handler",
            [wire.partial_line("not awaited"), wire.partial_line("awaited"), "async done"],
            0,
        ),
        ("async_result", [wire.session_line("sess-a"), "async ok"], 0),
        ("async_crash", [], 1),
        (
            "async_protocol_error",
            [wire.partial_line("working"), wire.error_line("async refusal")],
            1,
        ),
        ("interrupt", [], 130),
        ("exit_code", [], 3),
    ],
)
def test_handler_outcomes(case: str, lines: list[str], code: int) -> None:
    run = run_agent(case=case)
    assert run.lines == lines
    assert run.code == code
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("case", "stderr"),
    [
        ("reply_int", "agentproc: the handler returned int; return a str"),
        ("crash", "agentproc: handler failed: ValueError: boom"),
        ("async_crash", "agentproc: handler failed: ValueError: async boom"),
        ("reply_result_invalid", "agentproc: ignoring invalid session id '../evil id'"),
    ],
)
def test_stderr_says_what_went_wrong(case: str, stderr: str) -> None:
    run = run_agent(case=case)
    assert run.stderr.startswith(stderr)
    assert len(run.stderr.strip().splitlines()) == 1, "one short line, no traceback"


def test_invalid_session_id_never_reaches_stdout() -> None:
    run = run_agent(case="reply_result_invalid")
    assert run.lines == ["ok"]
    assert run.code == 0
    assert b"evil" not in run.stdout


def test_empty_session_id_is_no_session_and_no_warning() -> None:
    run = run_agent(case="reply_result_empty_id", session_id="")
    assert run.lines == ["ok"]
    assert run.stderr == ""


def test_traceback_only_with_debug() -> None:
    quiet = run_agent(case="crash")
    assert "Traceback" not in quiet.stderr
    assert wire.ENV_DEBUG in quiet.stderr, "the one-liner says how to see more"
    loud = run_agent(case="crash", env={wire.ENV_DEBUG: "1"})
    assert "Traceback (most recent call last)" in loud.stderr
    assert 'raise ValueError("boom")' in loud.stderr
    assert loud.code == 1
    assert loud.lines == []


# --- body rendering ------------------------------------------------------------------

FORGED = "\n".join(
    [
        wire.PREFIX_SESSION + "evil",
        wire.PREFIX_ERROR + '"forged error"',
        wire.PREFIX_PARTIAL + '"forged partial"',
        wire.PREFIX_PERMISSION_REQUEST + '{"tool": "Bash"}',
        " " + wire.PREFIX_SESSION + "already body",
        "AGENT_OTHER: not a prefix",
        "plain",
    ]
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("one line", id="single"),
        pytest.param("first\nsecond\nthird", id="multi"),
        pytest.param("a\n\n\nb", id="blank-lines-kept"),
        pytest.param("\nleading and trailing\n", id="edge-newlines"),
        pytest.param("héllo → 世界 🎉\nñ", id="unicode"),
        pytest.param("ends in cr\r\nnext", id="carriage-return"),
        pytest.param(FORGED, id="forged-protocol-lines"),
        pytest.param("x" * 100_000, id="long-line"),
    ],
)
def test_body_reads_back_as_the_reply(text: str) -> None:
    run = run_agent(case="reply_text", env={"SDK_TEXT": text})
    assert run.code == 0
    for line in run.lines:
        assert wire.classify(line)[0] == wire.BODY, line
    reply = "\n".join(line.removeprefix(wire.BODY_GUARD) for line in run.lines)
    assert reply == text
    assert run.stdout.endswith(b"\n"), "the last line ends with a newline"


def test_forged_lines_get_the_guard_and_nothing_else() -> None:
    run = run_agent(case="reply_text", env={"SDK_TEXT": FORGED})
    guarded = [line for line in run.lines if line.startswith(wire.BODY_GUARD)]
    assert len(guarded) == 4
    assert run.lines[4:] == FORGED.split("\n")[4:]


def test_unencodable_text_does_not_crash() -> None:
    run = run_agent(case="reply_surrogate")
    assert run.code == 0
    assert run.lines == ["lone ? surrogate"]


def test_non_utf8_message_comes_back_byte_for_byte() -> None:
    environ = {k.encode(): v.encode() for k, v in base_env().items()}
    environ.update({k.encode(): v.encode() for k, v in wire.turn_env("").items()})
    environ[wire.ENV_MESSAGE.encode()] = b"caf\xe9 \xff"
    environ[b"SDK_CASE"] = b"reply_str"
    proc = subprocess.run(
        [PYTHON, str(AGENTS / "sdk_cases.py")], capture_output=True, env=environ, timeout=20
    )
    assert proc.returncode == 0
    assert proc.stdout == b"You said: caf\xe9 \xff\n"


# --- streaming off -----------------------------------------------------------------


def test_streaming_off_turns_partials_into_the_reply() -> None:
    run = run_agent(case="partials_only", streaming=False)
    assert run.lines == ["Hello"]
    assert run.code == 0


def test_streaming_off_drops_partials_when_there_is_a_reply() -> None:
    run = run_agent(case="partials_then_reply", streaming=False)
    assert run.lines == ["final"]


def test_streaming_off_still_writes_errors() -> None:
    run = run_agent(case="send_error_continues", streaming=False)
    assert run.lines == [wire.error_line("went wrong"), wire.session_line("sess-e"), "body"]
    assert run.code == 1


def test_streaming_on_writes_partials_and_no_body() -> None:
    run = run_agent(case="partials_only")
    assert run.lines == [wire.partial_line("Hel"), wire.partial_line("lo")]


# --- the context ---------------------------------------------------------------------


def test_context_defaults_without_any_agent_variable() -> None:
    run = run_agent(case="dump_ctx", turn=False)
    assert run.code == 0
    assert json.loads(run.body()) == {
        "message": "",
        "session_id": "",
        "session_name": "default",
        "from_user": "",
        "streaming": True,
        "protocol_version": "",
        "image_url": "",
        "file_url": "",
        "attachments": [],
        "permission": False,
    }


def test_context_reads_every_turn_variable() -> None:
    attachments = [
        Attachment("image", "https://x/cat.png", "cat.png", "image/png"),
        Attachment("file", "https://x/doc.pdf"),
    ]
    run = run_agent(
        case="dump_ctx",
        message="hello there",
        session_id="abc-123",
        session_name="work",
        from_user="ana",
        streaming=False,
        attachments=attachments,
        permission=True,
    )
    assert json.loads(run.body()) == {
        "message": "hello there",
        "session_id": "abc-123",
        "session_name": "work",
        "from_user": "ana",
        "streaming": False,
        "protocol_version": wire.PROTOCOL_VERSION,
        "image_url": "https://x/cat.png",
        "file_url": "https://x/doc.pdf",
        "attachments": [a.to_dict() for a in attachments],
        "permission": True,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '[{"type": "audio", "url": "u1", "name": "a.ogg"}]',
            [{"type": "audio", "url": "u1", "name": "a.ogg"}],
        ),
        ("not json", []),
        ('{"type": "image", "url": "u"}', []),
        ("", []),
        (
            '[{"type": "image", "url": "u1"}, {"type": "bogus", "url": "u2"}, 7,'
            ' {"type": "file"}, {"type": "video", "url": "u3", "mime_type": 5},'
            ' {"type": "video", "url": "u4", "mime_type": "video/mp4"}]',
            [
                {"type": "image", "url": "u1"},
                {"type": "video", "url": "u4", "mime_type": "video/mp4"},
            ],
        ),
    ],
    ids=["valid", "invalid-json", "not-a-list", "empty", "partly-invalid"],
)
def test_attachments_parsing(raw: str, expected: list[dict[str, str]]) -> None:
    run = run_agent(case="dump_ctx", env={wire.ENV_ATTACHMENTS: raw})
    assert run.code == 0
    assert json.loads(run.body())["attachments"] == expected


def test_message_too_large_for_the_environment_is_read_from_stdin() -> None:
    run = run_agent(case="reply_str", message=None, stdin="big message ✓".encode())
    assert run.lines == ["You said: big message ✓"]


def test_flag_says_the_message_is_on_stdin() -> None:
    """The bridge sets AGENT_MESSAGE_ON_STDIN=1 when the message did not fit the
    environment; the SDK then reads stdin, with or without AGENT_MESSAGE."""
    run = run_agent(case="reply_str", message=None, stdin=b"from stdin")
    assert run.lines == ["You said: from stdin"]
    # The flag wins over a stale AGENT_MESSAGE.
    run = run_agent(
        case="reply_str",
        env={wire.ENV_MESSAGE_ON_STDIN: "1", wire.ENV_MESSAGE: "stale"},
        stdin=b"fresh",
    )
    assert run.lines == ["You said: fresh"]
    # By hand: `AGENT_MESSAGE_ON_STDIN=1 python3 agent.py < message.txt`.
    run = run_agent(
        case="reply_str", turn=False, env={wire.ENV_MESSAGE_ON_STDIN: "1"}, stdin=b"typed"
    )
    assert run.lines == ["You said: typed"]


@pytest.mark.parametrize("flag", ["0", "", "yes"])
def test_only_flag_1_reads_stdin(flag: str) -> None:
    run = run_agent(
        case="reply_str", turn=False, env={wire.ENV_MESSAGE_ON_STDIN: flag}, stdin=b"not read"
    )
    assert run.lines == ["You said: "]


def test_stdin_is_not_read_for_the_message_when_run_by_hand() -> None:
    run = run_agent(case="reply_str", turn=False, stdin=b"should not be read")
    assert run.lines == ["You said: "]


def test_agent_is_testable_by_hand() -> None:
    """``AGENT_MESSAGE=hi python3 agent.py`` with nothing else set."""
    run = run_agent("sdk_echo.py", turn=False, env={wire.ENV_MESSAGE: "hi"})
    assert (run.code, run.lines, run.stderr) == (0, ["You said: hi"], "")


# --- permission -------------------------------------------------------------------------


def response(
    request_id: str, allow: bool, updated_input: object = None, message: str = ""
) -> bytes:
    payload = {"id": request_id, "allow": allow, "updated_input": updated_input, "message": message}
    return (wire.permission_response_line(payload) + "\n").encode()


def requests_in(run: Run) -> list[wire.PermissionRequest]:
    out = []
    for line in run.lines:
        kind, payload = wire.classify(line)
        if kind == wire.PERMISSION_REQUEST:
            out.append(wire.PermissionRequest.from_payload(payload, "?"))
    return out


def test_permission_requests_are_written_in_order_with_ids() -> None:
    run = run_agent(case="permission", permission=True, stdin=response("1", True) * 2)
    requests = requests_in(run)
    assert [(r.id, r.tool, r.input, r.description) for r in requests] == [
        ("1", "Bash", {"cmd": "ls"}, "list files"),
        ("2", "Write", {"path": "notes.txt"}, ""),
    ]
    # On the wire: the reference's field names first, the short ones after.
    payloads = [
        json.loads(p) for k, p in map(wire.classify, run.lines) if k == "permission_request"
    ]
    assert payloads == [
        {
            "request_id": "1",
            "tool_name": "Bash",
            "input": {"cmd": "ls"},
            "description": "list files",
            "id": "1",
            "tool": "Bash",
        },
        {
            "request_id": "2",
            "tool_name": "Write",
            "input": {"path": "notes.txt"},
            "id": "2",
            "tool": "Write",
        },
    ]


ALLOW = {"allow": True, "updated_input": None, "message": ""}


def eof_denial() -> dict[str, object]:
    return {
        "allow": False,
        "updated_input": None,
        "message": "no permission response: stdin was closed before an answer came",
    }


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        pytest.param(response("1", True) + response("2", True), [ALLOW, ALLOW], id="allow"),
        pytest.param(
            response("1", False, message="not today")
            + response("2", True, {"path": "safe.txt"}, "renamed"),
            [
                {"allow": False, "updated_input": None, "message": "not today"},
                {"allow": True, "updated_input": {"path": "safe.txt"}, "message": "renamed"},
            ],
            id="deny-and-updated-input",
        ),
        pytest.param(b"", [eof_denial(), eof_denial()], id="eof"),
        pytest.param(response("1", True), [ALLOW, eof_denial()], id="eof-after-one"),
        pytest.param(
            b"hello\n" + response("2", True),
            [
                {
                    "allow": False,
                    "updated_input": None,
                    "message": "unreadable permission response: expected a line starting with "
                    + wire.PREFIX_PERMISSION_RESPONSE,
                },
                ALLOW,
            ],
            id="garbage-line",
        ),
        pytest.param(
            (wire.PREFIX_PERMISSION_RESPONSE + "{nope\r\n").encode() + response("2", True),
            [
                {
                    "allow": False,
                    "updated_input": None,
                    "message": "unreadable permission response",
                },
                ALLOW,
            ],
            id="invalid-json",
        ),
        pytest.param(
            (wire.PREFIX_PERMISSION_RESPONSE + '{"allow": "yes"}\n').encode() + response("2", True),
            [
                {
                    "allow": False,
                    "updated_input": None,
                    "message": "unreadable permission response: 'allow' must be true or false, "
                    'not "yes"',
                },
                ALLOW,
            ],
            id="allow-must-be-true",
        ),
    ],
)
def test_permission_answers(stdin: bytes, expected: list[dict[str, object]]) -> None:
    run = run_agent(case="permission", permission=True, stdin=stdin)
    assert run.code == 0
    assert len(requests_in(run)) == 2
    assert json.loads(run.lines[-1]) == expected


def test_permission_channel_off_denies_without_writing() -> None:
    run = run_agent(case="permission", permission=False, stdin=response("1", True) * 2)
    assert requests_in(run) == []
    decisions = json.loads(run.body())
    assert [d["allow"] for d in decisions] == [False, False]
    assert "permission: true" in decisions[0]["message"]


def test_permission_request_carries_the_tool_use_id() -> None:
    stdin = (
        wire.PREFIX_PERMISSION_RESPONSE
        + json.dumps({"request_id": "1", "behavior": "allow", "updated_input": {"file": "b.py"}})
        + "\n"
    ).encode()
    run = run_agent(case="permission_tool_use_id", permission=True, stdin=stdin)
    (request,) = requests_in(run)
    assert (request.tool, request.tool_use_id, request.input) == (
        "Edit",
        "toolu_01",
        {"file": "a.py"},
    )
    assert json.loads(run.lines[-1]) == [
        {"allow": True, "updated_input": {"file": "b.py"}, "message": ""}
    ]


def test_permission_input_must_be_a_mapping() -> None:
    run = run_agent(case="permission_bad_input", permission=True)
    assert run.code == 1
    assert requests_in(run) == []
    assert "TypeError: request_permission input must be a dict" in run.stderr


def test_permission_works_with_await() -> None:
    run = run_agent(
        case="permission_async", permission=True, stdin=response("1", False, message="no")
    )
    assert json.loads(run.lines[-1]) == [{"allow": False, "updated_input": None, "message": "no"}]


def test_permission_waits_for_each_answer() -> None:
    """The bridge's side of the dialogue: a request, then its answer, one at a time."""
    with sdk_agent("permission", sdk_env(permission=True)) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        first = read_line(proc)
        assert first[0] == wire.PERMISSION_REQUEST
        assert wire.PermissionRequest.from_payload(first[1], "?").id == "1"
        proc.stdin.write(response("1", True))
        proc.stdin.flush()
        second = read_line(proc)
        assert wire.PermissionRequest.from_payload(second[1], "?").id == "2"
        proc.stdin.write(response("2", False, message="no"))
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=10) == 0
    assert [d["allow"] for d in json.loads(rest)] == [True, False]


# --- lifecycle ----------------------------------------------------------------------------


def test_sigterm_exits_promptly_with_143_keeping_output() -> None:
    environ = sdk_env()
    environ.pop("PYTHONUNBUFFERED", None)  # the handler's print() must really be buffered
    with sdk_agent("sleep", environ, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 10)
        assert ready, "the agent never got to its sleep"
        assert proc.stderr.readline() == b"ready\n"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        elapsed = time.monotonic() - start
        out = proc.stdout.read()
    assert code == 143
    assert elapsed < 2
    assert frame(out) == [wire.partial_line("started"), "pending"]


def test_main_module_runs_and_import_does_not() -> None:
    ran = run_agent("sdk_echo.py", message="ping")
    assert ran.lines == ["You said: ping"]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sdk_echo, sdk_decorator; "
        "print('imported', sdk_decorator.LOADED, type(sdk_decorator.handle).__name__)"
    )
    environ = sdk_env("ping")
    proc = subprocess.run(
        [PYTHON, "-c", code, str(AGENTS)], capture_output=True, env=environ, timeout=20
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"imported True Agent\n"


def test_decorator_form_runs_as_a_script_and_with_dash_m() -> None:
    assert run_agent("sdk_decorator.py", message="a").lines == ["decorated: a"]
    environ = sdk_env("b")
    proc = subprocess.run(
        [PYTHON, "-m", "sdk_decorator"],
        capture_output=True,
        env=environ,
        cwd=AGENTS,
        timeout=20,
    )
    assert (proc.returncode, proc.stdout) == (0, b"decorated: b\n")


# --- import cost ----------------------------------------------------------------------------

#: Kept out of ``import agentproc``: each costs an agent start-up time on every turn.
HEAVY = {"asyncio", "inspect", "dataclasses", "typing", "json", "re", "enum", "pathlib"}
#: Also kept out on purpose (imported only when a feature needs them).
ALSO_LAZY = {"signal", "threading", "traceback", "datetime", "fcntl", "contextlib"}


def imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env or base_env(),
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


@pytest.mark.parametrize("site", [True, False], ids=["with-site", "no-site"])
def test_import_is_cheap(site: bool) -> None:
    """``-S`` matters: site (and an editable install's finder) loads re, enum,
    pathlib itself, which would hide our own imports of them."""
    flags = [] if site else ["-S"]
    ours = imported([*flags, "-c", "import agentproc"]) - imported([*flags, "-c", "pass"])
    heavy = {name for name in ours if name.split(".")[0] in HEAVY | ALSO_LAZY}
    assert heavy == set()
    assert "agentproc._sdk" in ours or not site


def test_a_plain_turn_stays_cheap() -> None:
    """A sync agent returning a str runs its whole turn without json, enum or asyncio."""
    env = {**sdk_env(), "PYTHONPATH": str(REPO)}
    script = str(AGENTS / "sdk_echo.py")
    ours = imported(["-S", script], env) - imported(["-S", "-c", "pass"], env)
    assert {n.split(".")[0] for n in ours} & (HEAVY | {"signal", "threading"}) == set()


# --- the in-process test kit -------------------------------------------------------------


def test_invoke_captures_what_a_bridge_would_read() -> None:
    def handle(ctx: Context) -> AgentResult:
        ctx.send_partial("thinking")
        print("from print")
        return AgentResult(f"echo {ctx.message}\n" + wire.PREFIX_ERROR + "x", session_id="s-9")

    result = create_profile(handle).invoke("hey")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.lines == [
        wire.partial_line("thinking"),
        "from print",
        wire.session_line("s-9"),
        "echo hey",
        wire.BODY_GUARD + wire.PREFIX_ERROR + "x",
    ]
    assert result.partials == ["thinking"]
    assert result.session_id == "s-9"
    assert result.errors == []
    assert result.body == "from print\necho hey\n" + wire.BODY_GUARD + wire.PREFIX_ERROR + "x"
    assert result.stdout.endswith(b"x\n")


def test_invoke_passes_the_turn_and_profile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(wire.ENV_SESSION_ID, "stale-from-the-test-process")
    seen: list[Context] = []
    agent = create_profile(seen.append)
    result = agent.invoke(
        "m",
        session_id="",
        session_name="n",
        from_user="u",
        streaming=False,
        attachments=[Attachment("image", "https://x/i.png")],
        env={"MY_TOKEN": "t"},
    )
    assert (result.exit_code, result.lines) == (0, [])
    ctx = seen[0]
    assert (ctx.message, ctx.session_id, ctx.session_name, ctx.from_user) == ("m", "", "n", "u")
    assert ctx.streaming is False
    assert ctx.image_url == "https://x/i.png"
    assert ctx.attachments == [Attachment("image", "https://x/i.png")]
    assert ctx.environ["MY_TOKEN"] == "t"


def test_invoke_errors_and_exceptions() -> None:
    def fails(ctx: Context) -> str:
        ctx.send_error("first")
        raise ProtocolError("second")

    result = create_profile(fails).invoke()
    assert result.errors == ["first", "second"]
    assert result.exit_code == 1

    def crashes(ctx: Context) -> str:
        raise RuntimeError("multi\nline   message")

    result = create_profile(crashes).invoke()
    assert result.lines == []
    assert result.stderr.startswith("agentproc: handler failed: RuntimeError: multi line message")


def test_invoke_permission_with_stdin() -> None:
    def asks(ctx: Context) -> str:
        decision = ctx.request_permission("Bash", {"cmd": "ls"})
        return f"{decision.allow} {decision.updated_input}"

    agent = create_profile(asks)
    allowed = agent.invoke(permission=True, stdin=response("1", True, {"cmd": "ls -a"}))
    assert allowed.lines[-1] == "True {'cmd': 'ls -a'}"
    assert agent.invoke(permission=True).lines[-1] == "False None"
    assert agent.invoke(stdin=response("1", True)).lines == ["False None"]


def test_invoke_restores_the_process_streams() -> None:
    before = sys.stdin, sys.stdout, sys.stderr

    def handle(ctx: Context) -> str:
        raise KeyboardInterrupt

    assert create_profile(handle).invoke().exit_code == 130
    assert (sys.stdin, sys.stdout, sys.stderr) == before


def test_invoke_async_handler_inside_a_running_loop() -> None:
    async def handle(ctx: Context) -> str:
        await ctx.send_partial("p")
        await asyncio.sleep(0)
        return "done"

    agent = create_profile(handle)

    async def test_body() -> list[str]:
        return agent.invoke().lines

    assert asyncio.run(test_body()) == [wire.partial_line("p"), "done"]


def test_send_methods_are_awaitable_no_ops() -> None:
    ctx = Context(wire.turn_env("x", streaming=False))

    async def use() -> None:
        assert await ctx.send_partial("a") is None
        ctx.send_partial("b")

    asyncio.run(use())
    assert ctx._buffered == ["a", "b"]
    assert ctx.error_sent is False


def test_agent_and_result_basics() -> None:
    def handle(ctx: Context) -> str:
        return "direct"

    agent = create_profile(handle)
    assert isinstance(agent, Agent)
    assert agent(Context({})) == "direct", "the decorated function stays callable"
    assert "handle" in repr(agent)
    with pytest.raises(TypeError):
        create_profile("not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AgentResult(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AgentResult("x", session_id=7)  # type: ignore[arg-type]
    assert AgentResult("a", "b") == AgentResult("a", session_id="b")
    assert AgentResult("a") != AgentResult("a", "b")
    assert ProtocolError("why").message == "why"
    with pytest.raises(ValueError):
        Context(wire.turn_env("x", permission=True)).request_permission("")
    with pytest.raises(TypeError, match="tool_use_id must be a str"):
        Context(wire.turn_env("x", permission=True)).request_permission(
            "Bash",
            tool_use_id=5,  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError, match="input must be a dict"):
        Context(wire.turn_env("x", permission=True)).request_permission("Bash", "ls")  # type: ignore[arg-type]


def test_send_session_writes_at_once_and_refuses_invalid_ids() -> None:
    from agentproc import create_profile

    def handle(ctx):  # type: ignore[no-untyped-def]
        ctx.send_session("early-1")
        ctx.send_session("bad/id")
        return "done"

    inv = create_profile(handle).invoke("hi")
    assert inv.lines[0] == "AGENT_SESSION:early-1"
    assert "bad/id" not in "".join(inv.lines) and "bad/id" in inv.stderr
    assert inv.session_id == "early-1" and inv.exit_code == 0


# --- the README's SDK examples, as a reader would run them --------------------------------


def readme_block(section: str, index: int = 0) -> str:
    """The ``index``-th python code block under the README heading ``section``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```python\n")[index + 1].split("```", 1)[0]


def test_readme_sdk_example_counts_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    from bridge import load_profile, run_turn

    (tmp_path / "agent.py").write_text(readme_block("The SDK in a few lines"), encoding="utf-8")
    (tmp_path / "profile.yaml").write_text('command: "{{PYTHON}} {{PROFILE_DIR}}/agent.py"\n')
    profile = load_profile(tmp_path)
    # HOME, not AGENTPROC_HOME: the bridge passes the infra variables only.
    environ = {**base_env(), "HOME": str(tmp_path / "home")}
    session, replies = "", []
    for message in ["one", "two", "three", "four"]:
        result = anyio.run(
            lambda m=message, s=session: run_turn(profile, m, session_id=s, environ=environ)
        )
        assert result.error is None, result
        session = result.session_id
        replies.append(result.reply)
    assert replies == ["Turn 1: one", "Turn 2: two", "Turn 3: three", "Turn 4: four"]
    monkeypatch.setenv(wire.ENV_HOME, str(tmp_path / "home" / ".agentproc"))
    entries = [(e.role, e.content) for e in load_history(session)]
    assert entries[:2] == [("user", "one"), ("assistant", "Turn 1: one")]
    assert len(entries) == 8


def test_readme_test_it_by_hand_line_works(tmp_path: Path) -> None:
    """The README's `AGENT_MESSAGE=hello .venv/bin/python agent.py`, from the project folder."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`AGENT_MESSAGE=hello .venv/bin/python agent.py`" in text
    agent = tmp_path / "agent.py"
    agent.write_text(readme_block("The smallest agent"), encoding="utf-8")
    venv_python = REPO / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("no .venv here (the tests run from another environment)")
    env = {**base_env(), wire.ENV_MESSAGE: "hello"}
    done = subprocess.run(
        [str(venv_python), str(agent)], env=env, cwd=REPO, capture_output=True, timeout=20
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"You said: hello\n", b"")

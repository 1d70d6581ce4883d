"""Interop with the reference implementation of wire 0.2.

Permission frames in both shapes (the wire tables, a reference-style agent
under this bridge, an SDK agent answered the way the reference bridge answers),
and reference-format profiles run for real and converted with
``agentproc profiles import``. History files are covered in test_history.py.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import yaml
from helpers import cli, read_line, sdk_agent, sdk_env

from agentproc import wire
from agentproc.wire import PermissionDecision, PermissionRequest
from bridge import TurnResult, load_profile, run_turn

PYTHON = sys.executable


def run(path: Path, message: str = "go", **kw: object) -> TurnResult:
    profile = load_profile(path)
    return anyio.run(lambda: run_turn(profile, message, **kw))  # type: ignore[arg-type]


# --- requests: either field names --------------------------------------------------------

REQUESTS = [
    pytest.param(
        {
            "request_id": "r1",
            "tool_name": "Bash",
            "input": {"command": "ls"},
            "description": "list",
            "tool_use_id": "toolu_9",
        },
        ("r1", "Bash", {"command": "ls"}, "list", "toolu_9"),
        id="reference-names",
    ),
    pytest.param({"id": "r1", "tool": "Bash"}, ("r1", "Bash", {}, "", ""), id="short-names"),
    pytest.param(
        {"request_id": "long", "id": "short", "tool_name": "Long", "tool": "Short"},
        ("long", "Long", {}, "", ""),
        id="both-reference-wins",
    ),
    pytest.param(
        {"request_id": "", "id": "short", "tool_name": "", "tool": "Short"},
        ("short", "Short", {}, "", ""),
        id="empty-reference-name-falls-back",
    ),
    pytest.param({"tool_name": "Bash"}, ("7", "Bash", {}, "", ""), id="no-id-uses-position"),
    pytest.param(
        {"request_id": 12, "tool_name": "Bash", "input": None, "description": None},
        ("12", "Bash", {}, "", ""),
        id="number-id-and-nulls",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), REQUESTS)
def test_request_fields(payload: dict[str, object], expected: tuple[object, ...]) -> None:
    request = PermissionRequest.from_payload(json.dumps(payload), "7")
    got = (request.id, request.tool, request.input, request.description, request.tool_use_id)
    assert got == expected
    assert (request.request_id, request.tool_name) == (request.id, request.tool)


BAD_REQUESTS = [
    ("not json", "permission request is not valid JSON"),
    ("[1]", "permission request must be a JSON object"),
    ('"Bash"', "permission request must be a JSON object"),
    ('{"input": {}}', "needs a non-empty string 'tool_name' (or 'tool')"),
    ('{"tool_name": 5}', "needs a non-empty string 'tool_name' (or 'tool')"),
    ('{"tool": ""}', "needs a non-empty string 'tool_name' (or 'tool')"),
    ('{"tool_name": "B", "input": [1]}', "'input' must be a JSON object"),
    ('{"tool_name": "B", "request_id": {"a": 1}}', "'request_id' must be a string"),
    ('{"tool_name": "B", "request_id": true}', "'request_id' must be a string"),
    ('{"tool_name": "B", "tool_use_id": 5}', "'tool_use_id' must be a string"),
    ("[" * 100_000, "permission request is not valid JSON"),
]


@pytest.mark.parametrize(("raw", "words"), BAD_REQUESTS, ids=[w for _, w in BAD_REQUESTS])
def test_unreadable_requests_say_what_is_wrong(raw: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        PermissionRequest.from_payload(raw, "1")


def test_request_is_written_with_both_names() -> None:
    request = PermissionRequest("3", "Edit", {"file": "a.py"}, "edit a.py", "toolu_3")
    assert request.to_dict() == {
        "request_id": "3",
        "tool_name": "Edit",
        "input": {"file": "a.py"},
        "description": "edit a.py",
        "tool_use_id": "toolu_3",
        "id": "3",
        "tool": "Edit",
    }
    again = PermissionRequest.from_payload(json.dumps(request.to_dict()), "?")
    assert again.to_dict() == request.to_dict()
    bare = PermissionRequest("4", "Read").to_dict()
    assert bare == {"request_id": "4", "tool_name": "Read", "input": {}, "id": "4", "tool": "Read"}


# --- responses: either answer shape ------------------------------------------------------


def test_response_carries_both_answer_shapes() -> None:
    deny = PermissionDecision(False, None, "not today").to_response("r1")
    assert deny == {
        "request_id": "r1",
        "behavior": "deny",
        "message": "not today",
        "id": "r1",
        "allow": False,
    }
    allow = PermissionDecision(True, {"command": "ls -l"}).to_response("r2")
    assert allow == {
        "request_id": "r2",
        "behavior": "allow",
        "updated_input": {"command": "ls -l"},
        "message": "",
        "id": "r2",
        "allow": True,
    }
    line = wire.permission_response_line(allow)
    assert PermissionDecision.from_payload(line.split(":", 1)[1]).allow is True


DECISIONS = [
    pytest.param({"request_id": "1", "behavior": "allow"}, (True, None, ""), id="behavior-allow"),
    pytest.param(
        {"request_id": "1", "behavior": "deny", "message": "no"},
        (False, None, "no"),
        id="behavior-deny",
    ),
    pytest.param(
        {"behavior": "allow", "updated_input": {"a": 1}},
        (True, {"a": 1}, ""),
        id="behavior-updated-input",
    ),
    pytest.param(
        {"id": "1", "allow": True, "updated_input": None, "message": ""},
        (True, None, ""),
        id="short-allow",
    ),
    pytest.param({"id": "1", "allow": False, "message": "x"}, (False, None, "x"), id="short-deny"),
    pytest.param({"behavior": "allow", "allow": True}, (True, None, ""), id="both-allow"),
    pytest.param({"behavior": "deny", "allow": False}, (False, None, ""), id="both-deny"),
    pytest.param(
        {"behavior": "deny", "updated_input": {"a": 1}},
        (False, None, ""),
        id="denial-drops-updated-input",
    ),
    pytest.param(
        {"behavior": "allow", "message": None, "updated_input": [1]},
        (True, None, ""),
        id="null-message-and-bad-updated-input",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), DECISIONS)
def test_either_answer_shape_is_read(
    payload: dict[str, object], expected: tuple[object, ...]
) -> None:
    decision = PermissionDecision.from_payload(json.dumps(payload))
    assert (decision.allow, decision.updated_input, decision.message) == expected
    assert decision.behavior == ("allow" if expected[0] else "deny")


BAD_DECISIONS = [
    ('{"behavior": "allow", "allow": false}', "'behavior' and 'allow' disagree"),
    ('{"behavior": "deny", "allow": true}', "'behavior' and 'allow' disagree"),
    ('{"behavior": "ask"}', '\'behavior\' must be "allow" or "deny", not "ask"'),
    ('{"behavior": "ALLOW"}', '\'behavior\' must be "allow" or "deny", not "ALLOW"'),
    ('{"behavior": true}', '\'behavior\' must be "allow" or "deny", not true'),
    ('{"allow": "yes"}', "'allow' must be true or false, not \"yes\""),
    ('{"allow": 1}', "'allow' must be true or false, not 1"),
    ('{"request_id": "1", "message": "ok"}', "it has neither 'behavior' nor 'allow'"),
    ("[]", "not a JSON object"),
    ("nope", "unreadable permission response"),
    ("", "unreadable permission response"),
    ("[" * 100_000, "unreadable permission response"),
]


@pytest.mark.parametrize(("raw", "words"), BAD_DECISIONS, ids=[r[:30] for r, _ in BAD_DECISIONS])
def test_unclear_answers_deny_and_say_why(raw: str, words: str) -> None:
    decision = PermissionDecision.from_payload(raw)
    assert decision.allow is False and decision.updated_input is None
    assert decision.message.startswith("unreadable permission response")
    assert words in decision.message


# --- a reference-style agent under this bridge -------------------------------------------


def test_reference_style_agent_gets_behavior(py_agent: Callable[..., Path]) -> None:
    asked: list[tuple[str, str, dict[str, object], str, str]] = []

    def on_permission(req: PermissionRequest) -> PermissionDecision:
        asked.append((req.id, req.tool, req.input, req.description, req.tool_use_id))
        if req.tool == "Bash":
            return PermissionDecision(True, {"command": "ls -l"})
        return PermissionDecision(False, None, "not this one")

    path = py_agent("reference_permission.py", permission=True, env={"ASK_TOOLS": "Bash,Write"})
    r = run(path, on_permission=on_permission)
    assert (r.error, r.exit_code, r.warnings) == (None, 0, [])
    assert asked == [
        ("req-1", "Bash", {"command": "step 1"}, "the first step", "toolu_1"),
        ("req-2", "Write", {"command": "step 2"}, "", "toolu_2"),
    ]
    assert r.reply.splitlines() == [
        "req-1 behavior=allow command=ls -l message=",
        "req-2 behavior=deny command=step 2 message=not this one",
    ]


def test_reference_style_agent_is_denied_with_nobody_to_ask(py_agent: Callable[..., Path]) -> None:
    r = run(py_agent("reference_permission.py", permission=True))
    assert r.exit_code == 0
    assert r.reply.startswith("req-1 behavior=deny command=step 1 message=no one to ask")


def test_reference_style_agent_is_denied_at_the_permission_deadline(
    py_agent: Callable[..., Path],
) -> None:
    async def slow(req: PermissionRequest) -> bool:
        await anyio.sleep(30)
        return True

    path = py_agent("reference_permission.py", permission=True, permission_timeout_secs=0.3)
    r = run(path, on_permission=slow)
    assert r.reply == "req-1 behavior=deny command=step 1 message=denied: no answer within 0.3 s"


# --- an SDK agent answered the way the reference bridge answers ---------------------------


def test_sdk_agent_reads_reference_answers() -> None:
    """The test plays the reference bridge: it reads each request by the reference's
    field names and answers with those only (no id, no allow)."""
    answers = [
        {"request_id": None, "behavior": "allow", "updated_input": {"cmd": "ls -a"}},
        {"request_id": None, "behavior": "deny", "message": "not now"},
    ]
    seen = []
    with sdk_agent("permission", sdk_env(permission=True)) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for answer in answers:
            kind, payload = read_line(proc)
            assert kind == wire.PERMISSION_REQUEST
            request = json.loads(payload)
            seen.append((request["request_id"], request["tool_name"], request["input"]))
            answer["request_id"] = request["request_id"]
            proc.stdin.write((wire.PREFIX_PERMISSION_RESPONSE + json.dumps(answer) + "\n").encode())
            proc.stdin.flush()
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=10) == 0
    assert seen == [("1", "Bash", {"cmd": "ls"}), ("2", "Write", {"path": "notes.txt"})]
    assert json.loads(rest) == [
        {"allow": True, "updated_input": {"cmd": "ls -a"}, "message": ""},
        {"allow": False, "updated_input": None, "message": "not now"},
    ]


def test_sdk_agent_under_this_bridge_round_trip(py_agent: Callable[..., Path]) -> None:
    """Our bridge and our SDK: the request's tool_use_id reaches the handler."""
    seen: list[PermissionRequest] = []

    def allow(req: PermissionRequest) -> bool:
        seen.append(req)
        return True

    path = py_agent("sdk_cases.py", permission=True, env={"SDK_CASE": "permission_tool_use_id"})
    r = run(path, on_permission=allow)
    assert r.exit_code == 0, r
    assert [(q.tool, q.tool_use_id) for q in seen] == [("Edit", "toolu_01")]
    assert json.loads(r.reply) == [{"allow": True, "updated_input": None, "message": ""}]


# --- reference-format profiles, run for real ----------------------------------------------

ECHO_AGENT = """\
import os, sys
print("You said: " + os.environ.get("AGENT_MESSAGE", ""))
print("cwd: " + os.getcwd())
print("token: " + os.environ.get("TOKEN", ""))
sys.stderr.write("a line on stderr\\n")
"""


def reference_folder(tmp_path: Path, block: str, top: str = "", agent: str = ECHO_AGENT) -> Path:
    folder = tmp_path / "ref-agent"
    folder.mkdir()
    (folder / "bridge.py").write_text(agent, encoding="utf-8")
    text = (
        "name: ref-echo\n"
        "description: echoes, the reference way\n"
        "version: 0.3\n"
        "cli: none\n"
        f"{top}"
        "agentproc:\n" + textwrap.indent(textwrap.dedent(block), "  ") + "tested: official\n"
    )
    (folder / "profile.yaml").write_text(text, encoding="utf-8")
    return folder


def test_reference_profile_runs_with_its_semantics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = reference_folder(
        tmp_path,
        f"""\
        command: {PYTHON} {{{{PROFILE_DIR}}}}/bridge.py
        streaming: false
        env_inherit: minimal
        include_stderr_in_reply: true
        env:
          TOKEN: "${{REF_TOKEN}}"
        """,
    )
    elsewhere = tmp_path / "project"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("REF_TOKEN", "t0k")
    r = run(folder, "hello")
    assert (r.error, r.exit_code) == (None, 0)
    assert r.reply.splitlines() == [
        "You said: hello",
        f"cwd: {elsewhere}",  # no cwd: the bridge's current directory, as in the reference
        "token: t0k",  # ${REF_TOKEN} is named by the file, so it is allowed
        "--- stderr ---",
        "a line on stderr",
    ]
    assert len(r.warnings) == 1
    assert r.warnings[0] == (
        f"{folder / 'profile.yaml'}:3: ignored top-level keys this bridge does not use: "
        "version (line 3), cli (line 4), tested (line 12)"
    )


def test_include_stderr_in_reply_keeps_the_streamed_text_and_the_cap(
    make_profile: Callable[..., Path],
) -> None:
    script = (
        "echo 'AGENT_PARTIAL:\"streamed \"'; echo 'AGENT_PARTIAL:\"text\"'; echo warn-1 >&2; "
        "echo warn-2 >&2"
    )
    path = make_profile("", command="/bin/sh", args=["-c", script], include_stderr_in_reply=True)
    r = run(path)
    assert r.reply == "streamed text\n--- stderr ---\nwarn-1\nwarn-2"
    assert r.partials == ["streamed ", "text"]
    capped = make_profile(
        "",
        command="/bin/sh",
        args=["-c", "echo body; echo 0123456789 >&2"],
        include_stderr_in_reply=True,
        max_reply_chars=22,
        truncation_suffix="…",
    )
    r = run(capped)
    assert r.reply == "body\n--- stderr ---\n01…"
    assert r.truncated


@pytest.mark.parametrize(
    ("script", "reply"),
    [
        ("echo ok", "ok"),  # nothing on stderr: nothing added
        ("echo ok; echo '  ' >&2", "ok"),  # only blanks on stderr
    ],
)
def test_include_stderr_in_reply_adds_nothing_without_stderr(
    make_profile: Callable[..., Path], script: str, reply: str
) -> None:
    r = run(make_profile("", command="/bin/sh", args=["-c", script], include_stderr_in_reply=True))
    assert r.reply == reply


def test_include_stderr_in_reply_leaves_a_failed_turn_alone(
    make_profile: Callable[..., Path],
) -> None:
    path = make_profile(
        "",
        command="/bin/sh",
        args=["-c", "echo partial; echo boom >&2; exit 3"],
        include_stderr_in_reply=True,
    )
    r = run(path)
    assert r.exit_code == 3 and r.reply == "partial"
    assert r.error is not None and "boom" in r.error


# --- agentproc profiles import -------------------------------------------------------------


def test_import_writes_a_native_profile_that_runs_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = reference_folder(
        tmp_path,
        f"""\
        command: {PYTHON}
        args: ["{{{{PROFILE_DIR}}}}/bridge.py"]
        cwd: .
        timeout_secs: 60
        send_error_reply: true
        env:
          TOKEN: "${{REF_TOKEN}}"
        """,
    )
    monkeypatch.setenv("REF_TOKEN", "t0k")
    work = tmp_path / "work"
    work.mkdir()
    done = cli("profiles", "import", folder / "profile.yaml", cwd=work)
    assert done.code == 0, done.err
    target = work / "ref-echo" / "profile.yaml"
    assert done.out.splitlines() == [
        f"imported {folder / 'profile.yaml'} to ref-echo/profile.yaml",
        "run it: agentproc run ref-echo -m 'hello'",
    ]
    assert "note: " in done.err and "version (line 3)" in done.err
    written = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert written == {
        "name": "ref-echo",
        "description": "echoes, the reference way",
        "command": PYTHON,
        "args": [f"{folder}/bridge.py"],  # {{PROFILE_DIR}} pointed at the source
        "cwd": str(folder),
        "env": {"TOKEN": "${REF_TOKEN}"},
        "env_allowlist": ["REF_TOKEN"],
        "timeout_secs": 60,
    }
    assert target.read_text(encoding="utf-8").startswith("# Converted by `agentproc profiles")
    native = load_profile(target)
    assert not native.is_reference_format and native.load_warnings == ()
    assert run(native.source or target, "hi").reply == run(folder, "hi").reply
    assert run(target, "hi").reply.splitlines()[0] == "You said: hi"


def test_import_into_the_same_folder_keeps_profile_dir(tmp_path: Path) -> None:
    folder = reference_folder(tmp_path, "command: python3 {{PROFILE_DIR}}/bridge.py\n")
    done = cli("profiles", "import", folder, folder / "native.yaml")
    assert done.code == 0, done.err
    written = yaml.safe_load((folder / "native.yaml").read_text(encoding="utf-8"))
    assert written["command"] == "python3 {{PROFILE_DIR}}/bridge.py"
    assert written["timeout_secs"] == 1800  # left out: the reference's default
    assert "cwd" not in written
    assert "bridge's current directory" in done.err and "--cwd" in done.err


def test_import_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    folder = reference_folder(tmp_path, "command: ./bridge.py\n")
    dest = tmp_path / "out"
    assert cli("profiles", "import", folder, dest).code == 0
    again = cli("profiles", "import", folder, dest)
    assert again.code == 2
    assert "cannot write the profile to" in again.err and "the file exists" in again.err
    assert "--force" in again.err
    forced = cli("profiles", "import", folder, dest, "--force")
    assert forced.code == 0, forced.err
    native = cli("profiles", "import", dest)
    assert native.code == 2 and "already a native profile" in native.err
    missing = cli("profiles", "import", tmp_path / "nope.yaml")
    assert missing.code == 2 and "profile not found" in missing.err
    (tmp_path / "dir.yaml").mkdir()
    into_dir = cli("profiles", "import", folder, tmp_path / "dir.yaml")
    assert into_dir.code == 2 and "it is a folder" in into_dir.err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("agentproc: [a, b]\n", "profile.yaml:1: field 'agentproc': must be a mapping"),
        ("name: x\nagentproc:\n  command: ./a\n  timeout_secs: yes\n", "profile.yaml:4: field "),
        ("agentproc: {command: ./a}\n: broken\n", "invalid YAML"),
        ("agentproc:\n  commnd: ./a\n", "did you mean 'command'?"),
    ],
)
def test_import_of_a_broken_file_names_file_line_and_field(
    tmp_path: Path, text: str, words: str
) -> None:
    (tmp_path / "profile.yaml").write_text(text, encoding="utf-8")
    done = cli("profiles", "import", tmp_path / "profile.yaml", tmp_path / "out")
    assert done.code == 2
    assert words in done.err
    assert not (tmp_path / "out").exists()


def test_a_reference_hub_file_with_comments_loads(tmp_path: Path) -> None:
    """The shape of the reference's own hub profiles: commented-out fields,
    metadata around the block, an allowlist and a placeholder command."""
    (tmp_path / "bridge.py").write_text("print('ok')\n")
    (tmp_path / "profile.yaml").write_text(
        textwrap.dedent(
            """\
            name: some-cli
            description: Connect some CLI as an agent
            cli: some
            cli_install: |
              npm install -g some-cli
            agentproc:
              command: python3 {{PROFILE_DIR}}/bridge.py
              # cwd is left unset on purpose: the CLI runs in your project.
              timeout_secs: 600
              streaming: true
              # permission: true
              env:
                SOME_API_KEY: "${SOME_API_KEY}"
                # SOME_MODEL: "x"
              env_allowlist: [SOME_API_KEY, SOME_MODEL]
            tested: official
            maintainer: someone
            tags: [coding, ai]
            notes: |
              Several lines
              of notes.
            """
        ),
        encoding="utf-8",
    )
    profile = load_profile(tmp_path)
    assert (profile.name, profile.tags, profile.timeout_secs) == ("some-cli", ["coding", "ai"], 600)
    assert profile.env_allowlist == ["SOME_API_KEY", "SOME_MODEL"]
    assert profile.runs_in_caller_cwd and profile.is_reference_format
    (warning,) = profile.load_warnings
    assert warning.endswith(
        "ignored top-level keys this bridge does not use: cli (line 3), cli_install (line 4), "
        "tested (line 16), maintainer (line 17), notes (line 19)"
    )

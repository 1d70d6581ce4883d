"""What a new user trips over, run as a user would: the real `agentproc`
command against real agent processes (see tests/helpers.py).

Sections: replies printed once; attachment URLs and garbage options;
`sessions prune`; bundled profiles hidden by local paths; chat and run with a
profile whose command is missing, and piped chat's exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import AGENTPROC, Run, check_stderr, cli, cli_env, run_in_pty

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "profiles" / "echo"

# An agent that streams its answer and then prints the same answer as its body,
# as most agent CLIs (and their wrappers) do.
STREAM_THEN_BODY = """\
printf 'AGENT_PARTIAL:"The answer "\\n'
printf 'AGENT_PARTIAL:"is 42."\\n'
echo 'The answer is 42.'
"""

# A wrapper that streams a retry note, then the answer, then the answer as the body.
NOTE_THEN_ANSWER = """\
printf 'AGENT_PARTIAL:"(retrying: the model server answered 529, attempt 2 of 10)\\\\n"\\n'
printf 'AGENT_PARTIAL:"Forty-two."\\n'
echo 'Forty-two.'
"""

# Streams a draft, then prints a different final answer.
DRAFT_THEN_FINAL = """\
printf 'AGENT_PARTIAL:"a rough draft"\\n'
echo 'the polished answer'
"""


@pytest.fixture
def sh_agent(tmp_path: Path, make_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile running a /bin/sh script written to a file."""
    counter = iter(range(1_000))

    def make(script: str, **fields: object) -> Path:
        path = tmp_path / f"agent{next(counter)}.sh"
        path.write_text(script, encoding="utf-8")
        fields.setdefault("name", "demo")
        return make_profile("", command="/bin/sh", args=[str(path)], **fields)

    return make


def chat(profile: str | Path, data_dir: Path, text: str, *args: str, **kwargs: object) -> Run:
    return cli("chat", profile, "--data-dir", data_dir, *args, input=text.encode(), **kwargs)


# --- 1. a streamed reply is printed once ------------------------------------------------


def test_run_prints_a_streamed_reply_once(sh_agent: Callable[..., Path]) -> None:
    run = cli("run", sh_agent(STREAM_THEN_BODY), "-m", "hi")
    assert (run.code, run.out) == (0, "The answer is 42.\n")
    assert "final reply" not in run.err


def test_run_a_note_streamed_before_the_answer_does_not_repeat_it(
    sh_agent: Callable[..., Path],
) -> None:
    run = cli("run", sh_agent(NOTE_THEN_ANSWER), "-m", "hi")
    assert run.code == 0
    assert run.out == "(retrying: the model server answered 529, attempt 2 of 10)\nForty-two.\n"


def test_run_a_final_reply_that_differs_is_printed_under_a_header(
    sh_agent: Callable[..., Path],
) -> None:
    run = cli("run", sh_agent(DRAFT_THEN_FINAL), "-m", "hi")
    assert (run.code, run.out) == (0, "a rough draft\nthe polished answer\n")
    assert "--- final reply ---" in run.err.splitlines()
    # Not a terminal: no colour codes.
    assert "\x1b[" not in run.err


def test_run_without_streaming_prints_the_reply_without_a_header() -> None:
    run = cli("run", ECHO, "-m", "hi")
    assert (run.code, run.out) == (0, "You said: hi\n")
    assert "final reply" not in run.err


def test_run_json_is_unchanged_by_the_dedup(sh_agent: Callable[..., Path]) -> None:
    run = cli("run", sh_agent(STREAM_THEN_BODY), "-m", "hi", "--json")
    data = json.loads(run.out)
    assert data["partials"] == ["The answer ", "is 42."]
    assert data["reply"] == "The answer is 42."


def test_chat_prints_a_streamed_reply_once(sh_agent: Callable[..., Path], tmp_path: Path) -> None:
    profile = sh_agent(STREAM_THEN_BODY)
    run = chat(profile, tmp_path / "data", "one\ntwo\n")
    assert run.code == 0
    assert run.out == "The answer is 42.\nThe answer is 42.\n"
    run = chat(sh_agent(DRAFT_THEN_FINAL), tmp_path / "data", "x\n")
    assert run.out == "a rough draft\nthe polished answer\n"
    assert "--- final reply ---" in run.err


def test_the_final_reply_header_is_dim_on_a_terminal(sh_agent: Callable[..., Path]) -> None:
    out = run_in_pty([AGENTPROC, "run", str(sh_agent(DRAFT_THEN_FINAL)), "-m", "hi"])
    assert "a rough draft" in out and "the polished answer" in out
    assert "\x1b[2m--- final reply ---\x1b[0m" in out


# --- 2. attachment URLs and garbage on every option -------------------------------------


@pytest.mark.parametrize("option", ["--attach", "--image-url", "--file-url"])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "it is empty"),
        ("   ", "it is blank"),
        (" https://x.example/a.png", "spaces around it"),
        ("cat.png", "not a URL or an absolute path"),
        ("https://", "needs a host"),
        ("file://", "needs a path"),
        ("https://x.example/a b.png", "cannot hold spaces"),
        ("https://x.example/\nb.png", "control character"),
    ],
)
def test_a_bad_attachment_url_is_a_usage_error(option: str, value: str, why: str) -> None:
    run = cli("run", ECHO, "-m", "hi", option, value)
    assert run.code == 2, run
    assert run.out == ""
    assert option in run.err and why in run.err
    assert "https://example.com/cat.png" in run.err, "says what a valid value looks like"


def test_a_bad_attachment_url_with_json_is_one_object() -> None:
    run = cli("run", ECHO, "-m", "hi", "--attach", "", "--json")
    assert run.code == 2
    data = json.loads(run.out)
    assert data["exit_code"] == 2 and "--attach" in data["error"]


def test_a_relative_path_to_a_file_names_its_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"")
    run = cli("run", ECHO, "-m", "hi", "--attach", "cat.png", cwd=tmp_path)
    assert run.code == 2
    assert str(tmp_path / "cat.png") in run.err


@pytest.mark.parametrize(
    "value",
    [
        "https://x.example/cat.png",
        "HTTP://X.EXAMPLE/A.PNG",
        "file:///tmp/cat.png",
        "/tmp/a photo.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "s3://bucket/key.pdf",
    ],
)
def test_good_attachment_urls_are_taken(value: str) -> None:
    run = cli("run", ECHO, "-m", "hi", "--attach", value)
    assert (run.code, run.out) == (0, "You said: hi\n")


#: Values no option expects, none of which may end in a traceback: empty, bytes
#: that are not UTF-8 with a newline, and a name too long for the file system.
GARBAGE = ["", "\udcff\n\x01", "x" * 5000]


def _garbage_commands(data: Path, infile: Path) -> list[list[str]]:
    echo = str(ECHO)
    store = ["--data-dir", str(data)]
    base = {
        "run": ["run", echo, "-m", "hi"],
        "chat": ["chat", echo, *store],
        "batch": ["batch", echo, str(infile)],
        "sessions list": ["sessions", "list", *store],
        "sessions show": ["sessions", "show", "terminal:default@echo", *store],
        "sessions prune": ["sessions", "prune", "--older-than", "9999w", "--dry-run", *store],
        "sessions delete": ["sessions", "delete", "terminal:default@echo", *store],
    }
    options = {
        "run": [
            "-m",
            "--session",
            "--session-name",
            "--from",
            "--image-url",
            "--file-url",
            "--attach",
            "--cwd",
            "--env",
            "--timeout",
        ],
        "chat": ["--session-name", "--from", "--data-dir"],
        "batch": ["-c", "-o", "--timeout", "--format"],
        "sessions list": ["--channel", "--profile", "--data-dir"],
        "sessions show": ["--limit", "--data-dir"],
        "sessions prune": ["--older-than", "--data-dir"],
        "sessions delete": ["--data-dir"],
    }
    commands = [
        base[cmd] + [opt, g] for cmd, opts in options.items() for opt in opts for g in GARBAGE
    ]
    for g in GARBAGE:
        commands += [
            ["run", g, "-m", "hi"],
            ["run", echo, "-m", g, "--json"],
            ["chat", g, *store],
            ["batch", g, str(infile)],
            ["batch", echo, g],
            ["validate", g],
            ["sessions", "show", g, *store],
            ["sessions", "reset", g, *store],
            ["sessions", "cancel", g, *store],
            ["sessions", "delete", g, "--yes", *store],
            ["profiles", "show", g],
            ["profiles", "init", g],
        ]
    return commands


@pytest.mark.timeout(600)
def test_garbage_in_any_option_never_ends_in_a_traceback(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    infile = tmp_path / "in.txt"
    infile.write_text("hello\n")
    work = tmp_path / "cwd"
    work.mkdir()
    commands = _garbage_commands(tmp_path / "data", infile)

    def one(args: list[str]) -> tuple[list[str], int, str]:
        proc = subprocess.run(
            [AGENTPROC, *args],
            input=b"hello\n",
            capture_output=True,
            timeout=60,
            cwd=work,
            env=cli_env(),
        )
        return args, proc.returncode, proc.stderr.decode("utf-8", "replace")

    bad = []
    with ThreadPoolExecutor(3) as pool:
        for args, code, err in pool.map(one, commands):
            if "Traceback" in err or "Exception ignored" in err or code < 0:
                bad.append((args[:6], code, err.strip().splitlines()[-1:]))
    assert not bad, bad


@pytest.mark.parametrize("source", ["file", "/dev/null"])
def test_chat_reads_its_messages_from_a_file(source: str, tmp_path: Path) -> None:
    # A regular file (or /dev/null) cannot be watched by the event loop; it is
    # read directly instead.
    path = Path(source) if source == "/dev/null" else tmp_path / "messages.txt"
    if source == "file":
        path.write_text("one\ntwo\n")
    with path.open("rb") as stdin:
        proc = subprocess.run(
            [AGENTPROC, "chat", str(ECHO), "--data-dir", str(tmp_path / "data")],
            stdin=stdin,
            capture_output=True,
            timeout=30,
        )
    check_stderr(proc.stderr.decode())
    assert proc.returncode == 0
    expected = "You said: one\nYou said: two\n" if source == "file" else ""
    assert proc.stdout.decode() == expected


# --- 3. sessions prune --------------------------------------------------------------------


def _two_conversations(sh_agent: Callable[..., Path], data: Path) -> None:
    profile = sh_agent('echo "ok $AGENT_MESSAGE"\n')
    assert chat(profile, data, "a\n").code == 0
    assert chat(profile, data, "b\n", "--session-name", "work").code == 0


def _listed(data: Path) -> list[str]:
    run = cli("sessions", "list", "--json", "--data-dir", data)
    return sorted(json.loads(line)["label"] for line in run.out.splitlines())


@pytest.mark.parametrize("age", ["30", "0", "2.5"])
def test_prune_needs_a_unit(age: str, tmp_path: Path) -> None:
    run = cli("sessions", "prune", "--older-than", age, "--yes", "--data-dir", tmp_path)
    assert run.code == 2
    assert "no unit" in run.err and f"{age}d" in run.err


def test_prune_refuses_an_unknown_unit(tmp_path: Path) -> None:
    run = cli("sessions", "prune", "--older-than", "3y", "--yes", "--data-dir", tmp_path)
    assert run.code == 2
    assert "unknown unit 'y'" in run.err


def test_prune_dry_run_lists_and_keeps(sh_agent: Callable[..., Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    _two_conversations(sh_agent, data)
    run = cli("sessions", "prune", "--older-than", "0s", "--dry-run", "--data-dir", data)
    assert run.code == 0
    assert "terminal:default@demo" in run.out and "terminal:work@demo" in run.out
    assert "would prune 2 conversations" in run.out
    assert _listed(data) == ["terminal:default@demo", "terminal:work@demo"]


def test_prune_without_a_terminal_needs_yes(sh_agent: Callable[..., Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    _two_conversations(sh_agent, data)
    run = cli("sessions", "prune", "--older-than", "0s", "--data-dir", data)
    assert run.code == 2
    assert "--yes" in run.err and "not a terminal" in run.err
    assert len(_listed(data)) == 2
    run = cli("sessions", "prune", "--older-than", "0s", "--yes", "--data-dir", data)
    assert (run.code, run.out) == (0, "pruned 2 conversations\n")
    assert _listed(data) == []


def test_prune_keeps_what_is_recent(sh_agent: Callable[..., Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    _two_conversations(sh_agent, data)
    run = cli("sessions", "prune", "--older-than", "1h", "--yes", "--data-dir", data)
    assert run.code == 0 and "nothing to prune" in run.out
    assert len(_listed(data)) == 2


@pytest.mark.parametrize(("answer", "kept"), [(b"n\n", 2), (b"y\n", 0)])
def test_prune_asks_at_a_terminal(
    sh_agent: Callable[..., Path], tmp_path: Path, answer: bytes, kept: int
) -> None:
    data = tmp_path / "data"
    _two_conversations(sh_agent, data)
    argv = [AGENTPROC, "sessions", "prune", "--older-than", "0s", "--data-dir", str(data)]
    out = run_in_pty(argv, answer=answer)
    assert "terminal:work@demo" in out and "Delete these 2 conversations" in out
    assert len(_listed(data)) == kept


# --- 4. a local path named like a bundled profile -----------------------------------------


def test_bundled_prefix_names_the_bundled_profile_past_a_local_folder(tmp_path: Path) -> None:
    (tmp_path / "echo").mkdir()  # a project folder that happens to be called echo
    run = cli("run", "bundled:echo", "-m", "hi", cwd=tmp_path)
    assert (run.code, run.out) == (0, "You said: hi\n")
    run = cli("validate", "bundled:echo", cwd=tmp_path)
    assert run.code == 0


def test_a_local_folder_that_is_no_profile_mentions_the_bundled_one(tmp_path: Path) -> None:
    (tmp_path / "codex").mkdir()
    for args in (["run", "codex", "-m", "hi"], ["validate", "codex/"], ["chat", "codex"]):
        run = cli(*args, cwd=tmp_path)
        assert run.code == 2, args
        assert "bundled profile named 'codex' exists" in run.err, args
        assert "bundled:codex" in run.err, args


def test_a_broken_local_file_named_like_a_bundled_one_mentions_it(tmp_path: Path) -> None:
    (tmp_path / "echo").write_text("comand: nothing\n")
    run = cli("run", "echo", "-m", "hi", "--json", cwd=tmp_path)
    data = json.loads(run.out)
    assert run.code == 2
    assert "bundled:echo" in data["hint"]


def test_an_unknown_bundled_name_is_not_found(tmp_path: Path) -> None:
    run = cli("run", "bundled:ecko", "-m", "hi", cwd=tmp_path)
    assert run.code == 2
    assert "no bundled profile named 'ecko'" in run.err
    assert "did you mean 'bundled:echo'?" in run.err


def test_profiles_show_and_init_take_the_prefix(tmp_path: Path) -> None:
    run = cli("profiles", "show", "bundled:echo")
    assert run.code == 0 and "name: echo" in run.out
    run = cli("profiles", "init", "bundled:echo", tmp_path / "mine")
    assert run.code == 0 and (tmp_path / "mine" / "profile.yaml").is_file()


# --- 7. a command that does not exist; piped chat's exit status ---------------------------


MISSING = "agentproc-test-no-such-command"


def test_run_with_a_missing_command_fails_before_reading_stdin(
    make_profile: Callable[..., Path],
) -> None:
    profile = make_profile(command=MISSING)
    # stdin stays open: a run that waited for the message would time out.
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(profile), "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    check_stderr(err.decode())
    assert proc.returncode == 127
    assert MISSING in err.decode() and "command not found" in err.decode()


def test_piped_chat_with_a_missing_command_sends_nothing(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    profile = make_profile(command=MISSING, name="ghost")
    run = chat(profile, tmp_path / "data", "one\ntwo\n")
    assert run.code == 127
    assert run.out == ""
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and MISSING in errors[0]
    assert any(line.startswith("hint:") for line in run.err.splitlines())
    assert _listed(tmp_path / "data") == []


def test_chat_at_a_terminal_with_a_missing_command_says_so_first(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    profile = make_profile(command=MISSING, name="ghost")
    argv = [AGENTPROC, "chat", str(profile), "--data-dir", str(tmp_path / "data")]
    out = run_in_pty(argv, answer=b"/quit\r", prompt=b"you>")
    warning = out.index(MISSING)
    assert warning < out.index("Chatting with ghost") < out.index("you>")


def test_piped_chat_exits_1_when_a_turn_failed(
    sh_agent: Callable[..., Path], tmp_path: Path
) -> None:
    profile = sh_agent(
        'if [ "$AGENT_MESSAGE" = fail ]; then echo \'AGENT_ERROR:"no luck"\'; exit 1; fi\n'
        'echo "ok $AGENT_MESSAGE"\n'
    )
    run = chat(profile, tmp_path / "data", "fail\nfine\n")
    assert run.code == 1
    assert run.out == "ok fine\n" and "error: no luck" in run.err
    run = chat(profile, tmp_path / "data", "fine\nfail\n")
    assert run.code == 1
    assert chat(profile, tmp_path / "data", "fine\nagain\n").code == 0


# --- notes from loading a reference-format profile ------------------------------------------


def _reference_profile(tmp_path: Path) -> Path:
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "profile.yaml").write_text(
        "name: ref\nversion: 0.3\nagentproc:\n  command: /bin/echo hi\n", encoding="utf-8"
    )
    return folder


def test_validate_shows_what_a_reference_profile_holds_that_is_not_used(tmp_path: Path) -> None:
    run = cli("validate", _reference_profile(tmp_path))
    assert run.code == 0
    assert "ok:" in run.out
    assert "warning:" in run.err and "version" in run.err


def test_chat_says_a_load_note_once_not_after_every_turn(tmp_path: Path) -> None:
    run = cli(
        "chat",
        _reference_profile(tmp_path),
        input=b"one\ntwo\nthree\n",
        env={**os.environ, "AGENTPROC_DATA_DIR": str(tmp_path / "data")},
    )
    assert run.code == 0, run.err
    assert run.err.count("ignored top-level keys") == 1


def test_profiles_help_names_the_bundled_prefix() -> None:
    run = cli("profiles", "--help")
    assert run.code == 0 and "bundled:NAME" in run.out

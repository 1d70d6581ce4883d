"""The ``agentproc`` command line, run as a real subprocess against real agents.

Every test goes through :func:`cli` (or :func:`check_stderr` for the tests that
drive a :class:`subprocess.Popen` themselves), which fails the test when stderr
holds a Python traceback: whatever goes wrong, the user reads a sentence.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import AGENTPROC, Run, check_stderr, cli

from agentproc import __version__

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "profiles" / "echo"
AGENTS = Path(__file__).parent / "agents"
PYTHON = sys.executable

#: Keys every ``--json`` object has, with the types they must have.
JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "reply": str,
    "session_id": str,
    "error": (str, type(None)),
    "exit_code": int,
    "timed_out": bool,
    "partials": list,
    "duration_ms": int,
}


# --- helpers ---------------------------------------------------------------------------


def cli_json(*args: str | Path, input: bytes | None = None) -> tuple[Run, dict[str, object]]:
    """Run with ``--json``: stdout must be exactly one JSON object, on one line,
    with the contract's keys and types, and its exit_code is the exit status."""
    run = cli(*args, "--json", input=input)
    assert run.out.endswith("\n") and run.out.count("\n") == 1, run.out
    data = json.loads(run.out)  # raises on anything after the object
    assert isinstance(data, dict)
    for key, kind in JSON_TYPES.items():
        assert key in data, key
        assert isinstance(data[key], kind), (key, data[key])
    assert not isinstance(data["exit_code"], bool)
    assert not isinstance(data["duration_ms"], bool) and data["duration_ms"] >= 0
    assert all(isinstance(p, str) for p in data["partials"])  # type: ignore[union-attr]
    assert data["exit_code"] == run.code
    return run, data


def alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: it has exited, and in a
    container nobody may reap an orphan."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_file(path: Path, timeout: float = 10) -> str:
    """Wait until ``path`` holds a whole line; return its text."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            text = path.read_text()
            if text.endswith("\n"):
                return text.strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written within {timeout} s")


@pytest.fixture
def sh_agent(tmp_path: Path, make_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile running a /bin/sh script (written to a file, so ``$`` in it is
    the shell's and not the profile template's)."""
    counter = iter(range(1_000))

    def make(script: str, **fields: object) -> Path:
        path = tmp_path / f"agent{next(counter)}.sh"
        path.write_text(script, encoding="utf-8")
        return make_profile("", command="/bin/sh", args=[str(path)], **fields)

    return make


@pytest.fixture
def env_agent(py_agent: Callable[..., Path]) -> Path:
    return py_agent("cli_env.py")


def env_of(*args: str | Path) -> dict[str, str]:
    """Run the env agent with ``args`` and return what it saw."""
    run, data = cli_json(*args)
    assert run.code == 0, run.err
    shown = json.loads(data["reply"])  # type: ignore[arg-type]
    assert isinstance(shown, dict)
    return shown


#: Streams "Hel" and "lo", then waits (at most 5 s) for the file GO before
#: printing its body, so a test can see the partials arrive before the end.
STREAMER = """\
printf 'AGENT_PARTIAL:"Hel"\\n'
printf 'AGENT_PARTIAL:"lo"\\n'
i=0
while [ ! -e '{go}' ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "streaming=$AGENT_STREAMING"
"""


# --- run: the message -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["profile.yaml", "profile-shell.yaml"])
def test_run_echo_profile(name: str) -> None:
    run = cli("run", ECHO / name, "-m", "hello there")
    assert (run.code, run.out) == (0, "You said: hello there\n")


def test_run_accepts_a_profile_folder() -> None:
    run = cli("run", ECHO, "-m", "hi")
    assert (run.code, run.out) == (0, "You said: hi\n")


def test_run_stdin_reads_the_whole_message() -> None:
    message = "first line\nsecond: héllo wörld ✓ 🎉\n\nlast"
    run = cli("run", ECHO, "--stdin", input=message.encode("utf-8"))
    assert (run.code, run.out) == (0, f"You said: {message}\n")


@pytest.mark.parametrize("args", [[], ["-m", "hi", "--stdin"]], ids=["neither", "both"])
def test_run_needs_exactly_one_message_source(args: list[str]) -> None:
    run = cli("run", ECHO, *args, input=b"from stdin")
    assert run.code == 2
    assert run.out == ""
    assert "Usage:" in run.err and "-m TEXT or --stdin" in run.err


def test_run_stdin_message_with_nul_is_refused() -> None:
    run = cli("run", ECHO, "--stdin", input=b"before\0after")
    assert run.code == 2
    assert run.out == ""
    assert "NUL" in run.err


# --- run --json ---------------------------------------------------------------------------


def test_json_success() -> None:
    run, data = cli_json("run", ECHO, "-m", "hi")
    assert run.code == 0
    assert data["reply"] == "You said: hi"
    assert data["error"] is None
    assert data["timed_out"] is False
    assert data["partials"] == []
    assert run.err == ""


def test_json_agent_error(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo 'partial work'\necho 'AGENT_ERROR:\"the disk is full\"'\n")
    run, data = cli_json("run", profile, "-m", "hi")
    assert run.code == 1
    assert data["error"] == "the disk is full"
    assert data["reply"] == "partial work"
    assert data["timed_out"] is False


def test_json_timeout(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("exec sleep 10\n")
    started = time.monotonic()
    run, data = cli_json("run", profile, "-m", "hi", "--timeout", "0.3")
    assert time.monotonic() - started < 5
    assert run.code == 124
    assert data["timed_out"] is True
    assert "timed out" in str(data["error"])


def test_json_missing_profile(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "profile.yaml"
    run, data = cli_json("run", missing, "-m", "hi")
    assert run.code == 2
    assert str(missing) in str(data["error"])


def test_json_broken_profile(make_profile: Callable[..., Path]) -> None:
    profile = make_profile("name: x\ncomand: /bin/echo")
    run, data = cli_json("run", profile, "-m", "hi")
    assert run.code == 2
    error = str(data["error"])
    assert f"{profile}:2:" in error and "'command'" in error


def test_json_command_not_found(make_profile: Callable[..., Path]) -> None:
    profile = make_profile(command="agentproc-test-no-such-command")
    run, data = cli_json("run", profile, "-m", "hi")
    assert run.code == 127
    assert "agentproc-test-no-such-command" in str(data["error"])


# --- streaming ---------------------------------------------------------------------------


def test_partials_are_printed_live_then_the_body(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    go = tmp_path / "go"
    profile = sh_agent(STREAMER.format(go=go))
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(profile), "-m", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        end = time.monotonic() + 4
        while b"Hello" not in seen and time.monotonic() < end:
            ready, _, _ = select.select([proc.stdout], [], [], max(end - time.monotonic(), 0))
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
        assert seen == b"Hello", "the partials were not printed while the agent ran"
        go.touch()
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    check_stderr(err.decode())
    assert proc.returncode == 0
    assert (seen + out).decode() == "Hello\nstreaming=1\n"


def test_no_stream_turns_streaming_off(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    go = tmp_path / "go"
    go.touch()
    profile = sh_agent(STREAMER.format(go=go))
    run = cli("run", profile, "-m", "hi", "--no-stream")
    assert (run.code, run.out) == (0, "streaming=0\n")


def test_json_lists_the_partials(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    go = tmp_path / "go"
    go.touch()
    profile = sh_agent(STREAMER.format(go=go))
    run, data = cli_json("run", profile, "-m", "hi")
    assert run.code == 0
    assert data["partials"] == ["Hel", "lo"]
    assert data["reply"] == "streaming=1"


# --- sessions, turn variables, attachments ----------------------------------------------


def test_session_announced_on_stderr(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo AGENT_SESSION:sess-42.a\necho done\n")
    run = cli("run", profile, "-m", "hi")
    assert (run.code, run.out) == (0, "done\n")
    assert "agentproc:session:sess-42.a" in run.err.splitlines()


def test_no_session_line_when_agent_names_none() -> None:
    run = cli("run", ECHO / "profile-shell.yaml", "-m", "hi", "--session", "s1")
    assert run.code == 0
    assert "agentproc:session:" not in run.err


def test_session_option_reaches_the_agent(env_agent: Path) -> None:
    env = env_of("run", env_agent, "-m", "hi", "--session", "abc-123")
    assert env["AGENT_SESSION_ID"] == "abc-123"


def test_invalid_session_option_is_refused(env_agent: Path) -> None:
    run = cli("run", env_agent, "-m", "hi", "--session", "not a valid id")
    assert run.code == 2
    assert "session id" in run.err


def test_turn_variables(env_agent: Path) -> None:
    env = env_of("run", env_agent, "-m", "hello agent", "--session-name", "work", "--from", "ada")
    assert env["AGENT_MESSAGE"] == "hello agent"
    assert env["AGENT_SESSION_NAME"] == "work"
    assert env["AGENT_FROM_USER"] == "ada"
    assert env["AGENT_SESSION_ID"] == ""
    assert env["AGENT_STREAMING"] == "1"
    assert "AGENT_ATTACHMENTS" not in env


def test_env_option(env_agent: Path) -> None:
    env = env_of("run", env_agent, "-m", "hi", "--env", "CLI_A=1", "--env", "CLI_B=x=y ${HOME} $$")
    assert env["CLI_A"] == "1"
    assert env["CLI_B"] == "x=y ${HOME} $$"


@pytest.mark.parametrize("item", ["CLI_A", "=value"])
def test_env_option_without_name_value_is_a_usage_error(env_agent: Path, item: str) -> None:
    run = cli("run", env_agent, "-m", "hi", "--env", item)
    assert run.code == 2
    assert run.out == ""
    assert "NAME=VALUE" in run.err


def test_env_option_cannot_set_a_turn_variable(env_agent: Path) -> None:
    run = cli("run", env_agent, "-m", "hi", "--env", "AGENT_MESSAGE=forged")
    assert run.code == 2
    assert "AGENT_MESSAGE" in run.err


def test_cwd_option(tmp_path: Path, env_agent: Path) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    env = env_of("run", env_agent, "-m", "hi", "--cwd", workdir)
    assert env["cwd"] == str(workdir)
    assert env["PWD"] == str(workdir)


def test_cwd_option_missing_directory(tmp_path: Path, env_agent: Path) -> None:
    run = cli("run", env_agent, "-m", "hi", "--cwd", tmp_path / "absent")
    assert run.code == 2
    assert "working directory does not exist" in run.err


def test_image_and_file_url_options(env_agent: Path) -> None:
    env = env_of(
        "run",
        env_agent,
        "-m",
        "look",
        "--image-url",
        "https://x.example/cat.jpg",
        "--file-url",
        "https://x.example/notes.txt",
    )
    assert env["AGENT_IMAGE_URL"] == "https://x.example/cat.jpg"
    assert env["AGENT_FILE_URL"] == "https://x.example/notes.txt"
    attachments = json.loads(env["AGENT_ATTACHMENTS"])
    assert attachments == [
        {"type": "image", "url": "https://x.example/cat.jpg"},
        {"type": "file", "url": "https://x.example/notes.txt"},
    ]


def test_attach_guesses_the_type(env_agent: Path) -> None:
    urls = ["https://x.example/a/x.png", "https://x.example/x.mp3", "https://x.example/report.pdf"]
    args = [a for url in urls for a in ("--attach", url)]
    env = env_of("run", env_agent, "-m", "see", *args)
    attachments = json.loads(env["AGENT_ATTACHMENTS"])
    assert [(a["type"], a["url"], a["name"]) for a in attachments] == [
        ("image", urls[0], "x.png"),
        ("audio", urls[1], "x.mp3"),
        ("file", urls[2], "report.pdf"),
    ]
    assert env["AGENT_IMAGE_URL"] == urls[0]
    assert env["AGENT_FILE_URL"] == urls[2]


def test_attachment_without_text_is_a_turn(env_agent: Path) -> None:
    env = env_of("run", env_agent, "-m", "", "--attach", "https://x.example/cat.png")
    assert env["AGENT_MESSAGE"] == ""
    assert env["AGENT_IMAGE_URL"] == "https://x.example/cat.png"


def test_empty_turn_is_refused() -> None:
    run = cli("run", ECHO, "-m", "")
    assert run.code == 2
    assert "empty turn" in run.err


# --- exit status -----------------------------------------------------------------------


def test_exit_status_is_the_agents(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo 'something broke' >&2\nexit 3\n")
    run = cli("run", profile, "-m", "hi")
    assert run.code == 3
    assert run.out == ""
    errors = [line for line in run.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "exited with code 3" in errors[0] and "something broke" in errors[0]


def test_agent_error_in_human_mode(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo 'AGENT_ERROR:\"no such city\"'\n")
    run = cli("run", profile, "-m", "hi")
    assert run.code == 1
    assert "error: no such city" in run.err


def test_killed_by_signal(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo before\nkill -KILL $$\n")
    run = cli("run", profile, "-m", "hi")
    assert run.code == 128 + signal.SIGKILL
    assert run.out == "before\n"
    assert "killed by signal 9" in run.err


def test_timeout_in_human_mode(sh_agent: Callable[..., Path]) -> None:
    profile = sh_agent("echo started\nexec sleep 10\n")
    run = cli("run", profile, "-m", "hi", "--timeout", "0.3")
    assert run.code == 124
    assert run.out == "started\n"
    assert "timed out after 0.3 s" in run.err


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_timeout_is_a_usage_error(value: str) -> None:
    run = cli("run", ECHO, "-m", "hi", "--timeout", value)
    assert run.code == 2
    assert run.out == ""
    assert "--timeout" in run.err


def test_closed_stdout_exits_quietly() -> None:
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(ECHO / "profile-shell.yaml"), "-m", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=20)
    check_stderr(err.decode())
    assert proc.returncode == 141


# --- profile and launch errors -------------------------------------------------------


def test_missing_profile(tmp_path: Path) -> None:
    run = cli("run", tmp_path / "nothing.yaml", "-m", "hi")
    assert run.code == 2
    assert run.out == ""
    assert "profile not found" in run.err and str(tmp_path / "nothing.yaml") in run.err


def test_misspelt_field(make_profile: Callable[..., Path]) -> None:
    profile = make_profile("name: x\ncomand: /bin/echo")
    run = cli("run", profile, "-m", "hi")
    assert run.code == 2
    assert run.out == ""
    assert f"{profile}:2:" in run.err
    assert "'comand'" in run.err and "did you mean 'command'" in run.err


def test_command_not_on_path(make_profile: Callable[..., Path]) -> None:
    profile = make_profile(command="agentproc-test-no-such-command")
    run = cli("run", profile, "-m", "hi")
    assert run.code == 127
    assert run.out == ""
    assert "command not found" in run.err and "agentproc-test-no-such-command" in run.err


def test_command_not_executable(tmp_path: Path, make_profile: Callable[..., Path]) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    run = cli("run", make_profile(command=str(script)), "-m", "hi")
    assert run.code == 126
    assert "not executable" in run.err


# --- permission -------------------------------------------------------------------------


def test_permission_without_terminal_is_denied(py_agent: Callable[..., Path]) -> None:
    profile = py_agent("cli_permission.py", permission=True)
    run = cli("run", profile, "-m", "hi")
    assert run.code == 0
    (line,) = run.out.splitlines()
    assert line.startswith("got: AGENT_PERMISSION_RESPONSE:")
    response = json.loads(line.split(":", 2)[2])
    assert response["id"] == "p1" and response["allow"] is False
    assert "no terminal" in response["message"]
    assert "denied Bash" in run.err


@pytest.mark.parametrize(("answer", "allowed"), [(b"y\n", True), (b"\n", False)])
def test_permission_asked_at_the_terminal(
    py_agent: Callable[..., Path], answer: bytes, allowed: bool
) -> None:
    profile = py_agent("cli_permission.py", permission=True)
    master, slave = pty.openpty()
    try:
        os.write(master, answer)  # typed ahead; the terminal holds the line
        run = cli("run", profile, "-m", "hi", stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert run.code == 0
    response = json.loads(run.out.strip().split(":", 2)[2])
    assert response["allow"] is allowed
    assert "Allow Bash? [y/N]" in run.err
    # The question shows what would really run, not only the agent's description.
    assert "why:     list files" in run.err
    assert "command: ls" in run.err


def test_turn_end_closes_an_open_terminal_prompt(py_agent: Callable[..., Path]) -> None:
    profile = py_agent("cli_permission.py", permission=True)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(profile), "-m", "hi", "--timeout", "0.3"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            _, err = proc.communicate(timeout=2.5)
        except subprocess.TimeoutExpired:
            os.write(master, b"\n")  # answer, so that it can end
            proc.communicate(timeout=10)
            pytest.fail("agentproc waited for an answer after the turn had timed out")
    finally:
        proc.kill()
        proc.wait()
        os.close(slave)
        os.close(master)
    check_stderr(err.decode())
    assert proc.returncode == 124


# --- cancelling ----------------------------------------------------------------------------


def test_sigint_cancels_the_turn_and_kills_the_agent(
    tmp_path: Path, sh_agent: Callable[..., Path]
) -> None:
    agent_pid, child_pid = tmp_path / "agent.pid", tmp_path / "child.pid"
    profile = sh_agent(
        f"sleep 30 &\necho $! > '{child_pid}'\necho $$ > '{agent_pid}'\nwait\n",
        kill_grace_secs=1,
    )
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(profile), "-m", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        pids = [int(wait_for_file(agent_pid)), int(wait_for_file(child_pid))]
        assert all(alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    check_stderr(err.decode())
    assert proc.returncode == 130
    assert "cancelled" in err.decode()
    assert out == b""
    assert not any(alive(pid) for pid in pids)


def test_second_sigint_kills_at_once(tmp_path: Path, sh_agent: Callable[..., Path]) -> None:
    # The agent ignores SIGTERM and the grace is long: only the second Ctrl-C
    # can end the turn before communicate() gives up.
    agent_pid = tmp_path / "agent.pid"
    profile = sh_agent(
        f"trap '' TERM\necho $$ > '{agent_pid}'\nwhile :; do sleep 0.1; done\n",
        kill_grace_secs=60,
    )
    proc = subprocess.Popen(
        [AGENTPROC, "run", str(profile), "-m", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        pid = int(wait_for_file(agent_pid))
        proc.send_signal(signal.SIGINT)
        # The second signal goes once the first was handled (it says so),
        # however loaded the machine is.
        assert proc.stderr is not None
        first = b""
        deadline = time.monotonic() + 10
        while b"again to kill now" not in first and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.1)[0]:
                first += os.read(proc.stderr.fileno(), 4096)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=10)
        err = first + rest
    finally:
        proc.kill()
        proc.wait()
    check_stderr(err.decode())
    assert proc.returncode == 130
    assert "again to kill now" in err.decode() and "killed" in err.decode()
    assert not alive(pid)


def test_usage_error_with_json_still_prints_one_object() -> None:
    run = cli("run", ECHO, "--json")
    assert run.code == 2
    data = json.loads(run.out)
    assert data["exit_code"] == 2 and "-m TEXT or --stdin" in data["error"]


def test_hint_is_printed_on_its_own_line(tmp_path: Path) -> None:
    run = cli("run", ECHO, "-m", "hi", "--cwd", tmp_path / "absent")
    assert run.code == 2
    lines = run.err.splitlines()
    assert lines[0].startswith("error: working directory does not exist")
    assert lines[1].startswith("hint: ")


def test_stdin_bytes_that_are_not_utf8_reach_the_agent_unchanged(
    make_profile: Callable[..., Path],
) -> None:
    profile = make_profile(
        command=sys.executable,
        args=["-c", "import os; print(os.environb[b'AGENT_MESSAGE'].hex())"],
    )
    run = cli("run", profile, "--stdin", input=b"ok \xff\xfe end")
    assert run.code == 0
    assert bytes.fromhex(run.out.strip()) == b"ok \xff\xfe end"


# --- validate, schema, version, help ------------------------------------------------------


def test_validate_good_profiles() -> None:
    run = cli("validate", ECHO, ECHO / "profile-shell.yaml")
    assert run.code == 0
    assert run.out.splitlines() == [
        f"ok: {ECHO} (echo)",
        f"ok: {ECHO / 'profile-shell.yaml'} (echo-shell)",
    ]
    assert run.err == ""


def test_validate_reports_the_bad_one(make_profile: Callable[..., Path]) -> None:
    bad = make_profile("name: x\ncomand: /bin/echo")
    run = cli("validate", ECHO, bad, ECHO / "profile-shell.yaml")
    assert run.code == 2
    assert [line.split()[1] for line in run.out.splitlines()] == [
        str(ECHO),
        str(ECHO / "profile-shell.yaml"),
    ]
    assert f"{bad}:2:" in run.err and "did you mean 'command'" in run.err


def test_validate_missing_profile(tmp_path: Path) -> None:
    run = cli("validate", ECHO, tmp_path / "absent.yaml")
    assert run.code == 2
    assert str(tmp_path / "absent.yaml") in run.err


def test_validate_warns_about_a_missing_command(make_profile: Callable[..., Path]) -> None:
    profile = make_profile(command="agentproc-test-no-such-command")
    run = cli("validate", profile)
    assert run.code == 0
    assert run.out == f"ok: {profile}\n"
    assert run.err.startswith("warning: ")
    assert "agentproc-test-no-such-command" in run.err


def test_validate_needs_a_profile() -> None:
    run = cli("validate")
    assert run.code == 2
    assert "Usage:" in run.err


def test_schema() -> None:
    run = cli("schema")
    assert run.code == 0
    schema = json.loads(run.out)
    assert {"command", "timeout_secs"} <= set(schema["properties"])
    assert "command" in schema.get("required", [])


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    run = cli(flag)
    assert run.code == 0
    assert run.out == f"agentproc, version {__version__}\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--help"], "run"), (["-h"], "validate"), (["run", "--help"], "--stdin")],
)
def test_help(args: list[str], expected: str) -> None:
    run = cli(*args)
    assert run.code == 0
    assert "Usage:" in run.out and expected in run.out


def test_unknown_command() -> None:
    run = cli("frobnicate")
    assert run.code == 2
    assert "No such command" in run.err

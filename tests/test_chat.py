"""`agentproc chat` and `agentproc sessions`, as real processes on a real store."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import AGENTPROC, cli_env
from test_store_sqlite import snapshot

# An agent that names a session on its first turn and says which one it got.
SESSION_AGENT = """\
if [ -z "$AGENT_SESSION_ID" ]; then echo "AGENT_SESSION:s-$$"; fi
echo "got=${AGENT_SESSION_ID:-new} msg=$AGENT_MESSAGE"
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def script_profile(tmp_path: Path, make_profile: Callable[..., Path]) -> Callable[..., Path]:
    def make(script: str, **fields: object) -> Path:
        path = tmp_path / f"agent{len(list(tmp_path.glob('agent*.sh')))}.sh"
        path.write_text(script)
        fields.setdefault("name", "demo")
        return make_profile("", command="/bin/sh", args=[str(path)], **fields)

    return make


def chat(profile: Path, data_dir: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [AGENTPROC, "chat", str(profile), "--data-dir", str(data_dir), *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    assert "Traceback" not in proc.stderr
    return proc


def sessions(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [AGENTPROC, "sessions", *args, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )
    assert "Traceback" not in proc.stderr
    return proc


def test_piped_chat_answers_each_line_in_order(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile('echo "You said: $AGENT_MESSAGE"\n')
    proc = chat(profile, data_dir, "one\n\ntwo\nthree\n")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["You said: one", "You said: two", "You said: three"]


def test_restart_resumes_the_agent_session(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    first = chat(profile, data_dir, "a\nb\n")
    assert first.stdout.splitlines()[0] == "got=new msg=a"
    session = first.stdout.splitlines()[1].split()[0].removeprefix("got=")
    assert session.startswith("s-")
    second = chat(profile, data_dir, "c\n")
    assert second.stdout.splitlines() == [f"got={session} msg=c"]
    # Another session name is another conversation.
    other = chat(profile, data_dir, "d\n", "--session-name", "work")
    assert other.stdout.splitlines() == ["got=new msg=d"]


def test_new_starts_a_fresh_session(script_profile: Callable[..., Path], data_dir: Path) -> None:
    profile = script_profile(SESSION_AGENT)
    proc = chat(profile, data_dir, "a\n/new\nb\n")
    lines = proc.stdout.splitlines()
    assert lines[0] == "got=new msg=a" and lines[1] == "got=new msg=b"
    assert "fresh agent session" in proc.stderr


def test_session_history_help_and_unknown_commands(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    proc = chat(profile, data_dir, "hello\n/session\n/history\n/help\n/bogus\n//slash\n")
    assert "terminal:default@demo: agent session s-" in proc.stderr
    assert "#1 you: hello" in proc.stderr and "#1 demo: got=new msg=hello" in proc.stderr
    assert "/history [N]" in proc.stderr
    assert "unknown command /bogus" in proc.stderr
    assert proc.stdout.splitlines()[-1].endswith("msg=/slash")


def test_quit_stops_reading(script_profile: Callable[..., Path], data_dir: Path) -> None:
    profile = script_profile('echo "You said: $AGENT_MESSAGE"\n')
    proc = chat(profile, data_dir, "one\n/quit\ntwo\n")
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["You said: one"]


def test_agent_errors_are_shown_and_the_chat_goes_on(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(
        'if [ "$AGENT_MESSAGE" = fail ]; then echo \'AGENT_ERROR:"no luck"\'; exit 1; fi\n'
        'echo "ok $AGENT_MESSAGE"\n'
    )
    proc = chat(profile, data_dir, "fail\nfine\n")
    assert "error: no luck" in proc.stderr
    assert proc.stdout.splitlines() == ["ok fine"]


def test_ctrl_c_cancels_the_running_turn_and_the_chat_goes_on(
    script_profile: Callable[..., Path], data_dir: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "slow.pid"
    profile = script_profile(
        f'if [ "$AGENT_MESSAGE" = slow ]; then echo $$ > {pidfile}; sleep 30; fi\n'
        'echo "done $AGENT_MESSAGE"\n',
        kill_grace_secs=1,
    )
    proc = subprocess.Popen(
        [AGENTPROC, "chat", str(profile), "--data-dir", str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("slow\n")
        proc.stdin.flush()
        end = time.monotonic() + 15
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < end, "the slow turn never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate("fast\n", timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in err
    # Piped input with a turn that got no answer: exit 1, the next turn still ran.
    assert proc.returncode == 1
    assert "error: cancelled" in err
    assert out.splitlines() == ["done fast"]
    shown = sessions(data_dir, "show", "terminal:default@demo", "--json")
    turns = json.loads(shown.stdout)["turns"]
    assert [(t["message"], t["exit_code"]) for t in turns] == [("slow", 130), ("fast", 0)]


def test_permission_is_denied_without_a_terminal(
    py_agent: Callable[..., Path], data_dir: Path
) -> None:
    profile = py_agent("cli_permission.py", permission=True, name="perm")
    proc = chat(profile, data_dir, "please\n")
    assert '"allow": false' in proc.stdout
    assert "no terminal to ask" in proc.stdout


# --- agentproc sessions on what chat wrote
#
# chat still keeps its conversations in the first release's session-map store;
# `agentproc sessions` reads that file as the log store carries it over, and
# tests/test_cli_sessions.py covers the command on its own.


def test_sessions_read_what_chat_wrote_without_changing_it(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    chat(profile, data_dir, "a\nb\n")
    chat(profile, data_dir, "x\n", "--session-name", "work")
    before = snapshot(data_dir)

    listed = sessions(data_dir, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == [
        "ID",
        "LABEL",
        "FOLDER",
        "SESSION",
        "TURNS",
        "LAST",
        "ACTIVE",
    ]
    names = sorted(line.split()[1] for line in listed.stdout.splitlines()[1:])
    assert names == ["terminal:default@demo", "terminal:work@demo"]

    rows = [json.loads(line) for line in sessions(data_dir, "list", "--json").stdout.splitlines()]
    default = next(r for r in rows if r["key"] == "default")
    assert default["turn_count"] == 2 and default["session_id"].startswith("s-")
    assert default["cwd"] == ""  # chat's store does not record the folder

    shown = sessions(data_dir, "show", "terminal:default@demo")
    assert "turns:         2" in shown.stdout
    assert any(line.endswith(": b") for line in shown.stdout.splitlines())
    assert "  demo: got=new msg=a" in shown.stdout
    assert snapshot(data_dir) == before


def test_sessions_reset_and_prune_what_chat_wrote(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    chat(profile, data_dir, "a\nb\n")
    chat(profile, data_dir, "x\n", "--session-name", "work")
    reset = sessions(data_dir, "reset", "terminal:default@demo")
    assert reset.returncode == 0 and "starts a fresh agent session" in reset.stdout
    rows = [json.loads(line) for line in sessions(data_dir, "list", "--json").stdout.splitlines()]
    assert next(r for r in rows if r["key"] == "default")["session_id"] == ""

    pruned = sessions(data_dir, "prune", "--older-than", "1h", "--yes").stdout.strip()
    assert pruned == "nothing to prune: no conversation idle for longer than 1h"
    pruned = sessions(data_dir, "prune", "--older-than", "0s", "--yes").stdout.strip()
    assert pruned == "pruned 2 conversations"
    assert sessions(data_dir, "list", "--json").stdout == ""


@pytest.mark.xfail(
    strict=True,
    reason="chat still uses the session-map store, which refuses the file once a "
    "`sessions` write has upgraded it to the log schema; passes when chat moves to the log",
)
def test_chat_after_sessions_reset_starts_a_fresh_session(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    chat(profile, data_dir, "a\n")
    assert sessions(data_dir, "reset", "terminal:default@demo").returncode == 0
    again = chat(profile, data_dir, "c\n")
    assert again.stdout.splitlines() == ["got=new msg=c"]


def test_chat_with_a_bundled_profile_by_name_runs_in_the_callers_folder(
    data_dir: Path, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [AGENTPROC, "chat", "echo", "--data-dir", str(data_dir)],
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "You said: hi\n"
    assert "terminal:default@echo" in sessions(data_dir, "list").stdout

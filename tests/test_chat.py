"""`agentproc chat` (and `agentproc sessions` on what it wrote), as real
processes on a real store: piped input, two chats on one conversation, a chat
killed mid-turn, and an interactive chat driven through a pseudo-terminal.

Agents are small shell scripts; those that must stay busy until the test says
so wait for a "gate" file to appear. Nothing here asserts a duration: every
wait is for some output, with a generous deadline.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import AGENTPROC, check_stderr, cli_env
from test_store_sqlite import snapshot

from bridge.channels.chat_view import (
    ApprovalClosed,
    ChatView,
    EndLine,
    FinalHeader,
    Note,
    Settled,
    Text,
)
from bridge.store.records import Conversation, Event, TranscriptTurn
from bridge.store.sqlite import open_store

# An agent that names a session on its first turn and says which one it got.
SESSION_AGENT = """\
if [ -z "$AGENT_SESSION_ID" ]; then echo "AGENT_SESSION:s-$$"; fi
echo "got=${AGENT_SESSION_ID:-new} msg=$AGENT_MESSAGE"
"""

#: Waits for the gate file (GATE), then answers; fails if two turns overlap.
GATE_AGENT = """\
if [ -e "$INSIDE" ]; then echo overlap; exit 3; fi
touch "$INSIDE"; touch "$GATE.started.$AGENT_MESSAGE"
while [ ! -e "$GATE" ]; do sleep 0.02; done
rm -f "$INSIDE"
echo "got $AGENT_MESSAGE"
"""

#: How long any wait for output may take on a loaded machine.
DEADLINE = 20.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def script_profile(
    tmp_path: Path, make_profile: Callable[..., Path], gate: Path
) -> Callable[..., Path]:
    def make(script: str, **fields: object) -> Path:
        path = tmp_path / f"agent{len(list(tmp_path.glob('agent*.sh')))}.sh"
        path.write_text(script)
        fields.setdefault("name", "demo")
        fields.setdefault("env", {"GATE": str(gate), "INSIDE": str(tmp_path / "inside")})
        return make_profile("", command="/bin/sh", args=[str(path)], **fields)

    return make


def chat_argv(profile: Path | str, data_dir: Path, *args: str) -> list[str]:
    return [AGENTPROC, "chat", str(profile), "--data-dir", str(data_dir), *args]


def chat(
    profile: Path | str, data_dir: Path, text: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        chat_argv(profile, data_dir, *args),
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=cwd,
    )
    check_stderr(proc.stderr)
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


@dataclass
class Stored:
    conversation: Conversation
    turns: list[TranscriptTurn]
    events: list[Event]


def stored(data_dir: Path) -> list[Stored]:
    """Every conversation in the store, with its turns and log, oldest first."""

    async def read() -> list[Stored]:
        async with open_store(data_dir, read_only=True) as store:
            out = []
            for conv in await store.conversations():
                out.append(
                    Stored(
                        conv,
                        await store.transcript(conv.id),
                        await store.read(conv.id, limit=100_000),
                    )
                )
            return sorted(out, key=lambda s: s.conversation.created_at)

    return anyio.run(read)


def wait_for(check: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- piped input ----------------------------------------------------------------------------


def test_piped_chat_answers_each_line_in_order(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile('echo "You said: $AGENT_MESSAGE"\n')
    proc = chat(profile, data_dir, "one\n\ntwo\nthree\n")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["You said: one", "You said: two", "You said: three"]


def test_restart_resumes_the_agent_session_and_the_session_name_is_the_agents(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT + 'echo "name=$AGENT_SESSION_NAME"\n')
    first = chat(profile, data_dir, "a\nb\n")
    lines = first.stdout.splitlines()
    assert lines[0] == "got=new msg=a" and lines[1] == "name=default"
    session = lines[2].split()[0].removeprefix("got=")
    assert session.startswith("s-")
    second = chat(profile, data_dir, "c\n")
    assert second.stdout.splitlines() == [f"got={session} msg=c", "name=default"]
    # Another session name is another conversation, and the agent's session name.
    other = chat(profile, data_dir, "d\n", "--session-name", "work")
    assert other.stdout.splitlines() == ["got=new msg=d", "name=work"]
    assert sorted(s.conversation.key.key for s in stored(data_dir)) == ["default", "work"]


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
    assert proc.returncode == 1, "piped input with a failed turn"


def test_a_long_stream_is_shown_whole_and_once(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    n = 100_000
    profile = script_profile(
        f'i=0; while [ $i -lt {n} ]; do echo "AGENT_PARTIAL:\\"$i,\\""; i=$((i+1)); done\n'
    )
    proc = chat(profile, data_dir, "go\n")
    assert proc.returncode == 0, proc.stderr
    expected = "".join(f"{i}," for i in range(n))
    assert proc.stdout == expected + "\n", "every chunk, once, and the reply not again"
    assert "final reply" not in proc.stderr
    (turn,) = stored(data_dir)[0].turns
    assert turn.reply == expected


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
        chat_argv(profile, data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("slow\n")
        proc.stdin.flush()
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the slow turn")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate("fast\n", timeout=DEADLINE)
    finally:
        proc.kill()
        proc.wait()
    check_stderr(err)
    # Piped input with a turn that got no answer: exit 1, the next turn still ran.
    assert proc.returncode == 1
    assert "error: cancelled" in err
    assert out.splitlines() == ["done fast"]
    turns = stored(data_dir)[0].turns
    assert [(t.message, t.status, t.exit_code) for t in turns] == [
        ("slow", "cancelled", 130),
        ("fast", "ok", 0),
    ]


def test_permission_is_denied_without_a_terminal(
    py_agent: Callable[..., Path], data_dir: Path
) -> None:
    profile = py_agent("cli_permission.py", permission=True, name="perm")
    proc = chat(profile, data_dir, "please\n")
    assert '"allow": false' in proc.stdout
    assert "no terminal to ask" in proc.stdout
    assert "command: ls" in proc.stderr, "the request is shown with its input"
    assert "denied Bash: stdin is not a terminal" in proc.stderr


# --- conversations: which one, shared, abandoned ------------------------------------------------


def test_one_profile_in_two_folders_is_two_conversations(
    tmp_path: Path, data_dir: Path, make_profile: Callable[..., Path]
) -> None:
    script = tmp_path / "agent.sh"
    script.write_text(SESSION_AGENT + 'echo "in=$PWD"\n')
    # A reference-format profile without cwd runs its agent in the chat's folder.
    ref = make_profile(f"agentproc:\n  command: /bin/sh\n  args: ['{script}']\n")
    folders = [tmp_path / "project-a", tmp_path / "project-b"]
    for folder in folders:
        folder.mkdir()
    a1 = chat(ref, data_dir, "one\n", cwd=folders[0]).stdout.splitlines()
    b1 = chat(ref, data_dir, "two\n", cwd=folders[1]).stdout.splitlines()
    a2 = chat(ref, data_dir, "three\n", cwd=folders[0]).stdout.splitlines()
    assert a1[0] == "got=new msg=one" and a1[1] == f"in={folders[0]}"
    assert b1[0] == "got=new msg=two", "the second folder starts its own session"
    assert a2[0].startswith("got=s-") and a2[0] != "got=new msg=three"
    convs = [s.conversation for s in stored(data_dir)]
    assert [c.key.route.cwd for c in convs] == [str(f.resolve()) for f in folders]
    assert {c.key.route.profile for c in convs} == {str(ref.resolve())}
    assert convs[0].session_id != convs[1].session_id

    # A profile whose agent runs in its own folder is one conversation from anywhere.
    native = make_profile(f"name: native\ncommand: /bin/sh\nargs: ['{script}']\n")
    chat(native, data_dir, "x\n", cwd=folders[0])
    again = chat(native, data_dir, "y\n", cwd=folders[1]).stdout.splitlines()
    assert again[0].startswith("got=s-")
    routes = [s.conversation.key.route for s in stored(data_dir)]
    assert [r.cwd for r in routes if r.name == "native"] == [str(native.parent.resolve())]


def test_a_bundled_profile_by_name_runs_in_the_callers_folder(
    data_dir: Path, tmp_path: Path
) -> None:
    proc = chat("echo", data_dir, "hi\n", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "You said: hi\n"
    (conv,) = [s.conversation for s in stored(data_dir)]
    assert conv.label == "terminal:default@echo"
    assert (conv.key.route.profile, conv.key.route.cwd) == ("bundled:echo", str(tmp_path))


class Piped:
    """A chat process fed line by line, its output going to files the test reads."""

    def __init__(self, argv: list[str], folder: Path, name: str) -> None:
        self.out_path = folder / f"{name}.out"
        self.err_path = folder / f"{name}.err"
        self._files = [self.out_path.open("w"), self.err_path.open("w")]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=self._files[0],
            stderr=self._files[1],
            text=True,
            env=cli_env(),
        )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def send(self, line: str) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def finish(self) -> int:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.close()
        code = self.proc.wait(timeout=DEADLINE)
        self.close()
        check_stderr(self.err)
        return code

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for f in self._files:
            f.close()


@pytest.fixture
def piped(tmp_path: Path) -> Iterator[Callable[..., Piped]]:
    started: list[Piped] = []

    def start(argv: list[str], name: str) -> Piped:
        chat = Piped(argv, tmp_path, name)
        started.append(chat)
        return chat

    yield start
    for chat in started:
        chat.close()


def test_two_chats_on_one_conversation_share_it(
    script_profile: Callable[..., Path],
    data_dir: Path,
    gate: Path,
    piped: Callable[..., Piped],
) -> None:
    profile = script_profile(GATE_AGENT)
    a = piped(chat_argv(profile, data_dir, "--from", "alice"), "a")
    b = piped(chat_argv(profile, data_dir, "--from", "bob"), "b")
    for chat_ in (a, b):  # both open (and reading the log) before anything is sent
        chat_.send("/session")
    for chat_ in (a, b):
        wait_for(lambda c=chat_: "terminal:default@demo:" in c.err, "/session")  # type: ignore[misc]

    a.send("one")
    wait_for(lambda: Path(f"{gate}.started.one").exists(), "turn 1 to start")
    b.send("two")  # while turn 1 runs: it waits for it
    wait_for(lambda: "[other terminal] bob: two" in a.err, "a to see b's message")
    gate.touch()
    for chat_ in (a, b):
        wait_for(lambda c=chat_: "got two" in c.out, "both to see the second reply")  # type: ignore[misc]
    assert a.finish() == 0 and b.finish() == 0

    assert a.out.splitlines() == ["got one", "got two"]
    assert b.out.splitlines() == ["got one", "got two"]
    assert "[other terminal] alice: one" in b.err
    (conv,) = stored(data_dir)
    assert [(t.turn, t.message, t.status) for t in conv.turns] == [
        (1, "one", "ok"),
        (2, "two", "ok"),
    ], "one turn at a time, numbered by the store"


def test_a_killed_chats_turn_is_shown_as_abandoned(
    script_profile: Callable[..., Path],
    data_dir: Path,
    gate: Path,
    piped: Callable[..., Piped],
) -> None:
    profile = script_profile(GATE_AGENT)
    doomed = piped(chat_argv(profile, data_dir), "doomed")
    doomed.send("first")
    wait_for(lambda: Path(f"{gate}.started.first").exists(), "turn 1 to start")
    doomed.proc.kill()
    doomed.proc.wait()  # reaped: its process id is gone, so its lease is dead at once
    # Its agent, orphaned, finishes in the background; it is no turn anymore.
    (gate.parent / "inside").unlink()
    gate.touch()
    proc = chat(profile, data_dir, "second\n")
    assert proc.returncode == 0, proc.stderr
    assert "turn 1 was abandoned (the chat running it stopped): first" in proc.stderr
    assert "send the message again" in proc.stderr
    assert proc.stdout.splitlines() == ["got second"]
    (conv,) = stored(data_dir)
    assert [(t.turn, t.message, t.status) for t in conv.turns] == [
        (1, "first", "abandoned"),
        (2, "second", "ok"),
    ]


def test_a_turn_whose_chat_died_is_closed_for_the_chat_that_sent_it(
    script_profile: Callable[..., Path],
    data_dir: Path,
    gate: Path,
    piped: Callable[..., Piped],
) -> None:
    # Each message waits for a gate of its own.
    profile = script_profile(
        'touch "$GATE.started.$AGENT_MESSAGE"\n'
        'while [ ! -e "$GATE.$AGENT_MESSAGE" ]; do sleep 0.02; done\n'
        'echo "got $AGENT_MESSAGE"\n'
    )
    runner = piped(chat_argv(profile, data_dir), "runner")
    sender = piped(chat_argv(profile, data_dir, "--from", "bob"), "sender")
    sender.send("/session")
    wait_for(lambda: "terminal:default@demo:" in sender.err, "the sender to open")
    runner.send("one")
    wait_for(lambda: Path(f"{gate}.started.one").exists(), "turn 1 to start")
    sender.send("two")
    wait_for(lambda: "[other terminal] bob: two" in runner.err, "the runner to see it")
    Path(f"{gate}.one").touch()
    # The runner's lease carries on into turn 2 (the sender's message); it dies there.
    wait_for(lambda: Path(f"{gate}.started.two").exists(), "turn 2 to start")
    runner.proc.kill()
    runner.proc.wait()
    try:
        wait_for(lambda: "turn 2 was abandoned" in sender.err, "the sender to hear of it")
    finally:
        Path(f"{gate}.two").touch()
    assert sender.finish() == 1, "piped input whose message got no answer"
    assert "turn 2 was abandoned (the chat running it stopped): two" in sender.err
    (conv,) = stored(data_dir)
    assert [(t.turn, t.status) for t in conv.turns] == [(1, "ok"), (2, "abandoned")]


# --- an interactive chat, through a pseudo-terminal --------------------------------------------

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>78])")


class Terminal:
    """A chat on a pseudo-terminal: keys in, the screen's text out (escapes removed)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.proc = subprocess.Popen(
            argv,
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        self.leader = leader
        self._raw = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.leader, 65536)
            except OSError:  # the chat closed the terminal
                return
            if not data:
                return
            with self._lock:
                self._raw += data

    @property
    def text(self) -> str:
        with self._lock:
            raw = self._raw
        return ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "")

    def expect(self, words: str, *, after: int = 0) -> int:
        """Wait until ``words`` shows up (past position ``after``); returns where it ends."""
        found = [0]

        def seen() -> bool:
            at = self.text.find(words, after)
            found[0] = at + len(words)
            return at >= 0

        wait_for(seen, f"{words!r} on the terminal; it shows:\n{self.text[after:]}")
        return found[0]

    def type(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def finish(self) -> int:
        code = self.proc.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        check_stderr(self.text)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)
        os.close(self.leader)


@pytest.fixture
def terminal(data_dir: Path) -> Iterator[Callable[..., Terminal]]:
    started: list[Terminal] = []

    def start(profile: Path, *args: str) -> Terminal:
        env = cli_env({**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"})
        env.pop("NO_COLOR", None)
        term = Terminal(chat_argv(profile, data_dir, *args), env)
        started.append(term)
        term.expect("/help lists commands")
        term.expect("you>")
        return term

    yield start
    for term in started:
        term.close()


def test_cancel_typed_while_a_turn_runs(
    script_profile: Callable[..., Path], data_dir: Path, terminal: Callable[..., Terminal]
) -> None:
    profile = script_profile(
        'echo "AGENT_PARTIAL:\\"working on $AGENT_MESSAGE\\""\n'
        'if [ "$AGENT_MESSAGE" = slow ]; then sleep 30; fi\necho "done $AGENT_MESSAGE"\n',
        kill_grace_secs=1,
    )
    term = terminal(profile)
    term.type("slow\r")
    at = term.expect("working on slow")
    term.type("next\r")
    at = term.expect("(queued: it runs after the current turn)", after=at)
    term.type("/cancel\r")
    at = term.expect("cancelling turn 1; dropped 1 waiting message", after=at)
    at = term.expect("error: cancelled", after=at)
    term.type("fast\r")
    at = term.expect("done fast", after=at)
    term.type("/quit\r")
    assert term.finish() == 0
    turns = stored(data_dir)[0].turns
    assert [(t.message, t.status) for t in turns] == [("slow", "cancelled"), ("fast", "ok")]


def test_the_greeting_says_what_resumes_and_reject_refuses_a_message_while_busy(
    script_profile: Callable[..., Path],
    data_dir: Path,
    gate: Path,
    terminal: Callable[..., Terminal],
) -> None:
    profile = script_profile(
        'echo "AGENT_SESSION:s-1"\n'
        'if [ "$AGENT_MESSAGE" = wait ]; then while [ ! -e "$GATE" ]; do sleep 0.02; done; fi\n'
        'echo "got $AGENT_MESSAGE"\n',
        busy_policy="reject",
    )
    assert chat(profile, data_dir, "hello\n").returncode == 0
    term = terminal(profile)
    assert "resuming agent session s-1 after 1 turn" in term.text
    term.type("wait\r")
    at = term.expect("you> wait")
    wait_for(lambda: stored_running(data_dir), "turn 2 to run")
    term.type("more\r")
    at = term.expect("error: this conversation is busy", after=at)
    gate.touch()
    term.expect("got wait", after=at)
    term.type("/quit\r")
    assert term.finish() == 0
    assert [t.message for t in stored(data_dir)[0].turns] == ["hello", "wait"]


def stored_running(data_dir: Path) -> bool:
    return any(s.conversation.running_turn for s in stored(data_dir))


def test_a_pasted_block_is_one_message(
    script_profile: Callable[..., Path], data_dir: Path, terminal: Callable[..., Terminal]
) -> None:
    profile = script_profile('echo "got [$AGENT_MESSAGE]"\n')
    term = terminal(profile)
    term.type("\x1b[200~line one\nline two\x1b[201~")
    term.type("\r")
    term.expect("line two]")
    term.type("\x04")  # Ctrl-D leaves
    assert term.finish() == 0
    turns = stored(data_dir)[0].turns
    assert [t.message for t in turns] == ["line one\nline two"]
    assert "line two" in (data_dir / "chat_history").read_text(), "kept in the input history"


def test_the_approval_prompt_shows_the_command_and_takes_the_answer(
    py_agent: Callable[..., Path], data_dir: Path, terminal: Callable[..., Terminal]
) -> None:
    profile = py_agent("cli_permission.py", permission=True, name="perm")
    term = terminal(profile, "--from", "tester")
    term.type("please\r")
    at = term.expect("agentproc: the agent asks to use Bash")
    at = term.expect("command: ls", after=at)
    at = term.expect("Allow Bash? [y/N]", after=at)
    term.type("y\r")
    at = term.expect('"allow": true', after=at)
    term.type("/quit\r")
    assert term.finish() == 0
    answers = [e for e in stored(data_dir)[0].events if e.type == "turn.permission_answered"]
    assert [(a.data["allow"], a.data["by"]) for a in answers] == [(True, "tester")]


def test_ctrl_c_twice_leaves_and_cancels_the_turn_this_chat_runs(
    script_profile: Callable[..., Path], data_dir: Path, terminal: Callable[..., Terminal]
) -> None:
    profile = script_profile('echo "AGENT_PARTIAL:\\"busy\\""\nsleep 30\n', kill_grace_secs=1)
    term = terminal(profile)
    term.type("slow\r")
    at = term.expect("busy")
    term.type("\x03")
    at = term.expect("(Ctrl-C again to quit)", after=at)
    term.type("\x03")
    assert term.finish() == 0
    assert [t.status for t in stored(data_dir)[0].turns] == ["cancelled"]


# --- the view, without a process -------------------------------------------------------------


def _event(id: int, type: str, turn: int = 0, **data: Any) -> Event:
    return Event("c1", id, type, turn, 0.0, data)


def _outputs(view: ChatView, *events: Event) -> list[Any]:
    return [out for event in events for out in view.feed(event)]


def test_the_view_shows_a_reply_once() -> None:
    view = ChatView(tag="me-")
    msg = _event(1, "message", text="hi", from_user="al", platform_id="me-1", attachments=[])
    queued = _event(2, "turn.queued", 1, messages=[1], text="hi")
    outs = _outputs(
        view,
        msg,
        queued,
        _event(3, "turn.partial", 1, text="hel", offset=0),
        _event(3, "turn.partial", 1, text="lo", offset=3),
        _event(4, "turn.completed", 1, status="ok", reply="hello", warnings=[]),
    )
    assert outs == [Text("hel"), Text("lo"), EndLine(), Settled((1,), True, True)]


def test_the_view_marks_what_came_from_elsewhere() -> None:
    view = ChatView(tag="me-")
    outs = _outputs(
        view,
        _event(1, "message", text="a\nb", from_user="bob", platform_id="x-1", attachments=[]),
        _event(2, "turn.queued", 1, messages=[1], text="a\nb"),
        _event(3, "turn.partial", 1, text="partly", offset=0),
        _event(4, "turn.completed", 1, status="error", reply="whole", error="boom", hint="h"),
        _event(5, "conversation.reset", by="bob"),
    )
    assert outs == [
        Note("[other terminal] bob: a\n  b"),
        Text("partly"),
        EndLine(),
        FinalHeader(),
        Text("whole\n"),
        Note("error: boom"),
        Note("hint: h"),
        Settled((1,), False, False),
        Note("[other terminal] /new: the next message starts a fresh agent session"),
    ]


def test_the_view_names_an_abandoned_turns_message_and_closes_its_approvals() -> None:
    view = ChatView(tag="me-")
    view.seed(_event(7, "turn.queued", 3, messages=[6], text="do it"))
    outs = _outputs(
        view,
        _event(8, "turn.permission", 3, tool="Bash", input={"command": "rm x"}, description=""),
        _event(9, "turn.completed", 3, status="abandoned", reply="", error="gone", hint="again"),
    )
    assert outs[1:] == [
        ApprovalClosed(8),
        EndLine(),
        Note("turn 3 was abandoned (the chat running it stopped): do it"),
        Note("hint: again"),
        Settled((6,), False, False),
    ]


# --- agentproc sessions on what chat wrote ------------------------------------------------
#
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
    assert default["cwd"] == str(profile.parent.resolve()), "the folder its agent runs in"

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


def test_chat_after_sessions_reset_starts_a_fresh_session(
    script_profile: Callable[..., Path], data_dir: Path
) -> None:
    profile = script_profile(SESSION_AGENT)
    chat(profile, data_dir, "a\n")
    assert sessions(data_dir, "reset", "terminal:default@demo").returncode == 0
    again = chat(profile, data_dir, "c\n")
    assert again.stdout.splitlines() == ["got=new msg=c"]

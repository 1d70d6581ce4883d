"""What a new user trips over, run as a user would: the real `agentproc`
command against real agent processes (see tests/helpers.py).

Sections: replies printed once; attachment URLs and garbage options;
`sessions prune`; bundled profiles hidden by local paths; chat and run with a
profile whose command is missing, and piped chat's exit status.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import AGENTPROC, Run, check_stderr, cli

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "bridge" / "profiles" / "echo"

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
    out = _run_in_pty([AGENTPROC, "run", str(sh_agent(DRAFT_THEN_FINAL)), "-m", "hi"])
    assert "a rough draft" in out and "the polished answer" in out
    assert "\x1b[2m--- final reply ---\x1b[0m" in out


def _run_in_pty(argv: list[str], answer: bytes = b"", env: dict[str, str] | None = None) -> str:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; type
    ``answer`` once something was printed; return everything it printed."""
    leader, follower = pty.openpty()
    environ = dict(os.environ, TERM="xterm")
    environ.pop("NO_COLOR", None)
    environ.update(env or {})
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=environ)
    os.close(follower)
    seen = b""
    typed = not answer
    end = time.monotonic() + 20
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the other side closed
                    break
                if not chunk:
                    break
                seen += chunk
                if not typed and b"?" in seen:
                    os.write(leader, answer)
                    typed = True
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)
    text = seen.decode("utf-8", "replace")
    check_stderr(text)
    return text

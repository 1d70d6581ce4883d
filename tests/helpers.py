"""Running the `agentproc` command in tests, as a user would, and SDK agents as a bridge would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentproc import wire

AGENTPROC = str(Path(sys.executable).parent / "agentproc")
AGENTS = Path(__file__).parent / "agents"
#: The checkout these tests belong to. The console script imports its code
#: from here (see :func:`cli_env`), not from wherever the package was installed
#: from, so a second worktree sharing one virtualenv tests its own code.
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str


def check_stderr(err: str) -> None:
    """No Python error reaches the user, whatever happened."""
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (by default this process's environment) with :data:`ROOT` first
    on ``PYTHONPATH``, so ``agentproc`` runs this checkout's code."""
    out = dict(os.environ if env is None else env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), out.get("PYTHONPATH", "")) if p)
    return out


def cli(*args: str | Path, input: bytes | None = None, **kwargs: object) -> Run:
    """Run ``agentproc ARGS`` to the end, on this checkout's code (:func:`cli_env`).
    stdin is /dev/null unless ``input`` is given, so a terminal running pytest
    never reaches the command."""
    kwargs.setdefault("timeout", 20)
    kwargs["env"] = cli_env(kwargs.get("env"))  # type: ignore[arg-type]
    if input is None:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.run(
        [AGENTPROC, *map(str, args)],
        input=input,
        capture_output=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    run = Run(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    check_stderr(run.err)
    return run


def run_in_pty(
    argv: list[str],
    answer: bytes = b"",
    prompt: bytes = b"?",
    env: dict[str, str] | None = None,
) -> str:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal, on this
    checkout's code (:func:`cli_env`, plus ``env``); type ``answer`` once
    ``prompt`` was printed; return everything it printed."""
    leader, follower = pty.openpty()
    environ = cli_env({**os.environ, "TERM": "xterm"})
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
                if not typed and prompt in seen:
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


# --- SDK agents --------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """This process's environment without anything that would steer the SDK."""
    drop = {*wire.TURN_ENV_VARS, wire.ENV_DEBUG, wire.ENV_HOME, "SDK_CASE", "SDK_TEXT"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def sdk_env(message: str | None = "hi", **turn: Any) -> dict[str, str]:
    """:func:`base_env` with the variables of a turn (``wire.turn_env``)."""
    env = base_env()
    env.update(wire.turn_env(message, **turn))
    return env


@contextmanager
def sdk_agent(case: str, env: dict[str, str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """tests/agents/sdk_cases.py running ``case`` with ``env``, its stdin and stdout
    piped unless ``popen`` says otherwise; killed and waited for when the block ends."""
    popen.setdefault("stdin", subprocess.PIPE)
    popen.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.Popen(
        [sys.executable, str(AGENTS / "sdk_cases.py")], env={**env, "SDK_CASE": case}, **popen
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def read_line(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    """The next line the agent wrote, as a bridge reads it (``wire.classify``)."""
    assert proc.stdout is not None
    return wire.classify(proc.stdout.readline().decode().rstrip("\n"))

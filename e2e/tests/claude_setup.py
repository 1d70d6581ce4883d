"""Claude Code's own set-up for the end-to-end suite.

Everything Claude Code needs to talk to the fake model and nothing else: the
fake's URL as ``ANTHROPIC_BASE_URL``, any API key, its documented switches
for telemetry, error reports, update checks and other non-essential traffic,
and a retry count low enough for the error tests to finish in seconds
(Claude Code retries 500, 429 and 529 ten times by default, with growing
waits; a 401 is not retried when the answer says ``x-should-retry: false``,
which the fake's 401 does).

With ``E2E_CAPTURE=1``, :func:`claude_env` puts a recording launcher in front
of the real ``claude`` (through ``CLAUDE_CODE_BIN``): it passes stdin, stdout,
stderr and the exit status through unchanged and writes what the CLI said to
``tests/fake_clis/claude/<scenario>.jsonl`` in the replay format of
``tests/fake_clis/fake_cli.py``: stdout lines as they were, stderr as
``{"fake": "stderr"}`` lines where it came, a non-zero exit as
``{"fake": "exit"}``. Three things are made stable so that the fast tests
can name them and a rerun does not churn the files for nothing: session ids
(the first one a test sees becomes the same fixed UUID in every file), the
project folder and the home folder. The answer to the ``initialize`` control
request is left out: the fake CLI makes its own.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from e2e.fakemodel import FakeModel

from .conftest import CAPTURE, FAKE_CLIS

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "CLAUDE_CODE_BIN"
#: How often Claude Code retries a failed request in these tests: enough to
#: see a retry note, few enough to stay fast (its waits start at about 0.5 s
#: and double). Its variable is CLAUDE_CODE_MAX_RETRIES.
MAX_RETRIES = 1
#: Where the stable stand-ins for machine-specific values point.
STABLE_PROJECT = "/home/user/project"
STABLE_HOME = "/home/user"


def claude_env(
    env: dict[str, str],
    model: FakeModel,
    *,
    record: dict[str, str] | None = None,
    folder: Path | None = None,
    retries: int = MAX_RETRIES,
) -> dict[str, str]:
    """``env`` for running the claude-code profile against ``model``.

    ``record`` names the scenario file for runs that start a session
    (``"new"``) and for runs that resume one (``"resume"``); with
    E2E_CAPTURE=1 they are recorded, and ``folder`` holds the launcher.
    """
    out = {
        **env,
        "ANTHROPIC_BASE_URL": model.url,
        "ANTHROPIC_API_KEY": "sk-ant-e2e-fake",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(retries),
    }
    if CAPTURE and record:
        assert folder is not None, "recording needs a folder for the launcher"
        out[BIN_VAR] = str(recorder(real_claude(out), record, folder))
    return out


def real_claude(env: dict[str, str]) -> str:
    import shutil

    found = shutil.which("claude", path=env["PATH"])
    assert found, "claude is not installed: run `make e2e/.installed` once"
    return found


def recorder(real: str, record: dict[str, str], folder: Path) -> Path:
    """A launcher that runs ``real`` and records each run as its scenario says."""
    targets = {kind: str(FAKE_CLIS / "claude" / f"{name}.jsonl") for kind, name in record.items()}
    launcher = folder / "record-claude"
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from e2e.tests.claude_setup import record_run\n"
        f"record_run({real!r}, {json.dumps(targets)!r}, {str(folder / 'ids.json')!r})\n",
        encoding="utf-8",
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher


def record_run(real: str, targets_json: str, ids_file: str) -> None:
    """The recording launcher's body: run the real CLI, copy, record, exit alike."""
    import signal
    import subprocess
    import threading

    argv = sys.argv[1:]
    targets: dict[str, str] = json.loads(targets_json)
    resumed = any(a.startswith("--resume") for a in argv)
    kind = "resume" if resumed else "new"
    target = targets.get(kind)
    # Only the first run of each kind in a test is recorded.
    done = Path(ids_file).with_name(f"recorded-{kind}")
    if target and done.exists():
        target = None
    proc = subprocess.Popen([real, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    said: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            sys.stderr.buffer.write(raw)
            sys.stderr.buffer.flush()
            with lock:
                said.append(("stderr", raw))

    thread = threading.Thread(target=pump_stderr, daemon=True)
    thread.start()
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        with lock:
            said.append(("stdout", raw))
    code = proc.wait()
    thread.join(5)
    if target:
        Path(target).write_text(stable(said, code, ids_file), encoding="utf-8")
        done.touch()
    sys.exit(code if code >= 0 else 128 - code)


def stable(said: list[tuple[str, bytes]], code: int, ids_file: str) -> str:
    """The recording: replay lines, with the machine-specific values made stable."""
    import uuid

    lines: list[str] = []
    sessions: list[str] = []
    for where, raw in said:
        text = raw.decode("utf-8", "replace")
        if where == "stderr":
            lines.append(json.dumps({"fake": "stderr", "text": text}, ensure_ascii=False))
            continue
        try:
            event = json.loads(text)
        except ValueError:
            lines.append(json.dumps({"fake": "stdout", "text": text}, ensure_ascii=False))
            continue
        if (
            event.get("type") == "control_response"
            and (event.get("response") or {}).get("request_id") == "init"
        ):
            continue
        session = event.get("session_id")
        if isinstance(session, str) and session and session not in sessions:
            sessions.append(session)
        lines.append(text.rstrip("\n"))
    if code != 0:
        lines.append(json.dumps({"fake": "exit", "code": code if code >= 0 else 128 - code}))
    out = "\n".join(lines) + "\n"
    # One stable stand-in per real session id, shared by every run of the test
    # (a resumed run names the id its first run got).
    known: dict[str, str] = (
        json.loads(Path(ids_file).read_text()) if os.path.exists(ids_file) else {}
    )
    for session in sessions:
        if session not in known:
            name = f"agentproc-e2e/session/{len(known) + 1}"
            known[session] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    Path(ids_file).write_text(json.dumps(known))
    for real, fixed in known.items():
        out = out.replace(real, fixed)
    # The project folder first: it lies inside the temporary home's parent.
    # Claude Code also names it with dashes (its folder under ~/.claude/projects).
    cwd, home = os.getcwd(), os.environ.get("HOME", "")
    for real, fixed in (
        (cwd, STABLE_PROJECT),
        (dashed(cwd), dashed(STABLE_PROJECT)),
        (home, STABLE_HOME),
    ):
        if real and real.strip("/-"):
            out = out.replace(real, fixed)
    return out


def dashed(path: str) -> str:
    """A folder's name as Claude Code gives it under ~/.claude/projects."""
    import re

    return re.sub(r"[^A-Za-z0-9]", "-", path)

"""Gemini CLI's own set-up for the end-to-end suite, and the stream recorder.

Gemini CLI talks to the fake model when three things hold: ``GOOGLE_GEMINI_BASE_URL``
names it, ``GEMINI_API_KEY`` is set (any value), and ``~/.gemini/settings.json``
chooses API-key authentication (``security.auth.selectedType: "gemini-api-key"``;
without it the CLI exits 41, "Invalid auth method selected"). The same file
turns off telemetry, usage statistics and update checks, pins a model (with the
default ``auto`` the CLI first asks a small model to classify every prompt,
which costs a model call of its own), and sets ``general.maxAttempts`` to 2:
Gemini CLI retries 429 and 5xx answers up to 10 times, waiting 5 s and then
doubling up to 30 s (about five minutes in all); with 2 attempts an error test
sees one retry after about 5 s. That first wait has no setting; the fake's 429
asks for 1 s (``RetryInfo``) and the CLI waits the longer of the two.

:func:`recorder` is shared with codex_setup.py: with ``E2E_CAPTURE=1`` a
launcher in front of the real CLI (through the wrapper's ``<PREFIX>_BIN``
variable) passes stdin, stdout, stderr and the exit status through unchanged
and writes the run to ``tests/fake_clis/<cli>/<scenario>.jsonl`` in the replay
format of ``tests/fake_clis/fake_cli.py``: stdout lines as they were, stderr as
``{"fake": "stderr"}`` lines where they came, a non-zero exit as ``{"fake":
"exit"}``. Values the fast tests name, or that change from run to run without
meaning anything, are made stable: session ids (the n-th one a test sees
becomes a fixed UUID), the project and home folders, the fake's port, and
timestamps.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

from e2e.fakemodel import FakeModel

from .conftest import CAPTURE, FAKE_CLIS

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "GEMINI_CLI_BIN"
#: The model the tests pin (a real one, so the CLI knows its limits).
MODEL = "gemini-2.5-flash"
#: Attempts per model call: one retry, so error tests see a retry note and end.
MAX_ATTEMPTS = 2
#: Where the stable stand-ins for machine-specific values point.
STABLE_PROJECT = "/home/user/project"
STABLE_HOME = "/home/user"
STABLE_URL = "http://127.0.0.1:8080"


def settings(*, max_attempts: int = MAX_ATTEMPTS) -> dict[str, object]:
    """~/.gemini/settings.json for a run against a base URL with an API key."""
    return {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "model": {"name": MODEL},
        "general": {
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
            "maxAttempts": max_attempts,
        },
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }


def gemini_env(
    env: dict[str, str],
    model: FakeModel,
    *,
    record: dict[str, str] | None = None,
    folder: Path | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> dict[str, str]:
    """``env`` for running the gemini-cli profile against ``model``.

    Writes the settings file into the private home. ``record`` names the
    scenario file for runs that start a session (``"new"``) and for runs that
    resume one (``"resume"``); with E2E_CAPTURE=1 they are recorded, and
    ``folder`` holds the launcher.
    """
    home = Path(env["HOME"])
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(
        json.dumps(settings(max_attempts=max_attempts), indent=2), encoding="utf-8"
    )
    out = {**env, "GOOGLE_GEMINI_BASE_URL": model.url, "GEMINI_API_KEY": "e2e-fake-key"}
    if CAPTURE and record:
        assert folder is not None, "recording needs a folder for the launcher"
        out[BIN_VAR] = str(recorder("gemini", real_cli("gemini", out), record, folder))
    return out


def real_cli(name: str, env: dict[str, str]) -> str:
    import shutil

    found = shutil.which(name, path=env["PATH"])
    assert found, f"{name} is not installed: run `make e2e/.installed` once"
    return found


# --- recording -----------------------------------------------------------------------------


def recorder(cli: str, real: str, record: dict[str, str], folder: Path) -> Path:
    """A launcher that runs ``real`` and records each run as its scenario says."""
    targets = {kind: str(FAKE_CLIS / cli / f"{name}.jsonl") for kind, name in record.items()}
    launcher = folder / f"record-{cli}"
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from e2e.tests.gemini_setup import record_run\n"
        f"record_run({real!r}, {json.dumps(targets)!r}, {str(folder / 'ids.json')!r})\n",
        encoding="utf-8",
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher


def resumes(argv: list[str]) -> bool:
    """Whether a run continues a session: ``--resume=<id>`` (gemini), ``resume`` (codex)."""
    return any(a.startswith("--resume") for a in argv) or "resume" in argv


def record_run(real: str, targets_json: str, ids_file: str) -> None:
    """The recording launcher's body: run the real CLI, copy, record, exit alike."""
    import signal
    import subprocess
    import threading

    argv = sys.argv[1:]
    targets: dict[str, str] = json.loads(targets_json)
    kind = "resume" if resumes(argv) else "new"
    target = targets.get(kind)
    # Only the first run of each kind in a test is recorded.
    done = Path(ids_file).with_name(f"recorded-{kind}")
    if target and done.exists():
        target = None
    proc = subprocess.Popen(
        [real, *argv], stdin=sys.stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
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


SESSION_KEYS = ("session_id", "thread_id")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
#: Gemini CLI's tool call ids carry the time in milliseconds.
TOOL_ID = re.compile(r"(_[a-z_]+)_\d{13}_(\d+)")
ROOT = str(Path(__file__).resolve().parents[2])
URL = re.compile(r"http://127\.0\.0\.1:\d+")
#: A Gemini CLI error report's file name carries the time it was written.
REPORT = re.compile(r"gemini-client-error-([A-Za-z.-]+)-[0-9T-]+Z\.json")


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
        for key in SESSION_KEYS:
            session = event.get(key) if isinstance(event, dict) else None
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
        out = out.replace(real, fixed).replace(real[:8], fixed[:8])
    # The project folder first: it lies inside the temporary home's parent.
    cwd, home = os.getcwd(), os.environ.get("HOME", "")
    tmp = os.path.dirname(home)
    for real, fixed in (
        (cwd, STABLE_PROJECT),
        (home, STABLE_HOME),
        (tmp, "/tmp"),
        (ROOT, "/src/agentproc"),
    ):
        if real and real.strip("/"):
            out = out.replace(real, fixed)
    out = TIMESTAMP.sub("2026-01-01T00:00:00.000Z", out)
    out = TOOL_ID.sub(r"\1_1767225600000_\2", out)
    out = REPORT.sub(r"gemini-client-error-\1-2026-01-01T00-00-00-000Z.json", out)
    return URL.sub(STABLE_URL, out)

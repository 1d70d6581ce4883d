"""Recording the real CLIs for the fast suite (``E2E_CAPTURE=1``).

:func:`recording` puts a launcher in front of the real CLI, through the
wrapper's ``<PREFIX>_BIN`` variable. It passes stdin, stdout, stderr and the
exit status through unchanged, and writes the runs it is told to record to
``tests/fake_clis/<cli>/<scenario>.jsonl`` in the replay format of
``tests/fake_clis/fake_cli.py``: stdout lines as they were (JSON) or as
``{"fake": "stdout"}`` lines (plain text), stderr as ``{"fake": "stderr"}``
lines where they came, what the run added to ``--chat-history-file`` as one
``{"fake": "history"}`` line (aider) and a non-zero exit as ``{"fake":
"exit"}``. Values the fast tests name, or that change from run to run without
meaning anything, are made stable as the CLI's :class:`Stable` says.

Which runs are recorded (``record``): a mapping from a kind of run to its
scenario, ``{"new": ..., "resume": ...}``, records the first run that starts
a session and the first that resumes one (``--resume...``, or codex's
``resume``); a string records the launcher's runs in turn, one scenario each
(``"first,resume"``). Any other run, and ``opencode session ...``, only runs.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .conftest import CAPTURE, FAKE_CLIS, ROOT

#: Where the stable stand-ins for machine-specific folders point.
STABLE_FOLDERS = {
    "project": "/home/user/project",
    "home": "/home/user",
    "tmp": "/tmp",
    "root": "/src/agentproc",
}


@dataclass(frozen=True)
class Stable:
    """What a CLI's recordings make stable, in this order."""

    #: Keys of stdout events whose value is a session id: each id becomes a
    #: fixed UUID (the n-th one a test sees, the same in every file of the test).
    session_keys: tuple[str, ...] = ()
    #: The first 8 characters of those ids too (file names carry them).
    short_ids: bool = False
    #: ``(regex, format)``: each id the regex finds in a run becomes the format
    #: filled with its number (1 for the first one seen).
    numbered: tuple[str, str] | None = None
    #: The folders that become stand-ins, in this order: ``project`` (the run's
    #: working folder), ``dashed`` (it, as Claude Code names it under
    #: ~/.claude/projects), ``home``, ``tmp`` (the home's parent), ``root``
    #: (this checkout).
    folders: tuple[str, ...] = ()
    #: More ``(regex, replacement)`` substitutions, made last.
    patterns: tuple[tuple[str, str], ...] = ()
    #: Leave out Claude Code's answer to the ``initialize`` request (the fake
    #: CLI makes its own).
    drop_init_answer: bool = False


def recording(
    env: dict[str, str],
    *,
    cli: str,
    bin_var: str,
    record: dict[str, str] | str | None,
    folder: Path | None,
    style: str = "json",
    stable: Stable = Stable(),
) -> dict[str, str]:
    """``env``, with ``bin_var`` naming a launcher that records the real ``cli``
    when E2E_CAPTURE=1 and ``record`` names scenarios; ``folder`` holds the
    launcher. ``style`` is ``json`` for a CLI whose stdout is JSON lines or
    ``text`` for one that prints plain text."""
    if not (CAPTURE and record):
        return env
    assert folder is not None, "recording needs a folder for the launcher"
    real = real_cli(cli, env["PATH"])
    return {**env, bin_var: str(recorder(cli, real, record, folder, style=style, stable=stable))}


def real_cli(name: str, path: str) -> str:
    import shutil

    found = shutil.which(name, path=path)
    assert found, f"{name} is not installed: run `make e2e` once"
    return found


def recorder(
    cli: str,
    real: str,
    record: dict[str, str] | str,
    folder: Path,
    *,
    style: str = "json",
    stable: Stable = Stable(),
) -> Path:
    """A launcher that runs ``real`` and records the runs ``record`` names."""
    if isinstance(record, str):
        runs = [("any", name) for name in record.split(",")]
    else:
        runs = list(record.items())
    (FAKE_CLIS / cli).mkdir(parents=True, exist_ok=True)
    launcher = folder / f"record-{cli}-{'-'.join(name for _, name in runs)}"
    config = {
        "real": real,
        "runs": [(kind, str(FAKE_CLIS / cli / f"{name}.jsonl")) for kind, name in runs],
        "state": f"{launcher}.state",
        "ids": str(folder / "ids.json"),
        "style": style,
        "stable": asdict(stable),
    }
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from e2e.tests.recording import record_run\n"
        f"record_run({json.dumps(config)!r})\n",
        encoding="utf-8",
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher


def resumes(argv: list[str]) -> bool:
    """Whether a run continues a session: ``--resume=<id>`` (claude, gemini), ``resume`` (codex)."""
    return any(a.startswith("--resume") for a in argv) or "resume" in argv


def record_run(config_json: str) -> None:
    """The recording launcher's body: run the real CLI, copy, record, exit alike."""
    import signal
    import subprocess
    import threading

    config = json.loads(config_json)
    real, argv = config["real"], sys.argv[1:]
    state = Path(config["state"])
    runs = json.loads(state.read_text()) if state.exists() else config["runs"]
    kind = "resume" if resumes(argv) else "new"
    found = next((i for i, (wanted, _) in enumerate(runs) if wanted in (kind, "any")), None)
    if found is None or argv[:1] == ["session"]:
        os.execv(real, [real, *argv])  # a run with no scenario left is not recorded
    target = runs.pop(found)[1]
    state.write_text(json.dumps(runs))
    history = next((a.split("=", 1)[1] for a in argv if a.startswith("--chat-history-file=")), "")
    start = os.path.getsize(history) if history and os.path.exists(history) else 0
    proc = subprocess.Popen([real, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # A wrapper that stops the CLI stops this launcher: pass it on, record the rest.
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    said: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def pump(name: str, source: IO[bytes] | None, sink: IO[bytes]) -> None:
        assert source is not None
        for raw in source:
            sink.write(raw)
            sink.flush()
            with lock:
                said.append((name, raw))

    reader = threading.Thread(
        target=pump, args=("stderr", proc.stderr, sys.stderr.buffer), daemon=True
    )
    reader.start()
    pump("stdout", proc.stdout, sys.stdout.buffer)
    code = proc.wait()
    reader.join(5)
    if history and os.path.exists(history):
        with open(history, "rb") as fh:
            fh.seek(start)
            added = fh.read()
        if added:
            said.append(("history", added))
    code = code if code >= 0 else 128 - code
    Path(target).write_text(transcript(said, code, config), encoding="utf-8")
    sys.exit(code)


def transcript(said: list[tuple[str, bytes]], code: int, config: dict[str, object]) -> str:
    """The recording: replay lines, with what :class:`Stable` names made stable."""
    rules = Stable(**config["stable"])  # type: ignore[arg-type]
    lines: list[str] = []
    sessions: list[str] = []
    for where, raw in said:
        text = raw.decode("utf-8", "replace")
        if where != "stdout" or config["style"] != "json" or not is_json(text):
            lines.append(json.dumps({"fake": where, "text": text}, ensure_ascii=False))
            continue
        event = json.loads(text)
        if isinstance(event, dict):
            if rules.drop_init_answer and is_init_answer(event):
                continue
            for key in rules.session_keys:
                session = event.get(key)
                if isinstance(session, str) and session and session not in sessions:
                    sessions.append(session)
        lines.append(text.rstrip("\n"))
    if code != 0:
        lines.append(json.dumps({"fake": "exit", "code": code}))
    out = "\n".join(lines) + "\n"
    if rules.session_keys:
        for real, fixed in stable_sessions(sessions, str(config["ids"])).items():
            out = out.replace(real, fixed)
            if rules.short_ids:
                out = out.replace(real[:8], fixed[:8])
    if rules.numbered:
        out = numbered(out, *rules.numbered)
    for real, fixed in stand_ins(rules.folders):
        if real and real.strip("/-"):
            out = out.replace(real, fixed)
    for pattern, replacement in rules.patterns:
        out = re.sub(pattern, replacement, out)
    return out


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def is_init_answer(event: dict[str, object]) -> bool:
    response = event.get("response")
    return (
        event.get("type") == "control_response"
        and isinstance(response, dict)
        and response.get("request_id") == "init"
    )


def stable_sessions(sessions: list[str], ids_file: str) -> dict[str, str]:
    """One stable stand-in per real session id, shared by every run of the test
    (a resumed run names the id its first run got)."""
    import uuid

    known: dict[str, str] = (
        json.loads(Path(ids_file).read_text()) if os.path.exists(ids_file) else {}
    )
    for session in sessions:
        if session not in known:
            name = f"agentproc-e2e/session/{len(known) + 1}"
            known[session] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    Path(ids_file).write_text(json.dumps(known))
    return known


def numbered(text: str, pattern: str, form: str) -> str:
    """Each id ``pattern`` finds becomes ``form`` filled with its number, in the order they came."""
    seen: dict[str, str] = {}

    def stand_in(match: re.Match[str]) -> str:
        return seen.setdefault(match.group(0), form % (len(seen) + 1))

    return re.sub(pattern, stand_in, text)


def stand_ins(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(real, stable) for the folders named, as this run sees them."""
    cwd, home = os.getcwd(), os.environ.get("HOME", "")
    real = {
        "project": cwd,
        "dashed": dashed(cwd),
        "home": home,
        "tmp": os.path.dirname(home),
        "root": str(ROOT),
    }
    fixed = {**STABLE_FOLDERS, "dashed": dashed(STABLE_FOLDERS["project"])}
    return [(real[name], fixed[name]) for name in names]


def dashed(path: str) -> str:
    """A folder's name as Claude Code gives it under ~/.claude/projects."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)

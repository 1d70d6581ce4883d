"""opencode's own set-up for the end-to-end suite, and the recorder of CLI streams.

opencode talks to the fake through a provider in its global ``opencode.json``
(``$XDG_CONFIG_HOME/opencode/``) that uses ``@ai-sdk/openai-compatible`` with
the fake's ``baseURL``; the model is ``fake/e2e-model``. The same file turns
off what would reach beyond loopback or muddle the request log:

- ``autoupdate: false``, ``share: "disabled"``, and
  ``OPENCODE_DISABLE_MODELS_FETCH=1`` (the model list from models.dev);
- the hidden ``title`` agent is disabled: it would call the model once more
  per new session, at the same time as the real call, and take a behaviour
  from the fake's script;
- ``permission.bash: "ask"``, so a shell command needs an approval that
  ``opencode run`` cannot get (it turns it down).

At every start opencode 1.18 installs ``@opencode-ai/plugin`` into each config
folder with npm's Arborist, unless the folder has a ``node_modules`` and a
``package-lock.json`` whose root lists it (that is all its check looks at).
Nothing here needs the package (it is the type library for plugins written
in TypeScript), so the config folder gets that lock and an empty
``node_modules``: no registry request is even tried. Without them the install
fails in the background when offline and opencode goes on regardless.

opencode retries a failed model call 5 times, waiting 2, 4, 8, 16 and 30 s
unless the answer names a wait: the error tests send ``retry-after-ms`` so the
retries take milliseconds. It has no setting for the count.

:func:`recorder` is shared with aider_setup.py: with ``E2E_CAPTURE=1`` it puts
a launcher in front of the real CLI that passes everything through and writes
what the CLI did to ``tests/fake_clis/<cli>/<scenario>.jsonl`` in the replay
format of ``tests/fake_clis/fake_cli.py``.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from e2e.fakemodel import FakeModel

from .conftest import CAPTURE, FAKE_CLIS

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "OPENCODE_BIN"
MODEL = "fake/e2e-model"
#: opencode's session ids in the recordings: ses_ and 26 letters or digits.
STABLE_SESSIONS = r"ses_[0-9A-Za-z]{26}|ses_e2erecordedsession%04d"
#: Sent with the fake's 500 and 429 so opencode retries at once (see above).
QUICK_RETRY = {"retry-after-ms": "20"}


def opencode_env(
    env: dict[str, str],
    model: FakeModel,
    *,
    record: str = "",
    folder: Path | None = None,
) -> dict[str, str]:
    """``env`` for running the opencode profile against ``model``.

    ``record`` names the scenario file to write with E2E_CAPTURE=1; ``folder``
    then holds the launcher.
    """
    config = Path(env["XDG_CONFIG_HOME"]) / "opencode"
    config.mkdir(parents=True, exist_ok=True)
    settings = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake model",
                "options": {"baseURL": f"{model.url}/v1", "apiKey": "sk-e2e-fake"},
                "models": {"e2e-model": {"name": "E2E model"}},
            }
        },
        "model": MODEL,
        "autoupdate": False,
        "share": "disabled",
        "agent": {"title": {"disable": True}},
        "permission": {"bash": "ask"},
    }
    (config / "opencode.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    plugin = {"@opencode-ai/plugin": "1.18.33"}
    (config / "package.json").write_text(json.dumps({"dependencies": plugin}), encoding="utf-8")
    lock = {"lockfileVersion": 3, "packages": {"": {"dependencies": plugin}}}
    (config / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    (config / "node_modules").mkdir(exist_ok=True)
    out = {**env, "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1"}
    if CAPTURE and record:
        assert folder is not None, "recording needs a folder for the launcher"
        out[BIN_VAR] = str(
            recorder("opencode", out["PATH"], record, folder, stable_ids=STABLE_SESSIONS)
        )
    return out


# --- recording the real CLI for the fast suite -------------------------------------------

RECORDER = r"""
import json, os, re, signal, subprocess, sys, threading

real, targets, marker, style, ids = sys.argv[1:6]
argv = sys.argv[6:]
runs = int(open(marker).read()) if os.path.exists(marker) else 0
targets = targets.split(",")
if runs >= len(targets) or argv[:1] == ["session"]:
    os.execv(real, [real, *argv])  # a run with no scenario left is not recorded
with open(marker, "w") as fh:
    fh.write(str(runs + 1))
target = targets[runs]
history = next((a.split("=", 1)[1] for a in argv if a.startswith("--chat-history-file=")), "")
start = os.path.getsize(history) if history and os.path.exists(history) else 0
lines, lock = [], threading.Lock()
proc = subprocess.Popen([real, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
# A wrapper that stops the CLI stops this launcher: pass it on, record the rest.
signal.signal(signal.SIGTERM, lambda *_: proc.terminate())

def pump_stderr():
    for raw in proc.stderr:
        sys.stderr.buffer.write(raw)
        sys.stderr.buffer.flush()
        with lock:
            lines.append(json.dumps({"fake": "stderr", "text": raw.decode("utf-8", "replace")}))

reader = threading.Thread(target=pump_stderr, daemon=True)
reader.start()
for raw in proc.stdout:
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    text = raw.decode("utf-8", "replace")
    with lock:
        if style == "text":
            lines.append(json.dumps({"fake": "stdout", "text": text}))
        else:
            lines.append(text.rstrip("\n"))
code = proc.wait()
reader.join(5)
if ids:  # the same stand-in ids in every recording, in the order they came
    seen = {}
    def stable(match):
        return seen.setdefault(match.group(0), ids.split("|")[1] % (len(seen) + 1))
    lines = [re.sub(ids.split("|")[0], stable, line) for line in lines]
if history and os.path.exists(history):
    with open(history, encoding="utf-8", errors="replace") as fh:
        fh.seek(start)
        added = fh.read()
    if added:
        lines.append(json.dumps({"fake": "history", "text": added}))
if code:
    lines.append(json.dumps({"fake": "exit", "code": code if code > 0 else 128 - code}))
with open(target, "w", encoding="utf-8") as fh:
    fh.write("".join(line + "\n" for line in lines))
sys.exit(code if code >= 0 else 128 - code)
"""


def recorder(
    cli: str, path: str, scenario: str, folder: Path, *, style: str = "json", stable_ids: str = ""
) -> Path:
    """A launcher that runs the real ``cli`` and records it as ``<scenario>.jsonl``.

    ``style`` is ``json`` for a CLI whose stdout is JSON lines (kept as they
    are) or ``text`` for plain text (each line becomes a ``stdout`` directive).
    stderr lines become ``stderr`` directives in the order they were read, what
    the run added to ``--chat-history-file`` one ``history`` directive at the
    end, and a non-zero exit an ``exit`` directive. ``scenario`` may name
    several files, comma-separated: one for each run in turn (a chat's
    turns); later runs, and ``opencode session list``, are not recorded.
    ``stable_ids`` is ``"<regex>|<format>"``: each id the regex finds becomes
    the format filled with its number (1 for the first one seen), so the fast
    tests can name them and a new capture does not change them.
    """
    import shutil

    real = shutil.which(cli, path=path)
    assert real, f"{cli} is not installed: run `make e2e` once"
    (FAKE_CLIS / cli).mkdir(parents=True, exist_ok=True)
    targets = ",".join(str(FAKE_CLIS / cli / f"{name}.jsonl") for name in scenario.split(","))
    name = scenario.replace(",", "-")
    script = folder / f"record_{cli}_{name}.py"
    script.write_text(RECORDER, encoding="utf-8")
    launcher = folder / f"record-{cli}-{name}"
    launcher.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{script}" "{real}" "{targets}" '
        f'"{folder / (launcher.name + ".runs")}" {style} \'{stable_ids}\' "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher

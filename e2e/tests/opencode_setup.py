"""opencode's own set-up for the end-to-end suite.

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

With ``E2E_CAPTURE=1`` runs are recorded (recording.py), opencode's session
ids made stable as :data:`STABLE` says.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.fakemodel import FakeModel

from .recording import Stable, recording

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "OPENCODE_BIN"
MODEL = "fake/e2e-model"
#: opencode's session ids (ses_ and 26 letters or digits) become
#: ses_e2erecordedsession0001, ... in the recordings.
STABLE = Stable(numbered=(r"ses_[0-9A-Za-z]{26}", "ses_e2erecordedsession%04d"))
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
    return recording(
        out, cli="opencode", bin_var=BIN_VAR, record=record, folder=folder, stable=STABLE
    )

"""Gemini CLI's own set-up for the end-to-end suite.

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

With ``E2E_CAPTURE=1`` runs are recorded (recording.py) with :data:`STABLE`,
which codex_setup.py shares: session ids (the n-th one a test sees becomes a
fixed UUID), the folders, timestamps and the fake's port are made stable.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.fakemodel import FakeModel

from .recording import Stable, recording

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "GEMINI_CLI_BIN"
#: The model the tests pin (a real one, so the CLI knows its limits).
MODEL = "gemini-2.5-flash"
#: Attempts per model call: one retry, so error tests see a retry note and end.
MAX_ATTEMPTS = 2
#: What a recording of Gemini CLI or Codex makes stable: session and thread
#: ids (their first 8 characters name files), the folders, then timestamps,
#: Gemini CLI's tool call ids and error report names (both carry the time) and
#: the fake's port.
STABLE = Stable(
    session_keys=("session_id", "thread_id"),
    short_ids=True,
    folders=("project", "home", "tmp", "root"),
    patterns=(
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z", "2026-01-01T00:00:00.000Z"),
        (r"(_[a-z_]+)_\d{13}_(\d+)", r"\1_1767225600000_\2"),
        (
            r"gemini-client-error-([A-Za-z.-]+)-[0-9T-]+Z\.json",
            r"gemini-client-error-\1-2026-01-01T00-00-00-000Z.json",
        ),
        (r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:8080"),
    ),
)


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
    return recording(
        out, cli="gemini", bin_var=BIN_VAR, record=record, folder=folder, stable=STABLE
    )

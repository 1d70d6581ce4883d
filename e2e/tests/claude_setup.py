"""Claude Code's own set-up for the end-to-end suite.

Everything Claude Code needs to talk to the fake model and nothing else: the
fake's URL as ``ANTHROPIC_BASE_URL``, any API key, its documented switches
for telemetry, error reports, update checks and other non-essential traffic,
and a retry count low enough for the error tests to finish in seconds
(Claude Code retries 500, 429 and 529 ten times by default, with growing
waits; a 401 is not retried when the answer says ``x-should-retry: false``,
which the fake's 401 does).

With ``E2E_CAPTURE=1``, :func:`claude_env` records the runs it is told to
(recording.py): session ids (the first one a test sees becomes the same fixed
UUID in every file), the project folder (also as Claude Code names it under
``~/.claude/projects``) and the home folder are made stable, so that the fast
tests can name them and a rerun does not churn the files for nothing; the
answer to the ``initialize`` control request is left out, as the fake CLI
makes its own.
"""

from __future__ import annotations

from pathlib import Path

from e2e.fakemodel import FakeModel

from .recording import Stable, recording

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "CLAUDE_CODE_BIN"
#: How often Claude Code retries a failed request in these tests: enough to
#: see a retry note, few enough to stay fast (its waits start at about 0.5 s
#: and double). Its variable is CLAUDE_CODE_MAX_RETRIES.
MAX_RETRIES = 1
#: What a recording makes stable (see the top of this file).
STABLE = Stable(
    session_keys=("session_id",), folders=("project", "dashed", "home"), drop_init_answer=True
)


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
    return recording(
        out, cli="claude", bin_var=BIN_VAR, record=record, folder=folder, stable=STABLE
    )

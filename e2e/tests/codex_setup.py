"""Codex's own set-up for the end-to-end suite.

Two ways of pointing ``codex exec`` at the fake model are tested, as a user
would set them up:

- a model provider in ``$CODEX_HOME/config.toml`` (``base_url``, ``wire_api =
  "responses"``, ``env_key`` naming the variable with the key). Its retry
  counts are set to one each (``request_max_retries``, ``stream_max_retries``;
  the defaults are 4 and 5, with backoff), so error tests see one reconnect
  and end in about a second; ``supports_websockets = false`` stops Codex from
  trying a WebSocket before HTTPS (the fake refuses the upgrade anyway);
- only ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, which ``codex exec`` itself
  ignores and the wrapper passes on (``-c openai_base_url=...``,
  ``CODEX_API_KEY``). The built-in provider tries a WebSocket first; the
  fake answers ``426`` and Codex falls back to HTTPS.

Either way the config file turns off what would leave the machine:
``[features] plugins = false`` (plugin sync on every run),
``[analytics] enabled = false`` (it also holds the exit up by five seconds
offline) and ``check_for_update_on_startup = false``.

With ``E2E_CAPTURE=1`` runs are recorded as gemini_setup.py says.
"""

from __future__ import annotations

from pathlib import Path

from e2e.fakemodel import FakeModel

from .gemini_setup import STABLE
from .recording import recording

#: The wrapper's variable for the executable (the recording launcher goes there).
BIN_VAR = "CODEX_BIN"
#: The variable the test provider reads its key from (the profile passes OPENAI_*
#: and CODEX_* on; a provider reading another variable needs it allowed too).
KEY_VAR = "OPENAI_API_KEY"

QUIET = """check_for_update_on_startup = false

[features]
plugins = false

[analytics]
enabled = false
"""


def provider(base_url: str, retries: int = 1) -> str:
    return f"""model_provider = "fake"
{QUIET}
[model_providers.fake]
name = "fake model"
base_url = "{base_url}"
wire_api = "responses"
env_key = "{KEY_VAR}"
request_max_retries = {retries}
stream_max_retries = {retries}
supports_websockets = false
"""


def codex_env(
    env: dict[str, str],
    model: FakeModel,
    *,
    openai_vars: bool = False,
    base_url: str | None = None,
    record: dict[str, str] | None = None,
    folder: Path | None = None,
) -> dict[str, str]:
    """``env`` for running the codex profile against ``model``.

    Writes ``$CODEX_HOME/config.toml`` into the private home: a provider for
    the fake (``base_url`` overrides its address), or with ``openai_vars``
    only the quiet settings, the fake then named by ``OPENAI_BASE_URL``.
    ``record`` and ``folder`` as in gemini_setup.gemini_env.
    """
    codex_home = Path(env["HOME"]) / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    out = {**env, "CODEX_HOME": str(codex_home)}
    if openai_vars:
        (codex_home / "config.toml").write_text(QUIET, encoding="utf-8")
        out |= {"OPENAI_BASE_URL": f"{model.url}/v1", "OPENAI_API_KEY": "sk-e2e-fake"}
    else:
        url = base_url or f"{model.url}/v1"
        (codex_home / "config.toml").write_text(provider(url), encoding="utf-8")
        out[KEY_VAR] = "sk-e2e-fake"
    return recording(out, cli="codex", bin_var=BIN_VAR, record=record, folder=folder, stable=STABLE)
